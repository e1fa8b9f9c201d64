//! Modules: `run` (in a clientless session of its own, closed whatever
//! happens), and `open-module` and `value` (in a session that exists).

use std::time::Duration;

use humantime::format_duration;
use serde_json::Value;
use sessiond_client::{Client, Error, SessionId};

use super::interrupt::Interrupts;
use super::{Failure, Outcome};
use crate::args::OutputFormat;
use crate::output;

/// What `run` runs, and how patiently.
#[derive(Debug)]
pub struct RunArgs {
    /// On whose behalf.
    pub user: String,
    /// The module's id.
    pub module: String,
    /// Its parameters, KEY=VALUE.
    pub params: Vec<(String, Value)>,
    /// How long to wait for its value.
    pub timeout: Duration,
    /// How long a stopped run may take to conclude.
    pub grace: Duration,
}

/// `run`: opens a clientless session, runs the module, prints its value and
/// closes the session.
///
/// Past the timeout, it says so, closes the session with the grace (the
/// server cancels the run if it has not concluded by then) and ends with
/// [`Outcome::TimedOut`]. The first Ctrl-C does the same and ends with
/// [`Outcome::Interrupted`]; one more while the session closes stops
/// waiting for the close (the server goes on with it).
pub async fn run(client: &Client, args: RunArgs, format: OutputFormat) -> Result<Outcome, Failure> {
    let mut interrupts = Interrupts::listen()?;
    let opened = tokio::select! {
        opened = client.clientless_session(args.user.as_str()) => Some(opened),
        () = interrupts.next() => None,
    };
    let Some(session) = opened.transpose()? else {
        eprintln!("sessionctl: interrupted while opening the session");
        return Ok(Outcome::Interrupted);
    };
    let (id, module) = (session.id(), args.module.as_str());
    let work = async {
        session
            .open_module_with(module, parameters(args.params))
            .await?;
        session.get_return_value(module, args.timeout).await
    };
    let ending = tokio::select! {
        result = work => match result {
            Ok(value) => Ending::Value(value),
            Err(Error::ModuleStillRunning { .. }) => Ending::NoValueInTime,
            Err(error) => Ending::Failed(error),
        },
        () = interrupts.next() => Ending::Interrupted,
    };
    let grace = format_duration(args.grace);
    match &ending {
        Ending::Interrupted => eprintln!(
            "sessionctl: cancelling: closing session {id} (grace {grace}); \
             Ctrl-C again to exit now"
        ),
        Ending::NoValueInTime => eprintln!(
            "sessionctl: module {module} gave no value within {}; stopping it \
             (closing session {id}, grace {grace})",
            format_duration(args.timeout)
        ),
        Ending::Value(_) | Ending::Failed(_) => {}
    }
    let closed = tokio::select! {
        closed = session.close_with_grace(args.grace) => Some(closed),
        () = interrupts.next() => None,
    };
    // After a second interrupt the server goes on closing the session;
    // this process stops waiting.
    let Some(closed) = closed else {
        return match ending {
            Ending::Failed(error) => Err(error.into()),
            _ => Ok(Outcome::Interrupted),
        };
    };
    match ending {
        // The run's failure says more than the close's.
        Ending::Failed(error) => Err(error.into()),
        Ending::Interrupted => closed.map(|_| Outcome::Interrupted).map_err(Into::into),
        Ending::NoValueInTime => closed.map(|_| Outcome::TimedOut).map_err(Into::into),
        Ending::Value(value) => {
            closed?;
            output::one(format, &output::module_value(id, module, value))?;
            Ok(Outcome::Done)
        }
    }
}

/// How the wait for a run's value ended.
enum Ending {
    /// The run concluded with this value.
    Value(Value),
    /// The run could not be started, failed, or its value could not be read.
    Failed(Error),
    /// The timeout passed first: the run goes on until stopped.
    NoValueInTime,
    /// Ctrl-C (or SIGTERM) came first.
    Interrupted,
}

/// `open-module`: starts a run in a session and prints it.
pub async fn open_module(
    client: &Client,
    id: SessionId,
    module: &str,
    params: Vec<(String, Value)>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let run = client.open_module(id, module, parameters(params)).await?;
    output::one(format, &output::module_run(id, module, &run))?;
    Ok(Outcome::Done)
}

/// `value`: prints the value of the latest run of a module in a session,
/// waiting up to `timeout`; [`Outcome::TimedOut`] when the run goes on.
pub async fn value(
    client: &Client,
    id: SessionId,
    module: &str,
    timeout: Duration,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    match client.get_return_value(id, module, timeout).await {
        Ok(value) => {
            output::one(format, &output::module_value(id, module, value))?;
            Ok(Outcome::Done)
        }
        Err(Error::ModuleStillRunning { .. }) => {
            eprintln!(
                "sessionctl: module {module} gave no value within {}; it goes on running \
                 in session {id}",
                format_duration(timeout)
            );
            Ok(Outcome::TimedOut)
        }
        Err(error) => Err(error.into()),
    }
}

/// The parameters of a run: `null` for none, else an object.
fn parameters(params: Vec<(String, Value)>) -> Value {
    if params.is_empty() {
        Value::Null
    } else {
        Value::Object(params.into_iter().collect())
    }
}

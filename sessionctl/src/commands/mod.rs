//! What each subcommand does; the event log's (`watch`, `audit`) in
//! [`events`].

mod events;

use std::time::Duration;

use serde_json::{Value, json};
use sessiond_client::{Access, Client, Error, SessionFilter, SessionId};
use tonic::Code;

use crate::args::{Command, OutputFormat};
use crate::output::{self, Record};

/// How a command ended, when it did not fail.
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// Ctrl-C (or SIGTERM) stopped it; what it opened was cleaned up.
    Interrupted,
    /// The answer was no (`can-i` refused, `audit verify` found the ledger
    /// broken): printed on stdout, not an error.
    No,
}

/// A command's failure: the error to report in one line.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Runs `command` with `client`, printing its results in `format`.
pub async fn run(
    client: &Client,
    command: Command,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    match command {
        Command::User { id } => {
            let user = client.get_session_user(id).await?;
            output::one(
                format,
                &vec![("session_id", json!(id.get())), ("user", json!(user))],
            )?;
        }
        Command::Info { id } => {
            let info = client.get_session_info(id).await?;
            output::one(format, &output::session(&info))?;
        }
        Command::List { user, state, kind } => {
            let filter = SessionFilter {
                user,
                kind,
                state,
                states: Vec::new(),
            };
            let sessions = client.list_sessions(&filter).await?;
            let records: Vec<Record> = sessions.iter().map(output::session).collect();
            output::many(format, &records, output::SESSION_COLUMNS)?;
        }
        Command::Open { user } => {
            let info = client.open_clientless_session(user).await?;
            output::one(format, &output::session(&info))?;
        }
        Command::Close { id, grace } => {
            let info = match grace {
                None => client.end_session(id).await?,
                Some(grace) => client.close_clientless_session(id, Some(grace)).await?,
            };
            output::one(format, &output::session(&info))?;
        }
        Command::Run {
            user,
            module,
            params,
            timeout,
        } => return run_module(client, &user, &module, params, timeout, format).await,
        Command::Context { id, set } => {
            let previous = match set {
                Some(user) => Some(client.set_user_context(id, user).await?),
                None => None,
            };
            let context = client.get_user_context(id).await?;
            let mut record = output::user_context(id, &context);
            if let Some(previous) = previous {
                record.push(("previous_user", json!(previous)));
            }
            output::one(format, &record)?;
        }
        Command::Whoami => {
            let me = client
                .who_am_i()
                .await
                .map_err(|e| unimplemented_by(e, ACCESS_SERVICE))?;
            output::one(format, &output::who_am_i(format, &me))?;
        }
        Command::CanI {
            permission,
            session,
            user,
            module,
        } => {
            let mut access = Access::new(permission);
            access.session_id = session;
            access.user = user;
            access.module_id = module;
            let decision = client
                .check_access(&access)
                .await
                .map_err(|e| unimplemented_by(e, ACCESS_SERVICE))?;
            output::decision(format, &decision)?;
            if !decision.allowed {
                return Ok(Outcome::No);
            }
        }
        Command::Watch {
            after,
            user,
            session,
            initial_state,
        } => {
            let args = events::WatchArgs {
                after,
                user,
                session,
                initial_state,
            };
            return events::watch(client, args, format).await;
        }
        Command::Audit(command) => return events::audit(client, command, format).await,
    }
    Ok(Outcome::Done)
}

/// `AccessService`, which servers older than this sessionctl lack.
const ACCESS_SERVICE: &str = "sessiond.v1.AccessService";

/// The failure of a call of `service`, saying so when the server is older
/// than the service (it answers `UNIMPLEMENTED`).
fn unimplemented_by(error: Error, service: &str) -> Failure {
    if error
        .status()
        .is_some_and(|s| s.code() == Code::Unimplemented)
    {
        format!("the server does not implement {service} (it is older than this sessionctl)").into()
    } else {
        error.into()
    }
}

/// `run`: a clientless session that is closed whatever happens — success,
/// failure, or an interrupt while the module runs.
async fn run_module(
    client: &Client,
    user: &str,
    module: &str,
    params: Vec<(String, Value)>,
    timeout: Duration,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let parameters = if params.is_empty() {
        Value::Null
    } else {
        Value::Object(params.into_iter().collect())
    };
    let session = client.clientless_session(user).await?;
    let session_id: SessionId = session.id();
    let work = async {
        session.open_module_with(module, parameters).await?;
        session.get_return_value(module, timeout).await
    };
    let result = tokio::select! {
        result = work => Some(result),
        () = interrupted() => None,
    };
    let closed = session.close().await;
    let Some(result) = result else {
        closed?;
        eprintln!("sessionctl: interrupted; session {session_id} was closed");
        return Ok(Outcome::Interrupted);
    };
    let value = result?;
    closed?;
    output::one(
        format,
        &vec![
            ("session_id", json!(session_id.get())),
            ("module_id", json!(module)),
            ("value", value),
        ],
    )?;
    Ok(Outcome::Done)
}

/// Completes on Ctrl-C, or SIGTERM on Unix.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

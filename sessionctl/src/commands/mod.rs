//! What each subcommand does, one concern per module: [`sessions`] (look
//! up, list, start, touch, open, close), [`modules`] (`run`, `open-module`,
//! `value`), [`user_context`] (`context`, `push`, `pop`), [`access`]
//! (`whoami`, `can-i`) and [`events`] (`watch`, `audit`); [`interrupt`]
//! is how the long-running ones hear Ctrl-C.

mod access;
mod events;
mod interrupt;
mod modules;
mod sessions;
mod user_context;

use sessiond_client::{Client, Error};
use tonic::Code;

use crate::args::{Command, OutputFormat};

/// How a command ended, when it did not fail.
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// Ctrl-C (or SIGTERM) stopped it; what it opened was cleaned up, or
    /// is being cleaned up by the server after a second Ctrl-C.
    Interrupted,
    /// The answer was no (`can-i` refused, `audit verify` found the ledger
    /// broken): printed on stdout, not an error.
    No,
    /// A module gave no value within the time it was given (`run`,
    /// `value`); stderr said so.
    TimedOut,
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
        Command::User { id } => sessions::user(client, id, format).await,
        Command::Info { id } => sessions::info(client, id, format).await,
        Command::List { user, states, kind } => {
            sessions::list(client, user, states, kind, format).await
        }
        Command::Start { user, client: what } => sessions::start(client, user, what, format).await,
        Command::Touch { id } => sessions::touch(client, id, format).await,
        Command::Open { user } => sessions::open(client, user, format).await,
        Command::Close { id, grace } => sessions::close(client, id, grace, format).await,
        Command::Run {
            user,
            module,
            params,
            timeout,
            grace,
        } => {
            let run = modules::RunArgs {
                user,
                module,
                params,
                timeout,
                grace,
            };
            modules::run(client, run, format).await
        }
        Command::OpenModule { id, module, params } => {
            modules::open_module(client, id, &module, params, format).await
        }
        Command::Value {
            id,
            module,
            timeout,
        } => modules::value(client, id, &module, timeout, format).await,
        Command::Context { id, set } => user_context::context(client, id, set, format).await,
        Command::Push { id, user } => user_context::push(client, id, user, format).await,
        Command::Pop { id, scope_id } => user_context::pop(client, id, scope_id, format).await,
        Command::Whoami => access::whoami(client, format).await,
        Command::CanI {
            permission,
            session,
            user,
            module,
        } => access::can_i(client, permission, session, user, module, format).await,
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
            events::watch(client, args, format).await
        }
        Command::Audit(command) => events::audit(client, command, format).await,
    }
}

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

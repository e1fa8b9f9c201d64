//! The event log's commands: `watch`, which follows it, and `audit`, which
//! lists, exports, verifies and pins it.

use std::io::{self, Write};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use sessiond_client::{Client, RetryPolicy, SessionId, WatchOptions};

use super::interrupt::Interrupts;
use super::{Failure, Outcome, unimplemented_by};
use crate::args::{AuditCommand, OutputFormat};
use crate::output::{self, WatchPrinter};

/// How `watch` resumes: patiently, as a follower left running is expected
/// to ride out a server's restart: about a minute of attempts in a row
/// before it gives up.
const WATCH_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 20,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(5),
};

/// What `watch` follows.
#[derive(Debug)]
pub struct WatchArgs {
    /// After this revision; `None`: from now.
    pub after: Option<i64>,
    /// Only this user's sessions.
    pub user: Option<String>,
    /// Only this session.
    pub session: Option<SessionId>,
    /// The open sessions first.
    pub initial_state: bool,
}

/// `watch`: prints each item as it comes, until Ctrl-C (or until the
/// reader of stdout goes away).
pub async fn watch(
    client: &Client,
    args: WatchArgs,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let mut options = WatchOptions::after(args.after.unwrap_or(0));
    options.user = args.user;
    options.session_id = args.session;
    options.send_initial_state = args.initial_state;
    options.retry = Some(WATCH_RETRY);
    let mut interrupts = Interrupts::listen()?;
    let mut watch = client.watch_sessions(options);
    let mut printer = WatchPrinter::new(format);
    loop {
        let item = tokio::select! {
            item = watch.next() => item,
            () = interrupts.next() => return Ok(Outcome::Interrupted),
        };
        let Some(item) = item else {
            return Ok(Outcome::Done);
        };
        if let Err(error) = printer.print(&item?) {
            return unless_closed(error);
        }
    }
}

/// `audit …`.
pub async fn audit(
    client: &Client,
    command: AuditCommand,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    match command {
        AuditCommand::List {
            filter,
            newest_first,
            limit,
        } => {
            let events: Vec<_> = client
                .list_events(filter.to_filter(newest_first))
                .take(limit)
                .try_collect()
                .await
                .map_err(|e| unimplemented_by(e, AUDIT_SERVICE))?;
            if let Err(error) = output::events(format, &events) {
                return unless_closed(error);
            }
        }
        AuditCommand::Export { filter } => {
            let mut events = client.list_events(filter.to_filter(false));
            let mut out = io::BufWriter::new(io::stdout().lock());
            while let Some(event) = events
                .try_next()
                .await
                .map_err(|e| unimplemented_by(e, AUDIT_SERVICE))?
            {
                if let Err(error) = writeln!(out, "{}", output::event_json(&event)) {
                    return unless_closed(error);
                }
            }
            if let Err(error) = out.flush() {
                return unless_closed(error);
            }
        }
        AuditCommand::Verify { from, to } => {
            let verification = client
                .verify_ledger(from, to)
                .await
                .map_err(|e| unimplemented_by(e, AUDIT_SERVICE))?;
            output::one(format, &output::verification(&verification))?;
            if let Some(fault) = &verification.first_bad {
                eprintln!(
                    "sessionctl: the ledger does not verify at revision {}: {}",
                    fault.revision, fault.problem
                );
                return Ok(Outcome::No);
            }
        }
        AuditCommand::Checkpoint => {
            let checkpoint = client
                .get_checkpoint()
                .await
                .map_err(|e| unimplemented_by(e, AUDIT_SERVICE))?;
            output::one(format, &output::checkpoint(&checkpoint))?;
        }
    }
    Ok(Outcome::Done)
}

/// `AuditService`, which servers older than this sessionctl lack.
const AUDIT_SERVICE: &str = "sessiond.v1.AuditService";

/// Done when stdout was closed by its reader (`… | head`), else the error.
fn unless_closed(error: io::Error) -> Result<Outcome, Failure> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Ok(Outcome::Done)
    } else {
        Err(error.into())
    }
}

//! Sessions: whose and what they are (`user`, `info`, `list`), interactive
//! ones (`start`, `touch`), and opening and closing (`open`, `close`).

use std::time::Duration;

use serde_json::json;
use sessiond_client::{Client, SessionFilter, SessionId, SessionKind, SessionState};

use super::{Failure, Outcome};
use crate::args::OutputFormat;
use crate::output::{self, Record};

/// `user`: prints the user a session belongs to.
pub async fn user(
    client: &Client,
    id: SessionId,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let user = client.get_session_user(id).await?;
    output::one(
        format,
        &vec![("session_id", json!(id.get())), ("user", json!(user))],
    )?;
    Ok(Outcome::Done)
}

/// `info`: prints a session's record.
pub async fn info(
    client: &Client,
    id: SessionId,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let info = client.get_session_info(id).await?;
    output::one(format, &output::session(&info))?;
    Ok(Outcome::Done)
}

/// `list`: prints the sessions of `user`, in any of `states` (all when
/// empty), of `kind`.
pub async fn list(
    client: &Client,
    user: Option<String>,
    states: Vec<SessionState>,
    kind: Option<SessionKind>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let mut filter = SessionFilter::new().states(states);
    filter.user = user;
    filter.kind = kind;
    let sessions = client.list_sessions(&filter).await?;
    let records: Vec<Record> = sessions.iter().map(output::session).collect();
    output::many(format, &records, output::SESSION_COLUMNS)?;
    Ok(Outcome::Done)
}

/// `start`: registers an interactive session and prints its record.
pub async fn start(
    client: &Client,
    user: String,
    description: String,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let info = client.start_session(user, description).await?;
    output::one(format, &output::session(&info))?;
    Ok(Outcome::Done)
}

/// `touch`: records activity on a session and prints the time recorded.
pub async fn touch(
    client: &Client,
    id: SessionId,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let time = client.touch_session(id).await?;
    output::one(
        format,
        &vec![
            ("session_id", json!(id.get())),
            ("last_activity_time", output::time(time)),
        ],
    )?;
    Ok(Outcome::Done)
}

/// `open`: opens a clientless session (left open) and prints its record.
pub async fn open(client: &Client, user: String, format: OutputFormat) -> Result<Outcome, Failure> {
    let info = client.open_clientless_session(user).await?;
    output::one(format, &output::session(&info))?;
    Ok(Outcome::Done)
}

/// `close`: ends a session (with `grace`, a clientless one only) and
/// prints its final record.
pub async fn close(
    client: &Client,
    id: SessionId,
    grace: Option<Duration>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let info = match grace {
        None => client.end_session(id).await?,
        Some(grace) => client.close_clientless_session(id, Some(grace)).await?,
    };
    output::one(format, &output::session(&info))?;
    Ok(Outcome::Done)
}

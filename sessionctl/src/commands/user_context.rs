//! A session's user context: read or switch it (`context`), and scopes that
//! are undone later (`push`, `pop`).

use serde_json::json;
use sessiond_client::{Client, ScopeId, SessionId};

use super::{Failure, Outcome};
use crate::args::OutputFormat;
use crate::output;

/// `context`: switches the user context when `set` is given, then prints
/// it (with the user it replaced).
pub async fn context(
    client: &Client,
    id: SessionId,
    set: Option<String>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
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
    Ok(Outcome::Done)
}

/// `push`: opens a scope acting as `user` and prints its id.
pub async fn push(
    client: &Client,
    id: SessionId,
    user: String,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let scope = client.push_user_context(id, user.clone()).await?;
    output::one(format, &output::pushed_scope(id, &user, &scope))?;
    Ok(Outcome::Done)
}

/// `pop`: closes the innermost scope and prints the user context restored.
pub async fn pop(
    client: &Client,
    id: SessionId,
    scope_id: ScopeId,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let popped = client.pop_user_context(id, scope_id).await?;
    output::one(format, &output::popped_scope(id, scope_id, &popped))?;
    Ok(Outcome::Done)
}

//! Conversions between the domain's values and the contract's messages.

use sessiond_proto::v1 as pb;

use crate::error::FieldViolation;
use crate::model::{EndReason, Session, SessionKind, SessionState};

impl From<Session> for pb::SessionInfo {
    fn from(session: Session) -> Self {
        Self {
            session_id: session.id.get(),
            session_uuid: session.uuid.hyphenated().to_string(),
            user: session.user.into_string(),
            kind: pb::SessionKind::from(session.kind).into(),
            state: pb::SessionState::from(session.state).into(),
            start_time: Some(session.start_time.into()),
            end_time: session.end_time.map(Into::into),
            last_activity_time: Some(session.last_activity_time.into()),
            end_reason: session
                .end_reason
                .map_or(pb::EndReason::Unspecified, pb::EndReason::from)
                .into(),
            effective_user: session.effective_user.into_string(),
            client: session.client.as_str().to_owned(),
            user_context_depth: session.user_context_depth,
        }
    }
}

impl From<SessionKind> for pb::SessionKind {
    fn from(kind: SessionKind) -> Self {
        match kind {
            SessionKind::Interactive => Self::Interactive,
            SessionKind::Clientless => Self::Clientless,
        }
    }
}

impl From<SessionState> for pb::SessionState {
    fn from(state: SessionState) -> Self {
        match state {
            SessionState::Open => Self::Open,
            SessionState::Closing => Self::Closing,
            SessionState::Ended => Self::Ended,
        }
    }
}

impl From<EndReason> for pb::EndReason {
    fn from(reason: EndReason) -> Self {
        match reason {
            EndReason::ClosedByClient => Self::ClosedByClient,
            EndReason::IdleTimeout => Self::IdleTimeout,
            EndReason::MaxLifetime => Self::MaxLifetime,
            EndReason::ServerShutdown => Self::ServerShutdown,
            EndReason::ServerRestart => Self::ServerRestart,
        }
    }
}

/// A kind filter: unspecified matches any kind.
pub fn kind_filter(field: &str, value: i32) -> Result<Option<SessionKind>, FieldViolation> {
    match pb::SessionKind::try_from(value) {
        Ok(pb::SessionKind::Unspecified) => Ok(None),
        Ok(pb::SessionKind::Interactive) => Ok(Some(SessionKind::Interactive)),
        Ok(pb::SessionKind::Clientless) => Ok(Some(SessionKind::Clientless)),
        Err(_) => Err(FieldViolation::new(field, "unknown session kind")),
    }
}

/// A state filter: unspecified matches any state.
pub fn state_filter(field: &str, value: i32) -> Result<Option<SessionState>, FieldViolation> {
    match pb::SessionState::try_from(value) {
        Ok(pb::SessionState::Unspecified) => Ok(None),
        Ok(pb::SessionState::Open) => Ok(Some(SessionState::Open)),
        Ok(pb::SessionState::Closing) => Ok(Some(SessionState::Closing)),
        Ok(pb::SessionState::Ended) => Ok(Some(SessionState::Ended)),
        Err(_) => Err(FieldViolation::new(field, "unknown session state")),
    }
}

/// The longest grace or timeout a caller may ask for.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A caller's wait (a grace period, a timeout): unset is `None`; it must not
/// be negative nor longer than [`MAX_WAIT`].
pub fn wait(
    field: &str,
    value: Option<prost_types::Duration>,
) -> Result<Option<std::time::Duration>, FieldViolation> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || FieldViolation::new(field, "must be between 0 and 1 hour");
    let wait = std::time::Duration::try_from(value).map_err(|_| invalid())?;
    if wait > MAX_WAIT {
        return Err(invalid());
    }
    Ok(Some(wait))
}

//! Sessions: the session record and its kinds, states and end reasons, and
//! the filter and page of a listing.

use std::time::SystemTime;

use sessiond_proto::v1 as pb;
use uuid::Uuid;

use crate::contract_enum::contract_enum;
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::time::{optional_time, required_time};

contract_enum! {
    /// Who drives a session (the contract's `SessionKind`).
    pub enum SessionKind {
        /// A client logged in; registered with `StartSession`.
        Interactive = 1, "interactive", "SESSION_KIND_INTERACTIVE";
        /// A headless session opened on behalf of a user to run modules.
        Clientless = 2, "clientless", "SESSION_KIND_CLIENTLESS";
    }
}

contract_enum! {
    /// Where a session is in its life: open → closing → ended (the
    /// contract's `SessionState`).
    pub enum SessionState {
        /// The session is live.
        Open = 1, "open", "SESSION_STATE_OPEN";
        /// Clientless only: a close was requested; running modules are
        /// concluding.
        Closing = 2, "closing", "SESSION_STATE_CLOSING";
        /// The session is over; its record stays readable.
        Ended = 3, "ended", "SESSION_STATE_ENDED";
    }
}

contract_enum! {
    /// Why a session ended (the contract's `EndReason`).
    pub enum EndReason {
        /// `EndSession` or `CloseClientlessSession` was called.
        ClosedByClient = 1, "closed_by_client", "END_REASON_CLOSED_BY_CLIENT";
        /// No activity for longer than the server's idle timeout.
        IdleTimeout = 2, "idle_timeout", "END_REASON_IDLE_TIMEOUT";
        /// The session outlived the server's maximum lifetime.
        MaxLifetime = 3, "max_lifetime", "END_REASON_MAX_LIFETIME";
        /// The server shut down and ended its clientless sessions.
        ServerShutdown = 4, "server_shutdown", "END_REASON_SERVER_SHUTDOWN";
        /// The server that owned the session stopped without ending it; it
        /// was ended when the server started again.
        ServerRestart = 5, "server_restart", "END_REASON_SERVER_RESTART";
        /// The replica that owned the session stopped renewing its lease;
        /// another replica ended it.
        NodeLost = 6, "node_lost", "END_REASON_NODE_LOST";
    }
}

/// The record of one session (the contract's `SessionInfo`; the seed's
/// `SessionInfo` and "DT 443" row).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The numeric id.
    pub session_id: SessionId,
    /// The unique UUID (version 7).
    pub session_uuid: Uuid,
    /// The user the session belongs to; never changes.
    pub user: String,
    /// Interactive or clientless.
    pub kind: SessionKind,
    /// Open, closing or ended.
    pub state: SessionState,
    /// When the session started.
    pub start_time: SystemTime,
    /// When it ended; `None` while it has not.
    pub end_time: Option<SystemTime>,
    /// The last time it was used.
    pub last_activity_time: SystemTime,
    /// Why it ended; `None` while it has not.
    pub end_reason: Option<EndReason>,
    /// The user that work in the session currently acts as.
    pub effective_user: String,
    /// A description of the client that started it; empty for clientless
    /// sessions.
    pub client: String,
    /// How many user-context scopes are pushed and not yet popped.
    pub user_context_depth: u32,
    /// The node id of the server replica that owns the session (runs its
    /// modules).
    pub owner_node: String,
}

impl SessionInfo {
    /// Whether the session has ended.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.state == SessionState::Ended
    }

    /// Reads a record from a response; `None` (unset) is an invalid
    /// response.
    pub(crate) fn from_response(session: Option<pb::SessionInfo>) -> Result<Self> {
        session
            .ok_or_else(|| Error::invalid_response("session is unset"))
            .and_then(Self::try_from)
    }
}

impl TryFrom<pb::SessionInfo> for SessionInfo {
    type Error = Error;

    fn try_from(s: pb::SessionInfo) -> Result<Self> {
        let session_uuid = Uuid::parse_str(&s.session_uuid).map_err(|e| {
            Error::invalid_response(format!("session_uuid {:?}: {e}", s.session_uuid))
        })?;
        Ok(Self {
            session_id: SessionId::new(s.session_id),
            session_uuid,
            user: s.user,
            kind: SessionKind::from_wire(s.kind)
                .ok_or_else(|| Error::invalid_response("kind is unspecified"))?,
            state: SessionState::from_wire(s.state)
                .ok_or_else(|| Error::invalid_response("state is unspecified"))?,
            start_time: required_time("start_time", s.start_time)?,
            end_time: optional_time("end_time", s.end_time)?,
            last_activity_time: required_time("last_activity_time", s.last_activity_time)?,
            end_reason: EndReason::from_wire(s.end_reason),
            effective_user: s.effective_user,
            client: s.client,
            user_context_depth: s.user_context_depth,
            owner_node: s.owner_node,
        })
    }
}

/// Which sessions [`Client::list_sessions`](crate::Client::list_sessions)
/// returns; unset filters match everything.
///
/// ```
/// use sessiond_client::{SessionFilter, SessionKind, SessionState};
///
/// let open_clientless_of_r41 = SessionFilter::new()
///     .user("R41")
///     .kind(SessionKind::Clientless)
///     .state(SessionState::Open);
/// assert_eq!(open_clientless_of_r41.user.as_deref(), Some("R41"));
///
/// let not_ended = SessionFilter::new().states([SessionState::Open, SessionState::Closing]);
/// assert!(not_ended.wants_state(SessionState::Closing));
/// assert!(!not_ended.wants_state(SessionState::Ended));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions of this user.
    pub user: Option<String>,
    /// Only sessions of this kind.
    pub kind: Option<SessionKind>,
    /// Only sessions in this state (or in one of [`states`](Self::states)).
    pub state: Option<SessionState>,
    /// Only sessions in one of these states (or in [`state`](Self::state));
    /// with `state`, empty means any state.
    pub states: Vec<SessionState>,
    /// Only sessions that started at or after this time.
    pub started_after: Option<SystemTime>,
    /// Only sessions that started before this time.
    pub started_before: Option<SystemTime>,
    /// Newest first (the server's pages go on towards older sessions).
    pub newest_first: bool,
}

impl SessionFilter {
    /// A filter that matches every session.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only sessions of `user`.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only sessions of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: SessionKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only sessions in `state`.
    #[must_use]
    pub fn state(mut self, state: SessionState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only sessions that started at or after `time`.
    #[must_use]
    pub fn started_after(mut self, time: SystemTime) -> Self {
        self.started_after = Some(time);
        self
    }

    /// Only sessions that started before `time`.
    #[must_use]
    pub fn started_before(mut self, time: SystemTime) -> Self {
        self.started_before = Some(time);
        self
    }

    /// Newest sessions first.
    #[must_use]
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// Only sessions in one of `states` (added to those already wanted).
    #[must_use]
    pub fn states(mut self, states: impl IntoIterator<Item = SessionState>) -> Self {
        self.states.extend(states);
        self
    }

    /// Whether a session in `state` passes the filter's states: it is
    /// [`state`](Self::state) or one of [`states`](Self::states), or
    /// neither is set.
    #[must_use]
    pub fn wants_state(&self, state: SessionState) -> bool {
        (self.state.is_none() && self.states.is_empty())
            || self.state == Some(state)
            || self.states.contains(&state)
    }
}

/// One page of a session listing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionPage {
    /// The sessions of this page, in ascending id order.
    pub sessions: Vec<SessionInfo>,
    /// The token of the next page; `None` when this was the last one.
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_map_wire_numbers_and_names() {
        assert_eq!(SessionKind::from_wire(0), None);
        assert_eq!(SessionKind::from_wire(2), Some(SessionKind::Clientless));
        assert_eq!(SessionState::from_wire(9), Some(SessionState::Unknown(9)));
        assert_eq!(SessionState::Unknown(9).wire(), 9);
        assert_eq!(
            EndReason::IdleTimeout.contract_name(),
            "END_REASON_IDLE_TIMEOUT"
        );
        assert_eq!("ENDED".parse::<SessionState>(), Ok(SessionState::Ended));
        assert_eq!(
            "session_kind_interactive".parse::<SessionKind>(),
            Ok(SessionKind::Interactive)
        );
        let error = "gone".parse::<SessionState>().unwrap_err();
        assert!(
            error.to_string().contains("open, closing, ended"),
            "{error}"
        );
        for reason in EndReason::ALL {
            assert_eq!(EndReason::from_wire(reason.wire()), Some(*reason));
        }
    }

    #[test]
    fn a_record_needs_its_uuid_and_times() {
        let now = prost_types::Timestamp::from(SystemTime::now());
        let record = pb::SessionInfo {
            session_id: 3,
            session_uuid: Uuid::now_v7().to_string(),
            user: "R41".into(),
            kind: 2,
            state: 1,
            start_time: Some(now),
            last_activity_time: Some(now),
            effective_user: "R41".into(),
            ..pb::SessionInfo::default()
        };
        let info = SessionInfo::try_from(record.clone()).unwrap();
        assert_eq!(info.session_id, SessionId::new(3));
        assert_eq!(info.kind, SessionKind::Clientless);
        assert_eq!(info.end_reason, None);
        assert!(!info.is_ended());

        let bad_uuid = pb::SessionInfo {
            session_uuid: "nope".into(),
            ..record.clone()
        };
        assert!(matches!(
            SessionInfo::try_from(bad_uuid),
            Err(Error::InvalidResponse(_))
        ));
        let no_start = pb::SessionInfo {
            start_time: None,
            ..record
        };
        assert!(matches!(
            SessionInfo::try_from(no_start),
            Err(Error::InvalidResponse(_))
        ));
        assert!(SessionInfo::from_response(None).is_err());
    }
}

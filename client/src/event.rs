//! Events: one change to a session as the server's log recorded it, its
//! kinds, and the hash that chains it to the event before it; the filter
//! and page of an audit listing.

use std::fmt;
use std::time::SystemTime;

use sessiond_proto::v1 as pb;
use uuid::Uuid;

use crate::access::AuthenticationMethod;
use crate::contract_enum::contract_enum;
use crate::error::{Error, Result};
use crate::ids::{RunId, ScopeId, SessionId};
use crate::module::{ModuleFailureKind, RunState};
use crate::session::{EndReason, SessionInfo};
use crate::time::required_time;

contract_enum! {
    /// What an event records (the contract's `EventKind`).
    pub enum EventKind {
        /// An interactive session was started.
        SessionStarted = 1, "session_started", "EVENT_KIND_SESSION_STARTED";
        /// A clientless session was opened.
        ClientlessSessionOpened = 2, "clientless_session_opened", "EVENT_KIND_CLIENTLESS_SESSION_OPENED";
        /// A clientless session began closing; its
        /// [`end_reason`](Event::end_reason) is why it will end.
        SessionClosing = 3, "session_closing", "EVENT_KIND_SESSION_CLOSING";
        /// A session ended; its [`end_reason`](Event::end_reason) says why.
        SessionEnded = 4, "session_ended", "EVENT_KIND_SESSION_ENDED";
        /// The session's user context was replaced.
        UserContextSet = 5, "user_context_set", "EVENT_KIND_USER_CONTEXT_SET";
        /// A user-context scope was pushed.
        UserContextPushed = 6, "user_context_pushed", "EVENT_KIND_USER_CONTEXT_PUSHED";
        /// A user-context scope was popped.
        UserContextPopped = 7, "user_context_popped", "EVENT_KIND_USER_CONTEXT_POPPED";
        /// A module run started.
        RunStarted = 8, "run_started", "EVENT_KIND_RUN_STARTED";
        /// A module run concluded.
        RunConcluded = 9, "run_concluded", "EVENT_KIND_RUN_CONCLUDED";
        /// A call was refused (`UNAUTHENTICATED` or `PERMISSION_DENIED`).
        /// In the audit trail only, never on a watch.
        CallRefused = 10, "call_refused", "EVENT_KIND_CALL_REFUSED";
        /// On a watch with the initial state only: an open session as it
        /// was at the initial state's revision, its record in
        /// [`session`](Event::session). Not in the log: it has no hash.
        SessionSnapshot = 11, "session_snapshot", "EVENT_KIND_SESSION_SNAPSHOT";
    }
}

/// A SHA-256 hash of the event log: an event's own, the one it chains to,
/// or a checkpoint's. Displayed in lowercase hex, as `sha256sum` prints
/// hashes.
///
/// ```
/// use sessiond_client::LedgerHash;
///
/// let zero = LedgerHash::from_bytes([0; 32]);
/// assert_eq!(zero.to_string(), "0".repeat(64));
/// assert_eq!(zero.to_string().parse::<LedgerHash>(), Ok(zero));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LedgerHash([u8; 32]);

impl LedgerHash {
    /// The hash with these bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a required hash field of a response (32 bytes).
    pub(crate) fn required(field: &'static str, bytes: &[u8]) -> Result<Self> {
        <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| {
            Error::invalid_response(format!("{field} has {} bytes, not 32", bytes.len()))
        })
    }

    /// Reads an optional hash field of a response (empty: `None`).
    pub(crate) fn optional(field: &'static str, bytes: &[u8]) -> Result<Option<Self>> {
        if bytes.is_empty() {
            Ok(None)
        } else {
            Self::required(field, bytes).map(Some)
        }
    }
}

impl fmt::Display for LedgerHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for LedgerHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerHash({self})")
    }
}

/// A text that is not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 hash in hex (64 hex digits)")]
pub struct InvalidHash(pub String);

impl std::str::FromStr for LedgerHash {
    type Err = InvalidHash;

    /// Parses 64 hex digits, in either case.
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        let invalid = || InvalidHash(s.to_owned());
        let digits = s.trim().as_bytes();
        if digits.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

/// One change to a session, as the server's event log recorded it (the
/// contract's `Event`). Fields that do not apply to an event's
/// [`kind`](Event::kind) are `None` or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Its position in the log: strictly increasing in commit order. A
    /// snapshot carries the initial state's revision.
    pub revision: i64,
    /// When the change was made (a snapshot: the session's last activity).
    pub time: SystemTime,
    /// What changed.
    pub kind: EventKind,
    /// The session it changed; `None` for a refused call that named none.
    pub session_id: Option<SessionId>,
    /// The session's UUID, when it names a session.
    pub session_uuid: Option<Uuid>,
    /// The session's user.
    pub user: String,
    /// The user the session acts as after the change.
    pub effective_user: String,
    /// Who made the change: the caller's subject, `"anonymous"` without
    /// authentication, `"system:sessiond"` for what the server did by
    /// itself.
    pub subject: String,
    /// How the caller proved who it is, when the change came from a call.
    pub authentication_method: Option<AuthenticationMethod>,
    /// The caller's network address, when the change came from a call.
    pub peer: String,
    /// The run, for run events.
    pub run_id: Option<RunId>,
    /// The run's module, for run events.
    pub module_id: String,
    /// Why the session ended (or will end, for
    /// [`EventKind::SessionClosing`]).
    pub end_reason: Option<EndReason>,
    /// How a concluded run ended.
    pub run_state: Option<RunState>,
    /// Why a failed run failed.
    pub failure_kind: Option<ModuleFailureKind>,
    /// The id of the request that caused the change (the caller's
    /// `x-request-id`, else one the server made up).
    pub request_id: String,
    /// The W3C `traceparent` of the call that caused the change, if any.
    pub traceparent: String,
    /// The scope pushed or popped, for user-context scope events.
    pub scope_id: Option<ScopeId>,
    /// The gRPC method refused, for [`EventKind::CallRefused`].
    pub method: String,
    /// The `ErrorInfo` reason of the refusal, for
    /// [`EventKind::CallRefused`].
    pub error_reason: String,
    /// The session's record, for [`EventKind::SessionSnapshot`] only.
    pub session: Option<SessionInfo>,
    /// The hash of the event before this one; `None` for a snapshot.
    pub prev_hash: Option<LedgerHash>,
    /// This event's hash; `None` for a snapshot.
    pub hash: Option<LedgerHash>,
}

impl TryFrom<pb::Event> for Event {
    type Error = Error;

    fn try_from(e: pb::Event) -> Result<Self> {
        let positive = |id: i64| (id > 0).then_some(id);
        let session_uuid = if e.session_uuid.is_empty() {
            None
        } else {
            Some(Uuid::parse_str(&e.session_uuid).map_err(|error| {
                Error::invalid_response(format!("session_uuid {:?}: {error}", e.session_uuid))
            })?)
        };
        Ok(Self {
            revision: e.revision,
            time: required_time("time", e.time)?,
            kind: EventKind::from_wire(e.kind)
                .ok_or_else(|| Error::invalid_response("kind is unspecified"))?,
            session_id: positive(e.session_id).map(SessionId::new),
            session_uuid,
            user: e.user,
            effective_user: e.effective_user,
            subject: e.subject,
            authentication_method: AuthenticationMethod::from_wire(e.authentication_method),
            peer: e.peer,
            run_id: positive(e.run_id).map(RunId::new),
            module_id: e.module_id,
            end_reason: EndReason::from_wire(e.end_reason),
            run_state: RunState::from_wire(e.run_state),
            failure_kind: ModuleFailureKind::from_wire(e.failure_kind),
            request_id: e.request_id,
            traceparent: e.traceparent,
            scope_id: positive(e.scope_id).map(ScopeId::new),
            method: e.method,
            error_reason: e.error_reason,
            session: e.session.map(SessionInfo::try_from).transpose()?,
            prev_hash: LedgerHash::optional("prev_hash", &e.prev_hash)?,
            hash: LedgerHash::optional("hash", &e.hash)?,
        })
    }
}

/// Which events [`Client::list_events`](crate::Client::list_events)
/// returns, and in which order; unset filters match everything.
///
/// ```
/// use sessiond_client::{EventFilter, EventKind, SessionId};
///
/// let ends_of_session_7 = EventFilter::new()
///     .session(SessionId::new(7))
///     .kind(EventKind::SessionEnded);
/// assert_eq!(ends_of_session_7.kinds, [EventKind::SessionEnded]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of this session.
    pub session_id: Option<SessionId>,
    /// Only events of this user's sessions.
    pub user: Option<String>,
    /// Only events caused by this subject.
    pub subject: Option<String>,
    /// Only events of these kinds; empty: every kind.
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time.
    pub start_time: Option<SystemTime>,
    /// Only events before this time.
    pub end_time: Option<SystemTime>,
    /// Only events with a greater revision (0: from the oldest retained).
    pub after_revision: i64,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

impl EventFilter {
    /// A filter that matches every event, oldest first.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events of session `session_id`.
    #[must_use]
    pub fn session(mut self, session_id: SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// Only events of `user`'s sessions.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only events caused by `subject`.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Also events of `kind` (the first call narrows the filter to it).
    #[must_use]
    pub fn kind(mut self, kind: EventKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Only events at or after `time`.
    #[must_use]
    pub fn since(mut self, time: SystemTime) -> Self {
        self.start_time = Some(time);
        self
    }

    /// Only events before `time`.
    #[must_use]
    pub fn until(mut self, time: SystemTime) -> Self {
        self.end_time = Some(time);
        self
    }

    /// Only events after revision `revision`.
    #[must_use]
    pub fn after_revision(mut self, revision: i64) -> Self {
        self.after_revision = revision;
        self
    }

    /// Newest first.
    #[must_use]
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// The request for one page of this listing.
    pub(crate) fn to_request(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> pb::ListEventsRequest {
        pb::ListEventsRequest {
            session_id: self.session_id.map_or(0, SessionId::get),
            user: self.user.clone().unwrap_or_default(),
            subject: self.subject.clone().unwrap_or_default(),
            kinds: self.kinds.iter().map(|kind| kind.wire()).collect(),
            start_time: self.start_time.map(prost_types::Timestamp::from),
            end_time: self.end_time.map(prost_types::Timestamp::from),
            after_revision: self.after_revision,
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            page_token: page_token.unwrap_or_default().to_owned(),
            newest_first: self.newest_first,
        }
    }
}

/// One page of an audit listing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventPage {
    /// The events of this page, in revision order (descending when newest
    /// first).
    pub events: Vec<Event>,
    /// The token of the next page; `None` when this was the last one.
    pub next_page_token: Option<String>,
    /// Events up to this revision were compacted away (0: none were).
    pub compact_revision: i64,
}

impl TryFrom<pb::ListEventsResponse> for EventPage {
    type Error = Error;

    fn try_from(response: pb::ListEventsResponse) -> Result<Self> {
        Ok(Self {
            events: response
                .events
                .into_iter()
                .map(Event::try_from)
                .collect::<Result<_>>()?,
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
            compact_revision: response.compact_revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_the_contract_is_mirrored() {
        for &kind in EventKind::ALL {
            let contract = pb::EventKind::try_from(kind.wire()).unwrap();
            assert_eq!(contract.as_str_name(), kind.contract_name());
            assert_eq!(
                Some(kind.name()),
                kind.contract_name()
                    .strip_prefix("EVENT_KIND_")
                    .map(str::to_lowercase)
                    .as_deref()
            );
        }
        assert_eq!(
            EventKind::ALL.len(),
            (1..=i32::from(u8::MAX))
                .filter(|n| pb::EventKind::try_from(*n).is_ok())
                .count()
        );
        assert_eq!("session_ended".parse(), Ok(EventKind::SessionEnded));
    }

    #[test]
    fn hashes_print_and_parse_as_hex_and_must_have_32_bytes() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let hash = LedgerHash::from_bytes(bytes);
        let hex = hash.to_string();
        assert!(hex.starts_with("ab00") && hex.ends_with("0001"), "{hex}");
        assert_eq!(hex.to_uppercase().parse(), Ok(hash));
        assert!("ab".parse::<LedgerHash>().is_err());
        assert!("zz".repeat(32).parse::<LedgerHash>().is_err());
        assert_eq!(LedgerHash::optional("hash", &[]).unwrap(), None);
        assert!(LedgerHash::optional("hash", &[1, 2, 3]).is_err());
        assert!(LedgerHash::required("head_hash", &[]).is_err());
    }

    #[test]
    fn an_event_reads_unset_fields_as_none() {
        let event = pb::Event {
            revision: 9,
            time: Some(SystemTime::now().into()),
            kind: pb::EventKind::SessionEnded.into(),
            session_id: 4,
            session_uuid: Uuid::now_v7().to_string(),
            user: "R41".into(),
            end_reason: 1,
            prev_hash: vec![0; 32],
            hash: vec![7; 32],
            ..pb::Event::default()
        };
        let read = Event::try_from(event.clone()).unwrap();
        assert_eq!(read.session_id, Some(SessionId::new(4)));
        assert_eq!(read.end_reason, Some(EndReason::ClosedByClient));
        assert_eq!(read.run_id, None);
        assert_eq!(read.scope_id, None);
        assert_eq!(read.run_state, None);
        assert_eq!(read.hash, Some(LedgerHash::from_bytes([7; 32])));
        let no_time = pb::Event {
            time: None,
            ..event.clone()
        };
        assert!(Event::try_from(no_time).is_err());
        let short_hash = pb::Event {
            hash: vec![1],
            ..event
        };
        assert!(Event::try_from(short_hash).is_err());
    }

    #[test]
    fn a_filter_leaves_what_it_does_not_name_unset() {
        let request = EventFilter::new()
            .user("R41")
            .kind(EventKind::SessionStarted)
            .kind(EventKind::SessionEnded)
            .newest_first()
            .to_request(50, Some("12"));
        assert_eq!(request.user, "R41");
        assert_eq!(request.kinds, [1, 4]);
        assert!(request.newest_first);
        assert_eq!((request.page_size, request.page_token.as_str()), (50, "12"));
        assert_eq!(request.session_id, 0);
        assert!(request.subject.is_empty() && request.start_time.is_none());
    }
}

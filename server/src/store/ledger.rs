//! The event log's chain: how a change becomes an event of the log when its
//! transaction commits — its revision (one more than the head's), its
//! canonical encoding, and its hash chained to the event before — and how a
//! stored event is checked against that.
//!
//! The canonical encoding of an event is the protobuf encoding of the
//! contract's `sessiond.v1.Event` with `prev_hash`, `hash` and `session`
//! unset (prost writes fields in field-number order, once each); the store
//! keeps exactly those bytes, so that a later version of the contract that
//! adds fields does not change the hash of an event already recorded. The
//! hash is SHA-256 over the previous event's hash followed by the encoding.

use std::sync::Arc;

use prost::Message;
use sessiond_proto::v1 as pb;
use sha2::{Digest, Sha256};

use crate::events::Cause;
use crate::model::{Change, EventKind, Result};

/// The `prev_hash` of the first event ever.
pub const GENESIS: [u8; 32] = [0; 32];

/// The last event of the log: its revision and hash (0 and [`GENESIS`]
/// before the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The revision.
    pub revision: i64,
    /// The hash.
    pub hash: [u8; 32],
}

impl Default for Head {
    fn default() -> Self {
        Self {
            revision: 0,
            hash: GENESIS,
        }
    }
}

/// The head of the log and its compaction checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerHead {
    /// The last event.
    pub head: Head,
    /// The last event compacted away (revision 0: none was); the oldest
    /// retained event's `prev_hash` is its hash.
    pub compacted: Head,
}

/// A change, sealed for the log: the columns it is found by, its encoding
/// and its place in the chain.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// Its revision.
    pub revision: i64,
    /// When the change was made, in microseconds since the epoch.
    pub time: i64,
    /// Its kind's number in the contract.
    pub kind: i32,
    /// The session it changed.
    pub session_id: Option<i64>,
    /// That session's user.
    pub user: Option<String>,
    /// Who made it.
    pub subject: String,
    /// The canonical encoding.
    pub body: Vec<u8>,
    /// The previous event's hash.
    pub prev_hash: [u8; 32],
    /// This event's hash.
    pub hash: [u8; 32],
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its revision.
    pub revision: i64,
    /// The canonical encoding.
    pub body: Vec<u8>,
    /// The previous event's hash.
    pub prev_hash: Vec<u8>,
    /// Its hash.
    pub hash: Vec<u8>,
}

/// A change made by `cause`, waiting for its transaction to commit.
pub type Pending = (Change, Arc<Cause>);

/// Seals `changes`, in order, after `head`, and moves `head` past them.
#[must_use]
pub fn seal(head: &mut Head, changes: &[Pending]) -> Vec<Sealed> {
    changes
        .iter()
        .map(|(change, cause)| {
            let revision = head.revision + 1;
            let body = encode(revision, change, cause).encode_to_vec();
            let prev_hash = head.hash;
            let hash = chain(&prev_hash, &body);
            *head = Head { revision, hash };
            Sealed {
                revision,
                time: change.time.unix_micros(),
                kind: kind_number(change.kind),
                session_id: change.session.as_ref().map(|s| s.id.get()),
                user: change
                    .session
                    .as_ref()
                    .map(|s| s.user.as_str().to_owned())
                    .or_else(|| change.refusal.as_ref().and_then(|r| r.user.clone())),
                subject: cause.subject().to_owned(),
                body,
                prev_hash,
                hash,
            }
        })
        .collect()
}

/// The hash of an event whose canonical encoding is `body`, after one whose
/// hash is `prev`.
#[must_use]
pub fn chain(prev: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(body);
    hasher.finalize().into()
}

/// A 32-byte hash read from the store.
///
/// # Errors
/// [`crate::Error::Internal`] when it is not 32 bytes long.
pub fn hash_of(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| crate::Error::Internal(format!("a stored hash has {} bytes", bytes.len())))
}

impl StoredEvent {
    /// The event, as the contract carries it.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] when its encoding does not decode.
    pub fn decode(&self) -> Result<pb::Event> {
        let mut event = pb::Event::decode(self.body.as_slice()).map_err(|e| {
            crate::Error::Internal(format!("event {} does not decode: {e}", self.revision))
        })?;
        event.prev_hash.clone_from(&self.prev_hash);
        event.hash.clone_from(&self.hash);
        Ok(event)
    }

    /// What is wrong with this event as the successor of an event of
    /// revision `prev_revision` and hash `prev_hash`; `None` when nothing.
    #[must_use]
    pub fn fault(&self, prev_revision: i64, prev_hash: &[u8]) -> Option<String> {
        if self.revision != prev_revision + 1 {
            return Some(format!(
                "revision {} follows revision {prev_revision}: events are missing",
                self.revision
            ));
        }
        if self.prev_hash != prev_hash {
            return Some("its prev_hash is not the hash of the event before it".to_owned());
        }
        if chain(prev_hash, &self.body).as_slice() != self.hash {
            return Some("its hash does not match its contents".to_owned());
        }
        match pb::Event::decode(self.body.as_slice()) {
            Ok(event) if event.revision == self.revision => None,
            Ok(event) => Some(format!("its contents say revision {}", event.revision)),
            Err(error) => Some(format!("its contents do not decode: {error}")),
        }
    }
}

/// The contract's number of `kind`.
#[must_use]
pub fn kind_number(kind: EventKind) -> i32 {
    pb::EventKind::from(kind) as i32
}

impl From<EventKind> for pb::EventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::SessionStarted => Self::SessionStarted,
            EventKind::ClientlessSessionOpened => Self::ClientlessSessionOpened,
            EventKind::SessionClosing => Self::SessionClosing,
            EventKind::SessionEnded => Self::SessionEnded,
            EventKind::UserContextSet => Self::UserContextSet,
            EventKind::UserContextPushed => Self::UserContextPushed,
            EventKind::UserContextPopped => Self::UserContextPopped,
            EventKind::RunStarted => Self::RunStarted,
            EventKind::RunConcluded => Self::RunConcluded,
            EventKind::CallRefused => Self::CallRefused,
        }
    }
}

/// The event `change`, made by `cause`, at `revision`, without its hashes.
fn encode(revision: i64, change: &Change, cause: &Cause) -> pb::Event {
    let session = change.session.as_ref();
    let refusal = change.refusal.as_ref();
    let method = match (cause.method(), cause.is_anonymous()) {
        (Some(method), _) => pb::AuthenticationMethod::from(method),
        (None, true) => pb::AuthenticationMethod::None,
        (None, false) => pb::AuthenticationMethod::Unspecified,
    };
    pb::Event {
        revision,
        time: Some(prost_types::Timestamp::from(change.time)),
        kind: kind_number(change.kind),
        session_id: session
            .map(|s| s.id.get())
            .or_else(|| refusal.and_then(|r| r.session_id.map(|id| id.get())))
            .unwrap_or_default(),
        session_uuid: session.map(|s| s.uuid.to_string()).unwrap_or_default(),
        user: session
            .map(|s| s.user.as_str().to_owned())
            .or_else(|| refusal.and_then(|r| r.user.clone()))
            .unwrap_or_default(),
        effective_user: session
            .map(|s| s.effective_user.as_str().to_owned())
            .unwrap_or_default(),
        subject: cause.subject().to_owned(),
        authentication_method: method as i32,
        peer: cause.peer.map(|peer| peer.to_string()).unwrap_or_default(),
        run_id: change
            .run
            .as_ref()
            .map(|(id, _)| id.get())
            .unwrap_or_default(),
        module_id: change
            .run
            .as_ref()
            .map(|(_, module)| module.as_str().to_owned())
            .unwrap_or_default(),
        end_reason: change
            .end_reason
            .map_or(0, |reason| pb::EndReason::from(reason) as i32),
        run_state: change
            .run_state
            .map_or(0, |(state, _)| pb::RunState::from(state) as i32),
        failure_kind: change
            .run_state
            .and_then(|(_, kind)| kind)
            .map_or(0, |kind| pb::ModuleFailureKind::from(kind) as i32),
        request_id: cause.request_id.to_string(),
        traceparent: cause.traceparent.clone().unwrap_or_default(),
        scope_id: change.scope_id.map(|id| id.get()).unwrap_or_default(),
        method: refusal.map(|r| r.method.clone()).unwrap_or_default(),
        error_reason: refusal.map(|r| r.reason.clone()).unwrap_or_default(),
        session: None,
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Refusal, Timestamp};

    fn refused(n: i64) -> Pending {
        let refusal = Refusal {
            method: "/sessiond.v1.SessionService/EndSession".to_owned(),
            reason: "PERMISSION_DENIED".to_owned(),
            session_id: None,
            user: Some(format!("user-{n}")),
        };
        (
            Change::refused(refusal, Timestamp::from_unix_micros(n)),
            Cause::system(),
        )
    }

    fn stored(sealed: &Sealed) -> StoredEvent {
        StoredEvent {
            revision: sealed.revision,
            body: sealed.body.clone(),
            prev_hash: sealed.prev_hash.to_vec(),
            hash: sealed.hash.to_vec(),
        }
    }

    #[test]
    fn sealed_events_chain_from_the_head_and_verify() {
        let mut head = Head::default();
        let sealed = seal(&mut head, &[refused(1), refused(2), refused(3)]);
        assert_eq!(head.revision, 3);
        assert_eq!(head.hash, sealed[2].hash);
        let (mut revision, mut hash) = (0, GENESIS.to_vec());
        for event in &sealed {
            assert_eq!(stored(event).fault(revision, &hash), None);
            assert_eq!(stored(event).decode().unwrap().revision, event.revision);
            (revision, hash) = (event.revision, event.hash.to_vec());
        }
    }

    #[test]
    fn an_altered_missing_or_rechained_event_is_found() {
        let mut head = Head::default();
        let sealed = seal(&mut head, &[refused(1), refused(2), refused(3)]);
        let mut altered = stored(&sealed[1]);
        let last = altered.body.len() - 1;
        altered.body[last] ^= 1;
        assert!(
            altered.fault(1, &sealed[0].hash).is_some(),
            "an edited body"
        );
        assert!(
            stored(&sealed[2]).fault(1, &sealed[0].hash).is_some(),
            "a missing event"
        );
        let mut rehashed = stored(&sealed[1]);
        rehashed.prev_hash = GENESIS.to_vec();
        rehashed.hash = chain(&GENESIS, &rehashed.body).to_vec();
        assert!(
            rehashed.fault(1, &sealed[0].hash).is_some(),
            "an event chained to another"
        );
    }
}

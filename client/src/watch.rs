//! Watching sessions: what a watch asks for ([`WatchOptions`]), what it
//! delivers ([`WatchEvent`]), and where it resumes after an interruption
//! ([`Position`]). The stream that connects, reads and reconnects is
//! [`Client::watch_sessions`](crate::Client::watch_sessions)'s, in
//! `client/watch.rs`.

use std::collections::VecDeque;

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::watch_sessions_response::Message;

use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::ids::SessionId;
use crate::retry::RetryPolicy;

/// What [`Client::watch_sessions`](crate::Client::watch_sessions) watches
/// (the contract's `WatchSessionsRequest`), and how patiently it resumes.
///
/// ```
/// use sessiond_client::{RetryPolicy, SessionId, WatchOptions};
///
/// // R41's sessions as they are now, then every change to them.
/// let r41 = WatchOptions::from_now().user("R41").initial_state();
/// assert!(r41.send_initial_state);
///
/// // Session 7's changes after revision 1200, never resuming.
/// let once = WatchOptions::after(1200)
///     .session(SessionId::new(7))
///     .retry(RetryPolicy::never());
/// assert_eq!(once.after_revision, 1200);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// 0: the changes from now on; N > 0: every change after revision N
    /// (read from the log; [`Error::RevisionCompacted`] when the server no
    /// longer keeps them).
    pub after_revision: i64,
    /// Only this user's sessions.
    pub user: Option<String>,
    /// Only this session.
    pub session_id: Option<SessionId>,
    /// First the open sessions as they are now (snapshots), then
    /// [`WatchEvent::InitialStateEnd`], then every change after it. Only
    /// with `after_revision` 0.
    pub send_initial_state: bool,
    /// How the watch resumes after an interruption; `None`: as the client's
    /// [`RetryPolicy`]. [`RetryPolicy::never`] makes a watch end with the
    /// first interruption.
    pub retry: Option<RetryPolicy>,
}

impl WatchOptions {
    /// The changes from now on.
    #[must_use]
    pub fn from_now() -> Self {
        Self::default()
    }

    /// Every change after revision `revision` (for example the last one a
    /// previous watch delivered).
    #[must_use]
    pub fn after(revision: i64) -> Self {
        Self {
            after_revision: revision,
            ..Self::default()
        }
    }

    /// Only `user`'s sessions.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only session `session_id`.
    #[must_use]
    pub fn session(mut self, session_id: SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// First the open sessions as they are now.
    #[must_use]
    pub fn initial_state(mut self) -> Self {
        self.send_initial_state = true;
        self
    }

    /// Resumes after an interruption as `retry` says.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }
}

/// One item of a watch (the contract's `WatchSessionsResponse`).
// Nearly every item is an `Event`: boxing it would add an allocation to
// each without making the common case any smaller.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A change, in revision order; or, with the initial state, an open
    /// session ([`EventKind::SessionSnapshot`], its record in
    /// [`Event::session`]).
    Event(Event),
    /// Every change up to this revision has been delivered: a watch started
    /// after it ([`WatchOptions::after`]) misses nothing.
    Progress(i64),
    /// The initial state's snapshots have all been delivered; the changes
    /// after this revision follow.
    InitialStateEnd(i64),
}

impl WatchEvent {
    /// The revision the watch has reached with this item.
    #[must_use]
    pub fn revision(&self) -> i64 {
        match self {
            Self::Event(event) => event.revision,
            Self::Progress(revision) | Self::InitialStateEnd(revision) => *revision,
        }
    }
}

/// Where a watch is: the last revision it delivered, and the initial state
/// while it is being received. It says what to ask for on (re)connecting
/// and filters what a connection delivers, so that a resumed watch neither
/// misses nor repeats a change.
#[derive(Debug)]
pub(crate) struct Position {
    /// The watch's filters and starting point.
    options: WatchOptions,
    /// The last revision delivered (an event, progress or the initial
    /// state's end): every change up to it was delivered or did not match.
    /// `None` until the first.
    seen: Option<i64>,
    /// The initial state's snapshots received so far, held until its end
    /// arrives (so that an interrupted initial state is asked for again
    /// whole, never delivered twice in part); `None` once delivered, or
    /// when not asked for.
    initial: Option<Vec<Event>>,
}

impl Position {
    /// A watch of `options` that has delivered nothing yet.
    pub(crate) fn new(options: WatchOptions) -> Self {
        let initial = options.send_initial_state.then(Vec::new);
        Self {
            options,
            seen: None,
            initial,
        }
    }

    /// The filters and starting point of the watch.
    pub(crate) fn options(&self) -> &WatchOptions {
        &self.options
    }

    /// The request of the next connection: after the last revision
    /// delivered; before any, the initial state if it was asked for (and is
    /// not delivered), else the requested start ("now" when that was 0).
    pub(crate) fn request(&self) -> pb::WatchSessionsRequest {
        let (after_revision, send_initial_state) = match (self.seen, &self.initial) {
            (Some(seen), _) => (seen, false),
            (None, Some(_)) => (self.options.after_revision, true),
            (None, None) => (self.options.after_revision, false),
        };
        pb::WatchSessionsRequest {
            after_revision,
            user: self.options.user.clone().unwrap_or_default(),
            session_id: self.options.session_id.map_or(0, SessionId::get),
            send_initial_state,
        }
    }

    /// Takes one message of the server into `ready`, what to deliver now.
    ///
    /// # Errors
    /// [`Error::InvalidResponse`] for a message that breaks the contract
    /// (an event that does not decode, a change before the initial state's
    /// end, progress inside the initial state).
    pub(crate) fn receive(
        &mut self,
        message: Message,
        ready: &mut VecDeque<WatchEvent>,
    ) -> Result<()> {
        match (message, &mut self.initial) {
            (Message::Event(event), Some(snapshots)) => {
                let event = Event::try_from(event)?;
                if event.kind != EventKind::SessionSnapshot {
                    return Err(Error::invalid_response(
                        "a change arrived before the initial state's end",
                    ));
                }
                snapshots.push(event);
            }
            (Message::InitialStateEnd(end), Some(snapshots)) => {
                ready.extend(snapshots.drain(..).map(WatchEvent::Event));
                ready.push_back(WatchEvent::InitialStateEnd(end.revision));
                self.initial = None;
                self.seen = Some(end.revision);
            }
            (Message::Progress(_), Some(_)) => {
                return Err(Error::invalid_response(
                    "progress arrived before the initial state's end",
                ));
            }
            (Message::InitialStateEnd(_), None) => {
                return Err(Error::invalid_response(
                    "an initial state's end arrived without an initial state",
                ));
            }
            (Message::Event(event), None) => {
                let event = Event::try_from(event)?;
                // Delivered already (by the connection before this one).
                if self.seen.is_some_and(|seen| event.revision <= seen) {
                    return Ok(());
                }
                self.seen = Some(event.revision);
                ready.push_back(WatchEvent::Event(event));
            }
            (Message::Progress(progress), None) => {
                self.seen = Some(
                    self.seen
                        .map_or(progress.revision, |seen| seen.max(progress.revision)),
                );
                ready.push_back(WatchEvent::Progress(progress.revision));
            }
        }
        Ok(())
    }

    /// Notes that the connection ended with `error`: a partly received
    /// initial state is dropped (it will be asked for again), and the
    /// revision a resumable status names (everything up to it was sent
    /// before it) becomes the resume point.
    pub(crate) fn interrupted(&mut self, error: &Error) {
        if let Some(snapshots) = &mut self.initial {
            snapshots.clear();
            return;
        }
        let named = match error {
            Error::WatchTooSlow { revision } | Error::ServerShuttingDown { revision } => *revision,
            _ => None,
        };
        if let Some(revision) = named.filter(|&r| r > 0) {
            self.seen = Some(self.seen.map_or(revision, |seen| seen.max(revision)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn event(revision: i64, kind: pb::EventKind) -> Message {
        Message::Event(pb::Event {
            revision,
            time: Some(SystemTime::now().into()),
            kind: kind.into(),
            session_id: 1,
            ..pb::Event::default()
        })
    }

    fn progress(revision: i64) -> Message {
        Message::Progress(pb::WatchProgress { revision })
    }

    fn revisions(ready: &VecDeque<WatchEvent>) -> Vec<(char, i64)> {
        ready
            .iter()
            .map(|item| match item {
                WatchEvent::Event(e) if e.kind == EventKind::SessionSnapshot => ('s', e.revision),
                WatchEvent::Event(e) => ('e', e.revision),
                WatchEvent::Progress(r) => ('p', *r),
                WatchEvent::InitialStateEnd(r) => ('i', *r),
            })
            .collect()
    }

    #[test]
    fn a_watch_from_now_resumes_after_what_it_saw_and_skips_repeats() {
        let mut position = Position::new(WatchOptions::from_now().user("R41"));
        let first = position.request();
        assert_eq!((first.after_revision, first.send_initial_state), (0, false));
        assert_eq!(first.user, "R41");

        let mut ready = VecDeque::new();
        position.receive(progress(4), &mut ready).unwrap();
        position
            .receive(event(5, pb::EventKind::SessionStarted), &mut ready)
            .unwrap();
        assert_eq!(position.request().after_revision, 5);

        // The next connection repeats revision 5 (it should not): skipped.
        position
            .receive(event(5, pb::EventKind::SessionStarted), &mut ready)
            .unwrap();
        position
            .receive(event(6, pb::EventKind::SessionEnded), &mut ready)
            .unwrap();
        assert_eq!(revisions(&ready), [('p', 4), ('e', 5), ('e', 6)]);
        let resumed = position.request();
        assert_eq!((resumed.after_revision, resumed.user.as_str()), (6, "R41"));
    }

    #[test]
    fn a_watch_that_saw_nothing_restarts_where_it_was_asked_or_where_the_server_said() {
        let mut position = Position::new(WatchOptions::after(10));
        position.interrupted(&Error::Status(Box::new(tonic::Status::unavailable("gone"))));
        assert_eq!(position.request().after_revision, 10);

        let mut now = Position::new(WatchOptions::from_now());
        now.interrupted(&Error::ServerShuttingDown { revision: None });
        assert_eq!(now.request().after_revision, 0, "from now, again");
        now.interrupted(&Error::WatchTooSlow { revision: Some(17) });
        assert_eq!(now.request().after_revision, 17);
    }

    #[test]
    fn the_initial_state_is_delivered_whole_and_asked_for_again_when_cut_short() {
        let mut position = Position::new(WatchOptions::from_now().initial_state());
        assert!(position.request().send_initial_state);
        let mut ready = VecDeque::new();
        position
            .receive(event(8, pb::EventKind::SessionSnapshot), &mut ready)
            .unwrap();
        assert!(ready.is_empty(), "held until the end");
        position.interrupted(&Error::ServerShuttingDown { revision: Some(8) });
        let again = position.request();
        assert_eq!((again.after_revision, again.send_initial_state), (0, true));

        position
            .receive(event(9, pb::EventKind::SessionSnapshot), &mut ready)
            .unwrap();
        position
            .receive(event(9, pb::EventKind::SessionSnapshot), &mut ready)
            .unwrap();
        position
            .receive(
                Message::InitialStateEnd(pb::WatchProgress { revision: 9 }),
                &mut ready,
            )
            .unwrap();
        position
            .receive(event(10, pb::EventKind::SessionEnded), &mut ready)
            .unwrap();
        assert_eq!(revisions(&ready), [('s', 9), ('s', 9), ('i', 9), ('e', 10)]);
        let resumed = position.request();
        assert_eq!(
            (resumed.after_revision, resumed.send_initial_state),
            (10, false),
            "never the initial state again"
        );
    }

    #[test]
    fn messages_out_of_the_contracts_order_are_invalid() {
        let mut ready = VecDeque::new();
        let mut initial = Position::new(WatchOptions::from_now().initial_state());
        assert!(
            initial
                .receive(event(3, pb::EventKind::SessionStarted), &mut ready)
                .is_err()
        );
        assert!(initial.receive(progress(3), &mut ready).is_err());
        let mut plain = Position::new(WatchOptions::from_now());
        let end = Message::InitialStateEnd(pb::WatchProgress { revision: 3 });
        assert!(plain.receive(end, &mut ready).is_err());
        assert!(ready.is_empty());
    }
}

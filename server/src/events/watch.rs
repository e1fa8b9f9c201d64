//! One watch: the events a caller may read, in revision order, from where it
//! asked to start, read from the log until it catches up with the
//! [`Feed`], then from the feed; `progress` when idle; ended with a
//! resumable status when it falls behind or the server stops.
//!
//! Why nothing is missed or repeated: the watch subscribes to the feed
//! before it reads the log, remembers the last revision it handled (`last`)
//! and only ever handles the revision after it. A batch from the feed that
//! starts past `last + 1` (the feed delivered it before the watch caught
//! up) sends the watch back to the log for what lies between; events at or
//! below `last` are skipped. When the log no longer holds `last + 1`
//! because retention compacted it while the watch was behind, the watch
//! ends with `REVISION_COMPACTED` instead of skipping it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sessiond_proto::v1 as pb;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::feed::Feed;
use crate::access::{self, Access, Action};
use crate::model::{Error, SessionId, UserId};
use crate::principal::Principal;
use crate::store::{EventQuery, SessionQuery, Store};

/// Events read from the log per query while catching up.
const PAGE: u32 = 500;
/// How long the status that ends a watch waits for room in its stream.
const FINAL_SEND: Duration = Duration::from_secs(5);
/// How long a watch may take at a shutdown to send what was committed
/// before it.
const FINAL_CATCH_UP: Duration = Duration::from_secs(1);

/// What a watch asks for.
#[derive(Clone, Debug, Default)]
pub struct WatchRequest {
    /// 0: from now; N: every event after revision N.
    pub after_revision: i64,
    /// Only this user's sessions.
    pub user: Option<UserId>,
    /// Only this session.
    pub session_id: Option<SessionId>,
    /// First the unended sessions, then `initial_state_end`.
    pub send_initial_state: bool,
}

/// What one watch needs from the server.
#[derive(Clone, Debug)]
pub struct Watcher {
    /// The log.
    pub store: Arc<dyn Store>,
    /// Its tail.
    pub feed: Feed,
    /// Which events the caller may read.
    pub access: Access,
    /// How long an idle watch waits before it sends `progress`.
    pub progress_interval: Duration,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// How many watches are running (a gauge of the server's metrics).
    pub watching: Arc<AtomicI64>,
}

/// What a watch sends: a response, or the status that ends it.
pub type Item = std::result::Result<pb::WatchSessionsResponse, Error>;

impl Watcher {
    /// Starts a watch for `caller`; its responses arrive on the returned
    /// channel (bounded: a caller that does not read holds the watch up,
    /// and then the feed ends it).
    #[must_use]
    pub fn start(&self, caller: Principal, request: WatchRequest) -> mpsc::Receiver<Item> {
        let (sender, receiver) = mpsc::channel(64);
        let watch = Watch {
            watcher: self.clone(),
            caller,
            request,
            sender,
            last: 0,
            head: 0,
        };
        tokio::spawn(watch.run());
        receiver
    }
}

struct Watch {
    watcher: Watcher,
    caller: Principal,
    request: WatchRequest,
    sender: mpsc::Sender<Item>,
    /// The last revision handled: every event up to it was sent or skipped.
    last: i64,
    /// The log's head when the watch started: the log is read up to it
    /// before the feed is followed (the feed's may lag: it reads nothing
    /// while nobody watches).
    head: i64,
}

/// Why a watch stops.
enum Stop {
    /// The caller went away.
    Gone,
    /// With this status.
    Status(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Self::Status(error)
    }
}

impl Watch {
    async fn run(mut self) {
        let _counted = Counted::new(&self.watcher.watching);
        let mut feed = self.watcher.feed.subscribe();
        let stop = match self.start().await {
            Ok(()) => self.follow(&mut feed).await,
            Err(stop) => stop,
        };
        if let Stop::Status(error) = stop {
            // A caller that reads nothing more does not hold a stopping
            // server; one that is merely slow gets the status after what
            // it has not read yet.
            let _ = tokio::time::timeout(FINAL_SEND, self.sender.send(Err(error))).await;
        }
    }

    /// Sends the initial state if asked, and settles where the watch starts.
    async fn start(&mut self) -> std::result::Result<(), Stop> {
        let request = &self.request;
        if request.send_initial_state {
            let query = SessionQuery {
                user: request.user.clone(),
                ..SessionQuery::default()
            };
            let (revision, sessions) = self.watcher.store.unended_sessions_at_head(&query).await?;
            for session in sessions {
                if self.request.session_id.is_some_and(|id| id != session.id)
                    || !self.may_read(session.id, &session.user)
                {
                    continue;
                }
                let event = pb::Event {
                    revision,
                    kind: pb::EventKind::SessionSnapshot as i32,
                    session_id: session.id.get(),
                    session_uuid: session.uuid.to_string(),
                    user: session.user.as_str().to_owned(),
                    effective_user: session.effective_user.as_str().to_owned(),
                    time: Some(session.last_activity_time.into()),
                    session: Some(session.into()),
                    ..pb::Event::default()
                };
                self.send(pb::watch_sessions_response::Message::Event(event))
                    .await?;
            }
            self.last = revision;
            return self
                .send(pb::watch_sessions_response::Message::InitialStateEnd(
                    pb::WatchProgress { revision },
                ))
                .await;
        }
        if request.after_revision == 0 {
            // From now: the log's head (the feed's may lag while nobody
            // watched).
            let head = self.watcher.store.ledger_head().await?.head.revision;
            self.last = head.max(self.watcher.feed.delivered());
            return Ok(());
        }
        let ledger = self.watcher.store.ledger_head().await?;
        let compacted = ledger.compacted.revision;
        self.head = ledger.head.revision;
        if request.after_revision < compacted {
            return Err(Error::RevisionCompacted {
                after: request.after_revision,
                compact_revision: compacted,
            }
            .into());
        }
        self.last = request.after_revision;
        Ok(())
    }

    /// Catches up from the log, then follows the feed, until it stops.
    async fn follow(&mut self, feed: &mut broadcast::Receiver<super::Batch>) -> Stop {
        let interval = self.watcher.progress_interval;
        let shutdown = self.watcher.shutdown.clone();
        let mut progress_at = Instant::now() + interval;
        loop {
            let delivered = self.watcher.feed.delivered().max(self.head);
            if self.last < delivered {
                match self.catch_up(delivered).await {
                    Ok(true) => progress_at = Instant::now() + interval,
                    Ok(false) => {}
                    Err(stop) => return stop,
                }
            }
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => return self.shut_down().await,
                received = feed.recv() => received,
                () = tokio::time::sleep_until(progress_at) => {
                    let progress = pb::WatchProgress { revision: self.last };
                    if let Err(stop) = self.send(pb::watch_sessions_response::Message::Progress(progress)).await {
                        return stop;
                    }
                    progress_at = Instant::now() + interval;
                    continue;
                }
            };
            let batch = match received {
                Ok(batch) => batch,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Stop::Status(Error::WatchTooSlow {
                        revision: self.last,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Stop::Status(Error::ShuttingDown {
                        revision: self.last,
                    });
                }
            };
            match self.handle_batch(&batch).await {
                Ok(true) => progress_at = Instant::now() + interval,
                Ok(false) => {}
                Err(stop) => return stop,
            }
        }
    }

    /// Handles a batch of the feed; returns whether it sent anything.
    async fn handle_batch(&mut self, batch: &[pb::Event]) -> std::result::Result<bool, Stop> {
        let mut sent = false;
        for event in batch {
            if event.revision <= self.last {
                continue;
            }
            if event.revision > self.last + 1 {
                sent |= self.catch_up(event.revision - 1).await?;
            }
            sent |= self.handle(event).await?;
        }
        Ok(sent)
    }

    /// Handles the log's events up to `until` (or as far as it goes);
    /// returns whether it sent anything.
    /// The end of a watch at a shutdown: first what was committed before
    /// it began (so that a caller was never told of a change its watch did
    /// not show; for at most [`FINAL_CATCH_UP`]), then the status to resume
    /// from.
    async fn shut_down(&mut self) -> Stop {
        let caught_up = tokio::time::timeout(FINAL_CATCH_UP, async {
            let head = self.watcher.store.ledger_head().await?.head.revision;
            self.catch_up(head).await
        })
        .await;
        match caught_up {
            Ok(Err(stop @ Stop::Gone)) => stop,
            _ => Stop::Status(Error::ShuttingDown {
                revision: self.last,
            }),
        }
    }

    async fn catch_up(&mut self, until: i64) -> std::result::Result<bool, Stop> {
        let mut sent = false;
        while self.last < until {
            let query = EventQuery {
                before: Some(until + 1),
                ..EventQuery::after(self.last, PAGE)
            };
            let page = self.watcher.store.events(&query).await?;
            if page
                .first()
                .is_none_or(|event| event.revision != self.last + 1)
            {
                self.ensure_retained().await?;
            }
            if page.is_empty() {
                break;
            }
            for stored in &page {
                match stored.decode() {
                    Ok(event) => sent |= self.handle(&event).await?,
                    Err(error) => {
                        tracing::error!(error = %error, "an event of the log does not decode");
                        self.last = stored.revision;
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Ends the watch with [`Error::RevisionCompacted`] when the events
    /// after the last one it handled have been compacted away (retention
    /// overtook a watch that was behind): the log no longer holds what it
    /// would send next, and going on would skip it.
    async fn ensure_retained(&self) -> std::result::Result<(), Stop> {
        let compacted = self.watcher.store.ledger_head().await?.compacted.revision;
        if self.last < compacted {
            return Err(Error::RevisionCompacted {
                after: self.last,
                compact_revision: compacted,
            }
            .into());
        }
        Ok(())
    }

    /// Sends `event` if it matches and the caller may read it; it is
    /// handled either way. Returns whether it was sent.
    async fn handle(&mut self, event: &pb::Event) -> std::result::Result<bool, Stop> {
        let matches = self.matches(event);
        if matches {
            self.send(pb::watch_sessions_response::Message::Event(event.clone()))
                .await?;
        }
        self.last = event.revision;
        Ok(matches)
    }

    /// Whether `event` is about a session this watch follows and the caller
    /// may read.
    fn matches(&self, event: &pb::Event) -> bool {
        if event.session_id <= 0 || event.kind == pb::EventKind::CallRefused as i32 {
            return false;
        }
        let id = SessionId::from_store(event.session_id);
        if self.request.session_id.is_some_and(|wanted| wanted != id)
            || self
                .request
                .user
                .as_ref()
                .is_some_and(|user| user.as_str() != event.user)
        {
            return false;
        }
        self.may_read(id, &UserId::from_store(event.user.clone()))
    }

    fn may_read(&self, id: SessionId, user: &UserId) -> bool {
        let session = access::Session { id, user };
        self.watcher
            .access
            .check(&self.caller, Action::ReadSession(session))
            .is_ok()
    }

    /// Sends one response, unless the caller went away or the server stops
    /// while the stream has no room.
    async fn send(
        &self,
        message: pb::watch_sessions_response::Message,
    ) -> std::result::Result<(), Stop> {
        let response = pb::WatchSessionsResponse {
            message: Some(message),
        };
        // A response the stream has room for is sent, also during a
        // shutdown; only one that would wait gives way to it.
        tokio::select! {
            biased;
            sent = self.sender.send(Ok(response)) => sent.map_err(|_| Stop::Gone),
            () = self.watcher.shutdown.cancelled() => {
                Err(Stop::Status(Error::ShuttingDown { revision: self.last }))
            }
        }
    }
}

/// One running watch, counted while it lives.
struct Counted(Arc<AtomicI64>);

impl Counted {
    fn new(count: &Arc<AtomicI64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

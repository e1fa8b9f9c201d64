//! The event log's guarantees, end to end over real gRPC, in the manner of
//! etcd's watch robustness checks: every change is one event of the right
//! kind with the right fields; the audit trail filters, pages, verifies and
//! detects tampering; a watch is ordered, unique, atomic, reliable,
//! resumable and bookmarkable, with the initial state and filters it asks
//! for and only the sessions its caller may read; two PostgreSQL replicas
//! writing at once make one log; a kill -9 loses no acknowledged change.
//!
//! What a watcher receives is always compared with what `ListEvents` lists
//! over the same range: the log is the reference, the watch a reading of it.
//!
//! # Layout
//! - this file: servers on either backend, clients, paging through the log,
//!   reading a watch, and the concurrent writers the tests share;
//! - [`log`]: one event per change, its kind and fields, refused calls;
//! - [`audit`]: ListEvents' filters and pages, VerifyLedger and tampering,
//!   who may read the audit trail, retention;
//! - [`watch`]: the watch guarantees on SQLite, and shutdown;
//! - [`compaction`]: retention compacting events while a watch catches up
//!   or a verification reads;
//! - [`replicas`]: two PostgreSQL replicas writing at once, and a replica
//!   taking over a killed one's sessions in one transaction;
//! - [`crash`]: kill -9 of the real binary and a restart.

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod compaction;
mod crash;
mod log;
mod replicas;
mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use sessiond::{Config, SessiondBuilder};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::watch_sessions_response::Message;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// How long a test waits for a watch to reach a revision before it gives
/// up (a guard against a hang, not a measurement).
const WATCH_GUARD: Duration = Duration::from_secs(60);

/// The store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database (`common::postgres`).
    Postgres,
}

/// Starts a server on `backend` with the settings `configure` adjusts and
/// what `build` adds; `test` names its PostgreSQL database.
async fn server_on(
    backend: Backend,
    test: &str,
    configure: impl FnOnce(&mut Config),
    build: impl FnOnce(SessiondBuilder) -> SessiondBuilder,
) -> TestServer {
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(common::postgres::fresh_database(test).await),
    };
    TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| {
            if let Some(url) = database {
                config.database = url;
            }
            configure(config);
        },
        build,
    )
    .await
}

/// The three services a test talks to, on one channel.
#[derive(Clone)]
struct Clients {
    sessions: SessionServiceClient<Channel>,
    contexts: UserContextServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
}

impl Clients {
    /// Clients on `channel`.
    fn on(channel: Channel) -> Self {
        Self {
            sessions: SessionServiceClient::new(channel.clone()),
            contexts: UserContextServiceClient::new(channel.clone()),
            audit: AuditServiceClient::new(channel),
        }
    }

    /// Clients of the server at `endpoint` (`http://ADDR`).
    async fn connect(endpoint: String) -> Self {
        let channel = Channel::from_shared(endpoint)
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self::on(channel)
    }
}

/// `message` as a request, with `Bearer token` when there is one.
fn as_caller<T>(token: Option<&str>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// Every event `filter` lists, page by page (of `filter.page_size`, or
/// 1000), as `token`'s caller.
async fn list_all(
    audit: &mut AuditServiceClient<Channel>,
    token: Option<&str>,
    filter: pb::ListEventsRequest,
) -> Vec<pb::Event> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListEventsRequest {
            page_size: if filter.page_size == 0 {
                1000
            } else {
                filter.page_size
            },
            page_token: page_token.clone(),
            ..filter.clone()
        };
        let page = audit
            .list_events(as_caller(token, request))
            .await
            .unwrap()
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Every event after `after`, oldest first (a server without
/// authentication).
async fn events_after(audit: &mut AuditServiceClient<Channel>, after: i64) -> Vec<pb::Event> {
    let filter = pb::ListEventsRequest {
        after_revision: after,
        ..pb::ListEventsRequest::default()
    };
    list_all(audit, None, filter).await
}

/// The log's head revision (a server without authentication).
async fn head(audit: &mut AuditServiceClient<Channel>) -> i64 {
    audit
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_revision
}

/// The events a watch may send: the log's, without refused calls (which
/// are audit only).
fn watchable(events: Vec<pb::Event>) -> Vec<pb::Event> {
    events
        .into_iter()
        .filter(|event| event.kind() != pb::EventKind::CallRefused)
        .collect()
}

/// Asserts that `events` have strictly increasing revisions (ordered, and
/// none twice).
#[track_caller]
fn assert_ordered_and_unique(events: &[pb::Event]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].revision < pair[1].revision,
            "revision {} followed by {}",
            pair[0].revision,
            pair[1].revision
        );
    }
}

/// Asserts that `events` are the whole log from its first revision on:
/// revisions one apart, each event's `prev_hash` the hash of the one
/// before.
#[track_caller]
fn assert_chained(events: &[pb::Event]) {
    for pair in events.windows(2) {
        assert_eq!(pair[1].revision, pair[0].revision + 1, "a gap in the log");
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "revision {} does not chain to {}",
            pair[1].revision, pair[0].revision
        );
        assert_eq!(pair[1].hash.len(), 32);
    }
}

/// The revisions of `events`.
fn revisions(events: &[pb::Event]) -> Vec<i64> {
    events.iter().map(|event| event.revision).collect()
}

/// A watch stream the test reads.
struct Watch {
    stream: tonic::Streaming<pb::WatchSessionsResponse>,
}

impl Watch {
    /// Starts a watch on `sessions` as `token`'s caller.
    async fn start(
        sessions: &mut SessionServiceClient<Channel>,
        token: Option<&str>,
        request: pb::WatchSessionsRequest,
    ) -> Result<Self, Status> {
        let stream = sessions
            .watch_sessions(as_caller(token, request))
            .await?
            .into_inner();
        Ok(Self { stream })
    }

    /// Starts a watch of every event after `after`.
    async fn after(sessions: &mut SessionServiceClient<Channel>, after: i64) -> Self {
        let request = pb::WatchSessionsRequest {
            after_revision: after,
            ..pb::WatchSessionsRequest::default()
        };
        Self::start(sessions, None, request).await.unwrap()
    }

    /// The next message; `Err` with the status that ended the watch;
    /// panics if the stream ends without one or nothing comes within
    /// [`WATCH_GUARD`].
    async fn next(&mut self) -> Result<Message, Status> {
        let next = tokio::time::timeout(WATCH_GUARD, self.stream.message())
            .await
            .expect("the watch sent nothing for a minute");
        match next {
            Ok(Some(response)) => Ok(response.message.expect("a message is set")),
            Ok(None) => panic!("the watch ended without a status"),
            Err(status) => Err(status),
        }
    }

    /// The events received until one of them, or a progress, reaches
    /// `revision`; asserts that none arrives at or below a progress
    /// revision received before it (bookmarkable).
    async fn until(&mut self, revision: i64) -> Vec<pb::Event> {
        let mut events = Vec::new();
        let mut progress = 0;
        loop {
            match self.next().await.unwrap() {
                Message::Event(event) => {
                    assert!(
                        event.revision > progress,
                        "event {} after progress {progress}",
                        event.revision
                    );
                    let reached = event.revision >= revision;
                    events.push(event);
                    if reached {
                        return events;
                    }
                }
                Message::Progress(reached) => {
                    progress = reached.revision;
                    if reached.revision >= revision {
                        return events;
                    }
                }
                Message::InitialStateEnd(_) => panic!("initial state not asked for"),
            }
        }
    }

    /// The first progress revision (events before it are returned).
    async fn progress(&mut self) -> (Vec<pb::Event>, i64) {
        let mut events = Vec::new();
        loop {
            match self.next().await.unwrap() {
                Message::Event(event) => events.push(event),
                Message::Progress(progress) => return (events, progress.revision),
                Message::InitialStateEnd(_) => panic!("initial state not asked for"),
            }
        }
    }
}

/// A write a server acknowledged, and the event it must have recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ack {
    /// A clientless session was opened.
    Opened(i64),
    /// An interactive session was started.
    Started(i64),
    /// A user context was set.
    Set(i64),
    /// A scope was pushed: session, scope.
    Pushed(i64, i64),
    /// A scope was popped: session, scope.
    Popped(i64, i64),
    /// A session was ended (EndSession) or closed (CloseClientlessSession).
    Ended(i64),
}

impl Ack {
    /// Whether `event` is the one this write recorded.
    fn recorded_by(self, event: &pb::Event) -> bool {
        use pb::EventKind as K;
        let (kind, session, scope) = match self {
            Self::Opened(id) => (K::ClientlessSessionOpened, id, 0),
            Self::Started(id) => (K::SessionStarted, id, 0),
            Self::Set(id) => (K::UserContextSet, id, 0),
            Self::Pushed(id, scope) => (K::UserContextPushed, id, scope),
            Self::Popped(id, scope) => (K::UserContextPopped, id, scope),
            Self::Ended(id) => (K::SessionEnded, id, 0),
        };
        event.kind() == kind && event.session_id == session && event.scope_id == scope
    }
}

/// Acknowledged writes, shared by concurrent writers.
type Acks = Arc<Mutex<Vec<Ack>>>;

/// Writes like a client of `user` would, `rounds` times, recording each
/// acknowledged write in `acks`: open a clientless session, push and pop a
/// scope, start an interactive session, set its user context, end it, and
/// close every other clientless session (the rest stay open). Stops at the
/// first failure (a killed server) and returns it.
async fn churn(clients: Clients, user: String, rounds: usize, acks: Acks) -> Result<(), Status> {
    let Clients {
        mut sessions,
        mut contexts,
        ..
    } = clients;
    let ack = |ack: Ack| acks.lock().unwrap().push(ack);
    for round in 0..rounds {
        let clientless = sessions
            .open_clientless_session(pb::OpenClientlessSessionRequest { user: user.clone() })
            .await?
            .into_inner()
            .session_id;
        ack(Ack::Opened(clientless));
        let scope = contexts
            .push_user_context(pb::PushUserContextRequest {
                session_id: clientless,
                user: format!("{user}-acting"),
            })
            .await?
            .into_inner()
            .scope_id;
        ack(Ack::Pushed(clientless, scope));
        contexts
            .pop_user_context(pb::PopUserContextRequest {
                session_id: clientless,
                scope_id: scope,
            })
            .await?;
        ack(Ack::Popped(clientless, scope));
        let interactive = sessions
            .start_session(pb::StartSessionRequest {
                user: user.clone(),
                client: "churn".into(),
            })
            .await?
            .into_inner()
            .session_id;
        ack(Ack::Started(interactive));
        contexts
            .set_user_context(pb::SetUserContextRequest {
                session_id: interactive,
                user: format!("{user}-set"),
            })
            .await?;
        ack(Ack::Set(interactive));
        sessions
            .end_session(pb::EndSessionRequest {
                session_id: interactive,
            })
            .await?;
        ack(Ack::Ended(interactive));
        if round % 2 == 0 {
            sessions
                .close_clientless_session(pb::CloseClientlessSessionRequest {
                    session_id: clientless,
                    grace: None,
                })
                .await?;
            ack(Ack::Ended(clientless));
        }
    }
    Ok(())
}

/// Runs `writers` concurrent [`churn`]s of `rounds` on the servers of
/// `clients` (writer `n` on `clients[n % len]`), until all are done; their
/// acknowledged writes.
async fn churn_concurrently(clients: &[Clients], writers: usize, rounds: usize) -> Vec<Ack> {
    let acks = Acks::default();
    let tasks: Vec<_> = (0..writers)
        .map(|n| {
            let clients = clients[n % clients.len()].clone();
            tokio::spawn(churn(clients, format!("W{n}"), rounds, Arc::clone(&acks)))
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert_eq!(
        acks.len(),
        writers * rounds * 6 + writers * rounds.div_ceil(2)
    );
    acks
}

/// Asserts that every acknowledged write has its event in `events`.
#[track_caller]
fn assert_every_ack_recorded(acks: &[Ack], events: &[pb::Event]) {
    for ack in acks {
        assert!(
            events.iter().any(|event| ack.recorded_by(event)),
            "{ack:?} was acknowledged but has no event"
        );
    }
}

/// The sessions the log says are unended after `events` (a prefix of the
/// log): started or opened, and not ended; with their users.
fn unended(events: &[pb::Event]) -> BTreeMap<i64, String> {
    let mut open = BTreeMap::new();
    for event in events {
        match event.kind() {
            pb::EventKind::SessionStarted | pb::EventKind::ClientlessSessionOpened => {
                open.insert(event.session_id, event.user.clone());
            }
            pb::EventKind::SessionEnded => {
                open.remove(&event.session_id);
            }
            _ => {}
        }
    }
    open
}

//! `sessiond-client`'s events end to end, against the real server: a watch
//! sees what another client changes, in order; the initial state comes
//! first; a watch resumes after a server restart and after a lost
//! connection with exactly the changes it had not delivered; the audit
//! trail pages and filters, verifies, and is refused without `read_audit`.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::credentials::static_token;
use common::{TestServer, eventually};
use futures::{StreamExt, TryStreamExt};
use sessiond_client::{
    Client, EndReason, Error, Event, EventFilter, EventKind, RetryPolicy, SessionId, SessionState,
    WatchEvent, WatchOptions, WatchStream,
};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// The longest a test waits for the next item of a watch before it fails
/// (a guard against hanging, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// A server whose idle watches send progress often, so that a watch from
/// now can tell when it has started.
async fn server() -> TestServer {
    TestServer::start_with(quick_progress).await
}

fn quick_progress(config: &mut sessiond::Config) {
    config.watch_progress_interval = Duration::from_millis(100);
}

async fn client_for(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.unwrap()
}

/// The next item of `watch`.
async fn next_item(watch: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("the watch delivers its next item")
        .expect("the watch goes on")
        .expect("the watch delivers items, not an error")
}

/// A watch of `client` from now, once the server has started it (it sent
/// its first progress), and the revision it started after.
async fn watch_from_now(client: &Client) -> (WatchStream, i64) {
    let mut watch = client.watch_sessions(WatchOptions::from_now());
    let WatchEvent::Progress(start) = next_item(&mut watch).await else {
        panic!("an idle watch from now sends progress first");
    };
    (watch, start)
}

/// The events `watch` delivers (skipping progress) up to and including the
/// first one `last` accepts.
async fn events_until(watch: &mut WatchStream, last: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    let collect = async {
        loop {
            if let WatchEvent::Event(event) = next_item(watch).await {
                let done = last(&event);
                events.push(event);
                if done {
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(PATIENCE, collect).await.is_err() {
        panic!("the watch did not deliver the awaited event; it delivered {events:#?}");
    }
    events
}

/// The log's events after `after` up to `until`, as the audit trail lists
/// them, without the refused calls (which a watch never sends).
async fn logged(client: &Client, after: i64, until: i64) -> Vec<Event> {
    client
        .list_events(EventFilter::new().after_revision(after))
        .try_filter(|event| {
            futures::future::ready(event.revision <= until && event.kind != EventKind::CallRefused)
        })
        .try_collect()
        .await
        .unwrap()
}

fn kinds_of(events: &[Event], session: SessionId) -> Vec<EventKind> {
    events
        .iter()
        .filter(|e| e.session_id == Some(session))
        .map(|e| e.kind)
        .collect()
}

fn is_end_of(session: SessionId) -> impl Fn(&Event) -> bool {
    move |e| e.session_id == Some(session) && e.kind == EventKind::SessionEnded
}

// ------------------------------------------------------------------ watch

#[tokio::test]
async fn a_watch_sees_what_another_client_changes_in_revision_order() {
    let server = server().await;
    let watcher = client_for(&server).await;
    let actor = client_for(&server).await;

    let (mut watch, start) = watch_from_now(&watcher).await;

    let clientless = actor.clientless_session("R41").await.unwrap();
    let id = clientless.id();
    let scope = actor.push_user_context(id, "R50").await.unwrap();
    actor.pop_user_context(id, scope.scope_id).await.unwrap();
    clientless.close().await.unwrap();
    let interactive = actor.start_session("R42", "events test").await.unwrap();
    let ended = actor.end_session(interactive.session_id).await.unwrap();
    assert_eq!(ended.state, SessionState::Ended);

    let seen = events_until(&mut watch, is_end_of(interactive.session_id)).await;
    let revisions: Vec<i64> = seen.iter().map(|e| e.revision).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]) && revisions[0] > start,
        "ascending, after the progress: {revisions:?}"
    );
    let opened = kinds_of(&seen, id);
    assert_eq!(opened.first(), Some(&EventKind::ClientlessSessionOpened));
    assert_eq!(opened.last(), Some(&EventKind::SessionEnded));
    let pushed = opened
        .iter()
        .position(|k| *k == EventKind::UserContextPushed);
    let popped = opened
        .iter()
        .position(|k| *k == EventKind::UserContextPopped);
    assert!(pushed.is_some() && pushed < popped, "{opened:?}");
    assert_eq!(
        kinds_of(&seen, interactive.session_id),
        [EventKind::SessionStarted, EventKind::SessionEnded]
    );
    let end = seen.last().unwrap();
    assert_eq!(end.end_reason, Some(EndReason::ClosedByClient));
    assert_eq!(
        (end.user.as_str(), end.subject.as_str()),
        ("R42", "anonymous")
    );
    assert_eq!(
        seen,
        logged(&watcher, start, end.revision).await,
        "exactly the log's events, hashes and all"
    );
}

#[tokio::test]
async fn the_initial_state_comes_first_then_the_changes_after_it() {
    let server = server().await;
    let client = client_for(&server).await;
    let first = client.open_clientless_session("R41").await.unwrap();
    let second = client.start_session("R41", "desk").await.unwrap();
    let other_user = client.open_clientless_session("R42").await.unwrap();
    let gone = client.open_clientless_session("R41").await.unwrap();
    client.end_session(gone.session_id).await.unwrap();
    let head = client.get_checkpoint().await.unwrap().head_revision;

    let mut watch = client.watch_sessions(WatchOptions::from_now().user("R41").initial_state());
    let mut snapshots = Vec::new();
    let end = loop {
        match next_item(&mut watch).await {
            WatchEvent::Event(event) => snapshots.push(event),
            WatchEvent::InitialStateEnd(revision) => break revision,
            WatchEvent::Progress(_) => panic!("progress before the initial state's end"),
        }
    };
    assert_eq!(end, head, "the state as of the head");
    let ids: Vec<_> = snapshots.iter().map(|e| e.session_id).collect();
    assert_eq!(
        ids,
        [Some(first.session_id), Some(second.session_id)],
        "R41's open sessions only"
    );
    for snapshot in &snapshots {
        assert_eq!(snapshot.kind, EventKind::SessionSnapshot);
        assert_eq!(snapshot.revision, head);
        assert_eq!(snapshot.hash, None, "not in the log");
        let record = snapshot.session.as_ref().expect("a snapshot's record");
        assert_eq!(Some(record.session_id), snapshot.session_id);
        assert_eq!(record.state, SessionState::Open);
    }

    client.end_session(other_user.session_id).await.unwrap();
    client.end_session(first.session_id).await.unwrap();
    let changes = events_until(&mut watch, is_end_of(first.session_id)).await;
    assert_eq!(changes.len(), 1, "not R42's: {changes:?}");
    assert!(changes[0].revision > head);
}

#[tokio::test]
async fn a_watch_resumes_after_a_restart_with_exactly_what_followed() {
    let server = server().await;
    let watcher = client_for(&server).await;
    let (mut watch, _) = watch_from_now(&watcher).await;

    let before = client_for(&server)
        .await
        .open_clientless_session("R41")
        .await
        .unwrap();
    let seen = events_until(&mut watch, |e| e.session_id == Some(before.session_id)).await;
    let last_seen = seen.last().unwrap().revision;

    // The watch is not read while the server restarts: what it receives
    // next is the status its stream ended with, then the new server's.
    let server = server.restart(quick_progress).await;
    let after = client_for(&server)
        .await
        .open_clientless_session("R42")
        .await
        .unwrap();
    let resumed = events_until(&mut watch, |e| e.session_id == Some(after.session_id)).await;

    let until = resumed.last().unwrap().revision;
    assert_eq!(resumed, logged(&watcher, last_seen, until).await);
    assert_eq!(
        kinds_of(&resumed, before.session_id),
        [EventKind::SessionEnded],
        "the shutdown ended the clientless session, after the watch's stream"
    );
    assert_eq!(
        resumed[0].end_reason,
        Some(EndReason::ServerShutdown),
        "{resumed:?}"
    );
    server.stop().await;
}

/// A TCP proxy in front of a server whose connections the test can cut,
/// leaving the server running.
struct Proxy {
    addr: std::net::SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                accepted.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { addr, connections }
    }

    /// Drops every connection made so far (both sides see it closed
    /// without a word).
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test]
async fn a_watch_resumes_after_a_lost_connection_without_missing_a_change() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let watcher = Client::connect(format!("http://{}", proxy.addr))
        .await
        .unwrap();
    let actor = client_for(&server).await;
    let (mut watch, _) = watch_from_now(&watcher).await;
    let first = actor.open_clientless_session("R41").await.unwrap();
    let seen = events_until(&mut watch, |e| e.session_id == Some(first.session_id)).await;
    let last_seen = seen.last().unwrap().revision;

    proxy.cut();
    let meanwhile = actor.start_session("R42", "while cut").await.unwrap();
    actor.end_session(first.session_id).await.unwrap();
    let resumed = events_until(&mut watch, is_end_of(first.session_id)).await;
    assert_eq!(
        resumed,
        logged(&actor, last_seen, resumed.last().unwrap().revision).await
    );
    assert_eq!(
        kinds_of(&resumed, meanwhile.session_id),
        [EventKind::SessionStarted]
    );
}

#[tokio::test]
async fn a_watch_ends_with_errors_it_cannot_resume_from() {
    let server = server().await;
    let client = client_for(&server).await;
    let mut bad = client.watch_sessions(WatchOptions::after(3).initial_state());
    let error = bad.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { violations, .. }
            if violations.iter().any(|v| v.field == "after_revision")),
        "{error:?}"
    );
    assert!(bad.next().await.is_none(), "the error is the last item");

    // Nothing listens here any more: a watch that may not resume says so.
    let addr = server.addr;
    server.stop().await;
    let gone = Client::builder()
        .connect_lazy(format!("http://{addr}"))
        .unwrap();
    let mut once = gone.watch_sessions(WatchOptions::from_now().retry(RetryPolicy::never()));
    let error = once.next().await.unwrap().unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::Unavailable), "{error:?}");
    assert!(once.next().await.is_none());
}

// ------------------------------------------------------------------ audit

/// Opens and ends sessions of R41 and R42 so that the log holds some of
/// each; returns R41's sessions.
async fn some_history(client: &Client) -> Vec<SessionId> {
    let mut r41 = Vec::new();
    for n in 0..3 {
        let mine = client.open_clientless_session("R41").await.unwrap();
        client
            .push_user_context(mine.session_id, format!("R5{n}"))
            .await
            .unwrap();
        client.end_session(mine.session_id).await.unwrap();
        r41.push(mine.session_id);
        let theirs = client.start_session("R42", "desk").await.unwrap();
        client.end_session(theirs.session_id).await.unwrap();
    }
    r41
}

#[tokio::test]
async fn list_events_pages_and_filters() {
    let server = server().await;
    let client = client_for(&server).await;
    let r41 = some_history(&client).await;

    let everything: Vec<Event> = client
        .list_events(EventFilter::new())
        .try_collect()
        .await
        .unwrap();
    let revisions: Vec<i64> = everything.iter().map(|e| e.revision).collect();
    assert_eq!(
        revisions,
        (1..=everything.len() as i64).collect::<Vec<_>>(),
        "every revision from the first, oldest first"
    );
    assert_eq!(
        everything.len(),
        15,
        "3 × (open, push, end) + 3 × (start, end)"
    );

    let of_r41 = EventFilter::new().user("R41");
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_events_page(&of_r41, 2, token.as_deref())
            .await
            .unwrap();
        assert!(page.events.len() <= 2);
        assert_eq!(page.compact_revision, 0);
        pages.extend(page.events);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let expected: Vec<&Event> = everything.iter().filter(|e| e.user == "R41").collect();
    assert_eq!(pages.iter().collect::<Vec<_>>(), expected);
    assert_eq!(pages.len(), 9);

    let newest_first: Vec<Event> = client
        .list_events(of_r41.clone().newest_first())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        newest_first,
        pages.iter().rev().cloned().collect::<Vec<_>>()
    );

    let ends: Vec<Event> = client
        .list_events(EventFilter::new().kind(EventKind::SessionEnded).user("R41"))
        .try_collect()
        .await
        .unwrap();
    let ended: Vec<_> = ends.iter().filter_map(|e| e.session_id).collect();
    assert_eq!(ended, r41);

    let one_session = client
        .list_events_page(&EventFilter::new().session(r41[1]), 0, None)
        .await
        .unwrap();
    let kinds: Vec<_> = one_session.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::ClientlessSessionOpened,
            EventKind::UserContextPushed,
            EventKind::SessionEnded
        ]
    );
    assert_eq!(one_session.events[1].effective_user, "R51");

    let later = client
        .list_events_page(&EventFilter::new().after_revision(12), 0, None)
        .await
        .unwrap();
    assert_eq!(
        later.events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [13, 14, 15]
    );
    let by_nobody = client
        .list_events_page(&EventFilter::new().subject("nobody"), 0, None)
        .await
        .unwrap();
    assert!(by_nobody.events.is_empty() && by_nobody.next_page_token.is_none());
}

#[tokio::test]
async fn the_ledger_verifies_and_its_head_is_the_last_events_hash() {
    let server = server().await;
    let client = client_for(&server).await;
    some_history(&client).await;

    let verification = client.verify_ledger(None, None).await.unwrap();
    assert!(verification.is_ok(), "{verification:?}");
    assert_eq!(verification.verified_events, 15);
    let checkpoint = client.get_checkpoint().await.unwrap();
    assert_eq!(checkpoint.head_revision, 15);
    assert_eq!(checkpoint.compact_revision, 0);
    assert_eq!(verification.head_hash, checkpoint.head_hash);
    let last = client
        .list_events_page(&EventFilter::new().newest_first(), 1, None)
        .await
        .unwrap();
    assert_eq!(last.events[0].hash, Some(checkpoint.head_hash));
    let first = client
        .list_events_page(&EventFilter::new(), 1, None)
        .await
        .unwrap();
    assert_eq!(
        first.events[0].prev_hash,
        Some(checkpoint.compact_hash),
        "the first event chains to the (empty) checkpoint"
    );

    let part = client.verify_ledger(Some(5), Some(9)).await.unwrap();
    assert!(part.is_ok(), "{part:?}");
    assert_eq!(part.verified_events, 5);
}

#[tokio::test]
async fn the_audit_trail_needs_read_audit() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let operator = static_token(&tokens, "olga", &["operators"]);
    let end_user = static_token(&tokens, "R41", &[]);
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml");
    let server = TestServer::start_in(dir, |config| {
        config.security.tokens = Some(tokens);
        config.security.policy = Some(policy);
    })
    .await;
    let as_user = |token: String| {
        let endpoint = server.endpoint();
        async move {
            Client::builder()
                .bearer_token(token)
                .connect(endpoint)
                .await
                .unwrap()
        }
    };
    let r41 = as_user(end_user).await;
    let olga = as_user(operator).await;

    let refused = [
        r41.list_events_page(&EventFilter::new(), 0, None)
            .await
            .map(|_| ()),
        r41.verify_ledger(None, None).await.map(|_| ()),
        r41.get_checkpoint().await.map(|_| ()),
    ];
    for error in refused {
        let error = error.unwrap_err();
        assert!(
            matches!(&error, Error::PermissionDenied { permission, subject, .. }
                if permission == "read_audit" && subject == "R41"),
            "{error:?}"
        );
    }

    // The operator reads the trail, the refusals included (recorded in the
    // background, in batches).
    let refusals = eventually("the refusals to be recorded", || {
        let olga = olga.clone();
        async move {
            let refused: Vec<Event> = olga
                .list_events(EventFilter::new().kind(EventKind::CallRefused))
                .try_collect()
                .await
                .unwrap();
            (refused.len() == 3).then_some(refused)
        }
    })
    .await;
    let methods: HashSet<&str> = refusals.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        HashSet::from([
            "/sessiond.v1.AuditService/ListEvents",
            "/sessiond.v1.AuditService/VerifyLedger",
            "/sessiond.v1.AuditService/GetCheckpoint",
        ])
    );
    for refusal in &refusals {
        assert_eq!(refusal.subject, "R41");
        assert_eq!(refusal.error_reason, "PERMISSION_DENIED");
    }
    assert!(olga.verify_ledger(None, None).await.unwrap().is_ok());
}

//! The `sessiond-client` crate end to end: every method, each typed error,
//! the guards' three ends (explicit, dropped in a runtime, dropped outside
//! one), nested user contexts and panics inside guarded blocks — against
//! the real server. A small scripted server stands in where the real one
//! cannot be made to fail on cue (retries, deadlines, the bearer token).
//!
//! Module methods are tested once the server implements modules.

mod common;

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::TestServer;
use sessiond_client::{
    Client, ClientlessSession, EndReason, Error, RetryPolicy, ScopeId, SessionFilter, SessionId,
    SessionInfo, SessionKind, SessionState,
};
use sessiond_proto::v1 as pb;
use tonic::Code;

// ---------------------------------------------------------------- helpers

/// Polls `probe` until it returns `Some`, with short sleeps and a generous
/// overall cap: for effects that happen in the background.
async fn wait_until<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn client_for(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.unwrap()
}

/// A session's record, read with the plain generated client (not through
/// `sessiond-client`, whose calls wait for its own background clean-up).
async fn raw_info(server: &TestServer, session_id: SessionId) -> pb::SessionInfo {
    server
        .sessions()
        .await
        .get_session_info(pb::GetSessionInfoRequest {
            session_id: session_id.get(),
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

/// A session's user context and depth, read with the plain generated client.
async fn raw_context(server: &TestServer, session_id: SessionId) -> (String, u32) {
    let context = server
        .user_contexts()
        .await
        .get_user_context(pb::GetUserContextRequest {
            session_id: session_id.get(),
        })
        .await
        .unwrap()
        .into_inner();
    (context.user, context.depth)
}

async fn wait_until_ended(server: &TestServer, session_id: SessionId) -> pb::SessionInfo {
    wait_until("the session has ended", || async {
        let info = raw_info(server, session_id).await;
        (info.state() == pb::SessionState::Ended).then_some(info)
    })
    .await
}

async fn wait_until_context(server: &TestServer, session_id: SessionId, user: &str, depth: u32) {
    wait_until("the user context is restored", || async {
        (raw_context(server, session_id).await == (user.to_owned(), depth)).then_some(())
    })
    .await;
}

// ------------------------------------------------------- session methods

#[tokio::test]
async fn an_interactive_session_lives_and_ends_through_the_client() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let started = client
        .start_session("R41", "web/2.3 from 10.0.0.7")
        .await
        .unwrap();
    let id = started.session_id;
    assert!(id.get() > 0);
    assert_eq!(started.session_uuid.get_version_num(), 7);
    assert_eq!(started.user, "R41");
    assert_eq!(started.effective_user, "R41");
    assert_eq!(started.kind, SessionKind::Interactive);
    assert_eq!(started.state, SessionState::Open);
    assert_eq!(started.client, "web/2.3 from 10.0.0.7");
    assert_eq!(started.end_time, None);
    assert_eq!(started.end_reason, None);
    assert_eq!(started.user_context_depth, 0);

    assert_eq!(client.get_session_user(id).await.unwrap(), "R41");
    assert_eq!(client.get_session_info(id).await.unwrap(), started);

    let touched = client.touch_session(id).await.unwrap();
    assert!(touched >= started.last_activity_time);
    assert_eq!(
        client
            .get_session_info(id)
            .await
            .unwrap()
            .last_activity_time,
        touched
    );

    let ended = client.end_session(id).await.unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert!(ended.is_ended());
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByClient));
    assert!(ended.end_time.unwrap() >= ended.start_time);
    assert_eq!(
        client.end_session(id).await.unwrap(),
        ended,
        "ending is idempotent"
    );
    assert_eq!(
        client.get_session_user(id).await.unwrap(),
        "R41",
        "answered for ended sessions too"
    );
}

#[tokio::test]
async fn a_clientless_session_opens_and_closes_with_a_grace() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let opened = client.open_clientless_session("R41").await.unwrap();
    assert_eq!(opened.kind, SessionKind::Clientless);
    assert_eq!(opened.state, SessionState::Open);
    assert_eq!(opened.client, "");

    let closed = client
        .close_clientless_session(opened.session_id, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(closed.session_id, opened.session_id);
    assert_eq!(closed.state, SessionState::Ended);
    assert_eq!(closed.end_reason, Some(EndReason::ClosedByClient));
    let again = client
        .close_clientless_session(opened.session_id, None)
        .await
        .unwrap();
    assert_eq!(again, closed, "closing is idempotent");
}

#[tokio::test]
async fn sessions_are_listed_by_filter_and_page() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let a = client.open_clientless_session("R41").await.unwrap();
    let b = client.start_session("R41", "").await.unwrap();
    let c = client.open_clientless_session("R42").await.unwrap();
    client.end_session(c.session_id).await.unwrap();
    let ids = |sessions: &[SessionInfo]| sessions.iter().map(|s| s.session_id).collect::<Vec<_>>();

    let all = client.list_sessions(&SessionFilter::new()).await.unwrap();
    assert_eq!(ids(&all), [a.session_id, b.session_id, c.session_id]);
    let of_r41 = client
        .list_sessions(&SessionFilter::new().user("R41"))
        .await
        .unwrap();
    assert_eq!(ids(&of_r41), [a.session_id, b.session_id]);
    let clientless = client
        .list_sessions(&SessionFilter::new().kind(SessionKind::Clientless))
        .await
        .unwrap();
    assert_eq!(ids(&clientless), [a.session_id, c.session_id]);
    let ended = client
        .list_sessions(&SessionFilter::new().state(SessionState::Ended))
        .await
        .unwrap();
    assert_eq!(ids(&ended), [c.session_id]);
    assert_eq!(ended[0].end_reason, Some(EndReason::ClosedByClient));
    let open_clientless_of_r41 = client
        .list_sessions(
            &SessionFilter::new()
                .user("R41")
                .kind(SessionKind::Clientless)
                .state(SessionState::Open),
        )
        .await
        .unwrap();
    assert_eq!(ids(&open_clientless_of_r41), [a.session_id]);

    // Page by page, one at a time.
    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let page = client
            .list_sessions_page(&SessionFilter::new(), 1, token.as_deref())
            .await
            .unwrap();
        assert!(page.sessions.len() <= 1);
        paged.extend(page.sessions);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(ids(&paged), ids(&all));
}

#[tokio::test]
async fn a_client_on_an_existing_channel_shares_it_between_clones() {
    let server = TestServer::start().await;
    let client = Client::from_channel(server.channel().await);
    let session = client.open_clientless_session("R41").await.unwrap();
    let calls = (0..16).map(|_| {
        let clone = client.clone();
        async move { clone.get_session_user(session.session_id).await }
    });
    for user in futures::future::join_all(calls).await {
        assert_eq!(user.unwrap(), "R41");
    }
    let quick = client.with_timeout(Duration::from_secs(3));
    assert_eq!(quick.timeout(), Some(Duration::from_secs(3)));
    assert_eq!(client.without_timeout().timeout(), None);
    assert_eq!(
        quick.get_session_user(session.session_id).await.unwrap(),
        "R41"
    );
}

// -------------------------------------------------- user-context methods

#[tokio::test]
async fn user_contexts_are_read_set_pushed_and_popped() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;

    let context = client.get_user_context(id).await.unwrap();
    assert_eq!(
        (
            context.user.as_str(),
            context.session_user.as_str(),
            context.depth
        ),
        ("R41", "R41", 0)
    );

    assert_eq!(client.set_user_context(id, "R50").await.unwrap(), "R41");
    let pushed = client.push_user_context(id, "R60").await.unwrap();
    assert_eq!(pushed.previous_user, "R50");
    assert_eq!(pushed.depth, 1);
    let inside = client.get_user_context(id).await.unwrap();
    assert_eq!((inside.user.as_str(), inside.depth), ("R60", 1));
    assert_eq!(
        client.get_session_info(id).await.unwrap().effective_user,
        "R60"
    );

    let popped = client.pop_user_context(id, pushed.scope_id).await.unwrap();
    assert_eq!((popped.user.as_str(), popped.depth), ("R50", 0));
    assert_eq!(client.get_user_context(id).await.unwrap().user, "R50");
}

// ----------------------------------------------------------- typed errors

#[tokio::test]
async fn an_unknown_session_is_session_not_found_everywhere() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let missing = SessionId::new(4242);
    let is_not_found =
        |e: Error| matches!(e, Error::SessionNotFound { session_id } if session_id == missing);

    assert!(is_not_found(
        client.get_session_user(missing).await.unwrap_err()
    ));
    assert!(is_not_found(
        client.get_session_info(missing).await.unwrap_err()
    ));
    assert!(is_not_found(
        client.touch_session(missing).await.unwrap_err()
    ));
    assert!(is_not_found(client.end_session(missing).await.unwrap_err()));
    assert!(is_not_found(
        client
            .close_clientless_session(missing, None)
            .await
            .unwrap_err()
    ));
    assert!(is_not_found(
        client.get_user_context(missing).await.unwrap_err()
    ));
    assert!(is_not_found(
        client.set_user_context(missing, "R1").await.unwrap_err()
    ));
    assert!(is_not_found(
        client.push_user_context(missing, "R1").await.unwrap_err()
    ));
    let error = client.get_session_user(missing).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::NotFound));
    assert_eq!(error.reason(), Some("SESSION_NOT_FOUND"));
    assert_eq!(error.to_string(), "session 4242 not found");
}

#[tokio::test]
async fn invalid_arguments_name_their_fields() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let error = client
        .get_session_info(SessionId::new(0))
        .await
        .unwrap_err();
    let Error::InvalidArgument { violations, .. } = &error else {
        panic!("expected InvalidArgument, got {error:?}");
    };
    assert_eq!(violations[0].field, "session_id");

    let error = client.start_session("", "").await.unwrap_err();
    let Error::InvalidArgument { violations, .. } = &error else {
        panic!("expected InvalidArgument, got {error:?}");
    };
    assert_eq!(violations[0].field, "user");

    let error = client
        .close_clientless_session(SessionId::new(-1), Some(Duration::from_secs(7200)))
        .await
        .unwrap_err();
    let Error::InvalidArgument { violations, .. } = &error else {
        panic!("expected InvalidArgument, got {error:?}");
    };
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["session_id", "grace"], "every bad field at once");
    assert_eq!(error.code(), Some(Code::InvalidArgument));
}

#[tokio::test]
async fn state_errors_are_typed() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let interactive = client.start_session("R41", "").await.unwrap().session_id;
    let error = client
        .close_clientless_session(interactive, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::SessionNotClientless { session_id } if session_id == interactive),
        "{error:?}"
    );

    client.end_session(interactive).await.unwrap();
    let error = client.touch_session(interactive).await.unwrap_err();
    assert!(
        matches!(error, Error::SessionEnded { session_id } if session_id == interactive),
        "{error:?}"
    );
    let error = client.user_context(interactive, "R50").await.unwrap_err();
    assert!(matches!(error, Error::SessionEnded { .. }), "{error:?}");
    assert_eq!(error.code(), Some(Code::FailedPrecondition));
}

#[tokio::test]
async fn scope_errors_are_typed() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;

    let outer = client.push_user_context(id, "R50").await.unwrap();
    let inner = client.push_user_context(id, "R60").await.unwrap();
    let error = client
        .pop_user_context(id, outer.scope_id)
        .await
        .unwrap_err();
    let Error::ScopeNotInnermost {
        session_id,
        scope_id,
        innermost_scope_id,
    } = error
    else {
        panic!("expected ScopeNotInnermost, got {error:?}");
    };
    assert_eq!(
        (session_id, scope_id, innermost_scope_id),
        (id, outer.scope_id, Some(inner.scope_id))
    );
    assert_eq!(
        client.get_user_context(id).await.unwrap().user,
        "R60",
        "a refused pop changes nothing"
    );

    client.pop_user_context(id, inner.scope_id).await.unwrap();
    let error = client
        .pop_user_context(id, inner.scope_id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ScopeNotFound { session_id, scope_id } if session_id == id && scope_id == inner.scope_id),
        "{error:?}"
    );
    let error = client
        .pop_user_context(id, ScopeId::new(987_654))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ScopeNotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn a_user_over_the_session_limit_gets_too_many_sessions() {
    let server = TestServer::start_with(|config| config.max_open_sessions_per_user = Some(1)).await;
    let client = client_for(&server).await;
    let first = client.clientless_session("R41").await.unwrap();
    let error = client.clientless_session("R41").await.unwrap_err();
    let Error::TooManySessions { user, limit, .. } = &error else {
        panic!("expected TooManySessions, got {error:?}");
    };
    assert_eq!((user.as_deref(), *limit), (Some("R41"), Some(1)));
    assert_eq!(error.code(), Some(Code::ResourceExhausted));
    first.close().await.unwrap();
    let second = client.clientless_session("R41").await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_and_a_bad_endpoint_a_config_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let error = Client::connect(&endpoint).await.unwrap_err();
    let Error::Connect {
        endpoint: named, ..
    } = &error
    else {
        panic!("expected Connect, got {error:?}");
    };
    assert_eq!(named, &endpoint);
    assert_eq!(error.code(), Some(Code::Unavailable));

    // Lazily connected: the call fails UNAVAILABLE after its retries.
    let lazy = Client::builder()
        .retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        })
        .connect_lazy(&endpoint)
        .unwrap();
    let error = lazy.get_session_user(SessionId::new(1)).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Unavailable), "{error:?}");
    assert!(error.status().is_some());

    let error = Client::connect("http://bad host:1").await.unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let error = Client::builder()
        .bearer_token("two words")
        .connect_lazy(&endpoint)
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
}

// --------------------------------------------------- ClientlessSession

#[tokio::test]
async fn a_clientless_session_closed_explicitly_returns_its_final_record() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let session = client.clientless_session("R41").await.unwrap();
    let id = session.id();
    assert_eq!(session.user(), "R41");
    assert_eq!(session.info().session_id, id);
    assert_eq!(session.uuid(), session.info().session_uuid);
    assert_eq!(session.client().timeout(), client.timeout());
    assert_eq!(client.get_session_user(id).await.unwrap(), "R41");
    assert_eq!(raw_info(&server, id).await.state(), pb::SessionState::Open);

    let ended = session.close().await.unwrap();
    assert_eq!(ended.session_id, id);
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByClient));
    assert!(ended.end_time.is_some());
    assert_eq!(raw_info(&server, id).await.state(), pb::SessionState::Ended);
}

#[tokio::test]
async fn a_clientless_session_closed_with_a_grace_ends() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let ended = session
        .close_with_grace(Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(ended.state, SessionState::Ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_clientless_session_is_closed_in_the_background() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = {
        let session = client.clientless_session("R41").await.unwrap();
        session.id()
        // dropped here without close
    };
    let ended = wait_until_ended(&server, id).await;
    assert_eq!(ended.end_reason(), pb::EndReason::ClosedByClient);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_clientless_session_still_closes_it() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            let session = client.clientless_session("R41").await.unwrap();
            opened_tx.send(session.id()).unwrap();
            panic!("the work inside the session failed");
            #[allow(unreachable_code)]
            session.close().await
        }
    });
    let id = opened_rx.await.unwrap();
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    let ended = wait_until_ended(&server, id).await;
    assert_eq!(ended.end_reason(), pb::EndReason::ClosedByClient);
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Runs `f` with a subscriber that writes here; returns what was written.
    fn during(f: impl FnOnce()) -> String {
        let log = Self::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = log.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }
}

#[test]
fn guards_dropped_outside_a_runtime_warn_and_leave_the_session_to_the_server() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(TestServer::start());

    let client_runtime = tokio::runtime::Runtime::new().unwrap();
    let (session, scope) = client_runtime.block_on(async {
        let client = client_for(&server).await;
        let session = client.clientless_session("R41").await.unwrap();
        let scope = session.user_context("R50").await.unwrap();
        (session, scope)
    });
    let id = session.id();
    drop(client_runtime);

    // Dropped with no runtime around, in a plain thread: no panic, a warning.
    let log = std::thread::spawn(move || {
        CapturedLog::during(move || {
            drop(scope);
            drop(session);
        })
    })
    .join()
    .expect("dropping a guard outside a runtime does not panic");
    let warnings: Vec<_> = log.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings[0].contains("user-context guard dropped outside a tokio runtime"),
        "{log}"
    );
    assert!(
        warnings[1].contains("clientless session guard dropped outside a tokio runtime"),
        "{log}"
    );
    assert!(warnings[1].contains(&format!("session_id={id}")), "{log}");

    // Nothing was done: the server's idle timeout is the backstop.
    server_runtime.block_on(async {
        let info = raw_info(&server, id).await;
        assert_eq!(info.state(), pb::SessionState::Open);
        assert_eq!(info.effective_user, "R50");
        server.stop().await;
    });
}

// ------------------------------------------------------ UserContextGuard

#[tokio::test]
async fn nested_user_context_guards_restore_in_order() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let id = session.id();

    let outer = client.user_context(id, "R50").await.unwrap();
    assert_eq!(outer.session_id(), id);
    assert_eq!(
        (outer.user(), outer.previous_user(), outer.depth()),
        ("R50", "R41", 1)
    );
    let inner = session.user_context("R60").await.unwrap();
    assert_eq!(
        (inner.user(), inner.previous_user(), inner.depth()),
        ("R60", "R50", 2)
    );
    assert_ne!(inner.scope_id(), outer.scope_id());
    assert_eq!(raw_context(&server, id).await, ("R60".to_owned(), 2));

    let restored = inner.restore().await.unwrap();
    assert_eq!((restored.user.as_str(), restored.depth), ("R50", 1));
    let restored = outer.restore().await.unwrap();
    assert_eq!((restored.user.as_str(), restored.depth), ("R41", 0));
    assert_eq!(raw_context(&server, id).await, ("R41".to_owned(), 0));
    session.close().await.unwrap();
}

#[tokio::test]
async fn restoring_an_outer_guard_first_is_refused() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let outer = session.user_context("R50").await.unwrap();
    let inner = session.user_context("R60").await.unwrap();
    let inner_scope = inner.scope_id();
    let error = outer.restore().await.unwrap_err();
    assert!(
        matches!(error, Error::ScopeNotInnermost { innermost_scope_id: Some(s), .. } if s == inner_scope),
        "{error:?}"
    );
    assert_eq!(inner.restore().await.unwrap().user, "R50");
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_nested_guards_pop_innermost_first() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let id = session.id();
    for _ in 0..5 {
        let _outer = client.user_context(id, "R50").await.unwrap();
        let _middle = client.user_context(id, "R60").await.unwrap();
        let _inner = client.user_context(id, "R70").await.unwrap();
        assert_eq!(raw_context(&server, id).await, ("R70".to_owned(), 3));
        // all three dropped here, innermost first
    }
    wait_until_context(&server, id, "R41", 0).await;
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_a_dropped_guard_see_what_it_restored() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let id = session.id();
    {
        let _as_r50 = session.user_context("R50").await.unwrap();
    }
    // The client's own calls wait for its background pop: no polling.
    let context = client.get_user_context(id).await.unwrap();
    assert_eq!((context.user.as_str(), context.depth), ("R41", 0));
    // And a new guard is pushed after the old one was popped.
    let again = session.user_context("R60").await.unwrap();
    assert_eq!(again.depth(), 1);
    assert_eq!(again.previous_user(), "R41");
    again.restore().await.unwrap();
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_user_context_still_restores_it() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.clientless_session("R41").await.unwrap();
    let id = session.id();
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            let _as_r50 = client.user_context(id, "R50").await.unwrap();
            let _as_r60 = client.user_context(id, "R60").await.unwrap();
            panic!("the work inside the user context failed");
        }
    });
    assert!(task.await.unwrap_err().is_panic());
    wait_until_context(&server, id, "R41", 0).await;
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_is_closed_after_its_dropped_scopes_are_popped() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = {
        let session: ClientlessSession = client.clientless_session("R41").await.unwrap();
        let _scope = session.user_context("R50").await.unwrap();
        session.id()
        // the scope is dropped first, then the session
    };
    let ended = wait_until_ended(&server, id).await;
    assert_eq!(
        ended.effective_user, "R41",
        "the scope was popped before the close"
    );
    assert_eq!(ended.user_context_depth, 0);
}

// --------------------------------------- retries, deadlines and the token

/// A `SessionService` that fails on cue, counts calls and keeps their
/// metadata: the real server cannot be made UNAVAILABLE on demand.
#[derive(Default)]
struct Scripted {
    /// Calls answered so far.
    calls: AtomicU32,
    /// How many of the next calls fail with `failure`.
    failures_left: AtomicU32,
    /// What a failing call answers.
    failure: Mutex<Option<tonic::Status>>,
    /// The metadata of every call.
    seen: Mutex<Vec<tonic::metadata::MetadataMap>>,
}

impl Scripted {
    fn fail_next(&self, times: u32, status: tonic::Status) {
        *self.failure.lock().unwrap() = Some(status);
        self.failures_left.store(times, Ordering::SeqCst);
        self.calls.store(0, Ordering::SeqCst);
    }

    fn answer<T>(&self, request: &tonic::Request<T>) -> Result<(), tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(request.metadata().clone());
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err(self.failure.lock().unwrap().clone().unwrap())
        } else {
            Ok(())
        }
    }
}

fn scripted_info(user: &str) -> pb::SessionInfo {
    let now = Some(prost_types::Timestamp::from(SystemTime::now()));
    pb::SessionInfo {
        session_id: 1,
        session_uuid: uuid::Uuid::now_v7().to_string(),
        user: user.to_owned(),
        kind: pb::SessionKind::Clientless.into(),
        state: pb::SessionState::Open.into(),
        start_time: now,
        last_activity_time: now,
        effective_user: user.to_owned(),
        ..pb::SessionInfo::default()
    }
}

type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

/// The served side of a [`Scripted`] (shared with the test that scripts it).
struct ScriptedService(Arc<Scripted>);

impl std::ops::Deref for ScriptedService {
    type Target = Scripted;

    fn deref(&self) -> &Scripted {
        &self.0
    }
}

#[tonic::async_trait]
impl pb::session_service_server::SessionService for ScriptedService {
    type WatchSessionsStream =
        futures::stream::Empty<Result<pb::WatchSessionsResponse, tonic::Status>>;

    async fn watch_sessions(
        &self,
        _: tonic::Request<pb::WatchSessionsRequest>,
    ) -> Reply<Self::WatchSessionsStream> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn get_session_user(
        &self,
        request: tonic::Request<pb::GetSessionUserRequest>,
    ) -> Reply<pb::GetSessionUserResponse> {
        self.answer(&request)?;
        Ok(tonic::Response::new(pb::GetSessionUserResponse {
            user: "R41".into(),
        }))
    }
    async fn get_session_info(
        &self,
        request: tonic::Request<pb::GetSessionInfoRequest>,
    ) -> Reply<pb::GetSessionInfoResponse> {
        // Never answers: for deadlines.
        self.answer(&request)?;
        std::future::pending().await
    }
    async fn list_sessions(
        &self,
        _: tonic::Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn start_session(
        &self,
        _: tonic::Request<pb::StartSessionRequest>,
    ) -> Reply<pb::StartSessionResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn touch_session(
        &self,
        _: tonic::Request<pb::TouchSessionRequest>,
    ) -> Reply<pb::TouchSessionResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn end_session(
        &self,
        _: tonic::Request<pb::EndSessionRequest>,
    ) -> Reply<pb::EndSessionResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn open_clientless_session(
        &self,
        request: tonic::Request<pb::OpenClientlessSessionRequest>,
    ) -> Reply<pb::OpenClientlessSessionResponse> {
        self.answer(&request)?;
        Ok(tonic::Response::new(pb::OpenClientlessSessionResponse {
            session_id: 1,
            session: Some(scripted_info(&request.get_ref().user)),
            ..Default::default()
        }))
    }
    async fn close_clientless_session(
        &self,
        request: tonic::Request<pb::CloseClientlessSessionRequest>,
    ) -> Reply<pb::CloseClientlessSessionResponse> {
        self.answer(&request)?;
        let mut info = scripted_info("R41");
        info.state = pb::SessionState::Ended.into();
        Ok(tonic::Response::new(pb::CloseClientlessSessionResponse {
            session: Some(info),
        }))
    }
    async fn open_module(
        &self,
        _: tonic::Request<pb::OpenModuleRequest>,
    ) -> Reply<pb::OpenModuleResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
    async fn get_return_value(
        &self,
        _: tonic::Request<pb::GetReturnValueRequest>,
    ) -> Reply<pb::GetReturnValueResponse> {
        Err(tonic::Status::unimplemented("scripted"))
    }
}

/// Serves a scripted `SessionService` on an ephemeral port.
async fn scripted_server() -> (Arc<Scripted>, String) {
    let script = Arc::new(Scripted::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service =
        pb::session_service_server::SessionServiceServer::new(ScriptedService(Arc::clone(&script)));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (script, endpoint)
}

fn store_unavailable() -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    tonic::Status::with_error_details(
        Code::Unavailable,
        "the session store is unavailable; retry later",
        ErrorDetails::with_error_info(
            "STORE_UNAVAILABLE",
            "sessiond",
            std::collections::HashMap::<String, String>::new(),
        ),
    )
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn reads_retry_on_unavailable_up_to_the_policy() {
    let (script, endpoint) = scripted_server().await;
    let client = Client::builder()
        .retry(quick_retries(4))
        .connect(&endpoint)
        .await
        .unwrap();

    script.fail_next(3, tonic::Status::unavailable("connection reset"));
    assert_eq!(
        client.get_session_user(SessionId::new(1)).await.unwrap(),
        "R41"
    );
    assert_eq!(script.calls.load(Ordering::SeqCst), 4, "three retries");

    script.fail_next(10, tonic::Status::unavailable("connection reset"));
    let error = client
        .get_session_user(SessionId::new(1))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(Code::Unavailable));
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        4,
        "bounded by max_attempts"
    );

    script.fail_next(10, store_unavailable());
    let error = client
        .get_session_user(SessionId::new(1))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::StoreUnavailable { .. }), "{error:?}");

    script.fail_next(1, tonic::Status::not_found("gone"));
    client
        .get_session_user(SessionId::new(1))
        .await
        .unwrap_err();
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        1,
        "only UNAVAILABLE is retried"
    );
}

#[tokio::test]
async fn writes_are_not_retried_blindly() {
    let (script, endpoint) = scripted_server().await;
    let client = Client::builder()
        .retry(quick_retries(4))
        .connect(&endpoint)
        .await
        .unwrap();

    // UNAVAILABLE from the transport: the session may have been opened.
    script.fail_next(1, tonic::Status::unavailable("connection reset"));
    let error = client.open_clientless_session("R41").await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Unavailable));
    assert_eq!(script.calls.load(Ordering::SeqCst), 1, "not retried");

    // STORE_UNAVAILABLE: the server guarantees nothing was changed.
    script.fail_next(2, store_unavailable());
    let opened = client.open_clientless_session("R41").await.unwrap();
    assert_eq!(opened.user, "R41");
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);

    // Closing is idempotent by contract: retried on any UNAVAILABLE.
    script.fail_next(1, tonic::Status::unavailable("connection reset"));
    let closed = client
        .close_clientless_session(SessionId::new(1), None)
        .await
        .unwrap();
    assert_eq!(closed.state, SessionState::Ended);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn calls_carry_their_deadline_and_the_bearer_token() {
    let (script, endpoint) = scripted_server().await;
    let client = Client::builder()
        .timeout(Duration::from_millis(300))
        .bearer_token("s3cret-t0ken")
        .retry(RetryPolicy::never())
        .connect(&endpoint)
        .await
        .unwrap();

    // A call the server never answers ends at the deadline.
    let started = Instant::now();
    let error = client
        .get_session_info(SessionId::new(1))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DeadlineExceeded), "{error:?}");
    assert_eq!(error.code(), Some(Code::DeadlineExceeded));
    assert!(started.elapsed() < Duration::from_secs(20));

    client.get_session_user(SessionId::new(1)).await.unwrap();
    let seen = script.seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(last.get("authorization").unwrap(), "Bearer s3cret-t0ken");
    let deadline = grpc_timeout(last);
    assert!(
        deadline > Duration::ZERO && deadline <= Duration::from_millis(300),
        "{deadline:?}"
    );

    // Without a token no header is sent; without a timeout no deadline.
    let plain = Client::builder()
        .no_timeout()
        .connect(&endpoint)
        .await
        .unwrap();
    plain.get_session_user(SessionId::new(1)).await.unwrap();
    let seen = script.seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert!(last.get("authorization").is_none());
    assert!(last.get("grpc-timeout").is_none());

    // with_timeout changes the deadline of a clone only.
    client
        .with_timeout(Duration::from_secs(7))
        .get_session_user(SessionId::new(1))
        .await
        .unwrap();
    let seen = script.seen.lock().unwrap().clone();
    let deadline = grpc_timeout(seen.last().unwrap());
    assert!(
        deadline > Duration::from_secs(6) && deadline <= Duration::from_secs(7),
        "{deadline:?}"
    );
}

/// The deadline a call carried in its `grpc-timeout` header.
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Duration {
    let header = metadata
        .get("grpc-timeout")
        .expect("the call carries a deadline")
        .to_str()
        .unwrap();
    let (digits, unit) = header.split_at(header.len() - 1);
    let amount: u64 = digits.parse().unwrap();
    match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        other => panic!("unknown grpc-timeout unit {other:?} in {header:?}"),
    }
}

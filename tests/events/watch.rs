//! The watch guarantees on SQLite, each checked against `ListEvents` over
//! the same range: ordered and unique (revisions strictly increase),
//! reliable (with many concurrent writers, nothing is missed), resumable
//! (after any revision, exactly the events after it), bookmarkable (after
//! `progress{P}` nothing at or below P; resuming after P loses nothing),
//! the initial state (exactly the unended sessions as of its revision,
//! then the events after it), filters, only readable sessions, and a
//! shutdown that ends the watch with a revision to resume after.

use std::time::Duration;

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::EventKind as K;
use sessiond_proto::v1::watch_sessions_response::Message;
use tonic::Code;

use super::common::{TestServer, assert_error, metadata};
use super::log::secured;
use super::{
    Acks, Clients, Watch, as_caller, assert_every_ack_recorded, assert_ordered_and_unique, churn,
    churn_concurrently, events_after, head, list_all, revisions, unended, watchable,
};

/// How long an idle watch waits before it sends progress, in these tests.
const PROGRESS: Duration = Duration::from_millis(200);

/// A server whose idle watches send progress every [`PROGRESS`].
async fn server() -> TestServer {
    TestServer::start_with(|config| config.watch_progress_interval = PROGRESS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_ordered_unique_and_miss_nothing_under_concurrent_writers() {
    let server = server().await;
    let c = Clients::on(server.channel().await);
    churn(c.clone(), "W".into(), 1, Acks::default())
        .await
        .unwrap();
    let start = head(&mut c.audit.clone()).await;
    let mut sessions = c.sessions.clone();
    let mut from_start = Watch::after(&mut sessions, start).await;
    let mut from_now = Watch::after(&mut sessions, 0).await;
    let (before, now) = from_now.progress().await;
    assert!(
        before
            .iter()
            .all(|e| e.revision <= start && e.revision <= now)
    );

    let clients: Vec<Clients> = (0..4).map(|_| c.clone()).collect();
    let writers = tokio::spawn(async move { churn_concurrently(&clients, 8, 8).await });
    // A watch that starts while the writers write catches up from the log
    // while the feed delivers.
    let mut midway = Watch::after(&mut sessions, start).await;
    let acks = writers.await.unwrap();
    let end = head(&mut c.audit.clone()).await;

    let log = watchable(events_after(&mut c.audit.clone(), start).await);
    assert_eq!(log.last().unwrap().revision, end);
    assert_every_ack_recorded(&acks, &log);
    for (what, watch) in [("from the start", &mut from_start), ("midway", &mut midway)] {
        let received = watch.until(end).await;
        assert_ordered_and_unique(&received);
        assert_eq!(revisions(&received), revisions(&log), "{what}");
        assert_eq!(received, log, "{what}: the events as the log has them");
    }
    let received = from_now.until(end).await;
    let expected: Vec<_> = log.into_iter().filter(|e| e.revision > now).collect();
    assert_eq!(
        received, expected,
        "from now: everything after its progress"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_after_any_revision_and_after_a_progress() {
    let server = server().await;
    let c = Clients::on(server.channel().await);
    let mut sessions = c.sessions.clone();
    let mut audit = c.audit.clone();
    churn_concurrently(std::slice::from_ref(&c), 2, 3).await;
    let written = head(&mut audit).await;
    for after in [1, written / 3, written / 2, written - 1, written] {
        let mut resumed = Watch::after(&mut sessions, after).await;
        let received = resumed.until(written).await;
        assert_eq!(
            received,
            watchable(events_after(&mut audit, after).await),
            "after {after}"
        );
    }

    // Bookmarks: nothing at or below a progress revision arrives after it,
    // and a watch resumed after it misses nothing.
    let mut watch = Watch::after(&mut sessions, 0).await;
    let (_, bookmark) = watch.progress().await;
    let clients = vec![c.clone(); 2];
    let acks = tokio::spawn(async move { churn_concurrently(&clients, 4, 3).await });
    let mut resumed = Watch::after(&mut sessions, bookmark).await;
    acks.await.unwrap();
    let end = head(&mut audit).await;
    let received = watch.until(end).await;
    assert!(received.iter().all(|e| e.revision > bookmark));
    let log = watchable(events_after(&mut audit, bookmark).await);
    assert_eq!(received, log);
    assert_eq!(resumed.until(end).await, log);
    server.stop().await;
}

/// Reads a watch's initial state: its snapshots and its revision.
async fn initial_state(watch: &mut Watch) -> (Vec<pb::Event>, i64) {
    let mut snapshots = Vec::new();
    loop {
        match watch.next().await.unwrap() {
            Message::Event(event) => snapshots.push(event),
            Message::InitialStateEnd(end) => return (snapshots, end.revision),
            Message::Progress(progress) => {
                panic!(
                    "progress {} before the initial state's end",
                    progress.revision
                )
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_state_is_the_unended_sessions_as_of_its_revision() {
    let server = server().await;
    let c = Clients::on(server.channel().await);
    let mut sessions = c.sessions.clone();
    let mut audit = c.audit.clone();
    churn_concurrently(std::slice::from_ref(&c), 3, 2).await;
    for user in ["W1", "W2"] {
        sessions
            .start_session(pb::StartSessionRequest {
                user: user.into(),
                client: String::new(),
            })
            .await
            .unwrap();
    }
    // Writers change sessions while the watches take their initial state.
    let clients = vec![c.clone(); 2];
    let writers = tokio::spawn(async move { churn_concurrently(&clients, 4, 4).await });
    let with_state = |user: &str| pb::WatchSessionsRequest {
        user: user.into(),
        send_initial_state: true,
        ..pb::WatchSessionsRequest::default()
    };
    let mut all = Watch::start(&mut sessions, None, with_state(""))
        .await
        .unwrap();
    let mut of_w1 = Watch::start(&mut sessions, None, with_state("W1"))
        .await
        .unwrap();
    writers.await.unwrap();
    let end = head(&mut audit).await;
    let log = events_after(&mut audit, 0).await;

    for (user, watch) in [(None, &mut all), (Some("W1"), &mut of_w1)] {
        let (snapshots, revision) = initial_state(watch).await;
        let as_of: Vec<_> = log
            .iter()
            .filter(|e| e.revision <= revision)
            .cloned()
            .collect();
        let expected: Vec<(i64, String)> = unended(&as_of)
            .into_iter()
            .filter(|(_, owner)| user.is_none_or(|user| owner == user))
            .collect();
        assert!(!expected.is_empty());
        let mut got: Vec<(i64, String)> = snapshots
            .iter()
            .map(|s| (s.session_id, s.user.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got, expected,
            "{user:?}: the unended sessions at {revision}"
        );
        for snapshot in &snapshots {
            assert_eq!(snapshot.kind(), K::SessionSnapshot);
            assert_eq!(snapshot.revision, revision);
            let session = snapshot.session.as_ref().expect("the session's record");
            assert_eq!(session.session_id, snapshot.session_id);
            assert_ne!(session.state(), pb::SessionState::Ended);
        }
        let after: Vec<_> = watchable(log.clone())
            .into_iter()
            .filter(|e| e.revision > revision && user.is_none_or(|user| e.user == user))
            .collect();
        assert_eq!(watch.until(end).await, after, "{user:?}: then the events");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_only_the_user_or_session_it_names() {
    let server = server().await;
    let c = Clients::on(server.channel().await);
    let (mut sessions, mut contexts, mut audit) =
        (c.sessions.clone(), c.contexts.clone(), c.audit.clone());
    let followed = sessions
        .open_clientless_session(pb::OpenClientlessSessionRequest { user: "X".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let start = head(&mut audit).await;
    let watch = |user: &str, session_id: i64| pb::WatchSessionsRequest {
        after_revision: start,
        user: user.into(),
        session_id,
        send_initial_state: false,
    };
    let mut of_user = Watch::start(&mut sessions, None, watch("W1", 0))
        .await
        .unwrap();
    let mut of_session = Watch::start(&mut sessions, None, watch("", followed))
        .await
        .unwrap();
    let clients = vec![c.clone(); 2];
    let writers = tokio::spawn(async move { churn_concurrently(&clients, 4, 3).await });
    let scope = contexts
        .push_user_context(pb::PushUserContextRequest {
            session_id: followed,
            user: "Y".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .scope_id;
    contexts
        .pop_user_context(pb::PopUserContextRequest {
            session_id: followed,
            scope_id: scope,
        })
        .await
        .unwrap();
    sessions
        .close_clientless_session(pb::CloseClientlessSessionRequest {
            session_id: followed,
            grace: None,
        })
        .await
        .unwrap();
    writers.await.unwrap();
    let end = head(&mut audit).await;

    let of_w1 = list_all(
        &mut audit,
        None,
        pb::ListEventsRequest {
            user: "W1".into(),
            after_revision: start,
            ..pb::ListEventsRequest::default()
        },
    )
    .await;
    assert!(!of_w1.is_empty());
    assert_eq!(of_user.until(end).await, watchable(of_w1));
    let of_followed = list_all(
        &mut audit,
        None,
        pb::ListEventsRequest {
            session_id: followed,
            after_revision: start,
            ..pb::ListEventsRequest::default()
        },
    )
    .await;
    let kinds: Vec<_> = of_followed.iter().map(pb::Event::kind).collect();
    assert!(kinds.starts_with(&[K::UserContextPushed, K::UserContextPopped]));
    assert_eq!(kinds.last(), Some(&K::SessionEnded));
    assert_eq!(of_session.until(end).await, of_followed);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_only_the_sessions_it_may_read() {
    let files = tempfile::tempdir().unwrap();
    let (security, tokens) = secured(files.path());
    let server = TestServer::start_with(|config| {
        config.security = security;
        config.watch_progress_interval = PROGRESS;
    })
    .await;
    let mut c = Clients::on(server.channel().await);
    let (service, r41, auditor) = (
        Some(tokens.service.as_str()),
        Some(tokens.r41.as_str()),
        Some(tokens.auditor.as_str()),
    );
    let mut open = async |user: &str| {
        c.sessions
            .open_clientless_session(as_caller(
                service,
                pb::OpenClientlessSessionRequest { user: user.into() },
            ))
            .await
            .unwrap()
            .into_inner()
            .session_id
    };
    let own = open("R41").await;
    let other = open("R42").await;
    let with_state = pb::WatchSessionsRequest {
        send_initial_state: true,
        ..pb::WatchSessionsRequest::default()
    };
    let mut sessions = c.sessions.clone();
    let mut as_r41 = Watch::start(&mut sessions, r41, with_state.clone())
        .await
        .unwrap();
    let mut as_service = Watch::start(&mut sessions, service, with_state)
        .await
        .unwrap();
    let (snapshots, r41_start) = initial_state(&mut as_r41).await;
    assert_eq!(
        snapshots.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        [own]
    );
    let (snapshots, service_start) = initial_state(&mut as_service).await;
    assert_eq!(
        snapshots.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        [own, other]
    );

    for id in [own, other] {
        let push = pb::PushUserContextRequest {
            session_id: id,
            user: "R43".into(),
        };
        c.contexts
            .push_user_context(as_caller(service, push))
            .await
            .unwrap();
    }
    // Refused: recorded in the audit trail, never sent on a watch.
    let refused = c
        .contexts
        .set_user_context(as_caller(
            r41,
            pb::SetUserContextRequest {
                session_id: own,
                user: "R42".into(),
            },
        ))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);
    for id in [own, other] {
        let end = pb::EndSessionRequest { session_id: id };
        c.sessions
            .end_session(as_caller(service, end))
            .await
            .unwrap();
    }
    let all = super::common::eventually("the refusal to be recorded", || {
        let mut audit = c.audit.clone();
        async move {
            let all = list_all(&mut audit, auditor, pb::ListEventsRequest::default()).await;
            all.iter()
                .any(|e| e.kind() == K::CallRefused)
                .then_some(all)
        }
    })
    .await;
    let end = all.last().unwrap().revision;
    let after = |start: i64| {
        watchable(all.clone())
            .into_iter()
            .filter(move |e| e.revision > start)
    };
    let own_events: Vec<_> = after(r41_start).filter(|e| e.user == "R41").collect();
    assert_eq!(own_events.len(), 2, "pushed and ended");
    assert_eq!(as_r41.until(end).await, own_events);
    let every: Vec<_> = after(service_start).collect();
    assert_eq!(every.len(), 4);
    assert_eq!(as_service.until(end).await, every);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_a_watch_with_a_revision_to_resume_after() {
    let server = TestServer::start_with(|config| {
        config.watch_progress_interval = PROGRESS;
        config.drain_timeout = Duration::from_secs(60);
    })
    .await;
    let c = Clients::on(server.channel().await);
    churn(c.clone(), "W".into(), 2, Acks::default())
        .await
        .unwrap();
    let mut sessions = c.sessions.clone();
    let mut watch = Watch::after(&mut sessions, 0).await;
    let (_, watched) = watch.progress().await;

    let stopping = tokio::spawn(server.stop());
    let status = loop {
        match watch.next().await {
            Ok(_) => {}
            Err(status) => break status,
        }
    };
    let status = assert_error(
        Err::<(), _>(status),
        Code::Unavailable,
        "SERVER_SHUTTING_DOWN",
    );
    let revision: i64 = metadata(&status, "revision")
        .expect("the revision to resume after")
        .parse()
        .unwrap();
    assert!(revision >= watched);
    // The watch does not hold the server up until its drain deadline.
    let dir = tokio::time::timeout(Duration::from_secs(45), stopping)
        .await
        .expect("the server stopped before its 60 s drain deadline")
        .unwrap();

    // Resumed after that revision (once the server is back), nothing is
    // lost: the clientless session the shutdown ended included.
    let server = TestServer::start_in(dir, |config| {
        config.watch_progress_interval = PROGRESS;
    })
    .await;
    let c = Clients::on(server.channel().await);
    let log = watchable(events_after(&mut c.audit.clone(), revision).await);
    assert!(
        log.iter()
            .any(|e| e.end_reason() == pb::EndReason::ServerShutdown)
    );
    let mut resumed = Watch::after(&mut c.sessions.clone(), revision).await;
    let end = head(&mut c.audit.clone()).await;
    assert_eq!(resumed.until(end).await, log);
    server.stop().await;
}

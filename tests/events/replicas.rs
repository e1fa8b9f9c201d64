//! Replicas on one PostgreSQL database make one log: with both writing at
//! once, a watcher on either receives every event of both, in order,
//! without gaps or repeats, and the ledger verifies; when a replica is
//! killed, the one that takes over its sessions records all their ends in
//! one transaction, and a watcher receives all of it; a call forwarded to
//! a session's owner keeps the caller's request id and trace context.

use std::collections::BTreeSet;
use std::time::Duration;

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::EventKind as K;
use tonic::Request;

use super::common::postgres::fresh_database;
use super::common::{ServerProcess, TestServer, eventually};
use super::{
    Clients, Watch, assert_chained, assert_every_ack_recorded, assert_ordered_and_unique,
    churn_concurrently, events_after, head, list_all, watchable,
};

/// A replica of the database at `url`, owning sessions as `node`.
async fn replica(url: &str, node: &str) -> TestServer {
    TestServer::start_with(|config| {
        config.database = url.to_owned();
        node.clone_into(&mut config.node_id);
        config.watch_progress_interval = Duration::from_millis(200);
        config.lease_ttl = Duration::from_secs(2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn two_replicas_writing_at_once_make_one_log_each_watcher_receives_whole() {
    let url = fresh_database("two_replicas_one_log").await;
    let a = replica(&url, "a").await;
    let b = replica(&url, "b").await;
    let on_a = Clients::on(a.channel().await);
    let on_b = Clients::on(b.channel().await);
    let mut watch_a = Watch::after(&mut on_a.sessions.clone(), 0).await;
    let mut watch_b = Watch::after(&mut on_b.sessions.clone(), 0).await;
    let (_, from_a) = watch_a.progress().await;
    let (_, from_b) = watch_b.progress().await;

    let acks = churn_concurrently(&[on_a.clone(), on_b.clone()], 8, 5).await;
    let end = head(&mut on_a.audit.clone()).await;
    assert_eq!(head(&mut on_b.audit.clone()).await, end, "one head");
    let log = events_after(&mut on_b.audit.clone(), 0).await;
    assert_eq!(log[0].revision, 1);
    assert_eq!(log.last().unwrap().revision, end);
    assert_chained(&log);
    assert_every_ack_recorded(&acks, &log);

    for (what, watch, from) in [("A", &mut watch_a, from_a), ("B", &mut watch_b, from_b)] {
        let received = watch.until(end).await;
        assert_ordered_and_unique(&received);
        let expected: Vec<_> = watchable(log.clone())
            .into_iter()
            .filter(|e| e.revision > from)
            .collect();
        assert_eq!(received, expected, "the watcher on {what}");
    }
    for clients in [&on_a, &on_b] {
        let verified = clients
            .audit
            .clone()
            .verify_ledger(pb::VerifyLedgerRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(verified.ok, "{verified:?}");
        assert_eq!(verified.verified_events, end);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_takeover_of_a_killed_replica_arrives_as_one_whole_transaction() {
    let url = fresh_database("takeover_one_transaction").await;
    let a = replica(&url, "a").await;
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules.toml");
    // Long enough to be running when B dies; short enough not to linger.
    std::fs::write(
        &modules,
        "[modules.sleepy]\ncommand = [\"sleep\", \"30\"]\n",
    )
    .unwrap();
    let flags = [
        "--node-id",
        "b",
        "--lease-ttl",
        "2s",
        "--modules",
        modules.to_str().unwrap(),
    ];
    let mut b = ServerProcess::spawn(&url, &flags).await;
    let mut on_b = Clients::connect(b.endpoint()).await;
    let on_a = Clients::on(a.channel().await);
    let mut lost = BTreeSet::new();
    for user in ["R1", "R2", "R3"] {
        let id = on_b
            .sessions
            .open_clientless_session(pb::OpenClientlessSessionRequest { user: user.into() })
            .await
            .unwrap()
            .into_inner()
            .session_id;
        on_b.sessions
            .open_module(pb::OpenModuleRequest {
                session_id: id,
                module_id: "sleepy".into(),
                parameters: None,
            })
            .await
            .unwrap();
        lost.insert(id);
    }
    let mut watch = Watch::after(&mut on_a.sessions.clone(), 0).await;
    let (_, from) = watch.progress().await;
    let before = head(&mut on_a.audit.clone()).await;
    b.child.start_kill().unwrap();
    b.child.wait().await.unwrap();

    let ended_filter = pb::ListEventsRequest {
        kinds: vec![K::SessionEnded.into()],
        ..pb::ListEventsRequest::default()
    };
    let ended = eventually("replica a to end b's sessions", || {
        let (mut audit, filter) = (on_a.audit.clone(), ended_filter.clone());
        async move {
            let ended = super::list_all(&mut audit, None, filter).await;
            (ended.len() == 3).then_some(ended)
        }
    })
    .await;
    let end = ended.last().unwrap().revision;
    let log = events_after(&mut on_a.audit.clone(), from).await;
    let takeover: Vec<_> = log
        .iter()
        .filter(|e| e.revision > before && e.revision <= end)
        .collect();
    assert_eq!(
        takeover.len(),
        6,
        "three runs interrupted, three sessions ended"
    );
    let (runs, sessions): (Vec<&&pb::Event>, Vec<&&pb::Event>) =
        takeover.iter().partition(|e| e.kind() == K::RunConcluded);
    assert_eq!(runs.len(), 3);
    for run in &runs {
        assert_eq!(run.failure_kind(), pb::ModuleFailureKind::Interrupted);
    }
    let ended_ids: BTreeSet<i64> = sessions.iter().map(|e| e.session_id).collect();
    assert_eq!(ended_ids, lost);
    for event in &takeover {
        assert_eq!(event.subject, "system:sessiond");
        assert_eq!(event.time, takeover[0].time, "one transaction, one time");
        if event.kind() == K::SessionEnded {
            assert_eq!(event.end_reason(), pb::EndReason::NodeLost);
        }
    }
    let received = watch.until(end).await;
    let expected: Vec<_> = log.iter().filter(|e| e.revision <= end).cloned().collect();
    assert_eq!(received, expected);
    let takeover: Vec<_> = takeover.into_iter().cloned().collect();
    assert!(
        received.ends_with(&takeover),
        "all of the transaction arrived"
    );
    a.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_call_forwarded_to_the_owner_keeps_its_request_id_and_trace_context() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let url = fresh_database("forwarded_request_id").await;
    let a = replica(&url, "a").await;
    let b = replica(&url, "b").await;
    let mut on_a = Clients::on(a.channel().await);
    let mut on_b = Clients::on(b.channel().await);
    let id = on_a
        .sessions
        .open_clientless_session(pb::OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;

    // Closed through b: b forwards the call to a, which owns the session.
    let mut close = Request::new(pb::CloseClientlessSessionRequest {
        session_id: id,
        grace: None,
    });
    close
        .metadata_mut()
        .insert("x-request-id", "req-close-via-b".parse().unwrap());
    close
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    let closed = on_b
        .sessions
        .close_clientless_session(close)
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(closed.owner_node, "a");
    let filter = pb::ListEventsRequest {
        session_id: id,
        kinds: vec![K::SessionEnded.into()],
        ..pb::ListEventsRequest::default()
    };
    let ended = list_all(&mut on_b.audit, None, filter).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].request_id, "req-close-via-b");
    assert_eq!(ended[0].traceparent, TRACEPARENT);
    a.stop().await;
    b.stop().await;
}

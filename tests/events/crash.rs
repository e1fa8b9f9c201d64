//! kill -9 of the real binary on SQLite while writers write and a watcher
//! watches, and a restart on the same database: every acknowledged write
//! has its event, the chain verifies, revisions go on without a gap, the
//! restart's recovery ends the clientless sessions left open in one
//! transaction, and the watcher, resuming after the last revision it saw,
//! receives exactly the rest.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::EventKind as K;
use sessiond_proto::v1::watch_sessions_response::Message;

use super::common::{ServerProcess, database_url, eventually};
use super::{
    Acks, Clients, Watch, assert_chained, assert_every_ack_recorded, churn, events_after, head,
    unended, watchable,
};

/// The binary's flags in this test.
const FLAGS: [&str; 2] = ["--watch-progress-interval", "200ms"];

/// Reads `watch` until it ends, keeping every event it receives.
async fn record(mut watch: Watch, seen: Arc<Mutex<Vec<pb::Event>>>) {
    while let Ok(message) = watch.next().await {
        if let Message::Event(event) = message {
            seen.lock().unwrap().push(event);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_acknowledged_change_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let mut first = ServerProcess::spawn(&database, &FLAGS).await;
    let clients = Clients::connect(first.endpoint()).await;
    let watch = Watch::after(&mut clients.sessions.clone(), 0).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = tokio::spawn(record(watch, Arc::clone(&seen)));

    let acks = Acks::default();
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let (clients, acks) = (clients.clone(), Arc::clone(&acks));
            tokio::spawn(churn(clients, format!("W{n}"), 1_000, acks))
        })
        .collect();
    eventually("two hundred acknowledged writes", || {
        let count = acks.lock().unwrap().len();
        async move { (count >= 200).then_some(()) }
    })
    .await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    for writer in writers {
        assert!(
            writer.await.unwrap().is_err(),
            "a writer outlived the server"
        );
    }
    watcher.await.unwrap();
    let acks = acks.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    let last_seen = seen.last().expect("the watcher saw events").revision;

    let second = ServerProcess::spawn(&database, &FLAGS).await;
    let mut clients = Clients::connect(second.endpoint()).await;
    let log = events_after(&mut clients.audit, 0).await;
    assert_eq!(log[0].revision, 1);
    assert_chained(&log);
    assert_every_ack_recorded(&acks, &log);
    let seen_in_log: Vec<_> = watchable(log.clone())
        .into_iter()
        .filter(|e| e.revision <= last_seen)
        .collect();
    assert_eq!(seen, seen_in_log, "a watch delivers only what is durable");

    // The restart's recovery: one transaction that ends exactly the
    // clientless sessions the crash left unended.
    let restart: Vec<_> = log
        .iter()
        .filter(|e| e.end_reason() == pb::EndReason::ServerRestart)
        .cloned()
        .collect();
    assert!(
        !restart.is_empty(),
        "the crash left clientless sessions open"
    );
    let crashed_at = restart[0].revision - 1;
    assert_eq!(
        &log[usize::try_from(crashed_at).unwrap()..],
        restart.as_slice(),
        "the recovery's events are contiguous and the last"
    );
    let clientless: BTreeSet<i64> = log
        .iter()
        .filter(|e| e.kind() == K::ClientlessSessionOpened)
        .map(|e| e.session_id)
        .collect();
    let left_open: BTreeSet<i64> = unended(&log[..usize::try_from(crashed_at).unwrap()])
        .into_keys()
        .filter(|id| clientless.contains(id))
        .collect();
    let ended: BTreeSet<i64> = restart.iter().map(|e| e.session_id).collect();
    assert_eq!(ended, left_open);
    for event in &restart {
        assert_eq!(event.kind(), K::SessionEnded);
        assert_eq!(event.subject, "system:sessiond");
        assert_eq!(event.time, restart[0].time, "one transaction, one time");
    }

    // Resumed after the last revision it saw, the watcher gets the rest.
    let end = head(&mut clients.audit).await;
    let mut resumed = Watch::after(&mut clients.sessions, last_seen).await;
    let rest = watchable(events_after(&mut clients.audit, last_seen).await);
    assert!(rest.ends_with(&restart));
    assert_eq!(resumed.until(end).await, rest);

    // And the log goes on from where it was, still verifiable.
    churn(clients.clone(), "after".into(), 1, Acks::default())
        .await
        .unwrap();
    let more = events_after(&mut clients.audit, end).await;
    assert_eq!(more[0].revision, end + 1);
    assert_eq!(more[0].prev_hash, log.last().unwrap().hash);
    assert_chained(&more);
    let verified = clients
        .audit
        .verify_ledger(pb::VerifyLedgerRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.verified_events, more.last().unwrap().revision);
}

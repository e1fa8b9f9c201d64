//! What only the SQLite store promises: one store owns its database
//! file, and the sessions it answers from memory match the database.
//! Not part of `conformance!`: these run on SQLite only.

use serde_json::json;
use sessiond::model::{EndReason, RunOutcome};
use sessiond::store::{Expiry, RunStore, ScopeStore, SessionStore, SqliteStore};

use crate::{at, clientless, interactive, module, no_parameters, user};

/// One SQLite store owns its database file: a second store on it waits for
/// the first to close, then opens with everything the first wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let id = clientless(&first, "R41").await;
    let waiting = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        SqliteStore::open(&path),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a second store waits while the first is open"
    );
    let ended = first
        .end_session(id, EndReason::ClosedByClient, at(10))
        .await
        .unwrap();
    drop(first);
    let second = SqliteStore::open(&path)
        .await
        .expect("opens once the first closed");
    assert_eq!(second.session(id).await.unwrap(), ended);
}

/// The SQLite store answers reads of sessions from memory after its own
/// writes; every record it gives must be the one in the database, as a
/// store opened afresh reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_session_records_in_memory_match_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let touched = clientless(&store, "R41").await;
    store.touch_session(touched, at(50)).await.unwrap();
    let closing = clientless(&store, "R41").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(60))
        .await
        .unwrap();
    let ended = interactive(&store, "R41").await;
    store
        .end_session(ended, EndReason::ClosedByClient, at(70))
        .await
        .unwrap();
    let skipped = clientless(&store, "R41").await;
    store
        .end_clientless_session(skipped, EndReason::ClosedByClient, at(80))
        .await
        .unwrap();
    let running = clientless(&store, "R41").await;
    let started = store
        .start_run(running, &module("100000"), &no_parameters(), at(90))
        .await
        .unwrap();
    store
        .finish_run(
            started.run.id,
            &RunOutcome::Succeeded(json!({"ok": true})),
            at(95),
        )
        .await
        .unwrap();
    let scoped = clientless(&store, "R41").await;
    let pushed = store
        .push_user_context(scoped, user("X"), at(100))
        .await
        .unwrap();
    let inner = store
        .push_user_context(scoped, user("Y"), at(110))
        .await
        .unwrap();
    store
        .pop_user_context(scoped, pushed.scope_id, at(120))
        .await
        .expect_err("not the innermost scope");
    store
        .pop_user_context(scoped, inner.scope_id, at(130))
        .await
        .unwrap();
    store
        .set_user_context(scoped, user("Z"), at(140))
        .await
        .unwrap();
    let expired = clientless(&store, "R41").await;
    let expiry = Expiry {
        idle_before: None,
        started_before: Some(at(1_000)),
    };
    store
        .begin_closing_expired(expired, &expiry, at(1_000))
        .await
        .unwrap();

    let ids = [touched, closing, ended, skipped, running, scoped, expired];
    let mut remembered = Vec::new();
    for id in ids {
        remembered.push(store.session(id).await.unwrap());
    }
    drop(store);
    let fresh = SqliteStore::open(&path).await.unwrap();
    for (id, remembered) in ids.into_iter().zip(remembered) {
        assert_eq!(fresh.session(id).await.unwrap(), remembered, "session {id}");
    }
}

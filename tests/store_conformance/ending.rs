//! Closing and ending sessions: `begin_closing` and
//! `end_clientless_session` for clientless sessions, `end_session` for
//! every kind, the user context an ended record keeps, and concurrent ends.

use std::sync::Arc;

use sessiond::Error;
use sessiond::model::{EndReason, SessionState};
use tokio::sync::Barrier;

use crate::{Fixture, at, clientless, interactive, user};

conformance!(
    begin_closing_is_for_open_clientless_sessions_and_idempotent,
    end_clientless_session_skips_closing_and_refuses_interactive_sessions,
    an_ended_record_keeps_the_user_context_it_ended_with,
    end_session_is_idempotent_and_the_first_reason_wins,
    concurrent_ends_agree_on_the_first_reason,
);

async fn begin_closing_is_for_open_clientless_sessions_and_idempotent(f: Fixture) {
    let store = &*f.store;
    let web = interactive(store, "R41").await;
    match store
        .begin_closing(web, EndReason::ClosedByClient, at(1))
        .await
    {
        Err(Error::SessionNotClientless { session_id }) => assert_eq!(session_id, web),
        other => panic!("expected SessionNotClientless, got {other:?}"),
    }
    assert_eq!(store.session(web).await.unwrap().state, SessionState::Open);

    let id = clientless(store, "R41").await;
    let closing = store
        .begin_closing(id, EndReason::ClosedByClient, at(10))
        .await
        .unwrap();
    assert_eq!(closing.state, SessionState::Closing);
    assert_eq!(closing.last_activity_time, at(10));
    assert_eq!(closing.end_time, None);

    let again = store
        .begin_closing(id, EndReason::ClosedByClient, at(20))
        .await
        .unwrap();
    assert_eq!(again, closing, "closing again changes nothing");
    assert_eq!(store.session(id).await.unwrap(), closing);

    let ended = store
        .end_session(id, EndReason::ClosedByClient, at(30))
        .await
        .unwrap();
    assert_eq!(
        store
            .begin_closing(id, EndReason::ClosedByClient, at(40))
            .await
            .unwrap(),
        ended
    );
}

async fn end_clientless_session_skips_closing_and_refuses_interactive_sessions(f: Fixture) {
    let store = &*f.store;
    let web = interactive(store, "R41").await;
    match store
        .end_clientless_session(web, EndReason::ClosedByClient, at(1))
        .await
    {
        Err(Error::SessionNotClientless { session_id }) => assert_eq!(session_id, web),
        other => panic!("expected SessionNotClientless, got {other:?}"),
    }
    assert_eq!(store.session(web).await.unwrap().state, SessionState::Open);

    let open = clientless(store, "R41").await;
    let closing = clientless(store, "R41").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(5))
        .await
        .unwrap();
    for id in [open, closing] {
        let ended = store
            .end_clientless_session(id, EndReason::ClosedByClient, at(10))
            .await
            .unwrap();
        assert_eq!(ended.state, SessionState::Ended);
        assert_eq!(ended.end_time, Some(at(10)));
        assert_eq!(ended.end_reason, Some(EndReason::ClosedByClient));
        assert_eq!(store.session(id).await.unwrap(), ended);
        let again = store
            .end_clientless_session(id, EndReason::ServerShutdown, at(20))
            .await
            .unwrap();
        assert_eq!(again, ended, "the first end stands");
    }
}

async fn an_ended_record_keeps_the_user_context_it_ended_with(f: Fixture) {
    let store = &*f.store;
    let web = interactive(store, "R41").await;
    let headless = clientless(store, "R41").await;
    for id in [web, headless] {
        store
            .push_user_context(id, user("R50"), at(1))
            .await
            .unwrap();
        store
            .push_user_context(id, user("R60"), at(2))
            .await
            .unwrap();
    }
    let ended = [
        store
            .end_session(web, EndReason::ClosedByClient, at(10))
            .await
            .unwrap(),
        store
            .end_clientless_session(headless, EndReason::ClosedByClient, at(10))
            .await
            .unwrap(),
    ];
    for ended in ended {
        assert_eq!(ended.state, SessionState::Ended);
        assert_eq!(ended.user_context_depth, 2);
        assert_eq!(ended.effective_user, user("R60"));
        assert_eq!(ended.last_activity_time, at(2));
        assert_eq!(store.session(ended.id).await.unwrap(), ended);
    }
}

async fn end_session_is_idempotent_and_the_first_reason_wins(f: Fixture) {
    let store = &*f.store;
    for id in [
        interactive(store, "R41").await,
        clientless(store, "R41").await,
    ] {
        let ended = store
            .end_session(id, EndReason::IdleTimeout, at(10))
            .await
            .unwrap();
        assert_eq!(ended.state, SessionState::Ended);
        assert_eq!(ended.end_time, Some(at(10)));
        assert_eq!(ended.end_reason, Some(EndReason::IdleTimeout));
        assert_eq!(store.session(id).await.unwrap(), ended);

        let again = store
            .end_session(id, EndReason::ClosedByClient, at(20))
            .await
            .unwrap();
        assert_eq!(again, ended, "the first end stays");
    }

    // A closing session ends too.
    let closing = clientless(store, "R42").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(5))
        .await
        .unwrap();
    let ended = store
        .end_session(closing, EndReason::ServerShutdown, at(6))
        .await
        .unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::ServerShutdown));
}

async fn concurrent_ends_agree_on_the_first_reason(f: Fixture) {
    const ENDS: usize = 12;
    let reasons = [
        EndReason::ClosedByClient,
        EndReason::IdleTimeout,
        EndReason::MaxLifetime,
        EndReason::ServerShutdown,
    ];
    let id = clientless(&*f.store, "R41").await;
    let replica = f.replica().await;
    let barrier = Arc::new(Barrier::new(ENDS));
    let tasks: Vec<_> = (0..ENDS)
        .map(|i| {
            let store = if i % 2 == 0 {
                f.store.clone()
            } else {
                replica.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .end_session(id, reasons[i % reasons.len()], at(10 + i as i64))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let stored = {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let stored = f.store.session(id).await.unwrap();
        for result in results {
            assert_eq!(result, stored, "every caller sees the one end");
        }
        stored
    };
    assert_eq!(stored.state, SessionState::Ended);
    let i = usize::try_from(stored.end_time.unwrap().unix_micros() - at(10).unix_micros()).unwrap();
    assert_eq!(stored.end_reason, Some(reasons[i % reasons.len()]));
}

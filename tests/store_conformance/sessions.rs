//! Creating, reading and touching sessions: every field recorded, unknown
//! ids, duplicate UUIDs, a second store on the same database, and
//! concurrent creates.

use std::collections::HashMap;
use std::sync::Arc;

use sessiond::Error;
use sessiond::model::{EndReason, ScopeId, SessionKind, SessionState};
use sessiond::store::Expiry;
use tokio::sync::Barrier;

use crate::{
    Fixture, all, assert_ended, assert_not_found, at, clientless, interactive, missing, module,
    new_session, no_parameters, user,
};

conformance!(
    create_session_records_every_field,
    unknown_sessions_are_not_found,
    a_duplicate_uuid_is_an_internal_error_and_creates_nothing,
    touch_records_activity_and_refuses_ended_sessions,
    a_second_store_on_the_same_database_sees_every_write,
    concurrent_creates_get_distinct_ids,
    a_duplicate_uuid_among_concurrent_creates_fails_only_its_own,
);

async fn create_session_records_every_field(f: Fixture) {
    let store = &*f.store;
    let mut new = new_session("R41", SessionKind::Interactive);
    new.now = at(7);
    let uuid = new.uuid;
    let created = store.create_session(new).await.unwrap();
    assert!(created.id.get() > 0);
    assert_eq!(created.uuid, uuid);
    assert_eq!(created.user, user("R41"));
    assert_eq!(created.kind, SessionKind::Interactive);
    assert_eq!(created.state, SessionState::Open);
    assert_eq!(created.start_time, at(7));
    assert_eq!(created.last_activity_time, at(7));
    assert_eq!(created.end_time, None);
    assert_eq!(created.end_reason, None);
    assert_eq!(created.effective_user, user("R41"));
    assert_eq!(created.client.as_str(), "web/2.3 from 10.0.0.7");
    assert_eq!(created.user_context_depth, 0);

    assert_eq!(store.session(created.id).await.unwrap(), created);
    assert_eq!(
        store.session_facts(created.id).await.unwrap().user,
        user("R41")
    );

    let second = store
        .create_session(new_session("R42", SessionKind::Clientless))
        .await
        .unwrap();
    assert!(second.id > created.id, "ids ascend");
    assert_eq!(second.kind, SessionKind::Clientless);
    assert_eq!(second.client.as_str(), "");
    assert_eq!(
        store.session_facts(second.id).await.unwrap().user,
        user("R42")
    );
}

async fn unknown_sessions_are_not_found(f: Fixture) {
    let store = &*f.store;
    let id = missing();
    let m = module("100000");
    assert_not_found(store.session(id).await);
    assert_not_found(store.session_facts(id).await);
    assert_not_found(store.touch_session(id, at(1)).await);
    assert_not_found(
        store
            .begin_closing(id, EndReason::ClosedByClient, at(1))
            .await,
    );
    assert_not_found(
        store
            .end_session(id, EndReason::ClosedByClient, at(1))
            .await,
    );
    assert_not_found(
        store
            .begin_closing_expired(
                id,
                &Expiry {
                    idle_before: Some(at(100)),
                    started_before: Some(at(100)),
                },
                at(100),
            )
            .await,
    );
    assert_not_found(store.start_run(id, &m, &no_parameters(), at(1)).await);
    assert_not_found(store.latest_run(id, &m).await);
    assert_not_found(store.user_context(id).await);
    assert_not_found(store.set_user_context(id, user("X"), at(1)).await);
    assert_not_found(store.push_user_context(id, user("X"), at(1)).await);
    assert_not_found(
        store
            .pop_user_context(id, ScopeId::from_store(1), at(1))
            .await,
    );
    assert!(store.list_sessions(&all(100)).await.unwrap().is_empty());
}

async fn a_duplicate_uuid_is_an_internal_error_and_creates_nothing(f: Fixture) {
    let store = &*f.store;
    let first = new_session("R41", SessionKind::Interactive);
    let mut again = new_session("R42", SessionKind::Clientless);
    again.uuid = first.uuid;
    store.create_session(first).await.unwrap();
    let result = store.create_session(again).await;
    assert!(
        matches!(result, Err(Error::Internal(_))),
        "a violated constraint is a bug, not an unavailable store: {result:?}"
    );
    let sessions = store.list_sessions(&all(10)).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].user, user("R41"));
}

async fn touch_records_activity_and_refuses_ended_sessions(f: Fixture) {
    let store = &*f.store;
    let id = interactive(store, "R41").await;
    let touched = store.touch_session(id, at(50)).await.unwrap();
    assert_eq!(touched.last_activity_time, at(50));
    assert_eq!(touched.state, SessionState::Open);
    assert_eq!(store.session(id).await.unwrap(), touched);

    // Activity never moves back.
    let earlier = store.touch_session(id, at(20)).await.unwrap();
    assert_eq!(earlier.last_activity_time, at(50));

    // A closing session is still live.
    let closing = clientless(store, "R41").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    let touched = store.touch_session(closing, at(60)).await.unwrap();
    assert_eq!(touched.state, SessionState::Closing);
    assert_eq!(touched.last_activity_time, at(60));

    store
        .end_session(id, EndReason::ClosedByClient, at(70))
        .await
        .unwrap();
    assert_ended(store.touch_session(id, at(80)).await, id);
    assert_eq!(
        store.session(id).await.unwrap().last_activity_time,
        at(50),
        "a refused touch changes nothing"
    );
}

async fn a_second_store_on_the_same_database_sees_every_write(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let scope = store
        .push_user_context(id, user("R50"), at(1))
        .await
        .unwrap();
    let run = store
        .start_run(id, &module("100000"), &no_parameters(), at(2))
        .await
        .unwrap()
        .run;

    // Opening again migrates nothing twice and loses nothing.
    let replica = f.replica().await;
    assert_eq!(
        replica.session(id).await.unwrap(),
        store.session(id).await.unwrap()
    );
    assert_eq!(replica.run(run.id).await.unwrap(), run);
    let popped = replica
        .pop_user_context(id, scope.scope_id, at(3))
        .await
        .unwrap();
    assert_eq!(popped.user, user("R41"));
    assert_eq!(store.user_context(id).await.unwrap().depth, 0);
    let created = clientless(&*replica, "R42").await;
    assert!(created > id);
    assert_eq!(
        store.session_facts(created).await.unwrap().user,
        user("R42")
    );
}

async fn concurrent_creates_get_distinct_ids(f: Fixture) {
    const CREATES: usize = 200;
    let replica = f.replica().await;
    let barrier = Arc::new(Barrier::new(CREATES));
    let tasks: Vec<_> = (0..CREATES)
        .map(|i| {
            let store = if i % 2 == 0 {
                f.store.clone()
            } else {
                replica.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let kind = if i % 3 == 0 {
                    SessionKind::Interactive
                } else {
                    SessionKind::Clientless
                };
                let session = store
                    .create_session(new_session(&format!("U{}", i % 7), kind))
                    .await
                    .unwrap();
                (session.id, session.uuid)
            })
        })
        .collect();
    let mut created = HashMap::new();
    for task in tasks {
        let (id, uuid) = task.await.unwrap();
        assert!(id.get() > 0);
        assert!(
            created.insert(id, uuid).is_none(),
            "id {id} was given twice"
        );
    }
    assert_eq!(created.len(), CREATES);
    let listed = f.store.list_sessions(&all(1_000)).await.unwrap();
    assert_eq!(listed.len(), CREATES);
    for session in listed {
        assert_eq!(created.get(&session.id), Some(&session.uuid));
    }
}

async fn a_duplicate_uuid_among_concurrent_creates_fails_only_its_own(f: Fixture) {
    const CREATES: usize = 40;
    // With and without a per-user limit: both ways of creating together.
    for limit in [None, Some(1_000)] {
        let taken = new_session("R41", SessionKind::Clientless);
        let taken_uuid = taken.uuid;
        f.store.create_session(taken).await.unwrap();
        let barrier = Arc::new(Barrier::new(CREATES));
        let tasks: Vec<_> = (0..CREATES)
            .map(|i| {
                let (store, barrier) = (f.store.clone(), barrier.clone());
                tokio::spawn(async move {
                    let mut new = new_session(&format!("U{}", i % 3), SessionKind::Clientless);
                    new.max_open_per_user = limit;
                    if i == CREATES / 2 {
                        new.uuid = taken_uuid;
                    }
                    barrier.wait().await;
                    (new.uuid, store.create_session(new).await)
                })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (uuid, Ok(session)) => {
                    assert_eq!(session.uuid, uuid);
                    created.push(session.id);
                }
                (uuid, Err(Error::Internal(_))) => assert_eq!(uuid, taken_uuid),
                (_, Err(other)) => panic!("unexpected error ({limit:?}): {other}"),
            }
        }
        assert_eq!(created.len(), CREATES - 1, "{limit:?}");
        for id in created {
            let session = f.store.session(id).await.unwrap();
            assert_ne!(session.uuid, taken_uuid);
        }
    }
}

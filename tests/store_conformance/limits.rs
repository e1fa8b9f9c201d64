//! The per-user limit on open sessions, on one store and on two.

use std::sync::Arc;

use sessiond::Error;
use sessiond::model::{EndReason, SessionKind};
use sessiond::store::SessionQuery;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::{Fixture, at, new_session, user};

conformance!(
    the_per_user_limit_counts_sessions_that_have_not_ended,
    concurrent_creates_on_two_stores_respect_the_per_user_limit,
);

async fn the_per_user_limit_counts_sessions_that_have_not_ended(f: Fixture) {
    let store = &*f.store;
    let limited = |name: &str, kind| {
        let mut new = new_session(name, kind);
        new.max_open_per_user = Some(2);
        new
    };
    let first = store
        .create_session(limited("R41", SessionKind::Clientless))
        .await
        .unwrap();
    store
        .create_session(limited("R41", SessionKind::Interactive))
        .await
        .unwrap();
    match store
        .create_session(limited("R41", SessionKind::Clientless))
        .await
    {
        Err(Error::TooManySessions { user, limit }) => {
            assert_eq!(user, "R41");
            assert_eq!(limit, 2);
        }
        other => panic!("expected TooManySessions, got {other:?}"),
    }
    // Other users are not affected, and no limit means no limit.
    store
        .create_session(limited("R42", SessionKind::Clientless))
        .await
        .unwrap();
    store
        .create_session(new_session("R41", SessionKind::Clientless))
        .await
        .unwrap();
    let r41 = SessionQuery {
        user: Some(user("R41")),
        limit: 100,
        ..SessionQuery::default()
    };
    assert_eq!(store.list_sessions(&r41).await.unwrap().len(), 3);

    // A closing session still counts; an ended one does not.
    let mut three = limited("R43", SessionKind::Clientless);
    three.max_open_per_user = Some(1);
    let only = store.create_session(three.clone()).await.unwrap();
    store
        .begin_closing(only.id, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    three.uuid = Uuid::now_v7();
    assert!(matches!(
        store.create_session(three.clone()).await,
        Err(Error::TooManySessions { .. })
    ));
    store
        .end_session(only.id, EndReason::ClosedByClient, at(2))
        .await
        .unwrap();
    store.create_session(three).await.unwrap();

    // R41 has three open sessions now; ending one of them is not enough.
    store
        .end_session(first.id, EndReason::ClosedByClient, at(3))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_session(limited("R41", SessionKind::Clientless))
            .await,
        Err(Error::TooManySessions { .. })
    ));
}

async fn concurrent_creates_on_two_stores_respect_the_per_user_limit(f: Fixture) {
    const LIMIT: u32 = 5;
    const ATTEMPTS: usize = 40;
    let replica = f.replica().await;
    let barrier = Arc::new(Barrier::new(ATTEMPTS));
    let tasks: Vec<_> = (0..ATTEMPTS)
        .map(|i| {
            let store = if i % 2 == 0 {
                f.store.clone()
            } else {
                replica.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut new = new_session("R41", SessionKind::Clientless);
                new.max_open_per_user = Some(LIMIT);
                barrier.wait().await;
                store.create_session(new).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(Error::TooManySessions { limit, .. }) => assert_eq!(limit, LIMIT),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(created, LIMIT);
    let listed = f
        .store
        .list_sessions(&SessionQuery {
            user: Some(user("R41")),
            limit: 100,
            ..SessionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), LIMIT as usize);
}

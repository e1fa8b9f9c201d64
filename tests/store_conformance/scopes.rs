//! User-context scopes: set, push and pop restore exactly; refused pops
//! change nothing; concurrent pushes and sets.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use sessiond::Error;
use sessiond::model::{EndReason, ScopeId};
use tokio::sync::Barrier;

use crate::{Fixture, assert_ended, at, clientless, interactive, user};

conformance!(
    user_context_set_push_pop_restore_exactly,
    popping_a_scope_that_is_not_innermost_or_not_open_changes_nothing,
    an_ended_session_has_no_user_context,
    concurrent_pushes_stack_without_gaps_and_pop_back_exactly,
    concurrent_sets_each_replace_a_different_user_context,
);

async fn user_context_set_push_pop_restore_exactly(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let context = store.user_context(id).await.unwrap();
    assert_eq!(
        (context.user, context.session_user, context.depth),
        (user("R41"), user("R41"), 0)
    );

    assert_eq!(
        store
            .set_user_context(id, user("R42"), at(1))
            .await
            .unwrap(),
        user("R41")
    );
    let context = store.user_context(id).await.unwrap();
    assert_eq!((context.user, context.depth), (user("R42"), 0));
    assert_eq!(context.session_user, user("R41"));

    let outer = store
        .push_user_context(id, user("R50"), at(2))
        .await
        .unwrap();
    assert_eq!((outer.previous_user.clone(), outer.depth), (user("R42"), 1));
    let inner = store
        .push_user_context(id, user("R60"), at(3))
        .await
        .unwrap();
    assert_eq!((inner.previous_user.clone(), inner.depth), (user("R50"), 2));
    assert_ne!(inner.scope_id, outer.scope_id);
    let session = store.session(id).await.unwrap();
    assert_eq!(session.effective_user, user("R60"));
    assert_eq!(session.user_context_depth, 2);
    assert_eq!(session.user, user("R41"), "a session's user never changes");
    assert_eq!(session.last_activity_time, at(3));
    assert_eq!(store.session_facts(id).await.unwrap().user, user("R41"));

    // A set inside a scope is undone by the scope's pop.
    assert_eq!(
        store
            .set_user_context(id, user("R70"), at(4))
            .await
            .unwrap(),
        user("R60")
    );
    let popped = store
        .pop_user_context(id, inner.scope_id, at(5))
        .await
        .unwrap();
    assert_eq!((popped.user, popped.depth), (user("R50"), 1));
    let popped = store
        .pop_user_context(id, outer.scope_id, at(6))
        .await
        .unwrap();
    assert_eq!((popped.user, popped.depth), (user("R42"), 0));
    let context = store.user_context(id).await.unwrap();
    assert_eq!((context.user, context.depth), (user("R42"), 0));

    match store.pop_user_context(id, outer.scope_id, at(7)).await {
        Err(Error::ScopeNotFound {
            session_id,
            scope_id,
        }) => assert_eq!((session_id, scope_id), (id, outer.scope_id)),
        other => panic!("a popped scope is gone: {other:?}"),
    }

    // Interactive sessions have user contexts too.
    let web = interactive(store, "R41").await;
    let scope = store
        .push_user_context(web, user("R50"), at(8))
        .await
        .unwrap();
    assert_eq!(scope.depth, 1);
    assert_eq!(
        store
            .pop_user_context(web, scope.scope_id, at(9))
            .await
            .unwrap()
            .user,
        user("R41")
    );
}

async fn popping_a_scope_that_is_not_innermost_or_not_open_changes_nothing(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let other = clientless(store, "R41").await;
    match store
        .pop_user_context(id, ScopeId::from_store(1), at(1))
        .await
    {
        Err(Error::ScopeNotFound { .. }) => {}
        other => panic!("an empty stack has no scope to pop: {other:?}"),
    }
    let outer = store
        .push_user_context(id, user("R50"), at(1))
        .await
        .unwrap();
    let inner = store
        .push_user_context(id, user("R60"), at(2))
        .await
        .unwrap();
    let elsewhere = store
        .push_user_context(other, user("R70"), at(2))
        .await
        .unwrap();
    let before = store.session(id).await.unwrap();

    match store.pop_user_context(id, outer.scope_id, at(3)).await {
        Err(Error::ScopeNotInnermost {
            session_id,
            scope_id,
            innermost,
        }) => {
            assert_eq!(session_id, id);
            assert_eq!(scope_id, outer.scope_id);
            assert_eq!(innermost, inner.scope_id);
        }
        other => panic!("expected ScopeNotInnermost, got {other:?}"),
    }
    let unknown = ScopeId::from_store(inner.scope_id.get() + elsewhere.scope_id.get() + 1000);
    for scope in [unknown, elsewhere.scope_id] {
        match store.pop_user_context(id, scope, at(3)).await {
            Err(Error::ScopeNotFound {
                session_id,
                scope_id,
            }) => assert_eq!((session_id, scope_id), (id, scope)),
            other => panic!("expected ScopeNotFound for {scope}, got {other:?}"),
        }
    }
    assert_eq!(
        store.session(id).await.unwrap(),
        before,
        "refused pops change nothing"
    );
    assert_eq!(store.session(other).await.unwrap().user_context_depth, 1);
}

async fn an_ended_session_has_no_user_context(f: Fixture) {
    let store = &*f.store;
    let id = interactive(store, "R41").await;
    let scope = store
        .push_user_context(id, user("R50"), at(1))
        .await
        .unwrap();
    store
        .end_session(id, EndReason::ClosedByClient, at(2))
        .await
        .unwrap();
    assert_ended(store.user_context(id).await, id);
    assert_ended(store.set_user_context(id, user("X"), at(3)).await, id);
    assert_ended(store.push_user_context(id, user("X"), at(3)).await, id);
    assert_ended(store.pop_user_context(id, scope.scope_id, at(3)).await, id);
    let session = store.session(id).await.unwrap();
    assert_eq!(session.effective_user, user("R50"));
    assert_eq!(session.end_time, Some(at(2)));
    assert_eq!(
        session.last_activity_time,
        at(1),
        "refused changes record no activity"
    );
    // The session's own user stays readable.
    assert_eq!(store.session_facts(id).await.unwrap().user, user("R41"));
}

async fn concurrent_pushes_stack_without_gaps_and_pop_back_exactly(f: Fixture) {
    const PUSHES: usize = 50;
    let id = clientless(&*f.store, "R41").await;
    let replica = f.replica().await;
    let barrier = Arc::new(Barrier::new(PUSHES));
    let tasks: Vec<_> = (0..PUSHES)
        .map(|i| {
            let store = if i % 2 == 0 {
                f.store.clone()
            } else {
                replica.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let pushed_user = user(&format!("U{i}"));
                barrier.wait().await;
                let scope = store
                    .push_user_context(id, pushed_user.clone(), at(i as i64))
                    .await
                    .unwrap();
                (pushed_user, scope)
            })
        })
        .collect();
    let mut by_depth = Vec::new();
    for task in tasks {
        by_depth.push(task.await.unwrap());
    }
    by_depth.sort_by_key(|(_, scope)| scope.depth);
    let depths: Vec<u32> = by_depth.iter().map(|(_, scope)| scope.depth).collect();
    assert_eq!(depths, (1..=PUSHES as u32).collect::<Vec<_>>());
    let scope_ids: HashSet<ScopeId> = by_depth.iter().map(|(_, s)| s.scope_id).collect();
    assert_eq!(scope_ids.len(), PUSHES);
    // Each push saw the one before it: the stack is one chain.
    let mut below = user("R41");
    for (pushed_user, scope) in &by_depth {
        assert_eq!(scope.previous_user, below, "depth {}", scope.depth);
        below = pushed_user.clone();
    }
    let session = f.store.session(id).await.unwrap();
    assert_eq!(session.user_context_depth, PUSHES as u32);
    assert_eq!(session.effective_user, below);

    // Pop back, innermost first, alternating stores.
    for (i, (_, scope)) in by_depth.iter().enumerate().rev() {
        let store = if i % 2 == 0 { &f.store } else { &replica };
        let popped = store
            .pop_user_context(id, scope.scope_id, at(1_000))
            .await
            .unwrap();
        assert_eq!(popped.user, scope.previous_user);
        assert_eq!(popped.depth, scope.depth - 1);
    }
    let context = f.store.user_context(id).await.unwrap();
    assert_eq!((context.user, context.depth), (user("R41"), 0));
}

async fn concurrent_sets_each_replace_a_different_user_context(f: Fixture) {
    const SETS: usize = 30;
    let id = interactive(&*f.store, "R41").await;
    let replica = f.replica().await;
    let barrier = Arc::new(Barrier::new(SETS));
    let tasks: Vec<_> = (0..SETS)
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
                    .set_user_context(id, user(&format!("U{i}")), at(1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut replaced = Vec::new();
    for task in tasks {
        replaced.push(task.await.unwrap().into_string());
    }
    // Serial sets replace R41 and every set user but the last, once each.
    let last = f.store.user_context(id).await.unwrap().user.into_string();
    let replaced_set: BTreeSet<String> = replaced.iter().cloned().collect();
    assert_eq!(
        replaced_set.len(),
        SETS,
        "a user context was replaced twice"
    );
    let mut expected: BTreeSet<String> = (0..SETS).map(|i| format!("U{i}")).collect();
    expected.insert("R41".into());
    expected.remove(&last);
    assert_eq!(replaced_set, expected);
}

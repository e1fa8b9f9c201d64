//! The expiry rules: idle, too old and busy sessions told apart, and
//! `begin_closing_expired` deciding in its own transaction.

use serde_json::json;
use sessiond::model::{EndReason, RunOutcome, SessionId, SessionKind, SessionState};
use sessiond::store::{Expiry, Store};

use crate::{Fixture, NODE, at, clientless_at, module, new_session, no_parameters};

conformance!(
    expired_sessions_tells_idle_from_too_old_from_busy,
    begin_closing_expired_decides_in_its_own_transaction,
);

/// Sessions in every situation the expiry rules tell apart.
struct ExpiryScene {
    /// Started at 0, no activity since: too old and idle.
    old_idle: SessionId,
    /// Started at 0 with a run still running: too old, but busy.
    old_busy: SessionId,
    /// Started at 100, no activity since: idle only.
    idle: SessionId,
    /// Started at 100 with a run still running: busy, so not idle.
    busy: SessionId,
    /// Started at 100 with a run that concluded at 400: recent activity.
    recently_active: SessionId,
    /// Started at 500.
    fresh: SessionId,
    /// Old and idle, but closing, interactive, or another node's.
    excluded: Vec<SessionId>,
}

/// Idle before 300, started before 50.
fn both() -> Expiry {
    Expiry {
        idle_before: Some(at(300)),
        started_before: Some(at(50)),
    }
}

async fn expiry_scene(store: &dyn Store) -> ExpiryScene {
    let m = module("100000");
    let old_idle = clientless_at(store, "R41", at(0), NODE).await;
    let old_busy = clientless_at(store, "R41", at(0), NODE).await;
    store
        .start_run(old_busy, &m, &no_parameters(), at(0))
        .await
        .unwrap();
    let idle = clientless_at(store, "R41", at(100), NODE).await;
    let busy = clientless_at(store, "R41", at(100), NODE).await;
    store
        .start_run(busy, &m, &no_parameters(), at(100))
        .await
        .unwrap();
    let recently_active = clientless_at(store, "R41", at(100), NODE).await;
    let run = store
        .start_run(recently_active, &m, &no_parameters(), at(100))
        .await
        .unwrap();
    store
        .finish_run(run.run.id, &RunOutcome::Succeeded(json!(null)), at(400))
        .await
        .unwrap();
    let fresh = clientless_at(store, "R41", at(500), NODE).await;
    let closing = clientless_at(store, "R41", at(0), NODE).await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(0))
        .await
        .unwrap();
    let mut web = new_session("R41", SessionKind::Interactive);
    web.now = at(0);
    let web = store.create_session(web).await.unwrap().id;
    let elsewhere = clientless_at(store, "R41", at(0), "node-b").await;
    ExpiryScene {
        old_idle,
        old_busy,
        idle,
        busy,
        recently_active,
        fresh,
        excluded: vec![closing, web, elsewhere],
    }
}

async fn expired_sessions_tells_idle_from_too_old_from_busy(f: Fixture) {
    let store = &*f.store;
    let s = expiry_scene(store).await;
    let expired = |expiry: Expiry| async move {
        let mut ids = store.expired_sessions(NODE, &expiry).await.unwrap();
        ids.sort();
        ids
    };
    assert_eq!(expired(both()).await, [s.old_idle, s.old_busy, s.idle]);
    assert_eq!(
        expired(Expiry {
            idle_before: None,
            ..both()
        })
        .await,
        [s.old_idle, s.old_busy],
        "maximum lifetime applies to busy sessions too"
    );
    assert_eq!(
        expired(Expiry {
            started_before: None,
            ..both()
        })
        .await,
        [s.old_idle, s.idle],
        "a session with a running run is not idle"
    );
    assert_eq!(expired(Expiry::default()).await, []);
    let all_idle = Expiry {
        idle_before: Some(at(1_000)),
        started_before: None,
    };
    assert_eq!(
        expired(all_idle).await,
        [s.old_idle, s.idle, s.recently_active, s.fresh]
    );
    for id in &s.excluded {
        assert!(!expired(all_idle).await.contains(id));
    }
    let mut elsewhere = store.expired_sessions("node-b", &both()).await.unwrap();
    elsewhere.sort();
    assert_eq!(elsewhere, [s.excluded[2]]);
}

async fn begin_closing_expired_decides_in_its_own_transaction(f: Fixture) {
    let store = &*f.store;
    let s = expiry_scene(store).await;
    let check = |id: SessionId, expiry: Expiry| async move {
        store
            .begin_closing_expired(id, &expiry, at(1_000))
            .await
            .unwrap()
    };
    // Nothing expires without limits.
    assert_eq!(check(s.old_idle, Expiry::default()).await, None);
    assert_eq!(check(s.busy, both()).await, None, "busy is not idle");
    assert_eq!(check(s.recently_active, both()).await, None);
    assert_eq!(check(s.fresh, both()).await, None);
    // Closing and interactive sessions are not for the reaper; another
    // node's session is (by id), since any node may close it.
    for id in &s.excluded[..2] {
        let before = store.session(*id).await.unwrap();
        assert_eq!(check(*id, both()).await, None);
        assert_eq!(store.session(*id).await.unwrap(), before);
    }
    for id in [s.busy, s.recently_active, s.fresh] {
        assert_eq!(store.session(id).await.unwrap().state, SessionState::Open);
    }

    // Maximum lifetime before idleness.
    assert_eq!(
        check(s.old_idle, both()).await,
        Some(EndReason::MaxLifetime)
    );
    assert_eq!(
        check(s.old_busy, both()).await,
        Some(EndReason::MaxLifetime)
    );
    assert_eq!(check(s.idle, both()).await, Some(EndReason::IdleTimeout));
    for id in [s.old_idle, s.old_busy, s.idle] {
        let session = store.session(id).await.unwrap();
        assert_eq!(session.state, SessionState::Closing);
        assert_eq!(session.end_time, None);
    }
    // Already closing: not again.
    assert_eq!(check(s.idle, both()).await, None);

    // A candidate touched after it was listed is not idle any more.
    let candidate = clientless_at(store, "R42", at(100), NODE).await;
    assert!(
        store
            .expired_sessions(NODE, &both())
            .await
            .unwrap()
            .contains(&candidate)
    );
    store.touch_session(candidate, at(350)).await.unwrap();
    assert_eq!(check(candidate, both()).await, None);
    assert_eq!(
        store.session(candidate).await.unwrap().state,
        SessionState::Open
    );
}

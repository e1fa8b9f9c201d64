//! Nodes: start-up recovery of a node's clientless sessions and runs,
//! its live clientless sessions, session facts, leases, and the takeover
//! of lost nodes.

use std::sync::Arc;

use serde_json::json;
use sessiond::model::{EndReason, FailureKind, RunOutcome, RunState, SessionKind, SessionState};
use sessiond::store::Recovered;
use tokio::sync::Barrier;

use crate::{
    Fixture, NODE, assert_not_found, at, clientless, clientless_at, interactive, missing, module,
    new_session, no_parameters, user,
};

conformance!(
    recover_node_ends_its_own_clientless_sessions_and_interrupts_their_runs,
    unended_clientless_sessions_are_the_nodes_live_clientless_ones,
    session_facts_name_the_user_and_the_owner,
    node_leases_are_renewed_and_expire,
    lost_nodes_are_taken_over_once_and_never_the_taker,
    concurrent_takeovers_take_each_lost_node_once,
);

async fn recover_node_ends_its_own_clientless_sessions_and_interrupts_their_runs(f: Fixture) {
    let store = &*f.store;
    let m = module("100000");
    let open = clientless(store, "R41").await;
    let running = store
        .start_run(open, &m, &no_parameters(), at(1))
        .await
        .unwrap()
        .run
        .id;
    let done = store
        .start_run(open, &module("200000"), &no_parameters(), at(1))
        .await
        .unwrap()
        .run
        .id;
    let done = store
        .finish_run(done, &RunOutcome::Succeeded(json!(1)), at(2))
        .await
        .unwrap();
    let closing = clientless(store, "R42").await;
    let closing_run = store
        .start_run(closing, &m, &no_parameters(), at(1))
        .await
        .unwrap()
        .run
        .id;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(3))
        .await
        .unwrap();
    let ended = clientless(store, "R43").await;
    let ended_before = store
        .end_session(ended, EndReason::ClosedByClient, at(4))
        .await
        .unwrap();
    let web = interactive(store, "R44").await;
    let elsewhere = clientless_at(store, "R45", at(0), "node-b").await;
    let elsewhere_run = store
        .start_run(elsewhere, &m, &no_parameters(), at(1))
        .await
        .unwrap()
        .run
        .id;

    let recovered = store
        .recover_node(NODE, EndReason::ServerRestart, at(9))
        .await
        .unwrap();
    assert_eq!(
        recovered,
        Recovered {
            sessions: 2,
            runs: 2
        }
    );
    for id in [open, closing] {
        let session = store.session(id).await.unwrap();
        assert_eq!(session.state, SessionState::Ended);
        assert_eq!(session.end_reason, Some(EndReason::ServerRestart));
        assert_eq!(session.end_time, Some(at(9)));
    }
    for id in [running, closing_run] {
        let run = store.run(id).await.unwrap();
        assert_eq!(run.state(), RunState::Failed);
        assert_eq!(run.end_time, Some(at(9)));
        match run.outcome {
            Some(RunOutcome::Failed(failure)) => {
                assert_eq!(failure.kind, FailureKind::Interrupted);
            }
            other => panic!("expected an interrupted run, got {other:?}"),
        }
    }
    assert_eq!(
        store.run(done.id).await.unwrap(),
        done,
        "concluded runs stay"
    );
    assert_eq!(store.session(ended).await.unwrap(), ended_before);
    assert_eq!(
        store.session(web).await.unwrap().state,
        SessionState::Open,
        "interactive sessions are the front end's, not the node's"
    );
    assert_eq!(
        store.session(elsewhere).await.unwrap().state,
        SessionState::Open
    );
    assert_eq!(
        store.run(elsewhere_run).await.unwrap().state(),
        RunState::Running,
        "another node's runs are untouched"
    );

    let again = store
        .recover_node(NODE, EndReason::ServerRestart, at(10))
        .await
        .unwrap();
    assert_eq!(again, Recovered::default());
}

async fn unended_clientless_sessions_are_the_nodes_live_clientless_ones(f: Fixture) {
    let store = &*f.store;
    let open = clientless(store, "R41").await;
    let closing = clientless(store, "R41").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    let ended = clientless(store, "R41").await;
    store
        .end_session(ended, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    interactive(store, "R41").await;
    let elsewhere = clientless_at(store, "R41", at(0), "node-b").await;

    let mut mine = store.unended_clientless_sessions(NODE).await.unwrap();
    mine.sort();
    assert_eq!(mine, [open, closing]);
    assert_eq!(
        store.unended_clientless_sessions("node-b").await.unwrap(),
        [elsewhere]
    );
    assert!(
        store
            .unended_clientless_sessions("node-c")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn session_facts_name_the_user_and_the_owner(f: Fixture) {
    let store = &*f.store;
    let id = clientless_at(store, "R41", at(0), "node-b").await;
    let facts = store.session_facts(id).await.unwrap();
    assert_eq!(facts.user, user("R41"));
    assert_eq!(facts.owner_node, "node-b");
    assert_eq!(store.session(id).await.unwrap().owner_node, "node-b");
    assert_not_found(store.session_facts(missing()).await);
}

async fn node_leases_are_renewed_and_expire(f: Fixture) {
    let store = &*f.store;
    assert_eq!(store.node_endpoint("node-a", at(0)).await.unwrap(), None);
    let known = store
        .renew_node("node-a", "http://127.0.0.1:1", at(1_000))
        .await
        .unwrap();
    assert!(!known, "a first lease registers the node");
    assert_eq!(
        store
            .node_endpoint("node-a", at(999))
            .await
            .unwrap()
            .as_deref(),
        Some("http://127.0.0.1:1")
    );
    assert_eq!(
        store.node_endpoint("node-a", at(1_000)).await.unwrap(),
        None,
        "expired"
    );
    let known = store
        .renew_node("node-a", "http://127.0.0.1:2", at(5_000))
        .await
        .unwrap();
    assert!(known, "a renewal finds the node");
    assert_eq!(
        store
            .node_endpoint("node-a", at(1_000))
            .await
            .unwrap()
            .as_deref(),
        Some("http://127.0.0.1:2"),
        "a renewal moves the lease and the endpoint"
    );
    store.remove_node("node-a").await.unwrap();
    assert_eq!(store.node_endpoint("node-a", at(0)).await.unwrap(), None);
}

async fn lost_nodes_are_taken_over_once_and_never_the_taker(f: Fixture) {
    let store = &*f.store;
    store
        .renew_node("node-a", "http://a", at(100))
        .await
        .unwrap();
    store
        .renew_node("node-b", "http://b", at(100))
        .await
        .unwrap();
    store
        .renew_node("node-c", "http://c", at(10_000))
        .await
        .unwrap();
    let lost = clientless_at(store, "R41", at(0), "node-b").await;
    let run = store
        .start_run(lost, &module("m"), &no_parameters(), at(1))
        .await
        .unwrap()
        .run;
    let interactive_b = {
        let mut new = new_session("R42", SessionKind::Interactive);
        "node-b".clone_into(&mut new.owner_node);
        store.create_session(new).await.unwrap().id
    };
    let alive = clientless_at(store, "R43", at(0), "node-c").await;
    let own = clientless_at(store, "R44", at(0), "node-a").await;

    // node-a's own lease expired too, but a node never takes itself over.
    let taken = store
        .take_over_lost_nodes("node-a", at(200), EndReason::NodeLost)
        .await
        .unwrap();
    assert_eq!(
        taken,
        vec![(
            "node-b".to_owned(),
            Recovered {
                sessions: 1,
                runs: 1
            }
        )]
    );
    let ended = store.session(lost).await.unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::NodeLost));
    let interrupted = store.run(run.id).await.unwrap();
    assert_eq!(interrupted.state(), RunState::Failed);
    assert_eq!(
        store.session(interactive_b).await.unwrap().state,
        SessionState::Open,
        "interactive sessions outlive their node"
    );
    assert_eq!(
        store.session(alive).await.unwrap().state,
        SessionState::Open
    );
    assert_eq!(store.session(own).await.unwrap().state, SessionState::Open);
    assert_eq!(
        store.node_endpoint("node-b", at(0)).await.unwrap(),
        None,
        "forgotten"
    );
    let again = store
        .take_over_lost_nodes("node-a", at(200), EndReason::NodeLost)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    // The lost node, back, learns that it was taken over.
    let known = store
        .renew_node("node-b", "http://b", at(1_000))
        .await
        .unwrap();
    assert!(!known, "a node taken over is not known any more");
    let known = store
        .renew_node("node-a", "http://a", at(1_000))
        .await
        .unwrap();
    assert!(known, "the taker is still known");
}

async fn concurrent_takeovers_take_each_lost_node_once(f: Fixture) {
    let lost_nodes: Vec<String> = (0..6).map(|n| format!("lost-{n}")).collect();
    for node in &lost_nodes {
        f.store.renew_node(node, "http://x", at(10)).await.unwrap();
        clientless_at(&*f.store, "R41", at(0), node).await;
    }
    let mut stores = vec![Arc::clone(&f.store)];
    for _ in 0..3 {
        stores.push(f.replica().await);
    }
    let barrier = Arc::new(Barrier::new(stores.len()));
    let takers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .take_over_lost_nodes(&format!("taker-{n}"), at(100), EndReason::NodeLost)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken: Vec<String> = Vec::new();
    let mut sessions = 0;
    for taker in takers {
        for (node, recovered) in taker.await.unwrap() {
            taken.push(node);
            sessions += recovered.sessions;
        }
    }
    taken.sort();
    assert_eq!(taken, lost_nodes, "each lost node taken over exactly once");
    assert_eq!(sessions, 6);
}

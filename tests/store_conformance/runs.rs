//! Module runs: starting needs an open clientless session and acts as
//! the current user context; the first outcome wins; the latest run;
//! values, parameters and failure text round-trip; closing while runs start.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use sessiond::Error;
use sessiond::model::{EndReason, FailureKind, ModuleFailure, RunOutcome, RunState, SessionState};
use tokio::sync::Barrier;

use crate::{
    Fixture, assert_ended, at, clientless, failure, interactive, module, no_parameters, user,
};

conformance!(
    start_run_needs_an_open_clientless_session,
    start_run_acts_as_the_current_user_context_and_records_activity,
    finish_run_records_the_first_outcome_only,
    latest_run_is_the_newest_run_of_that_module,
    values_and_parameters_round_trip_exactly,
    failure_text_with_nul_characters_is_stored,
    closing_while_runs_start_never_leaves_a_run_behind,
);

async fn start_run_needs_an_open_clientless_session(f: Fixture) {
    let store = &*f.store;
    let m = module("100000");
    let web = interactive(store, "R41").await;
    match store.start_run(web, &m, &no_parameters(), at(1)).await {
        Err(Error::SessionNotClientless { session_id }) => assert_eq!(session_id, web),
        other => panic!("expected SessionNotClientless, got {other:?}"),
    }
    let closing = clientless(store, "R41").await;
    store
        .begin_closing(closing, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    match store.start_run(closing, &m, &no_parameters(), at(2)).await {
        Err(Error::SessionClosing { session_id }) => assert_eq!(session_id, closing),
        other => panic!("expected SessionClosing, got {other:?}"),
    }
    let ended = clientless(store, "R41").await;
    store
        .end_session(ended, EndReason::ClosedByClient, at(1))
        .await
        .unwrap();
    assert_ended(
        store.start_run(ended, &m, &no_parameters(), at(2)).await,
        ended,
    );
    for id in [web, closing, ended] {
        match store.latest_run(id, &m).await {
            Err(Error::ModuleNotOpened {
                session_id,
                module_id,
            }) => assert_eq!((session_id, module_id), (id, m.clone())),
            other => panic!("a refused run is not recorded: {other:?}"),
        }
    }
    assert_eq!(
        store.session(closing).await.unwrap().last_activity_time,
        at(1)
    );
}

async fn start_run_acts_as_the_current_user_context_and_records_activity(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    store
        .push_user_context(id, user("R50"), at(1))
        .await
        .unwrap();
    let mut parameters = serde_json::Map::new();
    parameters.insert("record".into(), json!(443));
    let started = store
        .start_run(id, &module("100000"), &parameters, at(10))
        .await
        .unwrap();
    let run = &started.run;
    assert!(run.id.get() > 0);
    assert_eq!(run.session_id, id);
    assert_eq!(run.module_id, module("100000"));
    assert_eq!(run.acting_user, user("R50"));
    assert_eq!(run.start_time, at(10));
    assert_eq!(run.end_time, None);
    assert_eq!(run.outcome, None);
    assert_eq!(run.state(), RunState::Running);
    assert_eq!(started.session.id, id);
    assert_eq!(started.session.state, SessionState::Open);
    assert_eq!(started.session.last_activity_time, at(10));
    assert_eq!(started.session.effective_user, user("R50"));
    assert_eq!(store.session(id).await.unwrap(), started.session);
    assert_eq!(store.run(run.id).await.unwrap(), *run);
    assert_eq!(store.latest_run(id, &module("100000")).await.unwrap(), *run);

    // Runs do not share ids, even across sessions.
    let other = clientless(store, "R42").await;
    let second = store
        .start_run(other, &module("100000"), &no_parameters(), at(11))
        .await
        .unwrap();
    assert_ne!(second.run.id, run.id);
    assert_eq!(second.run.acting_user, user("R42"));
}

async fn finish_run_records_the_first_outcome_only(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let m = module("100000");
    let run = store
        .start_run(id, &m, &no_parameters(), at(10))
        .await
        .unwrap()
        .run;
    let value = json!({"answer": 42, "list": [1, "x", null, true], "nested": {"k": 1.5}});
    let finished = store
        .finish_run(run.id, &RunOutcome::Succeeded(value.clone()), at(20))
        .await
        .unwrap();
    assert_eq!(finished.outcome, Some(RunOutcome::Succeeded(value)));
    assert_eq!(finished.end_time, Some(at(20)));
    assert_eq!(finished.start_time, at(10));
    assert_eq!(finished.state(), RunState::Succeeded);
    assert_eq!(store.run(run.id).await.unwrap(), finished);
    assert_eq!(store.session(id).await.unwrap().last_activity_time, at(20));

    let again = store
        .finish_run(
            run.id,
            &RunOutcome::Failed(failure(FailureKind::Timeout, "too late")),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(again, finished, "a concluded run stays as it concluded");
    assert_eq!(
        store.session(id).await.unwrap().last_activity_time,
        at(20),
        "finishing twice records no activity"
    );

    // Every field of a failure, and a cancellation.
    let failed = store
        .start_run(id, &m, &no_parameters(), at(40))
        .await
        .unwrap()
        .run;
    let failure_in_full = ModuleFailure {
        kind: FailureKind::ExitStatus,
        message: "exited with status 3".into(),
        exit_code: Some(3),
        signal: None,
        stderr_tail: "Traceback…\nValueError: no".into(),
    };
    let outcome = RunOutcome::Failed(failure_in_full);
    assert_eq!(
        store
            .finish_run(failed.id, &outcome, at(41))
            .await
            .unwrap()
            .outcome,
        Some(outcome.clone())
    );
    let signalled = store
        .start_run(id, &m, &no_parameters(), at(42))
        .await
        .unwrap()
        .run;
    let outcome = RunOutcome::Cancelled(ModuleFailure {
        kind: FailureKind::Signal,
        message: "killed".into(),
        exit_code: None,
        signal: Some(9),
        stderr_tail: String::new(),
    });
    let cancelled = store
        .finish_run(signalled.id, &outcome, at(43))
        .await
        .unwrap();
    assert_eq!(cancelled.state(), RunState::Cancelled);
    assert_eq!(cancelled.outcome, Some(outcome));
    assert_eq!(store.run(signalled.id).await.unwrap(), cancelled);

    // A run concludes even after its session began closing or ended.
    let late = store
        .start_run(id, &m, &no_parameters(), at(50))
        .await
        .unwrap()
        .run;
    store
        .begin_closing(id, EndReason::ClosedByClient, at(51))
        .await
        .unwrap();
    store
        .end_session(id, EndReason::ClosedByClient, at(52))
        .await
        .unwrap();
    let concluded = store
        .finish_run(late.id, &RunOutcome::Succeeded(json!("done")), at(53))
        .await
        .unwrap();
    assert_eq!(concluded.state(), RunState::Succeeded);
}

async fn latest_run_is_the_newest_run_of_that_module(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let (m1, m2) = (module("100000"), module("200000"));
    let first = store
        .start_run(id, &m1, &no_parameters(), at(1))
        .await
        .unwrap()
        .run;
    let other = store
        .start_run(id, &m2, &no_parameters(), at(2))
        .await
        .unwrap()
        .run;
    store
        .finish_run(first.id, &RunOutcome::Succeeded(json!(1)), at(3))
        .await
        .unwrap();
    let newest = store
        .start_run(id, &m1, &no_parameters(), at(4))
        .await
        .unwrap()
        .run;
    assert_eq!(store.latest_run(id, &m1).await.unwrap(), newest);
    assert_eq!(store.latest_run(id, &m2).await.unwrap(), other);
    assert_eq!(
        store.run(first.id).await.unwrap().state(),
        RunState::Succeeded
    );
    match store.latest_run(id, &module("300000")).await {
        Err(Error::ModuleNotOpened {
            session_id,
            module_id,
        }) => assert_eq!((session_id, module_id), (id, module("300000"))),
        other => panic!("expected ModuleNotOpened, got {other:?}"),
    }
    let elsewhere = clientless(store, "R41").await;
    assert!(matches!(
        store.latest_run(elsewhere, &m1).await,
        Err(Error::ModuleNotOpened { .. })
    ));
}

async fn values_and_parameters_round_trip_exactly(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let m = module("100000");
    let mut parameters = serde_json::Map::new();
    parameters.insert("nul".into(), json!("a\u{0}b"));
    parameters.insert("text".into(), json!("Grüße ✓ \"quoted\" \\ back"));
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-9_223_372_036_854_775_808_i64),
        json!(18_446_744_073_709_551_615_u64),
        json!(0.1),
        json!(1.0e300),
        json!("a\u{0}b and Grüße ✓"),
        json!([]),
        json!({}),
        json!({"z": 1, "a": [1, 2.5, "three", {"deep": [null]}], "m": {"": ""}}),
    ];
    for value in values {
        let run = store
            .start_run(id, &m, &parameters, at(1))
            .await
            .unwrap()
            .run;
        let outcome = RunOutcome::Succeeded(value.clone());
        let finished = store.finish_run(run.id, &outcome, at(2)).await.unwrap();
        assert_eq!(finished.outcome, Some(outcome.clone()), "{value}");
        assert_eq!(store.run(run.id).await.unwrap().outcome, Some(outcome));
    }
}

async fn failure_text_with_nul_characters_is_stored(f: Fixture) {
    let store = &*f.store;
    let id = clientless(store, "R41").await;
    let run = store
        .start_run(id, &module("100000"), &no_parameters(), at(1))
        .await
        .unwrap()
        .run;
    let written = ModuleFailure {
        kind: FailureKind::ExitStatus,
        message: "bad\0thing".into(),
        exit_code: Some(1),
        signal: None,
        stderr_tail: "line 1\0line 2".into(),
    };
    let finished = store
        .finish_run(run.id, &RunOutcome::Failed(written.clone()), at(2))
        .await
        .expect("a module's stderr may contain NUL characters");
    let Some(RunOutcome::Failed(read)) = finished.outcome else {
        panic!("expected a failed run, got {finished:?}");
    };
    // A backend may keep NUL or replace it with U+FFFD; the rest is kept.
    let unreplaced = |text: &str| text.replace('\u{FFFD}', "\0");
    assert_eq!(unreplaced(&read.message), written.message);
    assert_eq!(unreplaced(&read.stderr_tail), written.stderr_tail);
    assert_eq!(read.exit_code, Some(1));
}

async fn closing_while_runs_start_never_leaves_a_run_behind(f: Fixture) {
    const STARTS: usize = 16;
    const ROUNDS: usize = 4;
    let replica = f.replica().await;
    for round in 0..ROUNDS {
        let id = clientless(&*f.store, "R41").await;
        let barrier = Arc::new(Barrier::new(STARTS + 1));
        let starts: Vec<_> = (0..STARTS)
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
                        .start_run(id, &module(&format!("m{i}")), &no_parameters(), at(1))
                        .await
                })
            })
            .collect();
        let closer = {
            let store = if round % 2 == 0 {
                replica.clone()
            } else {
                f.store.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                tokio::task::yield_now().await;
                let closed = store
                    .begin_closing(id, EndReason::ClosedByClient, at(2))
                    .await
                    .unwrap();
                // What the closer waits for: the runs recorded by now.
                let mut known = HashMap::new();
                for i in 0..STARTS {
                    if let Ok(run) = store.latest_run(id, &module(&format!("m{i}"))).await {
                        known.insert(run.id, run);
                    }
                }
                (closed, known)
            })
        };
        let (closed, known) = closer.await.unwrap();
        assert_eq!(closed.state, SessionState::Closing);
        for start in starts {
            match start.await.unwrap() {
                Ok(started) => {
                    assert!(
                        known.contains_key(&started.run.id),
                        "run {} started after the session began closing",
                        started.run.id
                    );
                    assert_eq!(started.session.state, SessionState::Open);
                }
                Err(Error::SessionClosing { session_id }) => assert_eq!(session_id, id),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        // The closer drains what it knows, then ends the session.
        for run in known.keys() {
            f.store
                .finish_run(*run, &RunOutcome::Succeeded(json!(null)), at(3))
                .await
                .unwrap();
        }
        f.store
            .end_session(id, EndReason::ClosedByClient, at(4))
            .await
            .unwrap();
        for i in 0..STARTS {
            if let Ok(run) = f.store.latest_run(id, &module(&format!("m{i}"))).await {
                assert_ne!(
                    run.state(),
                    RunState::Running,
                    "run {} is still running on ended session {id}",
                    run.id
                );
            }
        }
    }
}

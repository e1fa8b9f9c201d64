//! The store conformance suite: every test is written once against the
//! [`Store`] trait and instantiated for every backend by `conformance!`
//! (`sqlite::NAME` on a file in a temporary directory, `postgres::NAME` on
//! a fresh PostgreSQL database; see `common::postgres` for where that
//! comes from and when those are skipped).
//!
//! The tests cover each method's effects and errors, idempotence, the
//! expiry rules, and — the reason a second backend needs this suite —
//! concurrent writers, including writers on two store handles sharing one
//! database, as two server replicas would.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;
use sessiond::Error;
use sessiond::model::{
    ClientDescription, EndReason, FailureKind, ModuleFailure, ModuleId, RunOutcome, RunState,
    ScopeId, SessionId, SessionKind, SessionState, Timestamp, UserId,
};
use sessiond::store::{
    Expiry, NewSession, Recovered, RunStore, ScopeStore, SessionQuery, SessionStore, SqliteStore,
    Store,
};
use tempfile::TempDir;
use tokio::sync::Barrier;
use uuid::Uuid;

/// Instantiates each named test for every backend.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        /// The suite on SQLite.
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::sqlite().await).await;
                }
            )+
        }

        /// The suite on PostgreSQL.
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(fixture) = super::Fixture::postgres(stringify!($test)).await else {
                        return;
                    };
                    super::$test(fixture).await;
                }
            )+
        }
    };
}

conformance!(
    create_session_records_every_field,
    unknown_sessions_are_not_found,
    a_duplicate_uuid_is_an_internal_error_and_creates_nothing,
    list_sessions_filters_and_pages,
    the_per_user_limit_counts_sessions_that_have_not_ended,
    touch_records_activity_and_refuses_ended_sessions,
    begin_closing_is_for_open_clientless_sessions_and_idempotent,
    end_clientless_session_skips_closing_and_refuses_interactive_sessions,
    an_ended_record_keeps_the_user_context_it_ended_with,
    end_session_is_idempotent_and_the_first_reason_wins,
    recover_node_ends_its_own_clientless_sessions_and_interrupts_their_runs,
    unended_clientless_sessions_are_the_nodes_live_clientless_ones,
    expired_sessions_tells_idle_from_too_old_from_busy,
    begin_closing_expired_decides_in_its_own_transaction,
    user_context_set_push_pop_restore_exactly,
    popping_a_scope_that_is_not_innermost_or_not_open_changes_nothing,
    an_ended_session_has_no_user_context,
    start_run_needs_an_open_clientless_session,
    start_run_acts_as_the_current_user_context_and_records_activity,
    finish_run_records_the_first_outcome_only,
    latest_run_is_the_newest_run_of_that_module,
    values_and_parameters_round_trip_exactly,
    failure_text_with_nul_characters_is_stored,
    a_second_store_on_the_same_database_sees_every_write,
    concurrent_creates_get_distinct_ids,
    a_duplicate_uuid_among_concurrent_creates_fails_only_its_own,
    concurrent_creates_on_two_stores_respect_the_per_user_limit,
    concurrent_pushes_stack_without_gaps_and_pop_back_exactly,
    concurrent_sets_each_replace_a_different_user_context,
    concurrent_ends_agree_on_the_first_reason,
    closing_while_runs_start_never_leaves_a_run_behind,
    session_facts_name_the_user_and_the_owner,
    node_leases_are_renewed_and_expire,
    lost_nodes_are_taken_over_once_and_never_the_taker,
    concurrent_takeovers_take_each_lost_node_once,
);

/// A database and a store on it.
struct Fixture {
    /// Where the database is.
    database: Database,
    /// The store the test works on.
    store: Arc<dyn Store>,
}

/// A backend's database, which [`Fixture::replica`] can open again.
enum Database {
    /// A SQLite file in this directory.
    Sqlite(TempDir),
    /// A PostgreSQL database at this URL.
    Postgres(String),
}

impl Database {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(dir) => Arc::new(
                SqliteStore::open(dir.path().join("sessiond.db"))
                    .await
                    .expect("opening the SQLite store"),
            ),
            Self::Postgres(url) => sessiond::store::open(url)
                .await
                .expect("opening the PostgreSQL store"),
        }
    }
}

impl Fixture {
    async fn sqlite() -> Self {
        Self::on(Database::Sqlite(tempfile::tempdir().unwrap())).await
    }

    async fn postgres(test: &str) -> Option<Self> {
        let url = common::postgres::fresh_database(&format!("postgres::{test}")).await?;
        Some(Self::on(Database::Postgres(url)).await)
    }

    async fn on(database: Database) -> Self {
        let store = database.open().await;
        Self { database, store }
    }

    /// Another store on the same database: what a second replica has. A
    /// SQLite database is owned by one store (see
    /// `a_sqlite_database_has_one_owner`), so there it is the same store.
    async fn replica(&self) -> Arc<dyn Store> {
        match &self.database {
            Database::Sqlite(_) => Arc::clone(&self.store),
            Database::Postgres(_) => self.database.open().await,
        }
    }
}

// ---------------------------------------------------------------- helpers

/// The node the tests' sessions belong to unless they say otherwise.
const NODE: &str = "node-a";

/// A fixed instant plus `micros`.
fn at(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_750_000_000_000_000 + micros)
}

fn user(name: &str) -> UserId {
    UserId::parse("user", name.to_owned()).unwrap()
}

fn module(id: &str) -> ModuleId {
    ModuleId::parse("module", id.to_owned()).unwrap()
}

fn no_parameters() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}

fn new_session(name: &str, kind: SessionKind) -> NewSession {
    NewSession {
        uuid: Uuid::now_v7(),
        user: user(name),
        kind,
        client: ClientDescription::parse(
            "client",
            match kind {
                SessionKind::Interactive => "web/2.3 from 10.0.0.7".to_owned(),
                SessionKind::Clientless => String::new(),
            },
        )
        .unwrap(),
        now: at(0),
        owner_node: NODE.to_owned(),
        max_open_per_user: None,
    }
}

async fn clientless(store: &dyn Store, name: &str) -> SessionId {
    store
        .create_session(new_session(name, SessionKind::Clientless))
        .await
        .unwrap()
        .id
}

async fn interactive(store: &dyn Store, name: &str) -> SessionId {
    store
        .create_session(new_session(name, SessionKind::Interactive))
        .await
        .unwrap()
        .id
}

/// A clientless session created at `now` on `node`.
async fn clientless_at(store: &dyn Store, name: &str, now: Timestamp, node: &str) -> SessionId {
    let mut new = new_session(name, SessionKind::Clientless);
    new.now = now;
    node.clone_into(&mut new.owner_node);
    store.create_session(new).await.unwrap().id
}

fn all(limit: u32) -> SessionQuery {
    SessionQuery {
        limit,
        ..SessionQuery::default()
    }
}

fn ids(sessions: &[sessiond::model::Session]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id).collect()
}

/// An id no session has.
const MISSING: i64 = 987_654_321;

fn missing() -> SessionId {
    SessionId::from_store(MISSING)
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: sessiond::Result<T>) {
    match result {
        Err(Error::SessionNotFound { session_id }) => assert_eq!(session_id.get(), MISSING),
        other => panic!("expected SessionNotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_ended<T: std::fmt::Debug>(result: sessiond::Result<T>, id: SessionId) {
    match result {
        Err(Error::SessionEnded { session_id }) => assert_eq!(session_id, id),
        other => panic!("expected SessionEnded, got {other:?}"),
    }
}

fn failure(kind: FailureKind, message: &str) -> ModuleFailure {
    ModuleFailure::new(kind, message)
}

// ------------------------------------------------------------------ tests

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
    assert_not_found(store.begin_closing(id, at(1)).await);
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

async fn list_sessions_filters_and_pages(f: Fixture) {
    let store = &*f.store;
    let a1 = interactive(store, "A").await;
    let a2 = clientless(store, "A").await;
    let b1 = clientless(store, "B").await;
    let a3 = clientless(store, "A").await;
    let b2 = interactive(store, "B").await;
    store
        .end_session(a1, EndReason::ClosedByClient, at(5))
        .await
        .unwrap();
    store.begin_closing(a3, at(5)).await.unwrap();

    let every = store.list_sessions(&all(100)).await.unwrap();
    assert_eq!(ids(&every), [a1, a2, b1, a3, b2]);
    assert_eq!(every[0].state, SessionState::Ended);
    assert_eq!(every[3].state, SessionState::Closing);

    let query = |user_name: Option<&str>, kind, state| SessionQuery {
        user: user_name.map(user),
        kind,
        state,
        after: None,
        limit: 100,
    };
    let list = |q: SessionQuery| async move { ids(&store.list_sessions(&q).await.unwrap()) };
    assert_eq!(list(query(Some("A"), None, None)).await, [a1, a2, a3]);
    assert_eq!(list(query(Some("B"), None, None)).await, [b1, b2]);
    assert_eq!(list(query(Some("C"), None, None)).await, []);
    assert_eq!(
        list(query(None, Some(SessionKind::Clientless), None)).await,
        [a2, b1, a3]
    );
    assert_eq!(
        list(query(None, Some(SessionKind::Interactive), None)).await,
        [a1, b2]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Open))).await,
        [a2, b1, b2]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Closing))).await,
        [a3]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Ended))).await,
        [a1]
    );
    assert_eq!(
        list(query(
            Some("A"),
            Some(SessionKind::Clientless),
            Some(SessionState::Open)
        ))
        .await,
        [a2]
    );

    // Paging: pages of two, each after the previous page's last id.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_sessions(&SessionQuery {
                after,
                limit: 2,
                ..SessionQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|s| s.id);
        pages.push(ids(&page));
    }
    assert_eq!(pages, [vec![a1, a2], vec![b1, a3], vec![b2]]);
    let filtered_page = store
        .list_sessions(&SessionQuery {
            user: Some(user("A")),
            after: Some(a1),
            limit: 1,
            ..SessionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&filtered_page), [a2]);
    assert!(store.list_sessions(&all(0)).await.unwrap().is_empty());
}

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
    store.begin_closing(only.id, at(1)).await.unwrap();
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
    store.begin_closing(closing, at(1)).await.unwrap();
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

async fn begin_closing_is_for_open_clientless_sessions_and_idempotent(f: Fixture) {
    let store = &*f.store;
    let web = interactive(store, "R41").await;
    match store.begin_closing(web, at(1)).await {
        Err(Error::SessionNotClientless { session_id }) => assert_eq!(session_id, web),
        other => panic!("expected SessionNotClientless, got {other:?}"),
    }
    assert_eq!(store.session(web).await.unwrap().state, SessionState::Open);

    let id = clientless(store, "R41").await;
    let closing = store.begin_closing(id, at(10)).await.unwrap();
    assert_eq!(closing.state, SessionState::Closing);
    assert_eq!(closing.last_activity_time, at(10));
    assert_eq!(closing.end_time, None);

    let again = store.begin_closing(id, at(20)).await.unwrap();
    assert_eq!(again, closing, "closing again changes nothing");
    assert_eq!(store.session(id).await.unwrap(), closing);

    let ended = store
        .end_session(id, EndReason::ClosedByClient, at(30))
        .await
        .unwrap();
    assert_eq!(store.begin_closing(id, at(40)).await.unwrap(), ended);
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
    store.begin_closing(closing, at(5)).await.unwrap();
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
    store.begin_closing(closing, at(5)).await.unwrap();
    let ended = store
        .end_session(closing, EndReason::ServerShutdown, at(6))
        .await
        .unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::ServerShutdown));
}

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
    store.begin_closing(closing, at(3)).await.unwrap();
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
    store.begin_closing(closing, at(1)).await.unwrap();
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
    store.begin_closing(closing, at(0)).await.unwrap();
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
        store.begin_closing_expired(id, &expiry).await.unwrap()
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

async fn start_run_needs_an_open_clientless_session(f: Fixture) {
    let store = &*f.store;
    let m = module("100000");
    let web = interactive(store, "R41").await;
    match store.start_run(web, &m, &no_parameters(), at(1)).await {
        Err(Error::SessionNotClientless { session_id }) => assert_eq!(session_id, web),
        other => panic!("expected SessionNotClientless, got {other:?}"),
    }
    let closing = clientless(store, "R41").await;
    store.begin_closing(closing, at(1)).await.unwrap();
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
    store.begin_closing(id, at(51)).await.unwrap();
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
                let closed = store.begin_closing(id, at(2)).await.unwrap();
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

// ------------------------------------------------------------ nodes

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
    store.begin_closing(closing, at(60)).await.unwrap();
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
    store.begin_closing_expired(expired, &expiry).await.unwrap();

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

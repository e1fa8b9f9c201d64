//! The store conformance suite: every test is written once against the
//! [`Store`] trait and instantiated for every backend by `conformance!`
//! (`AREA::sqlite::NAME` on a file in a temporary directory,
//! `AREA::postgres::NAME` on a fresh PostgreSQL database; see
//! `common::postgres` for where that comes from; those are ignored when
//! the build found no PostgreSQL, `cfg(has_postgres)`).
//!
//! The tests cover each method's effects and errors, idempotence, the
//! expiry rules, and — the reason a second backend needs this suite —
//! concurrent writers, including writers on two store handles sharing one
//! database, as two server replicas would.
//!
//! # Layout
//! - this file: `conformance!`, the [`Fixture`] and the helpers every area
//!   shares;
//! - [`sessions`]: creating, reading and touching sessions;
//! - [`listing`]: listing sessions;
//! - [`limits`]: the per-user limit;
//! - [`ending`]: closing and ending sessions;
//! - [`expiry`]: the expiry rules;
//! - [`scopes`]: user-context scopes;
//! - [`runs`]: module runs;
//! - [`nodes`]: recovery, leases and takeover;
//! - [`sqlite_only`]: what only the SQLite store promises.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;

use sessiond::Error;
use sessiond::model::{
    ClientDescription, FailureKind, ModuleFailure, ModuleId, SessionId, SessionKind, Timestamp,
    UserId,
};
use sessiond::store::{NewSession, SessionQuery, SqliteStore, Store};
use tempfile::TempDir;
use uuid::Uuid;

/// Instantiates each named test of the invoking module for every backend,
/// in its submodules `sqlite` and `postgres`; the PostgreSQL half is
/// ignored when the build found no PostgreSQL.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        /// The suite on SQLite.
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::Fixture::sqlite().await).await;
                }
            )+
        }

        /// The suite on PostgreSQL.
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(has_postgres),
                    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
                )]
                async fn $test() {
                    super::$test(crate::Fixture::postgres(stringify!($test)).await).await;
                }
            )+
        }
    };
}

mod ending;
mod expiry;
mod limits;
mod listing;
mod nodes;
mod runs;
mod scopes;
mod sessions;
mod sqlite_only;

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

    async fn postgres(test: &str) -> Self {
        let url = common::postgres::fresh_database(&format!("postgres::{test}")).await;
        Self::on(Database::Postgres(url)).await
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

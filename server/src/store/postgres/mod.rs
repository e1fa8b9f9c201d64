//! The PostgreSQL store, for several server replicas sharing one database.
//!
//! Same schema meaning and same guarantees as the SQLite store, by other
//! means:
//! - **durable before acknowledged**: every write is one transaction
//!   committed with the server's `synchronous_commit` (on by default; the
//!   store warns at start-up when it is off) before it is answered; opens
//!   and ends that arrive together share one ([`group_commit`]);
//! - **no lost update across processes**: transactions run at READ
//!   COMMITTED and every write first *locks* what the domain's rule depends
//!   on — the session row (`SELECT … FOR UPDATE`) before the rule sees the
//!   session's state, its user-context stack or its runs, and the user's
//!   row in `session_users` before the per-user limit counts the user's
//!   open sessions — then reads (each later statement sees everything the
//!   previous lock holder committed), asks the domain, and writes;
//! - **portable SQL**: row locks, `SKIP LOCKED`, partial indexes,
//!   `ON CONFLICT` and `unnest`; no advisory locks, triggers, stored
//!   functions or system columns, so that PostgreSQL-compatible engines can
//!   run it (the README says what it needs);
//! - **no deadlock**: a transaction locks user rows (ascending), then
//!   sessions (ascending id), and only then their scopes and runs;
//! - **no endless wait**: a statement waits at most 30 s for a lock
//!   (`lock_timeout`), and a connection stalled inside a transaction loses it
//!   after 60 s (`idle_in_transaction_session_timeout`), releasing its locks.
//!
//! Ids come from identity columns, unique across replicas. The schema is
//! migrated (`migrations/postgres`) when the store opens; sqlx's migrator
//! holds an advisory lock, so replicas starting together migrate once.

/// The columns of a [`Session`] (`codec::session_from_row`) of the
/// `sessions` row aliased `s`, for a `SELECT` or a `RETURNING`.
macro_rules! session_columns {
    () => {
        concat!(
            "s.session_id, s.session_uuid::text AS session_uuid, s.user_id, s.kind, ",
            "s.state, s.start_time, s.end_time, s.last_activity_time, s.end_reason, ",
            "s.effective_user, s.client, s.owner_node, s.user_context_depth AS depth"
        )
    };
}

/// The columns of a [`Session`], followed by the rest of a query.
macro_rules! select_session {
    ($($rest:expr),+) => {
        concat!("SELECT ", session_columns!(), " FROM sessions s ", $($rest),+)
    };
}

// After the macros above, which the modules below use.
mod backend;
mod codec;
mod events;
mod group_commit;
mod rows;
mod settings;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use self::settings::{PostgresSettings, read_password_file, redact_password};

use self::codec::store_error;
use self::group_commit::{Batcher, Caused};
use crate::model::{Error, NewSession, Result, Session, SessionId};
use crate::store::End;

/// How long a statement waits for a lock (PostgreSQL's `lock_timeout`).
const LOCK_TIMEOUT: &str = "30s";

/// A pooled connection idle for this long is pinged before it is used.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long a connection may sit idle inside a transaction before the
/// server ends it (`idle_in_transaction_session_timeout`); sessiond's own
/// transactions never pause between statements.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// The PostgreSQL implementation of the store ([`crate::store::Store`]).
#[derive(Clone)]
pub struct PostgresStore {
    /// The connections; each write transaction holds one for its duration.
    pool: PgPool,
    /// Opens that arrive together, created together.
    opens: Arc<Batcher<Caused<NewSession>, Result<SessionId>>>,
    /// Ends of sessions (by their clients or ours) that arrive together,
    /// committed together.
    ends: Arc<Batcher<Caused<End>, Result<Session>>>,
    /// Woken after each commit of this process that recorded events.
    commits: Arc<crate::store::Commits>,
    /// Whether changes are recorded in the event log.
    record_events: bool,
    /// The URL without its password, for `Debug`.
    redacted_url: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.redacted_url)
            .field("pool", &self.pool)
            .finish()
    }
}

impl PostgresStore {
    /// Connects with default settings to the database at `url`
    /// (`postgres://…` or `postgresql://…`) and migrates it.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the database cannot be reached or
    /// migrated; [`Error::InvalidArgument`] for a URL that does not parse.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(&PostgresSettings::new(url)).await
    }

    /// Connects with `settings` and migrates the database.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the database cannot be reached or
    /// migrated; [`Error::InvalidArgument`] for a URL that does not parse.
    pub async fn connect(settings: &PostgresSettings) -> Result<Self> {
        let options: PgConnectOptions = settings.url.parse().map_err(|e| {
            Error::InvalidArgument(vec![crate::model::FieldViolation::new(
                "database",
                format!("not a PostgreSQL URL: {e}"),
            )])
        })?;
        let options = match &settings.password {
            Some(password) => options.password(password),
            None => options,
        };
        let options = options.application_name("sessiond").options([
            // A write that waits this long for a row another replica holds
            // fails as unavailable instead of hanging its caller.
            ("lock_timeout", LOCK_TIMEOUT),
            // A replica that stalls inside a transaction (stopped, cut off
            // with its TCP connection still up) releases its locks.
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            ),
        ]);
        // One connection first, alone: when the database cannot be reached,
        // its error says why (the pool would only say it timed out).
        check_reachable(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // A connection in steady use is not pinged before each use (a
            // round trip per statement); one idle for a while is, so that a
            // server restart or a dropped connection is noticed here rather
            // than by a caller's request.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(store_error)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
        let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&pool)
            .await
            .map_err(store_error)?;
        if synchronous_commit == "off" {
            tracing::warn!(
                synchronous_commit = %synchronous_commit,
                "PostgreSQL acknowledges commits before they are durable; \
                 a crash may lose writes sessiond already acknowledged"
            );
        }
        let commits = Arc::new(crate::store::Commits::default());
        let record_events = settings.record_events;
        Ok(Self {
            opens: Arc::new(Batcher::start({
                let (pool, commits) = (pool.clone(), Arc::clone(&commits));
                move |batch| {
                    let recording = record_events.then(|| Arc::clone(&commits));
                    group_commit::create_batch(pool.clone(), recording, batch)
                }
            })),
            ends: Arc::new(Batcher::start({
                let (pool, commits) = (pool.clone(), Arc::clone(&commits));
                move |batch| {
                    let recording = record_events.then(|| Arc::clone(&commits));
                    group_commit::end_batch(pool.clone(), recording, batch)
                }
            })),
            commits,
            record_events,
            pool,
            redacted_url: settings.redacted_url(),
        })
    }
}

/// Connects once to the database `options` name and disconnects.
///
/// # Errors
/// [`Error::StoreUnavailable`] naming the server (host and port, database
/// and user) and why it could not be used.
async fn check_reachable(options: &PgConnectOptions) -> Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await;
    let where_ = || {
        format!(
            "PostgreSQL at {}:{} (database {:?}, user {:?})",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default(),
            options.get_username()
        )
    };
    match connected {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(error)) => Err(Error::StoreUnavailable(
            format!("cannot connect to {}: {error}", where_()).into(),
        )),
        Err(_) => Err(Error::StoreUnavailable(
            format!(
                "cannot connect to {}: no answer within {}s",
                where_(),
                CONNECT_TIMEOUT.as_secs()
            )
            .into(),
        )),
    }
}

/// How long the first connection may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The answer to a write queued while the runtime shuts down.
fn stopping() -> Error {
    Error::StoreUnavailable("the store is shutting down".into())
}

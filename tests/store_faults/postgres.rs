//! Faults under the PostgreSQL store: the server's connections killed
//! (`pg_terminate_backend`) again and again while writes are in flight, in
//! the middle of their batches; and PostgreSQL down for 10 s (a cluster of
//! the test's own, stopped and started again on the same port). The test
//! reads the database itself afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_testkit::postgres::Cluster;
use sqlx::PgPool;
use sqlx::Row;
use tokio::task::JoinHandle;

use crate::common::ServerProcess;
use crate::probes::Target;
use crate::{
    Expect, PUSH_EVENTS_SQL, SCOPES_SQL, SESSIONS_SQL, START_EVENTS_SQL, Stored, USERS_SQL,
    WITHOUT_EVENT_SQL, assert_told_is_stored, through_fault,
};

/// How often the server's connections are killed while that fault lasts.
const KILL_EVERY: Duration = Duration::from_millis(20);

/// Starts the real binary on the PostgreSQL database at `url`.
async fn start(url: &str) -> ServerProcess {
    ServerProcess::spawn(url, &["--admin-listen", "127.0.0.1:0"]).await
}

/// What the database at `url` holds, read directly.
pub async fn read_stored(url: &str) -> Stored {
    let pool = PgPool::connect(url).await.unwrap();
    let ids = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<i64, _>(0))
                .collect()
        }
    };
    let names = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>(0))
                .collect()
        }
    };
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let stored = Stored {
        sessions: ids(SESSIONS_SQL).await,
        users: names(USERS_SQL).await,
        scopes: ids(SCOPES_SQL).await,
        sessions_without_event: count(WITHOUT_EVENT_SQL).await,
        start_events: count(START_EVENTS_SQL).await,
        push_events: count(PUSH_EVENTS_SQL).await,
    };
    pool.close().await;
    stored
}

/// Kills every connection of sessiond's to the database at `url` every
/// [`KILL_EVERY`] until `stop`; returns how many it killed.
async fn kill_connections(url: String, stop: Arc<AtomicBool>, killed: Arc<AtomicU64>) {
    let pool = PgPool::connect(&url).await.unwrap();
    while !stop.load(Ordering::Acquire) {
        let terminated: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'sessiond') AS t",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        killed.fetch_add(u64::try_from(terminated).unwrap(), Ordering::Relaxed);
        tokio::time::sleep(KILL_EVERY).await;
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn postgres_connections_dropped_mid_batch_refuse_writes_and_recover() {
    const FAULT: &str = "postgres: connections killed every 20 ms";
    let url = crate::common::postgres::fresh_database("store_faults_connections_dropped").await;
    let server = start(&url).await;
    let target = Target::of(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let killer: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
    let (tally, figures) = through_fault(
        FAULT,
        &target,
        Expect::Refusals,
        Duration::from_secs(1),
        || async {
            let task = kill_connections(url.clone(), Arc::clone(&stop), Arc::clone(&killed));
            *killer.lock().unwrap() = Some(tokio::spawn(task));
        },
        || async {
            stop.store(true, Ordering::Release);
            let task = killer.lock().unwrap().take().unwrap();
            task.await.unwrap();
        },
    )
    .await;
    target.assert_ledger_verifies().await;
    drop(server);
    assert_told_is_stored(FAULT, &tally, &read_stored(&url).await);
    figures.print();
    eprintln!(
        "FIGURES {FAULT}: {} connections killed",
        killed.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn postgres_down_for_10_s_refuses_writes_and_recovers() {
    const FAULT: &str = "postgres: down for 10 s";
    let cluster = Cluster::start("sessiond-faults-pg-").unwrap();
    let url = cluster.admin_url().to_owned();
    let server = start(&url).await;
    let target = Target::of(&server);
    let (tally, figures) = through_fault(
        FAULT,
        &target,
        Expect::Refusals,
        Duration::from_secs(10),
        || async { tokio::task::block_in_place(|| cluster.stop().unwrap()) },
        || async { tokio::task::block_in_place(|| cluster.start_again().unwrap()) },
    )
    .await;
    target.assert_ledger_verifies().await;
    drop(server);
    assert_told_is_stored(FAULT, &tally, &read_stored(&url).await);
    figures.print();
}

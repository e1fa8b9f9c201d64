//! A lost answer to a COMMIT on PostgreSQL: a proxy between sessiond and
//! PostgreSQL forwards a COMMIT and then cuts the connection before
//! PostgreSQL's answer reaches sessiond, so the transaction committed and
//! sessiond cannot know it from that connection. sessiond must settle the
//! outcome before it answers: a write that committed is acknowledged, not
//! refused with STORE_UNAVAILABLE (which promises that nothing changed and
//! which clients retry — a second session, a second scope).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{ServerProcess, eventually};
use crate::workload::Workload;
use crate::{CLIENTS, assert_told_is_stored};

/// A TCP proxy to PostgreSQL that, once armed, cuts the next connection
/// that sends a COMMIT: it forwards the COMMIT, and drops the connection
/// instead of relaying PostgreSQL's answer.
struct CommitCutter {
    /// The port it listens on (127.0.0.1).
    port: u16,
    /// Whether the next COMMIT is cut.
    armed: Arc<AtomicBool>,
    /// How many COMMITs were cut.
    cuts: Arc<AtomicU64>,
}

impl CommitCutter {
    /// Starts relaying connections to `upstream` (`HOST:PORT`).
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (relay_armed, relay_cuts) = (Arc::clone(&armed), Arc::clone(&cuts));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (armed, cuts) = (Arc::clone(&relay_armed), Arc::clone(&relay_cuts));
                tokio::spawn(relay(client, server, armed, cuts));
            }
        });
        Self { port, armed, cuts }
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }

    fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Acquire)
    }
}

/// Relays one connection both ways until either side ends, or until a
/// COMMIT was forwarded while armed: then PostgreSQL's next answer is read
/// and dropped, and so is the connection.
async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cuts: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cutting = Arc::new(AtomicBool::new(false));
    let answers = {
        let cutting = Arc::clone(&cutting);
        async move {
            let mut buffer = vec![0_u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if cutting.load(Ordering::Acquire) {
                    // The COMMIT's answer: PostgreSQL committed.
                    cuts.fetch_add(1, Ordering::AcqRel);
                    return;
                }
                if client_write.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let requests = async move {
        let mut buffer = vec![0_u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let commit = buffer[..n].windows(6).any(|w| w == b"COMMIT");
            if commit && armed.swap(false, Ordering::AcqRel) {
                // Set before the COMMIT leaves: its answer is never relayed.
                cutting.store(true, Ordering::Release);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = answers => {}
        () = requests => {}
    }
}

/// `url` with its port replaced by `port`, and the `HOST:PORT` it named.
fn through_port(url: &str, port: u16) -> (String, String) {
    let (scheme_and_user, rest) = url.rsplit_once('@').unwrap();
    let (host_port, path) = rest.split_once('/').unwrap();
    let host = host_port.rsplit_once(':').unwrap().0;
    (
        format!("{scheme_and_user}@{host}:{port}/{path}"),
        host_port.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn postgres_lost_commit_answers_are_settled_before_the_answer() {
    const FAULT: &str = "postgres: COMMIT answers lost";
    const CUTS: u64 = 8;
    let url = crate::common::postgres::fresh_database("store_faults_lost_commit").await;
    let (_, upstream) = through_port(&url, 0);
    let cutter = CommitCutter::start(upstream).await;
    let (proxied, _) = through_port(&url, cutter.port);
    let server = ServerProcess::spawn(&proxied, &["--admin-listen", "127.0.0.1:0"]).await;
    let endpoint = server.endpoint();
    let workload = Workload::start(&endpoint, CLIENTS).await;
    eventually("writes before the fault", || async {
        (workload.tally().acked() >= 50).then_some(())
    })
    .await;
    for cut in 1..=CUTS {
        cutter.arm();
        eventually("a COMMIT cut", || async {
            (cutter.cuts() >= cut).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tally = workload.stop().await;
    assert!(
        tally.wrong.is_empty(),
        "every answer is a success or STORE_UNAVAILABLE; e.g. {:?}",
        tally.wrong.first()
    );
    let settled = server.log.borrow().matches("committed after all").count();
    drop(server);
    assert_told_is_stored(FAULT, &tally, &crate::postgres::read_stored(&url).await);
    assert!(settled > 0, "no cut write was settled as committed");
    eprintln!(
        "FIGURES {FAULT}: {} COMMITs cut, {settled} settled as committed and acknowledged; \
         {} writes acknowledged, {} refused",
        cutter.cuts(),
        tally.acked(),
        tally.refused()
    );
}

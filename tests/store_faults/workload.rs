//! Clients writing while a fault comes and goes, and everything they were
//! told: each client opens a clientless session and pushes a user context
//! in it, over and over, on plain generated stubs (no retries), and keeps
//! the id of every write acknowledged and the time of every answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{OpenClientlessSessionRequest, PushUserContextRequest};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use tonic_types::StatusExt;

/// How long a client waits for one answer before it records that it got
/// none: far longer than any fault here lasts.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// A client's pause after a refusal, so that refusals do not spin.
const AFTER_REFUSAL: Duration = Duration::from_millis(20);

/// What the clients were told.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// The sessions whose open was acknowledged.
    pub sessions: Vec<i64>,
    /// The scopes whose push was acknowledged.
    pub scopes: Vec<i64>,
    /// When each write was acknowledged.
    pub acked_at: Vec<Instant>,
    /// When each write was refused with UNAVAILABLE / STORE_UNAVAILABLE.
    pub refused_at: Vec<Instant>,
    /// Every other answer (a wrong one): what it was.
    pub wrong: Vec<String>,
    /// The users of the opens refused with STORE_UNAVAILABLE (one user per
    /// open: these sessions must not exist).
    pub refused_users: Vec<String>,
}

impl Tally {
    /// Writes acknowledged.
    pub fn acked(&self) -> usize {
        self.acked_at.len()
    }

    /// Writes refused.
    pub fn refused(&self) -> usize {
        self.refused_at.len()
    }

    /// The first acknowledgement after `instant`, as a delay from it.
    pub fn first_ack_after(&self, instant: Instant) -> Option<Duration> {
        self.acked_at
            .iter()
            .filter(|at| **at > instant)
            .min()
            .map(|at| *at - instant)
    }

    /// Writes acknowledged between `from` and `to`.
    pub fn acked_between(&self, from: Instant, to: Instant) -> usize {
        self.acked_at
            .iter()
            .filter(|at| **at >= from && **at < to)
            .count()
    }

    /// Writes refused after `instant`.
    pub fn refused_after(&self, instant: Instant) -> usize {
        self.refused_at.iter().filter(|at| **at > instant).count()
    }

    fn answer<T>(
        &mut self,
        result: Result<Result<T, tonic::Status>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        let at = Instant::now();
        match result {
            Ok(Ok(value)) => {
                self.acked_at.push(at);
                Some(value)
            }
            Ok(Err(status)) if is_store_unavailable(&status) => {
                self.refused_at.push(at);
                None
            }
            Ok(Err(status)) => {
                self.wrong.push(format!("{status:?}"));
                None
            }
            Err(_) => {
                self.wrong
                    .push(format!("no answer within {CALL_DEADLINE:?}"));
                None
            }
        }
    }
}

/// Whether `status` is UNAVAILABLE with the ErrorInfo reason
/// STORE_UNAVAILABLE (domain `sessiond`).
fn is_store_unavailable(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        && status
            .get_error_details()
            .error_info()
            .is_some_and(|info| info.domain == "sessiond" && info.reason == "STORE_UNAVAILABLE")
}

/// Clients writing until stopped.
pub struct Workload {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    clients: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `clients` clients writing to the server at `endpoint`, each
    /// on its own connection.
    pub async fn start(endpoint: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut tasks = Vec::new();
        for client in 0..clients {
            let channel = Channel::from_shared(endpoint.to_owned())
                .unwrap()
                .connect()
                .await
                .unwrap();
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            tasks.push(tokio::spawn(write_until(client, channel, stop, tally)));
        }
        Self {
            stop,
            tally,
            clients: tasks,
        }
    }

    /// What the clients were told so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Stops the clients (each finishes its call) and returns what they were
    /// told.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Release);
        for client in self.clients {
            client.await.unwrap();
        }
        self.tally.lock().unwrap().clone()
    }
}

/// One client: open, push, again, until `stop`.
async fn write_until(
    client: usize,
    channel: Channel,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut sessions = SessionServiceClient::new(channel.clone());
    let mut contexts = UserContextServiceClient::new(channel);
    let mut n = 0_u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        // A user per session: the per-user limit stays out of the way.
        let user = format!("c{client}u{n}");
        let opened = tokio::time::timeout(
            CALL_DEADLINE,
            sessions.open_clientless_session(OpenClientlessSessionRequest { user: user.clone() }),
        )
        .await
        .map(|result| result.map(|response| response.into_inner().session_id));
        let opened = {
            let mut tally = tally.lock().unwrap();
            let refused_before = tally.refused();
            let opened = tally.answer(opened);
            if tally.refused() > refused_before {
                tally.refused_users.push(user);
            }
            opened
        };
        let Some(session_id) = opened else {
            tokio::time::sleep(AFTER_REFUSAL).await;
            continue;
        };
        tally.lock().unwrap().sessions.push(session_id);
        let pushed = tokio::time::timeout(
            CALL_DEADLINE,
            contexts.push_user_context(PushUserContextRequest {
                session_id,
                user: "R42".to_owned(),
            }),
        )
        .await
        .map(|result| result.map(|response| response.into_inner().scope_id));
        let pushed = {
            let mut tally = tally.lock().unwrap();
            let pushed = tally.answer(pushed);
            if let Some(scope_id) = pushed {
                tally.scopes.push(scope_id);
            }
            pushed
        };
        if pushed.is_none() {
            tokio::time::sleep(AFTER_REFUSAL).await;
        }
    }
}

//! A worker: random calls on its own sessions against whichever node is
//! up, every answer entered in its ledger ([`super::ledger`]), every read
//! compared with it.
//!
//! An error answers a write only when it carries a reason that says the
//! write was refused ([`REFUSALS`]); any other error (the connection
//! reset by a kill, UNAVAILABLE, an owner that could not be reached) leaves
//! the write unknown. After an error without a reason the worker stops
//! using that node until it has been started again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use super::ledger::{Record, WorkerLedger};
use super::nodes::Endpoints;

/// Reasons that say the call changed nothing.
pub const REFUSALS: [&str; 14] = [
    "INVALID_ARGUMENT",
    "SESSION_NOT_FOUND",
    "SESSION_NOT_CLIENTLESS",
    "SESSION_ENDED",
    "SESSION_CLOSING",
    "SCOPE_NOT_FOUND",
    "SCOPE_NOT_INNERMOST",
    "MODULE_NOT_FOUND",
    "MODULE_NOT_OPENED",
    "MODULE_STILL_RUNNING",
    "TOO_MANY_RUNNING_MODULES",
    "TOO_MANY_SESSIONS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
];

/// How long a call may take beyond what it asks the server to wait.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// What a call's answer says.
pub enum Answer<T> {
    /// Done, with this response.
    Done(T),
    /// Refused, for this reason: nothing was written.
    Refused(String),
    /// No answer: the write may or may not have happened.
    Unknown,
}

/// A small deterministic generator (xorshift64*), seeded per worker.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The clients of one node generation.
#[derive(Clone)]
pub struct Clients {
    pub sessions: SessionServiceClient<Channel>,
    pub contexts: UserContextServiceClient<Channel>,
}

/// One worker.
pub struct Worker {
    pub index: usize,
    pub rng: Rng,
    pub ledger: WorkerLedger,
    /// Indexes into `ledger.sessions` of the sessions it still uses.
    pub live: Vec<usize>,
    endpoints: watch::Receiver<Endpoints>,
    /// Clients by node, with the generation they connect to.
    clients: HashMap<usize, (u64, Clients)>,
    /// Node generations that failed without an answer.
    suspect: HashSet<(usize, u64)>,
    /// The node generation of the call in progress.
    current: (usize, u64),
    stop: Arc<AtomicBool>,
}

/// How many sessions a worker keeps in use.
const LIVE_SESSIONS: usize = 3;

impl Worker {
    pub fn new(
        index: usize,
        seed: u64,
        endpoints: watch::Receiver<Endpoints>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            index,
            rng: Rng::new(seed),
            ledger: WorkerLedger::default(),
            live: Vec::new(),
            endpoints,
            clients: HashMap::new(),
            suspect: HashSet::new(),
            current: (0, 0),
            stop,
        }
    }

    /// Calls until told to stop; returns the ledger.
    pub async fn run(mut self) -> WorkerLedger {
        while !self.stop.load(Ordering::Relaxed) {
            let Some(clients) = self.pick().await else {
                continue;
            };
            if self.live.len() < LIVE_SESSIONS || self.rng.chance(5) {
                if self.rng.chance(70) {
                    self.open_clientless(clients).await;
                } else {
                    self.start_interactive(clients).await;
                }
                continue;
            }
            let slot = usize::try_from(self.rng.below(self.live.len() as u64)).unwrap();
            self.act(clients, slot).await;
        }
        self.ledger
    }

    /// Clients of a node that is up and has not failed this worker, waiting
    /// for one if needed; `None` when it is time to look at the stop flag.
    async fn pick(&mut self) -> Option<Clients> {
        let up: Vec<(usize, u64, String)> = self
            .endpoints
            .borrow_and_update()
            .0
            .iter()
            .enumerate()
            .filter_map(|(node, e)| e.clone().map(|(g, endpoint)| (node, g, endpoint)))
            .filter(|(node, g, _)| !self.suspect.contains(&(*node, *g)))
            .collect();
        if up.is_empty() {
            let _ =
                tokio::time::timeout(Duration::from_millis(100), self.endpoints.changed()).await;
            return None;
        }
        let (node, generation, endpoint) =
            up[usize::try_from(self.rng.below(up.len() as u64)).unwrap()].clone();
        self.current = (node, generation);
        match self.clients.get(&node) {
            Some((g, clients)) if *g == generation => Some(clients.clone()),
            _ => {
                let channel = Endpoint::from_shared(endpoint)
                    .unwrap()
                    .connect_timeout(Duration::from_secs(2))
                    .connect_lazy();
                let clients = Clients {
                    sessions: SessionServiceClient::new(channel.clone()),
                    contexts: UserContextServiceClient::new(channel),
                };
                self.clients.insert(node, (generation, clients.clone()));
                Some(clients)
            }
        }
    }

    /// What `result` says, counted in the tally under `rpc`; an error
    /// without a reason makes the node generation of the call suspect.
    pub async fn answer<T>(
        &mut self,
        rpc: &'static str,
        write: bool,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Answer<T> {
        let status = match result {
            Ok(response) => {
                if write {
                    *self.ledger.tally.acknowledged.entry(rpc).or_default() += 1;
                } else {
                    self.ledger.tally.reads += 1;
                }
                return Answer::Done(response.into_inner());
            }
            Err(status) => status,
        };
        let reason = status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone());
        match reason {
            Some(reason) if REFUSALS.contains(&reason.as_str()) => {
                *self.ledger.tally.refused.entry(reason.clone()).or_default() += 1;
                Answer::Refused(reason)
            }
            Some(reason) => {
                *self.ledger.tally.unknown.entry(reason).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                Answer::Unknown
            }
            None => {
                *self
                    .ledger
                    .tally
                    .unknown
                    .entry(format!("{:?} without a reason", status.code()))
                    .or_default() += 1;
                self.suspect.insert(self.current);
                Answer::Unknown
            }
        }
    }

    /// Records `what` as contradicting the ledger.
    pub fn violation(&mut self, session: &Record, what: String) {
        self.ledger.violations.push(format!(
            "session {} ({:?}, worker {}): {what}",
            session.session_id, session.kind, self.index
        ));
    }

    /// Stops using the session in live slot `slot`.
    pub fn retire(&mut self, slot: usize) {
        self.live.swap_remove(slot);
    }
}

/// `message` as a request with a deadline `wait` + [`CALL_DEADLINE`].
pub fn request<T>(message: T, wait: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(wait + CALL_DEADLINE);
    request
}

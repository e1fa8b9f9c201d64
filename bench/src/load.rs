//! The closed-loop load generator: `N` workers, each with one operation in
//! flight at a time, spread over the HTTP/2 connections they are given. Each
//! side runs a warm-up, then a measured window; an operation counts when it
//! completes inside the window, and its latency (start to completion) goes
//! into an HdrHistogram.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, GetReturnValueRequest, GetSessionInfoRequest,
    GetSessionUserRequest, OpenClientlessSessionRequest, OpenModuleRequest, PopUserContextRequest,
    PushUserContextRequest, RunState,
};
use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::Channel;

use crate::Result;

/// Latencies are recorded in nanoseconds, up to a minute, to 3 significant
/// digits.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// One operation of a worker: the unit that is counted and timed.
pub trait Op: Send + 'static {
    /// Performs the operation once.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// What a gRPC worker does in a loop.
#[derive(Clone, Debug)]
pub enum Workload {
    /// `GetSessionUser` of a random session of `ids`.
    GetSessionUser {
        /// The sessions in the table.
        ids: Arc<[i64]>,
    },
    /// `GetSessionInfo` of a random session of `ids`.
    GetSessionInfo {
        /// The sessions in the table.
        ids: Arc<[i64]>,
    },
    /// `OpenClientlessSession` then `CloseClientlessSession` of it.
    OpenClose,
    /// `PushUserContext` then `PopUserContext` of that scope, in worker
    /// `i`'s session `sessions[i]`.
    PushPop {
        /// One open clientless session per worker.
        sessions: Arc<[i64]>,
    },
    /// `OpenModule` then `GetReturnValue` (which waits for the run), in
    /// worker `i`'s session `sessions[i]`.
    Module {
        /// One open clientless session per worker.
        sessions: Arc<[i64]>,
        /// The module to run.
        module_id: String,
    },
}

impl Workload {
    /// The operation of worker `worker`, on `channel`; with `bearer`, every
    /// call carries it.
    pub fn op(&self, worker: usize, channel: Channel, bearer: Option<Bearer>) -> GrpcOp {
        GrpcOp {
            workload: self.clone(),
            worker,
            sessions: SessionServiceClient::new(channel.clone()),
            user_contexts: UserContextServiceClient::new(channel),
            bearer,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
        }
    }
}

/// The `authorization: Bearer TOKEN` header a caller sends with every call.
#[derive(Clone)]
pub struct Bearer(AsciiMetadataValue);

impl Bearer {
    /// The header for `token`.
    ///
    /// # Errors
    /// When `token` cannot be a header value.
    pub fn new(token: &str) -> Result<Self> {
        Ok(Self(MetadataValue::try_from(format!("Bearer {token}"))?))
    }

    /// `message` as a request carrying the header.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        request
    }
}

impl std::fmt::Debug for Bearer {
    /// Its length only: the token is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bearer({} bytes)", self.0.len())
    }
}

/// `message` as a request, carrying `bearer` if there is one.
pub fn request<T>(bearer: Option<&Bearer>, message: T) -> tonic::Request<T> {
    match bearer {
        Some(bearer) => bearer.request(message),
        None => tonic::Request::new(message),
    }
}

/// A worker's gRPC operation (see [`Workload`]).
#[derive(Debug)]
pub struct GrpcOp {
    workload: Workload,
    worker: usize,
    sessions: SessionServiceClient<Channel>,
    user_contexts: UserContextServiceClient<Channel>,
    /// What every call carries, if anything.
    bearer: Option<Bearer>,
    /// xorshift64* state for picking sessions.
    rng: u64,
}

impl GrpcOp {
    fn pick(&mut self, ids: &[i64]) -> i64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let random = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let index = usize::try_from(random % ids.len() as u64).unwrap_or(0);
        ids[index]
    }

    fn own(&self, sessions: &[i64]) -> i64 {
        sessions[self.worker % sessions.len()]
    }
}

fn status(what: &str) -> impl FnOnce(tonic::Status) -> String + '_ {
    move |s| format!("{what}: {:?}: {}", s.code(), s.message())
}

impl Op for GrpcOp {
    async fn call(&mut self) -> Result<(), String> {
        match self.workload.clone() {
            Workload::GetSessionUser { ids } => {
                let session_id = self.pick(&ids);
                self.sessions
                    .get_session_user(request(
                        self.bearer.as_ref(),
                        GetSessionUserRequest { session_id },
                    ))
                    .await
                    .map_err(status("GetSessionUser"))?;
            }
            Workload::GetSessionInfo { ids } => {
                let session_id = self.pick(&ids);
                self.sessions
                    .get_session_info(request(
                        self.bearer.as_ref(),
                        GetSessionInfoRequest { session_id },
                    ))
                    .await
                    .map_err(status("GetSessionInfo"))?;
            }
            Workload::OpenClose => {
                let opened = self
                    .sessions
                    .open_clientless_session(request(
                        self.bearer.as_ref(),
                        OpenClientlessSessionRequest {
                            user: format!("bench-{}", self.worker),
                        },
                    ))
                    .await
                    .map_err(status("OpenClientlessSession"))?
                    .into_inner();
                self.sessions
                    .close_clientless_session(request(
                        self.bearer.as_ref(),
                        CloseClientlessSessionRequest {
                            session_id: opened.session_id,
                            grace: None,
                        },
                    ))
                    .await
                    .map_err(status("CloseClientlessSession"))?;
            }
            Workload::PushPop { sessions } => {
                let session_id = self.own(&sessions);
                let pushed = self
                    .user_contexts
                    .push_user_context(request(
                        self.bearer.as_ref(),
                        PushUserContextRequest {
                            session_id,
                            user: "R41".to_owned(),
                        },
                    ))
                    .await
                    .map_err(status("PushUserContext"))?
                    .into_inner();
                self.user_contexts
                    .pop_user_context(request(
                        self.bearer.as_ref(),
                        PopUserContextRequest {
                            session_id,
                            scope_id: pushed.scope_id,
                        },
                    ))
                    .await
                    .map_err(status("PopUserContext"))?;
            }
            Workload::Module {
                sessions,
                module_id,
            } => {
                let session_id = self.own(&sessions);
                self.sessions
                    .open_module(request(
                        self.bearer.as_ref(),
                        OpenModuleRequest {
                            session_id,
                            module_id: module_id.clone(),
                            parameters: None,
                        },
                    ))
                    .await
                    .map_err(status("OpenModule"))?;
                let value = self
                    .sessions
                    .get_return_value(request(
                        self.bearer.as_ref(),
                        GetReturnValueRequest {
                            session_id,
                            module_id,
                            timeout: Some(prost_types::Duration {
                                seconds: 30,
                                nanos: 0,
                            }),
                        },
                    ))
                    .await
                    .map_err(status("GetReturnValue"))?
                    .into_inner();
                if value.state != i32::from(RunState::Succeeded) {
                    return Err(format!(
                        "GetReturnValue: the run did not succeed: state {}, failure {:?}",
                        value.state, value.failure
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Spawning a program directly and waiting for it (stdin empty, stdout and
/// stderr captured, as one would to read its answer): the reference of the
/// exec-module scenario.
#[derive(Debug)]
pub struct SpawnOp {
    program: String,
}

impl SpawnOp {
    /// Spawns `program` (looked up on `PATH`).
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
        }
    }
}

impl Op for SpawnOp {
    async fn call(&mut self) -> Result<(), String> {
        let output = tokio::process::Command::new(&self.program)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("spawning {}: {e}", self.program))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{} exited with {}", self.program, output.status))
        }
    }
}

/// What one measured window gave.
#[derive(Debug)]
pub struct Outcome<S> {
    /// Operations completed inside the window.
    pub ops: u64,
    /// The window's length.
    pub elapsed: Duration,
    /// Their latencies, in nanoseconds.
    pub hist: Histogram<u64>,
    /// The caller's sample at the window's start.
    pub start_sample: S,
    /// The caller's sample at the window's end.
    pub end_sample: S,
}

impl<S> Outcome<S> {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at `percentile` (0–100), in microseconds.
    pub fn percentile_us(&self, percentile: f64) -> f64 {
        self.hist.value_at_percentile(percentile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// Runs one worker per element of `ops` for `warmup` then `duration`, and
/// returns what completed inside the measured window; `sample` is called at
/// the window's start and end (for CPU readings).
///
/// # Errors
/// The first failed operation: the benchmark treats every error as fatal.
pub async fn run<O: Op, S>(
    ops: Vec<O>,
    warmup: Duration,
    duration: Duration,
    mut sample: impl FnMut() -> S,
) -> Result<Outcome<S>> {
    let start = Instant::now() + Duration::from_millis(5);
    let window_start = start + warmup;
    let window_end = window_start + duration;
    let workers: Vec<_> = ops
        .into_iter()
        .map(|mut op| {
            tokio::spawn(async move {
                let mut hist = histogram();
                let mut count = 0_u64;
                tokio::time::sleep_until(start).await;
                loop {
                    let began = Instant::now();
                    if began >= window_end {
                        break;
                    }
                    let result = op.call().await;
                    let done = Instant::now();
                    if let Err(error) = result {
                        return (hist, count, Some(error));
                    }
                    if done >= window_start && done < window_end {
                        let nanos = u64::try_from((done - began).as_nanos()).unwrap_or(u64::MAX);
                        hist.saturating_record(nanos.max(1));
                        count += 1;
                    }
                }
                (hist, count, None)
            })
        })
        .collect();
    tokio::time::sleep_until(window_start).await;
    let start_sample = sample();
    tokio::time::sleep_until(window_end).await;
    let end_sample = sample();
    let mut hist = histogram();
    let mut ops = 0;
    let mut first_error = None;
    for worker in workers {
        let (worker_hist, count, error) = worker.await?;
        hist.add(worker_hist)
            .map_err(|e| format!("merging histograms: {e}"))?;
        ops += count;
        first_error = first_error.or(error);
    }
    if let Some(error) = first_error {
        return Err(error.into());
    }
    Ok(Outcome {
        ops,
        elapsed: duration,
        hist,
        start_sample,
        end_sample,
    })
}

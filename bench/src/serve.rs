//! The hidden child modes: the benchmark re-executes itself, pinned to the
//! server core, as the baseline server (plain, or the durable floor), as
//! sessiond (the library, embedded, with an in-process no-op module), or as
//! the direct spawn loop that the exec-module scenario is compared with.
//!
//! The servers print `LISTEN <addr>` on stdout once bound and stop at
//! SIGTERM or when their stdin closes (so they never outlive the benchmark).
//! Both can serve TLS ([`TlsArgs`]); sessiond can authenticate its callers
//! and enforce an access policy ([`AuthArgs`]).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sessiond::config::security::{SecurityConfig, SecuritySettings};
use sessiond::model::ModuleFailure;
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_proto::v1::session_service_server::SessionServiceServer;
use sessiond_proto::v1::user_context_service_server::UserContextServiceServer;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::Result;
use crate::baseline::Baseline;
use crate::floor::DurableLog;
use crate::load::{self, SpawnOp};
use crate::machine;

/// The id of the in-process module that returns `null` at once.
pub const NOOP_MODULE: &str = "noop";
/// The id of the exec module that runs `true`.
pub const EXEC_MODULE: &str = "exec-true";
/// The node id the benchmark's sessiond runs as (and that seeded
/// sessions are owned by).
pub const NODE_ID: &str = "sessiond-bench";

/// sessiond's largest response message (`services::MAX_RESPONSE_BYTES`), so
/// that the baseline's limits are the same.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The in-process module of the `module_inproc` scenario: returns `null`.
#[derive(Debug)]
struct Noop;

#[async_trait]
impl Module for Noop {
    async fn run(&self, _ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        Ok(serde_json::Value::Null)
    }
}

/// TLS for a server child: the flags of the same name of `sessiond`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Authentication and the access policy of the sessiond child: the flags
/// of the same name of `sessiond` (see
/// [`sessiond::config::security::SecuritySettings`]). None given: no
/// authentication, every caller may do everything.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AuthArgs {
    /// Accept the bearer tokens in this file.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Accept bearer JWTs from this issuer; needs --jwt-audience and --jwks.
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// The audience a JWT must name.
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// The issuer's JWKS file.
    #[arg(long)]
    pub jwks: Option<String>,
    /// The access policy (TOML).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// sessiond's security configuration for a server on `listen` with `tls`
/// and `auth`, checked as `sessiond` checks its flags.
fn security(listen: SocketAddr, tls: TlsArgs, auth: AuthArgs) -> Result<SecurityConfig> {
    let settings = SecuritySettings {
        tls_cert: tls.tls_cert,
        tls_key: tls.tls_key,
        tokens: auth.tokens,
        jwt_issuer: auth.jwt_issuer,
        jwt_audience: auth.jwt_audience,
        jwks: auth.jwks,
        policy: auth.policy,
        ..SecuritySettings::default()
    };
    Ok(SecurityConfig::from_settings(settings, listen)?)
}

/// Runs `main` on the runtime every child uses: sessiond's own
/// ([`sessiond::server::runtime`]), which under `taskset -c 0` starts one
/// worker. The runtime is then shut down without waiting for its
/// blocking threads (one is parked reading stdin).
fn run<F: Future<Output = Result<()>>>(main: F) -> Result<()> {
    let runtime = sessiond::server::runtime()?;
    let result = runtime.block_on(main);
    runtime.shutdown_background();
    result
}

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Completes at SIGTERM, at SIGINT, or when stdin reaches its end.
async fn shutdown_signal() {
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0_u8; 256];
        while let Ok(n) = stdin.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Binds `listen` and announces the bound address on stdout.
async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(listen).await?;
    println!("LISTEN {}", listener.local_addr()?);
    Ok(listener)
}

/// Serves the baseline with sessiond's transport and TCP settings
/// ([`sessiond::server::transport`], [`sessiond::server::incoming`]) and
/// sessiond's default message-size limits; with `durable_log`, the durable
/// floor, its writes made durable in a [`DurableLog`] at that path; with
/// `tls`, over TLS configured as sessiond configures it
/// ([`sessiond::auth::tls::server_config`]).
///
/// # Errors
/// When the address cannot be bound, the log cannot be created, the TLS
/// files cannot be used or the transport fails.
pub fn baseline(listen: SocketAddr, durable_log: Option<PathBuf>, tls: TlsArgs) -> Result<()> {
    init_logging();
    let tls = match (tls.tls_cert, tls.tls_key) {
        (Some(cert), Some(key)) => Some(sessiond::auth::tls::server_config(&cert, &key, None)?),
        _ => None,
    };
    run(async {
        let baseline = match durable_log {
            Some(path) => Baseline::durable(DurableLog::start(&path)?),
            None => Baseline::default(),
        };
        let listener = bind(listen).await?;
        let max_request = sessiond::Config::default().max_message_bytes;
        let sessions = SessionServiceServer::new(baseline.clone())
            .max_decoding_message_size(max_request)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        let user_contexts = UserContextServiceServer::new(baseline)
            .max_decoding_message_size(max_request)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        let mut transport = sessiond::server::transport();
        if let Some(tls) = tls {
            transport = transport.tls_config(tls)?;
        }
        transport
            .add_service(sessions)
            .add_service(user_contexts)
            .serve_with_incoming_shutdown(sessiond::server::incoming(listener), shutdown_signal())
            .await?;
        Ok(())
    })
}

/// Serves sessiond on `database` as node `node_id` with the exec modules of
/// `modules`, the in-process [`NOOP_MODULE`], no limit of open sessions
/// per user, the security `tls` and `auth` configure, the event log
/// recorded or not, and `cached_sessions` kept in memory (else sessiond's
/// default).
///
/// # Errors
/// When the security flags are incomplete, the server cannot start or the
/// transport fails.
pub fn sessiond(
    listen: SocketAddr,
    database: String,
    node_id: String,
    modules: Option<PathBuf>,
    (tls, auth): (TlsArgs, AuthArgs),
    (record_events, cached_sessions): (bool, Option<usize>),
    operations: Operations,
) -> Result<()> {
    if operations.log_file.is_none() {
        init_logging();
    }
    let security = security(listen, tls, auth)?;
    run(async {
        let config = sessiond::Config {
            listen,
            database,
            modules,
            node_id,
            max_open_sessions_per_user: None,
            drain_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(1),
            security,
            record_events,
            cached_sessions: cached_sessions
                .unwrap_or(sessiond::known_sessions::DEFAULT_CACHED_SESSIONS),
            ..sessiond::Config::default()
        };
        // As deployed: the log at `info`, in a file.
        let _telemetry = match &operations.log_file {
            Some(path) => Some(sessiond::telemetry::init_writing_to(
                &config,
                std::fs::File::create(path)?,
            )?),
            None => None,
        };
        let mut builder = sessiond::Sessiond::builder(config).module(NOOP_MODULE, Noop);
        if operations.metrics {
            builder = builder.admin(TcpListener::bind("127.0.0.1:0").await?);
        }
        let server = builder.open().await?;
        let listener = bind(listen).await?;
        server.serve(listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// How a benchmarked sessiond is operated.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Operations {
    /// Serve the admin endpoints (on an ephemeral port) and count the
    /// metrics, as `sessiond` does by default.
    #[arg(long)]
    pub metrics: bool,
    /// Log at `info` (unless RUST_LOG says otherwise) to this file, as
    /// `sessiond` logs to stderr; without it, warnings go to stderr.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
}

/// Spawns `program` in a closed loop with `inflight` spawns at once, and
/// prints the measured window as one JSON object on stdout: `ops`,
/// `elapsed_s`, `p50_us`, `p99_us` and `cpu_us` (this process and its
/// children).
///
/// # Errors
/// When a spawn fails.
pub fn spawn_loop(
    program: &str,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<()> {
    let ops = (0..inflight.max(1))
        .map(|_| SpawnOp::new(program))
        .collect();
    let mut outcome = None;
    run(async {
        outcome = Some(
            load::run(ops, warmup, duration, || {
                machine::process_cpu_ticks("self").unwrap_or(0)
            })
            .await?,
        );
        Ok(())
    })?;
    let outcome = outcome.ok_or("the spawn loop did not run")?;
    let cpu_us = machine::ticks_to_us(outcome.end_sample.saturating_sub(outcome.start_sample));
    let json = serde_json::json!({
        "ops": outcome.ops,
        "elapsed_s": outcome.elapsed.as_secs_f64(),
        "p50_us": outcome.percentile_us(50.0),
        "p99_us": outcome.percentile_us(99.0),
        "cpu_us": cpu_us,
    });
    println!("{json}");
    Ok(())
}

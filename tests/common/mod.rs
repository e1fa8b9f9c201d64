//! Shared fixtures of the end-to-end tests: a real sessiond on an ephemeral
//! port with a temporary database (in-process, or as a child process of the
//! real binary), real gRPC clients, readers for the error details, a store
//! that fails chosen calls (`faulty_store`), throwaway PostgreSQL
//! (`postgres`), pytest's outcome (`pytest`), and credentials (`credentials`) and certificates (`pki`)
//! made at test time.
#![allow(dead_code)]

pub mod credentials;
pub mod faulty_store;
pub mod pki;
pub mod postgres;
pub mod pytest;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use sessiond::{Config, SessiondBuilder};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// A sessiond served from this test process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database directory (kept until the test ends, so a restart can
    /// reuse it).
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server with default settings on a new temporary database.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose settings `configure` adjusts.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), configure).await
    }

    /// Starts a server on the database in `dir` (a restart when an earlier
    /// server used it).
    pub async fn start_in(dir: TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        Self::build_in(dir, configure, |builder| builder).await
    }

    /// Starts a server on the database in `dir`, with settings `configure`
    /// adjusts and what `build` adds (in-process modules, a clock).
    pub async fn build_in(
        dir: TempDir,
        configure: impl FnOnce(&mut Config),
        build: impl FnOnce(SessiondBuilder) -> SessiondBuilder,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, dir, configure, build).await
    }

    /// Stops the server and starts a new one on the same address and
    /// database, with settings `configure` adjusts: to its clients, the
    /// same server restarted.
    pub async fn restart(self, configure: impl FnOnce(&mut Config)) -> Self {
        let addr = self.addr;
        let dir = self.stop().await;
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::serve_on(listener, dir, configure, |builder| builder).await
    }

    /// Serves on `listener` the database in `dir`.
    async fn serve_on(
        listener: TcpListener,
        dir: TempDir,
        configure: impl FnOnce(&mut Config),
        build: impl FnOnce(SessiondBuilder) -> SessiondBuilder,
    ) -> Self {
        let mut config = Config {
            database: database_url(dir.path()),
            ..Config::default()
        };
        configure(&mut config);
        let addr = listener.local_addr().unwrap();
        let server = build(sessiond::Sessiond::builder(config))
            .open()
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            dir,
            stop: Some(stop),
            task,
        }
    }

    /// `http://ADDR`, for clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A `SessionService` client.
    pub async fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel().await)
    }

    /// A `UserContextService` client.
    pub async fn user_contexts(&self) -> UserContextServiceClient<Channel> {
        UserContextServiceClient::new(self.channel().await)
    }

    /// Shuts the server down gracefully and waits until it stopped; returns
    /// its database directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
        self.dir
    }
}

/// The `sqlite://` URL of the test database in `dir`.
pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("sessiond.db").display())
}

/// `cargo build` of a binary of this workspace, run from a test.
///
/// `cargo test` describes the package under test to the test process in
/// variables (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …) that an ordinary
/// `cargo` command does not have. ring's build script declares that it
/// depends on some of them, so a build that inherited them rebuilt ring and
/// everything above it (rustls, tonic, sessiond), and the next ordinary
/// `cargo` command rebuilt them back: a minute or two per test binary. They
/// are removed here.
pub fn cargo_build() -> escargot::CargoBuild {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| describes_the_package_under_test(name))
        .fold(escargot::CargoBuild::new(), |build, name| {
            build.env_remove(name)
        })
}

/// Whether `name` is one of the variables `cargo test` sets for the package
/// under test (not a setting of cargo's, such as `CARGO_TARGET_DIR`).
fn describes_the_package_under_test(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// The `sessiond` binary, built once per test process.
pub fn sessiond_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        cargo_build()
            .package("sessiond")
            .bin("sessiond")
            .features("otlp")
            .run()
            .expect("building the sessiond binary")
            .path()
            .to_owned()
    })
}

/// The real `sessiond` binary running as a child process.
pub struct ServerProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// The address it logged.
    pub addr: SocketAddr,
    /// Everything it wrote to stderr so far (collected in the background).
    pub log: tokio::sync::watch::Receiver<String>,
    /// The task collecting it, until it reached the end.
    log_read: Option<JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `sessiond --listen 127.0.0.1:0 --database URL EXTRA…` and waits
    /// for the line that logs its address.
    pub async fn spawn(database: &str, extra: &[&str]) -> Self {
        Self::spawn_with_env(database, extra, &[]).await
    }

    /// [`ServerProcess::spawn`] with these variables added to its
    /// environment.
    pub async fn spawn_with_env(database: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_in(None, database, extra, env).await
    }

    /// [`ServerProcess::spawn_with_env`] with the working directory `dir`
    /// (else the test's).
    pub async fn spawn_in(
        dir: Option<&Path>,
        database: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = tokio::process::Command::new(sessiond_binary());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--database", database])
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting sessiond");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let addr = loop {
            let Some(line) = lines.next_line().await.unwrap() else {
                panic!("sessiond exited before listening; it said:\n{seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(addr) = logged_address(&line) {
                break addr;
            }
        };
        let (log_tx, log) = tokio::sync::watch::channel(seen);
        let log_read = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log_tx.send_modify(|log| {
                    log.push_str(&line);
                    log.push('\n');
                });
            }
        });
        Self {
            child,
            addr,
            log,
            log_read: Some(log_read),
        }
    }

    /// Waits for the process to exit and for everything it wrote to stderr
    /// to be in [`ServerProcess::log`] (the log is written in bursts, the
    /// last one at exit).
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().await.unwrap();
        if let Some(log_read) = self.log_read.take() {
            log_read.await.unwrap();
        }
        status
    }

    /// `http://ADDR`, for clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `SessionService` client.
    pub async fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::connect(self.endpoint())
            .await
            .unwrap()
    }
}

/// The address in a "sessiond listening address=…" log line.
fn logged_address(line: &str) -> Option<SocketAddr> {
    logged("sessiond listening", line)
}

/// The address a line logged with `message` names, in the text
/// (`message address=…`) or JSON (`"address":"…"`) log format.
pub fn logged(message: &str, line: &str) -> Option<SocketAddr> {
    if !line.contains(message) {
        return None;
    }
    if line.starts_with('{') {
        let line: serde_json::Value = serde_json::from_str(line).ok()?;
        if line["message"] != message {
            return None;
        }
        return line["address"].as_str()?.parse().ok();
    }
    let start = line.find("address=")? + "address=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}

/// The `ErrorInfo` reason of a status (empty when it has none).
pub fn reason(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let info = details.error_info().expect("status carries an ErrorInfo");
    assert_eq!(info.domain, "sessiond");
    info.reason.clone()
}

/// The `ErrorInfo` metadata value under `key`.
pub fn metadata(status: &tonic::Status, key: &str) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get(key).cloned())
}

/// The fields named by a status's `BadRequest` violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Asserts a call failed with `code` and ErrorInfo `expected_reason`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    expected_reason: &str,
) -> tonic::Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), expected_reason, "{status:?}");
    status
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<sessiond::model::Timestamp>,
}

impl ManualClock {
    /// A clock standing at the real current time.
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            now: std::sync::Mutex::new(std::time::SystemTime::now().into()),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap();
        *now = now.plus(by);
    }
}

impl sessiond::clock::Clock for ManualClock {
    fn now(&self) -> sessiond::model::Timestamp {
        *self.now.lock().unwrap()
    }
}

/// Polls `check` until it returns `Some`, for at most 30 s; for effects a
/// background task produces (a reaper pass, a spawned close). Panics with
/// `what` when it never happens.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The status code each reason comes with, as `error_reason.proto`
/// states it (UNSPECIFIED, never sent: OK).
pub fn documented_code(reason: sessiond_proto::v1::ErrorReason) -> tonic::Code {
    use sessiond_proto::v1::ErrorReason;
    use tonic::Code;
    match reason {
        ErrorReason::Unspecified => Code::Ok,
        ErrorReason::InvalidArgument => Code::InvalidArgument,
        ErrorReason::SessionNotFound
        | ErrorReason::ScopeNotFound
        | ErrorReason::ModuleNotFound
        | ErrorReason::ModuleNotOpened => Code::NotFound,
        ErrorReason::SessionNotClientless
        | ErrorReason::SessionEnded
        | ErrorReason::SessionClosing
        | ErrorReason::ScopeNotInnermost => Code::FailedPrecondition,
        ErrorReason::ModuleStillRunning => Code::DeadlineExceeded,
        ErrorReason::TooManyRunningModules | ErrorReason::TooManySessions => {
            Code::ResourceExhausted
        }
        ErrorReason::OwnerUnavailable
        | ErrorReason::StoreUnavailable
        | ErrorReason::WatchTooSlow
        | ErrorReason::ServerShuttingDown => Code::Unavailable,
        ErrorReason::Internal => Code::Internal,
        ErrorReason::Unauthenticated => Code::Unauthenticated,
        ErrorReason::PermissionDenied => Code::PermissionDenied,
        ErrorReason::RevisionCompacted => Code::OutOfRange,
    }
}

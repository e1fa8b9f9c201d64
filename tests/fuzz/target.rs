//! The server under fuzz, and the properties every call must keep.
//!
//! The server is the real one (`common::TestServer`: the whole gRPC stack,
//! its layers and handlers, on a loopback socket), on a SQLite database in
//! a temporary directory, with an in-process module (`echo`, which returns
//! its parameters one level deeper than it got them, so that the limit on a
//! value's depth is reached from both sides) and two exec modules of
//! `examples/modules/` (`whoami`, and `100000`, the report). It runs on a
//! runtime of its own whose threads are named [`SERVER_THREAD`], so that a
//! panic on them is seen (the panic counter).
//!
//! Nothing changes the database behind a call's back: no idle timeout, no
//! maximum lifetime, no retention, a lease renewed once a day, and every
//! run a call starts is waited for (it concludes, and its value is read)
//! before the next call. So the database's `data_version`, read on a
//! connection of the test's own, moves only when a call changed something.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::{ErrorReason, GetReturnValueRequest, RunState};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::TestServer;
use crate::raw::Method;
use crate::requests::Memory;

/// The name of the server's threads.
pub const SERVER_THREAD: &str = "sessiond-under-fuzz";

/// Panics seen on the server's threads since the process started.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// The in-process module: returns `{"echo": PARAMETERS}`.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl Module for Echo {
    async fn run(
        &self,
        ctx: ModuleContext,
    ) -> Result<serde_json::Value, sessiond::model::ModuleFailure> {
        Ok(serde_json::json!({ "echo": ctx.parameters }))
    }
}

/// A running server, a connection to it, a connection to its database, and
/// what was learnt from the calls so far.
pub struct Target {
    /// The server's runtime (the clients run on it too).
    pub runtime: tokio::runtime::Runtime,
    server: Option<TestServer>,
    /// A connection to the server.
    pub channel: Channel,
    database: Mutex<rusqlite::Connection>,
    /// Ids and tokens the calls returned, for later calls to use.
    pub memory: Mutex<Memory>,
    calls: AtomicU64,
    outcomes: Mutex<BTreeMap<String, u64>>,
    started: Instant,
}

impl Target {
    /// Starts the server.
    pub fn start() -> Self {
        count_server_panics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVER_THREAD)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let manifest = write_manifest(dir.path());
        let server = runtime.block_on(TestServer::build_in(
            dir,
            |config| {
                config.modules = Some(manifest);
                config.idle_timeout = None;
                config.max_lifetime = None;
                config.event_retention = None;
                config.lease_ttl = Duration::from_secs(24 * 3600);
            },
            |builder| builder.module("echo", Echo),
        ));
        let channel = runtime.block_on(server.channel());
        let database = rusqlite::Connection::open(server.dir.path().join("sessiond.db")).unwrap();
        let target = Self {
            runtime,
            server: Some(server),
            channel,
            database: Mutex::new(database),
            memory: Mutex::new(Memory::default()),
            calls: AtomicU64::new(0),
            outcomes: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        };
        // What the server writes by itself as it starts (its node's lease)
        // is over before the first call.
        target.settle(Duration::from_millis(500));
        target
    }

    /// Waits until the database has not changed for `quiet`.
    fn settle(&self, quiet: Duration) {
        let mut version = self.data_version();
        loop {
            std::thread::sleep(quiet);
            let now = self.data_version();
            if now == version {
                return;
            }
            version = now;
        }
    }

    /// SQLite's `data_version` on the test's connection: it changes when
    /// another connection (the server's) committed.
    pub fn data_version(&self) -> i64 {
        self.database
            .lock()
            .unwrap()
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .unwrap()
    }

    /// Sends `body` as the request of `method`, then checks the call.
    pub fn send_raw(&self, method: &Method, body: &[u8]) {
        let before = self.data_version();
        let result = self
            .runtime
            .block_on(crate::raw::send(self.channel.clone(), method, body));
        self.check(method.name, &result, before, method.read_only);
        if result.is_ok()
            && let Some((session_id, module_id)) = crate::raw::opened_module(method, body)
        {
            self.await_run(session_id, module_id);
        }
    }

    /// Checks what every call must keep: no panic on the server; a refused
    /// call refused cleanly, changing nothing; a read changing nothing.
    ///
    /// # Panics
    /// When one of them does not hold.
    pub fn check<T>(&self, method: &str, result: &Result<T, Status>, before: i64, read_only: bool) {
        assert_eq!(
            SERVER_PANICS.load(Ordering::SeqCst),
            0,
            "the server panicked during {method} (see its message above)"
        );
        self.calls.fetch_add(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(_) => format!("{method}: OK"),
            Err(status) => {
                check_refusal(method, status);
                format!("{method}: {}", reason(status))
            }
        };
        *self.outcomes.lock().unwrap().entry(outcome).or_default() += 1;
        if result.is_err() || read_only {
            assert_eq!(
                self.data_version(),
                before,
                "{method} changed the database although it {}: {:?}",
                if result.is_err() {
                    "was refused"
                } else {
                    "only reads"
                },
                result.as_ref().err()
            );
        }
    }

    /// Waits for the latest run of `module_id` in `session_id` to conclude
    /// and reads its value back, then for the database to settle.
    ///
    /// # Panics
    /// When the run does not conclude or its outcome cannot be read.
    pub fn await_run(&self, session_id: i64, module_id: String) {
        let mut sessions = SessionServiceClient::new(self.channel.clone());
        let read = self
            .runtime
            .block_on(sessions.get_return_value(GetReturnValueRequest {
                session_id,
                module_id: module_id.clone(),
                timeout: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
            }));
        let read = read
            .unwrap_or_else(|status| {
                panic!("the run of {module_id} in session {session_id} cannot be read: {status:?}")
            })
            .into_inner();
        assert_ne!(read.state(), RunState::Running, "{read:?}");
        self.settle(Duration::from_millis(20));
    }

    /// Prints how many calls were made and how they ended (the figures of
    /// RELIABILITY.md come from here: `cargo test --test fuzz --
    /// --nocapture`).
    pub fn report(&self, name: &str) {
        let outcomes = self.outcomes.lock().unwrap();
        let calls = self.calls.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        eprintln!(
            "fuzz {name}: {calls} calls in {:.1} s ({:.0} calls/s), {} kinds of outcome:",
            elapsed.as_secs_f64(),
            calls as f64 / elapsed.as_secs_f64(),
            outcomes.len()
        );
        for (outcome, count) in outcomes.iter() {
            eprintln!("  {count:>8}  {outcome}");
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// The ErrorInfo reason of a status.
fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// Checks that a refusal is one the contract allows: not INTERNAL or
/// UNKNOWN, an ErrorInfo of domain "sessiond" whose reason is one of
/// `ErrorReason` and goes with the status's code, and for INVALID_ARGUMENT
/// a BadRequest naming at least one field.
///
/// # Panics
/// When it is not.
pub fn check_refusal(method: &str, status: &Status) {
    assert!(
        !matches!(status.code(), Code::Internal | Code::Unknown),
        "{method} answered {:?}, which the contract keeps for bugs: {status:?}",
        status.code()
    );
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("{method} refused without an ErrorInfo: {status:?}"));
    assert_eq!(info.domain, "sessiond", "{method}: {status:?}");
    let known = ErrorReason::from_str_name(&format!("ERROR_REASON_{}", info.reason))
        .filter(|reason| *reason != ErrorReason::Unspecified)
        .unwrap_or_else(|| {
            panic!(
                "{method}: {:?} is not a reason of the contract",
                info.reason
            )
        });
    assert_eq!(
        status.code(),
        crate::common::documented_code(known),
        "{method}: reason {} comes with another code: {status:?}",
        info.reason
    );
    if status.code() == Code::InvalidArgument {
        let violations = details
            .bad_request()
            .map(|bad| bad.field_violations.len())
            .unwrap_or_default();
        assert!(
            violations > 0,
            "{method}: INVALID_ARGUMENT without a field violation: {status:?}"
        );
    }
}

/// Counts the panics on the server's threads (once per process; the hook
/// before it still runs).
fn count_server_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SERVER_THREAD) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Writes a manifest of the example modules `whoami` and `100000` (the
/// report) into `dir`; returns its path.
fn write_manifest(dir: &Path) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules");
    let manifest = dir.join("modules.toml");
    std::fs::write(
        &manifest,
        format!(
            "[modules.whoami]\ncommand = [\"sh\", {:?}]\ntimeout = \"20s\"\n\
             [modules.\"100000\"]\ncommand = [\"python3\", {:?}]\ntimeout = \"20s\"\n",
            examples.join("whoami.sh").display().to_string(),
            examples.join("report.py").display().to_string(),
        ),
    )
    .unwrap();
    manifest
}

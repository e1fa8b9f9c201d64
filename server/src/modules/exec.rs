//! Exec modules: each run is a child process.
//!
//! The run's facts are in its environment (`SESSIOND_SESSION_ID`,
//! `SESSIOND_SESSION_UUID`, `SESSIOND_USER`, `SESSIOND_ACTING_USER`,
//! `SESSIOND_MODULE_ID`, `SESSIOND_RUN_ID`, `SESSIOND_ENDPOINT`, and, when
//! the server authenticates callers, the run's own `SESSIOND_TOKEN`), its
//! parameters are one JSON object on stdin, and its return value is one JSON
//! document on stdout (empty: null). A non-zero exit, a signal, output that
//! is not JSON or over the cap, or a run over its timeout is a failure that
//! says which, with the tail of stderr. A run that is cancelled or times out
//! gets SIGTERM, then SIGKILL after a grace; the process runs in its own
//! process group so that its children are signalled too.
//!
//! A run inherits the server's environment except sessiond's own settings
//! (every other `SESSIOND_*` variable): `SESSIOND_DATABASE` may hold the
//! database's password, and a module has no business with it.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Module, ModuleContext};
use crate::model::{FailureKind, ModuleFailure};

/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// How much of stderr a failure keeps (its end).
pub const STDERR_TAIL_BYTES: usize = 4096;

/// A module that runs a command.
#[derive(Clone, Debug)]
pub struct ExecModule {
    /// The program to run (resolved when the manifest was loaded).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The working directory of each run.
    pub working_dir: PathBuf,
    /// The longest a run may take.
    pub timeout: Duration,
    /// The most bytes a run may write to stdout.
    pub max_output_bytes: usize,
}

/// Why a run stopped early.
enum Stop {
    Timeout,
    Cancelled,
    OutputTooLarge,
}

#[async_trait]
impl Module for ExecModule {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        let deadline = Instant::now() + self.timeout;
        let mut child = self.spawn(&ctx)?;
        let input = serde_json::to_vec(&ctx.parameters).unwrap_or_default();
        let mut stdin = child.stdin.take();
        tokio::spawn(async move {
            if let Some(stdin) = stdin.as_mut() {
                // A module that does not read its parameters closes the pipe
                // early; that is not a failure.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut stdout = tokio::spawn(read_capped(stdout, self.max_output_bytes));
        let stderr = tokio::spawn(read_tail(stderr, STDERR_TAIL_BYTES));

        let mut output = None;
        let outcome = loop {
            tokio::select! {
                status = child.wait() => break Ok(status),
                read = &mut stdout, if output.is_none() => match read {
                    Ok(Some(bytes)) => output = Some(bytes),
                    _ => break Err(Stop::OutputTooLarge),
                },
                () = sleep_until(deadline) => break Err(Stop::Timeout),
                () = ctx.cancelled() => break Err(Stop::Cancelled),
            }
        };
        let status = match outcome {
            Ok(status) => {
                status.map_err(|e| ModuleFailure::new(FailureKind::SpawnFailed, e.to_string()))
            }
            Err(stop) => {
                let status = terminate(&mut child).await;
                let tail = tail_of(stderr, deadline).await;
                return Err(self.stopped(stop, status.ok(), tail));
            }
        }?;
        let output = match output {
            Some(bytes) => Some(bytes),
            // The process exited; its stdout reaches EOF unless a child it
            // left behind holds the pipe open.
            None => timeout_at(deadline, stdout)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
        };
        let tail = tail_of(stderr, deadline).await;
        conclude(status, output, tail, self.max_output_bytes)
    }
}

impl ExecModule {
    fn spawn(&self, ctx: &ModuleContext) -> Result<Child, ModuleFailure> {
        let mut command = Command::new(&self.program);
        for name in server_settings() {
            command.env_remove(name);
        }
        command
            .args(&self.args)
            .current_dir(&self.working_dir)
            .env("SESSIOND_SESSION_ID", ctx.session_id.to_string())
            .env("SESSIOND_SESSION_UUID", ctx.session_uuid.to_string())
            .env("SESSIOND_USER", ctx.user.as_str())
            .env("SESSIOND_ACTING_USER", ctx.acting_user.as_str())
            .env("SESSIOND_MODULE_ID", ctx.module_id.as_str())
            .env("SESSIOND_RUN_ID", ctx.run_id.to_string())
            .env("SESSIOND_ENDPOINT", &ctx.endpoint);
        match &ctx.traceparent {
            Some(traceparent) => command.env("TRACEPARENT", traceparent),
            // Not the server's own, if it was started with one.
            None => command.env_remove("TRACEPARENT"),
        };
        if let Some(credential) = &ctx.credential {
            command.env("SESSIOND_TOKEN", credential.expose());
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ModuleFailure::new(
                    FailureKind::SpawnFailed,
                    format!("cannot start {}: {e}", self.program.display()),
                )
            })
    }

    fn stopped(
        &self,
        stop: Stop,
        status: Option<ExitStatus>,
        stderr_tail: String,
    ) -> ModuleFailure {
        let (kind, message) = match stop {
            Stop::Timeout => (
                FailureKind::Timeout,
                format!(
                    "the run exceeded its timeout of {:?} and was stopped",
                    self.timeout
                ),
            ),
            Stop::Cancelled => (FailureKind::Cancelled, "the run was cancelled".to_owned()),
            Stop::OutputTooLarge => (
                FailureKind::OutputTooLarge,
                format!("the output exceeded {} bytes", self.max_output_bytes),
            ),
        };
        ModuleFailure {
            kind,
            message,
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stderr_tail,
        }
    }
}

/// The outcome of a process that exited by itself.
fn conclude(
    status: ExitStatus,
    output: Option<Vec<u8>>,
    stderr_tail: String,
    max_output_bytes: usize,
) -> Result<serde_json::Value, ModuleFailure> {
    let failure = |kind, message: String| ModuleFailure {
        kind,
        message,
        exit_code: status.code(),
        signal: status.signal(),
        stderr_tail: stderr_tail.clone(),
    };
    if let Some(signal) = status.signal() {
        return Err(failure(
            FailureKind::Signal,
            format!("the process was killed by signal {signal}"),
        ));
    }
    if !status.success() {
        let code = status.code().unwrap_or(-1);
        return Err(failure(
            FailureKind::ExitStatus,
            format!("the process exited with status {code}"),
        ));
    }
    let Some(output) = output else {
        return Err(failure(
            FailureKind::OutputTooLarge,
            format!("the output exceeded {max_output_bytes} bytes"),
        ));
    };
    if output.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&output).map_err(|e| {
        failure(
            FailureKind::InvalidOutput,
            format!("the output is not one JSON document: {e}"),
        )
    })
}

/// Stops a process group: SIGTERM, then SIGKILL after [`TERMINATE_GRACE`].
async fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(TERMINATE_GRACE, child.wait()).await {
            return status;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    child.kill().await.ok();
    child.wait().await
}

/// The names of the `SESSIOND_*` variables in the server's environment
/// (its settings), which runs do not inherit; read once.
fn server_settings() -> &'static [OsString] {
    static NAMES: OnceLock<Vec<OsString>> = OnceLock::new();
    NAMES.get_or_init(|| {
        std::env::vars_os()
            .map(|(name, _)| name)
            .filter(|name| name.as_encoded_bytes().starts_with(b"SESSIOND_"))
            .collect()
    })
}

/// Reads everything, or `None` once more than `cap` bytes arrived.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await.ok()?;
        if n == 0 {
            return Some(buffer);
        }
        if buffer.len() + n > cap {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Reads everything and keeps the last `keep` bytes.
async fn read_tail(mut reader: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut chunk = [0_u8; 8192];
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
    tail
}

/// The stderr tail, waiting for the reader no longer than `deadline`.
async fn tail_of(reader: tokio::task::JoinHandle<Vec<u8>>, deadline: Instant) -> String {
    let deadline = deadline.max(Instant::now() + Duration::from_millis(100));
    match timeout_at(deadline, reader).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

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
//! gets SIGTERM, then SIGKILL after a grace.
//!
//! The run is over when the module's process exits: its value is what it
//! wrote to stdout until then, even if a child it left behind still holds
//! the pipe. Then, or when it is stopped, its whole process group is
//! killed ([`super::process_group`]): no process of a run outlives it.
//!
//! A run inherits the server's environment except sessiond's own settings
//! (every other `SESSIOND_*` variable): `SESSIOND_DATABASE` may hold the
//! database's password, and a module has no business with it. With a
//! `user` (and `group`) in its manifest entry, a run runs as that account.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::{Instant, sleep_until};

use super::process_group::{self, ProcessGroup};
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
    /// The account each run runs as; `None`: sessiond's own.
    pub run_as: Option<RunAs>,
}

/// The account a module's runs run as (the manifest's `user` and `group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The group id (the user's primary group unless the entry names one);
    /// the run has no supplementary groups.
    pub gid: u32,
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
        let mut group = child
            .id()
            .and_then(ProcessGroup::led_by)
            .ok_or_else(|| ModuleFailure::new(FailureKind::SpawnFailed, "the process has no id"))?;
        // Durable before the module has its parameters: what it starts from
        // then on is found by the next start if this server dies.
        if let Some(process) = group.identify()
            && let Err(error) = ctx.record_process(&process).await
        {
            group.kill();
            let _ = child.wait().await;
            return Err(ModuleFailure::new(
                FailureKind::SpawnFailed,
                format!("the run's process could not be recorded: {error}"),
            ));
        }
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
        let mut stdout = Pipe::new(child.stdout.take(), Some(self.max_output_bytes));
        let mut stderr = Pipe::new(child.stderr.take(), None);

        let outcome = loop {
            tokio::select! {
                status = child.wait() => break Ok(status),
                read = stdout.read_more(), if stdout.is_open() => {
                    if read.is_err() {
                        break Err(Stop::OutputTooLarge);
                    }
                }
                _ = stderr.read_more(), if stderr.is_open() => {}
                () = sleep_until(deadline) => break Err(Stop::Timeout),
                () = ctx.cancelled() => break Err(Stop::Cancelled),
            }
        };
        let status = match outcome {
            Ok(status) => {
                status.map_err(|e| ModuleFailure::new(FailureKind::SpawnFailed, e.to_string()))
            }
            Err(stop) => {
                let status = terminate(&mut child, &group).await;
                stderr.read_buffered();
                group.kill();
                return Err(self.stopped(stop, status.ok(), stderr.tail()));
            }
        };
        // The module exited: what it wrote is in the pipes now, whoever
        // still holds them; then nothing of the run may go on.
        stdout.read_buffered();
        stderr.read_buffered();
        group.kill();
        conclude(
            status?,
            stdout.output(),
            stderr.tail(),
            self.max_output_bytes,
        )
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
        if let Some(run_as) = self.run_as {
            command.uid(run_as.uid).gid(run_as.gid);
        }
        process_group::contain(&mut command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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

/// Stops a run's process: SIGTERM to its group, then SIGKILL after
/// [`TERMINATE_GRACE`]; returns how the process ended.
async fn terminate(child: &mut Child, group: &ProcessGroup) -> std::io::Result<ExitStatus> {
    group.signal(Signal::SIGTERM);
    if let Ok(status) = tokio::time::timeout(TERMINATE_GRACE, child.wait()).await {
        return status;
    }
    group.signal(Signal::SIGKILL);
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

/// One of a run's output pipes, read while the run goes on.
struct Pipe<R> {
    /// The pipe; `None` once it reached its end.
    reader: Option<R>,
    /// What was read (stdout: all of it; stderr: its end).
    bytes: Vec<u8>,
    /// stdout's cap: more is a failure; `None` for stderr, whose tail of
    /// [`STDERR_TAIL_BYTES`] is kept.
    cap: Option<usize>,
    /// Whether more than the cap arrived.
    over: bool,
}

/// More output than the cap.
struct OverCap;

impl<R: tokio::io::AsyncRead + std::os::fd::AsFd + Unpin> Pipe<R> {
    fn new(reader: Option<R>, cap: Option<usize>) -> Self {
        Self {
            reader,
            bytes: Vec::new(),
            cap,
            over: false,
        }
    }

    fn is_open(&self) -> bool {
        self.reader.is_some() && !self.over
    }

    /// Waits for the next chunk and keeps it. Cancel-safe: nothing read is
    /// lost if the future is dropped.
    async fn read_more(&mut self) -> Result<(), OverCap> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(());
        };
        let mut chunk = [0_u8; 8192];
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.reader = None;
                Ok(())
            }
            Ok(n) => self.keep(&chunk[..n]),
        }
    }

    /// Keeps what is in the pipe now, without waiting for its end.
    fn read_buffered(&mut self) {
        let Some(reader) = self.reader.as_ref() else {
            return;
        };
        let mut buffered = Vec::new();
        if process_group::read_buffered(reader, &mut buffered) {
            self.reader = None;
        }
        let _ = self.keep(&buffered);
    }

    fn keep(&mut self, chunk: &[u8]) -> Result<(), OverCap> {
        if self.over {
            return Err(OverCap);
        }
        self.bytes.extend_from_slice(chunk);
        match self.cap {
            Some(cap) if self.bytes.len() > cap => {
                self.over = true;
                self.bytes = Vec::new();
                Err(OverCap)
            }
            Some(_) => Ok(()),
            None => {
                if self.bytes.len() > STDERR_TAIL_BYTES {
                    self.bytes.drain(..self.bytes.len() - STDERR_TAIL_BYTES);
                }
                Ok(())
            }
        }
    }
}

impl Pipe<ChildStdout> {
    /// Everything the run wrote, or `None` when it was over the cap.
    fn output(self) -> Option<Vec<u8>> {
        (!self.over).then_some(self.bytes)
    }
}

impl Pipe<ChildStderr> {
    /// The end of what the run wrote.
    fn tail(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

//! Child processes: the benchmark binary re-executed in a hidden mode,
//! pinned to the server core with `taskset -c`, and stopped when done.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::Result;

/// How long a server may take to print its address (a debug build opening
/// a large database is slow).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// This binary re-executed with `args`, under `taskset -c core` when
/// `core` is given.
fn command(args: &[OsString], core: Option<usize>) -> Result<Command> {
    let exe = std::env::current_exe()?;
    let mut command = match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command.args(args).kill_on_drop(true);
    Ok(command)
}

/// A running server child.
#[derive(Debug)]
pub struct Server {
    /// What it is, for messages.
    label: String,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    /// How to connect when it serves TLS; plain HTTP/2 when `None`.
    tls: Option<ClientTlsConfig>,
    /// Held open: the child stops when it closes.
    _stdin: ChildStdin,
    /// Held so that the child never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts this binary with `args` (a `serve-*` mode) and waits for its
    /// `LISTEN <addr>` line.
    ///
    /// # Errors
    /// When it cannot be started or exits or stalls before listening.
    pub async fn start(label: &str, args: &[OsString], core: Option<usize>) -> Result<Self> {
        let mut child = command(args, core)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {label}: {e}"))?;
        let pid = child.id().ok_or("the child has no pid")?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        let addr = match read {
            Ok(Ok(n)) if n > 0 => line
                .trim()
                .strip_prefix("LISTEN ")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("{label} printed {line:?} instead of LISTEN <addr>"))?,
            Ok(Ok(_)) => {
                let status = child.wait().await?;
                return Err(format!("{label} exited before listening ({status})").into());
            }
            Ok(Err(e)) => return Err(format!("reading {label}'s address: {e}").into()),
            Err(_) => return Err(format!("{label} did not listen within {START_TIMEOUT:?}").into()),
        };
        Ok(Self {
            label: label.to_owned(),
            child,
            pid,
            addr,
            tls: None,
            _stdin: stdin,
            _stdout: stdout,
        })
    }

    /// Connects to it over TLS with `config` from now on (for a server
    /// started with TLS).
    #[must_use]
    pub fn over_tls(mut self, config: ClientTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Opens `n` separate HTTP/2 connections to it (each with its own TLS
    /// session when it serves TLS).
    ///
    /// # Errors
    /// When a connection fails.
    pub async fn connect(&self, n: usize) -> Result<Vec<Channel>> {
        let endpoint = match &self.tls {
            None => Endpoint::from_shared(format!("http://{}", self.addr))?,
            Some(tls) => {
                Endpoint::from_shared(format!("https://{}", self.addr))?.tls_config(tls.clone())?
            }
        }
        .tcp_nodelay(true);
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", self.label))?,
            );
        }
        Ok(channels)
    }

    /// Stops it: SIGTERM, then SIGKILL if it has not exited in time.
    ///
    /// # Errors
    /// When waiting for it fails.
    pub async fn stop(mut self) -> Result<()> {
        let _ = kill(Pid::from_raw(i32::try_from(self.pid)?), Signal::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "{} did not stop within {STOP_TIMEOUT:?}; killing it",
                self.label
            );
            self.child.kill().await?;
        }
        Ok(())
    }

    /// Kills it at once (SIGKILL): for a server whose state is thrown away.
    ///
    /// # Errors
    /// When it cannot be killed.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// Runs this binary with `args` to its end and returns its stdout.
///
/// # Errors
/// When it cannot be started or fails.
pub async fn run_to_end(label: &str, args: &[OsString], core: Option<usize>) -> Result<String> {
    let mut child = command(args, core)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {label}: {e}"))?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .ok_or("no stdout pipe")?
        .read_to_string(&mut stdout)
        .await?;
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("{label} failed ({status})").into());
    }
    Ok(stdout)
}

/// The arguments of a child mode, as `OsString`s.
pub fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

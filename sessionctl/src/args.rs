//! The command line of `sessionctl`: the global options and the
//! subcommands; `audit`'s own subcommands are in [`audit`].

mod audit;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sessiond_client::{Permission, ScopeId, SessionId, SessionKind, SessionState};

pub use self::audit::AuditCommand;

/// Operate a sessiond server: look sessions up and list them; start, touch,
/// open and close them; run a module, or open one in a session and read its
/// value; read, switch, push and pop a session's user context; ask who the
/// server takes you to be and what you may do; watch sessions change; and
/// read, export and verify the audit trail.
///
/// A server that authenticates its callers takes a bearer token (--token or
/// SESSIOND_TOKEN: a static token or a JWT; a module run finds its own
/// credential in SESSIOND_TOKEN) or a TLS client certificate (--tls-cert and
/// --tls-key, on an https:// endpoint).
///
/// Exit status: 0 on success; 1 when the operation failed (one line on
/// stderr says why), `can-i` says no or `audit verify` finds the ledger
/// broken; 2 for a usage error; 124 when `run` or `value` got no value
/// within --timeout; 130 when interrupted (Ctrl-C, SIGTERM; how `watch`
/// ends).
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version)]
pub struct Cli {
    /// The server's endpoint: http://HOST:PORT or https://HOST:PORT; a bare
    /// HOST:PORT means https:// with any --tls-* flag, http:// otherwise.
    #[arg(
        long,
        global = true,
        env = "SESSIOND_ENDPOINT",
        default_value = "127.0.0.1:50051",
        help_heading = GLOBAL
    )]
    pub endpoint: String,
    /// How results are printed: one JSON object per line (fields named as
    /// in the contract), or a table for people.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The deadline of each call, e.g. "10s" (waits such as `run --timeout`
    /// come on top).
    #[arg(long, global = true, help_heading = GLOBAL, value_parser = humantime::parse_duration, default_value = "30s")]
    pub call_timeout: Duration,
    /// A bearer token to send with every call (a static token or a JWT, as
    /// the server accepts); never printed.
    #[arg(long, global = true, help_heading = GLOBAL, env = "SESSIOND_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust the CA certificate in this PEM file (instead of the platform's
    /// roots) for the server's certificate; implies TLS.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Present the client certificate in this PEM file (mTLS, for a server
    /// that authenticates callers by certificate); needs --tls-key; implies
    /// TLS.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, a PEM file.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line.
    Json,
    /// An aligned table.
    Table,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the user a session belongs to.
    User {
        /// The session's id.
        id: SessionId,
    },
    /// Print a session's record.
    Info {
        /// The session's id.
        id: SessionId,
    },
    /// List sessions, oldest first.
    List {
        /// Only sessions of this user.
        #[arg(long)]
        user: Option<String>,
        /// Only sessions in this state: open, closing or ended. Repeat the
        /// flag or separate states with commas (--state open,closing) for
        /// sessions in any of them.
        #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
        states: Vec<SessionState>,
        /// Only sessions of this kind: interactive or clientless.
        #[arg(long)]
        kind: Option<SessionKind>,
    },
    /// Register an interactive session for a user (a client logged in) and
    /// print its record; it stays open until `close` ends it.
    Start {
        /// The user who logged in.
        user: String,
        /// What the client is (program, version, address), e.g. "web/2.3".
        #[arg(long, default_value = "")]
        client: String,
    },
    /// Record activity on an open session, which resets its idle clock, and
    /// print the activity time now recorded.
    Touch {
        /// The session's id.
        id: SessionId,
    },
    /// Open a clientless session for a user and print its record; it stays
    /// open until closed.
    Open {
        /// The user on whose behalf the session runs.
        user: String,
    },
    /// End a session and print its final record. Without --grace, any
    /// session (a clientless one with the server's default grace); with it,
    /// clientless sessions only.
    Close {
        /// The session's id.
        id: SessionId,
        /// How long running modules may take to conclude, e.g. "10s".
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<Duration>,
    },
    /// Open a clientless session for USER, run MODULE in it, print its
    /// return value, and close the session.
    ///
    /// Past --timeout without a value, `run` says so, stops the run (closes
    /// the session with --grace) and exits 124. The first Ctrl-C does the
    /// same and exits 130; a second one exits at once, leaving the server to
    /// finish the close.
    Run {
        /// The user on whose behalf the module runs.
        user: String,
        /// The module's id, e.g. 100000.
        module: String,
        /// A parameter for the module, KEY=VALUE; a VALUE that is valid JSON
        /// is passed as such (5, true, {"a":1}), anything else as a string.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, serde_json::Value)>,
        /// How long to wait for the module's value, e.g. "5s".
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
        timeout: Duration,
        /// How long a run that is stopped (by --timeout or Ctrl-C) may take
        /// to conclude before the server cancels it.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        grace: Duration,
    },
    /// Start a run of MODULE in an open clientless session (one `open`
    /// opened) and print the run; `value` reads what it returns.
    #[command(name = "open-module")]
    OpenModule {
        /// The session's id.
        id: SessionId,
        /// The module's id, e.g. 100000.
        module: String,
        /// A parameter for the module, KEY=VALUE; a VALUE that is valid JSON
        /// is passed as such (5, true, {"a":1}), anything else as a string.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, serde_json::Value)>,
    },
    /// Print the return value of the latest run of MODULE in a session,
    /// waiting up to --timeout for the run to conclude; exit 124 when it did
    /// not (the run goes on).
    Value {
        /// The session's id.
        id: SessionId,
        /// The module's id, e.g. 100000.
        module: String,
        /// How long to wait for the value, e.g. "5s"; "0s": do not wait.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Print a session's user context, or switch it with --set (for a
    /// switch that is undone later, see `push` and `pop`).
    Context {
        /// The session's id.
        id: SessionId,
        /// Act as this user from now on.
        #[arg(long)]
        set: Option<String>,
    },
    /// Open a scope acting as USER in a session (the seed's
    /// `UserContext(USER)`) and print its scope id; `pop` with that id
    /// restores the user context from before.
    Push {
        /// The session's id.
        id: SessionId,
        /// The user to act as inside the scope.
        user: String,
    },
    /// Close a session's innermost user-context scope (the scope id `push`
    /// printed) and print the user context it restored.
    Pop {
        /// The session's id.
        id: SessionId,
        /// The scope's id, as `push` printed it.
        scope_id: ScopeId,
    },
    /// Print who the server takes you to be: subject, groups and how you
    /// authenticated ("anonymous", method none, without authentication).
    Whoami,
    /// Ask whether you may take an action, without taking it: print "yes"
    /// and exit 0, or "no: REASON" and exit 1.
    ///
    /// Which targets an action needs: --session for read_session,
    /// touch_session, end_session, act_as and run_module; --user for
    /// start_session, open_clientless_session and act_as; --module for
    /// run_module.
    #[command(name = "can-i")]
    CanI {
        /// The action: read_session, start_session, open_clientless_session,
        /// touch_session, end_session, act_as, run_module or read_audit.
        permission: Permission,
        /// The session it is on.
        #[arg(long, value_name = "ID")]
        session: Option<SessionId>,
        /// The user it is taken for or acts as.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The module to run.
        #[arg(long, value_name = "MODULE")]
        module: Option<String>,
    },
    /// Follow the changes to sessions until Ctrl-C: one line per change,
    /// and one per progress revision (everything up to it was printed) when
    /// there were none for a while. Resumes by itself after the last
    /// revision printed when the server restarts or the connection drops.
    Watch {
        /// Start after this revision (e.g. the last one a previous watch
        /// printed) instead of now.
        #[arg(long, value_name = "REV", conflicts_with = "initial_state")]
        after: Option<i64>,
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
        /// Only this session.
        #[arg(long, value_name = "ID")]
        session: Option<SessionId>,
        /// First print the open sessions as they are now (kind
        /// session_snapshot), then a line marking the initial state's end.
        #[arg(long)]
        initial_state: bool,
    },
    /// The audit trail: list, export, verify, checkpoint.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `KEY=VALUE`: VALUE as JSON when it parses, else as a string.
fn parse_param(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{text:?} has an empty KEY"));
    }
    let value =
        serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

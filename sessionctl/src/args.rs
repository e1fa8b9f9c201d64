//! The command line of `sessionctl`.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sessiond_client::{SessionId, SessionKind, SessionState};

/// Operate a sessiond server: look sessions up, list, open and close them,
/// run a module, read or switch a session's user context.
///
/// Exit status: 0 on success, 1 when the operation failed (one line on
/// stderr says why), 2 for a usage error, 130 when interrupted.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version)]
pub struct Cli {
    /// The server's endpoint.
    #[arg(
        long,
        global = true,
        env = "SESSIOND_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// How results are printed: one JSON object per line (fields named as
    /// in the contract), or a table for people.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The deadline of each call, e.g. "10s" (waits such as `run --timeout`
    /// come on top).
    #[arg(long, global = true, value_parser = humantime::parse_duration, default_value = "30s")]
    pub call_timeout: Duration,
    /// A bearer token to send with every call.
    #[arg(long, global = true, env = "SESSIOND_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

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
        /// Only sessions in this state: open, closing or ended.
        #[arg(long)]
        state: Option<SessionState>,
        /// Only sessions of this kind: interactive or clientless.
        #[arg(long)]
        kind: Option<SessionKind>,
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
    /// return value, and close the session (also on Ctrl-C).
    Run {
        /// The user on whose behalf the module runs.
        user: String,
        /// The module's id, e.g. 100000.
        module: String,
        /// A parameter for the module, KEY=VALUE; a VALUE that is valid JSON
        /// is passed as such (5, true, {"a":1}), anything else as a string.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, serde_json::Value)>,
        /// How long to wait for the module's value, e.g. "5s".
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Print a session's user context, or switch it with --set.
    Context {
        /// The session's id.
        id: SessionId,
        /// Act as this user from now on.
        #[arg(long)]
        set: Option<String>,
    },
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn params_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_param("limit=5").unwrap(), ("limit".into(), json!(5)));
        assert_eq!(parse_param("ok=true").unwrap(), ("ok".into(), json!(true)));
        assert_eq!(
            parse_param("customer=C-1").unwrap(),
            ("customer".into(), json!("C-1"))
        );
        assert_eq!(
            parse_param("filter={\"a\":[1]}").unwrap(),
            ("filter".into(), json!({"a": [1]}))
        );
        assert_eq!(parse_param("eq=a=b").unwrap(), ("eq".into(), json!("a=b")));
        assert_eq!(parse_param("empty=").unwrap(), ("empty".into(), json!("")));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=5").is_err());
    }

    #[test]
    fn list_filters_and_durations_parse() {
        let cli = Cli::try_parse_from([
            "sessionctl",
            "list",
            "--user",
            "R41",
            "--state",
            "open",
            "--kind",
            "clientless",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
        let Command::List { user, state, kind } = cli.command else {
            panic!("expected list");
        };
        assert_eq!(user.as_deref(), Some("R41"));
        assert_eq!(state, Some(SessionState::Open));
        assert_eq!(kind, Some(SessionKind::Clientless));

        let cli = Cli::try_parse_from(["sessionctl", "close", "7", "--grace", "10s"]).unwrap();
        let Command::Close { id, grace } = cli.command else {
            panic!("expected close");
        };
        assert_eq!(
            (id, grace),
            (SessionId::new(7), Some(Duration::from_secs(10)))
        );
        assert!(Cli::try_parse_from(["sessionctl", "list", "--state", "sleepy"]).is_err());
        assert!(Cli::try_parse_from(["sessionctl", "info", "seven"]).is_err());
    }
}

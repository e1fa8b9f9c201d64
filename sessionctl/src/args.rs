//! The command line of `sessionctl`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use sessiond_client::{EventFilter, EventKind, Permission, SessionId, SessionKind, SessionState};

/// Operate a sessiond server: look sessions up, list, open and close them,
/// run a module, read or switch a session's user context, ask who the
/// server takes you to be and what you may do, watch sessions change, and
/// read, export and verify the audit trail.
///
/// A server that authenticates its callers takes a bearer token (--token or
/// SESSIOND_TOKEN: a static token or a JWT; a module run finds its own
/// credential in SESSIOND_TOKEN) or a TLS client certificate (--tls-cert and
/// --tls-key, on an https:// endpoint).
///
/// Exit status: 0 on success, 1 when the operation failed (one line on
/// stderr says why), `can-i` says no or `audit verify` finds the ledger
/// broken, 2 for a usage error, 130 when interrupted (how `watch` ends).
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

/// `sessionctl audit …`: the event log, for callers granted `read_audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, oldest first (newest first with --newest-first).
    List {
        /// Which events.
        #[command(flatten)]
        filter: EventFilterArgs,
        /// Newest first.
        #[arg(long)]
        newest_first: bool,
        /// The most events to print.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Write every matching event to stdout, oldest first, one JSON object
    /// per line (whatever --output says), reading page after page: for a
    /// SIEM or an archive.
    Export {
        /// Which events.
        #[command(flatten)]
        filter: EventFilterArgs,
    },
    /// Recompute the log's hash chain and say whether it holds; exit 1,
    /// naming the first bad revision and the problem, when it does not.
    Verify {
        /// The first revision to verify [default: the oldest retained].
        #[arg(long, value_name = "REV")]
        from: Option<i64>,
        /// The last revision to verify [default: the head].
        #[arg(long, value_name = "REV")]
        to: Option<i64>,
    },
    /// Print the log's head (revision and hash) and its compaction
    /// checkpoint, to keep elsewhere and compare with later.
    Checkpoint,
}

/// The filters of `audit list` and `audit export`; unset ones match
/// everything.
#[derive(Debug, Args)]
pub struct EventFilterArgs {
    /// Only events of this session.
    #[arg(long, value_name = "ID")]
    pub session: Option<SessionId>,
    /// Only events of this user's sessions.
    #[arg(long)]
    pub user: Option<String>,
    /// Only events caused by this subject (the caller, or
    /// "system:sessiond").
    #[arg(long)]
    pub subject: Option<String>,
    /// Only events of this kind, e.g. session_ended (repeat for several).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time (RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub since: Option<SystemTime>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub until: Option<SystemTime>,
    /// Only events after this revision.
    #[arg(long, value_name = "REV", default_value_t = 0)]
    pub after: i64,
}

impl EventFilterArgs {
    /// The client's filter, oldest first unless `newest_first`.
    pub fn to_filter(&self, newest_first: bool) -> EventFilter {
        EventFilter {
            session_id: self.session,
            user: self.user.clone(),
            subject: self.subject.clone(),
            kinds: self.kinds.clone(),
            start_time: self.since,
            end_time: self.until,
            after_revision: self.after,
            newest_first,
        }
    }
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

    #[test]
    fn a_client_certificate_needs_its_key_and_the_key_its_certificate() {
        let cli = Cli::try_parse_from([
            "sessionctl",
            "--tls-ca",
            "ca.pem",
            "whoami",
            "--tls-cert",
            "client.pem",
            "--tls-key",
            "client.key",
        ])
        .unwrap();
        assert_eq!(
            (cli.tls_ca, cli.tls_cert, cli.tls_key),
            (
                Some("ca.pem".into()),
                Some("client.pem".into()),
                Some("client.key".into())
            ),
            "global flags, before or after the subcommand"
        );
        assert!(matches!(cli.command, Command::Whoami));

        for args in [
            &["sessionctl", "--tls-cert", "client.pem", "whoami"][..],
            &["sessionctl", "whoami", "--tls-cert", "client.pem"],
            &[
                "sessionctl",
                "--tls-ca",
                "ca.pem",
                "--tls-key",
                "client.key",
                "whoami",
            ],
        ] {
            let error = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{args:?}: {error}"
            );
        }
        let error = Cli::try_parse_from(["sessionctl", "--tls-cert", "c.pem", "whoami"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--tls-key <FILE>"), "{error}");
    }

    #[test]
    fn can_i_takes_a_permission_as_the_contract_metadata_spells_it() {
        let cli = Cli::try_parse_from([
            "sessionctl",
            "can-i",
            "act_as",
            "--session",
            "7",
            "--user",
            "R50",
        ])
        .unwrap();
        let Command::CanI {
            permission,
            session,
            user,
            module,
        } = cli.command
        else {
            panic!("expected can-i");
        };
        assert_eq!(permission, Permission::ActAs);
        assert_eq!(session, Some(SessionId::new(7)));
        assert_eq!(user.as_deref(), Some("R50"));
        assert_eq!(module, None);

        let cli = Cli::try_parse_from([
            "sessionctl",
            "can-i",
            "run_module",
            "--session",
            "7",
            "--module",
            "100000",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::CanI { permission: Permission::RunModule, module: Some(ref m), .. } if m == "100000"
        ));
        for &permission in Permission::ALL {
            let cli = Cli::try_parse_from(["sessionctl", "can-i", permission.name()]).unwrap();
            assert!(
                matches!(cli.command, Command::CanI { permission: p, .. } if p == permission),
                "{permission}"
            );
        }

        let error = Cli::try_parse_from(["sessionctl", "can-i", "fly"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        let error = error.to_string();
        assert!(error.contains("\"fly\""), "{error}");
        assert!(
            error.contains(
                "read_session, start_session, open_clientless_session, touch_session, \
                 end_session, act_as, run_module, read_audit"
            ),
            "every permission, spelled as accepted: {error}"
        );
        assert!(Cli::try_parse_from(["sessionctl", "can-i"]).is_err());
        assert!(
            Cli::try_parse_from(["sessionctl", "can-i", "read_session", "--session", "x"]).is_err()
        );
    }
    #[test]
    fn watch_and_audit_take_revisions_filters_and_kinds() {
        let cli = Cli::try_parse_from([
            "sessionctl",
            "watch",
            "--after",
            "42",
            "--user",
            "R41",
            "--session",
            "7",
        ])
        .unwrap();
        let Command::Watch {
            after,
            user,
            session,
            initial_state,
        } = cli.command
        else {
            panic!("expected watch");
        };
        assert_eq!((after, session), (Some(42), Some(SessionId::new(7))));
        assert_eq!(user.as_deref(), Some("R41"));
        assert!(!initial_state);
        assert!(
            Cli::try_parse_from(["sessionctl", "watch", "--after", "3", "--initial-state"])
                .is_err(),
            "the initial state is the current one"
        );

        let cli = Cli::try_parse_from([
            "sessionctl",
            "audit",
            "list",
            "--kind",
            "session_ended",
            "--kind",
            "EVENT_KIND_CALL_REFUSED",
            "--since",
            "2026-12-01T00:00:00Z",
            "--newest-first",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Audit(AuditCommand::List {
            filter,
            newest_first,
            limit,
        }) = cli.command
        else {
            panic!("expected audit list");
        };
        assert_eq!(limit, 5);
        let filter = filter.to_filter(newest_first);
        assert_eq!(
            filter.kinds,
            [EventKind::SessionEnded, EventKind::CallRefused]
        );
        assert!(filter.newest_first && filter.start_time.is_some() && filter.end_time.is_none());

        let cli = Cli::try_parse_from(["sessionctl", "audit", "verify", "--from", "3"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Audit(AuditCommand::Verify {
                from: Some(3),
                to: None
            })
        ));
        assert!(Cli::try_parse_from(["sessionctl", "audit", "list", "--kind", "nap"]).is_err());
        assert!(Cli::try_parse_from(["sessionctl", "audit", "export", "--since", "May"]).is_err());
    }
}

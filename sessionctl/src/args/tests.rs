//! The command line's unit tests: what parses, to what, and what does not.

use clap::CommandFactory;
use serde_json::json;
use sessiond_client::EventKind;

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
    let Command::List { user, states, kind } = cli.command else {
        panic!("expected list");
    };
    assert_eq!(user.as_deref(), Some("R41"));
    assert_eq!(states, [SessionState::Open]);
    assert_eq!(kind, Some(SessionKind::Clientless));

    for args in [
        &[
            "sessionctl",
            "list",
            "--state",
            "open",
            "--state",
            "closing",
        ][..],
        &["sessionctl", "list", "--state", "open,closing"],
        &[
            "sessionctl",
            "list",
            "--state",
            "SESSION_STATE_OPEN,closing",
        ],
    ] {
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(
            matches!(cli.command, Command::List { ref states, .. }
                if *states == [SessionState::Open, SessionState::Closing]),
            "{args:?}: {:?}",
            cli.command
        );
    }
    let cli = Cli::try_parse_from(["sessionctl", "list"]).unwrap();
    assert!(matches!(cli.command, Command::List { ref states, .. } if states.is_empty()));
    assert!(Cli::try_parse_from(["sessionctl", "list", "--state", "open,sleepy"]).is_err());

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
        Cli::try_parse_from(["sessionctl", "watch", "--after", "3", "--initial-state"]).is_err(),
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

#[test]
fn run_waits_five_seconds_and_stops_a_run_with_a_grace_of_one() {
    let cli = Cli::try_parse_from(["sessionctl", "run", "R41", "slow"]).unwrap();
    let Command::Run {
        user,
        module,
        params,
        timeout,
        grace,
    } = cli.command
    else {
        panic!("expected run");
    };
    assert_eq!((user.as_str(), module.as_str()), ("R41", "slow"));
    assert!(params.is_empty());
    assert_eq!(
        (timeout, grace),
        (Duration::from_secs(5), Duration::from_secs(1))
    );

    let cli = Cli::try_parse_from([
        "sessionctl",
        "run",
        "R41",
        "slow",
        "--param",
        "seconds=8",
        "--timeout",
        "2s",
        "--grace",
        "500ms",
    ])
    .unwrap();
    assert!(matches!(
        cli.command,
        Command::Run { ref params, timeout, grace, .. }
            if *params == [("seconds".to_owned(), json!(8))]
                && timeout == Duration::from_secs(2)
                && grace == Duration::from_millis(500)
    ));
    assert!(Cli::try_parse_from(["sessionctl", "run", "R41", "slow", "--timeout", "2"]).is_err());
}

#[test]
fn the_session_module_and_scope_commands_take_their_ids() {
    let cli = Cli::try_parse_from(["sessionctl", "start", "R41", "--client", "web/2.3"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Start { ref user, ref client } if user == "R41" && client == "web/2.3"
    ));
    let cli = Cli::try_parse_from(["sessionctl", "start", "R41"]).unwrap();
    assert!(matches!(cli.command, Command::Start { ref client, .. } if client.is_empty()));
    let cli = Cli::try_parse_from(["sessionctl", "touch", "7"]).unwrap();
    assert!(matches!(cli.command, Command::Touch { id } if id == SessionId::new(7)));

    let cli = Cli::try_parse_from([
        "sessionctl",
        "open-module",
        "7",
        "100000",
        "--param",
        "title=Projects",
    ])
    .unwrap();
    assert!(matches!(
        cli.command,
        Command::OpenModule { id, ref module, ref params }
            if id == SessionId::new(7)
                && module == "100000"
                && *params == [("title".to_owned(), json!("Projects"))]
    ));
    let cli = Cli::try_parse_from(["sessionctl", "value", "7", "100000"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Value { timeout, .. } if timeout == Duration::from_secs(5)
    ));
    let cli =
        Cli::try_parse_from(["sessionctl", "value", "7", "100000", "--timeout", "0s"]).unwrap();
    assert!(matches!(cli.command, Command::Value { timeout, .. } if timeout.is_zero()));

    let cli = Cli::try_parse_from(["sessionctl", "push", "7", "R50"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Push { id, ref user } if id == SessionId::new(7) && user == "R50"
    ));
    let cli = Cli::try_parse_from(["sessionctl", "pop", "7", "12"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Pop { id, scope_id } if id == SessionId::new(7) && scope_id == ScopeId::new(12)
    ));
    assert!(Cli::try_parse_from(["sessionctl", "pop", "7"]).is_err());
    assert!(Cli::try_parse_from(["sessionctl", "pop", "7", "innermost"]).is_err());
    assert!(Cli::try_parse_from(["sessionctl", "push", "7"]).is_err());
}

//! The commands against a server without authentication.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn user_prints_whose_session_it_is() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();

    let line = sessionctl(&server, &["--output", "json", "user", &id])
        .await
        .json();
    assert_eq!(
        line,
        json!({"session_id": id.parse::<i64>().unwrap(), "user": "R41"})
    );

    let run = sessionctl(&server, &["user", &id]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "user"), "R41");
    assert_eq!(field(&run.stdout, "session_id"), id);
}

#[tokio::test]
async fn info_prints_every_field_of_the_record_under_its_contract_name() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.start_session("R41", "web/2.3").await.unwrap();
    let id = session.session_id.to_string();

    let line = sessionctl(&server, &["info", &id, "--output", "json"])
        .await
        .json();
    let mut expected_keys = SESSION_INFO_FIELDS.to_vec();
    expected_keys.sort_unstable();
    let mut got_keys = keys(&line);
    got_keys.sort_unstable();
    assert_eq!(got_keys, expected_keys);
    assert_eq!(line["session_id"], json!(session.session_id.get()));
    assert_eq!(
        line["session_uuid"],
        json!(session.session_uuid.to_string())
    );
    assert_eq!(line["user"], "R41");
    assert_eq!(line["kind"], "interactive");
    assert_eq!(line["state"], "open");
    assert_eq!(line["end_time"], Value::Null);
    assert_eq!(
        line["end_reason"],
        Value::Null,
        "an open session has no end reason"
    );
    assert_eq!(line["client"], "web/2.3");
    assert_eq!(line["user_context_depth"], 0);
    let start = line["start_time"].as_str().unwrap();
    assert!(is_rfc3339_utc(start), "{start}");
    assert_eq!(
        line["last_activity_time"], line["start_time"],
        "a session nobody used was last active when it started"
    );

    let run = sessionctl(&server, &["info", &id]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    let names: Vec<_> = rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(
        names, SESSION_INFO_FIELDS,
        "every field, in the contract's order"
    );
    assert_eq!(field(&run.stdout, "kind"), "interactive");
    assert_eq!(field(&run.stdout, "state"), "open");
    assert_eq!(field(&run.stdout, "end_time"), "-");
}

#[tokio::test]
async fn list_filters_by_user_state_and_kind() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let a = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id
        .get();
    let b = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .get();
    let c = client.open_clientless_session("R42").await.unwrap();
    client.end_session(c.session_id).await.unwrap();
    let c = c.session_id.get();
    let ids = |lines: Vec<Value>| {
        lines
            .iter()
            .map(|l| l["session_id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    let all = sessionctl(&server, &["list", "--output", "json"])
        .await
        .json_lines();
    assert_eq!(ids(all.clone()), [a, b, c]);
    for line in &all {
        let mut got = keys(line);
        got.sort_unstable();
        let mut expected = SESSION_INFO_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }
    let of_r41 = sessionctl(&server, &["--output", "json", "list", "--user", "R41"]).await;
    assert_eq!(ids(of_r41.json_lines()), [a, b]);
    let ended = sessionctl(&server, &["--output", "json", "list", "--state", "ended"]).await;
    let ended = ended.json_lines();
    assert_eq!(ids(ended.clone()), [c]);
    assert_eq!(ended[0]["end_reason"], "closed_by_client");
    let interactive = sessionctl(
        &server,
        &["--output", "json", "list", "--kind", "interactive"],
    )
    .await;
    assert_eq!(ids(interactive.json_lines()), [b]);
    let open_clientless_of_r41 = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "list",
            "--user",
            "R41",
            "--kind",
            "clientless",
            "--state",
            "open",
        ],
    )
    .await;
    assert_eq!(ids(open_clientless_of_r41.json_lines()), [a]);
    let nobody = sessionctl(&server, &["--output", "json", "list", "--user", "R99"]).await;
    assert!(nobody.json_lines().is_empty());

    let run = sessionctl(&server, &["list", "--state", "open"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    assert_eq!(rows[0][..4], ["SESSION_ID", "USER", "KIND", "STATE"]);
    assert_eq!(
        rows.len(),
        3,
        "a header and two open sessions: {}",
        run.stdout
    );
    assert_eq!(
        rows[1][..4],
        [
            a.to_string(),
            "R41".into(),
            "clientless".into(),
            "open".into()
        ]
    );
    assert_eq!(
        rows[2][..4],
        [
            b.to_string(),
            "R41".into(),
            "interactive".into(),
            "open".into()
        ]
    );
}

#[tokio::test]
async fn open_then_close_a_clientless_session() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let opened = sessionctl(&server, &["--output", "json", "open", "R41"])
        .await
        .json();
    assert_eq!(opened["user"], "R41");
    assert_eq!(opened["kind"], "clientless");
    assert_eq!(opened["state"], "open");
    let id = SessionId::new(opened["session_id"].as_i64().unwrap());
    assert_eq!(
        client.get_session_info(id).await.unwrap().state,
        SessionState::Open,
        "it stays open after sessionctl exits"
    );

    let closed = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "close",
            &id.to_string(),
            "--grace",
            "10s",
        ],
    )
    .await
    .json();
    assert_eq!(closed["session_id"], json!(id.get()));
    assert_eq!(closed["state"], "ended");
    assert_eq!(closed["end_reason"], "closed_by_client");
    assert!(closed["end_time"].is_string());
    let info = client.get_session_info(id).await.unwrap();
    assert_eq!(info.state, SessionState::Ended);

    // Closing again is idempotent, and the table says so too.
    let run = sessionctl(&server, &["close", &id.to_string()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "state"), "ended");
    assert_eq!(field(&run.stdout, "end_reason"), "closed_by_client");
}

#[tokio::test]
async fn close_ends_an_interactive_session_but_a_grace_is_for_clientless_ones() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();

    let line = sessionctl(&server, &["close", &id, "--grace", "1s"])
        .await
        .failure(1);
    assert_eq!(
        line,
        format!("sessionctl: session {id} is not a clientless session")
    );

    let closed = sessionctl(&server, &["--output", "json", "close", &id])
        .await
        .json();
    assert_eq!(closed["state"], "ended");
    assert_eq!(closed["kind"], "interactive");
}

#[tokio::test]
async fn context_reads_and_switches_the_user_context() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let arg = id.to_string();

    let line = sessionctl(&server, &["--output", "json", "context", &arg])
        .await
        .json();
    assert_eq!(
        line,
        json!({"session_id": id.get(), "user": "R41", "session_user": "R41", "depth": 0})
    );

    let line = sessionctl(
        &server,
        &["--output", "json", "context", &arg, "--set", "R50"],
    )
    .await
    .json();
    assert_eq!(line["user"], "R50");
    assert_eq!(line["previous_user"], "R41");
    assert_eq!(client.get_user_context(id).await.unwrap().user, "R50");

    let run = sessionctl(&server, &["context", &arg]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "user"), "R50");
    assert_eq!(field(&run.stdout, "session_user"), "R41");

    client.end_session(id).await.unwrap();
    let line = sessionctl(&server, &["context", &arg, "--set", "R60"])
        .await
        .failure(1);
    assert_eq!(line, format!("sessionctl: session {arg} has ended"));
}

#[tokio::test]
async fn push_acts_as_another_user_until_pop_restores_the_one_before() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let opened = sessionctl(&server, &["--output", "json", "open", "R41"])
        .await
        .json();
    let id = SessionId::new(opened["session_id"].as_i64().unwrap());
    let arg = id.to_string();

    let pushed = sessionctl(&server, &["--output", "json", "push", &arg, "R42"])
        .await
        .json();
    assert_eq!(pushed["session_id"], json!(id.get()));
    assert_eq!(pushed["user"], "R42");
    assert_eq!(pushed["previous_user"], "R41");
    assert_eq!(pushed["depth"], 1);
    let outer = pushed["scope_id"].as_i64().unwrap().to_string();
    let context = client.get_user_context(id).await.unwrap();
    assert_eq!((context.user.as_str(), context.depth), ("R42", 1));

    // A module opened inside the scope acts as R42 (the seed's
    // `with UserContext('R42'): session.open_module(…)`).
    let run = sessionctl(&server, &["open-module", &arg, "whoami"]).await;
    assert_eq!(field(&run.stdout, "acting_user"), "R42", "{run:?}");
    let value = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "value",
            &arg,
            "whoami",
            "--timeout",
            "30s",
        ],
    )
    .await
    .json();
    assert_eq!(value["value"], json!({"user": "R41", "acting_user": "R42"}));

    // Scopes nest, and only the innermost may be popped.
    let run = sessionctl(&server, &["push", &arg, "R43"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let inner = field(&run.stdout, "scope_id").to_owned();
    assert_eq!(field(&run.stdout, "previous_user"), "R42");
    assert_eq!(field(&run.stdout, "depth"), "2");
    let line = sessionctl(&server, &["pop", &arg, &outer]).await.failure(1);
    assert_eq!(
        line,
        format!("sessionctl: scope {outer} of session {id} is not the innermost scope")
    );
    assert_eq!(
        client.get_user_context(id).await.unwrap().user,
        "R43",
        "a refused pop changes nothing"
    );

    let popped = sessionctl(&server, &["--output", "json", "pop", &arg, &inner])
        .await
        .json();
    assert_eq!(
        popped,
        json!({"session_id": id.get(), "scope_id": inner.parse::<i64>().unwrap(), "user": "R42", "depth": 1})
    );
    let run = sessionctl(&server, &["pop", &arg, &outer]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "user"), "R41");
    assert_eq!(field(&run.stdout, "depth"), "0");
    let context = client.get_user_context(id).await.unwrap();
    assert_eq!((context.user.as_str(), context.depth), ("R41", 0));

    let line = sessionctl(&server, &["pop", &arg, &outer]).await.failure(1);
    assert_eq!(
        line,
        format!("sessionctl: scope {outer} is not open in session {id}")
    );
}

#[tokio::test]
async fn start_registers_an_interactive_session_that_touch_keeps_alive() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let started = sessionctl(
        &server,
        &["--output", "json", "start", "R41", "--client", "web/2.3"],
    )
    .await
    .json();
    assert_eq!(started["user"], "R41");
    assert_eq!(started["kind"], "interactive");
    assert_eq!(started["state"], "open");
    assert_eq!(started["client"], "web/2.3");
    let id = SessionId::new(started["session_id"].as_i64().unwrap());
    let info = client.get_session_info(id).await.unwrap();
    assert_eq!(info.client, "web/2.3");
    assert_eq!(
        info.state,
        SessionState::Open,
        "it stays open after sessionctl exits"
    );

    let touched = sessionctl(&server, &["--output", "json", "touch", &id.to_string()])
        .await
        .json();
    assert_eq!(touched["session_id"], json!(id.get()));
    let at = touched["last_activity_time"].as_str().unwrap();
    assert!(is_rfc3339_utc(at), "{at}");
    assert!(
        at >= started["last_activity_time"].as_str().unwrap(),
        "{at} is not before the start"
    );
    let info = client.get_session_info(id).await.unwrap();
    assert_eq!(
        json!(humantime::format_rfc3339_micros(info.last_activity_time).to_string()),
        touched["last_activity_time"],
        "what touch printed is what the server recorded"
    );

    // The table: no client given is `-`, like every empty field.
    let run = sessionctl(&server, &["start", "R42"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "kind"), "interactive");
    assert_eq!(field(&run.stdout, "client"), "-");
    let id = field(&run.stdout, "session_id").to_owned();
    let run = sessionctl(&server, &["touch", &id]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(is_rfc3339_utc(field(&run.stdout, "last_activity_time")));

    client
        .end_session(id.parse::<SessionId>().unwrap())
        .await
        .unwrap();
    let line = sessionctl(&server, &["touch", &id]).await.failure(1);
    assert_eq!(line, format!("sessionctl: session {id} has ended"));
}

#[tokio::test]
async fn list_takes_several_states_repeated_or_comma_separated() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let open = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let ended = client.start_session("R41", "").await.unwrap().session_id;
    client.end_session(ended).await.unwrap();
    // A session stays closing while its module concludes within the grace.
    let closing = client
        .open_clientless_session("R42")
        .await
        .unwrap()
        .session_id;
    client
        .open_module(closing, "slow", json!({"seconds": 300}))
        .await
        .unwrap();
    let closer = client.clone();
    let close = tokio::spawn(async move {
        closer
            .close_clientless_session(closing, Some(Duration::from_secs(300)))
            .await
    });
    common::eventually("the session to be closing", || async {
        let state = client.get_session_info(closing).await.unwrap().state;
        (state == SessionState::Closing).then_some(())
    })
    .await;
    let ids = |run: Run| {
        run.json_lines()
            .iter()
            .map(|l| l["session_id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    for args in [
        &[
            "--output", "json", "list", "--state", "open", "--state", "closing",
        ][..],
        &["--output", "json", "list", "--state", "open,closing"],
        &["--output", "json", "list", "--state", "closing,open,open"],
    ] {
        let listed = ids(sessionctl(&server, args).await);
        assert_eq!(listed, [open.get(), closing.get()], "{args:?}");
    }
    let listed =
        ids(sessionctl(&server, &["--output", "json", "list", "--state", "closing"]).await);
    assert_eq!(listed, [closing.get()]);
    let listed = ids(sessionctl(
        &server,
        &[
            "--output",
            "json",
            "list",
            "--state",
            "ended,closing",
            "--user",
            "R41",
        ],
    )
    .await);
    assert_eq!(listed, [ended.get()]);
    let run = sessionctl(&server, &["list", "--state", "closing,ended"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let states: Vec<String> = table(&run.stdout)[1..]
        .iter()
        .map(|row| row[3].clone())
        .collect();
    assert_eq!(states, ["ended", "closing"]);
    let run = sessionctl(&server, &["list", "--state", "open,sleepy"]).await;
    assert_eq!(run.code, 2, "{run:?}");

    client
        .close_clientless_session(closing, Some(Duration::ZERO))
        .await
        .unwrap();
    close.await.unwrap().unwrap();
}

#[tokio::test]
async fn failures_print_one_line_and_exit_non_zero() {
    let server = TestServer::start().await;

    let line = sessionctl(&server, &["info", "4242"]).await.failure(1);
    assert_eq!(line, "sessionctl: session 4242 not found");
    let line = sessionctl(&server, &["user", "4242", "--output", "json"])
        .await
        .failure(1);
    assert_eq!(line, "sessionctl: session 4242 not found");
    let line = sessionctl(&server, &["info", "0"]).await.failure(1);
    assert!(line.starts_with("sessionctl: invalid argument"), "{line}");
    assert!(line.contains("session_id"), "{line}");
    let line = sessionctl(&server, &["open", ""]).await.failure(1);
    assert!(line.contains("user"), "{line}");

    // Nothing listens on a port that was just free.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = format!("http://127.0.0.1:{port}");
    let line = sessionctl_at(&nowhere, &["list"]).await.failure(1);
    assert!(
        line.starts_with(&format!("sessionctl: cannot connect to {nowhere}")),
        "{line}"
    );

    // Usage errors are clap's: exit status 2.
    let run = sessionctl(&server, &["info", "seven"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = sessionctl(&server, &["list", "--state", "sleepy"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("open, closing, ended"), "{run:?}");
    let run = sessionctl(&server, &["frobnicate"]).await;
    assert_eq!(run.code, 2, "{run:?}");
}

#[tokio::test]
async fn the_endpoint_flag_overrides_the_environment() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = format!("http://127.0.0.1:{port}");
    let run = sessionctl_at(
        &nowhere,
        &[
            "--endpoint",
            &server.endpoint(),
            "--output",
            "json",
            "user",
            &id,
        ],
    )
    .await;
    assert_eq!(run.json()["user"], "R41");
}

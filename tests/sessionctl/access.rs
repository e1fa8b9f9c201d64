//! Tokens, TLS, `whoami` and `can-i` against authenticating servers.

use super::*;

/// A server with static tokens and `examples/policy.toml`, and the tokens
/// of `billing` (group `services`) and of the end user `R41`.
async fn server_with_tokens_and_example_policy() -> (TestServer, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let service = static_token(&tokens, "billing", &["services"]);
    let r41 = static_token(&tokens, "R41", &[]);
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml");
    let server = TestServer::start_in(dir, |config| {
        config.security.tokens = Some(tokens);
        config.security.policy = Some(policy);
    })
    .await;
    (server, service, r41)
}

#[tokio::test]
async fn whoami_without_authentication_prints_anonymous() {
    let server = TestServer::start().await;
    let me = sessionctl(&server, &["whoami", "--output", "json"])
        .await
        .json();
    assert_eq!(
        me,
        json!({
            "subject": "anonymous",
            "groups": [],
            "method": "none",
            "session_id": null,
        })
    );
    let run = sessionctl(&server, &["whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "subject"), "anonymous");
    assert_eq!(field(&run.stdout, "method"), "none");
}

#[tokio::test]
async fn whoami_with_sessiond_token_prints_the_tokens_subject() {
    let (server, service, _) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let token = [("SESSIOND_TOKEN", service.as_str())];
    let me = sessionctl_with_env(&endpoint, &["whoami", "--output", "json"], &token)
        .await
        .json();
    assert_eq!(
        me,
        json!({
            "subject": "billing",
            "groups": ["services"],
            "method": "static_token",
            "session_id": null,
        })
    );
    let run = sessionctl_with_env(&endpoint, &["whoami"], &token).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "subject"), "billing");
    assert_eq!(field(&run.stdout, "groups"), "services");
    assert_eq!(field(&run.stdout, "method"), "static_token");
    assert!(!run.stdout.contains(&service), "the token is never printed");

    // Without the token: one line saying so, exit 1.
    let line = sessionctl(&server, &["whoami"]).await.failure(1);
    assert!(line.starts_with("sessionctl: unauthenticated: "), "{line}");
}

#[tokio::test]
async fn can_i_answers_from_the_policy_and_exits_1_for_no() {
    let (server, service, _) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let client = Client::builder()
        .bearer_token(&service)
        .connect(&endpoint)
        .await
        .unwrap();
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id
        .to_string();
    let token = [("SESSIOND_TOKEN", service.as_str())];
    let can_i = |user: &'static str| ["can-i", "act_as", "--session", &id, "--user", user];

    let run = sessionctl_with_env(&endpoint, &can_i("admin"), &token).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr, "", "a refusal is an answer, not an error");
    let answer = run.stdout.strip_suffix('\n').unwrap();
    assert!(!answer.contains('\n'), "one line: {run:?}");
    let reason = answer.strip_prefix("no: ").expect("no: REASON");
    assert!(
        reason.contains("billing") && reason.contains("admin"),
        "{reason}"
    );

    let run = sessionctl_with_env(&endpoint, &can_i("R41"), &token).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "yes\n", ""),
        "{run:?}"
    );

    let mut json_args = can_i("admin").to_vec();
    json_args.extend(["--output", "json"]);
    let run = sessionctl_with_env(&endpoint, &json_args, &token).await;
    assert_eq!(run.code, 1, "{run:?}");
    let decision: Value = serde_json::from_str(run.stdout.trim_end()).unwrap();
    assert_eq!(decision, json!({"allowed": false, "reason": reason}));

    // The question changed nothing; the real call gets the same reason.
    let context = client
        .get_user_context(SessionId::new(id.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(context.user, "R41");
    let line = sessionctl_with_env(&endpoint, &["context", &id, "--set", "admin"], &token)
        .await
        .failure(1);
    assert_eq!(line, format!("sessionctl: permission denied: {reason}"));
}

#[tokio::test]
async fn a_refused_call_prints_one_permission_denied_line() {
    let (server, service, r41) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let as_service = [("SESSIOND_TOKEN", service.as_str())];
    let as_r41 = [("SESSIOND_TOKEN", r41.as_str())];

    let line = sessionctl_with_env(&endpoint, &["open", "admin"], &as_service)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    assert!(line.contains("billing") && line.contains("admin"), "{line}");

    // Allowed for R41; the end user R41 may read it but not open one.
    let opened = sessionctl_with_env(&endpoint, &["open", "R41", "--output", "json"], &as_service)
        .await
        .json();
    let id = opened["session_id"].as_i64().unwrap().to_string();
    let read = sessionctl_with_env(&endpoint, &["user", &id, "--output", "json"], &as_r41)
        .await
        .json();
    assert_eq!(read["user"], "R41");
    let line = sessionctl_with_env(&endpoint, &["open", "R41"], &as_r41)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    assert!(line.contains("R41"), "{line}");
    // `run` is refused before it opens anything: the service's session is
    // still the only one.
    let line = sessionctl_with_env(&endpoint, &["run", "admin", "100000"], &as_service)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    let listed = sessionctl_with_env(&endpoint, &["list", "--output", "json"], &as_service)
        .await
        .json_lines();
    assert_eq!(listed.len(), 1, "{listed:?}");
    // The audit trail needs read_audit, which only operators have.
    for audit in ["list", "export", "verify", "checkpoint"] {
        let line = sessionctl_with_env(&endpoint, &["audit", audit], &as_service)
            .await
            .failure(1);
        assert!(
            line.starts_with("sessionctl: permission denied: ") && line.contains("audit trail"),
            "audit {audit}: {line}"
        );
    }
}

#[tokio::test]
async fn tls_flags_present_a_client_certificate() {
    let pki = Pki::new();
    let server = TestServer::start_with(|config| {
        config.security.tls = Some(pki.server_with_client_ca());
    })
    .await;
    // A bare HOST:PORT means https:// with any --tls-* flag.
    let endpoint = server.addr.to_string();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let args = [
        "--tls-ca",
        ca,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "whoami",
        "--output",
        "json",
    ];
    let me = sessionctl_at(&endpoint, &args).await.json();
    assert_eq!(
        me,
        json!({
            "subject": CLIENT_SUBJECT,
            "groups": [],
            "method": "tls_client_certificate",
            "session_id": null,
        })
    );

    // Trusting the server without presenting a certificate: refused.
    let line = sessionctl_at(&endpoint, &["--tls-ca", ca, "whoami"])
        .await
        .failure(1);
    assert!(line.starts_with("sessionctl: unauthenticated: "), "{line}");
    // A certificate from another CA: the handshake fails, one line.
    let (stranger, stranger_key) = (pki.path("stranger.pem"), pki.path("stranger.key"));
    let args = [
        "--tls-ca",
        ca,
        "--tls-cert",
        stranger.to_str().unwrap(),
        "--tls-key",
        stranger_key.to_str().unwrap(),
        "whoami",
    ];
    let line = sessionctl_at(&endpoint, &args).await.failure(1);
    assert!(line.starts_with("sessionctl: "), "{line}");
    assert!(!line.contains(CLIENT_SUBJECT), "{line}");
}

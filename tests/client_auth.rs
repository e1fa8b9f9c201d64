//! `sessiond-client` against servers that authenticate their callers: who
//! the server takes the client to be with no credential, a static token, a
//! JWT and a TLS client certificate; `check_access` against the calls it
//! predicts under `examples/policy.toml`; and `sessiond token create` with
//! the real binary, its token accepted by a real `sessiond --tokens`.

mod common;

use std::fmt::Debug;
use std::future::Future;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::credentials::{AUDIENCE, ISSUER, Issuer, static_token};
use common::pki::{CLIENT_SUBJECT, Pki};
use common::{ServerProcess, TestServer, database_url, sessiond_binary};
use serde_json::json;
use sessiond::config::security::{JwtConfig, SecurityConfig};
use sessiond::model::ModuleFailure;
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_client::{
    Access, AuthenticationMethod, Client, Error, Permission, SessionId, TlsSettings,
};

/// A module that returns 42 at once.
#[derive(Debug)]
struct Answer;

#[async_trait]
impl Module for Answer {
    async fn run(&self, _ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        Ok(json!(42))
    }
}

/// `examples/policy.toml`.
fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml")
}

/// A client of `server` sending `token`.
async fn client_with_token(endpoint: &str, token: &str) -> Client {
    Client::builder()
        .bearer_token(token)
        .connect(endpoint)
        .await
        .unwrap()
}

// ------------------------------------------------------------- who_am_i

#[tokio::test]
async fn without_authentication_the_client_is_anonymous() {
    let server = TestServer::start().await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let me = client.who_am_i().await.unwrap();
    assert_eq!(me.subject, "anonymous");
    assert_eq!(me.method, AuthenticationMethod::None);
    assert!(me.groups.is_empty(), "{me:?}");
    assert_eq!(me.session_id, None);
}

#[tokio::test]
async fn a_static_token_names_its_subject_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let token = static_token(&tokens, "billing", &["services", "reports"]);
    let server = TestServer::start_in(dir, |config| config.security.tokens = Some(tokens)).await;

    let me = client_with_token(&server.endpoint(), &token)
        .await
        .who_am_i()
        .await
        .unwrap();
    assert_eq!(me.subject, "billing");
    assert_eq!(me.groups, ["services", "reports"]);
    assert_eq!(me.method, AuthenticationMethod::StaticToken);
    assert_eq!(me.session_id, None);

    let anonymous = Client::connect(server.endpoint()).await.unwrap();
    let error = anonymous.who_am_i().await.unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
    let unknown = client_with_token(&server.endpoint(), "sdt_not-a-token-of-this-server").await;
    let error = unknown.who_am_i().await.unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
}

#[tokio::test]
async fn a_jwt_names_its_subject_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("client-key");
    let jwks = issuer.write_jwks(dir.path());
    let server = TestServer::start_in(dir, |config| {
        config.security.jwt = Some(JwtConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks: jwks.display().to_string(),
            subject_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
        });
    })
    .await;

    let token = issuer.token("olga", &["operators"], json!({}));
    let me = client_with_token(&server.endpoint(), &token)
        .await
        .who_am_i()
        .await
        .unwrap();
    assert_eq!(me.subject, "olga");
    assert_eq!(me.groups, ["operators"]);
    assert_eq!(me.method, AuthenticationMethod::Jwt);

    let misdirected = issuer.token("olga", &["operators"], json!({"aud": "someone-else"}));
    let error = client_with_token(&server.endpoint(), &misdirected)
        .await
        .who_am_i()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
}

#[tokio::test]
async fn a_tls_client_certificate_names_its_san() {
    let pki = Pki::new();
    let server = TestServer::start_with(|config| {
        config.security.tls = Some(pki.server_with_client_ca());
    })
    .await;
    let endpoint = format!("https://{}", server.addr);
    let trust = TlsSettings::new().ca_certificate_pem(pki.read("ca.pem"));

    let with_certificate = Client::builder()
        .tls(
            trust
                .clone()
                .client_identity_pem(pki.read("client.pem"), pki.read("client.key")),
        )
        .connect(&endpoint)
        .await
        .unwrap();
    let me = with_certificate.who_am_i().await.unwrap();
    assert_eq!(
        me.subject, CLIENT_SUBJECT,
        "the first SAN, not the common name"
    );
    assert_eq!(me.method, AuthenticationMethod::TlsClientCertificate);
    assert!(me.groups.is_empty(), "{me:?}");

    let without_certificate = Client::builder()
        .tls(trust)
        .connect(&endpoint)
        .await
        .unwrap();
    let error = without_certificate.who_am_i().await.unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
}

// ---------------------------------------------------------- check_access

/// Asks `client` whether it may take `access`, then takes it with `call`:
/// the answer must be `expected`, the call must succeed exactly when it
/// was allowed, and a refused call must be `PermissionDenied` for that
/// permission, with the reason `check_access` gave.
async fn agree<T: Debug>(
    client: &Client,
    access: Access,
    expected: bool,
    call: impl Future<Output = sessiond_client::Result<T>>,
) {
    let decision = client.check_access(&access).await.unwrap();
    assert_eq!(decision.allowed, expected, "{access:?}: {decision:?}");
    // The call's future has done nothing yet: it acts only now.
    let result = call.await;
    if decision.allowed {
        assert_eq!(decision.reason, "", "{access:?}");
        assert!(result.is_ok(), "{access:?} was allowed, but {result:?}");
    } else {
        match result {
            Err(Error::PermissionDenied {
                permission,
                message,
                ..
            }) => {
                assert_eq!(permission, access.permission.name(), "{access:?}");
                assert_eq!(message, decision.reason, "{access:?}");
            }
            other => panic!("{access:?} was refused ({decision:?}), but the call gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn check_access_agrees_with_the_calls_it_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let service_token = static_token(&tokens, "billing", &["services"]);
    let r41_token = static_token(&tokens, "R41", &[]);
    let security = SecurityConfig {
        tokens: Some(tokens),
        policy: Some(example_policy()),
        ..SecurityConfig::default()
    };
    let server = TestServer::build_in(
        dir,
        |config| config.security = security,
        |builder| builder.module("answer", Answer),
    )
    .await;
    let service = client_with_token(&server.endpoint(), &service_token).await;
    let r41 = client_with_token(&server.endpoint(), &r41_token).await;
    let s41 = service
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let s43 = service
        .open_clientless_session("R43")
        .await
        .unwrap()
        .session_id;
    let i41 = service
        .start_session("R41", "web")
        .await
        .unwrap()
        .session_id;

    // The platform's services: sessions for and acting as R* users only.
    let open = |user: &str| Access::new(Permission::OpenClientlessSession).user(user);
    agree(
        &service,
        open("R44"),
        true,
        service.open_clientless_session("R44"),
    )
    .await;
    agree(
        &service,
        open("admin"),
        false,
        service.open_clientless_session("admin"),
    )
    .await;
    let start = |user: &str| Access::new(Permission::StartSession).user(user);
    agree(
        &service,
        start("R45"),
        true,
        service.start_session("R45", "web"),
    )
    .await;
    agree(
        &service,
        start("admin"),
        false,
        service.start_session("admin", "web"),
    )
    .await;
    let act_as = |id: SessionId, user: &str| Access::new(Permission::ActAs).session(id).user(user);
    agree(
        &service,
        act_as(s41, "R42"),
        true,
        service.set_user_context(s41, "R42"),
    )
    .await;
    agree(
        &service,
        act_as(s41, "admin"),
        false,
        service.set_user_context(s41, "admin"),
    )
    .await;
    let run = |id: SessionId| {
        Access::new(Permission::RunModule)
            .session(id)
            .module("answer")
    };
    agree(
        &service,
        run(s41),
        true,
        service.open_module(s41, "answer", json!({})),
    )
    .await;

    // An end user: its own session only, acting as itself only. S41 acts
    // as R42 now, so R41 may not run a module in it until it acts as
    // itself again.
    let read = |id: SessionId| Access::new(Permission::ReadSession).session(id);
    agree(&r41, read(s41), true, r41.get_session_info(s41)).await;
    agree(
        &r41,
        run(s41),
        false,
        r41.open_module(s41, "answer", json!({})),
    )
    .await;
    agree(
        &r41,
        act_as(s41, "R41"),
        true,
        r41.set_user_context(s41, "R41"),
    )
    .await;
    agree(
        &r41,
        run(s41),
        true,
        r41.open_module(s41, "answer", json!({})),
    )
    .await;
    let touch = |id: SessionId| Access::new(Permission::TouchSession).session(id);
    agree(&r41, touch(i41), true, r41.touch_session(i41)).await;
    agree(&r41, open("R41"), false, r41.open_clientless_session("R41")).await;

    // A session the caller may not read: check_access says no, naming it
    // "not found", and the call fails exactly as for a session that does
    // not exist — not PermissionDenied, which would give it away.
    let decision = r41.check_access(&read(s43)).await.unwrap();
    assert!(!decision.allowed, "{decision:?}");
    let error = r41.get_session_info(s43).await.unwrap_err();
    assert!(
        matches!(error, Error::SessionNotFound { session_id } if session_id == s43),
        "{error:?}"
    );
    assert_eq!(decision.reason, error.to_string());
    let unknown = SessionId::new(s43.get() + 1_000_000);
    let decision = r41.check_access(&read(unknown)).await.unwrap();
    assert!(!decision.allowed, "{decision:?}");
    let error = r41.get_session_info(unknown).await.unwrap_err();
    assert!(matches!(error, Error::SessionNotFound { .. }), "{error:?}");
    assert_eq!(decision.reason, error.to_string());

    // Ending: services may end the sessions of users they may open
    // sessions for; an end user its own.
    let end = |id: SessionId| Access::new(Permission::EndSession).session(id);
    agree(&service, end(s43), true, service.end_session(s43)).await;
    agree(&r41, end(s41), true, r41.end_session(s41)).await;
    agree(&r41, end(i41), true, r41.end_session(i41)).await;
}

// ---------------------------------------------------------- token create

/// What one run of `sessiond token create` printed.
struct Created {
    stdout: String,
    stderr: String,
}

/// Runs `sessiond token create --tokens FILE --subject SUBJECT --group G…`
/// and asserts it succeeded.
async fn token_create(tokens: &Path, subject: &str, groups: &[&str]) -> Created {
    let mut command = tokio::process::Command::new(sessiond_binary());
    command
        .args(["token", "create", "--tokens"])
        .arg(tokens)
        .args(["--subject", subject]);
    for group in groups {
        command.args(["--group", group]);
    }
    let output = command
        .env_remove("RUST_LOG")
        .env_remove("SESSIOND_TOKENS")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let created = Created {
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        output.status.success(),
        "sessiond token create failed: {}\n{}",
        output.status,
        created.stderr
    );
    created
}

/// The token a run printed: its only line.
fn printed_token(created: &Created) -> String {
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line, the token: {:?}", created.stdout);
    assert!(created.stdout.ends_with('\n'));
    let token = lines[0];
    assert!(token.starts_with("sdt_"), "{token:?}");
    assert!(token.len() > "sdt_".len() + 40, "{token:?}");
    assert!(
        !token.contains(char::is_whitespace),
        "{token:?} is one word"
    );
    token.to_owned()
}

#[tokio::test]
async fn sessiond_token_create_makes_a_token_the_real_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let first = token_create(&tokens, "billing", &["services", "reports"]).await;
    let second = token_create(&tokens, "olga", &[]).await;
    let (billing, olga) = (printed_token(&first), printed_token(&second));
    assert_ne!(billing, olga);
    for created in [&first, &second] {
        for token in [&billing, &olga] {
            assert!(
                !created.stderr.contains(token.as_str()),
                "{}",
                created.stderr
            );
        }
    }

    // The file: mode 0600, one entry per token, each a SHA-256 and never
    // the token (nor its random part).
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let text = std::fs::read_to_string(&tokens).unwrap();
    for token in [&billing, &olga] {
        let secret = token.strip_prefix("sdt_").unwrap();
        assert!(!text.contains(secret), "the file holds a token:\n{text}");
    }
    let hashes: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("sha256 = \""))
        .map(|rest| rest.trim_end_matches('"'))
        .collect();
    assert_eq!(hashes.len(), 2, "{text}");
    for hash in &hashes {
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{hash:?} in\n{text}"
        );
    }
    assert_ne!(hashes[0], hashes[1]);

    // The real binary started with --tokens accepts both, and nothing else.
    let tokens_arg = tokens.display().to_string();
    let mut server =
        ServerProcess::spawn(&database_url(dir.path()), &["--tokens", &tokens_arg]).await;
    let me = client_with_token(&server.endpoint(), &billing)
        .await
        .who_am_i()
        .await
        .unwrap();
    assert_eq!(me.subject, "billing");
    assert_eq!(me.groups, ["services", "reports"]);
    assert_eq!(me.method, AuthenticationMethod::StaticToken);
    let me = client_with_token(&server.endpoint(), &olga)
        .await
        .who_am_i()
        .await
        .unwrap();
    assert_eq!((me.subject.as_str(), me.groups.len()), ("olga", 0));
    let last = if billing.ends_with('x') { 'y' } else { 'x' };
    let tampered = format!("{}{last}", &billing[..billing.len() - 1]);
    let error = client_with_token(&server.endpoint(), &tampered)
        .await
        .who_am_i()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
    // Everything it logged, to its exit.
    let pid = i32::try_from(server.child.id().unwrap()).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(server.exited().await.success());
    let log = server.log.borrow().clone();
    for token in [&billing, &olga, &tampered] {
        assert!(
            !log.contains(token.as_str()),
            "the server logged a token:\n{log}"
        );
    }
}

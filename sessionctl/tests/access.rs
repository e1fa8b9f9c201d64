//! `sessionctl whoami` and `can-i`, the credential flags and their usage
//! errors: the real binary against a scripted `AccessService` that records
//! what each call carried (the `authorization` header, a client
//! certificate) and fails on cue, in plain text or over TLS with
//! certificates made for the test.
//!
//! The same commands against the real server, with authentication on, are
//! tested in the workspace's `tests/sessionctl.rs` once the server serves
//! `AccessService`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sessiond_proto::v1 as pb;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

// ---------------------------------------------------------------- the server

/// What the scripted service saw, and what it answers next.
#[derive(Default)]
struct Script {
    /// The `authorization` header of every call.
    authorizations: Mutex<Vec<Option<String>>>,
    /// Every `CheckAccess` request.
    questions: Mutex<Vec<pb::CheckAccessRequest>>,
    /// The status the next call fails with.
    failure: Mutex<Option<Status>>,
}

impl Script {
    /// Records the call; its scripted failure, if any.
    fn answer<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        self.authorizations.lock().unwrap().push(authorization);
        match self.failure.lock().unwrap().take() {
            Some(status) => Err(status),
            None => Ok(()),
        }
    }

    /// The next call fails with `status`.
    fn fail_next(&self, status: Status) {
        *self.failure.lock().unwrap() = Some(status);
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().unwrap().clone()
    }
}

/// The served side of a [`Script`]. `WhoAmI` answers "cert-holder" for a
/// caller that presented a client certificate (the certificate is not
/// parsed), else "alice" of groups "ops" and "auditors" by static token.
/// `CheckAccess` allows reading a session and nothing else.
struct Scripted(Arc<Script>);

#[tonic::async_trait]
impl pb::access_service_server::AccessService for Scripted {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        self.0.answer(&request)?;
        let certified = request.peer_certs().is_some_and(|certs| !certs.is_empty());
        Ok(Response::new(if certified {
            pb::WhoAmIResponse {
                subject: "cert-holder".into(),
                groups: vec![],
                method: pb::AuthenticationMethod::TlsClientCertificate.into(),
                session_id: 0,
            }
        } else {
            pb::WhoAmIResponse {
                subject: "alice".into(),
                groups: vec!["ops".into(), "auditors".into()],
                method: pb::AuthenticationMethod::StaticToken.into(),
                session_id: 0,
            }
        }))
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        self.0.answer(&request)?;
        let question = request.into_inner();
        self.0.questions.lock().unwrap().push(question.clone());
        let allowed = question.permission == i32::from(pb::Permission::ReadSession);
        Ok(Response::new(pb::CheckAccessResponse {
            allowed,
            reason: if allowed {
                String::new()
            } else {
                let permission = pb::Permission::try_from(question.permission)
                    .map_or("an unknown permission", |p| p.as_str_name());
                format!("the policy does not grant alice {permission}")
            },
        }))
    }
}

/// A scripted `AccessService` on an ephemeral port, in plain text; its
/// endpoint.
async fn scripted_server() -> (Arc<Script>, String) {
    let (script, address) = serve(Server::builder()).await;
    (script, format!("http://{address}"))
}

/// Serves a scripted `AccessService` with `server`'s settings on an
/// ephemeral port of 127.0.0.1.
async fn serve(mut server: Server) -> (Arc<Script>, std::net::SocketAddr) {
    let script = Arc::new(Script::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service =
        pb::access_service_server::AccessServiceServer::new(Scripted(Arc::clone(&script)));
    tokio::spawn(
        server
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (script, address)
}

/// A sessiond status with `reason` and `metadata` in its `ErrorInfo`.
fn sessiond_status(code: Code, message: &str, reason: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, "sessiond", metadata),
    )
}

// ------------------------------------------------------------- the binary

/// What one run of `sessionctl` did.
#[derive(Debug)]
struct Run {
    /// Its exit code.
    code: i32,
    /// Everything it printed on stdout.
    stdout: String,
    /// Everything it printed on stderr.
    stderr: String,
}

impl Run {
    /// Asserts success and returns the one JSON line on stdout.
    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        let lines: Vec<_> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{self:?}");
        serde_json::from_str(lines[0]).unwrap()
    }

    /// Asserts failure with `code`, nothing on stdout, and returns the one
    /// line on stderr.
    #[track_caller]
    fn failure(&self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "nothing on stdout when failing");
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one clear line: {self:?}");
        lines[0].to_owned()
    }
}

/// Runs `sessionctl ARGS…` with `env` as its only sessiond settings.
async fn sessionctl_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    command
        .args(args)
        .env_remove("SESSIOND_ENDPOINT")
        .env_remove("SESSIOND_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.expect("running sessionctl");
    Run {
        code: output.status.code().expect("sessionctl exited by itself"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `sessionctl ARGS…` against `endpoint`.
async fn sessionctl(endpoint: &str, args: &[&str]) -> Run {
    sessionctl_with(&[("SESSIOND_ENDPOINT", endpoint)], args).await
}

/// The value of `field` in a two-column "field value" table.
fn field<'a>(stdout: &'a str, field: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == field).then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no {field} in {stdout}"))
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn whoami_prints_subject_groups_and_method() {
    let (_script, endpoint) = scripted_server().await;

    let run = sessionctl(&endpoint, &["--output", "json", "whoami"]).await;
    assert_eq!(
        run.json(),
        json!({
            "subject": "alice",
            "groups": ["ops", "auditors"],
            "method": "AUTHENTICATION_METHOD_STATIC_TOKEN",
            "session_id": null,
        })
    );
    assert_eq!(
        run.stdout,
        "{\"subject\":\"alice\",\"groups\":[\"ops\",\"auditors\"],\
         \"method\":\"AUTHENTICATION_METHOD_STATIC_TOKEN\",\"session_id\":null}\n",
        "the contract's fields, in its order"
    );

    let run = sessionctl(&endpoint, &["whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "subject"), "alice");
    assert_eq!(field(&run.stdout, "groups"), "ops, auditors");
    assert_eq!(field(&run.stdout, "method"), "static_token");
    assert_eq!(field(&run.stdout, "session_id"), "-");
}

#[tokio::test]
async fn can_i_prints_yes_or_no_and_exits_zero_or_one() {
    let (script, endpoint) = scripted_server().await;

    let run = sessionctl(&endpoint, &["can-i", "read_session", "--session", "7"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, "yes\n"), "{run:?}");
    assert_eq!(run.stderr, "");

    let run = sessionctl(
        &endpoint,
        &["can-i", "act_as", "--session", "7", "--user", "R50"],
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (1, "no: the policy does not grant alice PERMISSION_ACT_AS\n"),
        "{run:?}"
    );
    assert_eq!(run.stderr, "", "a no is an answer, not an error");

    let run = sessionctl(
        &endpoint,
        &[
            "--output",
            "json",
            "can-i",
            "run_module",
            "--session",
            "7",
            "--module",
            "100000",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let line: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        line,
        json!({"allowed": false, "reason": "the policy does not grant alice PERMISSION_RUN_MODULE"})
    );
    let line = sessionctl(&endpoint, &["can-i", "read_session", "--output", "json"])
        .await
        .json();
    assert_eq!(line, json!({"allowed": true, "reason": ""}));

    let questions = script.questions.lock().unwrap().clone();
    let sent: Vec<_> = questions
        .iter()
        .map(|q| {
            (
                pb::Permission::try_from(q.permission).unwrap(),
                q.session_id,
                q.user.as_str(),
                q.module_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (pb::Permission::ReadSession, 7, "", ""),
            (pb::Permission::ActAs, 7, "R50", ""),
            (pb::Permission::RunModule, 7, "", "100000"),
            (pb::Permission::ReadSession, 0, "", ""),
        ]
    );
}

#[tokio::test]
async fn the_token_comes_from_sessiond_token_and_the_flag_wins() {
    let (script, endpoint) = scripted_server().await;
    let env = [
        ("SESSIOND_ENDPOINT", endpoint.as_str()),
        ("SESSIOND_TOKEN", "from-the-env"),
    ];

    let run = sessionctl_with(&env, &["whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = sessionctl_with(&env, &["--token", "from-the-flag", "whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = sessionctl(&endpoint, &["can-i", "read_audit"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        script.authorizations(),
        [
            Some("Bearer from-the-env".to_owned()),
            Some("Bearer from-the-flag".to_owned()),
            None,
        ]
    );

    // The token is never shown, not even in the help.
    let help = sessionctl_with(&env, &["--help"]).await;
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("SESSIOND_TOKEN"), "{help:?}");
    assert!(!help.stdout.contains("from-the-env"), "{help:?}");

    let line = sessionctl(&endpoint, &["--token", "two words", "whoami"])
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: invalid client settings:"),
        "{line}"
    );
}

#[tokio::test]
async fn server_errors_print_one_line_naming_the_reason() {
    let (script, endpoint) = scripted_server().await;

    script.fail_next(sessiond_status(
        Code::Unauthenticated,
        "the bearer token has expired",
        "UNAUTHENTICATED",
        &[],
    ));
    let line = sessionctl(&endpoint, &["whoami"]).await.failure(1);
    assert_eq!(
        line,
        "sessionctl: unauthenticated: the bearer token has expired"
    );

    script.fail_next(sessiond_status(
        Code::PermissionDenied,
        "alice may not read the audit trail",
        "PERMISSION_DENIED",
        &[("permission", "read_audit"), ("subject", "alice")],
    ));
    let line = sessionctl(&endpoint, &["can-i", "read_audit"])
        .await
        .failure(1);
    assert_eq!(
        line,
        "sessionctl: permission denied: alice may not read the audit trail"
    );

    script.fail_next(sessiond_status(
        Code::InvalidArgument,
        "invalid argument: session_id: must be a session id > 0",
        "INVALID_ARGUMENT",
        &[],
    ));
    let line = sessionctl(&endpoint, &["can-i", "act_as", "--output", "json"])
        .await
        .failure(1);
    assert!(line.starts_with("sessionctl: invalid argument"), "{line}");
}

#[tokio::test]
async fn a_server_without_access_service_is_named_as_older() {
    // A server with some other service only.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    for args in [&["whoami"][..], &["can-i", "read_audit"]] {
        let line = sessionctl(&endpoint, args).await.failure(1);
        assert_eq!(
            line,
            "sessionctl: the server does not implement sessiond.v1.AccessService \
             (it is older than this sessionctl)"
        );
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_say_what_is_wrong() {
    let nowhere = "http://127.0.0.1:9";

    let run = sessionctl(nowhere, &["--tls-cert", "client.pem", "whoami"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--tls-key <FILE>"), "{run:?}");
    let run = sessionctl(nowhere, &["whoami", "--tls-key", "client.key"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--tls-cert <FILE>"), "{run:?}");

    let run = sessionctl(nowhere, &["can-i", "fly"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "unknown value \"fly\"; expected one of: read_session, start_session, \
             open_clientless_session, touch_session, end_session, act_as, run_module, read_audit"
        ),
        "{run:?}"
    );
    let run = sessionctl(nowhere, &["can-i", "act_as", "--session", "seven"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
}

// -------------------------------------------------------------------- TLS

/// A CA, a server certificate for "localhost" and a client certificate it
/// signed, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server: (String, String),
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_owned()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf("localhost");
        let client = leaf("cert-holder");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
        std::fs::write(dir.path().join("client.pem"), &client.0).unwrap();
        std::fs::write(dir.path().join("client.key"), &client.1).unwrap();
        Self { dir, ca, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn tls_flags_trust_the_ca_and_present_the_client_certificate() {
    let pki = Pki::new();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca))
        .client_auth_optional(true);
    let (script, address) = serve(Server::builder().tls_config(tls).unwrap()).await;
    // A bare HOST:PORT means https:// once a --tls-* flag is given.
    let endpoint = format!("localhost:{}", address.port());
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );

    let line = sessionctl(
        &endpoint,
        &[
            "--tls-ca",
            arg(&ca),
            "--tls-cert",
            arg(&cert),
            "--tls-key",
            arg(&key),
            "--output",
            "json",
            "whoami",
        ],
    )
    .await
    .json();
    assert_eq!(line["subject"], "cert-holder");
    assert_eq!(
        line["method"],
        "AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE"
    );

    // The CA alone: TLS without a client certificate.
    let line = sessionctl(
        &endpoint,
        &["--tls-ca", arg(&ca), "--output", "json", "whoami"],
    )
    .await
    .json();
    assert_eq!(line["subject"], "alice");
    assert_eq!(script.authorizations().len(), 2);

    // TLS flags never fall back to plain text.
    let line = sessionctl(
        &format!("http://localhost:{}", address.port()),
        &["--tls-ca", arg(&ca), "whoami"],
    )
    .await
    .failure(1);
    assert_eq!(
        line,
        format!(
            "sessionctl: invalid client settings: TLS settings need an https:// endpoint, \
             not http://localhost:{}",
            address.port()
        )
    );
    // A file that cannot be used is named.
    let missing = pki.path("missing.pem");
    let line = sessionctl(&endpoint, &["--tls-ca", arg(&missing), "whoami"])
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: invalid client settings: cannot read the CA certificate")
            && line.contains("missing.pem"),
        "{line}"
    );
    let line = sessionctl(
        &endpoint,
        &[
            "--tls-ca",
            arg(&ca),
            "--tls-cert",
            arg(&cert),
            "--tls-key",
            arg(&ca),
            "whoami",
        ],
    )
    .await
    .failure(1);
    assert!(
        line.starts_with("sessionctl: invalid client settings: TLS settings:")
            && line.contains("private key"),
        "a certificate given as the key: {line}"
    );
    assert_eq!(
        script.authorizations().len(),
        2,
        "nothing reached the server"
    );
}

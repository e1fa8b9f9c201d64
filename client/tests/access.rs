//! The credential on retries, over real gRPC against a scripted
//! `AccessService` that records every request's metadata and fails on cue
//! (which the real server cannot be made to do): the bearer token goes with
//! every attempt of every call, and authentication failures arrive typed
//! and are not retried. `WhoAmI` and `CheckAccess` against the real server,
//! with every authentication method, are in the workspace's
//! `tests/client_auth.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_client::{Access, Client, Error, Permission, RetryPolicy};
use sessiond_proto::v1 as pb;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What the scripted service saw and what it answers next.
#[derive(Default)]
struct Script {
    /// The metadata of every call, attempts included.
    seen: Mutex<Vec<MetadataMap>>,
    /// Every `CheckAccess` request.
    questions: Mutex<Vec<pb::CheckAccessRequest>>,
    /// Statuses the next calls fail with, first first.
    failures: Mutex<Vec<Status>>,
}

impl Script {
    /// Forgets the calls seen so far and the failures not yet answered.
    fn reset(&self) {
        self.failures.lock().unwrap().clear();
        self.seen.lock().unwrap().clear();
    }

    /// The next `times` calls fail with `status`.
    fn fail_next(&self, times: usize, status: &Status) {
        self.reset();
        let mut failures = self.failures.lock().unwrap();
        failures.extend(std::iter::repeat_n(status, times).cloned());
    }

    /// Records the call; its scripted failure, if any.
    fn answer<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.seen.lock().unwrap().push(request.metadata().clone());
        let mut failures = self.failures.lock().unwrap();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.remove(0))
        }
    }

    /// The `authorization` header of every call seen, in order.
    fn authorizations(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|m| {
                m.get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
            })
            .collect()
    }
}

/// The served side of a [`Script`]: "alice" of group "ops", by static
/// token, who may read any session and nothing else.
struct Scripted(Arc<Script>);

#[tonic::async_trait]
impl pb::access_service_server::AccessService for Scripted {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        self.0.answer(&request)?;
        Ok(Response::new(pb::WhoAmIResponse {
            subject: "alice".into(),
            groups: vec!["ops".into(), "auditors".into()],
            method: pb::AuthenticationMethod::StaticToken.into(),
            session_id: 0,
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
                "alice may not act as R50 in session 7".into()
            },
        }))
    }
}

/// Serves a scripted `AccessService` on an ephemeral port.
async fn scripted_server() -> (Arc<Script>, String) {
    let script = Arc::new(Script::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service =
        pb::access_service_server::AccessServiceServer::new(Scripted(Arc::clone(&script)));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (script, endpoint)
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

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn the_bearer_token_is_sent_with_every_attempt_of_every_call() {
    let (script, endpoint) = scripted_server().await;
    let client = Client::builder()
        .bearer_token("s3cret-t0ken")
        .retry(quick_retries(4))
        .connect(&endpoint)
        .await
        .unwrap();
    let bearer = Some("Bearer s3cret-t0ken".to_owned());

    script.fail_next(3, &Status::unavailable("connection reset"));
    client.who_am_i().await.unwrap();
    assert_eq!(
        script.authorizations(),
        vec![bearer.clone(); 4],
        "the first attempt and three retries"
    );

    script.fail_next(2, &Status::unavailable("connection reset"));
    client
        .check_access(&Access::new(Permission::ReadAudit))
        .await
        .unwrap();
    assert_eq!(script.authorizations(), vec![bearer.clone(); 3]);

    // Clones share the credential; a client without a token sends none.
    script.reset();
    client
        .with_timeout(Duration::from_secs(5))
        .who_am_i()
        .await
        .unwrap();
    Client::connect(&endpoint)
        .await
        .unwrap()
        .who_am_i()
        .await
        .unwrap();
    assert_eq!(script.authorizations(), [bearer, None]);
}

#[tokio::test]
async fn authentication_failures_arrive_typed_and_are_not_retried() {
    let (script, endpoint) = scripted_server().await;
    let client = Client::builder()
        .bearer_token("expired")
        .retry(quick_retries(4))
        .connect(&endpoint)
        .await
        .unwrap();

    script.fail_next(
        10,
        &sessiond_status(
            Code::Unauthenticated,
            "the bearer token has expired",
            "UNAUTHENTICATED",
            &[],
        ),
    );
    let error = client.who_am_i().await.unwrap_err();
    assert!(
        matches!(error, Error::Unauthenticated { ref message } if message == "the bearer token has expired"),
        "{error:?}"
    );
    assert_eq!(error.code(), Some(Code::Unauthenticated));
    assert_eq!(error.reason(), Some("UNAUTHENTICATED"));
    assert_eq!(
        error.to_string(),
        "unauthenticated: the bearer token has expired"
    );
    assert_eq!(script.authorizations().len(), 1, "not retried");

    script.fail_next(
        10,
        &sessiond_status(
            Code::PermissionDenied,
            "alice may not read the audit trail",
            "PERMISSION_DENIED",
            &[("permission", "read_audit"), ("subject", "alice")],
        ),
    );
    let error = client
        .check_access(&Access::new(Permission::ReadAudit))
        .await
        .unwrap_err();
    let Error::PermissionDenied {
        ref permission,
        ref subject,
        session_id,
        ..
    } = error
    else {
        panic!("expected PermissionDenied, got {error:?}");
    };
    assert_eq!(
        (permission.as_str(), subject.as_str(), session_id),
        ("read_audit", "alice", None)
    );
    assert_eq!(
        error.to_string(),
        "permission denied: alice may not read the audit trail"
    );
    assert_eq!(script.authorizations().len(), 1, "not retried");
}

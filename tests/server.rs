//! The server around the services: health (overall and per service),
//! reflection v1 (v1alpha is exercised from Python) including the error
//! model's types, the message-size limit, and what a shutdown ends.

mod common;

use common::TestServer;
use prost::Message;
use prost_types::FileDescriptorProto;
use sessiond_proto::v1::OpenClientlessSessionRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_reports_serving_overall_and_per_service() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "sessiond.v1.SessionService",
        "sessiond.v1.UserContextService",
        "sessiond.v1.AccessService",
        "sessiond.v1.AuditService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_lists_both_services_and_health() {
    let server = TestServer::start().await;
    let response = reflect(&server, MessageRequest::ListServices(String::new())).await;
    let MessageResponse::ListServicesResponse(list) = response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "sessiond.v1.SessionService",
        "sessiond.v1.UserContextService",
        "sessiond.v1.AccessService",
        "sessiond.v1.AuditService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// Asks `server`'s reflection v1 one question.
async fn reflect(server: &TestServer, request: MessageRequest) -> MessageResponse {
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    response.message_response.expect("a reflection answer")
}

/// The file reflection names for `request` (a symbol or a file name).
async fn reflected_file(server: &TestServer, request: MessageRequest) -> FileDescriptorProto {
    let asked = format!("{request:?}");
    let MessageResponse::FileDescriptorResponse(files) = reflect(server, request).await else {
        panic!("no file for {asked}");
    };
    FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).unwrap()
}

#[tokio::test]
async fn reflection_serves_the_error_model_and_the_google_rpc_detail_types() {
    let server = TestServer::start().await;

    // The types of an error status's details, so that reflection-only
    // clients (grpcurl) can decode them, with every file they import.
    for (symbol, file, message) in [
        (
            "google.rpc.ErrorInfo",
            "google/rpc/error_details.proto",
            "ErrorInfo",
        ),
        (
            "google.rpc.BadRequest",
            "google/rpc/error_details.proto",
            "BadRequest",
        ),
        ("google.rpc.Status", "google/rpc/status.proto", "Status"),
    ] {
        let found = reflected_file(
            &server,
            MessageRequest::FileContainingSymbol(symbol.to_owned()),
        )
        .await;
        assert_eq!(found.name(), file, "{symbol}");
        assert_eq!(found.package(), "google.rpc");
        assert!(
            found.message_type.iter().any(|m| m.name() == message),
            "{file} defines {message}"
        );
        for dependency in &found.dependency {
            let imported =
                reflected_file(&server, MessageRequest::FileByFilename(dependency.clone())).await;
            assert_eq!(imported.name(), dependency.as_str());
        }
    }
    let details = reflected_file(
        &server,
        MessageRequest::FileContainingSymbol("google.rpc.ErrorInfo".to_owned()),
    )
    .await;
    let error_info = details
        .message_type
        .iter()
        .find(|m| m.name() == "ErrorInfo")
        .unwrap();
    let fields: Vec<_> = error_info.field.iter().map(|f| f.name()).collect();
    assert_eq!(fields, ["reason", "domain", "metadata"]);

    // The list of reasons, with its documentation.
    let reasons = reflected_file(
        &server,
        MessageRequest::FileContainingSymbol("sessiond.v1.ErrorReason".to_owned()),
    )
    .await;
    assert_eq!(reasons.name(), "sessiond/v1/error_reason.proto");
    let error_reason = &reasons.enum_type[0];
    assert_eq!(error_reason.name(), "ErrorReason");
    let values: Vec<_> = error_reason.value.iter().map(|v| v.name()).collect();
    assert_eq!(values[0], "ERROR_REASON_UNSPECIFIED");
    assert!(
        values.contains(&"ERROR_REASON_OWNER_UNAVAILABLE"),
        "{values:?}"
    );
    let comments = reasons.source_code_info.as_ref().map_or(0, |info| {
        info.location
            .iter()
            .filter(|l| l.leading_comments.is_some())
            .count()
    });
    assert!(comments > values.len(), "every value is documented");
}

#[tokio::test]
async fn an_oversized_request_is_refused_and_the_server_keeps_serving() {
    let server = TestServer::start_with(|config| config.max_message_bytes = 64 * 1024).await;
    let mut sessions = server.sessions().await;
    let huge = OpenClientlessSessionRequest {
        user: "x".repeat(256 * 1024),
    };
    let status = sessions.open_clientless_session(huge).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .expect("a normal request still succeeds");
}

/// A module that runs until the test releases it.
#[derive(Clone, Debug, Default)]
struct Held(std::sync::Arc<tokio::sync::Notify>);

#[sessiond::modules::async_trait]
impl sessiond::modules::Module for Held {
    async fn run(
        &self,
        _ctx: sessiond::modules::ModuleContext,
    ) -> Result<serde_json::Value, sessiond::model::ModuleFailure> {
        self.0.notified().await;
        Ok(serde_json::Value::Null)
    }
}

/// At shutdown a health `Watch` ends with UNAVAILABLE instead of holding
/// the drain for its whole timeout, and the listening socket closes at
/// once: while the shutdown waits for a running module, a new connection
/// is refused rather than accepted and never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_health_watches_and_refuses_new_connections() {
    let held = Held::default();
    let server = TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| {
            config.drain_timeout = std::time::Duration::from_secs(60);
            config.shutdown_grace = std::time::Duration::from_secs(60);
        },
        {
            let held = held.clone();
            |builder| builder.module("held", held)
        },
    )
    .await;
    let addr = server.addr;
    let mut sessions = server.sessions().await;
    let session_id = sessions
        .open_clientless_session(OpenClientlessSessionRequest {
            user: "R41".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    sessions
        .open_module(sessiond_proto::v1::OpenModuleRequest {
            session_id,
            module_id: "held".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopping = tokio::spawn(server.stop());
    let status = loop {
        match watch.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the watch ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // The shutdown waits for the held module; meanwhile nobody connects.
    common::eventually("the listening socket to close", || async move {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "the module still holds the shutdown"
    );
    held.0.notify_waiters();
    tokio::time::timeout(std::time::Duration::from_secs(45), stopping)
        .await
        .expect("the server stopped once its module concluded")
        .unwrap();
}

/// A shutdown racing many opens: every session whose open was
/// acknowledged is ended by the shutdown (`SERVER_SHUTDOWN`), none is left
/// for the next start to end as `SERVER_RESTART` (the reason for a crash).
/// Opens that reach the server once its shutdown started are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_every_session_whose_open_was_acknowledged() {
    use sessiond::model::{EndReason, SessionId};
    use sessiond::store::{SessionStore, SqliteStore};
    use std::sync::{Arc, Mutex};

    let server = TestServer::start_with(|config| config.max_open_sessions_per_user = None).await;
    let channel = server.channel().await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let openers: Vec<_> = (0..16)
        .map(|_| {
            let mut sessions =
                sessiond_proto::v1::session_service_client::SessionServiceClient::new(
                    channel.clone(),
                );
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                let request = || OpenClientlessSessionRequest {
                    user: "R41".to_owned(),
                };
                while let Ok(opened) = sessions.open_clientless_session(request()).await {
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(opened.into_inner().session_id);
                }
            })
        })
        .collect();
    common::eventually("opens to be under way", || {
        let opened = acknowledged.lock().unwrap().len();
        async move { (opened >= 64).then_some(()) }
    })
    .await;

    let dir = server.stop().await;
    for opener in openers {
        opener.await.unwrap();
    }
    let store = SqliteStore::open(dir.path().join("sessiond.db"))
        .await
        .unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    for id in acknowledged {
        let session = store.session(SessionId::from_store(id)).await.unwrap();
        assert_eq!(
            session.end_reason,
            Some(EndReason::ServerShutdown),
            "session {id} was acknowledged and not ended by the shutdown: {session:?}"
        );
    }
}

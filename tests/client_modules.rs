//! The client's module methods end to end: the seed's `ClientlessSession`
//! example through the guard, and each typed module error, against a real
//! server running real exec modules.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use sessiond_client::{Client, EndReason, Error, ModuleFailureKind, SessionState};

/// A server with the example modules plus two of the test's own.
async fn server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let manifest = dir.path().join("modules.toml");
    let mut text = std::fs::read_to_string(examples.join("modules.toml"))
        .unwrap()
        .replace("modules/", &format!("{}/modules/", examples.display()));
    text.push_str(
        "[modules.broken]\ncommand = [\"sh\", \"-c\", \"echo 'disk full' >&2; exit 4\"]\n",
    );
    std::fs::write(&manifest, text).unwrap();
    TestServer::build_in(dir, |config| config.modules = Some(manifest), |b| b).await
}

#[tokio::test]
async fn the_seed_example_through_the_guard() {
    let server = server().await;
    let client = Client::connect(server.endpoint()).await.unwrap();

    // with utilities.ClientlessSession('R41') as session:
    let session = client.clientless_session("R41").await.unwrap();
    //     session.open_module(module_id='100000')
    session.open_module("100000").await.unwrap();
    //     data = session.get_return_value(module_id='100000', timeout=5)
    let data = session
        .get_return_value("100000", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(data["user"], "R41");
    assert_eq!(data["module"], "100000");
    let ended = session.close().await.unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByClient));
}

#[tokio::test]
async fn parameters_and_the_user_context_reach_the_module() {
    let server = server().await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("ADMIN").await.unwrap();
    let scope = session.user_context("R41").await.unwrap();
    session
        .open_module_with("100000", json!({"title": "Mine"}))
        .await
        .unwrap();
    let data = session
        .get_return_value("100000", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(data["title"], "Mine");
    assert_eq!(data["user"], "ADMIN");
    assert_eq!(data["acting_user"], "R41");
    scope.restore().await.unwrap();
    session.close().await.unwrap();
}

#[tokio::test]
async fn module_errors_arrive_typed() {
    let server = server().await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("R41").await.unwrap();

    let error = session.open_module("no-such-module").await.unwrap_err();
    assert!(
        matches!(error, Error::ModuleNotFound { ref module_id } if module_id == "no-such-module"),
        "{error:?}"
    );

    let error = session
        .get_return_value("100000", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ModuleNotOpened { .. }), "{error:?}");

    session.open_module("broken").await.unwrap();
    let error = session
        .get_return_value("broken", Duration::from_secs(10))
        .await
        .unwrap_err();
    let Error::ModuleFailed { failure, .. } = error else {
        panic!("expected ModuleFailed, got {error:?}");
    };
    assert_eq!(failure.kind, Some(ModuleFailureKind::ExitStatus));
    assert_eq!(failure.exit_code, Some(4));
    assert!(failure.stderr_tail.contains("disk full"), "{failure:?}");

    session
        .open_module_with("slow", json!({"seconds": 30}))
        .await
        .unwrap();
    let error = session
        .get_return_value("slow", Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ModuleStillRunning { .. }),
        "{error:?}"
    );
    // Closing with a short grace cancels the slow run.
    let ended = client
        .close_clientless_session(session.id(), Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    let error = client
        .get_return_value(session.id(), "slow", Duration::ZERO)
        .await
        .unwrap_err();
    let Error::ModuleFailed { failure, .. } = error else {
        panic!("expected ModuleFailed, got {error:?}");
    };
    assert_eq!(failure.kind, Some(ModuleFailureKind::Cancelled));
    drop(session);
}

//! What cannot be decoded: a request that is not the protobuf its method
//! takes, or nests deeper than protobuf decoders allow, is the caller's
//! mistake (INVALID_ARGUMENT, changing nothing), not the server's; and a
//! module's value that clients could not decode is refused when its run
//! concludes, so that every value stored can be read.

mod common;

use std::time::Duration;

use common::{TestServer, assert_error, violated_fields};
use prost_types::value::Kind;
use sessiond_client::{Client, Error, ModuleFailureKind};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::{
    GetReturnValueRequest, OpenClientlessSessionRequest, OpenModuleRequest, OpenModuleResponse,
};
use tonic::Code;

/// `OpenModuleRequest` with its field 1, `session_id` (an int64), sent as
/// a string: bytes the server cannot decode as the request.
#[derive(Clone, PartialEq, prost::Message)]
struct MistypedOpenModule {
    /// Not a string in the contract.
    #[prost(string, tag = "1")]
    session_id: String,
}

/// A `Struct` nested `levels` deep: `{"x": {"x": … {}}}`.
fn nested_struct(levels: usize) -> prost_types::Struct {
    (0..levels).fold(prost_types::Struct::default(), |inner, _| {
        let value = prost_types::Value {
            kind: Some(Kind::StructValue(inner)),
        };
        prost_types::Struct {
            fields: [("x".to_owned(), value)].into(),
        }
    })
}

async fn open_session(sessions: &mut SessionServiceClient<tonic::transport::Channel>) -> i64 {
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id
}

#[tokio::test]
async fn bytes_that_are_not_the_request_are_an_invalid_argument() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<MistypedOpenModule, OpenModuleResponse>::default();
    let sent = grpc
        .unary(
            tonic::Request::new(MistypedOpenModule {
                session_id: "seven".into(),
            }),
            http::uri::PathAndQuery::from_static("/sessiond.v1.SessionService/OpenModule"),
            codec,
        )
        .await;
    let status = assert_error(sent, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["session_id"]);
}

#[tokio::test]
async fn parameters_nested_forty_deep_are_an_invalid_argument_and_start_nothing() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions).await;
    let sent = sessions
        .open_module(OpenModuleRequest {
            session_id,
            module_id: "100000".into(),
            parameters: Some(nested_struct(40)),
        })
        .await;
    let status = assert_error(sent, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["parameters"]);
    let read = sessions
        .get_return_value(GetReturnValueRequest {
            session_id,
            module_id: "100000".into(),
            timeout: None,
        })
        .await;
    assert_error(read, Code::NotFound, "MODULE_NOT_OPENED");
}

/// `levels` arrays (or objects), one inside the other, around a number, as
/// JSON text.
fn nested_json(levels: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"x\":", "}") } else { ("[", "]") };
    format!("{}1{}", open.repeat(levels), close.repeat(levels))
}

#[tokio::test]
async fn a_value_clients_could_not_decode_is_refused_and_the_deepest_allowed_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let too_deep = dir.path().join("too-deep.json");
    std::fs::write(&too_deep, nested_json(51, false)).unwrap();
    let deepest = dir.path().join("deepest.json");
    let deepest_json = nested_json(sessiond::model::MAX_VALUE_DEPTH, true);
    std::fs::write(&deepest, &deepest_json).unwrap();
    let manifest = dir.path().join("modules.toml");
    std::fs::write(
        &manifest,
        format!(
            "[modules.too-deep]\ncommand = [\"cat\", {:?}]\n[modules.deepest]\ncommand = [\"cat\", {:?}]\n",
            too_deep.display().to_string(),
            deepest.display().to_string()
        ),
    )
    .unwrap();
    let server = TestServer::build_in(dir, |config| config.modules = Some(manifest), |b| b).await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("R41").await.unwrap();

    session.open_module("too-deep").await.unwrap();
    let refused = session
        .get_return_value("too-deep", Duration::from_secs(20))
        .await;
    let Err(Error::ModuleFailed { failure, .. }) = refused else {
        panic!("a value 51 deep should fail its run, got {refused:?}");
    };
    assert_eq!(failure.kind, Some(ModuleFailureKind::InvalidOutput));

    session.open_module("deepest").await.unwrap();
    let value = session
        .get_return_value("deepest", Duration::from_secs(20))
        .await
        .expect("a value as deep as allowed is read back");
    let expected: serde_json::Value = serde_json::from_str(&deepest_json).unwrap();
    assert_eq!(value, expected);
}

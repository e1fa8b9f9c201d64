//! Arbitrary bytes as the request of any method: every method of the four
//! services, a codec that sends bytes as they are, and what a call that
//! was accepted started (a module run, to be waited for).

use std::time::Duration;

use bytes::{Buf, BufMut};
use prost::Message;
use sessiond_proto::v1::OpenModuleRequest;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// One method of the contract.
#[derive(Debug)]
pub struct Method {
    /// Its name, for messages.
    pub name: &'static str,
    /// Its gRPC path.
    pub path: &'static str,
    /// Whether it answers with a stream.
    pub streaming: bool,
    /// Whether it only reads (so that even its success changes nothing).
    pub read_only: bool,
}

const fn method(name: &'static str, path: &'static str, read_only: bool) -> Method {
    Method {
        name,
        path,
        streaming: false,
        read_only,
    }
}

/// Every method of `proto/sessiond/v1`.
pub const METHODS: [Method; 20] = [
    method(
        "GetSessionUser",
        "/sessiond.v1.SessionService/GetSessionUser",
        true,
    ),
    method(
        "GetSessionInfo",
        "/sessiond.v1.SessionService/GetSessionInfo",
        true,
    ),
    method(
        "ListSessions",
        "/sessiond.v1.SessionService/ListSessions",
        true,
    ),
    method(
        "StartSession",
        "/sessiond.v1.SessionService/StartSession",
        false,
    ),
    method(
        "TouchSession",
        "/sessiond.v1.SessionService/TouchSession",
        false,
    ),
    method(
        "EndSession",
        "/sessiond.v1.SessionService/EndSession",
        false,
    ),
    method(
        "OpenClientlessSession",
        "/sessiond.v1.SessionService/OpenClientlessSession",
        false,
    ),
    method(
        "CloseClientlessSession",
        "/sessiond.v1.SessionService/CloseClientlessSession",
        false,
    ),
    method(
        "OpenModule",
        "/sessiond.v1.SessionService/OpenModule",
        false,
    ),
    method(
        "GetReturnValue",
        "/sessiond.v1.SessionService/GetReturnValue",
        true,
    ),
    Method {
        name: "WatchSessions",
        path: "/sessiond.v1.SessionService/WatchSessions",
        streaming: true,
        read_only: true,
    },
    method(
        "GetUserContext",
        "/sessiond.v1.UserContextService/GetUserContext",
        true,
    ),
    method(
        "SetUserContext",
        "/sessiond.v1.UserContextService/SetUserContext",
        false,
    ),
    method(
        "PushUserContext",
        "/sessiond.v1.UserContextService/PushUserContext",
        false,
    ),
    method(
        "PopUserContext",
        "/sessiond.v1.UserContextService/PopUserContext",
        false,
    ),
    method("WhoAmI", "/sessiond.v1.AccessService/WhoAmI", true),
    method(
        "CheckAccess",
        "/sessiond.v1.AccessService/CheckAccess",
        true,
    ),
    method("ListEvents", "/sessiond.v1.AuditService/ListEvents", true),
    method(
        "VerifyLedger",
        "/sessiond.v1.AuditService/VerifyLedger",
        true,
    ),
    method(
        "GetCheckpoint",
        "/sessiond.v1.AuditService/GetCheckpoint",
        true,
    ),
];

/// Sends `body` as the request of `method`. For a stream, its first
/// message (or its end) within a moment is the answer; then it is dropped.
pub async fn send(channel: Channel, method: &Method, body: &[u8]) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .unwrap_or_else(|e| panic!("the connection to the server failed: {e}"));
    let path = http::uri::PathAndQuery::from_static(method.path);
    let request = tonic::Request::new(body.to_vec());
    if !method.streaming {
        return grpc.unary(request, path, Bytes).await.map(drop);
    }
    let watch = async {
        let mut stream = grpc
            .server_streaming(request, path, Bytes)
            .await?
            .into_inner();
        stream.message().await.map(drop)
    };
    // Its first answer (the headers, a message or the end) within a moment;
    // a watch with nothing to say yet is dropped.
    tokio::time::timeout(Duration::from_millis(100), watch)
        .await
        .unwrap_or(Ok(()))
}

/// The session and module of the run an accepted `body` of `method`
/// started, if it started one.
pub fn opened_module(method: &Method, body: &[u8]) -> Option<(i64, String)> {
    if method.name != "OpenModule" {
        return None;
    }
    let request = OpenModuleRequest::decode(body).ok()?;
    Some((request.session_id, request.module_id))
}

/// A codec that sends and receives bytes as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bytes;

impl Codec for Bytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for Bytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Bytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

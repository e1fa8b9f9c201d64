//! Requests that cannot be decoded are the caller's mistake: INVALID_ARGUMENT
//! with the contract's ErrorInfo, not INTERNAL.
//!
//! tonic decodes a request before any handler sees it, and answers a
//! message that is not valid protobuf — bad bytes, a truncated frame, no
//! message, or a message nested deeper than the 100 levels prost (like
//! protobuf's C++ and Python decoders) allows — with a bare INTERNAL, a
//! code the contract keeps for bugs. The layer here, in front of every
//! service, turns those answers into [`Error::InvalidArgument`]: reason
//! `INVALID_ARGUMENT`, one field violation naming the request's field the
//! decoder stopped in (empty when it stopped in the request itself).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::model::{Error, FieldViolation};

/// How prost's decode errors start (`prost::DecodeError`'s `Display`).
const PROST_DECODE_ERROR: &str = "failed to decode Protobuf message: ";

/// tonic's own messages for a request frame it could not read.
const FRAME_ERRORS: [&str; 3] = [
    "Unexpected EOF decoding stream.",
    "Missing request message.",
    "protocol error:",
];

/// The layer (see the module's documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct MalformedRequestLayer;

impl<S> Layer<S> for MalformedRequestLayer {
    type Service = MalformedRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MalformedRequests { inner }
    }
}

/// A service whose answers to undecodable requests are INVALID_ARGUMENT.
#[derive(Clone, Debug)]
pub struct MalformedRequests<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for MalformedRequests<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(match undecodable(&response) {
                Some(violation) => {
                    Status::from(Error::InvalidArgument(vec![violation])).into_http()
                }
                None => response,
            })
        })
    }
}

/// The violation an answer reports, when it is tonic's INTERNAL for a
/// request it could not decode (a trailers-only answer whose status has no
/// details: every INTERNAL of sessiond's own carries an ErrorInfo).
fn undecodable(response: &Response<Body>) -> Option<FieldViolation> {
    let headers = response.headers();
    if headers.get("grpc-status").map(http::HeaderValue::as_bytes) != Some(b"13")
        || headers.contains_key("grpc-status-details-bin")
    {
        return None;
    }
    let status = Status::from_header_map(headers)?;
    if status.code() != Code::Internal {
        return None;
    }
    let message = status.message();
    if let Some(error) = message.strip_prefix(PROST_DECODE_ERROR) {
        return Some(decode_violation(error));
    }
    FRAME_ERRORS
        .iter()
        .any(|prefix| message.starts_with(prefix))
        .then(|| FieldViolation::new("", "the request is not a complete protobuf message"))
}

/// The violation of a prost decode error (after its prefix): `Inner.field:
/// … Request.field: what went wrong`, the path innermost first.
fn decode_violation(error: &str) -> FieldViolation {
    let mut path = Vec::new();
    let mut rest = error;
    while let Some((segment, after)) = rest.split_once(": ")
        && let Some((message, field)) = segment.split_once('.')
        && is_name(message)
        && is_name(field)
    {
        path.push(field);
        rest = after;
    }
    let description = if rest == "recursion limit reached" {
        "is nested deeper than the 100 levels protobuf decoders allow".to_owned()
    } else {
        format!("cannot be decoded: {rest}")
    };
    FieldViolation::new(path.last().copied().unwrap_or_default(), description)
}

/// Whether `text` is a protobuf message or field name.
fn is_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_violation_names_the_requests_own_field() {
        let deep = decode_violation(
            "Value.kind: Struct.fields: Value.kind: OpenModuleRequest.parameters: \
             recursion limit reached",
        );
        assert_eq!(deep.field, "parameters");
        assert!(deep.description.contains("nested deeper"), "{deep:?}");
        let mistyped = decode_violation(
            "OpenModuleRequest.session_id: invalid wire type: LengthDelimited (expected Varint)",
        );
        assert_eq!(mistyped.field, "session_id");
        assert!(
            mistyped
                .description
                .ends_with("invalid wire type: LengthDelimited (expected Varint)"),
            "{mistyped:?}"
        );
        let garbage = decode_violation("invalid wire type value: 7");
        assert_eq!(garbage.field, "");
        assert!(
            garbage.description.contains("invalid wire type"),
            "{garbage:?}"
        );
    }
}

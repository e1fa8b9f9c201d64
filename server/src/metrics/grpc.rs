//! The gRPC calls' metrics, as go-grpc-prometheus names them:
//! `grpc_server_started_total`, `grpc_server_handled_total` (with
//! `grpc_code`) and the `grpc_server_handling_seconds` histogram, labelled
//! `grpc_type`, `grpc_service` and `grpc_method`.
//!
//! Every method of the served services is known from their descriptor sets
//! and its series exist from the start (started and each code at 0), as
//! go-grpc-prometheus's `InitializeMetrics` does; a path that names no
//! served method counts as service and method `unknown`, so that callers
//! cannot make series up. A call's code is read from the response headers
//! when it answers trailers-only (most errors), else from its trailers; a
//! call whose response is dropped before its trailers (the caller went
//! away) counts as `Canceled`. Handling time runs from the request to the
//! status, the whole stream for a streaming call.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use http_body::{Body as HttpBody, Frame};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message;
use tonic::body::Body;
use tower::{Layer, Service};

use super::SECONDS_BUCKETS;

/// gRPC's codes as go-grpc-prometheus spells them (Go's `codes.Code`
/// strings), by number.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const CANCELLED: usize = 1;
const UNKNOWN: usize = 2;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

/// The three families, registered.
#[derive(Debug)]
pub struct GrpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl GrpcMetrics {
    /// Registers the families in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let started = Family::<MethodLabels, Counter>::default();
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            started.clone(),
        );
        let handled = Family::<HandledLabels, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            handled.clone(),
        );
        let seconds: Family<MethodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(SECONDS_BUCKETS));
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level \
             handled by the server.",
            seconds.clone(),
        );
        Self {
            started,
            handled,
            seconds,
        }
    }

    /// The layer that counts the calls to the methods that the encoded
    /// `FileDescriptorSet`s in `descriptor_sets` declare.
    #[must_use]
    pub fn layer(&self, descriptor_sets: &[&[u8]]) -> GrpcMetricsLayer {
        let mut methods = HashMap::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    for method in &service.method {
                        let grpc_type = match (method.client_streaming(), method.server_streaming())
                        {
                            (false, false) => "unary",
                            (false, true) => "server_stream",
                            (true, false) => "client_stream",
                            (true, true) => "bidi_stream",
                        };
                        let path = format!("/{service_name}/{}", method.name());
                        let labels = MethodLabels {
                            grpc_type,
                            grpc_service: service_name.clone(),
                            grpc_method: method.name().to_owned(),
                        };
                        methods.insert(path, Arc::new(self.method(&labels)));
                    }
                }
            }
        }
        let unknown = Arc::new(self.method(&MethodLabels {
            grpc_type: "unary",
            grpc_service: "unknown".to_owned(),
            grpc_method: "unknown".to_owned(),
        }));
        GrpcMetricsLayer {
            methods: Arc::new(Methods { methods, unknown }),
        }
    }

    /// One method's series, created at 0.
    fn method(&self, labels: &MethodLabels) -> MethodMetrics {
        let handled = CODES.map(|code| {
            self.handled.get_or_create_owned(&HandledLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service.clone(),
                grpc_method: labels.grpc_method.clone(),
                grpc_code: code,
            })
        });
        MethodMetrics {
            started: self.started.get_or_create_owned(labels),
            handled,
            seconds: self.seconds.get_or_create_owned(labels),
        }
    }
}

/// One method's series, looked up once per call by its path.
#[derive(Debug)]
struct MethodMetrics {
    started: Counter,
    handled: [Counter; 17],
    seconds: Histogram,
}

#[derive(Debug)]
struct Methods {
    methods: HashMap<String, Arc<MethodMetrics>>,
    unknown: Arc<MethodMetrics>,
}

/// The layer in front of every service that counts calls.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    methods: Arc<Methods>,
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            methods: Arc::clone(&self.methods),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    methods: Arc<Methods>,
}

impl<S> Service<Request<Body>> for GrpcMetricsService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = Arc::clone(
            self.methods
                .methods
                .get(request.uri().path())
                .unwrap_or(&self.methods.unknown),
        );
        method.started.inc();
        let call = Call {
            method,
            began: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let Some(code) = status_of(response.headers()) {
                // Trailers-only: the call is over.
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Observed {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// A call under way.
#[derive(Debug)]
struct Call {
    method: Arc<MethodMetrics>,
    began: Instant,
}

impl Call {
    fn finish(self, code: usize) {
        self.method.handled[code.min(CODES.len() - 1)].inc();
        self.method
            .seconds
            .observe(self.began.elapsed().as_secs_f64());
    }
}

/// The `grpc-status` of headers or trailers, as an index into [`CODES`]
/// (an unreadable one is `Unknown`).
fn status_of(headers: &http::HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
            .filter(|&code| code < CODES.len())
            .unwrap_or(UNKNOWN),
    )
}

/// A response body that reports its call's code when its trailers pass, or
/// `Canceled` when it is dropped before.
struct Observed {
    inner: Body,
    call: Option<Call>,
}

impl HttpBody for Observed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = self.call.take()
                {
                    call.finish(status_of(trailers).unwrap_or(UNKNOWN));
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.finish(UNKNOWN);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(CANCELLED);
        }
    }
}

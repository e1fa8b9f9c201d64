//! `--otlp-endpoint`: the real binary exports its spans over OTLP/gRPC to
//! a collector this test runs; a caller's W3C `traceparent` is continued
//! (the call's span is its child) and the call's own span is handed to the
//! exec module it starts (`TRACEPARENT`).

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Request;

use super::common::{ServerProcess, database_url, eventually};

/// The caller's trace, and its span.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// A collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn traced<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    request
}

#[tokio::test]
async fn a_callers_trace_is_continued_exported_and_handed_to_modules() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules.toml");
    std::fs::write(
        &modules,
        "[modules.trace]\ncommand = [\"sh\", \"-c\", 'printf \"\\\"%s\\\"\" \"$TRACEPARENT\"']\n\
         timeout = \"30s\"\n",
    )
    .unwrap();
    let endpoint = format!("http://{collector_addr}");
    let server = ServerProcess::spawn_with_env(
        &database_url(dir.path()),
        &[
            "--otlp-endpoint",
            &endpoint,
            "--modules",
            modules.to_str().unwrap(),
        ],
        // Export batches at once rather than every 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let mut sessions = SessionServiceClient::connect(server.endpoint())
        .await
        .unwrap();
    let id = sessions
        .open_clientless_session(traced(pb::OpenClientlessSessionRequest {
            user: "R41".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .session_id;
    sessions
        .open_module(traced(pb::OpenModuleRequest {
            session_id: id,
            module_id: "trace".into(),
            parameters: None,
        }))
        .await
        .unwrap();
    let value = sessions
        .get_return_value(pb::GetReturnValueRequest {
            session_id: id,
            module_id: "trace".into(),
            timeout: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(value) = value.value else {
        panic!("the module failed: {value:?}");
    };
    let Some(prost_types::value::Kind::StringValue(module_traceparent)) = value.kind else {
        panic!("not a string: {value:?}");
    };
    // The module continues the caller's trace, as a child of the server's
    // span of OpenModule (not of the caller's span).
    let parts: Vec<&str> = module_traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{module_traceparent}");
    assert_eq!(parts[1], TRACE_ID);
    assert_ne!(parts[2], CALLER_SPAN);
    let module_parent = parts[2].to_owned();

    let spans = eventually("the calls' spans to be exported", || {
        let collector = collector.clone();
        let module_parent = module_parent.clone();
        async move {
            let spans = collector.0.lock().unwrap().clone();
            let exported = |name: &str| spans.iter().any(|span| span.name == name);
            (spans.iter().any(|span| hex(&span.span_id) == module_parent)
                && exported("sessiond.v1.SessionService/OpenClientlessSession")
                && exported("sessiond.v1.SessionService/GetReturnValue"))
            .then_some(spans)
        }
    })
    .await;
    let open = spans
        .iter()
        .find(|span| span.name == "sessiond.v1.SessionService/OpenClientlessSession")
        .expect("a span of OpenClientlessSession");
    assert_eq!(hex(&open.trace_id), TRACE_ID);
    assert_eq!(hex(&open.parent_span_id), CALLER_SPAN);
    let open_module = spans
        .iter()
        .find(|span| hex(&span.span_id) == module_parent)
        .unwrap();
    assert_eq!(open_module.name, "sessiond.v1.SessionService/OpenModule");
    assert_eq!(hex(&open_module.trace_id), TRACE_ID);
    assert_eq!(hex(&open_module.parent_span_id), CALLER_SPAN);
    // A call without a trace context starts a trace of its own.
    let untraced = spans
        .iter()
        .find(|span| span.name == "sessiond.v1.SessionService/GetReturnValue")
        .expect("a span of GetReturnValue");
    assert_ne!(hex(&untraced.trace_id), TRACE_ID);
    assert!(untraced.parent_span_id.is_empty());
}

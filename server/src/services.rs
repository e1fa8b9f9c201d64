//! What sessiond serves, assembled in one place for both listeners: the
//! services (sessiond's four, health, reflection v1 and v1alpha) with their
//! message-size limits, and the layers every call passes through — the
//! calls' metrics (when counted), authentication (refused calls recorded),
//! undecodable requests answered INVALID_ARGUMENT.
//!
//! The main listener serves them as gRPC ([`Served::routes`] behind
//! [`Served::layers`]); the admin listener serves the same routes behind the
//! same layers as gRPC-web for the web console ([`Served::grpc_web`]):
//! tonic-web turns each gRPC-web request into the gRPC request the layers
//! and services see, so that a call from the console is authenticated,
//! authorized, counted and recorded exactly as one from any other client.

use std::convert::Infallible;

use http::{Request, Response};
use sessiond_proto::v1::access_service_server::AccessServiceServer;
use sessiond_proto::v1::audit_service_server::AuditServiceServer;
use sessiond_proto::v1::session_service_server::SessionServiceServer;
use sessiond_proto::v1::user_context_service_server::UserContextServiceServer;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::layer::util::{Identity, Stack};
use tower::util::Either;
use tower::{Layer, Service, ServiceBuilder};

use crate::api::{AccessApi, AuditApi, MalformedRequestLayer, SessionApi, UserContextApi};
use crate::auth::layer::AuthLayer;
use crate::metrics::grpc::GrpcMetricsLayer;

/// The largest response message, in bytes.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The services the console calls, served as gRPC-web on the admin
/// listener (health and reflection are not).
const CONSOLE_SERVICES: [&str; 4] = [
    "sessiond.v1.SessionService",
    "sessiond.v1.UserContextService",
    "sessiond.v1.AccessService",
    "sessiond.v1.AuditService",
];

/// The layers in front of every service, outermost first: the calls'
/// metrics (when counted), authentication, undecodable requests.
pub type CallLayers = Stack<
    MalformedRequestLayer,
    Stack<AuthLayer, Stack<Either<GrpcMetricsLayer, Identity>, Identity>>,
>;

/// sessiond's four services, ready to serve.
#[derive(Debug)]
pub struct Apis {
    /// SessionService.
    pub session: SessionApi,
    /// UserContextService.
    pub user_context: UserContextApi,
    /// AccessService.
    pub access: AccessApi,
    /// AuditService.
    pub audit: AuditApi,
}

/// The services and the layers in front of them (see the module's
/// documentation).
#[derive(Clone, Debug)]
pub struct Served {
    routes: Routes,
    layers: CallLayers,
}

impl Served {
    /// `apis`, `health`, and reflection, accepting requests of up to
    /// `max_request` bytes, behind the calls' layers: `metrics` (when the
    /// calls are counted) and `auth`.
    pub fn new<H>(
        apis: Apis,
        health: H,
        max_request: usize,
        metrics: Option<GrpcMetricsLayer>,
        auth: AuthLayer,
    ) -> Self
    where
        H: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        H::Future: Send + 'static,
    {
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sessiond_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sessiond_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");
        let routes = Routes::new(
            SessionServiceServer::new(apis.session)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            UserContextServiceServer::new(apis.user_context)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            AccessServiceServer::new(apis.access)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            AuditServiceServer::new(apis.audit)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
        let layers = ServiceBuilder::new()
            .layer(tower::util::option_layer(metrics))
            .layer(auth)
            .layer(MalformedRequestLayer)
            .into_inner();
        Self { routes, layers }
    }

    /// The services, for the gRPC listener (behind [`Served::layers`]).
    #[must_use]
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// The layers every call passes through.
    #[must_use]
    pub fn layers(&self) -> CallLayers {
        self.layers.clone()
    }

    /// The console's services as gRPC-web (HTTP/1.1 or 2, binary or text),
    /// behind the same layers, for the admin listener: one route per
    /// service, `/sessiond.v1.SessionService/{method}` and so on.
    pub fn grpc_web(&self) -> axum::Router {
        let service = GrpcWebLayer::new().layer(self.layers.layer(self.routes.clone()));
        CONSOLE_SERVICES
            .iter()
            .fold(axum::Router::new(), |router, name| {
                router.route_service(&format!("/{name}/{{method}}"), service.clone())
            })
    }
}

//! The layer in front of every service. It finds out who sent each request
//! and stores the [`Principal`] in the request's extensions (where
//! [`crate::principal::of`] finds it), or answers UNAUTHENTICATED /
//! `UNAUTHENTICATED` without calling the service; runs the service inside
//! the call's [`Cause`] (so that the events a call causes name its caller,
//! address and request id); and records every refused call —
//! UNAUTHENTICATED or PERMISSION_DENIED, from here or from a service — in
//! the event log ([`Refusals`]). Without authentication every caller is
//! [`Principal::Anonymous`].
//!
//! Where the caller comes from, first match wins:
//! 1. health (always) and reflection (unless a credential is required for
//!    it) need none;
//! 2. a forwarded call whose caller another replica stated and signed with
//!    the cluster secret ([`super::forwarded`]);
//! 3. `authorization: Bearer TOKEN`: a module run's token
//!    ([`super::runs`]), a static token ([`super::tokens`]), or a JWT
//!    ([`super::jwt`]); a bearer token that none of them accepts is refused,
//!    whatever else the call carries;
//! 4. the TLS client certificate, verified by the TLS handshake against
//!    the client CA ([`super::tls`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic_types::StatusExt;
use tower::{Layer, Service};

use super::forwarded::{ClusterKey, FORWARDED_IDENTITY, FORWARDED_SIGNATURE};
use super::jwt::{JwksSource, JwtSettings, JwtVerifier};
use super::runs::{RUN_TOKEN_PREFIX, RunCredentials};
use super::tokens::StaticTokens;
use super::{Rejection, tls};
use crate::config::security::SecurityConfig;
use crate::events::{Cause, Refusals};
use crate::model::{Error, Refusal, SessionId};
use crate::principal::{Identity, Method, Principal};
use crate::telemetry;

/// Paths that never need a credential: gRPC health.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
/// Paths of gRPC reflection (v1 and v1alpha).
const REFLECTION_PREFIX: &str = "/grpc.reflection.";

/// Who may call, and how they prove it.
#[derive(Debug)]
pub struct Authenticator {
    tokens: Option<StaticTokens>,
    jwt: Option<JwtVerifier>,
    client_certificates: bool,
    runs: RunCredentials,
    cluster: Option<ClusterKey>,
    reflection_requires_auth: bool,
}

impl Authenticator {
    /// The authenticator `config` describes (loading the tokens file and
    /// the JWKS), or `None` when it configures no authentication; module
    /// runs' credentials are looked up in `runs`.
    ///
    /// # Errors
    /// A message naming the file or URL that could not be used, and why.
    pub async fn from_config(
        config: &SecurityConfig,
        runs: RunCredentials,
    ) -> Result<Option<Self>, String> {
        if !config.authenticates() {
            return Ok(None);
        }
        let tokens = match &config.tokens {
            Some(path) => Some(StaticTokens::load(path).map_err(|error| error.to_string())?),
            None => None,
        };
        let jwt = match &config.jwt {
            Some(jwt) => {
                let mut settings = JwtSettings::new(
                    jwt.issuer.clone(),
                    jwt.audience.clone(),
                    JwksSource::parse(&jwt.jwks),
                );
                settings.subject_claim.clone_from(&jwt.subject_claim);
                settings.groups_claim.clone_from(&jwt.groups_claim);
                Some(JwtVerifier::new(settings).await?)
            }
            None => None,
        };
        let cluster = match &config.cluster_secret_file {
            Some(path) => Some(ClusterKey::load(path)?),
            None => None,
        };
        Ok(Some(Self {
            tokens,
            jwt,
            client_certificates: config
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_ca.is_some()),
            runs,
            cluster,
            reflection_requires_auth: config.reflection_requires_auth,
        }))
    }

    /// Who sent `request`: `None` for a path that needs no credential.
    ///
    /// # Errors
    /// [`Rejection`] saying what is wrong with the credential, or that there
    /// is none.
    pub async fn authenticate(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Arc<Identity>>, Rejection> {
        let path = request.uri.path();
        if path.starts_with(HEALTH_PREFIX)
            || (!self.reflection_requires_auth && path.starts_with(REFLECTION_PREFIX))
        {
            return Ok(None);
        }
        let headers = &request.headers;
        if let (Some(cluster), Some(identity), Some(signature)) = (
            &self.cluster,
            headers.get(FORWARDED_IDENTITY),
            headers.get(FORWARDED_SIGNATURE),
        ) && let (Ok(identity), Ok(signature)) = (identity.to_str(), signature.to_str())
            && let Some(caller) = cluster.verify(identity, signature)
        {
            return Ok(Some(Arc::new(caller)));
        }
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = bearer(value)?;
            return self.bearer(token).await.map(Some);
        }
        if self.client_certificates
            && let Some(subject) = tls::peer_subject(&request.extensions)
        {
            return Ok(Some(Arc::new(Identity {
                subject,
                groups: Vec::new(),
                method: Method::TlsClientCertificate,
                confined_to: None,
            })));
        }
        Err(Rejection(
            "this server requires a credential: `authorization: Bearer TOKEN` or a TLS client \
             certificate"
                .to_owned(),
        ))
    }

    /// Who a bearer token names. Each kind of token goes to its one
    /// verifier by its shape: a module run's by its prefix, a JWT by its
    /// three segments, anything else to the static tokens (whose prefix
    /// `sdt_` has no dots).
    async fn bearer(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        if token.starts_with(RUN_TOKEN_PREFIX) {
            return self.runs.verify(token).ok_or_else(|| {
                Rejection("the module run's credential is no longer valid".to_owned())
            });
        }
        if let Some(jwt) = &self.jwt
            && token.bytes().filter(|&b| b == b'.').count() == 2
        {
            return jwt.verify_identity(token).await;
        }
        self.tokens
            .as_ref()
            .and_then(|tokens| tokens.verify_identity(token))
            .ok_or_else(|| Rejection("the bearer token is not valid here".to_owned()))
    }
}

/// The token of an `authorization: Bearer TOKEN` header.
fn bearer(value: &http::HeaderValue) -> Result<&str, Rejection> {
    let malformed = || Rejection("the authorization header is not `Bearer TOKEN`".to_owned());
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

/// The layer in front of every service (see the module's documentation).
#[derive(Clone, Debug)]
pub struct AuthLayer {
    /// `None` without authentication.
    authenticator: Option<Arc<Authenticator>>,
    /// Where refused calls are recorded.
    refusals: Option<Refusals>,
}

impl AuthLayer {
    /// A layer authenticating with `authenticator` (every caller anonymous
    /// without one), recording refused calls in `refusals`.
    #[must_use]
    pub fn new(authenticator: Option<Arc<Authenticator>>, refusals: Option<Refusals>) -> Self {
        Self {
            authenticator,
            refusals,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose requests are authenticated first (see [`AuthLayer`]).
#[derive(Clone, Debug)]
pub struct Authenticated<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Service<Request<Body>> for Authenticated<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone is not ready; the one that was polled ready serves.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let authenticated = match &layer.authenticator {
                Some(authenticator) => authenticator.authenticate(&parts).await,
                None => Ok(None),
            };
            let principal = match authenticated {
                Ok(Some(identity)) => Principal::Authenticated(identity),
                Ok(None) => Principal::Anonymous,
                Err(rejection) => {
                    let status = tonic::Status::from(Error::Unauthenticated(rejection.0));
                    let response = status.into_http();
                    layer.record_refusal(&parts, &Principal::Anonymous, &response);
                    return Ok(response);
                }
            };
            let cause = Cause::of_call(&principal, peer_address(&parts.extensions), &parts.headers);
            if let Principal::Authenticated(_) = &principal {
                parts.extensions.insert(principal.clone());
            }
            let method = parts.uri.clone();
            let span = telemetry::call_span(method.path(), &parts.headers);
            let call = telemetry::traced(span, inner.call(Request::from_parts(parts, body)));
            let response = Cause::scope(Arc::clone(&cause), call).await?;
            if is_refusal(&response) {
                layer.record_refused_call(method.path(), cause, &response);
            }
            Ok(response)
        })
    }
}

impl AuthLayer {
    /// Records a call refused before it reached a service.
    fn record_refusal(
        &self,
        parts: &http::request::Parts,
        principal: &Principal,
        response: &Response<Body>,
    ) {
        let Some(refusals) = &self.refusals else {
            return;
        };
        let cause = Cause::of_call(principal, peer_address(&parts.extensions), &parts.headers);
        if let Some(refusal) = refusal_of(parts.uri.path(), response) {
            log_refusal(&refusal, &cause, response);
            refusals.record(refusal, cause);
        }
    }

    /// Records a call a service refused.
    fn record_refused_call(&self, path: &str, cause: Arc<Cause>, response: &Response<Body>) {
        if let (Some(refusals), Some(refusal)) = (&self.refusals, refusal_of(path, response)) {
            log_refusal(&refusal, &cause, response);
            refusals.record(refusal, cause);
        }
    }
}

/// The log line of a refused call, naming its request.
fn log_refusal(refusal: &Refusal, cause: &Arc<Cause>, response: &Response<Body>) {
    let message = tonic::Status::from_header_map(response.headers())
        .map(|status| status.message().to_owned())
        .unwrap_or_default();
    Cause::sync_scope(Arc::clone(cause), || {
        tracing::info!(
            method = refusal.method.as_str(),
            reason = refusal.reason.as_str(),
            caller = cause.subject(),
            peer = cause.peer.map(tracing::field::display),
            session_id = refusal.session_id.map(SessionId::get),
            user = refusal.user.as_deref(),
            error = message.as_str(),
            "call refused"
        );
    });
}

/// Whether `response` is a trailers-only UNAUTHENTICATED or
/// PERMISSION_DENIED (how tonic answers a handler's error).
fn is_refusal(response: &Response<Body>) -> bool {
    matches!(
        response
            .headers()
            .get("grpc-status")
            .map(http::HeaderValue::as_bytes),
        Some(b"7" | b"16")
    )
}

/// The refusal `response` carries: its reason and what its metadata names.
fn refusal_of(path: &str, response: &Response<Body>) -> Option<Refusal> {
    let status = tonic::Status::from_header_map(response.headers())?;
    let details = status.get_error_details();
    let info = details.error_info();
    let metadata = |key: &str| info.and_then(|info| info.metadata.get(key)).cloned();
    Some(Refusal {
        method: path.to_owned(),
        reason: info.map_or_else(
            || format!("{:?}", status.code()),
            |info| info.reason.clone(),
        ),
        session_id: metadata("session_id")
            .and_then(|id| id.parse().ok())
            .and_then(|id| SessionId::parse("session_id", id).ok()),
        user: metadata("user"),
    })
}

/// The caller's address, from the connection (tonic's on the gRPC
/// listener, axum's on the admin listener).
fn peer_address(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .or_else(|| {
            extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0)
        })
}

//! The authenticating layer in front of every service: it finds out who
//! sent each request and stores the [`Principal`] in the request's
//! extensions (where [`crate::principal::of`] finds it), or answers
//! UNAUTHENTICATED / `UNAUTHENTICATED` without calling the service.
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
use tower::{Layer, Service};

use super::forwarded::{ClusterKey, FORWARDED_IDENTITY, FORWARDED_SIGNATURE};
use super::jwt::{JwksSource, JwtSettings, JwtVerifier};
use super::runs::{RUN_TOKEN_PREFIX, RunCredentials};
use super::tokens::StaticTokens;
use super::{Rejection, tls};
use crate::config::security::SecurityConfig;
use crate::model::Error;
use crate::principal::{Identity, Method, Principal};

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

/// The layer that puts an [`Authenticator`] in front of a service.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    /// A layer authenticating with `authenticator`.
    #[must_use]
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            authenticator: Arc::new(authenticator),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            authenticator: Arc::clone(&self.authenticator),
        }
    }
}

/// A service whose requests are authenticated first (see [`AuthLayer`]).
#[derive(Clone, Debug)]
pub struct Authenticated<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
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
        let authenticator = Arc::clone(&self.authenticator);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match authenticator.authenticate(&parts).await {
                Ok(Some(identity)) => {
                    parts.extensions.insert(Principal::Authenticated(identity));
                    inner.call(Request::from_parts(parts, body)).await
                }
                Ok(None) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => {
                    tracing::debug!(path = parts.uri.path(), reason = %rejection, "refused an unauthenticated call");
                    let status = tonic::Status::from(Error::Unauthenticated(rejection.0));
                    Ok(status.into_http())
                }
            }
        })
    }
}

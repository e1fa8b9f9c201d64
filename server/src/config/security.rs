//! The security settings: how callers authenticate (TLS client
//! certificates, bearer JWTs, static tokens), the access policy, and how
//! replicas trust each other. In a configuration file they live in the
//! `[security]` table, under the same names as the flags (`tls_cert`,
//! `jwt_issuer`, …).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The security settings as given, each optional (see [`super::Settings`]).
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SESSIOND_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SESSIOND_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Verify client certificates against these CA certificates (PEM) and
    /// take a certificate's first DNS/URI SAN (else its CN) as the caller;
    /// needs --tls-cert.
    #[arg(long, env = "SESSIOND_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// The CA certificates (PEM) that signed the other replicas' server
    /// certificates, for calls forwarded to them over TLS [default: the
    /// system's roots].
    #[arg(long, env = "SESSIOND_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Accept bearer JWTs from this issuer (`iss`); needs --jwt-audience and
    /// --jwks.
    #[arg(long, env = "SESSIOND_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience (`aud`) a JWT must name.
    #[arg(long, env = "SESSIOND_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The issuer's keys: a JWKS file or an http(s) URL (refetched, at most
    /// every 30 s, when a token names an unknown key).
    #[arg(long, env = "SESSIOND_JWKS")]
    pub jwks: Option<String>,
    /// The JWT claim naming the caller [default: sub].
    #[arg(long, env = "SESSIOND_JWT_SUBJECT_CLAIM")]
    pub jwt_subject_claim: Option<String>,
    /// The JWT claim listing the caller's groups [default: groups].
    #[arg(long, env = "SESSIOND_JWT_GROUPS_CLAIM")]
    pub jwt_groups_claim: Option<String>,
    /// Accept the bearer tokens in this file (made with `sessiond token
    /// create`).
    #[arg(long, env = "SESSIOND_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// The access policy (TOML); reloaded on SIGHUP. With authentication on
    /// and no policy, callers may only act as themselves.
    #[arg(long, env = "SESSIOND_POLICY")]
    pub policy: Option<PathBuf>,
    /// Serve without authentication on an address other hosts can reach
    /// (every caller may do everything).
    #[arg(long, env = "SESSIOND_INSECURE_NO_AUTH")]
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// Require a credential for gRPC reflection too (health never needs
    /// one).
    #[arg(long, env = "SESSIOND_REFLECTION_REQUIRES_AUTH")]
    #[serde(default)]
    pub reflection_requires_auth: bool,
    /// A file holding the secret the replicas share (at least 32
    /// characters): a replica that forwards a call signs the caller's
    /// identity with it, and the owner believes a forwarded identity only
    /// when the signature verifies.
    #[arg(long, env = "SESSIOND_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
}

impl SecuritySettings {
    /// Each setting from `self`, or else from `fallback`.
    pub(super) fn or(self, fallback: Self) -> Self {
        Self {
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            tls_client_ca: self.tls_client_ca.or(fallback.tls_client_ca),
            tls_ca: self.tls_ca.or(fallback.tls_ca),
            jwt_issuer: self.jwt_issuer.or(fallback.jwt_issuer),
            jwt_audience: self.jwt_audience.or(fallback.jwt_audience),
            jwks: self.jwks.or(fallback.jwks),
            jwt_subject_claim: self.jwt_subject_claim.or(fallback.jwt_subject_claim),
            jwt_groups_claim: self.jwt_groups_claim.or(fallback.jwt_groups_claim),
            tokens: self.tokens.or(fallback.tokens),
            policy: self.policy.or(fallback.policy),
            insecure_no_auth: self.insecure_no_auth || fallback.insecure_no_auth,
            reflection_requires_auth: self.reflection_requires_auth
                || fallback.reflection_requires_auth,
            cluster_secret_file: self.cluster_secret_file.or(fallback.cluster_secret_file),
        }
    }

    /// Makes relative paths from a configuration file relative to its
    /// folder.
    pub(super) fn relative_to(mut self, folder: &std::path::Path) -> Self {
        for path in [
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.tls_client_ca,
            &mut self.tls_ca,
            &mut self.tokens,
            &mut self.policy,
            &mut self.cluster_secret_file,
        ]
        .into_iter()
        .flatten()
        {
            *path = folder.join(&*path);
        }
        self
    }
}

/// TLS for the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA certificates client certificates are verified against.
    pub client_ca: Option<PathBuf>,
}

/// Bearer JWTs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The audience (`aud`).
    pub audience: String,
    /// The JWKS file or URL.
    pub jwks: String,
    /// The claim naming the caller.
    pub subject_claim: String,
    /// The claim listing its groups.
    pub groups_claim: String,
}

/// The security configuration, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// TLS, if served.
    pub tls: Option<TlsFiles>,
    /// The trust roots for calls to other replicas over TLS.
    pub tls_ca: Option<PathBuf>,
    /// Bearer JWTs, if accepted.
    pub jwt: Option<JwtConfig>,
    /// The static tokens file, if any.
    pub tokens: Option<PathBuf>,
    /// The access policy file, if any.
    pub policy: Option<PathBuf>,
    /// Serving without authentication on a reachable address was asked for.
    pub insecure_no_auth: bool,
    /// Reflection needs a credential.
    pub reflection_requires_auth: bool,
    /// The replicas' shared secret file, if any.
    pub cluster_secret_file: Option<PathBuf>,
}

impl SecurityConfig {
    /// Whether callers must authenticate: some method is configured.
    #[must_use]
    pub fn authenticates(&self) -> bool {
        self.tokens.is_some()
            || self.jwt.is_some()
            || self.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some())
    }

    /// Checks `settings` for a server listening on `listen`.
    ///
    /// # Errors
    /// A message saying what is missing or contradictory.
    pub fn from_settings(settings: SecuritySettings, listen: SocketAddr) -> Result<Self, String> {
        let tls = match (settings.tls_cert, settings.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: settings.tls_client_ca,
            }),
            (None, None) if settings.tls_client_ca.is_some() => {
                return Err("--tls-client-ca needs --tls-cert and --tls-key".to_owned());
            }
            (None, None) => None,
            (Some(_), None) => return Err("--tls-cert needs --tls-key".to_owned()),
            (None, Some(_)) => return Err("--tls-key needs --tls-cert".to_owned()),
        };
        let jwt = match (settings.jwt_issuer, settings.jwt_audience, settings.jwks) {
            (Some(issuer), Some(audience), Some(jwks)) => Some(JwtConfig {
                issuer,
                audience,
                jwks,
                subject_claim: settings
                    .jwt_subject_claim
                    .unwrap_or_else(|| "sub".to_owned()),
                groups_claim: settings
                    .jwt_groups_claim
                    .unwrap_or_else(|| "groups".to_owned()),
            }),
            (None, None, None) => None,
            _ => {
                return Err(
                    "JWT authentication needs all of --jwt-issuer, --jwt-audience and --jwks"
                        .to_owned(),
                );
            }
        };
        let config = Self {
            tls,
            tls_ca: settings.tls_ca,
            jwt,
            tokens: settings.tokens,
            policy: settings.policy,
            insecure_no_auth: settings.insecure_no_auth,
            reflection_requires_auth: settings.reflection_requires_auth,
            cluster_secret_file: settings.cluster_secret_file,
        };
        if config.authenticates() {
            if config.insecure_no_auth {
                return Err(
                    "--insecure-no-auth contradicts the authentication configured \
                     (--tokens, --jwt-issuer or --tls-client-ca)"
                        .to_owned(),
                );
            }
        } else {
            if config.policy.is_some() {
                return Err(
                    "--policy needs authentication: configure --tokens, --jwt-issuer or \
                     --tls-client-ca (without it every caller may do everything)"
                        .to_owned(),
                );
            }
            if !listen.ip().is_loopback() && !config.insecure_no_auth {
                return Err(format!(
                    "refusing to listen on {listen}, which other hosts can reach, without \
                     authentication: configure --tokens, --jwt-issuer or --tls-client-ca, or \
                     pass --insecure-no-auth to let every caller do everything"
                ));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:50051".parse().unwrap()
    }

    fn everywhere() -> SocketAddr {
        "0.0.0.0:50051".parse().unwrap()
    }

    #[test]
    fn no_authentication_on_a_reachable_address_is_refused_unless_insecure() {
        let error =
            SecurityConfig::from_settings(SecuritySettings::default(), everywhere()).unwrap_err();
        assert!(error.contains("0.0.0.0:50051"), "{error}");
        assert!(error.contains("--insecure-no-auth"), "{error}");
        let insecure = SecuritySettings {
            insecure_no_auth: true,
            ..Default::default()
        };
        let config = SecurityConfig::from_settings(insecure, everywhere()).unwrap();
        assert!(!config.authenticates());
        let config =
            SecurityConfig::from_settings(SecuritySettings::default(), loopback()).unwrap();
        assert!(!config.authenticates());
    }

    #[test]
    fn incomplete_settings_say_what_is_missing() {
        let only_cert = SecuritySettings {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let error = SecurityConfig::from_settings(only_cert, loopback()).unwrap_err();
        assert!(error.contains("--tls-key"), "{error}");
        let half_jwt = SecuritySettings {
            jwt_issuer: Some("https://idp".into()),
            ..Default::default()
        };
        let error = SecurityConfig::from_settings(half_jwt, loopback()).unwrap_err();
        assert!(error.contains("--jwks"), "{error}");
        let policy_alone = SecuritySettings {
            policy: Some("p.toml".into()),
            ..Default::default()
        };
        let error = SecurityConfig::from_settings(policy_alone, loopback()).unwrap_err();
        assert!(error.contains("--policy needs authentication"), "{error}");
    }

    #[test]
    fn tokens_turn_authentication_on_anywhere() {
        let tokens = SecuritySettings {
            tokens: Some("tokens.toml".into()),
            ..Default::default()
        };
        let config = SecurityConfig::from_settings(tokens, everywhere()).unwrap();
        assert!(config.authenticates());
    }
}

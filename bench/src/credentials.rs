//! The security material of the `auth_*` and `tls_*` scenarios, made for
//! each run in its temporary directory: a static bearer token and its
//! tokens file (through sessiond's own [`sessiond::auth::tokens::create`]),
//! an identity provider's ES256 key with its JWKS file and a JWT it signed,
//! the access policy, and a CA with a server certificate for `localhost`.
//!
//! Each also says how a child server is told about it: the flags of the
//! hidden `serve-sessiond` / `serve-baseline` modes ([`crate::serve`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig};

use crate::Result;

/// Who the benchmark's credentials name: a platform service.
pub const SUBJECT: &str = "bench-service";
/// The group the credentials put it in, which the policy grants to.
pub const GROUP: &str = "services";
/// The JWT issuer the authenticated server trusts.
pub const ISSUER: &str = "https://idp.sessiond-bench.invalid";
/// The audience the authenticated server expects.
pub const AUDIENCE: &str = "sessiond";
/// The id of the issuer's only key.
const KID: &str = "sessiond-bench-1";
/// How long the JWT is valid: longer than any run.
const JWT_LIFETIME_S: u64 = 7 * 24 * 3600;
/// The name the server certificate is for (and the client checks).
pub const TLS_NAME: &str = "localhost";

/// The access policy of the authenticated server: the shape of
/// `examples/policy.toml` (services, operators, everyone else), with the
/// services' user lists covering the users the benchmark opens sessions for
/// (`user-*` through `StartSession`, `auth-*` clientless) and acts as
/// (`R41`, as in the `user_context` workload).
const POLICY: &str = r#"# Written by sessiond-bench for the auth_* scenarios.
[[grant]]
groups = ["services"]
read_sessions = "any"
start_sessions_for = ["user-*"]
open_clientless_sessions_for = ["auth-*"]
act_as = ["R*"]
run_modules = ["*"]

[[grant]]
groups = ["operators"]
read_sessions = "any"
end_sessions = "any"
read_audit = true

[[grant]]
subjects = ["*"]
read_sessions = "own"
end_sessions = "own"
"#;

/// What an authenticated server is given and what its callers present.
#[derive(Debug)]
pub struct Credentials {
    /// The tokens file (the SHA-256 of [`Self::static_token`]).
    tokens: PathBuf,
    /// The issuer's JWKS file.
    jwks: PathBuf,
    /// The access policy file.
    policy: PathBuf,
    /// A static token for [`SUBJECT`] in [`GROUP`].
    pub static_token: String,
    /// A JWT for [`SUBJECT`] in [`GROUP`], signed by the issuer.
    pub jwt: String,
}

impl Credentials {
    /// Makes the tokens file, the issuer's key and JWKS, the JWT and the
    /// policy in `dir` (created if missing).
    ///
    /// # Errors
    /// When a file cannot be written or a key cannot be made.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let tokens = dir.join("tokens.toml");
        let static_token = sessiond::auth::tokens::create(&tokens, SUBJECT, &[GROUP.to_owned()])?;

        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let point = key.public_key_raw();
        if point.len() != 65 {
            return Err(format!("a P-256 public key of {} bytes, not 65", point.len()).into());
        }
        let jwks = dir.join("jwks.json");
        let set = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        std::fs::write(&jwks, set.to_string())?;
        let jwt = sign_jwt(&EncodingKey::from_ec_der(key.serialized_der()))?;

        let policy = dir.join("policy.toml");
        std::fs::write(&policy, POLICY)?;
        Ok(Self {
            tokens,
            jwks,
            policy,
            static_token,
            jwt,
        })
    }

    /// The `serve-sessiond` flags that turn authentication on with these
    /// credentials: static tokens and JWTs both accepted, the policy
    /// enforced.
    pub fn server_args(&self) -> Vec<OsString> {
        vec![
            "--tokens".into(),
            self.tokens.clone().into(),
            "--jwt-issuer".into(),
            ISSUER.into(),
            "--jwt-audience".into(),
            AUDIENCE.into(),
            "--jwks".into(),
            self.jwks.clone().into(),
            "--policy".into(),
            self.policy.clone().into(),
        ]
    }
}

/// A JWT for [`SUBJECT`] signed with `key`, with the claims an OpenID
/// Connect provider's access token typically carries (so that its size,
/// which the server hashes and scans on every call, is realistic).
fn sign_jwt(key: &EncodingKey) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "groups": [GROUP],
        "azp": "sessiond-bench",
        "scope": "openid profile email sessions",
        "email": "bench-service@sessiond-bench.invalid",
        "preferred_username": SUBJECT,
        "jti": "9f1c2a7e-5b7d-4c2e-8d0a-3f6b1e2d4c5a",
        "iat": now,
        "auth_time": now,
        "nbf": now.saturating_sub(5),
        "exp": now + JWT_LIFETIME_S,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.to_owned());
    Ok(jsonwebtoken::encode(&header, &claims, key)?)
}

/// A CA and the server certificate it signed for [`TLS_NAME`].
#[derive(Debug)]
pub struct TlsFiles {
    /// The server's certificate (PEM).
    cert: PathBuf,
    /// Its private key (PEM).
    key: PathBuf,
    /// The CA's certificate (PEM), which clients trust.
    ca_pem: String,
}

impl TlsFiles {
    /// Makes a CA and a server certificate and key for [`TLS_NAME`] in
    /// `dir` (created if missing). The keys are ECDSA P-256.
    ///
    /// # Errors
    /// When a key or certificate cannot be made or a file written.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sessiond-bench CA");
        let ca_key = KeyPair::generate()?;
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let ca = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::DnsName(TLS_NAME.try_into()?)];
        params.distinguished_name = DistinguishedName::new();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert_pem = params.signed_by(&key, &ca)?.pem();

        let cert = dir.join("server.pem");
        let key_path = dir.join("server.key");
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok(Self {
            cert,
            key: key_path,
            ca_pem,
        })
    }

    /// The `serve-baseline` / `serve-sessiond` flags that make it serve
    /// TLS with this certificate.
    pub fn server_args(&self) -> Vec<OsString> {
        vec![
            "--tls-cert".into(),
            self.cert.clone().into(),
            "--tls-key".into(),
            self.key.clone().into(),
        ]
    }

    /// How a client connects: trusting the CA, checking [`TLS_NAME`].
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(TLS_NAME)
    }
}

#[cfg(test)]
mod tests {
    use sessiond::access::Policy;
    use sessiond::auth::jwt::{JwksSource, JwtSettings, JwtVerifier};
    use sessiond::auth::tokens::StaticTokens;
    use sessiond::model::{SessionKind, UserId};
    use sessiond::principal::{Identity, Method};

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse("user", name.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn the_server_accepts_both_credentials_and_grants_what_the_workloads_do() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::create(dir.path()).unwrap();

        let tokens = StaticTokens::load(&credentials.tokens).unwrap();
        let by_token = tokens.verify(&credentials.static_token).unwrap();
        assert_eq!(by_token.subject, SUBJECT);
        assert_eq!(by_token.groups, [GROUP]);

        let jwks = JwksSource::parse(credentials.jwks.to_str().unwrap());
        let verifier = JwtVerifier::new(JwtSettings::new(ISSUER, AUDIENCE, jwks))
            .await
            .unwrap();
        let by_jwt = verifier.verify(&credentials.jwt).await.unwrap();
        assert_eq!(by_jwt, by_token);

        let policy = Policy::load(&credentials.policy).unwrap();
        let caller = Identity {
            subject: by_jwt.subject,
            groups: by_jwt.groups,
            method: Method::Jwt,
            confined_to: None,
        };
        assert!(policy.may_open(&caller, SessionKind::Interactive, &user("user-7")));
        assert!(policy.may_open(&caller, SessionKind::Clientless, &user("auth-7")));
        assert!(policy.may_read(&caller, &user("user-7")));
        assert!(policy.may_read(&caller, &user("auth-7")));
        assert!(policy.may_act_as(&caller, &user("R41")));
    }

    #[test]
    fn the_server_certificate_is_for_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsFiles::create(dir.path()).unwrap();
        sessiond::auth::tls::server_config(&tls.cert, &tls.key, None).unwrap();
        let der = first_certificate_der(&std::fs::read_to_string(&tls.cert).unwrap());
        assert_eq!(
            sessiond::auth::tls::subject_of(&der).as_deref(),
            Some(TLS_NAME)
        );
    }

    /// The DER of the first certificate in `pem`.
    fn first_certificate_der(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }
}

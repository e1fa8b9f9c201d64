//! Credentials made at test time: an issuer's signing key and its JWKS,
//! signed JWTs, and static tokens (through the server's own
//! `sessiond token create`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The issuer the tests' servers trust.
pub const ISSUER: &str = "https://idp.test";
/// The audience the tests' servers expect.
pub const AUDIENCE: &str = "sessiond";

/// An identity provider's ES256 key, made for one test.
pub struct Issuer {
    key: EncodingKey,
    /// The same key as PKCS#8 PEM, for signers in other languages.
    key_pem: String,
    kid: String,
    jwks: Value,
}

impl Issuer {
    /// A new key under `kid`.
    pub fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_der(pair.serialized_der());
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        Self {
            key,
            key_pem: pair.serialize_pem(),
            kid: kid.to_owned(),
            jwks,
        }
    }

    /// The key id tokens name in their header (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Writes the private key (PKCS#8 PEM) to `path`, for a signer in
    /// another language.
    pub fn write_private_key(&self, path: &Path) {
        std::fs::write(path, &self.key_pem).unwrap();
    }

    /// Writes the JWKS to `dir/jwks.json` and returns its path.
    pub fn write_jwks(&self, dir: &Path) -> PathBuf {
        let path = dir.join("jwks.json");
        std::fs::write(&path, self.jwks.to_string()).unwrap();
        path
    }

    /// A token with these claims (the defaults: this issuer, the audience,
    /// valid for an hour), `overrides` replacing or adding claims.
    pub fn token(&self, subject: &str, groups: &[&str], overrides: Value) -> String {
        let now = unix_now();
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "groups": groups,
            "iat": now, "nbf": now - 5, "exp": now + 3600,
        });
        for (name, value) in overrides.as_object().unwrap() {
            claims[name] = value.clone();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A new static token for `subject` in `groups`, added to the tokens file.
pub fn static_token(tokens: &Path, subject: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    sessiond::auth::tokens::create(tokens, subject, &groups).unwrap()
}

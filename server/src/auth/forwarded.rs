//! The caller of a forwarded call, as one replica tells another.
//!
//! A replica that forwards a call to the session's owner (see
//! `api::forward`) states the original caller in a header and signs it with
//! the secret the replicas share (HMAC-SHA-256 over the statement, which
//! includes the time). The owner believes the statement only when the
//! signature verifies and the time is within a minute of its clock; an
//! outside caller that sends the header without the secret is authenticated
//! by its own credential as usual.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::SessionId;
use crate::principal::{Identity, Method};

/// The header stating the original caller (base64url of a JSON object).
pub const FORWARDED_IDENTITY: &str = "sessiond-forwarded-identity";
/// The header carrying the statement's signature (base64url).
pub const FORWARDED_SIGNATURE: &str = "sessiond-forwarded-signature";

/// The shortest shared secret accepted.
const MIN_SECRET_LEN: usize = 32;
/// How far a statement's time may be from the receiver's clock.
const MAX_SKEW: Duration = Duration::from_secs(60);

/// The replicas' shared secret.
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

/// What a forwarding replica states about the caller.
#[derive(Debug, Deserialize, Serialize)]
struct Statement {
    subject: String,
    groups: Vec<String>,
    method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<i64>,
    /// Seconds since the Unix epoch.
    time: u64,
}

impl ClusterKey {
    /// Reads the secret from `path` (surrounding whitespace ignored).
    ///
    /// # Errors
    /// A message naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cluster secret {}: {error}", path.display()))?;
        let secret = text.trim();
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "cluster secret {}: must be at least {MIN_SECRET_LEN} characters",
                path.display()
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// The two header values stating `caller`.
    #[must_use]
    pub fn sign(&self, caller: &Identity) -> (String, String) {
        self.sign_at(caller, unix_now())
    }

    fn sign_at(&self, caller: &Identity, time: u64) -> (String, String) {
        let statement = Statement {
            subject: caller.subject.clone(),
            groups: caller.groups.clone(),
            method: caller.method.as_str().to_owned(),
            session: caller.confined_to.map(SessionId::get),
            time,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&statement).expect("a statement serializes"));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        (payload, signature)
    }

    /// The caller a forwarding replica stated, when the signature verifies
    /// and the statement is recent.
    #[must_use]
    pub fn verify(&self, payload: &str, signature: &str) -> Option<Identity> {
        self.verify_at(payload, signature, unix_now())
    }

    fn verify_at(&self, payload: &str, signature: &str, now: u64) -> Option<Identity> {
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(payload).verify_slice(&signature).ok()?;
        let statement: Statement =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if statement.time.abs_diff(now) > MAX_SKEW.as_secs() {
            return None;
        }
        let method = match statement.method.as_str() {
            "tls_client_certificate" => Method::TlsClientCertificate,
            "jwt" => Method::Jwt,
            "static_token" => Method::StaticToken,
            "module_run" => Method::ModuleRun,
            _ => return None,
        };
        let confined_to = match statement.session {
            Some(id) => Some(SessionId::parse("session", id).ok()?),
            None => None,
        };
        Some(Identity {
            subject: statement.subject,
            groups: statement.groups,
            method,
            confined_to,
        })
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> ClusterKey {
        ClusterKey(secret.as_bytes().to_vec())
    }

    fn caller() -> Identity {
        Identity {
            subject: "olga".to_owned(),
            groups: vec!["operators".to_owned()],
            method: Method::Jwt,
            confined_to: None,
        }
    }

    #[test]
    fn a_signed_statement_verifies_with_the_same_secret_only() {
        let ours = key("a shared secret of at least 32 characters");
        let (payload, signature) = ours.sign(&caller());
        assert_eq!(ours.verify(&payload, &signature), Some(caller()));
        let theirs = key("another secret, also of 32 characters or more");
        assert_eq!(theirs.verify(&payload, &signature), None);
    }

    #[test]
    fn a_changed_or_stale_statement_is_not_believed() {
        let ours = key("a shared secret of at least 32 characters");
        let (payload, signature) = ours.sign_at(&caller(), 1_000_000);
        assert!(ours.verify_at(&payload, &signature, 1_000_030).is_some());
        assert!(
            ours.verify_at(&payload, &signature, 1_000_000 + 61)
                .is_none()
        );
        let forged = Identity {
            subject: "root".to_owned(),
            ..caller()
        };
        let (forged_payload, _) = ours.sign_at(&forged, 1_000_000);
        assert!(
            ours.verify_at(&forged_payload, &signature, 1_000_000)
                .is_none()
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        let error = ClusterKey::load(&path).unwrap_err();
        assert!(error.contains("at least 32"), "{error}");
    }
}

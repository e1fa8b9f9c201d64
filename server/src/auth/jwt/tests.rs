//! Tokens signed at test time with keys made at test time, checked
//! against a JWKS file (or a one-answer HTTP server), on a clock the test
//! moves.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::model::Timestamp;

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "sessiond";
/// The test clock's start, in seconds since the Unix epoch.
const T0: i64 = 1_800_000_000;

/// A clock the test sets.
#[derive(Debug)]
struct TestClock(AtomicI64);

impl TestClock {
    fn set(&self, seconds: i64) {
        self.0.store(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst) * 1_000_000)
    }
}

/// A signing key and its public JWK.
struct TestKey {
    encoding: EncodingKey,
    alg: Algorithm,
    jwk: Jwk,
}

impl TestKey {
    fn es256(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Self::new(
            kid,
            EncodingKey::from_ec_der(&pair.serialize_der()),
            Algorithm::ES256,
        )
    }

    fn ed25519(kid: &str) -> Self {
        // PKCS#8 v1 (what jsonwebtoken reads): a fixed prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        der.extend_from_slice(&seed);
        Self::new(kid, EncodingKey::from_ed_der(&der), Algorithm::EdDSA)
    }

    fn new(kid: &str, encoding: EncodingKey, alg: Algorithm) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self { encoding, alg, jwk }
    }

    fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap()
    }

    /// A token with `claims`, its header naming this key.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// Claims that pass: issued by ISSUER for AUDIENCE to alice, valid from T0
/// for five minutes.
fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
        "groups": ["ops", "dev"], "nbf": T0, "exp": T0 + 300,
    })
}

/// `claims()` with `changes` applied (a null removes a claim).
fn claims_with(changes: &Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn jwks_json(keys: &[&TestKey]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    })
    .unwrap()
}

fn write_jwks(path: &Path, keys: &[&TestKey]) {
    std::fs::write(path, jwks_json(keys)).unwrap();
}

/// A verifier on a JWKS file holding `keys`, with its clock at T0.
struct Fixture {
    verifier: JwtVerifier,
    clock: Arc<TestClock>,
    jwks: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(keys: &[&TestKey]) -> Self {
        Self::with(keys, |_| {}).await
    }

    async fn with(keys: &[&TestKey], adjust: impl FnOnce(&mut JwtSettings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        write_jwks(&jwks, keys);
        let mut settings = JwtSettings::new(ISSUER, AUDIENCE, JwksSource::File(jwks.clone()));
        adjust(&mut settings);
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let verifier = JwtVerifier::with_clock(settings, clock.clone())
            .await
            .unwrap();
        Self {
            verifier,
            clock,
            jwks,
            _dir: dir,
        }
    }

    async fn refused(&self, token: &str) -> String {
        match self.verifier.verify(token).await {
            Ok(credential) => panic!("accepted as {credential:?}"),
            Err(Rejection(message)) => message,
        }
    }

    fn fetches(&self) -> u64 {
        self.verifier.inner.fetches.load(Ordering::SeqCst)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_valid_token_names_its_subject_and_groups() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let credential = fx.verifier.verify(&key.sign(&claims())).await.unwrap();
    assert_eq!(
        credential,
        Credential {
            subject: "alice".into(),
            groups: vec!["ops".into(), "dev".into()],
        }
    );
    let no_groups = key.sign(&claims_with(&json!({"groups": null, "nbf": null})));
    assert!(
        fx.verifier
            .verify(&no_groups)
            .await
            .unwrap()
            .groups
            .is_empty()
    );
}

#[tokio::test]
async fn eddsa_tokens_and_audience_arrays_verify() {
    let key = TestKey::ed25519("ed");
    let fx = Fixture::new(&[&key]).await;
    let token = key.sign(&claims_with(&json!({"aud": ["other", AUDIENCE]})));
    assert_eq!(fx.verifier.verify(&token).await.unwrap().subject, "alice");
}

#[tokio::test]
async fn an_expired_token_is_refused_after_the_leeway() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    // Leeway 30 s: exp 29 s ago still passes, 31 s ago does not.
    fx.clock.set(T0 + 300 + 29);
    fx.verifier.verify(&key.sign(&claims())).await.unwrap();
    fx.clock.set(T0 + 300 + 31);
    let other = key.sign(&claims_with(&json!({"sub": "bob"})));
    assert_eq!(fx.refused(&other).await, "the token has expired");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let soon = key.sign(&claims_with(&json!({"nbf": T0 + 29})));
    fx.verifier.verify(&soon).await.unwrap();
    let later = key.sign(&claims_with(&json!({"nbf": T0 + 31})));
    assert!(fx.refused(&later).await.contains("not valid yet"));
}

#[tokio::test]
async fn the_wrong_issuer_or_audience_is_refused_by_name() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let cases = [
        (
            json!({"iss": "https://evil.example"}),
            "the token's issuer is not \"https://idp.example\"",
        ),
        (
            json!({"aud": "other"}),
            "the token's audience is not \"sessiond\"",
        ),
        (
            json!({"aud": ["a", "b"]}),
            "the token's audience is not \"sessiond\"",
        ),
        (json!({"aud": null}), "the token has no \"aud\" claim"),
        (json!({"iss": null}), "the token has no \"iss\" claim"),
        (json!({"exp": null}), "the token has no \"exp\" claim"),
        (
            json!({"exp": "tomorrow"}),
            "the token's \"exp\" claim is not a time in seconds",
        ),
    ];
    for (changes, message) in cases {
        let token = key.sign(&claims_with(&changes));
        assert_eq!(fx.refused(&token).await, message, "{changes}");
    }
}

#[tokio::test]
async fn subject_and_groups_claims_must_be_well_formed() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    for changes in [json!({"sub": ""}), json!({"sub": null}), json!({"sub": 7})] {
        let message = fx.refused(&key.sign(&claims_with(&changes))).await;
        assert!(
            message.contains("\"sub\" claim is missing or not a non-empty string"),
            "{message}"
        );
    }
    for groups in [json!("ops"), json!(["ops", 1])] {
        let message = fx
            .refused(&key.sign(&claims_with(&json!({"groups": groups}))))
            .await;
        assert_eq!(
            message,
            "the token's \"groups\" claim is not an array of strings"
        );
    }
}

#[tokio::test]
async fn the_subject_and_groups_claims_are_configurable() {
    let key = TestKey::es256("k1");
    let fx = Fixture::with(&[&key], |s| {
        s.subject_claim = "email".into();
        s.groups_claim = "roles".into();
    })
    .await;
    let token = key.sign(&claims_with(
        &json!({"email": "a@example.org", "roles": ["admin"]}),
    ));
    let credential = fx.verifier.verify(&token).await.unwrap();
    assert_eq!(credential.subject, "a@example.org");
    assert_eq!(credential.groups, ["admin"]);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let header = b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let body = b64(claims().to_string().as_bytes());
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        let message = fx.refused(&token).await;
        assert!(
            message.starts_with("the token's algorithm \"none\" is not accepted"),
            "{message}"
        );
    }
    assert_eq!(
        fx.refused("not a jwt").await,
        "the token is not a well-formed JWT"
    );
}

#[tokio::test]
async fn shared_secret_tokens_are_refused() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    // The classic confusion: the "secret" is the public key's own JSON.
    let secret = serde_json::to_vec(&key.jwk).unwrap();
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(&secret).unwrap(),
    )
    .unwrap();
    let message = fx.refused(&token).await;
    assert!(message.contains("shared secret (HS256)"), "{message}");
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_key_is_refused() {
    let ec = TestKey::es256("ec");
    let ed = TestKey::ed25519("ed");
    let fx = Fixture::new(&[&ec]).await;
    // Signed with the Ed25519 key, but naming the P-256 key.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ec".into());
    let token = jsonwebtoken::encode(&header, &claims(), &ed.encoding).unwrap();
    let message = fx.refused(&token).await;
    assert!(
        message.contains("algorithm EdDSA does not fit its key"),
        "{message}"
    );
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let key = TestKey::es256("k1");
    let impostor = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let message = fx.refused(&impostor.sign(&claims())).await;
    assert_eq!(message, "the token's signature does not verify");
    // The payload of a genuine token swapped for another's.
    let genuine = key.sign(&claims());
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_body = b64(claims_with(&json!({"sub": "root"})).to_string().as_bytes());
    let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
    assert_eq!(
        fx.refused(&forged).await,
        "the token's signature does not verify"
    );
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(), &key.encoding).unwrap();
    assert_eq!(fx.verifier.verify(&token).await.unwrap().subject, "alice");
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_per_interval() {
    let (k1, k2, k3) = (
        TestKey::es256("k1"),
        TestKey::es256("k2"),
        TestKey::es256("k3"),
    );
    let fx = Fixture::new(&[&k1]).await;
    assert_eq!(fx.fetches(), 1);
    // The provider rotates: k2 appears after start.
    write_jwks(&fx.jwks, &[&k1, &k2]);
    assert_eq!(
        fx.verifier
            .verify(&k2.sign(&claims()))
            .await
            .unwrap()
            .subject,
        "alice"
    );
    assert_eq!(fx.fetches(), 2);
    // k3 appears too, but within the interval: no refetch, refused.
    write_jwks(&fx.jwks, &[&k1, &k2, &k3]);
    assert_eq!(
        fx.refused(&k3.sign(&claims())).await,
        "the token's key \"k3\" is not in the JWKS"
    );
    assert_eq!(fx.fetches(), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refetch() {
    let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
    let fx = Fixture::with(&[&k1], |s| s.refetch_interval = Duration::ZERO).await;
    write_jwks(&fx.jwks, &[&k1, &k2]);
    let token = k2.sign(&claims());
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (verifier, token) = (fx.verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().subject, "alice");
    }
    // Even with no minimum interval, the waiters saw the new keys and did
    // not fetch again.
    assert_eq!(fx.fetches(), 2);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_old_keys() {
    let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
    let fx = Fixture::new(&[&k1]).await;
    std::fs::write(&fx.jwks, "{ not json").unwrap();
    assert!(
        fx.refused(&k2.sign(&claims()))
            .await
            .contains("not in the JWKS")
    );
    assert_eq!(fx.fetches(), 2);
    assert_eq!(
        fx.verifier
            .verify(&k1.sign(&claims()))
            .await
            .unwrap()
            .subject,
        "alice"
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let token = key.sign(&claims());
    fx.verifier.verify(&token).await.unwrap();
    assert!(
        fx.verifier
            .inner
            .cache
            .lock()
            .unwrap()
            .contains_key(signature_of(&token))
    );
    // A hit needs no key: with the JWKS emptied of it, the token still passes.
    *fx.verifier.inner.keys.write().unwrap() = Arc::new(KeySet {
        generation: 0,
        by_kid: KeysById::new(),
    });
    fx.clock.set(T0 + 300 + 30);
    assert_eq!(fx.verifier.verify(&token).await.unwrap().subject, "alice");
    fx.clock.set(T0 + 300 + 31);
    assert_eq!(fx.refused(&token).await, "the token has expired");
    assert!(fx.verifier.inner.cache.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refetch_that_changes_the_keys_empties_the_cache() {
    let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
    let fx = Fixture::new(&[&k1]).await;
    let old = k1.sign(&claims());
    fx.verifier.verify(&old).await.unwrap();
    // The provider drops k1 for k2; a k2 token prompts the refetch.
    write_jwks(&fx.jwks, &[&k2]);
    fx.verifier.verify(&k2.sign(&claims())).await.unwrap();
    assert_eq!(
        fx.refused(&old).await,
        "the token's key \"k1\" is not in the JWKS"
    );
}

#[tokio::test]
async fn the_cache_stays_bounded() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let alice = Arc::new(Identity {
        subject: "alice".into(),
        groups: vec![],
        method: Method::Jwt,
        confined_to: None,
    });
    let v = &fx.verifier;
    // Half already expired, half valid: making room drops the expired half.
    for i in 0..CACHE_CAPACITY {
        let expires = if i % 2 == 0 { 0 } else { T0 as u64 + 300 };
        v.remember(&format!("h.p.t{i}"), &alice, expires, None, T0 as u64);
    }
    v.remember("one more", &alice, T0 as u64 + 300, None, T0 as u64);
    assert_eq!(v.inner.cache.lock().unwrap().len(), CACHE_CAPACITY / 2 + 1);
    // All valid: making room empties it.
    for i in 0..CACHE_CAPACITY {
        v.remember(
            &format!("h.p.u{i}"),
            &alice,
            T0 as u64 + 300,
            None,
            T0 as u64,
        );
    }
    assert!(v.inner.cache.lock().unwrap().len() <= CACHE_CAPACITY);
}

#[tokio::test]
async fn start_fails_naming_a_missing_or_unusable_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let settings = || JwtSettings::new(ISSUER, AUDIENCE, JwksSource::File(path.clone()));
    let err = JwtVerifier::new(settings()).await.unwrap_err();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(
        &path,
        r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#,
    )
    .unwrap();
    let err = JwtVerifier::new(settings()).await.unwrap_err();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("no usable signing key"),
        "{err}"
    );
}

/// Serves `body` with `status` to each of `answers` GET requests, on
/// 127.0.0.1; returns the URL.
async fn serve_http(status: &'static str, body: String, answers: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..answers {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before its request ended");
                request.extend_from_slice(&buf[..n]);
            }
            assert!(request.starts_with(b"GET /jwks HTTP/1.1\r\n"));
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    format!("http://{addr}/jwks")
}

#[tokio::test]
async fn the_jwks_can_come_over_http() {
    let key = TestKey::es256("k1");
    let url = serve_http("200 OK", jwks_json(&[&key]), 1).await;
    let settings = JwtSettings::new(ISSUER, AUDIENCE, JwksSource::parse(&url));
    let verifier = JwtVerifier::new(settings).await.unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let token = key.sign(&claims_with(&json!({"nbf": now, "exp": now + 60})));
    assert_eq!(verifier.verify(&token).await.unwrap().subject, "alice");
}

#[tokio::test]
async fn start_fails_naming_a_url_that_answers_an_error() {
    let url = serve_http("404 Not Found", "{}".into(), 1).await;
    let settings = JwtSettings::new(ISSUER, AUDIENCE, JwksSource::parse(&url));
    let err = JwtVerifier::new(settings).await.unwrap_err();
    assert!(err.contains(&url) && err.contains("404"), "{err}");
}

#[tokio::test]
async fn a_token_that_shares_a_cached_signature_is_not_a_hit() {
    let key = TestKey::es256("k1");
    let fx = Fixture::new(&[&key]).await;
    let token = key.sign(&claims());
    assert_eq!(fx.verifier.verify(&token).await.unwrap().subject, "alice");
    // The same signature under another payload (another subject).
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims_with(&json!({"sub": "root"})).to_string(),
    );
    parts[1] = &forged_payload;
    let forged = parts.join(".");
    assert!(fx.verifier.verify(&forged).await.is_err());
}

//! The identity provider's public keys (a JWKS), read from a file or
//! fetched over HTTP(S), and what each key may verify.
//!
//! Only public signing keys are kept: RSA (RS256/384/512, PS256/384/512),
//! P-256 (ES256), P-384 (ES384) and Ed25519 (EdDSA). Symmetric (`oct`)
//! keys, encryption keys and other curves are skipped, so no token signed
//! with a shared secret can ever verify.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// How long fetching the JWKS may take, connection included.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Where the identity provider's public keys (a JWK Set) are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A JSON file on this machine, read again on refetch.
    File(PathBuf),
    /// An `http://` or `https://` URL (typically the provider's `jwks_uri`).
    Url(String),
}

impl JwksSource {
    /// An `http://` or `https://` URL, else a file path.
    #[must_use]
    pub fn parse(source: &str) -> Self {
        let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Self::Url(source.to_owned())
        } else {
            Self::File(PathBuf::from(source))
        }
    }
}

impl fmt::Display for JwksSource {
    /// The file's path or the URL, as messages name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(url),
        }
    }
}

/// One verification key and the algorithms it may verify.
pub(super) struct VerificationKey {
    /// The public key.
    pub(super) key: DecodingKey,
    /// The algorithms a token signed with this key may name: those of the
    /// key's type, narrowed to its `alg` when the JWKS gives one.
    pub(super) algorithms: Vec<Algorithm>,
}

/// The usable keys of one JWKS, by key id (`""` for a key without one).
pub(super) type KeysById = HashMap<String, Arc<VerificationKey>>;

/// Reads the JWKS from its source.
pub(super) enum JwksFetcher {
    /// From a file, read again on each fetch.
    File(PathBuf),
    /// From a URL.
    Url {
        /// The URL as configured, for messages.
        url: String,
        /// The URL parsed.
        uri: http::Uri,
        /// Made once, so that connections and root certificates are reused
        /// (boxed: it is large, and a file source needs none).
        client: Box<HttpClient>,
        /// How long a fetch may take, connecting included.
        timeout: Duration,
    },
}

/// The HTTP(S) client for JWKS URLs.
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

impl JwksFetcher {
    /// A fetcher for `source`.
    ///
    /// # Errors
    /// A URL that does not parse, or an `https` URL when the system's root
    /// certificates cannot be loaded.
    pub(super) fn new(source: &JwksSource) -> Result<Self, String> {
        Ok(match source {
            JwksSource::File(path) => Self::File(path.clone()),
            JwksSource::Url(url) => Self::Url {
                url: url.clone(),
                uri: url
                    .parse()
                    .map_err(|e| format!("the JWKS URL {url} is not a URL: {e}"))?,
                client: Box::new(http_client(url)?),
                timeout: FETCH_TIMEOUT,
            },
        })
    }

    /// Reads and parses the JWKS.
    ///
    /// # Errors
    /// A message naming the file or URL and what went wrong: it could not be
    /// read or fetched (within [`FETCH_TIMEOUT`]), is not a JWK Set, holds two
    /// keys with one id, or holds no usable signing key.
    pub(super) async fn fetch(&self) -> Result<KeysById, String> {
        match self {
            Self::File(path) => {
                let read = {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || std::fs::read(path)).await
                };
                let bytes = read
                    .map_err(|e| format!("reading the JWKS file {} failed: {e}", path.display()))?
                    .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
                parse_jwks(&bytes).map_err(|e| format!("the JWKS file {}: {e}", path.display()))
            }
            Self::Url {
                url,
                uri,
                client,
                timeout,
            } => {
                let bytes = tokio::time::timeout(*timeout, get(client, uri))
                    .await
                    .map_err(|_| {
                        format!(
                            "fetching the JWKS from {url}: no answer within {}",
                            humantime::format_duration(*timeout)
                        )
                    })?
                    .map_err(|e| format!("fetching the JWKS from {url}: {e}"))?;
                parse_jwks(&bytes).map_err(|e| format!("the JWKS at {url}: {e}"))
            }
        }
    }
}

/// A client for `url`: `https` ones verify the server against the
/// system's root certificates, with ring as rustls' provider.
fn http_client(url: &str) -> Result<HttpClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot load the system's root certificates for {url}: {e}"))?
    } else {
        // Plain HTTP: TLS is never used, no roots are needed.
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// GETs `uri` and reads a successful answer's body (at most
/// [`MAX_JWKS_BYTES`]).
async fn get(client: &HttpClient, uri: &http::Uri) -> Result<Bytes, String> {
    let request = http::Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the server answered {status}"));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    Ok(body.to_bytes())
}

/// An error and its sources, `: `-separated (hyper's own message alone
/// says only "client error (Connect)").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The usable signing keys of a JWKS document.
fn parse_jwks(bytes: &[u8]) -> Result<KeysById, String> {
    let set: JwkSet = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a JWK Set (JSON with \"keys\"): {e}"))?;
    let mut keys = KeysById::with_capacity(set.keys.len());
    let mut skipped = Vec::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        match verification_key(jwk) {
            Ok(key) => {
                if keys.insert(kid.clone(), Arc::new(key)).is_some() {
                    return Err(format!("two keys have the key id {kid:?}"));
                }
            }
            Err(why) => skipped.push(format!("{kid:?} ({why})")),
        }
    }
    if keys.is_empty() {
        let skipped = if skipped.is_empty() {
            "it has no keys".to_owned()
        } else {
            format!("skipped: {}", skipped.join(", "))
        };
        return Err(format!(
            "no usable signing key (RSA, P-256, P-384 or Ed25519 public key); {skipped}"
        ));
    }
    Ok(keys)
}

/// The key `jwk` describes, or why it cannot verify tokens here.
fn verification_key(jwk: &Jwk) -> Result<VerificationKey, String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key".to_owned());
    }
    let of_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err("an unsupported curve".to_owned()),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err("an unsupported curve".to_owned()),
        },
        AlgorithmParameters::OctetKey(_) => return Err("a shared secret".to_owned()),
        _ => return Err("an unsupported key type".to_owned()),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => of_type.to_vec(),
        Some(declared) => match Algorithm::try_from(declared) {
            Ok(alg) if of_type.contains(&alg) => vec![alg],
            _ => return Err(format!("its \"alg\" {declared} does not fit its type")),
        },
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("malformed: {e}"))?;
    Ok(VerificationKey { key, algorithms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_a_url_by_its_scheme_else_a_file() {
        assert_eq!(
            JwksSource::parse("https://idp.example/jwks"),
            JwksSource::Url("https://idp.example/jwks".into())
        );
        assert_eq!(
            JwksSource::parse("HTTP://127.0.0.1:8080/k"),
            JwksSource::Url("HTTP://127.0.0.1:8080/k".into())
        );
        assert_eq!(
            JwksSource::parse("/etc/sessiond/jwks.json"),
            JwksSource::File("/etc/sessiond/jwks.json".into())
        );
        assert_eq!(
            JwksSource::parse("https.json"),
            JwksSource::File("https.json".into())
        );
    }

    #[tokio::test]
    async fn a_fetch_that_gets_no_answer_times_out() {
        // Accepts the connection, then never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let held = tokio::spawn(async move { listener.accept().await });
        let mut fetcher = JwksFetcher::new(&JwksSource::Url(url.clone())).unwrap();
        let JwksFetcher::Url { timeout, .. } = &mut fetcher else {
            panic!("a URL source made a file fetcher");
        };
        assert_eq!(*timeout, FETCH_TIMEOUT);
        *timeout = Duration::from_millis(200);
        let err = fetcher.fetch().await.err().unwrap();
        assert_eq!(
            err,
            format!("fetching the JWKS from {url}: no answer within 200ms")
        );
        held.abort();
    }

    #[test]
    fn symmetric_encryption_and_mismatched_keys_are_skipped() {
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let cases = [
            (r#"{"kty":"oct","kid":"s","k":"c2VjcmV0"}"#, "shared secret"),
            (
                r#"{"kty":"EC","crv":"P-256","kid":"e","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
                "encryption",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","kid":"h","alg":"HS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
                "does not fit",
            ),
        ];
        for (key, why) in cases {
            let err = parse_jwks(format!(r#"{{"keys":[{key}]}}"#).as_bytes())
                .err()
                .unwrap();
            assert!(err.contains(why), "{err}");
            let keys = parse_jwks(format!(r#"{{"keys":[{key},{ec}]}}"#).as_bytes()).unwrap();
            assert_eq!(keys.keys().collect::<Vec<_>>(), ["ec"]);
            assert_eq!(keys["ec"].algorithms, [Algorithm::ES256]);
        }
        let err = parse_jwks(format!(r#"{{"keys":[{ec},{ec}]}}"#).as_bytes())
            .err()
            .unwrap();
        assert!(err.contains("two keys have the key id \"ec\""), "{err}");
        assert!(parse_jwks(b"{}").err().unwrap().contains("not a JWK Set"));
        assert!(
            parse_jwks(br#"{"keys":[]}"#)
                .err()
                .unwrap()
                .contains("no keys")
        );
    }
}

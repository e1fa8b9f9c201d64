//! Bearer JWTs from an OpenID Connect identity provider.
//!
//! A token is accepted when its header's `kid` names a key of the
//! provider's JWKS, its signature verifies with that key under an
//! algorithm fitting the key's type (never `none`, never a shared-secret
//! `HS*`), its `iss` and `aud` are the configured ones, its `exp` has not
//! passed and its `nbf`, if any, has come (both with [`JwtSettings::leeway`]).
//! Its subject claim must be a non-empty string; its groups claim, if
//! present, an array of strings.
//!
//! The JWKS is loaded once at start ([`JwtVerifier::new`] fails if it
//! cannot be). A token naming an unknown key makes the verifier read the
//! JWKS again, at most once per [`JwtSettings::refetch_interval`], every
//! caller waiting on that one refetch; a refetch that fails keeps the keys
//! already loaded.
//!
//! Verified tokens are cached (up to [`CACHE_CAPACITY`], keyed by the whole
//! token): a hit costs a lock and a hash lookup instead of a signature
//! check, and still checks `exp` and `nbf` against the clock. A successful
//! refetch empties the cache, so tokens signed with a key the provider has
//! removed stop verifying at once.

mod jwks;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{AlgorithmFamily, Validation};
use serde_json::{Map, Value};

pub use self::jwks::JwksSource;
use self::jwks::{JwksFetcher, KeysById, VerificationKey};
use super::{Credential, Rejection};
use crate::clock::{Clock, SystemClock};
use crate::principal::{Identity, Method};

/// How many verified tokens are remembered. When full, expired entries are
/// dropped, and if that frees nothing, all of them.
pub const CACHE_CAPACITY: usize = 10_000;

/// How tokens are checked: who must have issued them, for whom, with
/// which keys.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The `iss` a token must carry (the provider's issuer URL).
    pub issuer: String,
    /// The audience a token must be for: its `aud` (a string or an array)
    /// must hold this.
    pub audience: String,
    /// Where the provider's public keys are read from.
    pub jwks: JwksSource,
    /// The claim naming the caller. Default `sub`.
    pub subject_claim: String,
    /// The claim listing the caller's groups, if present. Default `groups`.
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`. Default 30 s.
    pub leeway: Duration,
    /// The least time between two reads of the JWKS prompted by unknown
    /// key ids, so that tokens with made-up ids cannot hammer the
    /// provider. Default 30 s.
    pub refetch_interval: Duration,
}

impl JwtSettings {
    /// Settings for tokens from `issuer` for `audience`, verified with the
    /// keys at `jwks`; the other fields take their defaults.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            subject_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(30),
        }
    }
}

/// Verifies bearer JWTs. Cloning is cheap: clones share keys and cache.
#[derive(Clone)]
pub struct JwtVerifier {
    /// What clones share.
    inner: Arc<Inner>,
}

/// The state behind a [`JwtVerifier`].
struct Inner {
    /// The checks to apply.
    settings: JwtSettings,
    /// Where "now" comes from for `exp` and `nbf` (a test moves it).
    clock: Arc<dyn Clock>,
    /// Reads the JWKS.
    fetcher: JwksFetcher,
    /// The keys now in force; replaced whole by a refetch.
    keys: RwLock<Arc<KeySet>>,
    /// When the last refetch started; held while one runs, so concurrent
    /// callers wait for it instead of starting their own.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// Verified tokens, by their signature (the whole token is compared
    /// on a hit): hashing the short signature instead of the whole token
    /// keeps a hit cheap.
    cache: Mutex<HashMap<Box<str>, VerifiedToken>>,
    /// How many times the JWKS was read (start included).
    fetches: AtomicU64,
}

/// The signature segment of a JWT (its last), the cache's key.
fn signature_of(token: &str) -> &str {
    token
        .rsplit_once('.')
        .map_or(token, |(_, signature)| signature)
}

/// The keys of one successful read of the JWKS.
struct KeySet {
    /// Bumped by each successful refetch, so that a caller that waited for
    /// a refetch knows one happened.
    generation: u64,
    /// The keys, by key id.
    by_kid: KeysById,
}

/// A token that verified, and the times it is valid between.
struct VerifiedToken {
    /// The whole token.
    token: Box<str>,
    /// Who it names, ready to be the call's caller.
    identity: Arc<Identity>,
    /// Its `exp`, seconds since the Unix epoch.
    expires: u64,
    /// Its `nbf`, if any.
    not_before: Option<u64>,
}

impl fmt::Debug for JwtVerifier {
    /// The settings only: the cache holds tokens, which are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for `settings`, with the JWKS loaded.
    ///
    /// # Errors
    /// A message naming the JWKS file or URL if it cannot be read or
    /// fetched, is not a JWK Set, or holds no usable signing key.
    pub async fn new(settings: JwtSettings) -> Result<Self, String> {
        Self::with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Self::new`] with `exp` and `nbf` checked against `clock`.
    async fn with_clock(settings: JwtSettings, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let fetcher = JwksFetcher::new(&settings.jwks)?;
        let by_kid = fetcher.fetch().await?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                clock,
                fetcher,
                keys: RwLock::new(Arc::new(KeySet {
                    generation: 0,
                    by_kid,
                })),
                last_refetch: tokio::sync::Mutex::new(None),
                cache: Mutex::new(HashMap::new()),
                fetches: AtomicU64::new(1),
            }),
        })
    }

    /// Who `token` names.
    ///
    /// # Errors
    /// A [`Rejection`] saying what is wrong with the token: malformed, an
    /// algorithm not accepted or not fitting its key, an unknown key, a bad
    /// signature, the wrong issuer or audience, expired, not valid yet, or
    /// a missing or malformed subject or groups claim.
    pub async fn verify(&self, token: &str) -> Result<Credential, Rejection> {
        let identity = self.verify_identity(token).await?;
        Ok(Credential {
            subject: identity.subject.clone(),
            groups: identity.groups.clone(),
        })
    }

    /// [`JwtVerifier::verify`], as the caller of a call: shared with the
    /// cache, so that a cache hit allocates nothing.
    ///
    /// # Errors
    /// As [`JwtVerifier::verify`].
    pub async fn verify_identity(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        let now = self.now();
        if let Some(hit) = self.cached(token, now) {
            return hit;
        }
        let (key, algorithm) = self.key_for(token).await?;
        let mut validation = Validation::new(algorithm);
        validation.algorithms.clone_from(&key.algorithms);
        validation.set_issuer(&[&self.inner.settings.issuer]);
        validation.set_audience(&[&self.inner.settings.audience]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        // `exp` (required) and `nbf` are checked below, against `clock`, as
        // on a cache hit.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| self.rejection(e.kind()))?
            .claims;

        let expires = time_claim(&claims, "exp")?
            .ok_or_else(|| rejection("the token has no \"exp\" claim"))?;
        let not_before = time_claim(&claims, "nbf")?;
        self.check_times(expires, not_before, now)?;
        let credential = self.credential(&claims)?;
        let identity = Arc::new(Identity {
            subject: credential.subject,
            groups: credential.groups,
            method: Method::Jwt,
            confined_to: None,
        });
        self.remember(token, &identity, expires, not_before, now);
        Ok(identity)
    }

    /// The cached answer for `token`, if it verified before.
    fn cached(&self, token: &str, now: u64) -> Option<Result<Arc<Identity>, Rejection>> {
        let key = signature_of(token);
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(key).filter(|entry| &*entry.token == token)?;
        match self.check_times(entry.expires, entry.not_before, now) {
            Ok(()) => Some(Ok(Arc::clone(&entry.identity))),
            Err(rejection) => {
                cache.remove(key);
                Some(Err(rejection))
            }
        }
    }

    /// Caches a verified token, making room if the cache is full.
    fn remember(
        &self,
        token: &str,
        identity: &Arc<Identity>,
        expires: u64,
        not_before: Option<u64>,
        now: u64,
    ) {
        let leeway = self.inner.settings.leeway.as_secs();
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, entry| entry.expires.saturating_add(leeway) >= now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            signature_of(token).into(),
            VerifiedToken {
                token: token.into(),
                identity: Arc::clone(identity),
                expires,
                not_before,
            },
        );
    }

    /// The key `token`'s header names, and the algorithm it names, once
    /// both are known to be acceptable. Refetches the JWKS for an unknown
    /// key.
    async fn key_for(
        &self,
        token: &str,
    ) -> Result<(Arc<VerificationKey>, jsonwebtoken::Algorithm), Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_rejection(token))?;
        if header.alg.family() == AlgorithmFamily::Hmac {
            return Err(rejection(format!(
                "the token is signed with a shared secret ({:?}); only public-key algorithms are accepted",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let key = match self.find_key(&kid) {
            Ok(key) => key,
            Err(generation) => {
                self.refetch(generation).await;
                self.find_key(&kid).map_err(|_| {
                    if kid.is_empty() {
                        rejection("the token names no key (its header has no \"kid\")")
                    } else {
                        rejection(format!(
                            "the token's key {:?} is not in the JWKS",
                            shorten(&kid)
                        ))
                    }
                })?
            }
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(rejection(format!(
                "the token's algorithm {:?} does not fit its key (which takes {:?})",
                header.alg, key.algorithms
            )));
        }
        Ok((key, header.alg))
    }

    /// The key with id `kid` (a token without one may use the only key),
    /// or the generation of the keys it is not in.
    fn find_key(&self, kid: &str) -> Result<Arc<VerificationKey>, u64> {
        let keys = Arc::clone(
            &self
                .inner
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let key = keys
            .by_kid
            .get(kid)
            .or_else(|| match keys.by_kid.values().next() {
                Some(only) if kid.is_empty() && keys.by_kid.len() == 1 => Some(only),
                _ => None,
            });
        key.cloned().ok_or(keys.generation)
    }

    /// Reads the JWKS again, unless another caller did since generation
    /// `seen` was current or the last refetch started less than
    /// [`JwtSettings::refetch_interval`] ago. On failure the keys stay.
    async fn refetch(&self, seen: u64) {
        let mut last = self.inner.last_refetch.lock().await;
        if self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
            != seen
        {
            return;
        }
        if last.is_some_and(|at| at.elapsed() < self.inner.settings.refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        match self.inner.fetcher.fetch().await {
            Ok(by_kid) => {
                tracing::info!(jwks = %self.inner.settings.jwks, keys = by_kid.len(), "reloaded the JWKS for an unknown key id");
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(KeySet {
                    generation: seen + 1,
                    by_kid,
                });
                self.inner
                    .cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            }
            Err(error) => {
                tracing::warn!(%error, "refetching the JWKS failed; keeping the keys already loaded");
            }
        }
    }

    /// Refuses a token outside `[nbf, exp]`, give or take the leeway.
    fn check_times(
        &self,
        expires: u64,
        not_before: Option<u64>,
        now: u64,
    ) -> Result<(), Rejection> {
        let leeway = self.inner.settings.leeway.as_secs();
        if now > expires.saturating_add(leeway) {
            return Err(rejection("the token has expired"));
        }
        if not_before.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(rejection(
                "the token is not valid yet (its \"nbf\" is in the future)",
            ));
        }
        Ok(())
    }

    /// The subject and groups the claims name.
    fn credential(&self, claims: &Map<String, Value>) -> Result<Credential, Rejection> {
        let settings = &self.inner.settings;
        let subject = match claims.get(&settings.subject_claim) {
            Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
            _ => {
                return Err(rejection(format!(
                    "the token's {:?} claim is missing or not a non-empty string",
                    settings.subject_claim
                )));
            }
        };
        let not_strings = || {
            rejection(format!(
                "the token's {:?} claim is not an array of strings",
                settings.groups_claim
            ))
        };
        let groups = match claims.get(&settings.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|group| group.as_str().map(str::to_owned).ok_or_else(not_strings))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(not_strings()),
        };
        Ok(Credential { subject, groups })
    }

    /// What to tell the caller for a failed signature or claim check.
    fn rejection(&self, kind: &ErrorKind) -> Rejection {
        let settings = &self.inner.settings;
        match kind {
            ErrorKind::InvalidSignature => rejection("the token's signature does not verify"),
            ErrorKind::InvalidIssuer => {
                rejection(format!("the token's issuer is not {:?}", settings.issuer))
            }
            ErrorKind::InvalidAudience => rejection(format!(
                "the token's audience is not {:?}",
                settings.audience
            )),
            ErrorKind::MissingRequiredClaim(claim) => {
                rejection(format!("the token has no {claim:?} claim"))
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                rejection(format!("the token's {claim:?} claim is malformed"))
            }
            ErrorKind::InvalidAlgorithm => rejection("the token's algorithm does not fit its key"),
            ErrorKind::ExpiredSignature => rejection("the token has expired"),
            ErrorKind::ImmatureSignature => rejection("the token is not valid yet"),
            _ => rejection("the token is not a well-formed JWT"),
        }
    }

    /// Now, in seconds since the Unix epoch.
    fn now(&self) -> u64 {
        u64::try_from(self.inner.clock.now().unix_micros().div_euclid(1_000_000)).unwrap_or(0)
    }
}

/// A [`Rejection`] saying `message`.
fn rejection(message: impl Into<String>) -> Rejection {
    Rejection(message.into())
}

/// A time claim (`exp`, `nbf`): absent, or whole seconds since the epoch.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| {
                // A JSON number may have a fraction; the seconds are what count.
                value
                    .as_f64()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e18)
                    .map(|s| s as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                rejection(format!(
                    "the token's {name:?} claim is not a time in seconds"
                ))
            }),
    }
}

/// Why a header did not decode: an algorithm not accepted (such as
/// `none`), else a malformed token.
fn header_rejection(token: &str) -> Rejection {
    let alg = token
        .split('.')
        .next()
        .and_then(|header| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header.trim_end_matches('='))
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
        .and_then(|header| header.get("alg").and_then(Value::as_str).map(shorten));
    match alg {
        Some(alg) => rejection(format!(
            "the token's algorithm {alg:?} is not accepted (only RS*, PS*, ES256, ES384 and EdDSA are)"
        )),
        None => rejection("the token is not a well-formed JWT"),
    }
}

/// `text` cut to 64 characters: a caller's own words, echoed in a message.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

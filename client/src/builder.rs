//! Connection settings: the per-call deadline, retries, a bearer token and
//! TLS, and building a [`Client`] from them.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::auth::BearerToken;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// The per-call deadline unless one is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long establishing the connection may take unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response accepted unless configured (the server's own
/// response cap).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// TLS settings for an `https://` endpoint: the CA to trust and, for a
/// server that authenticates its callers by certificate (mTLS), the client
/// certificate to present.
///
/// Using them needs the crate's `tls` feature (rustls with the ring
/// provider, and the platform's root certificates); without it, connecting
/// with TLS settings or to an `https://` endpoint fails with
/// [`Error::Config`]. [`TlsSettings::from_pem_files`] reads them from the
/// usual files.
///
/// ```
/// use sessiond_client::TlsSettings;
///
/// let tls = TlsSettings::new()
///     .ca_certificate_pem(b"-----BEGIN CERTIFICATE-----\n...".to_vec())
///     .domain_name("sessiond.internal");
/// assert!(format!("{tls:?}").contains("sessiond.internal"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM of the CA that signed the server's certificate; `None`: the
    /// platform's root certificates.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// PEM certificate and private key for mutual TLS.
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify the server's certificate against; `None`: the
    /// endpoint's host.
    pub domain_name: Option<String>,
}

impl TlsSettings {
    /// Settings that trust the platform's roots and present no client
    /// certificate.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA in `pem` (instead of the platform's roots).
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate_pem = Some(pem.into());
        self
    }

    /// Presents this certificate and key (both PEM) to the server.
    #[must_use]
    pub fn client_identity_pem(
        mut self,
        certificate: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity_pem = Some((certificate.into(), key.into()));
        self
    }

    /// Verifies the server's certificate against `name`.
    #[must_use]
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }

    /// Settings read from PEM files: the CA to trust (`None`: the
    /// platform's roots) and the client certificate and its private key
    /// for mTLS (both or neither).
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use sessiond_client::TlsSettings;
    ///
    /// let tls = TlsSettings::from_pem_files(
    ///     Some(Path::new("ca.pem")),
    ///     Some(Path::new("client.pem")),
    ///     Some(Path::new("client.key")),
    /// )?;
    /// # Ok::<(), sessiond_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`], naming the file, when a file cannot be read or
    /// holds no PEM block, or when a certificate comes without its key or a
    /// key without its certificate.
    pub fn from_pem_files(
        ca: Option<&Path>,
        certificate: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Self> {
        let mut tls = Self::new();
        if let Some(ca) = ca {
            tls.ca_certificate_pem = Some(read_pem("CA certificate", ca)?);
        }
        match (certificate, key) {
            (Some(certificate), Some(key)) => {
                tls.client_identity_pem = Some((
                    read_pem("client certificate", certificate)?,
                    read_pem("client key", key)?,
                ));
            }
            (None, None) => {}
            (Some(certificate), None) => {
                return Err(Error::Config(format!(
                    "the client certificate {} needs its private key",
                    certificate.display()
                )));
            }
            (None, Some(key)) => {
                return Err(Error::Config(format!(
                    "the client key {} needs its certificate",
                    key.display()
                )));
            }
        }
        Ok(tls)
    }
}

/// The contents of the PEM file `path` holding `what`.
fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read the {what} {}: {e}", path.display())))?;
    if !pem
        .windows(b"-----BEGIN ".len())
        .any(|w| w == b"-----BEGIN ")
    {
        return Err(Error::Config(format!(
            "the {what} {} is not PEM (no -----BEGIN line)",
            path.display()
        )));
    }
    Ok(pem)
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field(
                "ca_certificate_pem",
                &self.ca_certificate_pem.as_ref().map(|pem| pem.len()),
            )
            .field(
                "client_identity_pem",
                &self
                    .client_identity_pem
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

/// Settings for a [`Client`]; start from [`Client::builder`].
///
/// ```no_run
/// # async fn run() -> sessiond_client::Result<()> {
/// use std::time::Duration;
/// use sessiond_client::{Client, RetryPolicy};
///
/// let client = Client::builder()
///     .timeout(Duration::from_secs(5))
///     .bearer_token("s3cret")
///     .retry(RetryPolicy::never())
///     .connect("http://127.0.0.1:50051")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    /// The deadline of each call; `None`: none.
    timeout: Option<Duration>,
    /// How long connecting may take.
    connect_timeout: Duration,
    /// Sent as `authorization: Bearer …` with every call.
    bearer_token: Option<String>,
    /// For `https://` endpoints.
    tls: Option<TlsSettings>,
    /// For retryable calls.
    retry: RetryPolicy,
    /// The largest response accepted.
    max_response_bytes: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            bearer_token: None,
            tls: None,
            retry: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl ClientBuilder {
    /// The default settings: a [`DEFAULT_TIMEOUT`] deadline per call, the
    /// default [`RetryPolicy`], no token, no TLS.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives every call `timeout` to complete (sent to the server as
    /// `grpc-timeout`). Calls that wait on purpose (`GetReturnValue`, closing
    /// a session with a grace) get their wait on top.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Calls have no deadline.
    #[must_use]
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// How long establishing the connection may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends `authorization: Bearer TOKEN` with every call, and with every
    /// retry of it: a static token or a JWT, as the server is configured to
    /// accept. The token never appears in `Debug` output.
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Connects with TLS (needs the `tls` feature; see [`TlsSettings`]).
    #[must_use]
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Retries retryable calls per `retry`.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Accepts responses of up to `bytes`.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Connects to `endpoint` (`http://HOST:PORT`; a bare `HOST:PORT` means
    /// `http://`, or `https://` with TLS settings) and returns once the
    /// connection is up.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed endpoint or token, TLS settings
    /// with an `http://` endpoint, or TLS without the `tls` feature;
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect(self, endpoint: impl AsRef<str>) -> Result<Client> {
        let (name, endpoint) = self.endpoint(endpoint.as_ref())?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            endpoint: name,
            source,
        })?;
        self.with_channel(channel)
    }

    /// Like [`ClientBuilder::connect`], but connects on the first call (and
    /// reconnects as needed); a server that cannot be reached then fails
    /// that call with [`Error::Status`] `UNAVAILABLE`.
    ///
    /// # Errors
    /// [`Error::Config`] as for [`ClientBuilder::connect`].
    pub fn connect_lazy(self, endpoint: impl AsRef<str>) -> Result<Client> {
        let (_, endpoint) = self.endpoint(endpoint.as_ref())?;
        let channel = endpoint.connect_lazy();
        self.with_channel(channel)
    }

    /// A client on an existing channel (whose own settings, such as TLS,
    /// stay as they are).
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed bearer token.
    pub fn with_channel(self, channel: Channel) -> Result<Client> {
        let auth = BearerToken::new(self.bearer_token.as_deref())?;
        Ok(Client::assemble(
            channel,
            auth,
            self.timeout,
            self.retry,
            self.max_response_bytes,
        ))
    }

    /// The endpoint to connect to, with its printable name.
    fn endpoint(&self, endpoint: &str) -> Result<(String, Endpoint)> {
        let endpoint = endpoint.trim();
        let url = if endpoint.contains("://") {
            endpoint.to_owned()
        } else if self.tls.is_some() {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        };
        let parsed = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::Config(format!("invalid endpoint {endpoint:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let parsed = match (parsed.uri().scheme_str() == Some("https"), &self.tls) {
            (true, tls) => with_tls(parsed, tls.clone().unwrap_or_default())?,
            // tonic would connect in plain text, sending the token in the
            // clear and no client certificate.
            (false, Some(_)) => {
                return Err(Error::Config(format!(
                    "TLS settings need an https:// endpoint, not {url}"
                )));
            }
            (false, None) => parsed,
        };
        Ok((url, parsed))
    }
}

#[cfg(feature = "tls")]
fn with_tls(endpoint: Endpoint, tls: TlsSettings) -> Result<Endpoint> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let mut config = ClientTlsConfig::new();
    config = match tls.ca_certificate_pem {
        Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
        None => config.with_native_roots(),
    };
    if let Some((certificate, key)) = tls.client_identity_pem {
        config = config.identity(Identity::from_pem(certificate, key));
    }
    if let Some(name) = tls.domain_name {
        config = config.domain_name(name);
    }
    endpoint.tls_config(config).map_err(|e| {
        // tonic's error says "transport error"; its causes say what is wrong
        // (a key that is not a private key…).
        let mut message = format!("TLS settings: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Error::Config(message)
    })
}

#[cfg(not(feature = "tls"))]
#[allow(clippy::needless_pass_by_value)] // the same signature as with the feature
fn with_tls(_endpoint: Endpoint, _tls: TlsSettings) -> Result<Endpoint> {
    Err(Error::Config(
        "TLS needs the `tls` feature of sessiond-client".to_owned(),
    ))
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field(
                "bearer_token",
                &self
                    .bearer_token
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .field("tls", &self.tls)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_means_http_and_garbage_is_a_config_error() {
        let builder = ClientBuilder::new();
        let (name, _) = builder.endpoint("127.0.0.1:50051").unwrap();
        assert_eq!(name, "http://127.0.0.1:50051");
        assert!(matches!(
            builder.endpoint("http://bad host"),
            Err(Error::Config(_))
        ));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_without_the_feature_is_a_config_error() {
        let builder = ClientBuilder::new();
        let Err(Error::Config(message)) = builder.endpoint("https://sessiond.internal:443") else {
            panic!("https needs the tls feature");
        };
        assert!(message.contains("`tls` feature"), "{message}");
        assert!(
            ClientBuilder::new()
                .tls(TlsSettings::new())
                .endpoint("sessiond.internal:443")
                .is_err()
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn with_the_feature_tls_settings_make_https_endpoints() {
        let (name, _) = ClientBuilder::new()
            .tls(TlsSettings::new().domain_name("sessiond.internal"))
            .endpoint("10.0.0.7:443")
            .unwrap();
        assert_eq!(name, "https://10.0.0.7:443");
        assert!(
            ClientBuilder::new()
                .endpoint("https://sessiond.internal:443")
                .is_ok()
        );
    }

    #[test]
    fn tls_settings_are_read_from_pem_files_that_name_themselves_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str, label: &str| {
            let path = dir.path().join(name);
            let text = format!("-----BEGIN {label}-----\nMIIB\n-----END {label}-----\n");
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca = pem("ca.pem", "CERTIFICATE");
        let cert = pem("client.pem", "CERTIFICATE");
        let key = pem("client.key", "PRIVATE KEY");
        let der = dir.path().join("ca.der");
        std::fs::write(&der, [0x30, 0x82, 0x01]).unwrap();
        let missing = dir.path().join("missing.pem");

        let tls = TlsSettings::from_pem_files(Some(&ca), Some(&cert), Some(&key)).unwrap();
        assert!(tls.ca_certificate_pem.is_some());
        let (certificate, private_key) = tls.client_identity_pem.unwrap();
        assert!(certificate.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert!(private_key.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            TlsSettings::from_pem_files(None, None, None).unwrap(),
            TlsSettings::new(),
            "no files: the platform's roots, no client certificate"
        );
        let config_error = |result: Result<TlsSettings>| match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        };
        let message = config_error(TlsSettings::from_pem_files(None, Some(&cert), None));
        assert!(
            message.contains("client.pem") && message.contains("key"),
            "{message}"
        );
        let message = config_error(TlsSettings::from_pem_files(None, None, Some(&key)));
        assert!(message.contains("client.key"), "{message}");
        let message = config_error(TlsSettings::from_pem_files(Some(&missing), None, None));
        assert!(message.contains("missing.pem"), "{message}");
        let message = config_error(TlsSettings::from_pem_files(Some(&der), None, None));
        assert!(
            message.contains("ca.der") && message.contains("not PEM"),
            "{message}"
        );
    }

    #[test]
    fn tls_settings_with_an_http_endpoint_are_refused_not_ignored() {
        let Err(Error::Config(message)) = ClientBuilder::new()
            .tls(TlsSettings::new())
            .endpoint("http://127.0.0.1:50051")
        else {
            panic!("TLS settings must not fall back to plain text");
        };
        assert!(message.contains("https://"), "{message}");
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let builder = ClientBuilder::new()
            .bearer_token("s3cret")
            .tls(TlsSettings::new().client_identity_pem("CERT", "PRIVATE KEY"));
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
}

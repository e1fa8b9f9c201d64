//! TLS for the server, and who a client certificate names.
//!
//! [`server_config`] reads the server's certificate and key (and, for
//! mutual TLS, the CA that client certificates must chain to) and checks
//! them before the server starts, so that a bad file is reported by name
//! rather than at the first connection. [`peer_subject`] reads the
//! verified client certificate that tonic puts in each request's
//! extensions, for a tower layer below tonic's routing; [`subject_of`]
//! says who a certificate names.
//!
//! Everything here uses rustls with the ring provider (tonic's
//! `tls-ring`), never aws-lc.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use x509_parser::extensions::GeneralName;

/// The TLS configuration for a server with the PEM certificate chain at
/// `cert` and private key at `key`. With `client_ca`, a certificate a
/// client presents must chain to a CA certificate in that PEM file, or the
/// handshake fails. A client may also connect without one: module runs
/// call back with their bearer token only, and the authenticating layer
/// (`auth::layer`) refuses every call that carries neither a verified
/// certificate nor a bearer credential.
///
/// # Errors
/// A message naming the file and the problem: it cannot be read, holds no
/// PEM certificate (or key), a CA certificate is unusable, or the key does
/// not go with the certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, String> {
    let cert_pem = read(cert, "certificate")?;
    let chain = certificates(cert, &cert_pem)?;
    let key_pem = read(key, "private key")?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{}: no PEM private key ({e})", key.display()))?;

    // Build rustls' own configuration once, to catch now what tonic would
    // otherwise report only when the server starts.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut config = ServerTlsConfig::new();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let ca_pem = read(ca, "client CA certificate")?;
            let mut roots = rustls::RootCertStore::empty();
            for ca_cert in certificates(ca, &ca_pem)? {
                roots
                    .add(ca_cert)
                    .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("{}: cannot verify clients with it: {e}", ca.display()))?;
            config = config
                .client_ca_root(Certificate::from_pem(ca_pem))
                .client_auth_optional(true);
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, private_key).map_err(|e| {
        format!(
            "the key in {} cannot serve the certificate in {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(config.identity(Identity::from_pem(cert_pem, key_pem)))
}

/// The contents of `path`, a `what` file.
fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))
}

/// The PEM certificates in `pem`, read from `path`: at least one.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: malformed PEM ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Who the DER certificate `cert_der` names: its first DNS or URI
/// subjectAltName, else its subject's common name; `None` if it has
/// neither or does not parse.
#[must_use]
pub fn subject_of(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::DNSName(name) | GeneralName::URI(name) if !name.is_empty() => {
                    Some((*name).to_owned())
                }
                _ => None,
            })
        });
    from_san.or_else(|| {
        let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
        (!cn.is_empty()).then(|| cn.to_owned())
    })
}

/// Who the client certificate of `request`'s connection names
/// ([`subject_of`] its leaf certificate), for a tower layer under a tonic
/// server with TLS; `None` without TLS or without a client certificate.
#[must_use]
pub fn peer_subject(extensions: &http::Extensions) -> Option<String> {
    let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certs = info.peer_certs()?;
    subject_of(certs.first()?)
}

/// TLS for calls to other replicas at `https://` endpoints: trusting
/// `--tls-ca`, and presenting this server's certificate when client
/// certificates are verified.
///
/// # Errors
/// A message naming a file that cannot be read.
pub fn client_config(
    security: &crate::config::security::SecurityConfig,
) -> Result<Option<tonic::transport::ClientTlsConfig>, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let Some(ca) = &security.tls_ca else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let Some(files) = &security.tls
        && files.client_ca.is_some()
    {
        config = config.identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use rcgen::string::Ia5String;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    use tonic::transport::{Channel, ClientTlsConfig, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    /// A certificate and its key, in PEM.
    struct Pem {
        cert: String,
        key: String,
    }

    /// A CA and what it can sign.
    struct TestCa {
        issuer: Issuer<'static, KeyPair>,
        cert: String,
    }

    impl TestCa {
        fn new(name: &str) -> Self {
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap().pem();
            Self {
                issuer: Issuer::new(params, key),
                cert,
            }
        }

        /// A leaf certificate with `sans` and common name `cn`.
        fn leaf(
            &self,
            cn: Option<&str>,
            sans: Vec<SanType>,
            usage: ExtendedKeyUsagePurpose,
        ) -> Pem {
            let mut params = CertificateParams::default();
            params.subject_alt_names = sans;
            params.distinguished_name = DistinguishedName::new();
            if let Some(cn) = cn {
                params.distinguished_name.push(DnType::CommonName, cn);
            }
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap().pem();
            Pem {
                cert,
                key: key.serialize_pem(),
            }
        }

        fn server(&self) -> Pem {
            self.leaf(
                None,
                vec![dns("localhost")],
                ExtendedKeyUsagePurpose::ServerAuth,
            )
        }

        fn client(&self, sans: Vec<SanType>) -> Pem {
            self.leaf(Some("client-cn"), sans, ExtendedKeyUsagePurpose::ClientAuth)
        }
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(Ia5String::try_from(name).unwrap())
    }

    fn uri(name: &str) -> SanType {
        SanType::URI(Ia5String::try_from(name).unwrap())
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_subject_is_the_first_dns_or_uri_san_else_the_common_name() {
        let ca = TestCa::new("test ca");
        let usage = || ExtendedKeyUsagePurpose::ClientAuth;
        let cases = [
            (
                Some("cn"),
                vec![dns("billing.internal"), uri("spiffe://x/y")],
                Some("billing.internal"),
            ),
            (
                Some("cn"),
                vec![uri("spiffe://example.org/billing"), dns("b.internal")],
                Some("spiffe://example.org/billing"),
            ),
            (
                Some("cn"),
                vec![
                    SanType::Rfc822Name(Ia5String::try_from("a@example.org").unwrap()),
                    dns("after.email"),
                ],
                Some("after.email"),
            ),
            (
                Some("reports"),
                vec![SanType::IpAddress([10, 0, 0, 1].into())],
                Some("reports"),
            ),
            (Some("reports"), vec![], Some("reports")),
            (None, vec![], None),
        ];
        for (cn, sans, expected) in cases {
            let pem = ca.leaf(cn, sans, usage());
            assert_eq!(subject_of(&der(&pem.cert)).as_deref(), expected);
        }
        assert_eq!(subject_of(&der(&ca.cert)).as_deref(), Some("test ca"));
        assert_eq!(subject_of(b"not a certificate"), None);
    }

    /// PEM files for a server and its client CA, in a temporary directory.
    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new(ca: &TestCa) -> Self {
            let files = Self {
                dir: tempfile::tempdir().unwrap(),
            };
            let server = ca.server();
            files.write("server.pem", &server.cert);
            files.write("server.key", &server.key);
            files.write("ca.pem", &ca.cert);
            files
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn write(&self, name: &str, content: &str) -> PathBuf {
            let path = self.path(name);
            std::fs::write(&path, content).unwrap();
            path
        }
    }

    #[test]
    fn server_config_names_the_file_that_is_wrong() {
        let ca = TestCa::new("test ca");
        let files = Files::new(&ca);
        let (cert, key, ca_pem) = (
            files.path("server.pem"),
            files.path("server.key"),
            files.path("ca.pem"),
        );
        server_config(&cert, &key, None).unwrap();
        server_config(&cert, &key, Some(&ca_pem)).unwrap();

        let garbage = files.write("garbage.pem", "hello\n");
        let missing = files.path("missing.pem");
        let other_key = files.write("other.key", &ca.server().key);
        let key_as_cert = files.write("key-as-cert.pem", &std::fs::read_to_string(&key).unwrap());
        let cases: [(&Path, &Path, Option<&Path>, &Path, &str); 6] = [
            (
                &missing,
                &key,
                None,
                &missing,
                "cannot read the certificate file",
            ),
            (
                &cert,
                &missing,
                None,
                &missing,
                "cannot read the private key file",
            ),
            (&garbage, &key, None, &garbage, "no PEM certificate"),
            (&cert, &garbage, None, &garbage, "no PEM private key"),
            (
                &cert,
                &other_key,
                None,
                &other_key,
                "cannot serve the certificate",
            ),
            (
                &cert,
                &key,
                Some(&key_as_cert),
                &key_as_cert,
                "no PEM certificate",
            ),
        ];
        for (cert, key, ca, named, words) in cases {
            let err = server_config(cert, key, ca).unwrap_err();
            assert!(err.contains(&named.display().to_string()), "{err}");
            assert!(err.contains(words), "{err}");
        }
    }

    #[test]
    fn a_request_without_tls_has_no_peer_subject() {
        assert_eq!(peer_subject(&http::Extensions::new()), None);
    }

    /// A health server with mutual TLS on 127.0.0.1, recording the peer
    /// subject of every request; stops when the returned sender drops.
    async fn serve(
        files: &Files,
        seen: Arc<Mutex<Vec<Option<String>>>>,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let tls = server_config(
            &files.path("server.pem"),
            &files.path("server.key"),
            Some(&files.path("ca.pem")),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let record = tower::ServiceBuilder::new().map_request(
            move |request: http::Request<tonic::body::Body>| {
                seen.lock()
                    .unwrap()
                    .push(peer_subject(request.extensions()));
                request
            },
        );
        let (_, health) = tonic_health::server::health_reporter();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .tls_config(tls)
            .unwrap()
            .layer(record)
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            );
        tokio::spawn(server);
        (addr, stop)
    }

    /// A health check over TLS, as a client with `identity`, if any.
    async fn check(addr: SocketAddr, ca: &TestCa, identity: Option<&Pem>) -> Result<(), String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.cert))
            .domain_name("localhost");
        if let Some(pem) = identity {
            tls = tls.identity(Identity::from_pem(&pem.cert, &pem.key));
        }
        let channel = Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(drop)
            .map_err(|e| format!("check: {e}"))
    }

    #[tokio::test]
    async fn the_server_sees_the_client_certificate_and_refuses_one_from_another_ca() {
        let ca = TestCa::new("test ca");
        let files = Files::new(&ca);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (addr, _stop) = serve(&files, Arc::clone(&seen)).await;

        let billing = ca.client(vec![uri("spiffe://example.org/billing")]);
        check(addr, &ca, Some(&billing)).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [Some("spiffe://example.org/billing".to_owned())]
        );

        let stranger_ca = TestCa::new("stranger ca");
        let stranger = stranger_ca.client(vec![dns("stranger")]);
        check(addr, &ca, Some(&stranger)).await.unwrap_err();
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "a client with a certificate from another CA never reached a service"
        );

        // Without a certificate the call arrives with no subject: the
        // authenticating layer decides (it wants a bearer credential then).
        check(addr, &ca, None).await.unwrap();
        assert_eq!(seen.lock().unwrap().last(), Some(&None));
    }
}

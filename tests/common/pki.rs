//! Certificates made at test time for TLS and mutual TLS: a CA, a server
//! certificate for `localhost` / `127.0.0.1`, client certificates naming a
//! subject, and a second CA the server does not trust. Written as PEM files
//! into a temporary directory, for in-process servers, `sessionctl` and
//! Python alike.

use std::path::{Path, PathBuf};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sessiond::config::security::TlsFiles;
use tempfile::TempDir;

/// The subject the trusted client certificate names in its first SAN (a
/// URI); its common name says something else, so that a server taking the
/// CN instead is caught.
pub const CLIENT_SUBJECT: &str = "spiffe://example.org/billing";
/// The common name of every client certificate.
pub const CLIENT_CN: &str = "client-cn";
/// The subject of the client certificate from the CA the server does not
/// trust.
pub const STRANGER_SUBJECT: &str = "stranger.example.org";

/// A certificate authority that signs what the tests need.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert: String,
}

impl Authority {
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

    /// A leaf certificate and its key (PEM) for `sans`, used for `usage`.
    fn leaf(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().pem();
        (cert, key.serialize_pem())
    }
}

/// A SAN of type DNS name.
fn dns(name: &str) -> SanType {
    SanType::DnsName(Ia5String::try_from(name).unwrap())
}

/// A SAN of type URI.
fn uri(name: &str) -> SanType {
    SanType::URI(Ia5String::try_from(name).unwrap())
}

/// PEM files in a temporary directory:
/// - `ca.pem`: the CA the server trusts for clients and that signed
///   `server.pem` / `server.key` (for `localhost` and `127.0.0.1`);
/// - `client.pem` / `client.key`: signed by that CA, naming
///   [`CLIENT_SUBJECT`];
/// - `stranger.pem` / `stranger.key`: a client certificate for
///   [`STRANGER_SUBJECT`] from another CA (`stranger-ca.pem`).
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Makes every certificate and writes the files.
    pub fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let ca = Authority::new("sessiond test ca");
        let (server_cert, server_key) = ca.leaf(
            "localhost",
            vec![dns("localhost"), SanType::IpAddress([127, 0, 0, 1].into())],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = ca.leaf(
            CLIENT_CN,
            vec![uri(CLIENT_SUBJECT), dns("second.example.org")],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let stranger_ca = Authority::new("stranger ca");
        let (stranger_cert, stranger_key) = stranger_ca.leaf(
            CLIENT_CN,
            vec![dns(STRANGER_SUBJECT)],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        for (name, content) in [
            ("ca.pem", &ca.cert),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("client.pem", &client_cert),
            ("client.key", &client_key),
            ("stranger-ca.pem", &stranger_ca.cert),
            ("stranger.pem", &stranger_cert),
            ("stranger.key", &stranger_key),
        ] {
            std::fs::write(pki.path(name), content).unwrap();
        }
        pki
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file `name` in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The contents of the file `name`.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// A server's TLS settings: `server.pem` / `server.key`, with client
    /// certificates verified against `ca.pem`.
    pub fn server_with_client_ca(&self) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: Some(self.path("ca.pem")),
        }
    }
}

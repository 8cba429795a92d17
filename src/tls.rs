//! TLS for both ends, with rustls and its `ring` provider only.
//!
//! - Server: [`ServerTls`] holds the certificate and key named in the config. The acceptor
//!   asks a resolver for the pair on every handshake, so [`ServerTls::reload`] (on SIGHUP)
//!   swaps in a renewed pair for new connections while open ones keep theirs.
//! - Clients: [`client_config`] trusts the platform's roots plus every CA added with
//!   [`add_ca_file`] (`--ca-file`), and every client of the project (WebSocket, HTTP, load,
//!   Redis) takes its configuration from here. [`describe_handshake_error`] turns a failed
//!   handshake into a sentence that says what to do (wrong scheme for the port, an untrusted
//!   or misnamed certificate).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// A PEM file larger than this is not a certificate or key anyone meant to give.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The first byte of every TLS connection (a handshake record): how the listener tells a TLS
/// client from a plain one.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// rustls marks `ring` as lacking post-quantum key exchange and steers toward aws-lc-rs;
/// that one needs cmake and clang to build, which a fresh machine with only the Rust
/// toolchain lacks. Classical key exchange is what every client here negotiates today.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The one crypto provider compiled in.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(ring_provider())).clone()
}

/// Make `ring` the process-wide default, for libraries that build their own configuration
/// (the Redis client). Installing twice is harmless: the first one stays.
pub fn install_default_provider() {
    let _ = ring_provider().install_default();
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "the {what} {} is larger than {MAX_PEM_BYTES} bytes; is it the right file?",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Every certificate in a PEM file, in order; at least one.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_pem(path, "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_pem(path, "key file")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{}: no private key in it (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            path.display()
        )
    })
}

/// A certificate chain and its key, checked to belong together.
fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain = load_certificates(cert)?;
    let key_der = load_key(key)?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "the key {} does not fit the certificate {}: {e}",
                key.display(),
                cert.display()
            )
        })
}

/// The pair every new handshake is given.
#[derive(Debug)]
struct Resolver(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The server's side: the files, the pair in use, and the acceptor built on them.
pub struct ServerTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<ArcSwap<CertifiedKey>>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Load the pair; an unreadable file, a key that does not fit, or no certificate at all
    /// is an error to report before listening.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerTls>, String> {
        install_default_provider();
        let pair = load_pair(cert, key)?;
        let current = Arc::new(ArcSwap::new(pair));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(current.clone())));
        // The server speaks HTTP/1.1 only (WebSocket upgrades need it); saying so keeps
        // browsers from expecting h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(ServerTls {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// Read the files again (a renewed certificate). New handshakes get the new pair; open
    /// connections are untouched. On an error the pair in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let pair = load_pair(&self.cert_path, &self.key_path)?;
        self.current.store(pair);
        Ok(())
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A client configuration that trusts exactly the certificate this server presents now,
    /// whatever name it carries: the server's probes dial its own loopback address.
    pub fn pinned_client(self: &Arc<Self>) -> Result<Arc<ClientConfig>, String> {
        let verifier = Arc::new(Pinned {
            server: self.clone(),
        });
        Ok(Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }
}

/// Accepts the end-entity certificate the server itself is using, and nothing else.
#[derive(Debug)]
struct Pinned {
    server: Arc<ServerTls>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let current = self.server.current.load();
        match current.cert.first() {
            Some(ours) if ours.as_ref() == end_entity.as_ref() => {
                Ok(ServerCertVerified::assertion())
            }
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// CAs added with `--ca-file`, as certificates and as the PEM text they came in (the Redis
/// client takes PEM).
#[derive(Default)]
struct ExtraRoots {
    certs: Vec<CertificateDer<'static>>,
    pem: Vec<u8>,
}

fn extra_roots() -> &'static RwLock<ExtraRoots> {
    static EXTRA: OnceLock<RwLock<ExtraRoots>> = OnceLock::new();
    EXTRA.get_or_init(Default::default)
}

fn cached_client() -> &'static RwLock<Option<Arc<ClientConfig>>> {
    static CLIENT: OnceLock<RwLock<Option<Arc<ClientConfig>>>> = OnceLock::new();
    CLIENT.get_or_init(Default::default)
}

fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a platform root certificate could not be read");
        }
        found.certs
    })
}

/// Trust the CA certificates in the PEM file at `path` too (a private CA, a self-signed
/// server), for every client in this process. Returns how many were added.
pub fn add_ca_file(path: &Path) -> Result<usize, String> {
    let certs = load_certificates(path)?;
    let pem = read_pem(path, "CA file")?;
    let count = certs.len();
    let mut extra = extra_roots().write().unwrap_or_else(|p| p.into_inner());
    extra.certs.extend(certs);
    extra.pem.extend_from_slice(&pem);
    extra.pem.push(b'\n');
    drop(extra);
    *cached_client().write().unwrap_or_else(|p| p.into_inner()) = None;
    Ok(count)
}

/// The PEM text of every CA added with [`add_ca_file`], if any.
pub fn extra_ca_pem() -> Option<Vec<u8>> {
    let extra = extra_roots().read().unwrap_or_else(|p| p.into_inner());
    (!extra.pem.is_empty()).then(|| extra.pem.clone())
}

/// The configuration every TLS client of the project uses: platform roots and `--ca-file`.
pub fn client_config() -> Result<Arc<ClientConfig>, String> {
    if let Some(config) = cached_client()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        return Ok(config.clone());
    }
    let mut roots = RootCertStore::empty();
    let (_, _) = roots.add_parsable_certificates(platform_roots().iter().cloned());
    {
        let extra = extra_roots().read().unwrap_or_else(|p| p.into_inner());
        for cert in &extra.certs {
            roots
                .add(cert.clone())
                .map_err(|e| format!("a --ca-file certificate cannot be a root: {e}"))?;
        }
    }
    let config = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    *cached_client().write().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
    Ok(config)
}

/// An HTTP client (replay's `http` steps) with the same trust as every other client.
pub fn http_client() -> Result<reqwest::Client, String> {
    let config = client_config()?;
    reqwest::Client::builder()
        .tls_backend_preconfigured((*config).clone())
        // A step's headers (a Talo session) and body (a password) are for the target alone:
        // a 3xx is the step's answer, never a trip to the host it names.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Run the client side of a handshake with `host` over `stream`.
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    host: &str,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host:?} is not a name a certificate can be checked against"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| describe_handshake_error(host, &e))
}

/// What a failed client handshake means for the person who asked for it.
pub fn describe_handshake_error(host: &str, error: &io::Error) -> String {
    let inner = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidMessage(_)) => format!(
            "{host} did not answer in TLS: this port speaks plain text; use ws:// or http://"
        ),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature,
        )) => {
            format!(
                "the certificate of {host} is not signed by a CA this machine trusts; \
                 pass --ca-file PEM with that CA (or the self-signed certificate)"
            )
        }
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => format!("the certificate of {host} is for another name: connect by a name it lists"),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
        )) => format!("the certificate of {host} has expired"),
        // `openssl req -x509` marks its certificates CA:TRUE unless told otherwise, and a CA
        // certificate may not be a server's own.
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            format!(
                "the certificate of {host} is a CA certificate, which cannot be a server's own; \
                 make one with basicConstraints CA:FALSE (openssl req -x509 … -addext \
                 basicConstraints=critical,CA:FALSE) or sign a server certificate with that CA"
            )
        }
        Some(rustls::Error::InvalidCertificate(other)) => format!(
            "the certificate of {host} was not accepted ({other:?}); if it is self-signed or from \
             a private CA, pass --ca-file PEM with that CA"
        ),
        Some(other) => format!("the TLS handshake with {host} failed: {other}"),
        None if error.kind() == io::ErrorKind::UnexpectedEof => format!(
            "{host} closed the connection during the TLS handshake (a plain-text port, or a \
             server that refuses this client)"
        ),
        None => format!("the TLS handshake with {host} failed: {error}"),
    }
}

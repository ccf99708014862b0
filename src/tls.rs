//! TLS for ringway's network edges: rustls with its `ring` provider (no
//! OpenSSL linkage), TLS 1.2 and 1.3 only.
//!
//! [`server_config`] loads a PEM certificate chain and its private key
//! (and, for mutual TLS, the CA that client certificates must be signed
//! by) into the [`rustls::ServerConfig`] a TLS input serves with;
//! validation calls it at start (and `ringway check`) so a missing,
//! unreadable or invalid file is one line and exit 2, and the pipeline
//! calls it again to build the input, as does a reload at SIGHUP
//! ([`crate::reload`]). The sockets stay on io_uring: an input feeds
//! rustls the bytes its receives brought (see `input::tls`).
//!
//! [`connector`] is the client side, for the `https://`, `otlp:https://`
//! and `tcp:…,tls` outputs: a [`Connector`] holds the
//! [`rustls::ClientConfig`] (built once per output at start, and by
//! validation so that `ringway check` refuses a bad `ca=`, `cert=` or
//! `key=`) and the name the server's certificate must carry. Servers are
//! checked against the system's CA certificates (read once per process,
//! [`system_roots`]) or the output's `ca=` file.

use crate::config::{TlsClientOptions, TlsFiles};
use crate::credentials::read_bounded;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Largest certificate or key file read: a chain of a few certificates is
/// a few KiB; anything this large is the wrong file.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The protocol versions every TLS edge speaks (no SSL 3, TLS 1.0 or 1.1:
/// rustls never implemented them).
static PROTOCOL_VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// The server side of a TLS input: `files.cert` (a PEM chain, the
/// server's own certificate first) and `files.key` (a PEM private key:
/// PKCS#8, PKCS#1 or SEC1). With `files.client_ca` (PEM, one or more CA
/// certificates) every client must present a certificate that chains to
/// one of them (mutual TLS); without it none is asked for. `Err` is one
/// line naming the file and what is wrong with it.
pub(crate) fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, String> {
    let (cert, key) = (&files.cert, &files.key);
    let chain = read_certificates("certificate", cert)?;
    let private_key = read_private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&PROTOCOL_VERSIONS)
        .map_err(|error| format!("TLS set-up failed: {error}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let roots = read_client_ca(client_ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| format!("TLS client CA {}: {error}", client_ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|error| {
            format!(
                "TLS key {} does not go with certificate {}: {error}",
                key.display(),
                cert.display()
            )
        })?;
    // No TLS 1.3 session tickets: they are the only bytes a server sends
    // after the handshake, and a log sender that writes, closes and never
    // reads would answer them with a reset. Senders keep their connections
    // open, so resumption buys little.
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The certificates of a PEM file (`what`: "certificate", "client CA"),
/// at least one.
fn read_certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = read_bounded(&format!("TLS {what}"), path, MAX_PEM_BYTES)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("TLS {what} {shown}: not valid PEM: {error}"))?;
    if certificates.is_empty() {
        return Err(format!(
            "TLS {what} {shown}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certificates)
}

/// The CA certificates of a client CA file, as rustls's trust anchors.
fn read_client_ca(path: &Path) -> Result<rustls::RootCertStore, String> {
    read_ca("client CA", path)
}

/// The CA certificates of a PEM file (`what`: the file's role, for
/// messages) as rustls's trust anchors. Every certificate in it must be a
/// usable anchor: one that is not is most likely the wrong file, and a
/// silently smaller set of CAs would refuse peers for no reason the
/// operator can see.
fn read_ca(what: &str, path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for (index, certificate) in read_certificates(what, path)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|error| {
            format!(
                "TLS {what} {}: certificate {} is not a usable CA certificate: {error}",
                path.display(),
                index + 1
            )
        })?;
    }
    Ok(roots)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::Error;
    let shown = path.display();
    let bytes = read_bounded("TLS key", path, MAX_PEM_BYTES)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        Error::NoItemsFound => format!(
            "TLS key {shown}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
        ),
        error => format!("TLS key {shown}: not a valid PEM private key: {error}"),
    })
}
/// What a TLS output connects with: its client configuration, built once
/// at start and shared by every connection (and so every worker) of the
/// output, and the name the server's certificate must carry (sent as SNI
/// when it is a DNS name).
#[derive(Clone)]
pub(crate) struct Connector {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// The client side of a TLS output that connects to `host`: the server's
/// certificate must chain to `options.ca` (PEM) or else to one of the
/// system's CA certificates, and carry `options.server_name` or else
/// `host`; with `options.cert`/`options.key` the client shows that
/// certificate (mutual TLS). `http`: the output speaks HTTP/1.1 (offered
/// by ALPN). `Err` is one line naming the file or the name at fault.
pub(crate) fn connector(
    options: &TlsClientOptions,
    host: &str,
    http: bool,
) -> Result<Connector, String> {
    let name = options.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string()).map_err(|_| {
        format!(
            "TLS: '{name}' is not a name a certificate can be checked against (a DNS name or an IP address); give server_name=NAME"
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&PROTOCOL_VERSIONS)
        .map_err(|error| format!("TLS set-up failed: {error}"))?;
    let builder = if options.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
    } else {
        let roots = match &options.ca {
            Some(ca) => Arc::new(read_ca("CA", ca)?),
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certificates("certificate", cert)?;
            let private_key = read_private_key(key)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|error| {
                    format!(
                        "TLS key {} does not go with certificate {}: {error}",
                        key.display(),
                        cert.display()
                    )
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    if http {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(Connector {
        config: Arc::new(config),
        server_name,
    })
}

/// The system's CA certificates (`/etc/ssl/certs` and the like, where
/// `rustls-native-certs` finds them; `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// override), read once per process: every output without `ca=` shares
/// them. A system with none is an error at start naming the way out.
fn system_roots() -> Result<Arc<rustls::RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<rustls::RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            // A certificate the system has that rustls cannot use (an old
            // format, a bad encoding) is skipped, as every TLS client does.
            let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|error| format!(" ({error})"))
                    .unwrap_or_default();
                return Err(format!(
                    "TLS: no CA certificates found on this system{why}; install them (e.g. the ca-certificates package) or give the output ca=FILE"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// `insecure_skip_verify=true`: any server certificate is taken, whoever
/// signed it and whatever name it carries. The handshake's signatures are
/// still checked (they prove the server holds the key of the certificate
/// it sent, which costs nothing and keeps the handshake honest), but
/// anyone on the path can present a certificate of their own: this is for
/// trying a set-up out, and ringway warns at start and in `check`.
/// It keeps the provider's signature algorithms, which do those checks.
#[derive(Debug)]
struct NoVerification(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

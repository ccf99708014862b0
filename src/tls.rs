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

use crate::config::TlsFiles;
use crate::credentials::read_bounded;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;

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
/// Every certificate in it must be a usable anchor: one that is not is
/// most likely the wrong file, and a silently smaller set of CAs would
/// refuse clients for no reason the operator can see.
fn read_client_ca(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for (index, certificate) in read_certificates("client CA", path)?
        .into_iter()
        .enumerate()
    {
        roots.add(certificate).map_err(|error| {
            format!(
                "TLS client CA {}: certificate {} is not a usable CA certificate: {error}",
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

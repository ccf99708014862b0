//! TLS for ringway's network edges: rustls with its `ring` provider (no
//! OpenSSL linkage), TLS 1.2 and 1.3 only.
//!
//! [`server_config`] loads a PEM certificate chain and its private key into
//! the [`rustls::ServerConfig`] a TLS input serves with; validation calls it
//! at start (and `ringway check`) so a missing, unreadable or invalid file
//! is one line and exit 2, and the pipeline calls it again to build the
//! input. The sockets stay on io_uring: an input feeds rustls the bytes its
//! receives brought (see `input::tcp::tls`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Largest certificate or key file read: a chain of a few certificates is
/// a few KiB; anything this large is the wrong file.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The protocol versions every TLS edge speaks (no SSL 3, TLS 1.0 or 1.1:
/// rustls never implemented them).
static PROTOCOL_VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// The server side of a TLS input: `cert` (a PEM chain, the server's own
/// certificate first) and `key` (a PEM private key: PKCS#8, PKCS#1 or
/// SEC1). No client certificates are asked for. `Err` is one line naming
/// the file and what is wrong with it.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = read_certificates(cert)?;
    let private_key = read_private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&PROTOCOL_VERSIONS)
        .map_err(|error| format!("TLS set-up failed: {error}"))?
        .with_no_client_auth()
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
    Ok(Arc::new(config))
}

/// The bytes of a PEM file, bounded by [`MAX_PEM_BYTES`].
fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let metadata =
        std::fs::metadata(path).map_err(|error| format!("TLS {what} {shown}: {error}"))?;
    if !metadata.is_file() || metadata.len() > MAX_PEM_BYTES {
        return Err(format!(
            "TLS {what} {shown}: not a regular file of at most {MAX_PEM_BYTES} bytes"
        ));
    }
    std::fs::read(path).map_err(|error| format!("TLS {what} {shown}: {error}"))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = read_pem("certificate", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("TLS certificate {shown}: not valid PEM: {error}"))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {shown}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(chain)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::Error;
    let shown = path.display();
    let bytes = read_pem("key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        Error::NoItemsFound => format!(
            "TLS key {shown}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
        ),
        error => format!("TLS key {shown}: not a valid PEM private key: {error}"),
    })
}

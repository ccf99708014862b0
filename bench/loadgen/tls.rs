//! TLS for the load generators: rustls with the `ring` provider (the
//! library ringway's TLS inputs use), TLS 1.2 and 1.3.
//!
//! [`client_config`] trusts one PEM CA file (the benchmark's self-signed
//! certificate); [`server_config`] serves a PEM certificate and key (the
//! TLS floor). [`Stream`] is a connection that is plain TCP or TLS over
//! TCP, so a sender or a floor reads and writes either the same way.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certificates)
}

/// A client that trusts the CA certificates in `ca` (PEM).
pub(crate) fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates(ca)? {
        roots
            .add(certificate)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server with the PEM chain `cert` and its PEM private key `key`.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certificates(cert)?, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// One connection, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    /// A TLS client connection over `socket`, its handshake done (so a
    /// sender's clock starts after every handshake).
    pub(crate) fn client(
        socket: TcpStream,
        config: &Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> io::Result<Self> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let connection = ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Self::Client(Box::new(stream)))
    }

    /// A TLS server connection over an accepted `socket`; the handshake
    /// happens on the first read.
    pub(crate) fn server(
        socket: TcpStream,
        config: &Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let connection = ServerConnection::new(Arc::clone(config))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Self::Server(Box::new(StreamOwned::new(connection, socket))))
    }

    /// Ends the sending side: TLS close_notify (if TLS), then a TCP
    /// half-close, so the receiver reads its end of stream.
    pub(crate) fn shutdown_write(&mut self) {
        let socket = match self {
            Self::Plain(socket) => socket,
            Self::Client(stream) => {
                stream.conn.send_close_notify();
                let _ = stream.flush();
                &stream.sock
            }
            Self::Server(stream) => {
                stream.conn.send_close_notify();
                let _ = stream.flush();
                &stream.sock
            }
        };
        let _ = socket.shutdown(Shutdown::Write);
    }

    pub(crate) fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(socket) => socket,
            Self::Client(stream) => &stream.sock,
            Self::Server(stream) => &stream.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.read(buf),
            Self::Client(stream) => stream.read(buf),
            Self::Server(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.write(buf),
            Self::Client(stream) => stream.write(buf),
            Self::Server(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(socket) => socket.flush(),
            Self::Client(stream) => stream.flush(),
            Self::Server(stream) => stream.flush(),
        }
    }
}

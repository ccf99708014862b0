//! Client connections shared by the network outputs (`tcp:`, `http`,
//! `otlp`): [`connect`] resolves and connects with the output's timeout
//! and, for a TLS output, completes the handshake; the [`Stream`] it
//! returns is plaintext or TLS ([`TlsStream`], rustls over the blocking
//! socket) behind one `Read`/`Write`, and [`Stream::peer_closed`] notices a
//! connection the receiver closed.
//!
//! A TLS stream keeps the plaintext/ciphertext boundary explicit, so the
//! outputs' retry semantics hold over TLS as over TCP: `write` returns
//! the plaintext bytes rustls *accepted* (it encrypted them into its send
//! buffer, at most [`TLS_SEND_BUFFER_BYTES`]), and sends what it holds
//! before accepting more; a send that times out leaves the rest of those
//! records in rustls, and the next `write` or `flush` on the same
//! connection sends them first. So bytes counted as written are never
//! offered again on that connection, and a batch is done only after
//! `flush` put every record into the kernel.

use crate::tls::Connector;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The shortest wait for a TLS 1.3 server to refuse our certificate
/// after the handshake (see [`connect`]'s `confirm`).
const MIN_CONFIRM_WAIT: Duration = Duration::from_millis(100);

/// Ciphertext rustls holds for one connection before `write` stops
/// accepting plaintext (rustls's own default, said here).
const TLS_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Connects to `host:port`, resolving the name now, trying each address in
/// turn within `timeout` each; the stream gets `timeout` for reads and
/// writes. With `tls`, the handshake is done here (each of its reads and
/// writes within `timeout`), so a certificate the output refuses is a
/// connect error that says why.
///
/// `confirm` (the tcp output, which never hears back from its receiver):
/// under TLS 1.3 the client's handshake ends before the server has
/// checked the client's certificate, so a server that refuses it says so
/// only after our first batch is in the kernel, and that batch would be
/// lost while counted as delivered. So the handshake is confirmed: a
/// key update that asks for one back is sent, and the server's next
/// records are waited for (its key update, session tickets, or the alert
/// that refuses us) for twice the handshake's own time, at least
/// [`MIN_CONFIRM_WAIT`] and at most `timeout`: a server that answers
/// nothing by then (ringway's own TLS input does not answer key updates)
/// has had two round trips to refuse us, and is taken as accepting.
pub(crate) fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    tls: Option<&Connector>,
    confirm: bool,
) -> io::Result<Stream> {
    let socket = connect_tcp(host, port, timeout)?;
    let Some(tls) = tls else {
        return Ok(Stream::Plain(socket));
    };
    let failed = |error: io::Error| {
        io::Error::new(
            error.kind(),
            format!("TLS handshake with {host}:{port} failed: {error}"),
        )
    };
    let mut connection = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(|error| failed(io::Error::other(error)))?;
    connection.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
    let mut socket = socket;
    let started = std::time::Instant::now();
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).map_err(failed)?;
    }
    let mut tls = TlsStream { connection, socket };
    if confirm && tls.connection.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
        let wait = (started.elapsed() * 2).clamp(MIN_CONFIRM_WAIT, timeout.max(MIN_CONFIRM_WAIT));
        tls.confirm_handshake(wait, timeout).map_err(failed)?;
    }
    Ok(Stream::Tls(Box::new(tls)))
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last_error = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    }))
}

/// One output connection, plaintext or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    /// Boxed: a rustls connection is some KiB of state.
    Tls(Box<TlsStream>),
}

/// rustls's client state over a blocking socket (see the module's doc for
/// what `write` and `flush` promise).
pub(crate) struct TlsStream {
    connection: rustls::ClientConnection,
    socket: TcpStream,
}

impl Stream {
    /// The TCP socket underneath (for its timeouts).
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => &tls.socket,
        }
    }

    /// Whether the peer closed a connection we only write to (or keep
    /// idle): reads what is there without waiting; end of stream (or, over
    /// TLS, its close_notify or an alert) means closed. Bytes the peer sent
    /// are discarded (over TLS, after rustls decrypted them: TLS records
    /// cannot be skipped).
    pub fn peer_closed(&mut self) -> bool {
        match self {
            Stream::Plain(socket) => plain_peer_closed(socket),
            Stream::Tls(tls) => tls.peer_closed(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(tls) => tls.send_pending(),
        }
    }
}

impl TlsStream {
    /// Sends every TLS record rustls holds; a send that times out returns
    /// its error and keeps the rest for the next call.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.connection.wants_write() {
            if self.connection.write_tls(&mut self.socket)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// See [`connect`]'s `confirm`: waits up to `wait` for the server's
    /// first records after the handshake, then restores the socket's
    /// read `timeout`.
    fn confirm_handshake(&mut self, wait: Duration, timeout: Duration) -> io::Result<()> {
        self.connection
            .refresh_traffic_keys()
            .map_err(io::Error::other)?;
        self.send_pending()?;
        self.socket.set_read_timeout(Some(wait))?;
        let read = self.connection.read_tls(&mut self.socket);
        self.socket.set_read_timeout(Some(timeout))?;
        match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection after the handshake",
            )),
            Ok(_) => match self.connection.process_new_packets() {
                Ok(_) => Ok(()),
                Err(error) => Err(io::Error::new(io::ErrorKind::InvalidData, error)),
            },
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    fn peer_closed(&mut self) -> bool {
        if self.socket.set_nonblocking(true).is_err() {
            return true;
        }
        let mut scratch = [0u8; 512];
        let closed = loop {
            match self.connection.read_tls(&mut self.socket) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
            match self.connection.process_new_packets() {
                Ok(state) if state.peer_has_closed() => break true,
                Ok(_) => {}
                Err(_) => {
                    // The alert rustls queued for the peer, if it can go.
                    let _ = self.send_pending();
                    break true;
                }
            }
            // Plaintext the receiver sent (it has nothing to say to a log
            // sender): dropped, as over plain TCP.
            while matches!(self.connection.reader().read(&mut scratch), Ok(count) if count > 0) {}
        };
        closed || self.socket.set_nonblocking(false).is_err()
    }
}

impl Read for TlsStream {
    /// Plaintext from the server, reading TLS records as needed (each read
    /// of the socket within its timeout). Nothing waiting to be sent is
    /// sent first: an HTTP response that comes while the request could not
    /// go out whole (a 413, say) is still read. A close without
    /// close_notify is `UnexpectedEof`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.connection.reader().read(buf) {
                Ok(count) => return Ok(count),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            let at_end = self.connection.read_tls(&mut self.socket)? == 0;
            if let Err(error) = self.connection.process_new_packets() {
                let _ = self.send_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            if at_end {
                return match self.connection.reader().read(buf) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    result => result,
                };
            }
        }
    }
}

impl Write for TlsStream {
    /// Sends what rustls still holds, then hands it as much of `buf` as its
    /// send buffer takes, and returns that count: those bytes are taken,
    /// and an error sending them is returned by the next `write` or
    /// `flush` (see the module's doc).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_pending()?;
        let count = self.connection.writer().write(buf)?;
        // Start sending now; a timeout here is the next call's to report.
        let _ = self.send_pending();
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

fn plain_peer_closed(stream: &TcpStream) -> bool {
    let socket = socket2::SockRef::from(stream);
    let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); 512];
    loop {
        match socket.recv_with_flags(&mut scratch, libc::MSG_DONTWAIT) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

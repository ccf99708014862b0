//! Client connections shared by the network outputs (`tcp:`, `http`,
//! `otlp`): [`connect`] resolves and connects with the output's timeout,
//! [`peer_closed`] notices a connection the receiver closed.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connects to `host:port`, resolving the name now, trying each address in
/// turn within `timeout` each; the stream gets `timeout` for reads and writes.
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
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

/// Whether the peer closed a connection we only write to (or keep idle):
/// reads what is there without waiting; end of stream means closed. Bytes
/// the peer sent are discarded.
pub(crate) fn peer_closed(stream: &TcpStream) -> bool {
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

//! The `tcp:HOST:PORT` output: NDJSON over one TCP connection.
//!
//! A [`TcpSink`] is shared by the output's workers; the output is ordered
//! (see `worker::CommitOrder`), so its workers write one batch at a time, in
//! dispatch order, to the one connection, and the receiver sees each
//! input's lines in the order they were read. The connection is opened on
//! the first write (a receiver that is down is retried, not a start-up
//! failure). Before each batch a closed connection is noticed (the peer's
//! end of stream) and replaced.
//!
//! A receiver that stops reading makes a write time out (`--output-timeout`):
//! that is backpressure, not a failure of the connection, and the retry
//! resumes at the byte where the write stopped, on the same connection.
//! Over TLS (`tcp:HOST:PORT,tls`) the same holds: the bytes counted as
//! written are those rustls took and encrypted; the records it could not
//! send yet stay in it and go out first on the retry, on the same
//! connection (see `connect`), and the batch is done once `flush` has put
//! the last of them into the kernel.
//!
//! TCP has no application-level ack: a batch counts as delivered once the
//! kernel took all of it. When a connection really breaks (reset, broken
//! pipe, end of stream), the batch being written is sent again whole on the
//! next connection (its first lines may arrive twice, and the old
//! connection may end in a torn line), and what the kernel had not yet sent
//! from earlier batches is lost with the connection.

use crate::output::connect::{Stream, connect};
use crate::tls::Connector;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

pub(crate) struct TcpSink {
    host: String,
    port: u16,
    timeout: Duration,
    /// `Some` for `,tls`: every connection's handshake uses it.
    tls: Option<Connector>,
    stream: Mutex<Option<Stream>>,
}

impl TcpSink {
    pub fn new(host: &str, port: u16, timeout: Duration, tls: Option<Connector>) -> Self {
        Self {
            host: host.to_string(),
            port,
            timeout,
            tls,
            stream: Mutex::new(None),
        }
    }

    /// Writes `bytes[*written..]`; after an error the next call starts the
    /// batch again from its beginning on a new connection.
    pub fn write(&self, bytes: &[u8], written: &mut usize) -> io::Result<()> {
        let mut stream = self
            .stream
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if stream.as_mut().is_some_and(Stream::peer_closed) {
            *stream = None;
        }
        if stream.is_none() {
            *written = 0;
            *stream = Some(connect(
                &self.host,
                self.port,
                self.timeout,
                self.tls.as_ref(),
                true,
            )?);
        }
        let connection = stream.as_mut().expect("connected above");
        while *written < bytes.len() {
            match connection.write(&bytes[*written..]) {
                Ok(0) => {
                    *stream = None;
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(count) => *written += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // A receiver that stops reading (backpressure, e.g. ringway's
                // own TCP input): the send timed out, the connection is fine.
                // The retry resumes at `written` on the same connection, so
                // nothing is repeated and no line is torn.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(error);
                }
                Err(error) => {
                    *stream = None;
                    return Err(error);
                }
            }
        }
        // TLS records rustls still holds (nothing for plain TCP). A timeout
        // keeps the connection, and the retry, with every byte written,
        // comes straight here.
        match connection.flush() {
            Ok(()) => Ok(()),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(error)
            }
            Err(error) => {
                *stream = None;
                Err(error)
            }
        }
    }
}

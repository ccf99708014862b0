//! The TLS side of a `tcp:…,tls` connection (syslog over TLS, RFC 5425):
//! [`TlsSession`] wraps a rustls [`ServerConnection`] and is fed from, and
//! drains into, byte slices the I/O worker owns, so the socket I/O stays on
//! io_uring. The worker receives ciphertext into the connection's
//! [`TlsBuffers`] input range, [`TlsSession::feed`]s it to rustls,
//! [`TlsSession::take_plaintext`]s the decrypted bytes into the same range
//! of the connection table the plaintext input receives into (the framing
//! path is the same from there), and sends what
//! [`TlsSession::fill_send`] writes into the output range (handshake
//! replies, alerts) with io_uring sends.
//!
//! The reader's TLS steps (`TcpReader::pump_tls`, `send_tls`, `fail_tls`,
//! `handshake_timed_out`) are here too.
//!
//! Bounds: rustls holds at most one record being joined (its deframer:
//! 16 KiB + overhead, 64 KiB while joining a handshake message) and at
//! most 16 KiB of decrypted plaintext, a limit fixed inside rustls
//! (`read_tls` refuses more until it is read out); `feed` only feeds when
//! that plaintext was all taken. Outgoing TLS records are capped at
//! [`SEND_BUFFER_LIMIT`]. The rest is the start-up ranges of
//! [`TlsBuffers`].

use crate::input::net::{Region, count_failure};
use rustls::ServerConnection;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Bytes one receive of ciphertext asks for: one full TLS record.
pub(crate) const RECEIVE_BYTES: usize = 16 * 1024 + 2048 + 5;
/// Bytes one send of TLS records takes at most.
pub(crate) const SEND_BYTES: usize = 16 * 1024;
/// Most outgoing TLS bytes rustls may queue (it queues handshake flights
/// and alerts only: the input sends no application data).
const SEND_BUFFER_LIMIT: usize = 64 * 1024;
/// The first byte of a TLS handshake record: every TLS client opens with
/// one (its ClientHello).
const HANDSHAKE_RECORD: u8 = 0x16;
/// Bytes of a connection's start looked at to tell plaintext from garbage.
const PLAINTEXT_SNIFF_BYTES: usize = 16;

/// Why a TLS connection is closed before its end; each is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TlsFailure {
    /// Its first bytes are readable text, not a TLS record: a plaintext
    /// sender on the TLS port.
    Plaintext,
    /// A record that is not TLS or does not decrypt.
    BadRecord(String),
    /// The handshake failed (no common version or cipher suite, an alert
    /// from the peer, …).
    Handshake(String),
    /// Mutual TLS: the client presented no certificate, or one that does
    /// not chain to the client CA (or is expired, or not for a client).
    ClientCertRefused(String),
}

/// One TLS connection's state beside its connection (the TCP input's
/// `Conn`, and the OTLP input's, which also sends application data).
pub(crate) struct TlsSession {
    conn: ServerConnection,
    /// Received ciphertext in the connection's input range:
    /// `fed..received` is not fed to rustls yet.
    pub fed: usize,
    pub received: usize,
    /// The peer closed its side (or the input stops): after what was
    /// received, there is no more.
    pub peer_closed: bool,
    /// rustls saw the peer's close_notify: no plaintext follows.
    close_notified: bool,
    /// rustls holds no decrypted plaintext (all of it was taken).
    plaintext_drained: bool,
    /// The first received byte was looked at (plaintext detection).
    first_checked: bool,
    /// The handshake is done.
    pub handshaken: bool,
    /// Past this, a connection still in its handshake is closed.
    pub handshake_deadline: Instant,
    /// A send of `send_start..send_end` of the output range is posted.
    pub send_posted: bool,
    pub send_start: usize,
    pub send_end: usize,
    /// Close the connection once what is queued is sent (after a failure:
    /// the alert rustls queued goes out first).
    pub close_after_send: bool,
    /// A send failed (the peer is gone): nothing more is sent, while what
    /// it sent before is still read.
    pub send_failed: bool,
}

impl TlsSession {
    pub fn new(
        config: &Arc<rustls::ServerConfig>,
        handshake_deadline: Instant,
    ) -> Result<Self, rustls::Error> {
        let mut conn = ServerConnection::new(Arc::clone(config))?;
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(Self {
            conn,
            fed: 0,
            received: 0,
            peer_closed: false,
            close_notified: false,
            plaintext_drained: true,
            first_checked: false,
            handshaken: false,
            handshake_deadline,
            send_posted: false,
            send_start: 0,
            send_end: 0,
            close_after_send: false,
            send_failed: false,
        })
    }

    /// Whether rustls can take more ciphertext now: it holds no plaintext
    /// that was not taken, and there is received ciphertext left.
    pub fn can_feed(&self) -> bool {
        self.fed < self.received && self.plaintext_drained && !self.close_notified
    }

    /// Whether everything received was fed and decrypted and taken.
    pub fn drained(&self) -> bool {
        (self.fed == self.received || self.close_notified) && self.plaintext_drained
    }

    /// Whether the connection's plaintext has ended: the peer closed (or
    /// sent close_notify) and everything before that was taken.
    pub fn ended(&self) -> bool {
        (self.peer_closed || self.close_notified) && self.drained()
    }

    /// Feeds rustls from `ciphertext` (the unfed received bytes) and
    /// processes what it completes. Returns the bytes fed (they are
    /// consumed) and whether this completed the handshake.
    pub fn feed(&mut self, ciphertext: &[u8]) -> Result<(usize, bool), TlsFailure> {
        if !self.first_checked && !ciphertext.is_empty() {
            self.first_checked = true;
            if ciphertext[0] != HANDSHAKE_RECORD {
                return Err(not_tls(ciphertext));
            }
        }
        let mut rest = ciphertext;
        if let Err(error) = self.conn.read_tls(&mut rest) {
            // The deframer's buffer is full: a record longer than TLS allows.
            return Err(TlsFailure::BadRecord(error.to_string()));
        }
        let fed = ciphertext.len() - rest.len();
        let state = self
            .conn
            .process_new_packets()
            .map_err(|error| classify(error, self.handshaken))?;
        self.plaintext_drained = state.plaintext_bytes_to_read() == 0;
        self.close_notified |= state.peer_has_closed();
        let completed = !self.handshaken && !self.conn.is_handshaking();
        self.handshaken |= completed;
        Ok((fed, completed))
    }

    /// Moves decrypted plaintext into `out`; returns how many bytes.
    pub fn take_plaintext(&mut self, out: &mut [u8]) -> usize {
        if out.is_empty() || self.plaintext_drained {
            return 0;
        }
        match self.conn.reader().read(out) {
            Ok(taken) => {
                // rustls's reader fills `out` unless it ran out.
                self.plaintext_drained = taken < out.len();
                if taken == 0 {
                    self.close_notified = true;
                }
                taken
            }
            // Nothing buffered (WouldBlock), or the peer closed without
            // close_notify (UnexpectedEof): either way nothing to take.
            Err(_) => {
                self.plaintext_drained = true;
                0
            }
        }
    }

    /// Whether rustls has TLS records to send (and they can be sent).
    pub fn wants_send(&self) -> bool {
        !self.send_failed && self.conn.wants_write()
    }

    /// Writes queued TLS records into `out`; returns how many bytes.
    pub fn fill_send(&mut self, mut out: &mut [u8]) -> usize {
        self.conn.write_tls(&mut out).unwrap_or(0)
    }

    /// Hands application data (an HTTP response) to rustls, which
    /// encrypts it into records for [`TlsSession::fill_send`]; returns how
    /// many bytes it took (fewer once its outgoing buffer is full).
    pub fn write_plaintext(&mut self, plaintext: &[u8]) -> usize {
        std::io::Write::write(&mut self.conn.writer(), plaintext).unwrap_or(0)
    }

    /// Queues the close_notify alert (once), so the peer can tell the end
    /// of the connection from a cut.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }
}

/// A connection whose first byte is not a handshake record: readable text
/// is a plaintext sender; anything else is garbage.
fn not_tls(first: &[u8]) -> TlsFailure {
    let sniffed = &first[..first.len().min(PLAINTEXT_SNIFF_BYTES)];
    if sniffed
        .iter()
        .all(|&byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace())
    {
        TlsFailure::Plaintext
    } else {
        TlsFailure::BadRecord(format!(
            "the connection did not start with a TLS handshake record (first byte {:#04x})",
            first[0]
        ))
    }
}

/// What a rustls error counts as: malformed or undecryptable records are
/// bad records; a missing or invalid certificate during the handshake is
/// a refused client certificate (a server verifies no other certificate);
/// anything else is a failed handshake while handshaking, a bad record
/// after.
fn classify(error: rustls::Error, handshaken: bool) -> TlsFailure {
    match error {
        rustls::Error::InvalidMessage(_) | rustls::Error::DecryptError => {
            TlsFailure::BadRecord(error.to_string())
        }
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_)
            if !handshaken =>
        {
            TlsFailure::ClientCertRefused(error.to_string())
        }
        error if !handshaken => TlsFailure::Handshake(error.to_string()),
        error => TlsFailure::BadRecord(error.to_string()),
    }
}

/// The start-up ranges TLS connections receive ciphertext into and send
/// TLS records from: [`RECEIVE_BYTES`] and [`SEND_BYTES`] per connection
/// slot, reserved (`MAP_NORESERVE`) and backed only once written.
pub(crate) struct TlsBuffers {
    input: Region,
    output: Region,
}

impl TlsBuffers {
    pub fn new(slots: usize) -> std::io::Result<Self> {
        Ok(Self {
            input: Region::map(slots * RECEIVE_BYTES)?,
            output: Region::map(slots * SEND_BYTES)?,
        })
    }

    /// `slot`'s input range, `start..end` of it.
    pub fn input(&mut self, slot: usize, start: usize, end: usize) -> &mut [u8] {
        assert!(start <= end && end <= RECEIVE_BYTES);
        self.input.slice(slot * RECEIVE_BYTES + start, end - start)
    }

    /// `slot`'s output range, `start..end` of it.
    pub fn output(&mut self, slot: usize, start: usize, end: usize) -> &mut [u8] {
        assert!(start <= end && end <= SEND_BYTES);
        self.output.slice(slot * SEND_BYTES + start, end - start)
    }

    /// Keeps both regions for good at exit (see [`Region::leak`]).
    pub fn leak(&mut self) {
        self.input.leak();
        self.output.leak();
    }
}

/// The TLS steps of the TCP reader: decrypting into a connection's
/// range, sending what rustls queued, and closing on a failure or a late
/// handshake.
impl super::TcpReader {
    /// Decrypts what a TLS connection received into its range, as far as
    /// the range has room: takes rustls's plaintext, feeds it more
    /// ciphertext once that is all taken, and so on. Sets `eof` once the
    /// plaintext ended. Returns the bytes moved (fed and taken).
    pub(super) fn pump_tls(&mut self, slot: usize) -> Result<usize, TlsFailure> {
        let offset = self.slots.offset(slot);
        let conn_bytes = self.slots.conn_bytes();
        let input = self
            .tls
            .as_mut()
            .expect("a TLS connection is on a TLS input");
        let conn = &mut self.conns[slot];
        let session = conn.tls.as_mut().expect("a TLS connection");
        let mut moved = 0;
        loop {
            let out = self
                .slots
                .slice(offset + conn.filled, conn_bytes - conn.filled);
            let taken = session.take_plaintext(out);
            conn.filled += taken;
            conn.high_water = conn.high_water.max(conn.filled);
            self.pass_bytes += taken as u64;
            moved += taken;
            if !session.can_feed() {
                break;
            }
            let ciphertext = input.buffers.input(slot, session.fed, session.received);
            let (fed, completed) = session.feed(ciphertext)?;
            session.fed += fed;
            moved += fed;
            if completed {
                self.tcp.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            }
            if fed == 0 && taken == 0 {
                break;
            }
        }
        if session.ended() {
            conn.eof = true;
        }
        Ok(moved)
    }

    /// Counts and warns about a failed TLS connection and closes it once
    /// the alert rustls queued (if any) is sent. Its bytes not yet framed
    /// are dropped: the stream they came in is broken.
    pub(super) fn fail_tls(&mut self, slot: usize, failure: TlsFailure) {
        let Some(input) = self.tls.as_mut() else {
            return;
        };
        let (counter, failures, what, detail) = match failure {
            TlsFailure::Plaintext => (
                &self.tcp.tls_plaintext,
                &mut input.plaintext,
                "plaintext sent to a TLS port",
                String::new(),
            ),
            TlsFailure::BadRecord(error) => (
                &self.tcp.tls_bad_records,
                &mut input.bad_records,
                "a bad TLS record",
                error,
            ),
            TlsFailure::Handshake(error) => (
                &self.tcp.tls_handshake_errors,
                &mut input.handshake_errors,
                "a failed TLS handshake",
                error,
            ),
            TlsFailure::ClientCertRefused(error) => (
                &self.tcp.tls_client_cert_refused,
                &mut input.client_certs_refused,
                "a TLS client without a valid certificate from the client CA refused",
                error,
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = count_failure(failures) {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!("; error = {detail}")
            };
            eprintln!(
                "ringway: warning: input '{}': {what}, connection closed ({count} so far){detail}",
                self.name
            );
        }
        let conn = &mut self.conns[slot];
        conn.start = 0;
        conn.filled = 0;
        if let Some(tls) = conn.tls.as_mut() {
            tls.close_after_send = true;
            tls.fed = tls.received;
        }
        self.send_tls(slot);
        if !self.conns[slot].send_posted() {
            self.begin_close(slot);
        }
    }

    /// Sends what rustls queued for a TLS connection (handshake flights,
    /// alerts), unless a send is posted already (its completion sends on).
    pub(super) fn send_tls(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        let (Some(tls), Some(input)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return;
        };
        if tls.send_posted || conn.closing || !tls.wants_send() {
            return;
        }
        let written = tls.fill_send(input.buffers.output(slot, 0, SEND_BYTES));
        if written == 0 {
            return;
        }
        tls.send_start = 0;
        tls.send_end = written;
        self.post_send(slot);
    }

    /// Closes a TLS connection whose handshake outlived
    /// --tls-handshake-timeout (counted, warned about at 1, 2, 4, …).
    pub(super) fn handshake_timed_out(&mut self, slot: usize) {
        self.tcp
            .tls_handshake_timeouts
            .fetch_add(1, Ordering::Relaxed);
        if let Some(input) = self.tls.as_mut()
            && let Some(count) = count_failure(&mut input.handshake_timeouts)
        {
            eprintln!(
                "ringway: warning: input '{}': a TLS handshake did not finish within --tls-handshake-timeout {}, connection closed ({count} so far)",
                self.name,
                crate::config::format_duration(input.handshake_timeout)
            );
        }
        self.begin_close(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_does_not_open_with_a_handshake_is_told_apart() {
        assert_eq!(
            not_tls(b"<34>1 2024-01-01T00:00:00Z host"),
            TlsFailure::Plaintext
        );
        assert_eq!(not_tls(b"GET / HTTP/1.1\r\n"), TlsFailure::Plaintext);
        assert_eq!(not_tls(b"12 <13>hello"), TlsFailure::Plaintext);
        assert!(matches!(
            not_tls(&[0x00, 0xff, 0x13]),
            TlsFailure::BadRecord(_)
        ));
        assert!(matches!(not_tls(b"ab\x01cd"), TlsFailure::BadRecord(_)));
    }

    #[test]
    fn malformed_records_are_bad_records_and_other_errors_fail_the_handshake() {
        let invalid = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert!(matches!(classify(invalid, false), TlsFailure::BadRecord(_)));
        assert!(matches!(
            classify(rustls::Error::DecryptError, true),
            TlsFailure::BadRecord(_)
        ));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(matches!(
            classify(alert.clone(), false),
            TlsFailure::Handshake(_)
        ));
        assert!(matches!(classify(alert, true), TlsFailure::BadRecord(_)));
        // Mutual TLS: no client certificate, or one the client CA did not
        // sign, is told apart from other handshake failures.
        assert!(matches!(
            classify(rustls::Error::NoCertificatesPresented, false),
            TlsFailure::ClientCertRefused(_)
        ));
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            classify(unknown, false),
            TlsFailure::ClientCertRefused(_)
        ));
    }
}

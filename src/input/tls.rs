//! TLS sessions of the network inputs (`tcp:…,tls`, syslog over TLS, RFC
//! 5425; `otlp:…,tls`, HTTPS): [`TlsSession`] wraps a rustls
//! [`ServerConnection`] and is fed from, and drains into, byte slices the
//! I/O worker owns, so the socket I/O stays on io_uring. The worker
//! receives ciphertext into the connection's [`TlsBuffers`] input range,
//! [`TlsSession::feed`]s it to rustls, [`TlsSession::take_plaintext`]s the
//! decrypted bytes into the same range of its connection table that a
//! plaintext receive would have written (the input's own path is the same
//! from there), and sends what [`TlsSession::fill_send`] writes into the
//! output range (handshake replies, alerts, and the OTLP input's
//! responses, handed over with [`TlsSession::write_plaintext`]) with
//! io_uring sends. [`TlsInput`] is what a TLS input (TCP or OTLP alike)
//! keeps beside its connections and the steps they all take: a new
//! session with the configuration of the last reload (SIGHUP, see
//! `crate::reload`), the receive and send of each connection's ranges,
//! [`TlsInput::decrypt`], and counting and warning about failures
//! ([`TlsFailure`]) and late handshakes. What each protocol does with the
//! plaintext stays with its input (`input::tcp::tls`, `input::otlp::tls`).
//!
//! Bounds: rustls holds at most one record being joined (its deframer:
//! 16 KiB + overhead, 64 KiB while joining a handshake message) and at
//! most 16 KiB of decrypted plaintext, a limit fixed inside rustls
//! (`read_tls` refuses more until it is read out); `feed` only feeds when
//! that plaintext was all taken. Outgoing TLS records are capped at
//! [`SEND_BUFFER_LIMIT`]. The rest is the start-up ranges of
//! [`TlsBuffers`].

use crate::credentials::Latest;
use crate::input::net::{ConnSlots, Region, count_failure, recv_entry, send_entry};
use crate::metrics::TlsCounters;
use io_uring::squeue::Entry;
use rustls::ServerConnection;
use std::io::Read;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes one receive of ciphertext asks for: one full TLS record.
pub(crate) const RECEIVE_BYTES: usize = 16 * 1024 + 2048 + 5;
/// Bytes one send of TLS records takes at most.
pub(crate) const SEND_BYTES: usize = 16 * 1024;
/// Most outgoing TLS bytes rustls may queue (handshake flights, alerts,
/// and the few hundred bytes of an OTLP response).
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

impl TlsFailure {
    /// Its counter in `counters`, its index in [`TlsInput`]'s `warned`,
    /// and its words in the warning.
    fn counted<'a>(&self, counters: &'a TlsCounters) -> (&'a AtomicU64, usize, &'static str) {
        match self {
            TlsFailure::Plaintext => (&counters.tls_plaintext, 0, "plaintext sent to a TLS port"),
            TlsFailure::BadRecord(_) => (&counters.tls_bad_records, 1, "a bad TLS record"),
            TlsFailure::Handshake(_) => {
                (&counters.tls_handshake_errors, 2, "a failed TLS handshake")
            }
            TlsFailure::ClientCertRefused(_) => (
                &counters.tls_client_cert_refused,
                3,
                "a TLS client without a valid certificate from the client CA refused",
            ),
        }
    }

    /// The error rustls (or the plaintext check) gave, if any.
    fn detail(&self) -> &str {
        match self {
            TlsFailure::Plaintext => "",
            TlsFailure::BadRecord(error)
            | TlsFailure::Handshake(error)
            | TlsFailure::ClientCertRefused(error) => error,
        }
    }
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

/// What a TLS input serves with: its server configuration as reloads
/// publish it, the handshake timeout and where it counts.
pub(crate) struct TlsParts {
    pub config: Latest<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
    pub counters: Arc<TlsCounters>,
}

/// A TLS input's state beside its connections (the TCP and the OTLP
/// input's alike): the configuration new sessions start with, the receive
/// and send ranges, the counters, and how often each failure was warned
/// about. The steps every TLS connection takes are its methods; each
/// input keeps only what its protocol does with the plaintext.
pub(crate) struct TlsInput {
    /// Taken anew at every accept: a reload (SIGHUP) reaches every
    /// handshake after it, while sessions started before keep theirs.
    config: Latest<rustls::ServerConfig>,
    handshake_timeout: Duration,
    buffers: TlsBuffers,
    counters: Arc<TlsCounters>,
    /// The input's name (its SPEC), for warnings.
    name: String,
    /// Failures so far, by kind (for the warnings at 1, 2, 4, …):
    /// plaintext, bad records, handshake errors, refused client
    /// certificates (see `TlsFailure::counted`), then handshake timeouts.
    warned: [u64; 5],
}

/// What one [`TlsInput::decrypt`] moved.
pub(crate) struct Decrypted {
    /// Plaintext bytes written into the connection's range.
    pub taken: usize,
    /// Ciphertext bytes fed to rustls.
    pub fed: usize,
}

impl TlsInput {
    /// The TLS state of input `name`, with `slots` connection slots'
    /// worth of TLS buffers.
    pub fn new(parts: TlsParts, name: &str, slots: usize) -> Result<Self, String> {
        Ok(Self {
            config: parts.config,
            handshake_timeout: parts.handshake_timeout,
            buffers: TlsBuffers::new(slots).map_err(|error| {
                format!("cannot reserve the TLS buffers of {slots} connections: {error}")
            })?,
            counters: parts.counters,
            name: name.to_string(),
            warned: [0; 5],
        })
    }

    /// A new connection's session on input `tls` (`Ok(None)` on a
    /// plaintext input), with the configuration of the last reload and a
    /// handshake deadline from now. `Err` (rustls could not start one) is
    /// warned about here; the caller closes the connection.
    pub fn session_for(tls: Option<&mut Self>) -> Result<Option<Box<TlsSession>>, ()> {
        let Some(tls) = tls else {
            return Ok(None);
        };
        let deadline = Instant::now() + tls.handshake_timeout;
        match TlsSession::new(tls.config.get(), deadline) {
            Ok(session) => Ok(Some(Box::new(session))),
            Err(error) => {
                eprintln!(
                    "ringway: warning: input '{}': cannot start a TLS session; connection closed; error = {error}",
                    tls.name
                );
                Err(())
            }
        }
    }

    /// The receive of the next ciphertext of the connection in `slot`
    /// (socket `fd`) into its input range.
    pub fn recv(&mut self, slot: usize, fd: RawFd) -> Entry {
        recv_entry(fd, self.buffers.input(slot, 0, RECEIVE_BYTES), slot)
    }

    /// The next send of the connection in `slot` (socket `fd`): the rest
    /// of the TLS records in its output range or, once those are all
    /// sent, the ones rustls queued since (handshake flights, alerts,
    /// encrypted responses); `None` when there is nothing to send.
    pub fn next_send(&mut self, slot: usize, session: &mut TlsSession, fd: RawFd) -> Option<Entry> {
        if session.send_start >= session.send_end {
            if !session.wants_send() {
                return None;
            }
            let written = session.fill_send(self.buffers.output(slot, 0, SEND_BYTES));
            session.send_start = 0;
            session.send_end = written;
            if written == 0 {
                return None;
            }
        }
        let pending = self
            .buffers
            .output(slot, session.send_start, session.send_end);
        Some(send_entry(fd, pending, slot))
    }

    /// Decrypts what the connection in `slot` received into its range of
    /// `slots` (`filled` bytes of it are taken; `high_water` is the
    /// largest written) as far as it has room: takes rustls's plaintext,
    /// feeds it more ciphertext once that is all taken, and so on. A
    /// completed handshake is counted.
    pub fn decrypt(
        &mut self,
        slot: usize,
        session: &mut TlsSession,
        slots: &mut ConnSlots,
        (filled, high_water): (&mut usize, &mut usize),
    ) -> Result<Decrypted, TlsFailure> {
        let offset = slots.offset(slot);
        let range = slots.slice(offset, slots.conn_bytes());
        let mut moved = Decrypted { taken: 0, fed: 0 };
        loop {
            let taken = session.take_plaintext(&mut range[*filled..]);
            *filled += taken;
            moved.taken += taken;
            if !session.can_feed() {
                break;
            }
            let ciphertext = self.buffers.input(slot, session.fed, session.received);
            let (fed, completed) = session.feed(ciphertext)?;
            session.fed += fed;
            moved.fed += fed;
            if completed {
                self.counters.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            }
            if fed == 0 && taken == 0 {
                break;
            }
        }
        *high_water = (*high_water).max(*filled);
        Ok(moved)
    }

    /// Counts a failed connection and warns at its kind's 1st, 2nd, 4th,
    /// … occurrence. The session reads nothing more: its received
    /// ciphertext counts as fed; the caller sends rustls's alert (if
    /// any), then closes.
    pub fn fail(&mut self, session: Option<&mut TlsSession>, failure: TlsFailure) {
        if let Some(session) = session {
            session.fed = session.received;
        }
        let (counter, index, what) = failure.counted(&self.counters);
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = count_failure(&mut self.warned[index]) {
            let detail = match failure.detail() {
                "" => String::new(),
                detail => format!("; error = {detail}"),
            };
            eprintln!(
                "ringway: warning: input '{}': {what}, connection closed ({count} so far){detail}",
                self.name
            );
        }
    }

    /// Counts a connection whose handshake outlived
    /// --tls-handshake-timeout and warns at the 1st, 2nd, 4th, … one; the
    /// caller closes it.
    pub fn handshake_timed_out(&mut self) {
        self.counters
            .tls_handshake_timeouts
            .fetch_add(1, Ordering::Relaxed);
        if let Some(count) = count_failure(&mut self.warned[4]) {
            eprintln!(
                "ringway: warning: input '{}': a TLS handshake did not finish within --tls-handshake-timeout {}, connection closed ({count} so far)",
                self.name,
                crate::config::format_duration(self.handshake_timeout)
            );
        }
    }

    /// Keeps the buffers for good at exit (an operation may still write).
    pub fn leak(&mut self) {
        self.buffers.leak();
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
        let counters = TlsCounters::default();
        let invalid = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // (error, after the handshake, the counter it goes to)
        let cases = [
            (invalid, false, &counters.tls_bad_records),
            (rustls::Error::DecryptError, true, &counters.tls_bad_records),
            (alert.clone(), false, &counters.tls_handshake_errors),
            (alert, true, &counters.tls_bad_records),
            // Mutual TLS: no client certificate, or one the client CA did
            // not sign, is told apart from other handshake failures.
            (
                rustls::Error::NoCertificatesPresented,
                false,
                &counters.tls_client_cert_refused,
            ),
            (unknown, false, &counters.tls_client_cert_refused),
        ];
        for (error, handshaken, expected) in cases {
            let shown = format!("{error:?} (handshaken: {handshaken})");
            let failure = classify(error, handshaken);
            assert!(
                std::ptr::eq(failure.counted(&counters).0, expected),
                "{shown}"
            );
            assert!(!failure.detail().is_empty(), "{shown}");
        }
    }
}

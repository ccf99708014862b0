//! OTLP/HTTP over HTTPS (`otlp:…,tls`): the receiver's TLS steps. Each
//! connection has a [`TlsSession`] (as on the TCP input): its
//! receives bring ciphertext into its range of [`TlsBuffers`], rustls
//! decrypts it into the connection's region exactly where a plaintext
//! receive would have written ([`OtlpReceiver::receive_tls`]), and the
//! HTTP side parses it as on a plaintext port. Responses are handed to
//! rustls as plaintext and go out as TLS records with io_uring sends
//! ([`OtlpReceiver::flush_tls`]), like its handshake flights and alerts.
//!
//! A connection still in its handshake after `--tls-handshake-timeout` is
//! closed; a plaintext client, a bad record, a failed handshake or (mutual
//! TLS) a client without a valid certificate closes the connection (after
//! rustls's alert). Each is counted in [`crate::metrics::OtlpCounters`]
//! and warned about at 1, 2, 4, … times.
//!
//! Bounds: those of [`TlsSession`] and [`TlsBuffers`] (one record of
//! ciphertext received at a time; rustls decrypts at most 16 KiB ahead of
//! what the region took, and is fed more only once that is taken).

use super::{OtlpReceiver, Phase};
use crate::input::net::count_failure;
use crate::input::tls::{RECEIVE_BYTES, SEND_BYTES, TlsBuffers, TlsFailure, TlsSession};
use crate::uring::Token;
use io_uring::{opcode, types};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What an OTLP input serves HTTPS with.
pub(crate) struct OtlpTls {
    pub config: Arc<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
}

/// A TLS input's state beside its connections: the configuration, the
/// receive and send ranges, and how often each failure was warned about.
pub(super) struct TlsState {
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    buffers: TlsBuffers,
    /// Failures so far, by kind (for the warnings at 1, 2, 4, …).
    plaintext: u64,
    bad_records: u64,
    handshake_errors: u64,
    handshake_timeouts: u64,
    client_certs_refused: u64,
}

impl TlsState {
    /// `slots` connection slots' worth of TLS buffers.
    pub fn new(tls: OtlpTls, slots: usize) -> Result<Self, String> {
        Ok(Self {
            config: tls.config,
            handshake_timeout: tls.handshake_timeout,
            buffers: TlsBuffers::new(slots).map_err(|error| {
                format!("cannot reserve the TLS buffers of {slots} connections: {error}")
            })?,
            plaintext: 0,
            bad_records: 0,
            handshake_errors: 0,
            handshake_timeouts: 0,
            client_certs_refused: 0,
        })
    }

    /// Keeps the buffers for good at exit (an operation may still write).
    pub fn leak(&mut self) {
        self.buffers.leak();
    }
}

impl OtlpReceiver {
    /// A new connection's TLS session (`Ok(None)` on a plaintext input).
    pub(super) fn new_session(&self) -> Result<Option<Box<TlsSession>>, rustls::Error> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let deadline = Instant::now() + tls.handshake_timeout;
        TlsSession::new(&tls.config, deadline).map(|session| Some(Box::new(session)))
    }

    /// Posts the receive of ciphertext into the connection's TLS range,
    /// once all it received before was fed to rustls.
    pub(super) fn post_tls_recv(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        let (Some(session), Some(tls)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return;
        };
        if conn.recv_posted || conn.closing || session.fed < session.received {
            return;
        }
        conn.recv_posted = true;
        let buffer = tls.buffers.input(slot, 0, RECEIVE_BYTES);
        let entry = opcode::Recv::new(types::Fd(conn.fd), buffer.as_mut_ptr(), buffer.len() as u32)
            .build()
            .user_data(Token::ConnRecv(slot as u32).encode());
        self.push_entry(entry);
    }

    /// Ciphertext arrived (`received` bytes), or rustls holds bytes that
    /// did not fit before: decrypts what the region has room for, sends
    /// rustls's replies, and hands new plaintext to the HTTP side.
    pub(super) fn receive_tls(&mut self, slot: usize) {
        let taken = match self.pump_tls(slot) {
            Ok(taken) => taken,
            Err(failure) => {
                self.fail_tls(slot, failure);
                return;
            }
        };
        self.flush_tls(slot);
        let conn = &mut self.conns[slot];
        if conn.closing || conn.phase != Phase::Reading {
            // Pipelined bytes wait until the current request is answered.
            return;
        }
        if taken > 0 {
            if conn.request_started.is_none() {
                conn.request_started = Some(Instant::now());
            }
            self.process(slot);
        } else if conn.tls.as_ref().is_some_and(|tls| tls.ended()) && conn.filled == 0 {
            // close_notify between requests: the client is done.
            self.begin_close(slot);
        } else {
            self.post_tls_recv(slot);
        }
    }

    /// Asks for more of the request: from rustls when it holds bytes that
    /// did not fit before, else from the socket.
    pub(super) fn read_tls(&mut self, slot: usize) {
        let pending = self.conns[slot]
            .tls
            .as_ref()
            .is_some_and(|tls| !tls.drained());
        if pending {
            self.receive_tls(slot);
        } else {
            self.post_tls_recv(slot);
        }
    }

    /// Moves decrypted plaintext into the connection's region as far as
    /// it has room, feeding rustls more ciphertext once what it decrypted
    /// was taken. Returns the plaintext bytes taken.
    fn pump_tls(&mut self, slot: usize) -> Result<usize, TlsFailure> {
        let offset = self.slots.offset(slot);
        let conn_bytes = self.slots.conn_bytes();
        let tls = self
            .tls
            .as_mut()
            .expect("a TLS connection is on a TLS input");
        let conn = &mut self.conns[slot];
        let session = conn.tls.as_mut().expect("a TLS connection");
        let mut taken_total = 0;
        loop {
            let out = self
                .slots
                .slice(offset + conn.filled, conn_bytes - conn.filled);
            let taken = session.take_plaintext(out);
            conn.filled += taken;
            conn.high_water = conn.high_water.max(conn.filled);
            taken_total += taken;
            if !session.can_feed() {
                break;
            }
            let ciphertext = tls.buffers.input(slot, session.fed, session.received);
            let (fed, completed) = session.feed(ciphertext)?;
            session.fed += fed;
            if completed {
                self.otlp.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            }
            if fed == 0 && taken == 0 {
                break;
            }
        }
        Ok(taken_total)
    }

    /// Sends what is queued for a TLS connection, unless a send is posted
    /// already (its completion calls this again): first the response's
    /// plaintext still to hand to rustls (once the handshake is done),
    /// then the TLS records rustls has (handshake flights, alerts, the
    /// encrypted response). Returns whether a send was posted.
    pub(super) fn flush_tls(&mut self, slot: usize) -> bool {
        let conn = &mut self.conns[slot];
        let (Some(session), Some(tls)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return false;
        };
        if conn.send_posted || conn.closing || session.send_failed {
            return false;
        }
        if session.handshaken && conn.sent < conn.response.len {
            conn.sent +=
                session.write_plaintext(&conn.response.bytes[conn.sent..conn.response.len]);
            if conn.sent == conn.response.len && conn.close_after_send {
                session.send_close_notify();
            }
        }
        if !session.wants_send() {
            return false;
        }
        let written = session.fill_send(tls.buffers.output(slot, 0, SEND_BYTES));
        if written == 0 {
            return false;
        }
        session.send_start = 0;
        session.send_end = written;
        self.post_tls_send(slot);
        true
    }

    /// Posts the send of the rest of the TLS records in the output range.
    fn post_tls_send(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        let (Some(session), Some(tls)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return;
        };
        conn.send_posted = true;
        let pending = tls
            .buffers
            .output(slot, session.send_start, session.send_end);
        let entry = opcode::Send::new(types::Fd(conn.fd), pending.as_ptr(), pending.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::ConnSend(slot as u32).encode());
        self.push_entry(entry);
    }

    /// A send of TLS records completed with `result` bytes (above 0):
    /// sends on. Returns true once everything queued went out (the HTTP
    /// side then goes on as after a plaintext send).
    pub(super) fn tls_sent(&mut self, slot: usize, result: i32) -> bool {
        let conn = &mut self.conns[slot];
        conn.last_active = Instant::now();
        let Some(session) = conn.tls.as_mut() else {
            return true;
        };
        session.send_start += result as usize;
        if session.send_start < session.send_end {
            self.post_tls_send(slot);
            return false;
        }
        if self.flush_tls(slot) {
            return false;
        }
        let conn = &self.conns[slot];
        // A response not yet handed to rustls waits for the handshake.
        conn.sent >= conn.response.len
    }

    /// Counts and warns about a failed TLS connection and closes it, after
    /// the alert rustls queued (if any) while it was between requests.
    fn fail_tls(&mut self, slot: usize, failure: TlsFailure) {
        let Some(tls) = self.tls.as_mut() else {
            return;
        };
        failure.report(
            &self.name,
            [
                &self.otlp.tls_plaintext,
                &self.otlp.tls_bad_records,
                &self.otlp.tls_handshake_errors,
                &self.otlp.tls_client_cert_refused,
            ],
            [
                &mut tls.plaintext,
                &mut tls.bad_records,
                &mut tls.handshake_errors,
                &mut tls.client_certs_refused,
            ],
        );
        let conn = &mut self.conns[slot];
        if conn.phase != Phase::Reading || conn.send_posted {
            // Its request is in the pipeline or a send is out: no alert.
            self.begin_close(slot);
            return;
        }
        // Nothing more is read; the alert goes out, then it closes.
        conn.phase = Phase::Sending;
        conn.close_after_send = true;
        conn.response.len = 0;
        conn.sent = 0;
        if let Some(session) = conn.tls.as_mut() {
            session.fed = session.received;
        }
        if !self.flush_tls(slot) {
            self.begin_close(slot);
        }
    }

    /// Closes TLS connections whose handshake outlived
    /// --tls-handshake-timeout (counted, warned about at 1, 2, 4, …).
    /// Returns whether `slot` was closed.
    pub(super) fn check_handshake(&mut self, slot: usize, now: Instant) -> bool {
        let conn = &self.conns[slot];
        let late = conn
            .tls
            .as_ref()
            .is_some_and(|tls| !tls.handshaken && now >= tls.handshake_deadline);
        if !late {
            return false;
        }
        if !conn.close_after_send {
            self.otlp
                .tls_handshake_timeouts
                .fetch_add(1, Ordering::Relaxed);
            if let Some(tls) = self.tls.as_mut()
                && let Some(count) = count_failure(&mut tls.handshake_timeouts)
            {
                eprintln!(
                    "ringway: warning: input '{}': a TLS handshake did not finish within --tls-handshake-timeout {}, connection closed ({count} so far)",
                    self.name,
                    crate::config::format_duration(tls.handshake_timeout)
                );
            }
        }
        // (A failed connection whose alert is not taken closes too.)
        self.begin_close(slot);
        true
    }
}

//! OTLP/HTTP over HTTPS (`otlp:…,tls`): the receiver's TLS steps. Each
//! connection has a [`TlsSession`](crate::input::tls::TlsSession) and the input a
//! [`TlsInput`](crate::input::tls::TlsInput) (as on the TCP input): its
//! receives bring ciphertext into its range of the input's TLS buffers, rustls
//! decrypts it into the connection's region exactly where a plaintext
//! receive would have written ([`OtlpReceiver::receive_tls`]), and the
//! HTTP side parses it as on a plaintext port. Responses are handed to
//! rustls as plaintext and go out as TLS records with io_uring sends
//! ([`OtlpReceiver::flush_tls`]), like its handshake flights and alerts.
//!
//! A connection still in its handshake after `--tls-handshake-timeout` is
//! closed; a plaintext client, a bad record, a failed handshake or (mutual
//! TLS) a client without a valid certificate closes the connection (after
//! rustls's alert). Each is counted in [`crate::metrics::TlsCounters`]
//! and warned about at 1, 2, 4, … times.
//!
//! Bounds: those of `input::tls` (one record of
//! ciphertext received at a time; rustls decrypts at most 16 KiB ahead of
//! what the region took, and is fed more only once that is taken).

use super::{OtlpReceiver, Phase};
use crate::input::tls::TlsFailure;
use std::time::Instant;

impl OtlpReceiver {
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
        let entry = tls.recv(slot, conn.fd);
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
    /// it has room (see [`TlsInput::decrypt`]). Returns the plaintext
    /// bytes taken.
    ///
    /// [`TlsInput::decrypt`]: crate::input::tls::TlsInput::decrypt
    fn pump_tls(&mut self, slot: usize) -> Result<usize, TlsFailure> {
        let conn = &mut self.conns[slot];
        let (Some(session), Some(tls)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return Ok(0);
        };
        let bytes = (&mut conn.filled, &mut conn.high_water);
        Ok(tls.decrypt(slot, session, &mut self.slots, bytes)?.taken)
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
        let Some(entry) = tls.next_send(slot, session, conn.fd) else {
            return false;
        };
        conn.send_posted = true;
        self.push_entry(entry);
        true
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
        // The rest of the records, or what rustls queued since.
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
        let conn = &mut self.conns[slot];
        tls.fail(conn.tls.as_deref_mut(), failure);
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
        if !conn.close_after_send
            && let Some(tls) = self.tls.as_mut()
        {
            tls.handshake_timed_out();
        }
        // (A failed connection whose alert is not taken closes too.)
        self.begin_close(slot);
        true
    }
}

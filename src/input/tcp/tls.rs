//! The TCP reader's TLS steps (`tcp:…,tls`, syslog over TLS, RFC 5425):
//! decrypting what a connection received into its range
//! (`TcpReader::pump_tls`), sending what rustls queued (`send_tls`), and
//! closing on a failure (`fail_tls`) or a late handshake
//! (`handshake_timed_out`). The session itself is
//! [`TlsSession`](crate::input::tls::TlsSession).

use crate::input::net::count_failure;
use crate::input::tls::{SEND_BYTES, TlsFailure};
use std::sync::atomic::Ordering;

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
        failure.report(
            &self.name,
            [
                &self.tcp.tls_plaintext,
                &self.tcp.tls_bad_records,
                &self.tcp.tls_handshake_errors,
                &self.tcp.tls_client_cert_refused,
            ],
            [
                &mut input.plaintext,
                &mut input.bad_records,
                &mut input.handshake_errors,
                &mut input.client_certs_refused,
            ],
        );
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

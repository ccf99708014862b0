//! The TCP reader's TLS steps (`tcp:…,tls`, syslog over TLS, RFC 5425):
//! decrypting what a connection received into its range
//! (`TcpReader::pump_tls`), sending what rustls queued (`send_tls`), and
//! closing on a failure (`fail_tls`) or a late handshake
//! (`handshake_timed_out`). The session and the steps every TLS input
//! shares are [`TlsSession`](crate::input::tls::TlsSession) and
//! [`TlsInput`](crate::input::tls::TlsInput).

use crate::input::tls::TlsFailure;

/// The TLS steps of the TCP reader: decrypting into a connection's
/// range, sending what rustls queued, and closing on a failure or a late
/// handshake.
impl super::TcpReader {
    /// Decrypts what a TLS connection received into its range, as far as
    /// the range has room (see [`TlsInput::decrypt`]). Sets `eof` once
    /// the plaintext ended. Returns the bytes moved (fed and taken).
    ///
    /// [`TlsInput::decrypt`]: crate::input::tls::TlsInput::decrypt
    pub(super) fn pump_tls(&mut self, slot: usize) -> Result<usize, TlsFailure> {
        let input = self.tls.as_mut().expect("on a TLS input");
        let conn = &mut self.conns[slot];
        let session = conn.tls.as_mut().expect("a TLS connection");
        let bytes = (&mut conn.filled, &mut conn.high_water);
        let moved = input.decrypt(slot, session, &mut self.slots, bytes)?;
        self.pass_bytes += moved.taken as u64;
        if session.ended() {
            conn.eof = true;
        }
        Ok(moved.taken + moved.fed)
    }

    /// Counts and warns about a failed TLS connection and closes it once
    /// the alert rustls queued (if any) is sent. Its bytes not yet framed
    /// are dropped: the stream they came in is broken.
    pub(super) fn fail_tls(&mut self, slot: usize, failure: TlsFailure) {
        let Some(input) = self.tls.as_mut() else {
            return;
        };
        let conn = &mut self.conns[slot];
        input.fail(conn.tls.as_deref_mut(), failure);
        conn.start = 0;
        conn.filled = 0;
        if let Some(tls) = conn.tls.as_mut() {
            tls.close_after_send = true;
        }
        self.send_tls(slot);
        if !self.conns[slot].send_posted() {
            self.begin_close(slot);
        }
    }

    /// Sends what rustls queued for a TLS connection (handshake flights,
    /// alerts), unless a send is posted already (its completion sends on)
    /// or one failed.
    pub(super) fn send_tls(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        let (Some(tls), Some(input)) = (conn.tls.as_mut(), self.tls.as_mut()) else {
            return;
        };
        if tls.send_posted || tls.send_failed || conn.closing {
            return;
        }
        if let Some(entry) = input.next_send(slot, tls, conn.fd) {
            tls.send_posted = true;
            self.push_entry(entry);
        }
    }

    /// Closes a TLS connection whose handshake outlived
    /// --tls-handshake-timeout (counted, warned about at 1, 2, 4, …).
    pub(super) fn handshake_timed_out(&mut self, slot: usize) {
        if let Some(input) = self.tls.as_mut() {
            input.handshake_timed_out();
        }
        self.begin_close(slot);
    }
}

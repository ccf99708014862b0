//! The OTLP receiver's connections: accepting (the longest-idle connection
//! makes room under `--otlp-max-connections`), receiving into each
//! connection's region, sending responses (100 Continue, errors, the 200
//! once a request's batches are in or delivered), timeouts, and closing.

use super::http::{self, BodyStyle, Head};
use super::{Conn, OtlpReceiver, PENDING_ACCEPTS, Phase, RELEASE_AFTER_BYTES};
use crate::input::net::{StreamIo, StreamWorker, recv_entry, send_entry};
use crate::input::tls::TlsInput;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The connection operations whose completions [`OtlpReceiver`] handles.
#[derive(Clone, Copy)]
enum Op {
    Recv,
    Send,
}

impl StreamWorker for OtlpReceiver {
    fn io(&mut self) -> &mut StreamIo {
        &mut self.io
    }

    fn on_accept(&mut self, result: i32, flags: u32) {
        let Some(fd) = self.io.acceptor.completed(result, flags, self.stopping) else {
            return;
        };
        self.otlp
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        if self.slots.open >= self.settings.max_connections {
            // Make room: close the connection idle the longest.
            let idlest = (0..self.conns.len())
                .filter(|&slot| self.conns[slot].is_idle())
                .min_by_key(|&slot| self.conns[slot].last_active);
            match idlest {
                Some(slot) => {
                    self.begin_close(slot);
                    self.otlp
                        .connections_evicted
                        .fetch_add(1, Ordering::Relaxed);
                }
                // A connection still waiting for a slot is idle too (the
                // oldest goes first).
                None if !self.pending_accepts.is_empty() => {
                    let oldest = self.pending_accepts.pop_front().expect("not empty");
                    // SAFETY: accepted and never used; owned by nobody else.
                    unsafe { libc::close(oldest) };
                    self.slots.open -= 1;
                    self.otlp
                        .connections_evicted
                        .fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refuse(fd);
                    return;
                }
            }
        }
        crate::input::net::set_nodelay(fd);
        self.slots.open += 1;
        match self.slots.take() {
            Some(slot) => self.start_conn(slot, fd),
            // Every slot is taken, some by connections still closing (a
            // burst of new connections evicts faster than closes complete):
            // it waits for the next slot to free.
            None if self.pending_accepts.len() < PENDING_ACCEPTS => {
                self.pending_accepts.push_back(fd);
            }
            None => {
                self.slots.open -= 1;
                self.refuse(fd);
            }
        }
    }

    fn on_recv(&mut self, slot: usize, result: i32) {
        if !self.completion_goes_on(slot, Op::Recv, result) {
            return;
        }
        let conn = &mut self.conns[slot];
        let now = Instant::now();
        if let Some(session) = conn.tls.as_mut() {
            // Ciphertext, decrypted into the region by `receive_tls`.
            session.fed = 0;
            session.received = result as usize;
            conn.last_active = now;
            self.receive_tls(slot);
            return;
        }
        conn.filled += result as usize;
        conn.high_water = conn.high_water.max(conn.filled);
        conn.last_active = now;
        if conn.request_started.is_none() {
            conn.request_started = Some(now);
        }
        if conn.phase == Phase::Reading {
            self.process(slot);
        }
    }

    fn on_send(&mut self, slot: usize, result: i32) {
        if !self.completion_goes_on(slot, Op::Send, result) {
            return;
        }
        if self.conns[slot].tls.is_some() {
            if !self.tls_sent(slot, result) {
                return;
            }
        } else {
            let conn = &mut self.conns[slot];
            conn.sent += result as usize;
            conn.last_active = Instant::now();
            if conn.sent < conn.response.len {
                self.post_send(slot);
                return;
            }
        }
        let conn = &mut self.conns[slot];
        match conn.phase {
            // The interim "100 Continue" (or a TLS handshake flight) went
            // out; the body may be whole.
            Phase::Reading => {
                self.process(slot);
                return;
            }
            Phase::Sending => {}
            // TLS records sent while the request is in the pipeline (rustls
            // answering the client): the response comes later.
            Phase::Busy | Phase::Free => return,
        }
        if conn.close_after_send {
            self.begin_close(slot);
            return;
        }
        // The next request: what is left of the received bytes moves to the
        // front (a pipelined request may already be whole).
        let offset = self.slots.offset(slot);
        let conn = &mut self.conns[slot];
        let consumed = conn.consumed;
        let filled = conn.filled;
        let high_water = conn.high_water;
        let left = filled - consumed;
        conn.filled = left;
        conn.consumed = 0;
        conn.head = None;
        conn.continue_sent = false;
        conn.chunked = http::Chunked::default();
        conn.request_started = (left > 0).then(Instant::now);
        conn.phase = Phase::Reading;
        conn.serial = conn.serial.wrapping_add(1);
        let region = self.slots.slice(offset, self.slots.conn_bytes());
        region.copy_within(consumed..filled, 0);
        if high_water > RELEASE_AFTER_BYTES {
            self.slots.release(offset + left, high_water - left);
            self.conns[slot].high_water = left;
        }
        self.process(slot);
    }
}

impl OtlpReceiver {
    /// Gives connection `fd` the free slot `slot` and starts reading.
    pub(super) fn start_conn(&mut self, slot: usize, fd: RawFd) {
        let Ok(session) = TlsInput::session_for(self.tls.as_mut()) else {
            self.slots.abandon(slot, fd);
            return;
        };
        let conn = &mut self.conns[slot];
        let serial = conn.serial.wrapping_add(1);
        *conn = Conn::free();
        conn.fd = fd;
        conn.serial = serial;
        conn.phase = Phase::Reading;
        conn.tls = session;
        if self.source {
            // Once per connection, for every record it sends.
            conn.peer = crate::sockopt::peer_address(fd);
        }
        self.post_recv(slot);
    }

    pub(super) fn refuse(&mut self, fd: RawFd) {
        self.otlp
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        // SAFETY: `fd` was just accepted and is owned by nobody else.
        unsafe { libc::close(fd) };
    }

    /// Asks for more bytes of the current request: a receive into the
    /// region, or on a TLS connection, from rustls or a receive of
    /// ciphertext.
    pub(super) fn post_recv(&mut self, slot: usize) {
        if self.conns[slot].tls.is_some() {
            self.read_tls(slot);
            return;
        }
        let offset = self.slots.offset(slot);
        let conn_bytes = self.slots.conn_bytes();
        let conn = &mut self.conns[slot];
        if conn.recv_posted || conn.closing {
            return;
        }
        if conn.filled >= conn_bytes {
            debug_assert!(false, "a full region is answered before reading more");
            return;
        }
        let filled = conn.filled;
        let fd = conn.fd;
        conn.recv_posted = true;
        let buffer = self.slots.slice(offset + filled, conn_bytes - filled);
        let entry = recv_entry(fd, buffer, slot);
        self.push_entry(entry);
    }

    /// What a receive or send completion on `slot` does first: `op` is no
    /// longer posted, a closing connection finishes closing once nothing
    /// is posted, and a peer's close (0) or a failure begins closing.
    /// `false`: nothing more to do.
    fn completion_goes_on(&mut self, slot: usize, op: Op, result: i32) -> bool {
        let conn = &mut self.conns[slot];
        match op {
            Op::Recv => conn.recv_posted = false,
            Op::Send => conn.send_posted = false,
        }
        if conn.closing {
            self.finish_close_if_done(slot);
            return false;
        }
        if result <= 0 {
            // The peer closed (0) or the connection failed.
            self.begin_close(slot);
            return false;
        }
        true
    }

    /// Sends the response from `sent` on (on a TLS connection: hands it to
    /// rustls and sends its records).
    pub(super) fn post_send(&mut self, slot: usize) {
        if self.conns[slot].tls.is_some() {
            self.flush_tls(slot);
            return;
        }
        let conn = &mut self.conns[slot];
        conn.send_posted = true;
        let pending = &conn.response.bytes[conn.sent..conn.response.len];
        let entry = send_entry(conn.fd, pending, slot);
        self.push_entry(entry);
    }

    /// Answers the current request of `slot`.
    pub(super) fn respond(&mut self, slot: usize, status: u16, message: &str, close: bool) {
        let retry_after = matches!(status, 429 | 503).then_some(self.settings.retry_after_s);
        let conn = &mut self.conns[slot];
        let close = close || self.stopping || !conn.head.is_some_and(|head| head.keep_alive);
        conn.response
            .write(status, conn.style, message, retry_after, close);
        conn.sent = 0;
        conn.close_after_send = close;
        conn.phase = Phase::Sending;
        conn.last_active = Instant::now();
        self.otlp.count_response(status);
        self.post_send(slot);
    }

    /// Sends "100 Continue" once to a client that waits for it before its
    /// body (curl does for large bodies; otherwise it waits a second).
    pub(super) fn send_continue(&mut self, slot: usize, head: Head) {
        let conn = &mut self.conns[slot];
        if !head.expect_continue || conn.continue_sent || conn.send_posted {
            return;
        }
        conn.continue_sent = true;
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        conn.response.bytes[..CONTINUE.len()].copy_from_slice(CONTINUE);
        conn.response.len = CONTINUE.len();
        conn.sent = 0;
        self.post_send(slot);
    }

    /// Counts batches come back from the outputs; answers requests whose
    /// batches are all delivered.
    pub(super) fn take_replies(&mut self) {
        while let Some(token) = self.replies.take() {
            let slot = (token >> 32) as usize;
            let serial = token as u32;
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.serial != serial || conn.phase != Phase::Busy || conn.closing {
                continue; // its connection is gone
            }
            debug_assert!(
                !conn.emitting,
                "a token comes only after the emission ended"
            );
            self.respond(slot, 200, "", false);
        }
    }

    pub(super) fn check_timeouts(&mut self, now: Instant) {
        let read_timeout = self.settings.read_timeout;
        let idle_timeout = self.settings.idle_timeout;
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            if conn.closing || conn.phase == Phase::Free {
                continue;
            }
            if self.check_handshake(slot, now) {
                continue;
            }
            let conn = &self.conns[slot];
            match conn.phase {
                // (Not while "100 Continue" is going out: the response
                // buffer is in use; the next tick sees it.)
                Phase::Reading if conn.send_posted => {}
                Phase::Reading => {
                    if let Some(started) = conn.request_started {
                        if now.duration_since(started) > read_timeout {
                            self.otlp.read_timeouts.fetch_add(1, Ordering::Relaxed);
                            self.conns[slot].style = BodyStyle::Text;
                            self.respond(slot, 408, "request not received in time", true);
                        }
                    } else if !idle_timeout.is_zero()
                        && now.duration_since(conn.last_active) > idle_timeout
                    {
                        self.otlp.idle_closed.fetch_add(1, Ordering::Relaxed);
                        self.begin_close(slot);
                    }
                }
                // A client that does not read its responses.
                Phase::Sending if now.duration_since(conn.last_active) > read_timeout => {
                    self.begin_close(slot);
                }
                _ => {}
            }
        }
    }

    /// Shuts the connection down (its posted receive completes) and closes
    /// it once no operation on it is posted.
    pub(super) fn begin_close(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.closing || conn.phase == Phase::Free {
            return;
        }
        conn.closing = true;
        if let Some(cancel) = self.slots.begin_close(slot, conn.fd, conn.recv_posted) {
            self.push_entry(cancel);
        }
        self.finish_close_if_done(slot);
    }

    pub(super) fn finish_close_if_done(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if !conn.closing || conn.recv_posted || conn.send_posted {
            return;
        }
        self.slots
            .finish_close(slot, conn.fd, conn.high_water, RELEASE_AFTER_BYTES);
        let serial = conn.serial.wrapping_add(1);
        *conn = Conn::free();
        conn.serial = serial;
        match self.pending_accepts.pop_front() {
            Some(fd) => self.start_conn(slot, fd),
            None => self.slots.give_back(slot),
        }
    }
}

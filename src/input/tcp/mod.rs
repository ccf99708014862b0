//! The TCP input's I/O worker: a multishot accept and one receive per
//! connection on io_uring; records framed per connection and copied, whole,
//! into batches for ring(4).
//!
//! [`TcpReader`] owns the listening socket, a fixed table of [`Conn`]s (its
//! slots kept by [`ConnSlots`], shared with the OTLP input) and a
//! [`Batcher`] over the input's batch buffers. Each connection receives
//! into its own range of a start-up mapping (at least `--max-line` + 1
//! bytes, so an over-long record is always recognised). Framing is chosen
//! per connection from its first bytes (`framing`): RFC 6587 octet
//! counting when it starts with `DIGITS SP <` (a length, then a syslog
//! message), newline framing otherwise. Whole records are appended to the
//! one batch being filled, so a batch holds records of many connections
//! but never a piece of one, and each connection's records stay in the
//! order it sent them. With `source=true` each connection's peer address
//! (asked once, when it is accepted) is noted with its records in the
//! batch's sender runs (`crate::source`).
//!
//! Backpressure: when no batch buffer is free or ring(4) is full, a
//! connection that has records to hand on is *blocked*: no receive is
//! posted for it until there is room again (blocked connections resume in
//! the order they blocked). Its data waits in the kernel's socket buffer,
//! and TCP flow control pushes back on the sender. Nothing a sender
//! managed to send is dropped.
//!
//! With `,tls` (RFC 5425) each connection also has a [`TlsSession`]: its
//! receives bring ciphertext into its range of [`TlsBuffers`], rustls
//! decrypts it, and the plaintext lands in the connection's range as a
//! plaintext receive would have put it (`pump_tls`); rustls's replies
//! (handshake flights, alerts) go out with io_uring sends. A connection
//! still in its handshake after `--tls-handshake-timeout` is closed; a
//! plaintext sender, a bad record, a failed handshake or (with a client
//! CA, mutual TLS) a client without a valid certificate closes the
//! connection. Each is counted and warned about at 1, 2, 4, … times.

mod framing;
mod tls;

use crate::input::LaneParts;
use crate::input::batcher::Batcher;
use crate::input::net::{Acceptor, ConnSlots, StreamIo, StreamWorker, recv_entry};
use crate::input::tls::{TlsInput, TlsParts, TlsSession};
use crate::metrics::{InputCounters, TcpCounters};
use crate::ring::Waker;
use crate::sockopt::peer_address;
use crate::uring::Token;
use framing::Framing;
use io_uring::opcode;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Connection slots beyond `--tcp-max-connections`, for connections whose
/// last completions have not come in yet.
const CLOSING_SPARE_SLOTS: usize = 32;
/// Bytes one receive asks for: the part of a connection's range the
/// kernel writes into stays small unless a record is long.
const RECEIVE_BYTES: usize = 64 * 1024;
/// Room kept after `--max-line` in a connection's range for a frame header.
const HEADER_ROOM: usize = framing::MAX_LENGTH_DIGITS + 1;
/// After a record this long, the pages of the connection's range are
/// given back once it is consumed.
const RELEASE_AFTER_BYTES: usize = 256 * 1024;
/// How often idle timeouts and the stop drain are checked.
const TIMER_TICK: Duration = Duration::from_millis(100);
/// Longest a stopping input keeps reading what senders already sent.
const STOP_DRAIN: Duration = Duration::from_secs(1);
/// Longest the worker waits, at exit, for its operations to complete.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One connection; its bytes are `region[slot * conn_bytes..][start..filled]`.
struct Conn {
    fd: RawFd,
    /// The slot holds a connection (possibly closing).
    open: bool,
    closing: bool,
    recv_posted: bool,
    /// Received bytes in the connection's range; `start..filled` is not
    /// consumed yet.
    filled: usize,
    start: usize,
    framing: Framing,
    /// Discarding the rest of an over-long line (newline framing).
    skip_line: bool,
    /// Bytes of an over-long frame still to discard (octet counting).
    skip_bytes: usize,
    /// The peer closed (or the input is stopping): what is left is the
    /// last record, then the connection closes.
    eof: bool,
    /// Waiting in `blocked` for room downstream.
    blocked: bool,
    last_active: Instant,
    /// Largest byte of the range written since it was last released.
    high_water: usize,
    /// A TLS input's session (`None` on a plaintext input); its receives
    /// bring ciphertext, and `filled` grows by what it decrypts.
    tls: Option<Box<TlsSession>>,
    /// The peer's address, asked once when it is accepted (`source=true`).
    peer: Option<SocketAddr>,
}

impl Conn {
    fn free() -> Self {
        Self {
            fd: -1,
            open: false,
            closing: false,
            recv_posted: false,
            filled: 0,
            start: 0,
            framing: Framing::Unknown,
            skip_line: false,
            skip_bytes: 0,
            eof: false,
            blocked: false,
            last_active: Instant::now(),
            high_water: 0,
            tls: None,
            peer: None,
        }
    }

    /// No more bytes come from the peer: the socket's end was received
    /// (a TLS connection's plaintext ends once what came before is
    /// decrypted and taken).
    fn input_ended(&self) -> bool {
        self.eof || self.tls.as_ref().is_some_and(|tls| tls.peer_closed)
    }

    /// Marks the end of the connection's input: the plaintext left is its
    /// last record (for TLS, once it is decrypted: see `pump_tls`).
    fn end_input(&mut self) {
        match &mut self.tls {
            Some(tls) => tls.peer_closed = true,
            None => self.eof = true,
        }
    }

    /// A send is posted on the connection (TLS only).
    fn send_posted(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.send_posted)
    }
}

/// What one record costs and how it is written.
pub(super) enum Emit {
    Written,
    /// No batch room downstream: try again later.
    Blocked,
}

/// What a TCP reader is built from.
pub(crate) struct TcpParts {
    pub lane: LaneParts,
    /// The input's name (its SPEC), for the TLS warnings.
    pub name: String,
    pub listener: OwnedFd,
    /// `Some` for `,tls`.
    pub tls: Option<TlsParts>,
    pub max_connections: usize,
    /// Zero: never.
    pub idle_timeout: Duration,
    /// Longest a partly filled batch waits (--batch-linger).
    pub linger: Duration,
    pub tcp: Arc<TcpCounters>,
}

pub(crate) struct TcpReader {
    /// The ring, the listener's accept and the wake read.
    io: StreamIo,
    /// `Some` on a TLS input.
    tls: Option<TlsInput>,
    max_connections: usize,
    idle_timeout: Duration,
    max_line_bytes: usize,
    /// `source=true`: each connection's peer is noted with its records.
    source: bool,
    linger: Duration,
    waker: Arc<Waker>,
    counters: Arc<InputCounters>,
    tcp: Arc<TcpCounters>,
    shutdown: Arc<AtomicBool>,
    readers_done: Arc<AtomicUsize>,
    conns: Box<[Conn]>,
    /// Slots, open count and receive ranges of `conns`.
    slots: ConnSlots,
    /// Connections waiting for room downstream, in the order they blocked
    /// (each at most once: capacity is the table size).
    blocked: VecDeque<u32>,
    /// Accepted connections waiting for a slot while evicted ones finish
    /// closing (at most --tcp-max-connections; counted open).
    pending_accepts: VecDeque<RawFd>,
    /// Fills batches with records and hands them to ring(4).
    batcher: Batcher,
    next_tick: Instant,
    /// Set at the stop; past it every connection is read to its end.
    stop_deadline: Option<Instant>,
    finishing: bool,
    /// Bytes received since the counters were last published.
    pass_bytes: u64,
    pass_truncated: u64,
    pass_invalid: u64,
}

impl TcpReader {
    pub fn new(parts: TcpParts) -> Result<Self, String> {
        let slots = parts.max_connections + CLOSING_SPARE_SLOTS;
        let lane = parts.lane;
        let conn_bytes = (lane.max_line_bytes + 1 + HEADER_ROOM)
            .max(2 * RECEIVE_BYTES)
            .next_multiple_of(4096);
        let region_bytes = slots
            .checked_mul(conn_bytes)
            .ok_or("--max-line × --tcp-max-connections overflows")?;
        let conn_slots = ConnSlots::new(slots, conn_bytes).map_err(|error| {
            format!("cannot reserve {region_bytes} bytes for {slots} connections: {error}")
        })?;
        let wake = lane.wake_read();
        let tls = parts
            .tls
            .map(|tls| TlsInput::new(tls, &parts.name, slots))
            .transpose()?;
        Ok(Self {
            io: StreamIo::new(lane.ring, Acceptor::new(parts.listener, "TCP"), wake),
            tls,
            max_connections: parts.max_connections,
            idle_timeout: parts.idle_timeout,
            max_line_bytes: lane.max_line_bytes,
            source: lane.source,
            linger: parts.linger,
            batcher: Batcher::new(lane.pool, lane.to_cpu),
            waker: lane.waker,
            counters: lane.counters,
            tcp: parts.tcp,
            shutdown: lane.shutdown,
            readers_done: lane.readers_done,
            conns: (0..slots).map(|_| Conn::free()).collect(),
            slots: conn_slots,
            blocked: VecDeque::with_capacity(slots),
            pending_accepts: VecDeque::with_capacity(parts.max_connections),
            next_tick: Instant::now() + TIMER_TICK,
            stop_deadline: None,
            finishing: false,
            pass_bytes: 0,
            pass_truncated: 0,
            pass_invalid: 0,
        })
    }

    pub fn run(mut self) {
        loop {
            self.reap_completions();
            self.resume_blocked();
            let now = Instant::now();
            let lingered = self
                .batcher
                .current_since()
                .is_some_and(|since| now.duration_since(since) >= self.linger);
            if lingered || self.stop_deadline.is_some() {
                self.batcher.flush_current();
            } else {
                self.batcher.push_full();
            }
            self.publish_counts();
            if now >= self.next_tick {
                self.check_timeouts(now);
                self.next_tick = now + TIMER_TICK;
            }
            self.io.arm_accept(now);
            if self.shutdown.load(Ordering::Relaxed) && self.stop_deadline.is_none() {
                self.start_stopping(now);
            }
            if self.stop_deadline.is_some() && !self.finishing && self.quiet_or_late(now) {
                self.finish_all();
            }
            if self.finishing && self.conns.iter().all(|conn| !conn.open) && self.batcher.is_empty()
            {
                break;
            }
            self.io.arm_wake();
            self.waker.announce_sleep();
            let can_progress = !self.blocked.is_empty()
                && self.batcher.ring_has_room()
                && (self.batcher.buffers_free() > 0 || self.batcher.has_current())
                || (self.batcher.has_full() && self.batcher.ring_has_room());
            if can_progress {
                crate::uring::submit(&self.io.ring, None);
            } else {
                let mut timeout = self.next_tick.saturating_duration_since(Instant::now());
                // (While a full batch waits for ring(4), the partly filled
                // one cannot go either: only a pop, which wakes us, helps.)
                if let Some(since) = self.batcher.current_since()
                    && !self.batcher.has_full()
                {
                    timeout = timeout.min(self.linger.saturating_sub(since.elapsed()));
                }
                crate::uring::submit(&self.io.ring, Some(timeout.max(Duration::from_millis(1))));
            }
            self.waker.sleep_done();
        }
        self.close_everything();
        self.publish_counts();
        self.readers_done.fetch_add(1, Ordering::AcqRel);
    }

    /// Stops accepting; connections are read for up to STOP_DRAIN more.
    fn start_stopping(&mut self, now: Instant) {
        self.stop_deadline = Some(now + STOP_DRAIN);
        self.io.stop_accepting();
    }

    /// Whether the stop drain is over: nothing unread in any socket and no
    /// connection blocked, or STOP_DRAIN passed.
    fn quiet_or_late(&self, now: Instant) -> bool {
        if self.stop_deadline.is_some_and(|deadline| now >= deadline) {
            return true;
        }
        self.conns
            .iter()
            .filter(|conn| conn.open && !conn.closing)
            .all(|conn| {
                !conn.blocked
                    && unread_bytes(conn.fd) == 0
                    && conn.tls.as_ref().is_none_or(|tls| tls.drained())
            })
    }

    /// The end of the stop: every connection's remaining bytes become its
    /// last record, and it closes.
    fn finish_all(&mut self) {
        self.finishing = true;
        for slot in 0..self.conns.len() {
            let conn = &mut self.conns[slot];
            // (A failed TLS connection closes once its alert is sent.)
            if !conn.open
                || conn.closing
                || conn.tls.as_ref().is_some_and(|tls| tls.close_after_send)
            {
                continue;
            }
            conn.end_input();
            // Its posted receive completes (with 0, or with what arrived).
            // SAFETY: `fd` is this connection's open socket.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RD) };
            if !conn.recv_posted && !conn.blocked {
                self.drain(slot);
            }
        }
    }

    fn close_everything(&mut self) {
        while let Some(fd) = self.pending_accepts.pop_front() {
            // SAFETY: accepted and never used; owned by nobody else.
            unsafe { libc::close(fd) };
            self.slots.open -= 1;
        }
        for slot in 0..self.conns.len() {
            if self.conns[slot].open {
                self.begin_close(slot);
            }
        }
        if !self.close_and_wait(CLOSE_WAIT, "TCP receives") {
            self.slots.leak();
            if let Some(tls) = &mut self.tls {
                tls.leak();
            }
        }
    }

    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self`:
        // the wake read's, or a connection's range of `slots` or of the
        // TLS buffers, which is not reused until the receive or send
        // completes.
        unsafe { self.io.push(entry) };
    }
}

impl StreamWorker for TcpReader {
    fn io(&mut self) -> &mut StreamIo {
        &mut self.io
    }

    fn on_accept(&mut self, result: i32, flags: u32) {
        let stopped = self.stop_deadline.is_some();
        let Some(fd) = self.io.acceptor.completed(result, flags, stopped) else {
            return;
        };
        self.tcp
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        if self.slots.open >= self.max_connections {
            self.evict_oldest_handshake();
        }
        if self.slots.open >= self.max_connections {
            self.refuse(fd);
            return;
        }
        self.slots.open += 1;
        match self.slots.take() {
            Some(slot) => self.start_conn(slot, fd),
            // Every slot is taken, some by evicted connections still
            // closing (a burst evicts faster than closes complete): it
            // waits for the next slot to free.
            None if self.pending_accepts.len() < self.max_connections => {
                self.pending_accepts.push_back(fd);
            }
            None => {
                self.slots.open -= 1;
                self.refuse(fd);
            }
        }
    }

    fn on_recv(&mut self, slot: usize, result: i32) {
        let conn = &mut self.conns[slot];
        conn.recv_posted = false;
        if conn.closing {
            self.finish_close_if_done(slot);
            return;
        }
        if result > 0 {
            conn.last_active = Instant::now();
            match &mut conn.tls {
                // Ciphertext, decrypted by `pump_tls` (which counts bytes).
                Some(tls) => {
                    tls.fed = 0;
                    tls.received = result as usize;
                }
                None => {
                    conn.filled += result as usize;
                    conn.high_water = conn.high_water.max(conn.filled);
                    self.pass_bytes += result as u64;
                }
            }
        } else {
            // The peer closed (0) or the connection failed: what is left
            // is its last record.
            conn.end_input();
        }
        if !conn.blocked {
            self.drain(slot);
        }
    }

    fn on_send(&mut self, slot: usize, result: i32) {
        let conn = &mut self.conns[slot];
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        tls.send_posted = false;
        if conn.closing {
            self.finish_close_if_done(slot);
            return;
        }
        if result <= 0 {
            // The peer is gone: nothing more can be said to it, but what
            // it sent before is still read (a failed connection closes).
            tls.send_failed = true;
            if tls.close_after_send {
                self.begin_close(slot);
            }
            return;
        }
        tls.send_start += result as usize;
        self.send_tls(slot);
        let conn = &self.conns[slot];
        if let Some(tls) = &conn.tls
            && tls.close_after_send
            && !tls.send_posted
        {
            self.begin_close(slot);
        }
    }
}

impl TcpReader {
    fn post_recv(&mut self, slot: usize) {
        let offset = self.slots.offset(slot);
        let conn_bytes = self.slots.conn_bytes();
        let conn = &mut self.conns[slot];
        if conn.recv_posted || conn.closing || conn.input_ended() {
            return;
        }
        if let (Some(tls), Some(input)) = (&mut conn.tls, &mut self.tls) {
            // The next ciphertext goes where the last was: all of it is fed.
            if tls.fed < tls.received || tls.close_after_send {
                debug_assert!(tls.close_after_send, "received ciphertext is fed first");
                return;
            }
            conn.recv_posted = true;
            let entry = input.recv(slot, conn.fd);
            self.push_entry(entry);
            return;
        }
        let free = conn_bytes - conn.filled;
        debug_assert!(free > HEADER_ROOM, "consumed records are compacted away");
        let filled = conn.filled;
        let fd = conn.fd;
        conn.recv_posted = true;
        let buffer = self.slots.slice(offset + filled, free.min(RECEIVE_BYTES));
        let entry = recv_entry(fd, buffer, slot);
        self.push_entry(entry);
    }

    /// Hands on every whole record the connection holds; then reads on,
    /// blocks (no room downstream) or closes (at its end).
    fn drain(&mut self, slot: usize) {
        if self.conns[slot]
            .tls
            .as_ref()
            .is_some_and(|tls| tls.close_after_send)
        {
            return; // failed: it closes once its alert is sent
        }
        loop {
            let mut progress = 0;
            if self.conns[slot].tls.is_some() {
                match self.pump_tls(slot) {
                    Ok(moved) => progress += moved,
                    Err(failure) => {
                        self.fail_tls(slot, failure);
                        return;
                    }
                }
            }
            let filled = self.conns[slot].filled;
            match self.frame(slot) {
                Emit::Blocked => {
                    let conn = &mut self.conns[slot];
                    // Waiting on ringway is not idleness.
                    conn.last_active = Instant::now();
                    if !conn.blocked {
                        conn.blocked = true;
                        self.blocked.push_back(slot as u32);
                    }
                    self.send_tls(slot);
                    return;
                }
                Emit::Written => {
                    progress += self.conns[slot].start;
                    self.compact(slot);
                    debug_assert!(self.conns[slot].filled <= filled);
                }
            }
            // A TLS connection may hold more than its range took: decrypt
            // on once framing made room.
            let more = self.conns[slot]
                .tls
                .as_ref()
                .is_some_and(|tls| !tls.drained() && !tls.close_after_send);
            if !more || progress == 0 {
                break;
            }
        }
        self.send_tls(slot);
        let conn = &self.conns[slot];
        if conn.eof {
            if !conn.recv_posted {
                self.begin_close(slot);
            }
        } else {
            self.post_recv(slot);
        }
    }

    /// Moves the unconsumed bytes to the front of the connection's range.
    fn compact(&mut self, slot: usize) {
        let offset = self.slots.offset(slot);
        let conn = &mut self.conns[slot];
        let (start, filled) = (conn.start, conn.filled);
        if start == 0 {
            return;
        }
        conn.start = 0;
        conn.filled = filled - start;
        let high_water = conn.high_water;
        if filled > start {
            self.slots
                .slice(offset, filled)
                .copy_within(start..filled, 0);
        }
        if high_water > RELEASE_AFTER_BYTES {
            let left = filled - start;
            self.slots.release(offset + left, high_water - left);
            self.conns[slot].high_water = left;
        }
    }

    /// Resumes blocked connections, in order, while there is room.
    fn resume_blocked(&mut self) {
        self.batcher.push_full();
        while let Some(&slot) = self.blocked.front() {
            if self.batcher.has_full()
                || (!self.batcher.has_current() && self.batcher.buffers_free() == 0)
            {
                return;
            }
            self.blocked.pop_front();
            let slot = slot as usize;
            self.conns[slot].blocked = false;
            self.conns[slot].last_active = Instant::now();
            self.drain(slot);
            if self.conns[slot].blocked {
                // Blocked again (it went to the back): room ran out.
                return;
            }
        }
    }

    fn publish_counts(&mut self) {
        if self.pass_bytes > 0 {
            self.counters
                .bytes
                .fetch_add(std::mem::take(&mut self.pass_bytes), Ordering::Relaxed);
        }
        if self.pass_truncated > 0 {
            self.counters
                .truncated
                .fetch_add(std::mem::take(&mut self.pass_truncated), Ordering::Relaxed);
        }
        if self.pass_invalid > 0 {
            self.counters
                .invalid
                .fetch_add(std::mem::take(&mut self.pass_invalid), Ordering::Relaxed);
        }
    }

    fn check_timeouts(&mut self, now: Instant) {
        if self.stop_deadline.is_some() {
            return;
        }
        for slot in 0..self.conns.len() {
            let conn = &mut self.conns[slot];
            if !conn.open || conn.closing {
                continue;
            }
            if let Some(tls) = &conn.tls
                && now >= tls.handshake_deadline
            {
                if tls.close_after_send {
                    // A failed connection whose alert is not taken within
                    // the handshake's time (or, failed after it, at once)
                    // is closed without it.
                    self.begin_close(slot);
                    continue;
                }
                if !tls.handshaken {
                    self.handshake_timed_out(slot);
                    continue;
                }
            }
            if self.idle_timeout.is_zero() || conn.input_ended() || conn.blocked {
                continue;
            }
            if now.duration_since(conn.last_active) > self.idle_timeout {
                self.tcp.idle_closed.fetch_add(1, Ordering::Relaxed);
                conn.end_input();
                // Its receive completes; what it holds is its last record.
                // SAFETY: `fd` is this connection's open socket.
                unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                if !conn.recv_posted {
                    self.drain(slot);
                }
            }
        }
    }

    /// Starts the connection `fd` (counted open) in `slot`: its TLS
    /// session, if any, and its first receive.
    fn start_conn(&mut self, slot: usize, fd: RawFd) {
        let Ok(session) = TlsInput::session_for(self.tls.as_mut()) else {
            self.slots.abandon(slot, fd);
            return;
        };
        let conn = &mut self.conns[slot];
        *conn = Conn::free();
        conn.fd = fd;
        conn.open = true;
        conn.tls = session;
        if self.source {
            // Once per connection: the accept itself does not say (a
            // multishot accept shares one address buffer).
            conn.peer = peer_address(fd);
        }
        self.post_recv(slot);
    }

    /// Closes a new connection at once: the table is full (counted).
    fn refuse(&mut self, fd: RawFd) {
        self.tcp.connections_refused.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `fd` was just accepted and is owned by nobody else.
        unsafe { libc::close(fd) };
    }

    /// With the table full, makes room for a new connection by closing the
    /// oldest one still in its TLS handshake (counted as evicted): such a
    /// connection has sent no record yet, so nothing is lost, and a flood
    /// of stalled handshakes cannot keep good clients out until
    /// --tls-handshake-timeout. Connections past their handshake, and
    /// plaintext ones, are never evicted.
    fn evict_oldest_handshake(&mut self) {
        let oldest = (0..self.conns.len())
            .filter(|&slot| {
                let conn = &self.conns[slot];
                conn.open
                    && !conn.closing
                    && conn
                        .tls
                        .as_ref()
                        .is_some_and(|tls| !tls.handshaken && !tls.close_after_send)
            })
            .min_by_key(|&slot| {
                self.conns[slot]
                    .tls
                    .as_ref()
                    .map(|tls| tls.handshake_deadline)
            });
        if let Some(slot) = oldest {
            self.begin_close(slot);
        } else if let Some(fd) = self.pending_accepts.pop_front() {
            // A connection still waiting for a slot has not started its
            // handshake: it goes too.
            // SAFETY: accepted and never used; owned by nobody else.
            unsafe { libc::close(fd) };
            self.slots.open -= 1;
        } else {
            return;
        }
        self.tcp.connections_evicted.fetch_add(1, Ordering::Relaxed);
    }

    fn begin_close(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.closing || !conn.open {
            return;
        }
        conn.closing = true;
        if conn.blocked {
            conn.blocked = false;
            self.blocked.retain(|&blocked| blocked as usize != slot);
        }
        let send_posted = conn.send_posted();
        if let Some(cancel) = self.slots.begin_close(slot, conn.fd, conn.recv_posted) {
            self.push_entry(cancel);
        }
        if send_posted {
            let cancel = opcode::AsyncCancel::new(Token::ConnSend(slot as u32).encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(cancel);
        }
        self.finish_close_if_done(slot);
    }

    fn finish_close_if_done(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if !conn.closing || conn.recv_posted || conn.send_posted() {
            return;
        }
        self.slots
            .finish_close(slot, conn.fd, conn.high_water, RELEASE_AFTER_BYTES);
        *conn = Conn::free();
        match self.pending_accepts.pop_front() {
            Some(fd) => self.start_conn(slot, fd),
            None => self.slots.give_back(slot),
        }
    }
}

/// Bytes waiting in a socket's receive queue (FIONREAD).
fn unread_bytes(fd: RawFd) -> usize {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `count`.
    let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count) };
    if result == 0 {
        count.max(0) as usize
    } else {
        0
    }
}

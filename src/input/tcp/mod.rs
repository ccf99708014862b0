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
//! order it sent them.
//!
//! Backpressure: when no batch buffer is free or ring(4) is full, a
//! connection that has records to hand on is *blocked*: no receive is
//! posted for it until there is room again (blocked connections resume in
//! the order they blocked). Its data waits in the kernel's socket buffer,
//! and TCP flow control pushes back on the sender. Nothing a sender
//! managed to send is dropped.

mod framing;

use crate::escape::{escaped_line_len, write_escaped_line};
use crate::input::LaneParts;
use crate::input::batcher::Batcher;
use crate::input::net::{Acceptor, ConnSlots, StreamIo, StreamWorker};
use crate::metrics::{InputCounters, TcpCounters};
use crate::ring::Waker;
use crate::uring::Token;
use framing::{FrameHeader, Framing, detect_framing, parse_frame_header};
use io_uring::{opcode, types};
use std::collections::VecDeque;
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
        }
    }
}

/// What one record costs and how it is written.
enum Emit {
    Written,
    /// No batch room downstream: try again later.
    Blocked,
}

/// What a TCP reader is built from.
pub(crate) struct TcpParts {
    pub lane: LaneParts,
    pub listener: OwnedFd,
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
    max_connections: usize,
    idle_timeout: Duration,
    max_line_bytes: usize,
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
        Ok(Self {
            io: StreamIo {
                ring: lane.ring,
                acceptor: Acceptor::new(parts.listener, "TCP"),
                wake,
            },
            max_connections: parts.max_connections,
            idle_timeout: parts.idle_timeout,
            max_line_bytes: lane.max_line_bytes,
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
            .all(|conn| !conn.blocked && unread_bytes(conn.fd) == 0)
    }

    /// The end of the stop: every connection's remaining bytes become its
    /// last record, and it closes.
    fn finish_all(&mut self) {
        self.finishing = true;
        for slot in 0..self.conns.len() {
            let conn = &mut self.conns[slot];
            if !conn.open || conn.closing {
                continue;
            }
            conn.eof = true;
            // Its posted receive completes (with 0, or with what arrived).
            // SAFETY: `fd` is this connection's open socket.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RD) };
            if !conn.recv_posted && !conn.blocked {
                self.drain(slot);
            }
        }
    }

    fn close_everything(&mut self) {
        for slot in 0..self.conns.len() {
            if self.conns[slot].open {
                self.begin_close(slot);
            }
        }
        if !self.close_and_wait(CLOSE_WAIT, "TCP receives") {
            self.slots.leak();
        }
    }

    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self`:
        // the wake read's, or a connection's range of `slots`, which
        // is not reused until the receive completes.
        unsafe { self.io.push(entry) };
    }
}

impl StreamWorker for TcpReader {
    fn io(&mut self) -> &mut StreamIo {
        &mut self.io
    }

    fn conns_busy(&self) -> bool {
        self.conns.iter().any(|conn| conn.recv_posted)
    }

    fn on_accept(&mut self, result: i32, flags: u32) {
        let stopped = self.stop_deadline.is_some();
        let Some(fd) = self.io.acceptor.completed(result, flags, stopped) else {
            return;
        };
        self.tcp
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let slot = if self.slots.open < self.max_connections {
            self.slots.take()
        } else {
            None
        };
        let Some(slot) = slot else {
            self.tcp.connections_refused.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `fd` was just accepted and is owned by nobody else.
            unsafe { libc::close(fd) };
            return;
        };
        let conn = &mut self.conns[slot];
        *conn = Conn::free();
        conn.fd = fd;
        conn.open = true;
        self.slots.open += 1;
        self.post_recv(slot);
    }

    fn on_recv(&mut self, slot: usize, result: i32) {
        let conn = &mut self.conns[slot];
        conn.recv_posted = false;
        if conn.closing {
            self.finish_close_if_done(slot);
            return;
        }
        if result > 0 {
            conn.filled += result as usize;
            conn.high_water = conn.high_water.max(conn.filled);
            conn.last_active = Instant::now();
            self.pass_bytes += result as u64;
        } else {
            // The peer closed (0) or the connection failed: what is left
            // is its last record.
            conn.eof = true;
        }
        if !conn.blocked {
            self.drain(slot);
        }
    }
}

impl TcpReader {
    fn post_recv(&mut self, slot: usize) {
        let offset = self.slots.offset(slot);
        let conn_bytes = self.slots.conn_bytes();
        let conn = &mut self.conns[slot];
        if conn.recv_posted || conn.closing || conn.eof {
            return;
        }
        let free = conn_bytes - conn.filled;
        debug_assert!(free > HEADER_ROOM, "consumed records are compacted away");
        let filled = conn.filled;
        let fd = conn.fd;
        conn.recv_posted = true;
        let buffer = self.slots.slice(offset + filled, free.min(RECEIVE_BYTES));
        let entry = opcode::Recv::new(types::Fd(fd), buffer.as_mut_ptr(), buffer.len() as u32)
            .build()
            .user_data(Token::ConnRecv(slot as u32).encode());
        self.push_entry(entry);
    }

    /// Hands on every whole record the connection holds; then reads on,
    /// blocks (no room downstream) or closes (at its end).
    fn drain(&mut self, slot: usize) {
        match self.frame(slot) {
            Emit::Blocked => {
                let conn = &mut self.conns[slot];
                // Waiting on ringway is not idleness.
                conn.last_active = Instant::now();
                if !conn.blocked {
                    conn.blocked = true;
                    self.blocked.push_back(slot as u32);
                }
            }
            Emit::Written => {
                self.compact(slot);
                let conn = &self.conns[slot];
                if conn.eof {
                    if !conn.recv_posted {
                        self.begin_close(slot);
                    }
                } else {
                    self.post_recv(slot);
                }
            }
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

    /// Frames the connection's bytes into records until it needs more
    /// bytes or room runs out.
    fn frame(&mut self, slot: usize) -> Emit {
        let offset = self.slots.offset(slot);
        let max_line = self.max_line_bytes;
        loop {
            let conn = &self.conns[slot];
            let (start, filled, eof) = (conn.start, conn.filled, conn.eof);
            if start == filled {
                return Emit::Written;
            }
            match conn.framing {
                Framing::Unknown => {
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    let framing = detect_framing(bytes, eof);
                    if framing == Framing::Unknown {
                        return Emit::Written; // too few bytes to tell
                    }
                    self.conns[slot].framing = framing;
                }
                Framing::Lines => {
                    if conn.skip_line {
                        let bytes = &self.slots.slice(offset + start, filled - start)[..];
                        let conn = &mut self.conns[slot];
                        match memchr::memchr(b'\n', bytes) {
                            Some(newline) => {
                                conn.start += newline + 1;
                                conn.skip_line = false;
                            }
                            None => conn.start = filled,
                        }
                        continue;
                    }
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    let (record, consumed, truncated, skip) =
                        match memchr::memchr(b'\n', &bytes[..bytes.len().min(max_line + 1)]) {
                            Some(newline) => (newline, newline + 1, false, false),
                            // No newline within --max-line: the line is cut
                            // there and its rest skipped.
                            None if bytes.len() > max_line => (max_line, max_line, true, true),
                            // The last line of a closed connection.
                            None if eof => (bytes.len(), bytes.len(), false, false),
                            None => return Emit::Written, // wait for the rest
                        };
                    if let Emit::Blocked = self.emit(offset + start, record, false, truncated) {
                        return Emit::Blocked;
                    }
                    let conn = &mut self.conns[slot];
                    conn.start += consumed;
                    conn.skip_line = skip;
                }
                Framing::Octets => {
                    if conn.skip_bytes > 0 {
                        let conn = &mut self.conns[slot];
                        let skip = conn.skip_bytes.min(filled - start);
                        conn.start += skip;
                        conn.skip_bytes -= skip;
                        continue;
                    }
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    match parse_frame_header(bytes) {
                        FrameHeader::Partial if eof => {
                            // A cut header at the end: the bytes as a line.
                            self.conns[slot].framing = Framing::Lines;
                        }
                        FrameHeader::Partial => return Emit::Written,
                        FrameHeader::Invalid => {
                            // Not octet counting after all (or a sender's
                            // bug): newline framing from here on.
                            self.pass_invalid += 1;
                            self.conns[slot].framing = Framing::Lines;
                        }
                        FrameHeader::Frame { header, length } => {
                            let available = bytes.len() - header;
                            let keep = length.min(max_line);
                            if available < keep && !eof {
                                return Emit::Written; // wait for the frame
                            }
                            let keep = keep.min(available);
                            let truncated = keep < length;
                            if let Emit::Blocked =
                                self.emit(offset + start + header, keep, true, truncated)
                            {
                                return Emit::Blocked;
                            }
                            let conn = &mut self.conns[slot];
                            conn.start += header + keep;
                            conn.skip_bytes = if eof { 0 } else { length - keep };
                        }
                    }
                }
            }
        }
    }

    /// Appends `len` bytes at `at` in the region as one record (a frame's
    /// newlines escaped as `#012`), starting a new batch when the current
    /// one is full.
    /// `cut`: the caller already cut this record (counted once either way).
    fn emit(&mut self, at: usize, len: usize, escape: bool, cut: bool) -> Emit {
        let max_line = self.max_line_bytes;
        let (keep, escaped, escape_cut) = {
            let mut record = &self.slots.slice(at, len)[..];
            // A trailing newline in a frame is its end, not part of it.
            if escape {
                record = record.strip_suffix(b"\n").unwrap_or(record);
            }
            let escaped = if escape {
                escaped_line_len(record)
            } else {
                record.len()
            };
            if escaped <= max_line {
                (record.len(), escaped, false)
            } else {
                // Escaping grew it past a line: keep what fits.
                let mut keep = 0;
                let mut cost = 0;
                for &byte in record {
                    let next = if byte == b'\n' { 4 } else { 1 };
                    if cost + next > max_line {
                        break;
                    }
                    cost += next;
                    keep += 1;
                }
                (keep, cost, true)
            }
        };
        let needed = escaped + 1;
        let Some(batch) = self.batcher.batch_for(needed) else {
            return Emit::Blocked;
        };
        let record = &self.slots.slice(at, keep)[..];
        let out = &mut batch.buf[batch.len..];
        let written = if escaped != keep {
            write_escaped_line(record, out)
        } else {
            out[..keep].copy_from_slice(record);
            keep
        };
        out[written] = b'\n';
        batch.len += written + 1;
        self.pass_truncated += u64::from(cut || escape_cut);
        Emit::Written
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
        if self.idle_timeout.is_zero() || self.stop_deadline.is_some() {
            return;
        }
        for slot in 0..self.conns.len() {
            let conn = &mut self.conns[slot];
            if !conn.open || conn.closing || conn.eof || conn.blocked {
                continue;
            }
            if now.duration_since(conn.last_active) > self.idle_timeout {
                self.tcp.idle_closed.fetch_add(1, Ordering::Relaxed);
                conn.eof = true;
                // Its receive completes; what it holds is its last record.
                // SAFETY: `fd` is this connection's open socket.
                unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                if !conn.recv_posted {
                    self.drain(slot);
                }
            }
        }
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
        if let Some(cancel) = self.slots.begin_close(slot, conn.fd, conn.recv_posted) {
            self.push_entry(cancel);
        }
        self.finish_close_if_done(slot);
    }

    fn finish_close_if_done(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if !conn.closing || conn.recv_posted {
            return;
        }
        self.slots
            .finish_close(slot, conn.fd, conn.high_water, RELEASE_AFTER_BYTES);
        *conn = Conn::free();
        self.slots.give_back(slot);
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

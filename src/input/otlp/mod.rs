//! The OTLP/HTTP input's I/O worker: an HTTP/1.1 server on io_uring that
//! takes `POST /v1/logs`, decodes the logs and puts them into ring(4) as
//! NDJSON lines, or answers 429 when it cannot (DESIGN §2).
//!
//! [`OtlpReceiver`] owns the listening socket (a multishot accept), a fixed
//! table of [`Conn`]s and the input's batch [`BufferPool`]. Each connection
//! owns one region of a start-up mapping, `HEADER_LIMIT_BYTES +
//! --max-body + CHUNK_FRAMING_LIMIT_BYTES` bytes, that its receives write
//! straight into: the request head is parsed there ([`http`]), the body is
//! read in place (a chunked one decoded as it arrives, its framing
//! dropped), then decoded ([`decode`]) into the prost types of
//! `opentelemetry-proto` (gzip inflated into one more region of
//! `--max-body`), values nested more than 32 deep left out. Decoding
//! allocates (prost builds owned messages); that is bounded by a message
//! cap per request, one request decoded at a time, and is a later
//! optimisation.
//!
//! A decoded request becomes an [`Emission`]: its records are written as
//! JSON lines ([`encode`]) into batch buffers and pushed into ring(4).
//! Whether a request may start is decided when it arrives: when ring(4) is
//! full, no batch buffer is free, or another request is still being
//! emitted, it gets **429 with `Retry-After`** at once. A request that
//! started is never refused halfway (its records are committed); a large
//! one waits for room batch by batch while others get 429.
//!
//! Replies: with `--otlp-ack accepted` the 200 goes out once the last
//! batch is in ring(4). With `--otlp-ack delivered` each batch carries an
//! [`Ack::Reply`]; the last output to accept it sends the request's token
//! back through [`Replies`] (a bounded queue plus this worker's eventfd),
//! and the 200 goes out when every batch of the request came back.
//!
//! One request per connection is in progress at a time: pipelined
//! requests wait, unread, in the connection's region and are answered in
//! order. Limits: `--otlp-max-connections` (the longest-idle connection
//! makes room for a new one), a 16 KiB head (431), `--max-body` (413),
//! `--otlp-read-timeout` for a request to arrive whole (408),
//! `--otlp-idle-timeout` for keep-alive connections.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod http;

use crate::batch::{Ack, Batch};
use crate::config::{OtlpAck, OtlpSettings};
use crate::input::net::{Acceptor, Region};
use crate::metrics::{InputCounters, OtlpCounters};
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use crate::uring::{Token, WakeRead};
use crossbeam_queue::ArrayQueue;
use decode::{DecodeError, Decoded};
use http::{BodyLength, BodyStyle, ChunkedResult, ContentType, Head, HeadResult};
use io_uring::{IoUring, opcode, types};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Connection slots beyond `--otlp-max-connections`, for connections that
/// are closing (their last completions not yet in) while new ones arrive.
const CLOSING_SPARE_SLOTS: usize = 32;
/// Accepted connections that may wait for a slot to free (while evicted
/// connections finish closing); past that a new connection is refused.
const PENDING_ACCEPTS: usize = 1024;
/// How often timeouts are checked.
const TIMER_TICK: Duration = Duration::from_millis(100);
/// After a request body this large, the pages of its region are given
/// back to the kernel, so one big request does not pin memory for good.
const RELEASE_AFTER_BYTES: usize = 1 << 20;
/// Longest the worker waits, at exit, for its operations to complete.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Tokens of requests whose batches every output accepted, on their way
/// back to the receiver (`--otlp-ack delivered`).
pub(crate) struct Replies {
    /// One token per request, sent once its last batch is delivered. A
    /// token waits here only for a request that had a batch in flight when
    /// the receiver last drained the queue, or for the connection slots;
    /// capacity: the input's buffers plus its slots, so a push never fails.
    queue: ArrayQueue<u64>,
    receiver: Arc<Waker>,
}

impl Replies {
    pub fn new(capacity: usize, receiver: Arc<Waker>) -> Arc<Self> {
        Arc::new(Self {
            queue: ArrayQueue::new(capacity.max(1)),
            receiver,
        })
    }

    /// Called by the last output to accept a batch.
    pub fn send(&self, token: u64) {
        if self.queue.push(token).is_err() {
            debug_assert!(false, "the reply queue holds one token per buffer");
            eprintln!(
                "ringway: error: the OTLP reply queue is full; a request will not be answered"
            );
        }
        self.receiver.wake();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The slot holds no connection.
    Free,
    /// Reading a request (or waiting for one on a kept-alive connection).
    Reading,
    /// Its request is in the pipeline: waiting for the emission to finish
    /// or, with `delivered`, for its batches to come back.
    Busy,
    /// Sending a response.
    Sending,
}

/// One connection. Its bytes live in the receiver's connection region at
/// `slot * conn_bytes`; a receive writes `region[filled..]`.
struct Conn {
    fd: RawFd,
    phase: Phase,
    /// Changes whenever the slot gets a new connection or a new request,
    /// so a late reply for an old one is recognised and ignored.
    serial: u32,
    /// Bytes received into the region and not yet consumed.
    filled: usize,
    /// The current request's head, once parsed.
    head: Option<Head>,
    chunked: http::Chunked,
    /// When the current request's first byte arrived.
    request_started: Option<Instant>,
    last_active: Instant,
    recv_posted: bool,
    send_posted: bool,
    /// shutdown() was called: close once no operation is posted.
    closing: bool,
    response: http::Response,
    /// Response bytes sent so far.
    sent: usize,
    close_after_send: bool,
    /// Bytes of the request being answered (head and body as received).
    consumed: usize,
    /// How the answer to the current request is written.
    style: BodyStyle,
    /// `delivered`: batches of the current request sent and come back.
    /// The current request is still being emitted.
    emitting: bool,
    /// Largest byte of the region written since it was last released.
    high_water: usize,
    /// "100 Continue" was sent for the current request.
    continue_sent: bool,
}

impl Conn {
    fn free() -> Self {
        Self {
            fd: -1,
            phase: Phase::Free,
            serial: 0,
            filled: 0,
            head: None,
            chunked: http::Chunked::default(),
            request_started: None,
            last_active: Instant::now(),
            recv_posted: false,
            send_posted: false,
            closing: false,
            response: http::Response::default(),
            sent: 0,
            close_after_send: false,
            consumed: 0,
            style: BodyStyle::Text,
            emitting: false,
            high_water: 0,
            continue_sent: false,
        }
    }

    fn is_idle(&self) -> bool {
        self.phase == Phase::Reading && self.filled == 0 && !self.closing
    }
}

/// Where an emission stands after a pass.
enum Outcome {
    /// Waiting for a buffer or for room in ring(4).
    Waiting,
    /// Every batch is in ring(4).
    Finished,
    /// Refused: its batches did not fit.
    Rejected,
}

/// A decoded request being written into batches.
struct Emission {
    slot: u32,
    serial: u32,
    logs: Vec<ResourceLogs>,
    /// Cursor: resource, scope and record index of the next record.
    resource: usize,
    scope: usize,
    record: usize,
    /// The batch being filled.
    batch: Option<Batch>,
    /// Filled batches not pushed yet (at most ring(4)'s capacity + 1).
    held: std::collections::VecDeque<Batch>,
    /// Taken for good: its batches go into ring(4) as room frees, and
    /// it is no longer refused.
    committed: bool,
    /// Body bytes as received.
    wire_bytes: usize,
    /// Records too large for a line, written cut down.
    truncated: u64,
    /// Arrays and maps nested too deep, written as null.
    values_too_deep: u64,
    /// `delivered`: the request's count of batches not yet delivered.
    delivery: Option<Arc<RequestDelivery>>,
}

/// One request's outstanding batches under `--otlp-ack delivered`. Its
/// token goes back to the receiver once, when the count reaches zero.
pub(crate) struct RequestDelivery {
    /// The connection slot (high 32 bits) and its serial.
    pub token: u64,
    /// Batches pushed and not yet delivered by every output, plus one
    /// while the request is still being emitted.
    pub pending: AtomicU32,
}

/// The flags and shared pieces a receiver is built from.
pub(crate) struct ReceiverParts {
    pub ring: IoUring,
    pub listener: OwnedFd,
    pub settings: OtlpSettings,
    pub max_line_bytes: usize,
    /// Capacity of ring(4), in batches.
    pub io_ring_capacity: usize,
    pub pool: Arc<BufferPool>,
    pub to_cpu: RingSender<Batch>,
    pub waker: Arc<Waker>,
    pub counters: Arc<InputCounters>,
    pub otlp: Arc<OtlpCounters>,
    pub replies: Arc<Replies>,
    /// Outputs that must accept a batch before its request is delivered.
    pub outputs: u32,
    pub shutdown: Arc<AtomicBool>,
    pub readers_done: Arc<AtomicUsize>,
}

pub(crate) struct OtlpReceiver {
    ring: IoUring,
    acceptor: Acceptor,
    settings: OtlpSettings,
    max_line_bytes: usize,
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    waker: Arc<Waker>,
    counters: Arc<InputCounters>,
    otlp: Arc<OtlpCounters>,
    replies: Arc<Replies>,
    outputs: u32,
    shutdown: Arc<AtomicBool>,
    readers_done: Arc<AtomicUsize>,
    wake: WakeRead,
    conns: Box<[Conn]>,
    /// Free slots (a stack); its capacity is the table size.
    free_slots: Vec<u32>,
    /// Connections open and not closing (those waiting for a slot too).
    open: usize,
    /// Accepted connections waiting for a slot, oldest first.
    pending_accepts: std::collections::VecDeque<RawFd>,
    /// Every connection's bytes: `conns.len() * conn_bytes`.
    conn_region: Region,
    conn_bytes: usize,
    /// Where gzip bodies are inflated: `--max-body + 1` bytes.
    inflate_region: Region,
    emission: Option<Emission>,
    /// The held-batch queue of the last emission, kept for the next one
    /// (allocated once, with room for ring(4) + 1 batches).
    spare_held: std::collections::VecDeque<Batch>,
    io_ring_capacity: usize,
    next_tick: Instant,
    stopping: bool,
    /// Decode failures, for warnings at 1, 2, 4, … occurrences.
    bad_bodies: u64,
}

impl OtlpReceiver {
    pub fn new(parts: ReceiverParts) -> Result<Self, String> {
        let slots = parts.settings.max_connections + CLOSING_SPARE_SLOTS;
        // A head, a body, and what a chunked body's framing may hold
        // beyond its decoded bytes (a partial size line or trailers).
        let conn_bytes = (http::HEADER_LIMIT_BYTES
            + parts.settings.max_body_bytes
            + http::CHUNK_FRAMING_LIMIT_BYTES)
            .next_multiple_of(4096);
        let region_bytes = slots
            .checked_mul(conn_bytes)
            .ok_or("--max-body × --otlp-max-connections overflows")?;
        let conn_region = Region::map(region_bytes).map_err(|error| {
            format!(
                "cannot reserve {region_bytes} bytes for {slots} connections of --max-body {}: {error}",
                parts.settings.max_body_bytes
            )
        })?;
        let inflate_region = Region::map(parts.settings.max_body_bytes + 1)
            .map_err(|error| format!("cannot reserve the gzip buffer: {error}"))?;
        let wake_fd = parts
            .waker
            .eventfd()
            .expect("an I/O worker's waker is an eventfd");
        Ok(Self {
            ring: parts.ring,
            acceptor: Acceptor::new(parts.listener, "OTLP"),
            settings: parts.settings,
            max_line_bytes: parts.max_line_bytes,
            pool: parts.pool,
            to_cpu: parts.to_cpu,
            waker: parts.waker,
            counters: parts.counters,
            otlp: parts.otlp,
            replies: parts.replies,
            outputs: parts.outputs.max(1),
            shutdown: parts.shutdown,
            readers_done: parts.readers_done,
            wake: WakeRead::new(wake_fd),
            conns: (0..slots).map(|_| Conn::free()).collect(),
            free_slots: (0..slots as u32).rev().collect(),
            open: 0,
            pending_accepts: std::collections::VecDeque::with_capacity(PENDING_ACCEPTS),
            conn_region,
            conn_bytes,
            inflate_region,
            emission: None,
            spare_held: std::collections::VecDeque::with_capacity(parts.io_ring_capacity + 2),
            io_ring_capacity: parts.io_ring_capacity,
            next_tick: Instant::now() + TIMER_TICK,
            stopping: false,
            bad_bodies: 0,
        })
    }

    pub fn run(mut self) {
        loop {
            self.reap_completions();
            self.take_replies();
            self.drive_emission();
            let now = Instant::now();
            if now >= self.next_tick {
                self.check_timeouts(now);
                self.next_tick = now + TIMER_TICK;
            }
            if let Some(entry) = self.acceptor.arm(now) {
                self.push_entry(entry);
            }
            if self.shutdown.load(Ordering::Relaxed) && !self.stopping {
                self.start_stopping();
            }
            if self.stopping && self.drained() {
                break;
            }
            if let Some(entry) = self.wake.arm() {
                self.push_entry(entry);
            }
            self.waker.announce_sleep();
            let can_progress = !self.replies.queue.is_empty()
                || self.emission.as_ref().is_some_and(|emission| {
                    (!emission.held.is_empty() && self.to_cpu.has_room())
                        || (emission.held.is_empty() && self.pool.available() > 0)
                });
            if can_progress {
                crate::uring::submit(&self.ring, None);
            } else {
                let timeout = self
                    .next_tick
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                crate::uring::submit(&self.ring, Some(timeout));
            }
            self.waker.sleep_done();
        }
        self.close_everything();
        self.readers_done.fetch_add(1, Ordering::AcqRel);
    }

    /// The drain at exit is over once no request is in the pipeline and no
    /// response is being sent.
    fn drained(&self) -> bool {
        self.emission.is_none()
            && self
                .conns
                .iter()
                .all(|conn| !matches!(conn.phase, Phase::Busy | Phase::Sending) || conn.closing)
    }

    /// Stops accepting and closes idle connections; requests that complete
    /// from now on get 503.
    fn start_stopping(&mut self) {
        self.stopping = true;
        if let Some(entry) = self.acceptor.stop() {
            self.push_entry(entry);
        }
        for slot in 0..self.conns.len() {
            if self.conns[slot].is_idle() {
                self.begin_close(slot);
            }
        }
    }

    /// Closes every connection and waits (bounded) for their operations,
    /// so nothing the kernel may still write into is unmapped.
    fn close_everything(&mut self) {
        while let Some(fd) = self.pending_accepts.pop_front() {
            // SAFETY: accepted and never used; owned by nobody else.
            unsafe { libc::close(fd) };
        }
        for slot in 0..self.conns.len() {
            if self.conns[slot].phase != Phase::Free {
                self.begin_close(slot);
            }
        }
        if let Some(entry) = self.acceptor.stop() {
            self.push_entry(entry);
        }
        if let Some(entry) = self.wake.cancel() {
            self.push_entry(entry);
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while Instant::now() < deadline {
            let busy = self.acceptor.armed
                || self.wake.is_armed()
                || self
                    .conns
                    .iter()
                    .any(|conn| conn.recv_posted || conn.send_posted);
            if !busy {
                return;
            }
            crate::uring::submit(&self.ring, Some(Duration::from_millis(10)));
            self.reap_completions();
        }
        eprintln!(
            "ringway: warning: OTLP receiver operations did not complete at exit; leaking their buffers"
        );
        self.conn_region.leak();
        // Posted sends point into the connections' response buffers.
        std::mem::forget(std::mem::take(&mut self.conns));
        self.wake.leak();
    }

    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self`:
        // the wake read's, or a connection's range of `conn_region` or
        // response, neither moved nor reused until the completion.
        unsafe { crate::uring::push_entry(&mut self.ring, &entry) };
    }

    fn reap_completions(&mut self) {
        let mut completions = [(0, 0, 0); crate::uring::COMPLETION_BATCH];
        loop {
            let count = crate::uring::take_completions(&mut self.ring, &mut completions);
            if count == 0 {
                return;
            }
            for &(user_data, result, flags) in &completions[..count] {
                match Token::decode(user_data) {
                    Some(Token::Accept) => self.on_accept(result, flags),
                    Some(Token::ConnRecv(slot)) => self.on_recv(slot as usize, result),
                    Some(Token::ConnSend(slot)) => self.on_send(slot as usize, result),
                    Some(Token::Wake) => self.wake.completed(),
                    _ => {}
                }
            }
        }
    }

    fn on_accept(&mut self, result: i32, flags: u32) {
        let Some(fd) = self.acceptor.completed(result, flags, self.stopping) else {
            return;
        };
        self.otlp
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        if self.open >= self.settings.max_connections {
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
                    self.open -= 1;
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
        self.open += 1;
        match self.free_slots.pop() {
            Some(slot) => self.start_conn(slot as usize, fd),
            // Every slot is taken, some by connections still closing (a
            // burst of new connections evicts faster than closes complete):
            // it waits for the next slot to free.
            None if self.pending_accepts.len() < PENDING_ACCEPTS => {
                self.pending_accepts.push_back(fd);
            }
            None => {
                self.open -= 1;
                self.refuse(fd);
            }
        }
    }

    /// Gives connection `fd` the free slot `slot` and starts reading.
    fn start_conn(&mut self, slot: usize, fd: RawFd) {
        let conn = &mut self.conns[slot];
        let serial = conn.serial.wrapping_add(1);
        *conn = Conn::free();
        conn.fd = fd;
        conn.serial = serial;
        conn.phase = Phase::Reading;
        self.post_recv(slot);
    }

    fn refuse(&mut self, fd: RawFd) {
        self.otlp
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        // SAFETY: `fd` was just accepted and is owned by nobody else.
        unsafe { libc::close(fd) };
    }

    fn region_offset(&self, slot: usize) -> usize {
        slot * self.conn_bytes
    }

    fn post_recv(&mut self, slot: usize) {
        let offset = self.region_offset(slot);
        let conn_bytes = self.conn_bytes;
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
        let buffer = self.conn_region.slice(offset + filled, conn_bytes - filled);
        let entry = opcode::Recv::new(
            types::Fd(fd),
            buffer.as_mut_ptr(),
            buffer.len().min(u32::MAX as usize) as u32,
        )
        .build()
        .user_data(Token::ConnRecv(slot as u32).encode());
        self.push_entry(entry);
    }

    fn on_recv(&mut self, slot: usize, result: i32) {
        let conn = &mut self.conns[slot];
        conn.recv_posted = false;
        if conn.closing {
            self.finish_close_if_done(slot);
            return;
        }
        if result <= 0 {
            // The peer closed (0) or the connection failed.
            self.begin_close(slot);
            return;
        }
        let now = Instant::now();
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
        let conn = &mut self.conns[slot];
        conn.send_posted = false;
        if conn.closing {
            self.finish_close_if_done(slot);
            return;
        }
        if result <= 0 {
            self.begin_close(slot);
            return;
        }
        conn.sent += result as usize;
        conn.last_active = Instant::now();
        if conn.sent < conn.response.len {
            self.post_send(slot);
            return;
        }
        if conn.phase == Phase::Reading {
            // The interim "100 Continue" went out; the body may be whole.
            self.process(slot);
            return;
        }
        if conn.close_after_send {
            self.begin_close(slot);
            return;
        }
        // The next request: what is left of the received bytes moves to the
        // front (a pipelined request may already be whole).
        let offset = self.region_offset(slot);
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
        let region = self.conn_region.slice(offset, self.conn_bytes);
        region.copy_within(consumed..filled, 0);
        if high_water > RELEASE_AFTER_BYTES {
            self.conn_region.release(offset + left, high_water - left);
            self.conns[slot].high_water = left;
        }
        self.process(slot);
    }

    fn post_send(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        conn.send_posted = true;
        let pending = &conn.response.bytes[conn.sent..conn.response.len];
        let entry = opcode::Send::new(types::Fd(conn.fd), pending.as_ptr(), pending.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::ConnSend(slot as u32).encode());
        self.push_entry(entry);
    }

    /// Answers the current request of `slot`.
    fn respond(&mut self, slot: usize, status: u16, message: &str, close: bool) {
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
    fn send_continue(&mut self, slot: usize, head: Head) {
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

    /// Parses what `slot` received; answers a whole request or reads on.
    fn process(&mut self, slot: usize) {
        if self.conns[slot].send_posted {
            // The interim response is still going out; its completion
            // comes back here.
            return;
        }
        let offset = self.region_offset(slot);
        let max_body = self.settings.max_body_bytes;
        let conn_bytes = self.conn_bytes;
        let conn = &mut self.conns[slot];
        if conn.filled == 0 {
            conn.request_started = None;
            self.post_recv(slot);
            return;
        }
        let filled = conn.filled;
        let head = match conn.head {
            Some(head) => head,
            None => {
                let bytes = &self.conn_region.slice(offset, filled)[..];
                match http::parse_head(bytes) {
                    HeadResult::Partial => {
                        self.post_recv(slot);
                        return;
                    }
                    HeadResult::Invalid(status) => {
                        self.conns[slot].style = BodyStyle::Text;
                        let message = if status == 431 {
                            "request head too large"
                        } else {
                            "malformed HTTP request"
                        };
                        self.respond(slot, status, message, true);
                        return;
                    }
                    HeadResult::Complete(head) => {
                        let conn = &mut self.conns[slot];
                        conn.head = Some(head);
                        conn.style = BodyStyle::of(head.content_type);
                        head
                    }
                }
            }
        };
        if head.malformed {
            self.respond(
                slot,
                400,
                "conflicting or invalid message framing headers",
                true,
            );
            return;
        }
        let body = match head.length {
            BodyLength::Fixed(length) if length > max_body => {
                // Not read: the connection closes after the answer.
                self.respond(slot, 413, "request body larger than --max-body", true);
                return;
            }
            BodyLength::Fixed(length) => {
                if filled < head.len + length {
                    self.send_continue(slot, head);
                    self.post_recv(slot);
                    return;
                }
                self.conns[slot].consumed = head.len + length;
                head.len..head.len + length
            }
            BodyLength::Chunked => {
                let conn = &mut self.conns[slot];
                let mut state = conn.chunked;
                let recv_posted = conn.recv_posted;
                let wire = &mut self.conn_region.slice(offset, filled)[head.len..];
                let result = http::decode_chunked(wire, &mut state, max_body);
                // Consumed framing gives its room back, so only the decoded
                // body counts against --max-body (not while a receive is
                // writing after `filled`: the next pass compacts).
                let kept = match result {
                    ChunkedResult::Partial if !recv_posted => {
                        http::compact_chunked(wire, &mut state)
                    }
                    _ => filled - head.len,
                };
                let conn = &mut self.conns[slot];
                conn.chunked = state;
                conn.filled = head.len + kept;
                match result {
                    ChunkedResult::Partial if conn.filled >= conn_bytes => {
                        // Unreachable: the region has room for a head, the
                        // body and the longest framing a decode leaves.
                        debug_assert!(false, "a compacted chunked body fills its region");
                        self.respond(slot, 413, "request body larger than --max-body", true);
                        return;
                    }
                    ChunkedResult::Partial => {
                        self.send_continue(slot, head);
                        self.post_recv(slot);
                        return;
                    }
                    ChunkedResult::Invalid => {
                        self.respond(slot, 400, "malformed chunked body", true);
                        return;
                    }
                    ChunkedResult::TooLarge => {
                        self.respond(slot, 413, "request body larger than --max-body", true);
                        return;
                    }
                    ChunkedResult::Complete => {
                        conn.consumed = head.len + state.read;
                        head.len..head.len + state.written
                    }
                }
            }
            BodyLength::Missing => {
                self.respond(
                    slot,
                    411,
                    "POST needs Content-Length or chunked encoding",
                    true,
                );
                return;
            }
        };
        self.on_request(slot, head, body);
    }

    /// A whole request arrived: decide its answer, or start its emission.
    fn on_request(&mut self, slot: usize, head: Head, body: std::ops::Range<usize>) {
        self.conns[slot].request_started = None;
        if !head.logs_path {
            self.respond(
                slot,
                404,
                "not found: OTLP logs are posted to /v1/logs",
                false,
            );
            return;
        }
        if !head.is_post {
            self.respond(slot, 405, "method not allowed: use POST", false);
            return;
        }
        if head.content_type == ContentType::Other {
            self.respond(
                slot,
                415,
                "unsupported content type: use application/x-protobuf or application/json",
                false,
            );
            return;
        }
        if head.unknown_encoding {
            self.respond(
                slot,
                415,
                "unsupported content encoding: use gzip or none",
                false,
            );
            return;
        }
        if self.stopping {
            self.respond(slot, 503, "shutting down", true);
            return;
        }
        // The 429 decision (DESIGN §2): the request is refused when its
        // first batch could not enter ring(4) right now.
        if self.emission.is_some() || !self.to_cpu.has_room() || self.pool.available() == 0 {
            self.respond(slot, 429, "pipeline full, retry later", false);
            return;
        }
        let wire_bytes = body.len();
        let decoded = match self.decode(slot, head, body) {
            Ok(decoded) => decoded,
            Err((status, message)) => {
                self.bad_bodies += 1;
                if self.bad_bodies.is_power_of_two() {
                    eprintln!(
                        "ringway: warning: OTLP request refused with {status} ({} times so far): {message}",
                        self.bad_bodies
                    );
                }
                self.respond(slot, status, message, false);
                return;
            }
        };
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Busy;
        conn.emitting = true;
        conn.last_active = Instant::now();
        let mut held = std::mem::take(&mut self.spare_held);
        held.clear();
        self.emission = Some(Emission {
            slot: slot as u32,
            serial: conn.serial,
            logs: decoded.logs,
            values_too_deep: decoded.values_too_deep,
            resource: 0,
            scope: 0,
            record: 0,
            batch: None,
            held,
            committed: false,
            wire_bytes,
            truncated: 0,
            // One reference is the emission's own, let go when it ends, so
            // the count reaches zero only once every batch is out and back.
            delivery: (self.settings.ack == OtlpAck::Delivered).then(|| {
                Arc::new(RequestDelivery {
                    token: (slot as u64) << 32 | u64::from(conn.serial),
                    pending: AtomicU32::new(1),
                })
            }),
        });
        self.drive_emission();
    }

    /// Decodes a body (inflating it first when gzipped): see [`decode`]
    /// for its limits.
    fn decode(
        &mut self,
        slot: usize,
        head: Head,
        body: std::ops::Range<usize>,
    ) -> Result<Decoded, (u16, &'static str)> {
        let offset = self.region_offset(slot);
        let max_body = self.settings.max_body_bytes;
        let wire = self.conn_region.slice(offset + body.start, body.len());
        let mut inflated_bytes = 0;
        // Mutable: decoding protobuf renames values nested too deep.
        let bytes: &mut [u8] = if head.gzip {
            let out = self.inflate_region.slice(0, max_body + 1);
            let mut decoder = flate2::read::MultiGzDecoder::new(&*wire);
            let mut total = 0;
            loop {
                match std::io::Read::read(&mut decoder, &mut out[total..]) {
                    Ok(0) => break,
                    Ok(count) => {
                        total += count;
                        if total > max_body {
                            return Err((413, "inflated body larger than --max-body"));
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return Err((400, "body is not valid gzip")),
                }
            }
            inflated_bytes = total;
            &mut out[..total]
        } else {
            wire
        };
        let decoded = match head.content_type {
            ContentType::Protobuf => decode::protobuf(bytes),
            ContentType::Json => decode::json(bytes),
            ContentType::Other => {
                debug_assert!(false, "other content types are answered 415 first");
                Err(DecodeError::Invalid)
            }
        };
        if inflated_bytes > RELEASE_AFTER_BYTES {
            // Only now: released pages read back as zeros.
            self.inflate_region.release(0, inflated_bytes);
        }
        decoded.map_err(|error| match (error, head.content_type) {
            (DecodeError::TooManyMessages, _) => (
                413,
                "request holds too many OTLP messages (records, attributes, values)",
            ),
            (DecodeError::Invalid, ContentType::Json) => (
                400,
                "body is not a valid OTLP/JSON ExportLogsServiceRequest",
            ),
            (DecodeError::Invalid, _) => (
                400,
                "body is not a valid OTLP ExportLogsServiceRequest protobuf",
            ),
        })
    }

    /// Writes the emission's records into batches and pushes them, as far
    /// as buffers and ring(4) allow; answers the request when it is done.
    ///
    /// A request is all or nothing while it can be: its batches are
    /// written first and pushed together only if ring(4) has room for all
    /// of them; otherwise they go back to the pool and the request gets
    /// 429. Only a request with more batches than ring(4) holds is taken
    /// piecemeal, and only into an empty ring(4): it is then committed,
    /// and its remaining batches follow as room frees.
    fn drive_emission(&mut self) {
        let Some(mut emission) = self.emission.take() else {
            return;
        };
        let outcome = loop {
            if emission.committed {
                self.push_held(&mut emission);
                if !emission.held.is_empty() {
                    break Outcome::Waiting;
                }
            } else if emission.held.len() >= self.io_ring_capacity {
                // More batches than ring(4) holds: committed only into an
                // empty ring.
                if self.to_cpu.free_slots() < self.io_ring_capacity {
                    break Outcome::Rejected;
                }
                emission.committed = true;
                self.commit(&emission);
                continue;
            }
            let Some(resource_logs) = emission.logs.get(emission.resource) else {
                // Every record is written: the last batch goes too.
                if let Some(batch) = emission.batch.take().filter(|batch| batch.len > 0) {
                    emission.held.push_back(batch);
                    continue;
                }
                if emission.committed {
                    break Outcome::Finished;
                }
                if emission.held.len() > self.to_cpu.free_slots() {
                    break Outcome::Rejected;
                }
                emission.committed = true;
                self.commit(&emission);
                continue;
            };
            let Some(scope_logs) = resource_logs.scope_logs.get(emission.scope) else {
                emission.resource += 1;
                emission.scope = 0;
                emission.record = 0;
                continue;
            };
            let Some(record) = scope_logs.log_records.get(emission.record) else {
                emission.scope += 1;
                emission.record = 0;
                continue;
            };
            let mut batch = match emission.batch.take() {
                Some(batch) => batch,
                None => match self.pool.take() {
                    Some(buf) => Batch::new(buf, 0),
                    // Every buffer is taken: a committed request waits
                    // for them; one not committed is refused unless ring(4)
                    // is empty (its buffers are downstream, coming back).
                    None if emission.committed => break Outcome::Waiting,
                    None if self.to_cpu.free_slots() < self.io_ring_capacity => {
                        break Outcome::Rejected;
                    }
                    None => {
                        emission.committed = true;
                        self.commit(&emission);
                        continue;
                    }
                },
            };
            let context = encode::Context {
                resource: resource_logs.resource.as_ref(),
                scope: scope_logs.scope.as_ref(),
            };
            // One record is one line of at most --max-line bytes plus its
            // newline (and never more than a batch holds).
            let end = batch.buf.len().min(batch.len + self.max_line_bytes + 1);
            let mut out = encode::Writer::new(&mut batch.buf[batch.len..end]);
            encode::write_record(&mut out, record, context);
            if out.overflow {
                if batch.len > 0 {
                    // Full: the record goes into the next batch.
                    emission.held.push_back(batch);
                    continue;
                }
                // Larger than a line may be: written cut down, counted.
                let mut out = encode::Writer::new(&mut batch.buf[..end]);
                encode::write_cut_record(&mut out, record, context, encode::CUT_FIELD_BYTES);
                if out.overflow {
                    // A short --max-line: without the short fields at all.
                    out = encode::Writer::new(&mut batch.buf[..end]);
                    encode::write_cut_record(&mut out, record, context, 0);
                }
                emission.truncated += 1;
                if out.overflow {
                    // Not even the cut record fits a line (a --max-line
                    // under about 300 bytes): the record is dropped,
                    // counted as truncated.
                    emission.record += 1;
                    emission.batch = Some(batch);
                    continue;
                }
                batch.len = out.len;
            } else {
                batch.len += out.len;
            }
            batch.records += 1;
            emission.record += 1;
            emission.batch = Some(batch);
        };
        match outcome {
            Outcome::Waiting => {
                self.emission = Some(emission);
                return;
            }
            Outcome::Rejected => {
                self.reject(emission);
                return;
            }
            Outcome::Finished => {}
        }
        if emission.truncated > 0 {
            self.counters
                .truncated
                .fetch_add(emission.truncated, Ordering::Relaxed);
        }
        if emission.values_too_deep > 0 {
            self.otlp
                .values_too_deep
                .fetch_add(emission.values_too_deep, Ordering::Relaxed);
        }
        let slot = emission.slot as usize;
        self.spare_held = emission.held;
        let conn = &mut self.conns[slot];
        if conn.serial != emission.serial || conn.phase != Phase::Busy {
            return; // the client went away meanwhile
        }
        conn.emitting = false;
        match &emission.delivery {
            None => self.respond(slot, 200, "", false),
            // The emission lets go of its reference; if every batch is
            // already delivered, no token will come: answer now.
            Some(delivery) => {
                if delivery.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.respond(slot, 200, "", false);
                }
            }
        }
    }

    /// The request is taken: its bytes and cut records count from here.
    fn commit(&mut self, emission: &Emission) {
        self.counters
            .bytes
            .fetch_add(emission.wire_bytes as u64, Ordering::Relaxed);
    }

    /// Refuses a request whose batches did not fit: they go back to the
    /// pool unsent, and the client gets 429.
    fn reject(&mut self, mut emission: Emission) {
        emission.held.clear();
        emission.batch = None;
        self.spare_held = std::mem::take(&mut emission.held);
        let slot = emission.slot as usize;
        if self.conns[slot].serial == emission.serial && self.conns[slot].phase == Phase::Busy {
            self.conns[slot].emitting = false;
            self.respond(slot, 429, "pipeline full, retry later", false);
        }
    }

    /// Pushes held batches into ring(4) while it has room; with
    /// `delivered`, each carries the request's token first.
    fn push_held(&mut self, emission: &mut Emission) {
        while self.to_cpu.has_room() {
            let Some(mut batch) = emission.held.pop_front() else {
                return;
            };
            let records = u64::from(batch.records);
            if let Some(delivery) = &emission.delivery {
                delivery.pending.fetch_add(1, Ordering::AcqRel);
                batch.ack = Some(Ack::Reply {
                    replies: Arc::clone(&self.replies),
                    request: Arc::clone(delivery),
                    remaining: AtomicU32::new(self.outputs),
                });
            }
            if let Err(batch) = self.to_cpu.push(batch) {
                debug_assert!(false, "has_room() said there is room");
                emission.held.push_front(batch);
                return;
            }
            self.otlp
                .records_accepted
                .fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Counts batches come back from the outputs; answers requests whose
    /// batches are all delivered.
    fn take_replies(&mut self) {
        while let Some(token) = self.replies.queue.pop() {
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

    fn check_timeouts(&mut self, now: Instant) {
        let read_timeout = self.settings.read_timeout;
        let idle_timeout = self.settings.idle_timeout;
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            if conn.closing || conn.phase == Phase::Free {
                continue;
            }
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
    fn begin_close(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.closing || conn.phase == Phase::Free {
            return;
        }
        conn.closing = true;
        self.open -= 1;
        // SAFETY: `fd` is this connection's open socket.
        unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        if conn.recv_posted {
            let entry = opcode::AsyncCancel::new(Token::ConnRecv(slot as u32).encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(entry);
        }
        self.finish_close_if_done(slot);
    }

    fn finish_close_if_done(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if !conn.closing || conn.recv_posted || conn.send_posted {
            return;
        }
        // SAFETY: no operation on `fd` is posted any more; it is ours.
        unsafe { libc::close(conn.fd) };
        if conn.high_water > RELEASE_AFTER_BYTES {
            let offset = slot * self.conn_bytes;
            self.conn_region.release(offset, conn.high_water);
        }
        let serial = conn.serial.wrapping_add(1);
        *conn = Conn::free();
        conn.serial = serial;
        match self.pending_accepts.pop_front() {
            Some(fd) => self.start_conn(slot, fd),
            None => self.free_slots.push(slot as u32),
        }
    }
}

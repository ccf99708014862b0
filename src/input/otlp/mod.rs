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
//! [`Ack::Reply`](crate::ack::Ack::Reply); the last output to accept it sends the request's token
//! back through [`Replies`] (a bounded queue plus this worker's eventfd),
//! and the 200 goes out when every batch of the request came back.
//!
//! One request per connection is in progress at a time: pipelined
//! requests wait, unread, in the connection's region and are answered in
//! order. Limits: `--otlp-max-connections` (the longest-idle connection
//! makes room for a new one), a 16 KiB head (431), `--max-body` (413),
//! `--otlp-read-timeout` for a request to arrive whole (408),
//! `--otlp-idle-timeout` for keep-alive connections.
//!
//! With `,tls` (HTTPS) each connection also has a TLS session ([`tls`]):
//! its receives bring ciphertext, which rustls decrypts into the region
//! where a plaintext receive would have written, and its responses go out
//! encrypted. With `auth_token_file=` ([`auth`]) a request without
//! `Authorization: Bearer` and one of the file's tokens gets 401 with
//! `WWW-Authenticate: Bearer`, before anything else is decided.

mod connection;
pub(crate) mod decode;
mod emission;
pub(crate) mod encode;
pub(crate) mod http;
mod request;
mod tls;

use crate::ack::{Replies, RequestDelivery};
use crate::auth::BearerTokens;
use crate::batch::Batch;
use crate::config::OtlpSettings;
use crate::credentials::Latest;
use crate::input::LaneParts;
use crate::input::net::{Acceptor, ConnSlots, Region, StreamIo, StreamWorker};
use crate::input::tls::{TlsInput, TlsParts};
use crate::metrics::{InputCounters, OtlpCounters};
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use http::{BodyStyle, Head};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// A TLS input's session (`None` on a plaintext input): receives bring
    /// ciphertext, and `filled` grows by what it decrypts; `sent` counts
    /// the response bytes handed to it.
    tls: Option<Box<crate::input::tls::TlsSession>>,
    /// The peer's address, asked once when it is accepted (`source=true`).
    peer: Option<std::net::SocketAddr>,
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
            tls: None,
            peer: None,
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
    /// With `source=true`: the client's address, for each record's resource.
    client: Option<std::net::SocketAddr>,
}

/// The flags and shared pieces a receiver is built from.
pub(crate) struct ReceiverParts {
    pub lane: LaneParts,
    /// The input's name (its SPEC), for warnings.
    pub name: String,
    /// `Some` for `,tls` (HTTPS).
    pub tls: Option<TlsParts>,
    /// `Some` with `auth_token_file=`: requests need one of its tokens
    /// (as the last reload published them).
    pub auth: Option<Latest<BearerTokens>>,
    pub listener: OwnedFd,
    pub settings: OtlpSettings,
    /// Capacity of ring(4), in batches.
    pub io_to_cpu_capacity: usize,
    pub otlp: Arc<OtlpCounters>,
    pub replies: Arc<Replies>,
    /// Outputs that must accept a batch before its request is delivered.
    pub outputs: u32,
}

pub(crate) struct OtlpReceiver {
    /// The ring, the listener's accept and the wake read.
    io: StreamIo,
    name: String,
    /// `Some` on a TLS input.
    tls: Option<TlsInput>,
    /// `Some`: a request without one of these bearer tokens gets 401.
    auth: Option<Latest<BearerTokens>>,
    /// Requests refused for their token, for warnings at 1, 2, 4, ….
    auth_refusals: u64,
    settings: OtlpSettings,
    max_line_bytes: usize,
    /// `source=true`: each record's resource gets its client's address.
    source: bool,
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    waker: Arc<Waker>,
    counters: Arc<InputCounters>,
    otlp: Arc<OtlpCounters>,
    replies: Arc<Replies>,
    outputs: u32,
    shutdown: Arc<AtomicBool>,
    readers_done: Arc<AtomicUsize>,
    conns: Box<[Conn]>,
    /// Slots, open count (connections waiting for a slot too) and the
    /// receive ranges of `conns`: `conns.len() * conn_bytes` bytes.
    slots: ConnSlots,
    /// Accepted connections waiting for a slot, oldest first.
    pending_accepts: std::collections::VecDeque<RawFd>,
    /// Where gzip bodies are inflated: `--max-body + 1` bytes.
    inflate_region: Region,
    emission: Option<Emission>,
    /// The held-batch queue of the last emission, kept for the next one
    /// (allocated once, with room for ring(4) + 1 batches).
    spare_held: std::collections::VecDeque<Batch>,
    io_to_cpu_capacity: usize,
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
        let conn_slots = ConnSlots::new(slots, conn_bytes).map_err(|error| {
            format!(
                "cannot reserve {region_bytes} bytes for {slots} connections of --max-body {}: {error}",
                parts.settings.max_body_bytes
            )
        })?;
        let inflate_region = Region::map(parts.settings.max_body_bytes + 1)
            .map_err(|error| format!("cannot reserve the gzip buffer: {error}"))?;
        let tls = parts
            .tls
            .map(|tls| TlsInput::new(tls, &parts.name, slots))
            .transpose()?;
        let lane = parts.lane;
        let wake = lane.wake_read();
        Ok(Self {
            io: StreamIo::new(lane.ring, Acceptor::new(parts.listener, "OTLP"), wake),
            name: parts.name,
            tls,
            auth: parts.auth,
            auth_refusals: 0,
            settings: parts.settings,
            max_line_bytes: lane.max_line_bytes,
            source: lane.source,
            pool: lane.pool,
            to_cpu: lane.to_cpu,
            waker: lane.waker,
            counters: lane.counters,
            otlp: parts.otlp,
            replies: parts.replies,
            outputs: parts.outputs.max(1),
            shutdown: lane.shutdown,
            readers_done: lane.readers_done,
            conns: (0..slots).map(|_| Conn::free()).collect(),
            slots: conn_slots,
            pending_accepts: std::collections::VecDeque::with_capacity(PENDING_ACCEPTS),
            inflate_region,
            emission: None,
            spare_held: std::collections::VecDeque::with_capacity(parts.io_to_cpu_capacity + 2),
            io_to_cpu_capacity: parts.io_to_cpu_capacity,
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
            self.io.arm_accept(now);
            if self.shutdown.load(Ordering::Relaxed) && !self.stopping {
                self.start_stopping();
            }
            if self.stopping && self.drained() {
                break;
            }
            self.io.arm_wake();
            self.waker.announce_sleep();
            let can_progress = !self.replies.is_empty()
                || self.emission.as_ref().is_some_and(|emission| {
                    (!emission.held.is_empty() && self.to_cpu.has_room())
                        || (emission.held.is_empty() && self.pool.available() > 0)
                });
            if can_progress {
                crate::uring::submit(&self.io.ring, None);
            } else {
                let timeout = self
                    .next_tick
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                crate::uring::submit(&self.io.ring, Some(timeout));
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
        self.io.stop_accepting();
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
        if self.close_and_wait(CLOSE_WAIT, "OTLP receiver operations") {
            return;
        }
        self.slots.leak();
        if let Some(tls) = &mut self.tls {
            tls.leak();
        }
        // Posted sends point into the connections' response buffers.
        std::mem::forget(std::mem::take(&mut self.conns));
    }

    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self`:
        // the wake read's, or a connection's range of `slots`, of the TLS
        // buffers or its response, none moved nor reused until the
        // completion.
        unsafe { self.io.push(entry) };
    }
}

//! The UDP input's I/O worker: one socket, received with an io_uring
//! multishot `RecvMsg` into a provided buffer ring whose memory we own.
//!
//! [`UdpReader`] owns the socket's ring, a [`ProvidedBuffers`] ring (one
//! buffer per datagram) and the input's batch [`BufferPool`]. Each datagram
//! is copied out of its provided buffer into the current batch as one line
//! (a trailing `\n` kept single, interior `\n` escaped as `#012` the way
//! rsyslog does on receive, so one datagram is always one record), and its
//! provided buffer goes straight back to the kernel. With `source=true` the
//! receive also brings each datagram's sender (`msg_name`, in the same
//! provided buffer: no extra syscall), noted in the batch's sender runs
//! (`crate::source`).
//!
//! Backpressure: when no batch buffer is free or ring(4) is full, a
//! datagram cannot be copied, so its provided buffer is *not* recycled (the
//! datagram waits in `unsent`, in order). Once every provided buffer is
//! held, the multishot ends with `ENOBUFS` and is re-armed only after
//! buffers are recycled: meanwhile the kernel socket buffer absorbs the
//! burst, then the kernel drops — counted by the socket (`SO_MEMINFO`,
//! cross-checked with `SO_RXQ_OVFL`). A received datagram is never dropped.

use crate::batch::Batch;
use crate::escape::{escaped_line_len, write_escaped_line};
use crate::input::batcher::Batcher;
use crate::input::net::{bound_address, count_failure};
use crate::metrics::InputCounters;
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use crate::sockopt::{
    SO_RCVBUFFORCE, SO_RXQ_OVFL, SocketStats, rxq_overflow_count, set_int_option,
};
use crate::source::parse_sockaddr;
use crate::uring::{Token, WakeRead};
use io_uring::{IoUring, cqueue, opcode, types};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Provided buffers per socket (a power of two, as the kernel requires).
/// With 9000-byte datagrams: about 4.5 MiB per socket.
pub(crate) const PROVIDED_BUFFERS: u16 = 512;
const _: () = assert!(PROVIDED_BUFFERS.is_power_of_two());
/// The buffer group id of our provided buffer ring (one per io_uring).
const BUFFER_GROUP: u16 = 0;
/// A wait that saw its first datagram gathers more for this long (µs)
/// before the I/O thread wakes: at 50k datagrams/s 28 per wake-up
/// (measured with the I/O thread's context switches) instead of one, for at most 250 µs more latency (the batch linger is
/// 10 ms). Far below what PROVIDED_BUFFERS absorbs at any rate loopback
/// reaches (about 1M datagrams/s: 250 per window).
const UDP_COALESCE_USEC: u32 = 250;
/// A pass that reaped at least this many completions means datagrams are
/// arriving faster than a window gathers comfortably: the next wait does
/// not coalesce (it runs the receive work at once), so coalescing never
/// limits throughput: the kernel runs a multishot receive for only a few
/// dozen datagrams per deferred work item, and a sleeping window would cap
/// the rate at that.
const UDP_COALESCE_BUSY: usize = 16;
/// Room for one `SO_RXQ_OVFL` control message (CMSG_SPACE(4) on 64-bit).
const CONTROL_BYTES: usize = 24;
/// Room for the sender's address with `source=true`: a `sockaddr_in6`
/// (a `sockaddr_in` is shorter).
const SENDER_NAME_BYTES: u32 = size_of::<libc::sockaddr_in6>() as u32;
/// Size of `struct io_uring_recvmsg_out`, which heads every provided
/// buffer a multishot RecvMsg fills.
const RECVMSG_OUT_BYTES: usize = 16;
/// Pause before re-arming a receive that failed with an error.
const RECEIVE_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// Longest a stopping UDP input keeps draining its socket.
const UDP_STOP_DRAIN: Duration = Duration::from_secs(1);

/// Opens, tunes and binds one UDP socket. Returns the socket, a second
/// descriptor of it for stats, and the address it is bound to (the port
/// the kernel picked when `address` has port 0).
pub(crate) fn open_socket(
    address: SocketAddr,
    rcvbuf_bytes: usize,
    reuse_port: bool,
) -> Result<(OwnedFd, SocketStats, SocketAddr), String> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, None)
        .map_err(|error| format!("cannot create a UDP socket: {error}"))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|error| format!("SO_REUSEPORT failed: {error}"))?;
    }
    let fd = socket.as_raw_fd();
    let requested = libc::c_int::try_from(rcvbuf_bytes).unwrap_or(libc::c_int::MAX);
    // SO_RCVBUFFORCE (CAP_NET_ADMIN) ignores net.core.rmem_max; without the
    // capability fall back to SO_RCVBUF, which the kernel clamps to it.
    if set_int_option(fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, requested).is_err() {
        let _ = set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, requested);
    }
    // The kernel reports double what it grants (it counts its bookkeeping).
    let effective = socket.recv_buffer_size().unwrap_or(0) / 2;
    if effective < rcvbuf_bytes {
        eprintln!(
            "ringway: warning: UDP {address}: receive buffer is {effective} bytes, not the {rcvbuf_bytes} asked; raise the limit with `sysctl -w net.core.rmem_max={rcvbuf_bytes}` (or run with CAP_NET_ADMIN; see tuning/udp-host.sh)"
        );
    }
    set_int_option(fd, libc::SOL_SOCKET, SO_RXQ_OVFL, 1)
        .map_err(|error| format!("SO_RXQ_OVFL failed: {error}"))?;
    socket
        .bind(&address.into())
        .map_err(|error| format!("cannot bind UDP {address}: {error}"))?;
    // With port 0 the kernel picked the port: the address actually bound.
    let bound = bound_address(&socket, address);
    let stats = socket
        .try_clone()
        .map_err(|error| format!("cannot duplicate the UDP socket: {error}"))?;
    Ok((socket.into(), SocketStats::new(stats.into()), bound))
}

/// A provided buffer ring: `PROVIDED_BUFFERS` entries pointing into one
/// arena of equally sized buffers, both mapped for the life of the reader.
struct ProvidedBuffers {
    /// The ring of `io_uring_buf` entries shared with the kernel.
    ring: NonNull<types::BufRingEntry>,
    /// `PROVIDED_BUFFERS * buffer_bytes` bytes the kernel writes datagrams into.
    arena: NonNull<u8>,
    buffer_bytes: usize,
    /// Our tail: entries up to it are given to the kernel once published.
    tail: u16,
    /// The mappings of `ring` and `arena`, unmapped when dropped (the
    /// reader unregisters the ring before).
    _maps: [memmap2::MmapRaw; 2],
}

// SAFETY: the mappings are owned by this value alone and move with it to
// the I/O worker's thread; the kernel is the only other party.
unsafe impl Send for ProvidedBuffers {}

/// The msghdr a multishot RecvMsg reads its layout from. Its pointers are
/// all null (only the name and control lengths are used).
struct ReceiveLayout(libc::msghdr);

// SAFETY: every pointer in the msghdr is null; it is plain sizes.
unsafe impl Send for ReceiveLayout {}

impl ProvidedBuffers {
    fn new(buffer_bytes: usize) -> std::io::Result<Self> {
        let ring_bytes = usize::from(PROVIDED_BUFFERS) * std::mem::size_of::<types::BufRingEntry>();
        let arena_bytes = usize::from(PROVIDED_BUFFERS) * buffer_bytes;
        // Every provided buffer is written by the kernel soon after start:
        // fault both in now rather than on the receive path.
        let populated = |bytes| -> std::io::Result<memmap2::MmapRaw> {
            Ok(memmap2::MmapOptions::new()
                .len(bytes)
                .populate()
                .map_anon()?
                .into())
        };
        let ring = populated(ring_bytes)?;
        let arena = populated(arena_bytes)?;
        let start = |map: &memmap2::MmapRaw| {
            NonNull::new(map.as_mut_ptr()).expect("a mapping is never at null")
        };
        let mut buffers = Self {
            ring: start(&ring).cast(),
            arena: start(&arena),
            buffer_bytes,
            tail: 0,
            _maps: [ring, arena],
        };
        for id in 0..PROVIDED_BUFFERS {
            buffers.recycle(id);
        }
        Ok(buffers)
    }

    /// Queues buffer `id` for the kernel; visible after [`Self::publish`].
    fn recycle(&mut self, id: u16) {
        let mask = PROVIDED_BUFFERS - 1;
        // SAFETY: the index is masked into the ring; the arena offset of
        // `id < PROVIDED_BUFFERS` is inside the arena.
        unsafe {
            let entry = &mut *self.ring.as_ptr().add(usize::from(self.tail & mask));
            entry.set_addr(self.arena.as_ptr().add(usize::from(id) * self.buffer_bytes) as u64);
            entry.set_len(self.buffer_bytes as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes every recycled buffer to the kernel at once.
    fn publish(&self) {
        // SAFETY: `tail` points at the ring's shared tail field, which the
        // kernel reads; a release store orders the entries written before it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// The bytes of buffer `id`, as the kernel filled them.
    fn buffer(&self, id: u16) -> &[u8] {
        assert!(id < PROVIDED_BUFFERS, "the kernel returns our own ids");
        // SAFETY: inside the arena; the kernel finished writing this buffer
        // (its completion arrived) and will not reuse it before we recycle it.
        unsafe {
            std::slice::from_raw_parts(
                self.arena.as_ptr().add(usize::from(id) * self.buffer_bytes),
                self.buffer_bytes,
            )
        }
    }
}

pub(crate) struct UdpReader {
    ring: IoUring,
    socket: OwnedFd,
    provided: ProvidedBuffers,
    /// The header layout of every provided buffer: only `msg_namelen` and
    /// `msg_controllen` matter. Boxed: the kernel reads it while armed.
    msghdr: Box<ReceiveLayout>,
    /// Fills batches with datagrams and hands them to ring(4).
    batcher: Batcher,
    waker: Arc<Waker>,
    counters: Arc<InputCounters>,
    /// Highest `SO_RXQ_OVFL` count seen (the kernel's drop counter as of
    /// the last datagram), for the cross-check with `SO_MEMINFO`.
    rxq_overflow: Arc<AtomicU64>,
    shutdown: Arc<AtomicBool>,
    readers_done: Arc<AtomicUsize>,
    /// The read kept posted on the waker's eventfd.
    wake: WakeRead,
    /// The multishot receive is posted.
    receiving: bool,
    /// Set once a cancel of the receive was submitted at shutdown.
    cancelling: bool,
    /// When the stop drain must end, set at the first stopping turn.
    drain_deadline: Option<Instant>,
    /// Received datagrams not yet copied (no batch buffer or ring(4) full),
    /// in arrival order, with their byte counts. At most PROVIDED_BUFFERS.
    unsent: VecDeque<(u16, u32)>,
    recycled_since_publish: bool,
    /// Counts gathered per datagram, published once per pass.
    pass: PassCounts,
    /// Consecutive failed receives (other than ENOBUFS), for warnings.
    receive_failures: u64,
    /// Longest a partly filled batch waits when traffic stops
    /// (--batch-linger): it is handed on once full or once it has waited
    /// this long, so a trickle flows while a flood travels in few, large
    /// batches (few wake-ups downstream).
    linger: Duration,
    /// How long a wait that saw its first datagram keeps gathering more
    /// before it returns ([`crate::uring::submit_coalesced`]); 0 where the
    /// kernel cannot.
    coalesce_usec: u32,
    /// The ring was built disabled (DEFER_TASKRUN, single issuer): this
    /// thread enables it before anything else.
    enable_on_start: bool,
    /// Completions the last reaping pass took (see UDP_COALESCE_BUSY).
    last_reaped: usize,
    /// `source=true`: receives bring the sender's address, noted per record.
    source: bool,
}

impl UdpReader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        (ring, enable_on_start): (IoUring, bool),
        socket: OwnedFd,
        max_datagram_bytes: usize,
        pool: Arc<BufferPool>,
        to_cpu: RingSender<Batch>,
        waker: Arc<Waker>,
        counters: Arc<InputCounters>,
        rxq_overflow: Arc<AtomicU64>,
        shutdown: Arc<AtomicBool>,
        readers_done: Arc<AtomicUsize>,
        linger: Duration,
        source: bool,
    ) -> Result<Self, String> {
        // SAFETY: msghdr is plain data; zero is a valid "nothing" for it.
        let mut msghdr: libc::msghdr = unsafe { std::mem::zeroed() };
        // The sender's address only for source fields: copying it out
        // costs per datagram.
        msghdr.msg_namelen = if source { SENDER_NAME_BYTES } else { 0 };
        msghdr.msg_controllen = CONTROL_BYTES;
        let header_bytes = RECVMSG_OUT_BYTES + msghdr.msg_namelen as usize + CONTROL_BYTES;
        let provided = ProvidedBuffers::new(header_bytes + max_datagram_bytes)
            .map_err(|error| format!("cannot map the UDP receive buffers: {error}"))?;
        // SAFETY: the ring memory lives in `provided`, which outlives the
        // registration (unregistered in `finish` before it is dropped).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                provided.ring.as_ptr() as u64,
                PROVIDED_BUFFERS,
                BUFFER_GROUP,
                0,
            )
        }
        .map_err(|error| {
            format!("cannot register an io_uring buffer ring ({error}); ringway needs Linux 5.19 or later for UDP inputs")
        })?;
        provided.publish();
        // Coalescing saves wake-ups only where the receive work is deferred
        // to the waits; on other rings it would only add latency.
        let coalesce_usec = if enable_on_start && crate::uring::supports_min_wait(&ring) {
            UDP_COALESCE_USEC
        } else {
            0
        };
        let wake_fd = waker
            .eventfd()
            .expect("an I/O worker's waker is an eventfd");
        Ok(Self {
            ring,
            socket,
            provided,
            msghdr: Box::new(ReceiveLayout(msghdr)),
            batcher: Batcher::new(pool, to_cpu),
            waker,
            counters,
            rxq_overflow,
            shutdown,
            readers_done,
            wake: WakeRead::new(wake_fd),
            receiving: false,
            cancelling: false,
            drain_deadline: None,
            unsent: VecDeque::with_capacity(usize::from(PROVIDED_BUFFERS)),
            recycled_since_publish: false,
            coalesce_usec,
            enable_on_start,
            last_reaped: 0,
            receive_failures: 0,
            pass: PassCounts::default(),
            linger,
            source,
        })
    }

    pub fn run(mut self) {
        if self.enable_on_start
            && let Err(error) = crate::uring::enable_ring(&self.ring)
        {
            // Nothing was received yet: stop the process with one clear
            // line rather than run on without this input.
            eprintln!(
                "ringway: error: cannot enable the UDP input's io_uring (IORING_REGISTER_ENABLE_RINGS); error = {error}"
            );
            std::process::exit(1);
        }
        loop {
            self.reap_completions();
            self.copy_unsent();
            let lingered = self
                .batcher
                .current_since()
                .is_some_and(|since| since.elapsed() >= self.linger);
            if lingered || self.shutdown.load(Ordering::Relaxed) {
                self.batcher.flush_current();
            } else {
                self.batcher.push_full();
            }
            if self.recycled_since_publish {
                self.provided.publish();
                self.recycled_since_publish = false;
            }
            let stopping = self.shutdown.load(Ordering::Relaxed);
            if stopping {
                // Drain what the socket holds at the stop (so received +
                // kernel_drops accounts for every datagram sent before it),
                // but not for longer than UDP_STOP_DRAIN while a sender
                // keeps sending.
                let deadline = *self
                    .drain_deadline
                    .get_or_insert_with(|| Instant::now() + UDP_STOP_DRAIN);
                let draining = Instant::now() < deadline && self.socket_has_datagram();
                if self.receiving && !draining && !self.cancelling {
                    let entry = opcode::AsyncCancel::new(Token::Recv.encode())
                        .build()
                        .user_data(Token::Cancel.encode());
                    self.push_entry(entry);
                    self.cancelling = true;
                }
                if !self.receiving && draining && self.unsent.is_empty() {
                    self.arm_receive();
                }
                if !self.receiving && !draining && self.unsent.is_empty() && self.batcher.is_empty()
                {
                    if self.socket_has_datagram() {
                        eprintln!(
                            "ringway: warning: UDP input stopped with datagrams still queued in its socket (a sender is still sending); they are not received"
                        );
                    }
                    break;
                }
            } else if !self.receiving && self.unsent.is_empty() {
                // Re-armed only once every held datagram went on: until then
                // the socket buffer holds the burst.
                self.arm_receive();
            }
            if let Some(entry) = self.wake.arm() {
                self.push_entry(entry);
            }
            self.waker.announce_sleep();
            let can_progress = (!self.unsent.is_empty() || self.batcher.has_full())
                && self.batcher.ring_has_room()
                && (self.batcher.buffers_free() > 0
                    || self.batcher.has_current()
                    || self.batcher.has_full());
            if !can_progress {
                // Holding a partly filled batch: wake within the linger to
                // hand it on even if nothing else arrives.
                let timeout = match self.batcher.current_since() {
                    Some(since) => self
                        .linger
                        .saturating_sub(since.elapsed())
                        .max(Duration::from_millis(1)),
                    None => Duration::from_secs(1),
                };
                self.wait(timeout);
            } else {
                crate::uring::submit(&self.ring, None);
            }
            self.waker.sleep_done();
        }
        self.cancel_wake_read();
        if let Err(error) = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP) {
            eprintln!(
                "ringway: warning: unregistering the UDP buffer ring failed; error = {error}"
            );
        }
        self.readers_done.fetch_add(1, Ordering::AcqRel);
    }

    /// The kernel may write the wake-up read's buffer until that read
    /// completes: cancel it and wait, so nothing is written after it is freed.
    fn cancel_wake_read(&mut self) {
        if let Some(entry) = self.wake.cancel() {
            self.push_entry(entry);
        }
        // Bounded: cancelling a pending read completes at once.
        for _ in 0..1000 {
            if !self.wake.is_armed() {
                return;
            }
            self.wait(Duration::from_millis(10));
            self.reap_completions();
        }
        eprintln!("ringway: warning: the wake-up read did not cancel; leaking its buffer");
        self.wake.leak();
    }

    fn wait(&mut self, timeout: Duration) {
        let coalesce = if self.last_reaped >= UDP_COALESCE_BUSY {
            0
        } else {
            self.coalesce_usec
        };
        crate::uring::submit_coalesced(&self.ring, Some(timeout), coalesce);
    }

    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every pointer an entry carries (msghdr, the wake read's buffer, the
        // registered buffer ring) is owned by `self` and outlives it.
        unsafe { crate::uring::push_entry(&mut self.ring, &entry) };
    }

    /// True when a datagram waits in the socket (a zero-length peek).
    fn socket_has_datagram(&self) -> bool {
        // SAFETY: a zero-length MSG_PEEK receive reads nothing into memory.
        let result = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        result >= 0
    }

    fn arm_receive(&mut self) {
        let entry = opcode::RecvMsgMulti::new(
            types::Fd(self.socket.as_raw_fd()),
            &self.msghdr.0 as *const libc::msghdr,
            BUFFER_GROUP,
        )
        .build()
        .user_data(Token::Recv.encode());
        self.push_entry(entry);
        self.receiving = true;
        self.cancelling = false;
    }

    fn reap_completions(&mut self) {
        let mut completions = [(0, 0, 0); crate::uring::COMPLETION_BATCH];
        self.last_reaped = 0;
        loop {
            let count = crate::uring::take_completions(&mut self.ring, &mut completions);
            if count == 0 {
                return;
            }
            self.last_reaped += count;
            for &(user_data, result, flags) in &completions[..count] {
                match Token::decode(user_data) {
                    Some(Token::Recv) => self.on_receive(result, flags),
                    Some(Token::Wake) => self.wake.completed(),
                    _ => {}
                }
            }
            // Copy and hand the buffers back per chunk of completions, so
            // the kernel never runs dry while we are busy.
            self.copy_unsent();
            if self.recycled_since_publish {
                self.provided.publish();
                self.recycled_since_publish = false;
            }
        }
    }

    fn on_receive(&mut self, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.receiving = false;
        }
        if result < 0 {
            // ENOBUFS: every provided buffer is held (backpressure); the
            // datagrams wait in the socket. Re-armed once buffers return.
            if !matches!(-result, libc::ENOBUFS | libc::ECANCELED | libc::EINTR) {
                // Re-armed on the next turn; pause so a lasting error does
                // not become a busy loop, and warn at 1, 2, 4, … failures.
                if let Some(failures) = count_failure(&mut self.receive_failures) {
                    eprintln!(
                        "ringway: warning: UDP receive failed ({failures} times), re-arming; error = {}",
                        std::io::Error::from_raw_os_error(-result)
                    );
                }
                std::thread::sleep(RECEIVE_RETRY_PAUSE);
            }
            return;
        }
        self.receive_failures = 0;
        let Some(id) = cqueue::buffer_select(flags) else {
            return;
        };
        self.unsent.push_back((id, result as u32));
    }

    /// Copies held datagrams into batches, in order, while there is room.
    fn copy_unsent(&mut self) {
        while let Some(&(id, length)) = self.unsent.front() {
            if !self.copy_datagram(id, length as usize) {
                break;
            }
            self.unsent.pop_front();
            self.provided.recycle(id);
            self.recycled_since_publish = true;
        }
        // Shared counters are updated once per pass, not per datagram.
        if self.pass.bytes > 0 {
            self.counters
                .bytes
                .fetch_add(std::mem::take(&mut self.pass.bytes), Ordering::Relaxed);
        }
        if self.pass.rxq_overflow > 0 {
            self.rxq_overflow
                .fetch_max(self.pass.rxq_overflow, Ordering::Relaxed);
        }
    }

    /// Appends one datagram to the current batch; false when there is no
    /// room anywhere downstream (backpressure).
    fn copy_datagram(&mut self, id: u16, length: usize) -> bool {
        let Some(datagram) = self.datagram(id, length) else {
            return true; // not the datagram layout we asked for: skip it
        };
        let needed = datagram.escaped_bytes + 1;
        let Some(batch) = self.batcher.batch_for(needed, datagram.sender) else {
            return false;
        };
        if datagram.truncated {
            self.counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(dropped) = datagram.rxq_overflow {
            self.pass.rxq_overflow = self.pass.rxq_overflow.max(u64::from(dropped));
        }
        self.pass.bytes += datagram.received_bytes as u64;
        // Split borrows: the datagram lives in `provided`, the copy goes to
        // the batcher's batch.
        let mut payload = &self.provided.buffer(id)[datagram.payload];
        let written = if batch.room() < needed {
            // Longer than a whole batch buffer holds once escaped (only with
            // a tiny --read-buf): keep what fits, counted as truncated.
            self.counters.truncated.fetch_add(1, Ordering::Relaxed);
            payload = &payload[..(batch.room() - 1) / 4];
            write_escaped_line(payload, &mut batch.buf[batch.len..])
        } else if datagram.escaped_bytes == payload.len() {
            // No interior newline (the common case): a plain copy.
            batch.buf[batch.len..batch.len + payload.len()].copy_from_slice(payload);
            payload.len()
        } else {
            write_escaped_line(payload, &mut batch.buf[batch.len..])
        };
        batch.buf[batch.len + written] = b'\n';
        batch.len += written + 1;
        true
    }

    /// Reads the header of the datagram in buffer `id` once: where its
    /// payload lies and what it costs as a line. `None` when the buffer does
    /// not hold our header layout.
    fn datagram(&self, id: u16, length: usize) -> Option<Datagram> {
        let buffer = &self.provided.buffer(id)[..length.min(self.provided.buffer_bytes)];
        let received = types::RecvMsgOut::parse(buffer, &self.msghdr.0).ok()?;
        let received_bytes = received.payload_data().len();
        let payload = trim_newline(received.payload_data());
        let start = payload.as_ptr() as usize - buffer.as_ptr() as usize;
        let sender = if self.source {
            // A datagram without a usable address (not IP) still counts:
            // its record is written without the fields.
            parse_sockaddr(received.name_data())
        } else {
            None
        };
        Some(Datagram {
            sender,
            payload: start..start + payload.len(),
            received_bytes,
            escaped_bytes: escaped_line_len(payload),
            truncated: received.is_payload_truncated(),
            rxq_overflow: rxq_overflow_count(received.control_data()),
        })
    }
}

/// One received datagram, as read from its provided buffer's header.
struct Datagram {
    /// The payload without a trailing newline, as offsets into the buffer.
    payload: std::ops::Range<usize>,
    /// Payload bytes as received (trailing newline included).
    received_bytes: usize,
    /// Bytes the payload takes as a line, interior newlines escaped.
    escaped_bytes: usize,
    truncated: bool,
    rxq_overflow: Option<u32>,
    /// With `source=true`: who sent it.
    sender: Option<SocketAddr>,
}

#[derive(Default)]
struct PassCounts {
    /// Payload bytes copied since the last publication.
    bytes: u64,
    /// Highest SO_RXQ_OVFL count seen (monotonic, so kept, not reset).
    rxq_overflow: u64,
}

/// A trailing newline is the record's end, not part of it.
fn trim_newline(payload: &[u8]) -> &[u8] {
    payload.strip_suffix(b"\n").unwrap_or(payload)
}

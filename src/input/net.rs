//! What the network inputs share. The connection-oriented ones (`otlp`,
//! `tcp`): the listening socket and its multishot accept ([`Acceptor`]),
//! the ring with that accept and the wake read on it ([`StreamIo`]) and
//! the half of the loop that serves them ([`StreamWorker`]: reap, cancel
//! and wait at exit), the connection table ([`ConnSlots`]:
//! slots, open count, closing) and [`Region`], the start-up mapping their
//! connections receive into, and the receive and send each of their
//! connections posts ([`recv_entry`], [`send_entry`]). Every kind (`udp`
//! too): [`announce`] and [`count_failure`].

use crate::uring::{Token, WakeRead};
use io_uring::{IoUring, cqueue, opcode, types};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Pause before re-arming an accept that failed (out of descriptors, say,
/// must not become a busy loop).
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A listening socket and the state of its multishot accept.
pub(crate) struct Acceptor {
    listener: OwnedFd,
    /// The multishot accept is posted (or its cancel not yet complete).
    pub armed: bool,
    /// When an ended accept may be posted again.
    retry_at: Option<Instant>,
    /// Failed accepts, warned about at 1, 2, 4, … failures.
    failures: u64,
    /// The input kind, for messages ("OTLP", "TCP").
    kind: &'static str,
}

impl Acceptor {
    pub fn new(listener: OwnedFd, kind: &'static str) -> Self {
        Self {
            listener,
            armed: false,
            retry_at: Some(Instant::now()),
            failures: 0,
            kind,
        }
    }

    /// The accept to post when it is due (it counts as armed from here).
    pub fn arm(&mut self, now: Instant) -> Option<io_uring::squeue::Entry> {
        if self.armed || self.retry_at.is_none_or(|at| now < at) {
            return None;
        }
        self.armed = true;
        self.retry_at = None;
        Some(
            opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(Token::Accept.encode()),
        )
    }

    /// Stops accepting for good: the cancel to post, if armed.
    pub fn stop(&mut self) -> Option<io_uring::squeue::Entry> {
        self.retry_at = None;
        self.armed.then(|| {
            opcode::AsyncCancel::new(Token::Accept.encode())
                .build()
                .user_data(Token::Cancel.encode())
        })
    }

    /// An accept completion: the new connection's descriptor, if any. After
    /// [`Acceptor::stop`], new connections are closed at once.
    pub fn completed(&mut self, result: i32, flags: u32, stopped: bool) -> Option<RawFd> {
        if !cqueue::more(flags) {
            self.armed = false;
            if !stopped {
                // Re-armed at once after a normal end, after a pause after
                // an error.
                let pause = if result < 0 {
                    ACCEPT_RETRY_PAUSE
                } else {
                    Duration::ZERO
                };
                self.retry_at = Some(Instant::now() + pause);
            }
        }
        if result < 0 {
            if !matches!(-result, libc::ECANCELED | libc::EINTR | libc::ECONNABORTED)
                && let Some(failures) = count_failure(&mut self.failures)
            {
                eprintln!(
                    "ringway: warning: {} accept failed ({failures} times so far), retrying; error = {}",
                    self.kind,
                    std::io::Error::from_raw_os_error(-result)
                );
            }
            return None;
        }
        if stopped {
            // SAFETY: `result` was just accepted and is owned by nobody else.
            unsafe { libc::close(result) };
            return None;
        }
        Some(result)
    }
}

/// Counts one more failure of a repeated operation (an accept, a
/// receive); `Some(count)` when it is time to warn: at 1, 2, 4, …
/// failures, so a lasting error is said without flooding stderr.
pub(crate) fn count_failure(failures: &mut u64) -> Option<u64> {
    *failures += 1;
    failures.is_power_of_two().then_some(*failures)
}

/// The ring of a stream input (TCP, OTLP) with the two operations every
/// such worker keeps posted on it: the listener's multishot accept and the
/// read on its wake-up eventfd. Connection operations are the input's own
/// (pushed with [`StreamIo::push`]); arming is here, reaping and the
/// cancel and bounded wait at exit in [`StreamWorker`].
pub(crate) struct StreamIo {
    pub ring: IoUring,
    pub acceptor: Acceptor,
    pub wake: WakeRead,
    /// Connection receives and sends pushed whose completion has not
    /// been reaped: counted up in [`StreamIo::push`], down in
    /// [`StreamWorker::reap_completions`] (each completes once, cancelled
    /// or not), so at exit nothing the kernel may write into is freed
    /// while it is above 0.
    conn_ops: usize,
}

impl StreamIo {
    /// The ring of a stream input with its listener's `acceptor` and its
    /// wake read.
    pub fn new(ring: IoUring, acceptor: Acceptor, wake: WakeRead) -> Self {
        Self {
            ring,
            acceptor,
            wake,
            conn_ops: 0,
        }
    }

    /// Queues `entry` (see [`crate::uring::push_entry`]).
    ///
    /// # Safety
    /// Every buffer `entry` points at stays valid, and is not reused,
    /// until its completion arrives (or its cancel completed).
    pub unsafe fn push(&mut self, entry: io_uring::squeue::Entry) {
        if matches!(
            Token::decode(entry.get_user_data()),
            Some(Token::ConnRecv(_) | Token::ConnSend(_))
        ) {
            self.conn_ops += 1;
        }
        // SAFETY: the caller's contract above.
        unsafe { crate::uring::push_entry(&mut self.ring, &entry) };
    }

    fn push_own(&mut self, entry: Option<io_uring::squeue::Entry>) {
        if let Some(entry) = entry {
            // SAFETY: an accept and a cancel point at no buffer; the wake
            // read's buffer is owned by `self.wake`, which keeps it until
            // the read completes (or leaks it, see `WakeRead::leak`).
            unsafe { self.push(entry) };
        }
    }

    /// Posts the accept when it is due (again after it ended).
    pub fn arm_accept(&mut self, now: Instant) {
        let entry = self.acceptor.arm(now);
        self.push_own(entry);
    }

    /// Posts the wake read unless it is posted.
    pub fn arm_wake(&mut self) {
        let entry = self.wake.arm();
        self.push_own(entry);
    }

    /// Stops accepting for good (cancels the posted accept).
    pub fn stop_accepting(&mut self) {
        let entry = self.acceptor.stop();
        self.push_own(entry);
    }
}

/// A stream input's worker (TCP, OTLP) as the shared half of its io_uring
/// loop sees it: where its [`StreamIo`] is and what it does with each
/// connection completion. Reaping and the close at exit are that shared
/// half.
pub(crate) trait StreamWorker: Sized {
    fn io(&mut self) -> &mut StreamIo;
    /// A completion of the multishot accept.
    fn on_accept(&mut self, result: i32, flags: u32);
    /// A receive on the connection in `slot` completed.
    fn on_recv(&mut self, slot: usize, result: i32);
    /// A send on the connection in `slot` completed (only an input that
    /// answers posts sends).
    fn on_send(&mut self, _slot: usize, _result: i32) {}

    /// Reaps every completion (see [`crate::uring::reap`]): the wake
    /// read's here, the others to the handlers above.
    fn reap_completions(&mut self) {
        crate::uring::reap(
            self,
            |worker| &mut worker.io().ring,
            |worker, (user_data, result, flags)| match Token::decode(user_data) {
                Some(Token::Wake) => worker.io().wake.completed(),
                Some(Token::Accept) => worker.on_accept(result, flags),
                Some(Token::ConnRecv(slot)) => {
                    worker.io().conn_ops -= 1;
                    worker.on_recv(slot as usize, result);
                }
                Some(Token::ConnSend(slot)) => {
                    worker.io().conn_ops -= 1;
                    worker.on_send(slot as usize, result);
                }
                _ => {}
            },
        );
    }

    /// At exit, once the worker began closing its connections: cancels
    /// the accept and the wake read and waits, at most `limit`, submitting
    /// and reaping every 10 ms, until they and every connection operation
    /// completed, so that nothing the kernel may still write into is freed.
    /// When that does not happen, warns `ringway: warning: {what} did not
    /// complete at exit; leaking their buffers`, keeps the wake read's
    /// buffer for good and returns `false`: the caller then leaks its own
    /// buffers.
    fn close_and_wait(&mut self, limit: Duration, what: &str) -> bool {
        let io = self.io();
        io.stop_accepting();
        let entry = io.wake.cancel();
        io.push_own(entry);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let io = self.io();
            if !io.acceptor.armed && !io.wake.is_armed() && io.conn_ops == 0 {
                return true;
            }
            crate::uring::submit(&self.io().ring, Some(Duration::from_millis(10)));
            self.reap_completions();
        }
        eprintln!("ringway: warning: {what} did not complete at exit; leaking their buffers");
        self.io().wake.leak();
        false
    }
}

/// Pending connections the kernel queues before our accept takes them.
const LISTEN_BACKLOG: i32 = 1024;

/// One anonymous mapping, reserved but not backed until written
/// (`MAP_NORESERVE`); the kernel writes received bytes into it.
pub(crate) struct Region {
    /// `None` once leaked.
    map: Option<memmap2::MmapRaw>,
}

impl Region {
    pub fn map(bytes: usize) -> std::io::Result<Self> {
        let map = memmap2::MmapOptions::new()
            .len(bytes)
            .no_reserve_swap()
            .map_anon()?;
        Ok(Self {
            map: Some(map.into()),
        })
    }

    fn raw(&self) -> &memmap2::MmapRaw {
        self.map
            .as_ref()
            .expect("a leaked region is no longer used")
    }

    /// `len` bytes at `offset`.
    pub fn slice(&mut self, offset: usize, len: usize) -> &mut [u8] {
        let map = self.raw();
        assert!(offset + len <= map.len());
        // SAFETY: inside the mapping; `&mut self` makes this the only
        // reference, and the kernel writes only into ranges of posted
        // receives, which the caller does not touch until they complete.
        unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().add(offset), len) }
    }

    /// Gives the pages of `offset..offset + len` back (they read as zero).
    pub fn release(&self, offset: usize, len: usize) {
        let start = offset.next_multiple_of(4096);
        let end = (offset + len) / 4096 * 4096;
        if end > start {
            // SAFETY: a page-aligned range inside the mapping that no
            // operation is writing and no reference points into (the
            // connection is between requests); its pages read as zero after.
            let _ = unsafe {
                self.raw().unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
    }

    /// Keeps the mapping for good (an operation that never completed may
    /// still write into it): it is not unmapped when dropped.
    pub fn leak(&mut self) {
        std::mem::forget(self.map.take());
    }
}

/// The connection table of a stream input (TCP, OTLP): which slots are
/// free, how many connections are open, each slot's range of one
/// start-up [`Region`] (`conn_bytes` bytes at `slot * conn_bytes`) that its
/// receives write into, and the socket side of closing a connection
/// ([`ConnSlots::begin_close`], [`ConnSlots::finish_close`]). The
/// per-connection protocol state stays with each input, in a table
/// indexed by the same slots.
pub(crate) struct ConnSlots {
    /// Free slots (a stack); its capacity is the table size.
    free: Vec<u32>,
    /// Connections open and not closing (an input may count connections
    /// waiting for a slot too).
    pub open: usize,
    region: Region,
    conn_bytes: usize,
}

impl ConnSlots {
    /// `slots` slots of `conn_bytes` each; `Err` names the size that did
    /// not fit.
    pub fn new(slots: usize, conn_bytes: usize) -> std::io::Result<Self> {
        let region_bytes = slots
            .checked_mul(conn_bytes)
            .ok_or_else(|| std::io::Error::other("the connection table size overflows"))?;
        Ok(Self {
            free: (0..slots as u32).rev().collect(),
            open: 0,
            region: Region::map(region_bytes)?,
            conn_bytes,
        })
    }

    /// Bytes of each slot's range.
    pub fn conn_bytes(&self) -> usize {
        self.conn_bytes
    }

    /// Where the range of `slot` starts in the region.
    pub fn offset(&self, slot: usize) -> usize {
        slot * self.conn_bytes
    }

    /// A free slot, if any.
    pub fn take(&mut self) -> Option<usize> {
        self.free.pop().map(|slot| slot as usize)
    }

    /// Closes `fd`, accepted into `slot` (and counted open) but never
    /// used, and gives the slot back.
    pub fn abandon(&mut self, slot: usize, fd: RawFd) {
        self.open -= 1;
        // SAFETY: accepted and never used; owned by nobody else.
        unsafe { libc::close(fd) };
        self.give_back(slot);
    }

    /// Gives a slot whose connection is closed back.
    pub fn give_back(&mut self, slot: usize) {
        self.free.push(slot as u32);
    }

    /// `len` bytes at `offset` in the region (see [`Region::slice`]).
    pub fn slice(&mut self, offset: usize, len: usize) -> &mut [u8] {
        self.region.slice(offset, len)
    }

    /// Gives the pages of `offset..offset + len` back (see [`Region::release`]).
    pub fn release(&self, offset: usize, len: usize) {
        self.region.release(offset, len);
    }

    /// Keeps the region for good at exit (see [`Region::leak`]).
    pub fn leak(&mut self) {
        self.region.leak();
    }

    /// Starts closing the connection in `slot` on socket `fd`: one open
    /// connection fewer, the socket shut down both ways, and the cancel of
    /// its posted receive (to push) when `recv_posted`.
    pub fn begin_close(
        &mut self,
        slot: usize,
        fd: RawFd,
        recv_posted: bool,
    ) -> Option<io_uring::squeue::Entry> {
        self.open -= 1;
        // SAFETY: `fd` is this connection's open socket.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        recv_posted.then(|| {
            io_uring::opcode::AsyncCancel::new(Token::ConnRecv(slot as u32).encode())
                .build()
                .user_data(Token::Cancel.encode())
        })
    }

    /// Ends closing once no operation on `fd` is posted: closes it and,
    /// when the connection wrote past `release_after` bytes of its range
    /// (`high_water`), gives those pages back. The caller resets its
    /// connection state and gives the slot back (or to a waiting
    /// connection).
    pub fn finish_close(
        &mut self,
        slot: usize,
        fd: RawFd,
        high_water: usize,
        release_after: usize,
    ) {
        // SAFETY: no operation on `fd` is posted any more; it is ours.
        unsafe { libc::close(fd) };
        if high_water > release_after {
            self.region.release(self.offset(slot), high_water);
        }
    }
}

/// Opens the listening socket of the `tcp:` or `otlp:` input `name` and
/// says on stderr where it listens (port 0 picks a free one).
pub(crate) fn listen(name: &str, address: SocketAddr) -> Result<OwnedFd, String> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)
        .map_err(|error| format!("cannot create a TCP socket: {error}"))?;
    socket
        .set_reuse_address(true)
        .map_err(|error| format!("SO_REUSEADDR failed: {error}"))?;
    socket
        .bind(&address.into())
        .map_err(|error| format!("cannot bind {address}: {error}"))?;
    socket
        .listen(LISTEN_BACKLOG)
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    announce(name, bound_address(&socket, address));
    Ok(socket.into())
}

/// The address `socket` is bound to (with port 0 the kernel picked the
/// port); `asked` when the kernel does not say.
pub(crate) fn bound_address(socket: &socket2::Socket, asked: SocketAddr) -> SocketAddr {
    socket
        .local_addr()
        .ok()
        .and_then(|bound| bound.as_socket())
        .unwrap_or(asked)
}

/// Says on stderr where network input `name` receives, once it is bound:
/// with port 0 this is the only way to learn the port. One wording for
/// every kind (UDP, TCP, OTLP), which scripts and tests read.
pub(crate) fn announce(name: &str, bound: SocketAddr) {
    eprintln!("ringway: input '{name}' listening on {bound}");
}

/// Disables Nagle's algorithm on an accepted connection: responses and
/// acknowledgements are small single writes that must not wait.
pub(crate) fn set_nodelay(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from `one`.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The receive into `buffer` on the connection in `slot` (socket `fd`).
/// The caller keeps `buffer` untouched until the completion (see
/// [`StreamIo::push`]).
pub(crate) fn recv_entry(fd: RawFd, buffer: &mut [u8], slot: usize) -> io_uring::squeue::Entry {
    let len = buffer.len().min(u32::MAX as usize) as u32;
    opcode::Recv::new(types::Fd(fd), buffer.as_mut_ptr(), len)
        .build()
        .user_data(Token::ConnRecv(slot as u32).encode())
}

/// The send of `bytes` on the connection in `slot` (socket `fd`), without
/// SIGPIPE when the peer is gone. The caller keeps `bytes` until the
/// completion (see [`StreamIo::push`]).
pub(crate) fn send_entry(fd: RawFd, bytes: &[u8], slot: usize) -> io_uring::squeue::Entry {
    let len = bytes.len().min(u32::MAX as usize) as u32;
    opcode::Send::new(types::Fd(fd), bytes.as_ptr(), len)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(Token::ConnSend(slot as u32).encode())
}

//! What the connection-oriented inputs (`otlp`, `tcp`) share: the
//! listening socket and its multishot accept ([`Acceptor`]), and
//! [`Region`], the start-up mapping their connections receive into.

use crate::uring::Token;
use io_uring::{cqueue, opcode, types};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
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
            if !matches!(-result, libc::ECANCELED | libc::EINTR | libc::ECONNABORTED) {
                self.failures += 1;
                if self.failures.is_power_of_two() {
                    eprintln!(
                        "ringway: warning: {} accept failed ({} times so far), retrying; error = {}",
                        self.kind,
                        self.failures,
                        std::io::Error::from_raw_os_error(-result)
                    );
                }
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

/// Pending connections the kernel queues before our accept takes them.
const LISTEN_BACKLOG: i32 = 1024;

/// One anonymous mapping, reserved but not backed until written.
pub(crate) struct Region {
    base: NonNull<u8>,
    bytes: usize,
}

// SAFETY: the mapping is owned by this value alone and moves with it to the
// I/O worker's thread; the kernel writes into it only for operations that
// worker posted and waits for.
unsafe impl Send for Region {}

impl Region {
    pub fn map(bytes: usize) -> std::io::Result<Self> {
        // SAFETY: an anonymous private mapping; the result is checked.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            base: NonNull::new(address.cast()).expect("mmap returns non-null on success"),
            bytes,
        })
    }

    /// `len` bytes at `offset`.
    pub fn slice(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.bytes);
        // SAFETY: inside the mapping; `&mut self` makes this the only
        // reference, and the kernel writes only into ranges of posted
        // receives, which the caller does not touch until they complete.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len) }
    }

    /// Gives the pages of `offset..offset + len` back (they read as zero).
    pub fn release(&self, offset: usize, len: usize) {
        let start = offset.next_multiple_of(4096);
        let end = (offset + len) / 4096 * 4096;
        if end > start {
            // SAFETY: a page-aligned range inside the mapping that no
            // operation is writing (the connection is between requests).
            unsafe {
                libc::madvise(
                    self.base.as_ptr().add(start).cast(),
                    end - start,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

impl Region {
    /// Keeps the mapping for good (an operation that never completed may
    /// still write into it): it is not unmapped when dropped.
    pub fn leak(&mut self) {
        self.bytes = 0;
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return; // leaked
        }
        // SAFETY: mapped in `map` with this length.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
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
    let bound = socket
        .local_addr()
        .ok()
        .and_then(|address| address.as_socket())
        .unwrap_or(address);
    announce(name, bound);
    Ok(socket.into())
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

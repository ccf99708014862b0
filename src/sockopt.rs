//! Socket options the inputs set and read: [`set_int_option`] (for the
//! options `socket2` does not name), the `SO_RXQ_OVFL` counter a datagram's
//! control data carries ([`rxq_overflow_count`]), and [`SocketStats`], which
//! reads a socket's kernel drop counter (`SO_MEMINFO`), and the address of
//! an accepted connection's peer ([`peer_address`], for source fields).
//!
//! Its own module so `metrics` (which reports the drops) and the UDP input
//! (which opens the sockets) both import it rather than each other.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// From asm-generic/socket.h (x86_64, aarch64 and most others).
pub(crate) const SO_RCVBUFFORCE: libc::c_int = 33;
pub(crate) const SO_RXQ_OVFL: libc::c_int = 40;
const SO_MEMINFO: libc::c_int = 55;
/// From linux/sock_diag.h: SO_MEMINFO fills `u32[SK_MEMINFO_VARS]`; index
/// `SK_MEMINFO_DROPS` is the socket's drop counter.
const SK_MEMINFO_VARS: usize = 9;
const SK_MEMINFO_DROPS: usize = 8;

/// The address of the peer of connected socket `fd` (one `getpeername`,
/// once per connection); `None` when it is not an IP socket or is gone.
pub(crate) fn peer_address(fd: RawFd) -> Option<std::net::SocketAddr> {
    // SAFETY: plain data; zero is a valid value.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `name` and `len` are valid for writes of `len` bytes; the
    // kernel writes at most that.
    let result =
        unsafe { libc::getpeername(fd, (&raw mut name).cast::<libc::sockaddr>(), &mut len) };
    if result != 0 {
        return None;
    }
    // SAFETY: the kernel initialised the first `len` bytes (at most the
    // storage's size).
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&raw const name).cast::<u8>(),
            (len as usize).min(size_of::<libc::sockaddr_storage>()),
        )
    };
    crate::source::parse_sockaddr(bytes)
}

/// What the supervisor needs to read a socket's drop counter after the
/// worker is gone: its own descriptor of the same socket.
pub(crate) struct SocketStats {
    socket: OwnedFd,
}

impl SocketStats {
    /// Keeps `socket` (a duplicate of the worker's descriptor) for reading.
    pub fn new(socket: OwnedFd) -> Self {
        Self { socket }
    }

    /// The kernel's count of datagrams this socket dropped (receive buffer
    /// full), from `SO_MEMINFO`.
    pub fn kernel_drops(&self) -> Option<u64> {
        let mut meminfo = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&meminfo) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `meminfo`.
        let result = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                meminfo.as_mut_ptr().cast(),
                &mut len,
            )
        };
        (result == 0 && len as usize > SK_MEMINFO_DROPS * 4)
            .then(|| u64::from(meminfo[SK_MEMINFO_DROPS]))
    }
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: setsockopt reads exactly size_of::<c_int>() bytes from `value`.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `SO_RXQ_OVFL` counter carried in a datagram's control data.
pub(crate) fn rxq_overflow_count(control: &[u8]) -> Option<u32> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let mut at = 0;
    while at + header <= control.len() {
        // SAFETY: `header` bytes are available at `at`; read_unaligned copes
        // with any alignment.
        let cmsg: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(control[at..].as_ptr().cast()) };
        let length = cmsg.cmsg_len;
        if length < header || at + length > control.len() {
            return None;
        }
        if cmsg.cmsg_level == libc::SOL_SOCKET
            && cmsg.cmsg_type == SO_RXQ_OVFL
            && length >= header + 4
        {
            let data = &control[at + header..at + header + 4];
            return Some(u32::from_ne_bytes(data.try_into().ok()?));
        }
        at += length.next_multiple_of(std::mem::size_of::<usize>());
    }
    None
}

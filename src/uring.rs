//! io_uring set-up shared by the I/O workers: building a ring, the start-up
//! feature probe, typed `user_data` tokens, and the eventfd and inotify
//! descriptors the workers keep reads posted on.

use io_uring::{IoUring, opcode};
use std::io;
use std::os::fd::OwnedFd;

/// What a completion belongs to: the kind in the high 32 bits of
/// `user_data`, an index into the worker's table of reads in the low bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// A file read; the index of its slot in the in-flight table.
    Read(u32),
    /// The read kept posted on the worker's wake-up eventfd.
    Wake,
    /// The read kept posted on the inotify descriptor.
    Inotify,
    /// A cancellation of the posted reads at exit.
    Cancel,
    /// The multishot receive of a UDP input's socket.
    Recv,
    /// The multishot accept of an OTLP or TCP input's listening socket.
    Accept,
    /// A receive on the connection in this slot (OTLP and TCP inputs).
    ConnRecv(u32),
    /// A send on the connection in this slot.
    ConnSend(u32),
}

impl Token {
    pub fn encode(self) -> u64 {
        match self {
            Token::Read(slot) => (1 << 32) | u64::from(slot),
            Token::Wake => 2 << 32,
            Token::Inotify => 3 << 32,
            Token::Cancel => 4 << 32,
            Token::Recv => 5 << 32,
            Token::Accept => 6 << 32,
            Token::ConnRecv(slot) => (7 << 32) | u64::from(slot),
            Token::ConnSend(slot) => (8 << 32) | u64::from(slot),
        }
    }

    pub fn decode(user_data: u64) -> Option<Token> {
        match user_data >> 32 {
            1 => Some(Token::Read(user_data as u32)),
            2 => Some(Token::Wake),
            3 => Some(Token::Inotify),
            4 => Some(Token::Cancel),
            5 => Some(Token::Recv),
            6 => Some(Token::Accept),
            7 => Some(Token::ConnRecv(user_data as u32)),
            8 => Some(Token::ConnSend(user_data as u32)),
            _ => None,
        }
    }
}

/// The read an I/O worker keeps posted on its wake-up eventfd (owned by its
/// `Waker`), with the buffer the kernel writes the count into.
pub(crate) struct WakeRead {
    fd: std::os::fd::RawFd,
    /// Written by the kernel while `armed`; never freed while it may be.
    buf: Box<u64>,
    armed: bool,
}

impl WakeRead {
    pub fn new(fd: std::os::fd::RawFd) -> Self {
        Self {
            fd,
            buf: Box::new(0),
            armed: false,
        }
    }

    /// The read to post when none is armed; it counts as armed from here.
    pub fn arm(&mut self) -> Option<io_uring::squeue::Entry> {
        if self.armed {
            return None;
        }
        self.armed = true;
        Some(
            opcode::Read::new(
                io_uring::types::Fd(self.fd),
                (&mut *self.buf as *mut u64).cast(),
                8,
            )
            .build()
            .user_data(Token::Wake.encode()),
        )
    }

    /// Its completion arrived (a wake-up, or the cancel at exit).
    pub fn completed(&mut self) {
        self.armed = false;
    }

    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// The cancel to post at exit, when the read is armed.
    pub fn cancel(&self) -> Option<io_uring::squeue::Entry> {
        self.armed.then(|| {
            opcode::AsyncCancel::new(Token::Wake.encode())
                .build()
                .user_data(Token::Cancel.encode())
        })
    }

    /// When the cancel never completed: keep the buffer alive for good
    /// rather than free memory the kernel may still write.
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.buf, Box::new(0)));
    }
}

/// Completions taken from the queue per pass, before they are handled.
pub(crate) const COMPLETION_BATCH: usize = 64;

/// One completion, copied out of the queue: `(user_data, result, flags)`.
pub(crate) type Completion = (u64, i32, u32);

/// Copies up to [`COMPLETION_BATCH`] completions out of the queue (so the
/// handlers may borrow the worker, ring included); returns how many.
pub(crate) fn take_completions(
    ring: &mut IoUring,
    out: &mut [Completion; COMPLETION_BATCH],
) -> usize {
    let mut count = 0;
    for cqe in ring.completion().take(COMPLETION_BATCH) {
        out[count] = (cqe.user_data(), cqe.result(), cqe.flags());
        count += 1;
    }
    count
}

/// Reaps every completion in the queue: copies them out
/// [`COMPLETION_BATCH`] at a time and hands each to `handle` with the
/// worker, so a handler may push new entries or post more operations on
/// `ring(worker)`. Returns once the queue is empty. The reap loop of every
/// io_uring worker that handles completions one by one.
pub(crate) fn reap<W>(
    worker: &mut W,
    ring: impl Fn(&mut W) -> &mut IoUring,
    mut handle: impl FnMut(&mut W, Completion),
) {
    let mut completions = [(0, 0, 0); COMPLETION_BATCH];
    loop {
        let count = take_completions(ring(worker), &mut completions);
        if count == 0 {
            return;
        }
        for &completion in &completions[..count] {
            handle(worker, completion);
        }
    }
}

/// Queues `entry`, submitting what is queued first while the submission
/// queue is full (a full queue is not an error).
///
/// # Safety
/// Every buffer and pointer `entry` carries must stay valid, and not be
/// reused, until its completion arrives (or its cancel completed).
pub(crate) unsafe fn push_entry(ring: &mut IoUring, entry: &io_uring::squeue::Entry) {
    loop {
        // SAFETY: the caller's contract above.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return;
        }
        submit(ring, None);
    }
}

/// Submits queued entries; with `wait`, sleeps in `io_uring_enter` until a
/// completion arrives or `wait` elapses. Expired waits, signals and a busy
/// completion queue are normal returns; any other error is reported and
/// paced so that it cannot become a busy loop.
pub(crate) fn submit(ring: &IoUring, wait: Option<std::time::Duration>) {
    submit_coalesced(ring, wait, 0);
}

/// As [`submit`], but a wait that sees its first completion keeps sleeping
/// until `min_wait_usec` has passed since it began (or
/// [`COMPLETION_BATCH`], what one reaping pass takes, arrived), so a trickle of completions (a
/// datagram every few microseconds) costs one wake-up per window instead of
/// one each. A wait that began longer ago than that returns at the first
/// completion. Needs IORING_FEAT_MIN_TIMEOUT (Linux 6.12); callers pass 0
/// where the ring lacks it (see [`supports_min_wait`]).
pub(crate) fn submit_coalesced(
    ring: &IoUring,
    wait: Option<std::time::Duration>,
    min_wait_usec: u32,
) {
    let result = match wait {
        Some(timeout) => {
            let timespec = io_uring::types::Timespec::from(timeout);
            let args = io_uring::types::SubmitArgs::new().timespec(&timespec);
            if min_wait_usec > 0 {
                let args = args.min_wait_usec(min_wait_usec);
                ring.submitter().submit_with_args(COMPLETION_BATCH, &args)
            } else {
                ring.submitter().submit_with_args(1, &args)
            }
        }
        None => ring.submit(),
    };
    match result {
        Ok(_) => {}
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) => {}
        Err(error) => {
            eprintln!("ringway: error: io_uring_enter failed; error = {error}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// True when `ring` can coalesce waits ([`submit_coalesced`]).
pub(crate) fn supports_min_wait(ring: &IoUring) -> bool {
    ring.params().is_feature_min_timeout()
}

/// Builds a ring for one thread that receives a stream of small
/// completions (a UDP socket's datagrams): with IORING_SETUP_DEFER_TASKRUN
/// the receive work the kernel queues per datagram waits until that thread
/// asks for completions, and does not wake it once per datagram, so a
/// coalesced wait ([`submit_coalesced`]) sleeps through the whole window.
/// DEFER_TASKRUN needs SINGLE_ISSUER, so the ring is built disabled: the
/// thread that will use it enables it ([`enable_ring`]) and becomes its
/// only submitter. Returns the ring and whether it waits to be enabled;
/// with `--sqpoll`, or where the kernel refuses (before Linux 6.1), it is
/// [`build_ring`]'s ring.
pub(crate) fn build_deferred_ring(depth: u32, sqpoll: bool) -> io::Result<(IoUring, bool)> {
    if !sqpoll
        && let Ok(ring) = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .build(depth)
    {
        return Ok((ring, true));
    }
    build_ring(depth, sqpoll).map(|ring| (ring, false))
}

/// Enables a ring [`build_deferred_ring`] left disabled; called on the
/// thread that uses it.
pub(crate) fn enable_ring(ring: &IoUring) -> io::Result<()> {
    ring.submitter().register_enable_rings()
}

/// Builds a ring of `depth` entries, with SQPOLL when asked and permitted
/// (falling back, with a warning, when the kernel refuses it).
pub(crate) fn build_ring(depth: u32, sqpoll: bool) -> io::Result<IoUring> {
    if sqpoll {
        match IoUring::builder().setup_sqpoll(1000).build(depth) {
            Ok(ring) => return Ok(ring),
            Err(error) => eprintln!(
                "ringway: warning: --sqpoll refused by the kernel, using a normal ring; error = {error}"
            ),
        }
    }
    IoUring::new(depth)
}

/// Checks at start-up that the kernel has what the I/O workers use, so a
/// missing feature is one clear error instead of a failure mid-run.
pub(crate) fn probe_kernel() -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|error| {
        refused_message("io_uring_setup", &error, &Host::read()).unwrap_or_else(|| {
            format!(
                "io_uring is not available ({error}); ringway needs Linux 5.11 or later with io_uring enabled (sysctl kernel.io_uring_disabled=0)"
            )
        })
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err(
            "this kernel's io_uring lacks IORING_FEAT_EXT_ARG (timed waits); ringway needs Linux 5.11 or later"
                .to_string(),
        );
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|error| {
            refused_message("io_uring_register", &error, &Host::read()).unwrap_or_else(|| {
                format!("io_uring opcode probe failed ({error}); ringway needs Linux 5.11 or later")
            })
        })?;
    for (code, name) in [(opcode::Read::CODE, "IORING_OP_READ")] {
        if !probe.is_supported(code) {
            return Err(format!(
                "this kernel's io_uring does not support {name}; ringway needs Linux 5.11 or later"
            ));
        }
    }
    Ok(())
}

/// Where the message for a refused io_uring sends the reader: the section
/// on the seccomp profile, the DaemonSet and the sysctl.
pub(crate) const CONTAINERS_DOC: &str = "docs/operations.md#containers-and-kubernetes";

/// The seccomp profile that allows io_uring, as shipped in the source tree.
pub(crate) const SECCOMP_PROFILE: &str = "deploy/seccomp/ringway.json";

/// What the host says about who may use io_uring, read when a ring is
/// refused to tell the operator which of the gates closed.
pub(crate) struct Host {
    /// `kernel.io_uring_disabled` (Linux 6.6 and later): 0 allows every
    /// process, 1 only members of `kernel.io_uring_group` (and
    /// CAP_SYS_ADMIN), 2 none. None where the file does not exist.
    io_uring_disabled: Option<u8>,
    /// This process runs under a seccomp filter (`Seccomp: 2` in
    /// /proc/self/status), as every container with a runtime's default
    /// profile does.
    seccomp_filter: bool,
}

impl Host {
    pub(crate) fn read() -> Self {
        let io_uring_disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .ok()
            .and_then(|text| text.trim().parse().ok());
        let seccomp_filter = std::fs::read_to_string("/proc/self/status")
            .map(|status| {
                status
                    .lines()
                    .any(|line| line.split_whitespace().eq(["Seccomp:", "2"]))
            })
            .unwrap_or(false);
        Self {
            io_uring_disabled,
            seccomp_filter,
        }
    }
}

/// The start-up error for an io_uring system call (`syscall`) that the
/// host refused with EPERM or ENOSYS, naming which gate refused it and what
/// opens it; None for other errors, which keep their generic message.
/// The sysctl is checked first: with it at 2 no profile helps. A seccomp
/// filter is what a container runtime's default profile installs (Docker
/// since 25.0 and containerd since 2.0 refuse io_uring with EPERM; CRI-O
/// and Podman with ENOSYS).
fn refused_message(syscall: &str, error: &io::Error, host: &Host) -> Option<String> {
    let errno = error.raw_os_error()?;
    if errno != libc::EPERM && errno != libc::ENOSYS {
        return None;
    }
    let refused = format!("{syscall}: {error}");
    Some(match host.io_uring_disabled {
        Some(2) => format!(
            "io_uring is disabled on this host ({refused}; sysctl kernel.io_uring_disabled=2): set kernel.io_uring_disabled=0 (see {CONTAINERS_DOC})"
        ),
        Some(1) if errno == libc::EPERM => format!(
            "io_uring is not allowed here ({refused}): sysctl kernel.io_uring_disabled=1 limits it to the group kernel.io_uring_group names; add ringway's user to that group or set kernel.io_uring_disabled=0{} (see {CONTAINERS_DOC})",
            if host.seccomp_filter {
                format!(
                    "; a seccomp filter is active too: if it is a container runtime's default profile, run with {SECCOMP_PROFILE}"
                )
            } else {
                String::new()
            }
        ),
        _ if host.seccomp_filter => format!(
            "io_uring is not allowed here ({refused}): a seccomp filter blocks it, as the default profiles of Docker, containerd, CRI-O and Podman do; run with the profile {SECCOMP_PROFILE} (see {CONTAINERS_DOC})"
        ),
        _ if errno == libc::ENOSYS => format!(
            "this kernel has no io_uring ({refused}); ringway needs Linux 5.11 or later built with CONFIG_IO_URING"
        ),
        _ => return None,
    })
}

/// A blocking eventfd: io_uring polls it internally, so a posted read
/// completes when another thread writes it.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC,
    )?)
}

/// A blocking inotify descriptor (read through io_uring, like the eventfd).
pub(crate) fn inotify() -> io::Result<OwnedFd> {
    Ok(rustix::fs::inotify::init(
        rustix::fs::inotify::CreateFlags::CLOEXEC,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for token in [
            Token::Read(0),
            Token::Read(u32::MAX),
            Token::Wake,
            Token::Inotify,
            Token::Accept,
            Token::ConnRecv(7),
            Token::ConnSend(u32::MAX),
        ] {
            assert_eq!(Token::decode(token.encode()), Some(token));
        }
        assert_eq!(Token::decode(0), None);
    }

    fn host(io_uring_disabled: Option<u8>, seccomp_filter: bool) -> Host {
        Host {
            io_uring_disabled,
            seccomp_filter,
        }
    }

    #[test]
    fn refused_io_uring_under_a_seccomp_filter_points_to_the_profile() {
        for errno in [libc::EPERM, libc::ENOSYS] {
            let error = io::Error::from_raw_os_error(errno);
            for disabled in [None, Some(0)] {
                let message =
                    refused_message("io_uring_setup", &error, &host(disabled, true)).unwrap();
                assert!(
                    message.starts_with(&format!(
                        "io_uring is not allowed here (io_uring_setup: {error}): a seccomp filter blocks it"
                    )),
                    "{message}"
                );
                assert!(message.contains(SECCOMP_PROFILE), "{message}");
                assert!(message.contains(CONTAINERS_DOC), "{message}");
            }
        }
    }

    #[test]
    fn refused_io_uring_names_the_sysctl_that_closed_it() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let disabled = refused_message("io_uring_setup", &eperm, &host(Some(2), true)).unwrap();
        assert!(
            disabled.starts_with("io_uring is disabled on this host (io_uring_setup: "),
            "{disabled}"
        );
        assert!(
            disabled.contains("kernel.io_uring_disabled=2"),
            "{disabled}"
        );
        let group = refused_message("io_uring_setup", &eperm, &host(Some(1), false)).unwrap();
        assert!(group.contains("kernel.io_uring_group"), "{group}");
        assert!(!group.contains(SECCOMP_PROFILE), "{group}");
        let both = refused_message("io_uring_setup", &eperm, &host(Some(1), true)).unwrap();
        assert!(both.contains("kernel.io_uring_group"), "{both}");
        assert!(both.contains(SECCOMP_PROFILE), "{both}");
    }

    #[test]
    fn other_setup_errors_keep_the_generic_message() {
        let enosys = io::Error::from_raw_os_error(libc::ENOSYS);
        let message = refused_message("io_uring_setup", &enosys, &host(Some(0), false)).unwrap();
        assert!(
            message.starts_with("this kernel has no io_uring"),
            "{message}"
        );
        // EPERM with no filter and the sysctl open: an LSM or something
        // else refused, and the message does not guess which.
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            refused_message("io_uring_setup", &eperm, &host(Some(0), false)),
            None
        );
        let enomem = io::Error::from_raw_os_error(libc::ENOMEM);
        assert_eq!(
            refused_message("io_uring_setup", &enomem, &host(None, true)),
            None
        );
    }

    #[test]
    fn this_kernel_has_the_io_uring_features_we_use() {
        probe_kernel().unwrap();
    }
}

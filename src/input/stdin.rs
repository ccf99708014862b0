//! The `stdin` input's I/O worker: reads the process's standard input (a
//! pipe, a file or a terminal) to its end through io_uring, into pooled
//! buffers, and hands whole lines to the CPU worker like the file input.
//!
//! [`StdinReader`] keeps one read in flight, at the descriptor's current
//! position (a pipe has no offsets). Unlike a file, what was read cannot be
//! read again, so the partial line after a read's last newline is carried:
//! copied to the start of the next buffer, which the next read fills on
//! from there. Lines are cut by the file reader's [`cut_lines`], so a line
//! longer than `--max-line` is cut and its rest skipped the same way.
//!
//! At EOF a last line without a newline is emitted with one, the reader
//! hands over what it holds and counts itself done (`--exit-on-eof` waits
//! for it like for a file). At shutdown the read in flight is cancelled
//! and the carried partial line is emitted, since nothing will finish it.
//! Standard input has no checkpoints: a restart cannot read it again.
//!
//! A descriptor in non-blocking mode (set by whoever shares it) answers
//! `EAGAIN`; a poll for input is posted then instead of retrying at once.

use crate::batch::Batch;
use crate::input::LaneParts;
use crate::input::lines::cut_lines;
use crate::metrics::InputCounters;
use crate::pool::{BufferPool, PooledBuffer};
use crate::ring::{RingSender, Waker};
use crate::uring::{Token, WakeRead};
use io_uring::{IoUring, opcode, types};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The read on standard input (the only one in flight).
const READ: Token = Token::Read(0);
/// The poll posted when a non-blocking descriptor has no input yet.
const POLL: Token = Token::Read(1);
/// Longest sleep in `io_uring_enter`; wake-ups come through the eventfd,
/// this only bounds a missed one.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Standard input's descriptor.
const STDIN_FD: RawFd = 0;

pub(crate) struct StdinReader {
    ring: IoUring,
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    waker: Arc<Waker>,
    wake: WakeRead,
    counters: Arc<InputCounters>,
    shutdown: Arc<AtomicBool>,
    readers_done: Arc<AtomicUsize>,
    max_line_bytes: usize,
    /// The buffer the next read fills on, with how many bytes it holds
    /// already: the start of a line not yet whole. `None` while a read
    /// into it is in flight, or when a fresh buffer is needed.
    filling: Option<(PooledBuffer, usize)>,
    /// The buffer of the read in flight and the bytes it held before.
    /// The kernel writes into it until the read's completion.
    reading: Option<(PooledBuffer, usize)>,
    /// A poll for input is posted.
    polling: bool,
    /// Inside an over-long line whose head was emitted: skip to its newline.
    skipping: bool,
    /// Whole lines waiting for room in ring(4), and the partial line that
    /// needs a fresh buffer to be carried into: `(buffer, emit, leftover
    /// start, filled)`.
    ready: Option<(PooledBuffer, usize, usize, usize)>,
    /// Standard input ended (EOF, or a read error that ends it).
    ended: bool,
    /// This loop turn stopped for want of a free buffer (to read into, or
    /// to carry a partial line into).
    wants_buffer: bool,
    /// The read or poll in flight was cancelled (at shutdown; once).
    cancelled: bool,
}

impl StdinReader {
    pub fn new(parts: LaneParts) -> Self {
        let wake = parts.wake_read();
        Self {
            ring: parts.ring,
            pool: parts.pool,
            to_cpu: parts.to_cpu,
            waker: parts.waker,
            wake,
            counters: parts.counters,
            shutdown: parts.shutdown,
            readers_done: parts.readers_done,
            max_line_bytes: parts.max_line_bytes,
            filling: None,
            reading: None,
            polling: false,
            skipping: false,
            ready: None,
            ended: false,
            wants_buffer: false,
            cancelled: false,
        }
    }

    /// Standard input as a descriptor ringway can read: open, and not a
    /// directory. Checked before any thread starts.
    pub fn check_descriptor() -> Result<(), String> {
        use std::os::fd::AsFd;
        let stat = rustix::fs::fstat(std::io::stdin().as_fd()).map_err(|error| {
            format!(
                "standard input cannot be read: {}",
                std::io::Error::from(error)
            )
        })?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
            return Err("standard input is a directory".to_string());
        }
        Ok(())
    }

    pub fn run(mut self) {
        loop {
            // Set again below by whatever still lacks a buffer.
            self.wants_buffer = false;
            self.reap_completions();
            self.hand_over();
            if self.is_done() {
                break;
            }
            if self.stopping() {
                self.stop_reading();
            }
            self.arm_wake_read();
            self.issue_read();
            if self.can_progress() {
                crate::uring::submit(&self.ring, None);
                continue;
            }
            self.waker.announce_sleep();
            if !self.can_progress() {
                crate::uring::submit(&self.ring, Some(MAX_WAIT));
            }
            self.waker.sleep_done();
        }
        self.cancel_wake_read();
        self.readers_done.fetch_add(1, Ordering::AcqRel);
    }

    fn stopping(&self) -> bool {
        self.ended || self.shutdown.load(Ordering::Relaxed)
    }

    /// Finished: no more input, nothing in flight, everything handed over.
    fn is_done(&self) -> bool {
        self.stopping()
            && self.reading.is_none()
            && !self.polling
            && self.ready.is_none()
            && self.filling.as_ref().is_none_or(|(_, filled)| *filled == 0)
    }

    fn can_progress(&self) -> bool {
        (self.ready.is_some() && self.to_cpu.has_room())
            || (self.wants_buffer && self.pool.available() > 0)
            || self.is_done()
    }

    /// Queues an entry; a full submission queue is submitted first.
    fn push_entry(&mut self, entry: &io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self` (the
        // wake read's, or `reading`'s buffer, kept until its completion).
        unsafe { crate::uring::push_entry(&mut self.ring, entry) };
    }

    fn arm_wake_read(&mut self) {
        if let Some(entry) = self.wake.arm() {
            self.push_entry(&entry);
        }
    }

    fn issue_read(&mut self) {
        if self.stopping() || self.reading.is_some() || self.polling || self.ready.is_some() {
            return;
        }
        let (mut buf, filled) = match self.filling.take() {
            Some(filling) => filling,
            None => match self.pool.take() {
                Some(buf) => (buf, 0),
                None => {
                    self.wants_buffer = true;
                    return;
                }
            },
        };
        debug_assert!(filled < buf.len(), "a full buffer is cut before reading on");
        let room = &mut buf[filled..];
        // Offset -1: the descriptor's current position (a pipe or a
        // terminal has none; a file redirected in is read from where its
        // position stands).
        let entry = opcode::Read::new(types::Fd(STDIN_FD), room.as_mut_ptr(), room.len() as u32)
            .offset(u64::MAX)
            .build()
            .user_data(READ.encode());
        self.reading = Some((buf, filled));
        self.push_entry(&entry);
    }

    fn reap_completions(&mut self) {
        crate::uring::reap(
            self,
            |reader| &mut reader.ring,
            |reader, (user_data, result, _)| match Token::decode(user_data) {
                Some(token) if token == READ => reader.on_read(result),
                Some(token) if token == POLL => reader.polling = false,
                Some(Token::Wake) => reader.wake.completed(),
                Some(_) => {}
                None => debug_assert!(false, "unknown user_data {user_data:#x}"),
            },
        );
    }

    fn on_read(&mut self, result: i32) {
        let (buf, before) = self
            .reading
            .take()
            .expect("a read completion matches the read in flight");
        if result < 0 {
            self.filling = Some((buf, before));
            match -result {
                libc::EINTR | libc::ECANCELED => {}
                libc::EAGAIN => {
                    // Non-blocking descriptor without input: wait for some.
                    let entry = opcode::PollAdd::new(types::Fd(STDIN_FD), libc::POLLIN as u32)
                        .build()
                        .user_data(POLL.encode());
                    self.polling = true;
                    self.push_entry(&entry);
                }
                errno => {
                    eprintln!(
                        "ringway: warning: reading standard input failed; treating it as its end; error = {}",
                        std::io::Error::from_raw_os_error(errno)
                    );
                    self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
                    self.ended = true;
                }
            }
            return;
        }
        let read = result as usize;
        if read == 0 {
            self.filling = Some((buf, before));
            self.ended = true;
            return;
        }
        self.counters
            .bytes
            .fetch_add(read as u64, Ordering::Relaxed);
        self.cut(buf, before + read, false);
    }

    /// Cuts the `filled` bytes of `buf` into whole lines to hand on and a
    /// partial line to carry; with `last`, the input ends here and a last
    /// line without a newline is emitted with one.
    fn cut(&mut self, mut buf: PooledBuffer, mut filled: usize, last: bool) {
        let cut = loop {
            let cut = cut_lines(
                &mut buf,
                filled,
                &mut self.skipping,
                last,
                self.max_line_bytes,
            );
            if cut.truncated {
                self.counters.truncated.fetch_add(1, Ordering::Relaxed);
            }
            if cut.skip_ended && cut.consumed < filled {
                // The lines after a skipped rest are in hand (a pipe cannot
                // give them again): move them to the front and cut again.
                buf.copy_within(cut.consumed..filled, 0);
                filled -= cut.consumed;
                continue;
            }
            break cut;
        };
        match (cut.emit, filled - cut.consumed) {
            // Nothing whole yet: read on into the same buffer.
            (0, _) if cut.consumed == 0 => self.filling = Some((buf, filled)),
            // Only skipped bytes: the buffer starts over.
            (0, 0) => self.filling = Some((buf, 0)),
            (0, leftover) => {
                buf.copy_within(cut.consumed..filled, 0);
                self.filling = Some((buf, leftover));
            }
            (emit, _) => self.ready = Some((buf, emit, cut.consumed, filled)),
        }
    }

    /// Hands whole lines to ring(4) once the partial line after them has
    /// a fresh buffer to be carried into; at the end, flushes the carried
    /// partial line.
    fn hand_over(&mut self) {
        loop {
            if let Some((_, emit, start, filled)) = self.ready {
                if !self.to_cpu.has_room() {
                    return;
                }
                let leftover = filled - start;
                let fresh = if leftover > 0 {
                    let Some(fresh) = self.pool.take() else {
                        self.wants_buffer = true;
                        return;
                    };
                    Some(fresh)
                } else {
                    None
                };
                let (buf, ..) = self.ready.take().expect("checked above");
                let carried = fresh.map(|mut fresh| {
                    fresh[..leftover].copy_from_slice(&buf[start..filled]);
                    fresh
                });
                match self.to_cpu.push(Batch::new(buf, emit)) {
                    Ok(()) => {
                        if let Some(fresh) = carried {
                            self.filling = Some((fresh, leftover));
                        }
                    }
                    Err(batch) => {
                        // (Not expected: this is the ring's only producer
                        // and it had room.) Keep the lines for later; the
                        // fresh buffer goes back to the pool.
                        self.ready = Some((batch.buf, emit, start, filled));
                        return;
                    }
                }
                continue;
            }
            // The input is over (EOF, or shutdown with no read in flight):
            // the carried partial line is the last, emitted with a newline.
            let over = self.stopping() && self.reading.is_none() && !self.polling;
            if over && let Some((buf, filled)) = self.filling.take_if(|(_, filled)| *filled > 0) {
                self.cut(buf, filled, true);
                continue;
            }
            return;
        }
    }

    /// Cancels the read or poll in flight, so the run can end without
    /// waiting for input that may never come.
    fn stop_reading(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = self.reading.is_some() || self.polling;
        if self.reading.is_some() {
            let entry = opcode::AsyncCancel::new(READ.encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(&entry);
        }
        if self.polling {
            let entry = opcode::AsyncCancel::new(POLL.encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(&entry);
        }
    }

    /// The kernel may write into the wake read's buffer until its read
    /// completes: cancel it and wait.
    fn cancel_wake_read(&mut self) {
        if let Some(entry) = self.wake.cancel() {
            self.push_entry(&entry);
        }
        for _ in 0..1000 {
            if !self.wake.is_armed() {
                return;
            }
            crate::uring::submit(&self.ring, Some(Duration::from_millis(10)));
            let mut completions = [(0, 0, 0); crate::uring::COMPLETION_BATCH];
            let count = crate::uring::take_completions(&mut self.ring, &mut completions);
            for &(user_data, _, _) in &completions[..count] {
                if Token::decode(user_data) == Some(Token::Wake) {
                    self.wake.completed();
                }
            }
        }
        eprintln!("ringway: warning: the wake-up read did not cancel; leaking its buffer");
        self.wake.leak();
    }
}

impl Drop for StdinReader {
    fn drop(&mut self) {
        // A read still in flight (only after a panic) may be written by the
        // kernel after we are gone: leak its buffer rather than free memory
        // the kernel writes into.
        if let Some((buf, _)) = self.reading.take() {
            std::mem::forget(buf);
        }
    }
}

//! The file worker's io_uring side: reads of readable files posted into
//! pooled buffers and their completions cut into batches
//! ([`crate::input::lines::cut_lines`]), the posted wake-up and inotify reads,
//! and their cancellation at exit.

use super::{FileReader, ReadOp, WAITING_POLL};
use crate::batch::Batch;
use crate::checkpoint::{Fingerprint, Mark, Marks};
use crate::config::MAX_READS_IN_FLIGHT;
use crate::input::lines::{LineCut, cut_lines};
use crate::uring::Token;
use io_uring::{opcode, types};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl FileReader {
    /// The kernel may write into the wake-up and inotify buffers until
    /// their posted reads complete: cancel them and wait, so nothing is
    /// written after the buffers are freed.
    pub(super) fn cancel_posted_reads(&mut self) {
        if let Some(entry) = self.wake.cancel() {
            self.push_entry(entry);
        }
        if self.inotify_armed {
            let entry = opcode::AsyncCancel::new(Token::Inotify.encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(entry);
        }
        // Bounded: cancellation of a pending read completes at once.
        for _ in 0..1000 {
            if !self.wake.is_armed() && !self.inotify_armed {
                return;
            }
            self.submit(true);
            self.reap_completions();
        }
        eprintln!("ringway: warning: posted reads did not cancel; leaking their buffers");
        std::mem::forget(std::mem::take(&mut self.inotify_buf));
        self.wake.leak();
    }

    /// Submits queued entries; when `wait`, sleeps until a completion or the
    /// next rescan is due.
    pub(super) fn submit(&mut self, wait: bool) {
        let timeout = wait.then(|| {
            let mut until = self.next_rescan.saturating_duration_since(Instant::now());
            if !self.waiting.is_empty() {
                // Files wait for a descriptor that frees once an open file's
                // last batch is acked: look again soon.
                until = until.min(WAITING_POLL);
            }
            until.max(Duration::from_millis(1))
        });
        crate::uring::submit(&self.ring, timeout);
    }

    /// Queues an entry; a full submission queue is submitted first.
    pub(super) fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        // SAFETY: every buffer an entry points at is owned by `self` (the
        // wake read's, inotify_buf, or a buffer kept in `reads` until its
        // completion), so it outlives the operation.
        unsafe { crate::uring::push_entry(&mut self.ring, &entry) };
    }

    pub(super) fn arm_wake_reads(&mut self) {
        if let Some(entry) = self.wake.arm() {
            self.push_entry(entry);
        }
        if !self.inotify_armed
            && let Some(fd) = &self.inotify_fd
        {
            let entry = opcode::Read::new(
                types::Fd(fd.as_raw_fd()),
                self.inotify_buf.as_mut_ptr(),
                self.inotify_buf.len() as u32,
            )
            .build()
            .user_data(Token::Inotify.encode());
            self.push_entry(entry);
            self.inotify_armed = true;
        }
    }

    pub(super) fn reap_completions(&mut self) {
        crate::uring::reap(
            self,
            |reader| &mut reader.ring,
            |reader, (user_data, result, _)| match Token::decode(user_data) {
                Some(Token::Read(slot)) => reader.on_read(slot as usize, result),
                Some(Token::Wake) => reader.wake.completed(),
                Some(Token::Inotify) => {
                    reader.inotify_armed = false;
                    reader.on_inotify(result);
                }
                Some(_) => {}
                None => debug_assert!(false, "unknown user_data {user_data:#x}"),
            },
        );
    }

    pub(super) fn push_ready(&mut self) {
        while let Some(batch) = self.ready.pop_front() {
            if let Err(batch) = self.to_cpu.push(batch) {
                // Full: the pipeline is behind. Keep it and read nothing new.
                self.ready.push_front(batch);
                return;
            }
        }
    }

    /// Issues reads for readable files, round robin, while a slot, a buffer
    /// and room downstream are free.
    pub(super) fn issue_reads(&mut self) {
        self.wants_buffer = false;
        if self.stopping() || !self.ready.is_empty() {
            return;
        }
        let count = self.files.len();
        for _ in 0..count {
            if self.in_flight + self.ready.len() >= MAX_READS_IN_FLIGHT {
                return;
            }
            let index = self.cursor % count;
            self.cursor = self.cursor.wrapping_add(1);
            let Some(file) = &self.files[index] else {
                continue;
            };
            if !file.readable || file.reading || file.copy_check_at.is_some() {
                continue;
            }
            if file.check_before_read {
                // It was at its end; what grew since may be new content
                // after a truncation (copytruncate), which a read at our
                // offset would enter mid-line. The bytes just before the
                // offset tell: one small pread per read after an EOF.
                let continues =
                    file.tail.len == 0 || file.tail.matches_before(&file.file, file.offset);
                self.files[index]
                    .as_mut()
                    .expect("checked above")
                    .check_before_read = false;
                if !continues {
                    self.restart_file(index, "was truncated and written again");
                }
            }
            let Some(file) = &self.files[index] else {
                continue;
            };
            let Some(mut buf) = self.pool.take() else {
                self.wants_buffer = true;
                return;
            };
            let slot = self
                .reads
                .iter()
                .position(Option::is_none)
                .expect("in_flight < MAX_READS_IN_FLIGHT leaves a free slot");
            let entry = opcode::Read::new(
                types::Fd(file.file.as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
            .offset(file.offset)
            .build()
            .user_data(Token::Read(slot as u32).encode());
            self.files[index].as_mut().expect("checked above").reading = true;
            self.reads[slot] = Some(ReadOp { file: index, buf });
            self.in_flight += 1;
            self.push_entry(entry);
        }
    }

    pub(super) fn on_read(&mut self, slot: usize, result: i32) {
        let op = self.reads[slot]
            .take()
            .expect("a read completion matches a read in flight");
        self.in_flight -= 1;
        let ReadOp {
            file: index,
            mut buf,
        } = op;
        let exit_on_eof = self.config.exit_on_eof;
        let max_line = self.max_line_bytes;
        let Some(file) = self.files[index].as_mut() else {
            debug_assert!(false, "files with reads in flight stay open");
            return;
        };
        file.reading = false;
        if result < 0 {
            let error = std::io::Error::from_raw_os_error(-result);
            if matches!(-result, libc::EINTR | libc::EAGAIN) {
                return;
            }
            // Keep the file and its offset; the next rescan tries again.
            file.read_failures += 1;
            file.readable = false;
            if file.read_failures.is_power_of_two() {
                eprintln!(
                    "ringway: warning: reading {} at offset {} failed ({} times), retrying every rescan; error = {error}",
                    file.path.display(),
                    file.offset,
                    file.read_failures
                );
            }
            self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        file.read_failures = 0;
        let read = result as usize;
        let read_from = file.offset;
        // The file may have been truncated (copytruncate) and written again
        // while this read waited or ran: a read starved of CPU for a moment
        // returns the old content's bytes up to some page and the new
        // content's after it, from an offset that means nothing in the new
        // content. Its first bytes tell (one pread of at most 1 KiB per
        // read): if they are no longer those of the content read so far (or
        // of the start this read just returned), the read is dropped and
        // the file read again from its start; a copy is then read from
        // where the old content was read to, before this read.
        let fingerprint_grew = if read > 0 {
            let fingerprint = file.fingerprint.after_read(read_from, &buf[..read]);
            if !fingerprint.matches(&file.file) {
                drop(buf);
                self.restart_file(index, "was truncated and written again");
                return;
            }
            std::mem::replace(&mut file.fingerprint, fingerprint) != fingerprint
        } else {
            false
        };
        let capacity = buf.len();
        // At EOF of a run that ends there (or of a deleted file), a last
        // line without a newline is emitted with one.
        let emit_partial = exit_on_eof || file.flush_partial;
        let short = read < capacity;
        let cut = cut_lines(&mut buf, read, &mut file.skipping, emit_partial, max_line);
        if cut.truncated {
            file.skip_from = file.offset;
            self.counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        // A skipped over-long line ended inside this read: the bytes after
        // it are unread (read again from the file next), so this is not EOF
        // even if the read was short.
        let unread_after_skip = cut.skip_ended && cut.consumed < read;
        let LineCut { consumed, emit, .. } = cut;
        if read == 0 && file.skipping && emit_partial {
            // The run ends (or the file is gone) inside an over-long line:
            // its head went out; the line ends here.
            file.skipping = false;
            file.needs_mark = true;
        }
        if consumed > 0 {
            file.tail = Fingerprint::of_bytes(&buf[..consumed]);
            file.lifecycle.active();
        }
        file.offset += consumed as u64;
        self.counters
            .bytes
            .fetch_add(consumed as u64, Ordering::Relaxed);
        if consumed > 0 || file.needs_mark {
            file.needs_mark = false;
            self.offsets.set_read(index, file.offset);
            // Bytes only skipped (the rest of an over-long line) travel as
            // an empty batch, so their offsets are acked in order too. Inside
            // an over-long line the mark stays at the line's start: a restart
            // there reads the line again rather than its tail as a record.
            let mut batch = Batch::new(buf, emit);
            batch.file_offset = read_from;
            batch.marks = Marks::one(Mark {
                slot: index as u32,
                generation: file.generation,
                end: if file.skipping {
                    file.skip_from
                } else {
                    file.offset
                },
            });
            self.ready.push_back(batch);
        }
        if fingerprint_grew {
            self.state_dirty = true;
        }
        // EOF for now; but a short read that ended inside a skipped
        // over-long line is settled by the next read (0 bytes) instead.
        if read == 0 || (short && !file.skipping && !unread_after_skip) {
            self.reached_eof(index, read_from + read as u64);
        }
    }

    pub(super) fn on_inotify(&mut self, result: i32) {
        if result <= 0 {
            if result < 0 && !matches!(-result, libc::EINTR | libc::ECANCELED) {
                eprintln!(
                    "ringway: warning: reading inotify failed, relying on rescans; error = {}",
                    std::io::Error::from_raw_os_error(-result)
                );
                self.inotify_fd = None;
            }
            return;
        }
        let events = &self.inotify_buf[..result as usize];
        let header = std::mem::size_of::<libc::inotify_event>();
        let mut at = 0;
        while at + header <= events.len() {
            // SAFETY: the kernel wrote whole inotify_event records into the
            // buffer; read_unaligned copes with any alignment.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(events[at..].as_ptr().cast()) };
            let name_end = (at + header + event.len as usize).min(events.len());
            let name = &events[at + header..name_end];
            let name = &name[..memchr::memchr(0, name).unwrap_or(name.len())];
            at = name_end;
            if event.mask & libc::IN_Q_OVERFLOW != 0 {
                for file in self.files.iter_mut().flatten() {
                    file.readable = true;
                }
                self.rescan_now = true;
                continue;
            }
            let known = self
                .watched
                .get(&event.wd)
                .and_then(|names| names.get(name))
                .copied();
            if let Some(index) = known
                && let Some(file) = self.files[index].as_mut()
            {
                file.readable = true;
            }
            // A name that appears may be a new file under a known name (a
            // rotation recreated it): match again at once, since the next
            // rotation may come before the next rescan.
            if event.mask
                & (libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_CREATE | libc::IN_MOVED_TO)
                != 0
            {
                self.rescan_now = true;
            }
        }
    }
}

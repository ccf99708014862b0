//! The CPU worker: frames and checks the records of each batch, then batches
//! by size and time for the dispatcher.
//!
//! [`CpuWorker`] pops [`Batch`]es from ring(4), frames them ([`frame`]),
//! checks JSON lines ([`json`]) and handles invalid ones per `--on-invalid`,
//! then either forwards the batch itself (zero copy) or appends small ones
//! into a pending batch, flushed when it reaches `--batch-bytes` or has
//! waited `--batch-linger`. When ring(16) is full it waits: it stops popping
//! ring(4), which fills, and the reader pauses.
//!
//! `format=syslog` lines become JSON objects written into encode buffers
//! (`SyslogConverter`); `format=cri|docker` lines too, their partial lines
//! joined first ([`ContainerConverter`], in `container`), which also joins
//! the lines of a `multiline=` input into records. With source
//! fields (`source=true`) raw and JSON lines are rewritten into encode
//! buffers too, with the file's path or the sender's address added
//! ([`SourceStage`], in `source`); syslog's JSON gets them as it is
//! written.
//!
//! With a query (`--sql`) or a route on any output, every line also goes
//! through the lane's [`Transformer`](crate::transform::Transformer)
//! ([`TransformStage`], in `transform`): for `json` its parse is the JSON
//! check, and routes split a batch by the outputs its records go to. A batch
//! routed nowhere is acked here at once, in its place in the ack log.

use crate::ack::Ack;
use crate::batch::{ALL_OUTPUTS, Batch};
use crate::checkpoint::AckLog;
use crate::config::{Format, OnInvalid};
use crate::dead_letter::DeadLetter;
use crate::metrics::{InputCounters, add_count};
use crate::pool::BufferPool;
use crate::ring::{RingReceiver, RingSender, Waker};
use crate::scan::frame::{self, newlines};
use crate::scan::json;
use crate::scan::syslog::SyslogParser;
use crate::transform::Shape;
use source::SenderCursor;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod container;
mod source;
#[cfg(test)]
mod tests;
mod transform;

pub(crate) use container::{ContainerConverter, Joiner, LineParser};
pub(crate) use source::SourceStage;
pub(crate) use transform::TransformStage;

pub(crate) struct CpuWorker {
    pub format: Format,
    pub on_invalid: OnInvalid,
    pub from_reader: RingReceiver<Batch>,
    pub to_dispatcher: RingSender<Batch>,
    /// Woken by the reader's pushes and the dispatcher's pops.
    pub waker: Arc<Waker>,
    pub counters: Arc<InputCounters>,
    pub json: Option<json::JsonChecker>,
    pub dead_letter: Option<DeadLetter>,
    pub batch_bytes: usize,
    pub max_line_bytes: usize,
    pub linger: Duration,
    /// A batch being filled; flushed by size, by linger or at the end.
    pub pending: Option<(Batch, Instant)>,
    /// Present for `format=syslog`.
    pub syslog: Option<SyslogConverter>,
    /// Present for `format=cri` and `format=docker`, and with `multiline=`.
    pub container: Option<ContainerConverter>,
    /// File inputs: the lane's ack log, and how many outputs ack each batch.
    pub acks: Option<(Arc<AckLog>, u32)>,
    /// Bit `i` set for each output `i`: what a batch's `targets` are read
    /// against.
    pub all_outputs: u64,
    /// Present when the lane has a query or any output has a route.
    pub transform: Option<TransformStage>,
    /// Present with `source=true` on a file, UDP or TCP input of format
    /// raw, json or syslog.
    pub source: Option<SourceStage>,
}

/// What `format=syslog` needs: the parser, and a pool of encode buffers
/// (owned by this worker: returning buffers wake it) for the JSON it writes.
pub(crate) struct SyslogConverter {
    pub parser: SyslogParser,
    pub pool: Arc<BufferPool>,
    /// The encode buffer being filled while converting one input batch.
    pub encoding: Option<Batch>,
}

#[cfg(test)]
impl CpuWorker {
    /// A worker of `format` lines for unit tests, with its rings (the far
    /// end of ring(16) returned; ring(4)'s reader is gone) and every stage
    /// off: invalid lines dropped, one output, 4 KiB batches, 1 KiB lines.
    /// Tests set the fields they need.
    pub(crate) fn for_test(format: Format, waker: Arc<Waker>) -> (Self, RingReceiver<Batch>) {
        let (_to_cpu, from_reader) =
            crate::ring::ring(4, Waker::for_test(), Arc::clone(&waker), Arc::default());
        let (to_dispatcher, from_cpu) =
            crate::ring::ring(16, Arc::clone(&waker), Waker::for_test(), Arc::default());
        let worker = CpuWorker {
            format,
            on_invalid: OnInvalid::Drop,
            from_reader,
            to_dispatcher,
            waker,
            counters: Arc::default(),
            json: None,
            dead_letter: None,
            batch_bytes: 4096,
            max_line_bytes: 1024,
            linger: Duration::ZERO,
            pending: None,
            syslog: None,
            container: None,
            acks: None,
            all_outputs: 1,
            transform: None,
            source: None,
        };
        (worker, from_cpu)
    }
}

/// Where the first line of `bytes` longer than `max_line` starts (or
/// bytes after the last newline), if any. Each window of `max_line + 1`
/// bytes from a line's start must hold a newline, and the last one there
/// starts the next window: a search a window, not one a line (a `memchr`
/// a line over every read buffer was 6% of a raw lane's time).
fn first_long_line(bytes: &[u8], max_line: usize) -> Option<usize> {
    let mut start = 0;
    while start < bytes.len() {
        let window = &bytes[start..bytes.len().min(start + max_line + 1)];
        match memchr::memrchr(b'\n', window) {
            Some(last) => start += last + 1,
            None => return Some(start),
        }
    }
    None
}

/// Frames `batch` and checks each line with `is_valid` (given the line
/// without its `\n`): invalid lines are kept, removed, or removed and
/// dead-lettered per `on_invalid`; kept lines are compacted to the front so
/// the batch stays contiguous, each run of adjacent ones moved at once
/// (nothing moves when every line is kept), and counted in its `records`.
/// Returns the lines framed and the invalid ones.
fn keep_valid_lines(
    batch: &mut Batch,
    dead_letter: &mut Option<DeadLetter>,
    on_invalid: OnInvalid,
    mut is_valid: impl FnMut(&[u8]) -> bool,
) -> (usize, u64) {
    let bytes = &mut batch.buf[..batch.len];
    let mut framed = 0;
    let mut kept = 0;
    let mut invalid = 0u64;
    let mut runs = KeptRuns::default();
    let mut start = 0;
    while let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) {
        let end = start + offset;
        framed += 1;
        let valid = is_valid(&bytes[start..end]);
        if !valid {
            invalid += 1;
            if let Some(dead_letter) = dead_letter {
                dead_letter.write_line(&bytes[start..=end]);
            }
        }
        if valid || on_invalid == OnInvalid::Raw {
            runs.keep(bytes, start..end + 1);
            kept += 1;
        }
        start = end + 1;
    }
    debug_assert_eq!(start, bytes.len(), "batches hold whole lines");
    batch.len = runs.finish(bytes);
    batch.records = kept;
    (framed, invalid)
}

/// Compacts the kept lines of a batch to its front: adjacent kept lines
/// form one run, moved with one copy when a dropped line ends it (a batch
/// whose lines are all kept moves nothing).
#[derive(Default)]
pub(super) struct KeptRuns {
    /// Where the next run goes: the bytes before it are the kept lines.
    write: usize,
    /// The run of kept lines not moved yet.
    run: std::ops::Range<usize>,
}

impl KeptRuns {
    /// Keeps the line at `line` (its `\n` included), the next line after
    /// every one given before.
    #[inline]
    pub fn keep(&mut self, bytes: &mut [u8], line: std::ops::Range<usize>) {
        if self.run.end != line.start {
            self.flush(bytes);
            self.run.start = line.start;
        }
        self.run.end = line.end;
    }

    fn flush(&mut self, bytes: &mut [u8]) {
        if self.write != self.run.start {
            bytes.copy_within(self.run.clone(), self.write);
        }
        self.write += self.run.len();
        self.run = 0..0;
    }

    /// Moves the last run; returns the length of the kept bytes.
    pub fn finish(mut self, bytes: &mut [u8]) -> usize {
        self.flush(bytes);
        self.write
    }
}

impl CpuWorker {
    pub fn run(mut self) {
        self.waker.register_current_thread();
        loop {
            if let Some(batch) = self.from_reader.pop() {
                self.take(batch);
                continue;
            }
            if self.from_reader.is_finished() {
                break;
            }
            let mut deadline = self
                .container
                .as_ref()
                .and_then(|converter| converter.joiner.deadline());
            if deadline.is_some_and(|due| Instant::now() >= due) {
                self.flush_container_runs(false);
                continue;
            }
            if let Some((_, since)) = &self.pending {
                let due = *since + self.linger;
                if Instant::now() >= due {
                    self.flush_pending();
                    continue;
                }
                deadline = Some(deadline.map_or(due, |other: Instant| other.min(due)));
            }
            if let Some(dead_letter) = &mut self.dead_letter {
                dead_letter.flush();
            }
            let reader = &self.from_reader;
            self.waker
                .wait(|| !reader.is_empty() || reader.is_finished(), deadline);
        }
        // At exit (EOF or shutdown) partial messages go out as joined so far.
        self.flush_container_runs(true);
        self.flush_pending();
        if let Some(dead_letter) = &mut self.dead_letter {
            dead_letter.flush();
        }
    }

    fn take(&mut self, mut batch: Batch) {
        // Only a batch longer than --max-line can hold an over-long line (the
        // reader cuts those that fill a buffer; a larger --read-buf can still
        // bring whole ones).
        // Container lines are cut where they are parsed instead: moving
        // lines here would lose the file offsets their joins hold.
        if batch.len > self.max_line_bytes + 1 && self.container.is_none() {
            self.truncate_long_lines(&mut batch);
        }
        if self.container.is_some() {
            // The converter's records go through `emit` (and the transform);
            // it adds the file's path itself (`source=true`).
            self.convert_container(batch);
            return;
        }
        // Rewritten records go through the transform in `emit`.
        if self.source.is_some() && matches!(self.format, Format::Raw | Format::Json) {
            self.add_source_fields(batch);
            return;
        }
        let shape = match self.format {
            // Their converters' JSON lines go through `emit` (and the
            // transform, when the lane has one).
            Format::Syslog => {
                self.convert_syslog(batch);
                return;
            }
            Format::Cri | Format::Docker | Format::Auto => {
                self.convert_container(batch);
                return;
            }
            Format::Json => Shape::Json,
            Format::Raw => Shape::Raw,
        };
        if self.transform.is_some() {
            self.take_transformed(batch, shape);
            return;
        }
        let framed = match shape {
            Shape::Raw => {
                let lines = frame::count_lines(batch.bytes());
                batch.records = lines as u32;
                lines
            }
            Shape::Json => self.check_json(&mut batch),
        };
        self.counters
            .records
            .fetch_add(framed as u64, Ordering::Relaxed);
        self.forward(batch);
    }

    /// Sends a framed batch on: appended to the pending batch when it fits,
    /// else on its own; small ones wait up to --batch-linger for more.
    fn forward(&mut self, batch: Batch) {
        if batch.len == 0 && batch.marks.as_slice().is_empty() {
            // Nothing to deliver: an OTLP request's part counts as
            // delivered now.
            if let Some(ack) = &batch.ack {
                ack.delivered_nowhere();
            }
            return;
        }
        // An empty batch that carries file marks still goes on: its offsets
        // are acked once everything before it is delivered.
        if let Some((pending, _)) = &mut self.pending {
            if pending.can_append(&batch) && pending.len + batch.len <= self.batch_bytes {
                pending.append(batch);
                if pending.len >= self.batch_bytes {
                    self.flush_pending();
                }
                return;
            }
            self.flush_pending();
        }
        if batch.len >= self.batch_bytes || self.linger.is_zero() {
            self.push(batch);
        } else {
            self.pending = Some((batch, Instant::now()));
        }
    }

    /// Checks every line; returns how many were framed. Invalid lines are
    /// kept, removed, or removed and dead-lettered per `--on-invalid`; kept
    /// lines are compacted to the front so the batch stays contiguous.
    fn check_json(&mut self, batch: &mut Batch) -> usize {
        let checker = self.json.as_mut().expect("json format has a checker");
        let (framed, invalid) =
            keep_valid_lines(batch, &mut self.dead_letter, self.on_invalid, |line| {
                checker.is_valid(line)
            });
        self.count_invalid_json(invalid);
        framed
    }

    /// Counts lines that were not valid JSON (and dead-lettered, with
    /// `--dead-letter`).
    fn count_invalid_json(&self, invalid: u64) {
        if invalid > 0 {
            self.counters.invalid.fetch_add(invalid, Ordering::Relaxed);
            if self.dead_letter.is_some() {
                self.counters
                    .dead_lettered
                    .fetch_add(invalid, Ordering::Relaxed);
            }
        }
    }

    /// Converts every line (one syslog message each) into one JSON object,
    /// written into encode buffers of this worker's own pool; the input
    /// batch goes back to the reader's pool. With source fields, each
    /// object gets them before its closing brace (syslog's keys never
    /// clash with theirs).
    fn convert_syslog(&mut self, batch: Batch) {
        let Some(syslog) = self.syslog.take() else {
            debug_assert!(false, "syslog format has a converter");
            return;
        };
        let SyslogConverter {
            mut parser,
            pool,
            mut encoding,
        } = syslog;
        let capacity = pool.buffer_bytes();
        let mut source = self.source.take();
        if let Some(stage) = &mut source {
            stage.start(&batch, capacity);
        }
        let mut cursor = SenderCursor::new(&batch);
        let bytes = batch.bytes();
        let mut framed = 0u64;
        let mut unparsed = 0u64;
        let mut truncated = 0u64;
        let mut start = 0;
        for end in newlines(bytes) {
            let line_start = start;
            start = end + 1;
            let mut line = &bytes[line_start..end];
            framed += 1;
            let fields = source.as_mut().map(|stage| {
                cursor.next_record(&mut stage.fields);
                stage.fields.bytes()
            });
            let fields = fields.unwrap_or_default();
            // A message whose JSON could outgrow a whole encode buffer is
            // cut to fit (only lines far longer than any syslog message).
            while line.len() > 1
                && SyslogParser::max_json_bytes(line.len()) + fields.len() > capacity
            {
                line = &line[..line.len() / 2];
            }
            truncated += u64::from(line.len() < end - line_start);
            let needed = SyslogParser::max_json_bytes(line.len()) + fields.len();
            let out = self.encode_room(&mut encoding, &pool, needed, &batch);
            let (written, parsed) = parser.write_json(line, &mut out.buf[out.len..]);
            out.len += written;
            if !fields.is_empty() && written >= 2 {
                // Over the `}\n` that ends the object.
                out.len -= 2;
                out.buf[out.len..out.len + fields.len()].copy_from_slice(fields);
                out.len += fields.len();
                out.buf[out.len..out.len + 2].copy_from_slice(b"}\n");
                out.len += 2;
            }
            out.records += 1;
            unparsed += u64::from(!parsed);
        }
        self.send_encoded(encoding.take(), batch);
        self.source = source;
        self.syslog = Some(SyslogConverter {
            parser,
            pool,
            encoding,
        });
        self.counters.records.fetch_add(framed, Ordering::Relaxed);
        add_count(&self.counters.invalid, unparsed);
        add_count(&self.counters.truncated, truncated);
    }

    /// The encode buffer to write a record of at most `needed` bytes of
    /// input batch `from` into: the one being filled if it has room, else
    /// a new one (the full one sent on first). It keeps `from`'s creation
    /// instant if that is earlier.
    fn encode_room<'e>(
        &mut self,
        encoding: &'e mut Option<Batch>,
        pool: &Arc<BufferPool>,
        needed: usize,
        from: &Batch,
    ) -> &'e mut Batch {
        if encoding.as_ref().is_some_and(|out| out.room() < needed) {
            let full = encoding.take().expect("checked above");
            self.emit(full);
        }
        let out = match encoding {
            Some(out) => out,
            None => encoding.insert(self.take_encode_buffer(pool)),
        };
        out.absorb_created(from);
        out
    }

    /// Sends on the last encode buffer written from `batch`, which takes
    /// over the batch's file marks; with nothing encoded, the (emptied)
    /// batch itself carries them on.
    fn send_encoded(&mut self, encoded: Option<Batch>, mut batch: Batch) {
        match encoded {
            Some(mut out) => {
                out.marks.absorb(&batch.marks);
                out.absorb_created(&batch);
                drop(batch);
                self.emit(out);
            }
            None => {
                batch.len = 0;
                batch.records = 0;
                self.emit(batch);
            }
        }
    }

    /// A free encode buffer; waits for one (outputs return them) when all
    /// are in the pipeline, which is backpressure like a full ring. The
    /// pending batch is sent on first: it may hold one of them, and nothing
    /// else would send it while this waits.
    fn take_encode_buffer(&mut self, pool: &Arc<BufferPool>) -> Batch {
        loop {
            if let Some(buf) = pool.take() {
                return Batch::new(buf, 0);
            }
            self.flush_pending();
            self.waker.wait(|| pool.available() > 0, None);
        }
    }

    /// Cuts every line longer than `--max-line` to its first `max_line`
    /// bytes plus `\n`, compacting the batch.
    fn truncate_long_lines(&mut self, batch: &mut Batch) {
        let max_line = self.max_line_bytes;
        let bytes = &mut batch.buf[..batch.len];
        // Most batches have none, and nothing moves before the first.
        let Some(first_long) = first_long_line(bytes, max_line) else {
            return;
        };
        let mut truncated = 0u64;
        let mut write = first_long;
        let mut start = first_long;
        while let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) {
            let end = start + offset;
            let keep = (end - start).min(max_line);
            truncated += u64::from(end - start > max_line);
            if write != start {
                bytes.copy_within(start..start + keep, write);
            }
            bytes[write + keep] = b'\n';
            write += keep + 1;
            start = end + 1;
        }
        batch.len = write;
        if truncated > 0 {
            self.counters
                .truncated
                .fetch_add(truncated, Ordering::Relaxed);
        }
    }

    fn flush_pending(&mut self) {
        if let Some((batch, _)) = self.pending.take() {
            self.push(batch);
        }
    }

    /// Pushes into ring(16). Full: wait for the dispatcher, which is what
    /// makes ring(4) fill behind us and the reader pause. A batch routed to
    /// no output is acked here instead, in its place in the ack log.
    fn push(&mut self, mut batch: Batch) {
        let targets = (batch.targets & self.all_outputs).count_ones();
        if let Some((log, outputs)) = &self.acks {
            // Invalid lines of this batch's offsets reach the dead-letter
            // file before the batch can be acked past them.
            if let Some(dead_letter) = &mut self.dead_letter {
                dead_letter.flush();
            }
            let acks = if batch.targets == ALL_OUTPUTS {
                *outputs
            } else {
                targets
            };
            let seq = loop {
                // Zero outputs publish as one, acked just below.
                if let Some(seq) = log.publish(&batch.marks, acks) {
                    break seq;
                }
                // Full: earlier batches are still undelivered somewhere.
                self.waker.wait(|| log.has_room(), None);
            };
            if targets == 0 {
                log.ack(seq);
                return;
            }
            batch.ack = Some(Ack::File {
                log: Arc::clone(log),
                seq,
            });
        } else if targets == 0 {
            if let Some(ack) = &batch.ack {
                ack.delivered_nowhere();
            }
            return;
        } else if batch.targets != ALL_OUTPUTS
            && let Some(ack) = &batch.ack
        {
            ack.set_outputs(targets);
        }
        loop {
            match self.to_dispatcher.push(batch) {
                Ok(()) => return,
                Err(returned) => batch = returned,
            }
            if self.to_dispatcher.is_abandoned() {
                eprintln!("ringway: error: the dispatcher stopped; a batch could not be delivered");
                return;
            }
            let dispatcher = &self.to_dispatcher;
            self.waker
                .wait(|| dispatcher.has_room() || dispatcher.is_abandoned(), None);
        }
    }
}

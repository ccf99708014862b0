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
//! With a query (`--sql`) or a route on any output, every line also goes
//! through the lane's [`Transformer`] ([`TransformStage`]): for `json` its
//! parse is the JSON check. Kept lines of `SELECT *` keep their bytes
//! (compacted in place, zero copy when every line is kept); projected
//! records are written into the stage's pooled encode buffers. Routes give a
//! batch its `targets`: a batch whose records all go to the same outputs
//! goes whole; otherwise each output that takes only some records gets a
//! copy of those, sent before the batch itself, which carries the file
//! marks (so the ack log's watermark passes them only once every part is
//! delivered). A batch routed nowhere is acked at once.

use crate::ack::Ack;
use crate::batch::{ALL_OUTPUTS, Batch};
use crate::checkpoint::AckLog;
use crate::config::{Format, OnInvalid};
use crate::dead_letter::DeadLetter;
use crate::metrics::{InputCounters, OutputCounters};
use crate::pool::BufferPool;
use crate::ring::{RingReceiver, RingSender, Waker};
use crate::scan::syslog::SyslogParser;
use crate::scan::{frame, json};
use crate::transform::{LineResult, Outcome, Shape, Transformer};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// File inputs: the lane's ack log, and how many outputs ack each batch.
    pub acks: Option<(Arc<AckLog>, u32)>,
    /// Bit `i` set for each output `i`: what a batch's `targets` are read
    /// against.
    pub all_outputs: u64,
    /// Present when the lane has a query or any output has a route.
    pub transform: Option<TransformStage>,
}

/// What the transform needs in one lane.
pub(crate) struct TransformStage {
    pub transformer: Transformer,
    /// No query, or `SELECT *` [WHERE]: kept records are the lines' bytes,
    /// compacted in place.
    pub keeps_lines: bool,
    /// Some output has a route: records may go to some outputs only.
    pub routed: bool,
    /// How `format=raw` lanes' lines are seen: [`Shape::Json`] for OTLP
    /// lanes (ringway's OTLP NDJSON), else [`Shape::Raw`].
    pub raw_shape: Shape,
    /// Encode buffers (this worker's own pool: returning buffers wake it)
    /// for projected records and the copies routes make; `None` when
    /// neither can happen.
    pub pool: Option<Arc<BufferPool>>,
    /// Every output's counters, for its `routed` and `skipped` records.
    pub outputs: Vec<Arc<OutputCounters>>,
    /// The route mask of each record of the part being sent, in order.
    /// Reused: it grows to the most records one batch held, no further.
    pub masks: Vec<u64>,
}

impl TransformStage {
    pub fn new(
        transformer: Transformer,
        keeps_lines: bool,
        routed: bool,
        raw_shape: Shape,
        pool: Option<Arc<BufferPool>>,
        outputs: Vec<Arc<OutputCounters>>,
    ) -> Self {
        Self {
            transformer,
            keeps_lines,
            routed,
            raw_shape,
            pool,
            outputs,
            masks: Vec::new(),
        }
    }
}

/// One batch's transform counts, added to the shared counters once.
#[derive(Default)]
struct Tally {
    kept: u64,
    filtered: u64,
    errors: u64,
    invalid: u64,
}

/// What `format=syslog` needs: the parser, and a pool of encode buffers
/// (owned by this worker: returning buffers wake it) for the JSON it writes.
pub(crate) struct SyslogConverter {
    pub parser: SyslogParser,
    pub pool: Arc<BufferPool>,
    /// The encode buffer being filled while converting one input batch.
    pub encoding: Option<Batch>,
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
            let mut deadline = None;
            if let Some((_, since)) = &self.pending {
                let due = *since + self.linger;
                if Instant::now() >= due {
                    self.flush_pending();
                    continue;
                }
                deadline = Some(due);
            }
            if let Some(dead_letter) = &mut self.dead_letter {
                dead_letter.flush();
            }
            let reader = &self.from_reader;
            self.waker
                .wait(|| !reader.is_empty() || reader.is_finished(), deadline);
        }
        self.flush_pending();
        if let Some(dead_letter) = &mut self.dead_letter {
            dead_letter.flush();
        }
    }

    fn take(&mut self, mut batch: Batch) {
        // Only a batch longer than --max-line can hold an over-long line (the
        // reader cuts those that fill a buffer; a larger --read-buf can still
        // bring whole ones).
        if batch.len > self.max_line_bytes + 1 {
            self.truncate_long_lines(&mut batch);
        }
        if self.transform.is_some() {
            self.take_transformed(batch);
            return;
        }
        let framed = match self.format {
            Format::Raw => {
                let lines = frame::count_lines(batch.bytes());
                batch.records = lines as u32;
                lines
            }
            Format::Json => self.check_json(&mut batch),
            Format::Syslog => {
                self.convert_syslog(batch);
                return;
            }
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
        let bytes = &mut batch.buf[..batch.len];
        let mut framed = 0;
        let mut kept = 0;
        let mut invalid = 0u64;
        let mut write = 0;
        let mut start = 0;
        while let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) {
            let end = start + offset;
            framed += 1;
            let valid = checker.is_valid(&bytes[start..end]);
            if !valid {
                invalid += 1;
                if let Some(dead_letter) = &mut self.dead_letter {
                    dead_letter.write_line(&bytes[start..=end]);
                }
            }
            if valid || self.on_invalid == OnInvalid::Raw {
                if write != start {
                    bytes.copy_within(start..=end, write);
                }
                write += end + 1 - start;
                kept += 1;
            }
            start = end + 1;
        }
        debug_assert_eq!(start, bytes.len(), "batches hold whole lines");
        batch.len = write;
        batch.records = kept;
        if invalid > 0 {
            self.counters.invalid.fetch_add(invalid, Ordering::Relaxed);
            if self.dead_letter.is_some() {
                self.counters
                    .dead_lettered
                    .fetch_add(invalid, Ordering::Relaxed);
            }
        }
        framed
    }

    /// Converts every line (one syslog message each) into one JSON object,
    /// written into encode buffers of this worker's own pool; the input
    /// batch goes back to the reader's pool.
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
        let bytes = batch.bytes();
        let mut framed = 0u64;
        let mut unparsed = 0u64;
        let mut truncated = 0u64;
        let mut start = 0;
        while let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) {
            let end = start + offset;
            let line_start = start;
            start = end + 1;
            let mut line = &bytes[line_start..end];
            framed += 1;
            // A message whose JSON could outgrow a whole encode buffer is
            // cut to fit (only lines far longer than any syslog message).
            while line.len() > 1 && SyslogParser::max_json_bytes(line.len()) > capacity {
                line = &line[..line.len() / 2];
            }
            truncated += u64::from(line.len() < end - line_start);
            let needed = SyslogParser::max_json_bytes(line.len());
            if encoding
                .as_ref()
                .is_some_and(|out: &Batch| out.room() < needed)
            {
                let full = encoding.take().expect("checked above");
                self.emit(full);
            }
            let out = match &mut encoding {
                Some(out) => out,
                None => encoding.insert(self.take_encode_buffer(&pool)),
            };
            out.absorb_created(&batch);
            let (written, parsed) = parser.write_json(line, &mut out.buf[out.len..]);
            out.len += written;
            out.records += 1;
            unparsed += u64::from(!parsed);
        }
        // The last encoded batch completes this batch's file marks; with
        // nothing encoded, the (empty) batch itself carries them on.
        match encoding.take() {
            Some(mut out) => {
                out.marks.absorb(&batch.marks);
                drop(batch);
                self.emit(out);
            }
            None => {
                let mut batch = batch;
                batch.len = 0;
                self.emit(batch);
            }
        }
        self.syslog = Some(SyslogConverter {
            parser,
            pool,
            encoding,
        });
        self.counters.records.fetch_add(framed, Ordering::Relaxed);
        if unparsed > 0 {
            self.counters.invalid.fetch_add(unparsed, Ordering::Relaxed);
        }
        if truncated > 0 {
            self.counters
                .truncated
                .fetch_add(truncated, Ordering::Relaxed);
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

    /// A batch of a lane with a transform: framed and evaluated line by
    /// line (for `json`, the evaluation's parse is the JSON check).
    fn take_transformed(&mut self, batch: Batch) {
        let shape = match self.format {
            Format::Syslog => {
                // The converter's JSON lines go through `emit`.
                self.convert_syslog(batch);
                return;
            }
            Format::Json => Shape::Json,
            Format::Raw => match &self.transform {
                Some(stage) => stage.raw_shape,
                None => Shape::Raw,
            },
        };
        let framed = self.transform_batch(batch, shape);
        self.counters.records.fetch_add(framed, Ordering::Relaxed);
    }

    /// Sends on a batch of framed lines made here (syslog's JSON): through
    /// the transform when the lane has one.
    fn emit(&mut self, batch: Batch) {
        if self.transform.is_some() {
            self.transform_batch(batch, Shape::Json);
        } else {
            self.forward(batch);
        }
    }

    /// Evaluates every line of `batch` and sends on what is kept, split by
    /// routes; returns how many lines it framed.
    fn transform_batch(&mut self, batch: Batch, shape: Shape) -> u64 {
        let Some(mut stage) = self.transform.take() else {
            debug_assert!(false, "called with a transform");
            return 0;
        };
        let mut tally = Tally::default();
        let framed = if stage.keeps_lines {
            self.transform_in_place(&mut stage, batch, shape, &mut tally)
        } else {
            self.transform_into_buffers(&mut stage, batch, shape, &mut tally)
        };
        self.transform = Some(stage);
        let add = |counter: &std::sync::atomic::AtomicU64, count: u64| {
            if count > 0 {
                counter.fetch_add(count, Ordering::Relaxed);
            }
        };
        add(&self.counters.kept, tally.kept);
        add(&self.counters.filtered, tally.filtered);
        add(&self.counters.transform_errors, tally.errors);
        add(&self.counters.invalid, tally.invalid);
        if self.dead_letter.is_some() {
            add(&self.counters.dead_lettered, tally.invalid);
        }
        framed
    }

    /// Evaluates one line (`line` ends with its `\n`). `None`: it goes
    /// nowhere (filtered, or invalid and not passed on).
    fn evaluate(
        &mut self,
        stage: &mut TransformStage,
        line: &[u8],
        shape: Shape,
        tally: &mut Tally,
    ) -> Option<LineResult> {
        let text = &line[..line.len() - 1];
        let mut result = stage.transformer.process(text, shape);
        if result.outcome == Outcome::Invalid {
            tally.invalid += 1;
            if let Some(dead_letter) = &mut self.dead_letter {
                dead_letter.write_line(line);
            }
            if self.on_invalid != OnInvalid::Raw {
                return None;
            }
            // --on-invalid raw passes it on: as a raw line, `body`.
            result = stage.transformer.process(text, Shape::Raw);
        }
        tally.errors += u64::from(result.errors > 0);
        match result.outcome {
            Outcome::Kept | Outcome::Projected => {
                tally.kept += 1;
                Some(result)
            }
            Outcome::Filtered => {
                tally.filtered += 1;
                None
            }
            Outcome::Invalid => None,
        }
    }

    /// No query or `SELECT *` [WHERE]: kept lines keep their bytes,
    /// compacted to the front (nothing moves when every line is kept).
    fn transform_in_place(
        &mut self,
        stage: &mut TransformStage,
        mut batch: Batch,
        shape: Shape,
        tally: &mut Tally,
    ) -> u64 {
        stage.masks.clear();
        let mut framed = 0u64;
        let mut write = 0;
        let mut start = 0;
        let len = batch.len;
        while let Some(offset) = memchr::memchr(b'\n', &batch.buf[start..len]) {
            let end = start + offset;
            framed += 1;
            if let Some(result) = self.evaluate(stage, &batch.buf[start..=end], shape, tally) {
                debug_assert_ne!(result.outcome, Outcome::Projected, "SELECT * keeps lines");
                if write != start {
                    batch.buf.copy_within(start..=end, write);
                }
                write += end + 1 - start;
                stage.masks.push(result.routes);
            }
            start = end + 1;
        }
        debug_assert_eq!(start, len, "batches hold whole lines");
        batch.len = write;
        batch.records = stage.masks.len() as u32;
        self.send_routed(stage, batch);
        framed
    }

    /// A projection: each kept record is written (the new object, or the
    /// line when kept as is) into encode buffers; a full one is sent on
    /// as a part of the batch, and the last part carries the batch's file
    /// marks and its OTLP ack.
    fn transform_into_buffers(
        &mut self,
        stage: &mut TransformStage,
        mut batch: Batch,
        shape: Shape,
        tally: &mut Tally,
    ) -> u64 {
        let Some(pool) = stage.pool.clone() else {
            debug_assert!(false, "a projection has encode buffers");
            return 0;
        };
        let capacity = pool.buffer_bytes();
        stage.masks.clear();
        let mut out: Option<Batch> = None;
        let mut framed = 0u64;
        let mut truncated = 0u64;
        let mut start = 0;
        while let Some(offset) = memchr::memchr(b'\n', &batch.bytes()[start..]) {
            let end = start + offset;
            framed += 1;
            let line_start = start;
            start = end + 1;
            let Some(result) = self.evaluate(stage, &batch.buf[line_start..=end], shape, tally)
            else {
                continue;
            };
            let record_len = match result.outcome {
                Outcome::Projected => stage.transformer.output().len(),
                _ => end - line_start,
            };
            // A record longer than a whole buffer (a projection that grew
            // a line near --max-line) is cut to fit, and counted.
            let keep = record_len.min(capacity - 1);
            truncated += u64::from(keep < record_len);
            if out.as_ref().is_some_and(|part| part.room() < keep + 1) {
                let mut full = out.take().expect("checked above");
                full.ack = batch.ack.as_ref().and_then(|ack| ack.split_off(1));
                self.send_routed(stage, full);
                stage.masks.clear();
            }
            let part = match &mut out {
                Some(part) => part,
                None => out.insert(self.take_encode_buffer(&pool)),
            };
            let record: &[u8] = match result.outcome {
                Outcome::Projected => stage.transformer.output(),
                _ => &batch.buf[line_start..end],
            };
            part.buf[part.len..part.len + keep].copy_from_slice(&record[..keep]);
            part.buf[part.len + keep] = b'\n';
            part.len += keep + 1;
            part.records += 1;
            part.absorb_created(&batch);
            stage.masks.push(result.routes);
        }
        if truncated > 0 {
            self.counters
                .truncated
                .fetch_add(truncated, Ordering::Relaxed);
        }
        // The last part completes the batch: its marks and its ack. With
        // nothing kept, the emptied batch itself carries them.
        let last = match out {
            Some(mut part) => {
                part.marks = batch.marks;
                part.ack = batch.ack.take();
                drop(batch);
                part
            }
            None => {
                batch.len = 0;
                batch.records = 0;
                batch
            }
        };
        self.send_routed(stage, last);
        framed
    }

    /// Sends on a part whose records' route masks are `stage.masks`: whole
    /// when every record goes to the same outputs, else a copy per output
    /// that takes only some of them (sent first), then the part itself to
    /// the outputs that take every record. Empty or routed nowhere: acked
    /// at once (in `push`), after the parts before it.
    fn send_routed(&mut self, stage: &mut TransformStage, mut batch: Batch) {
        if batch.len == 0 {
            batch.targets = 0;
            self.forward(batch);
            return;
        }
        if !stage.routed {
            self.forward(batch);
            return;
        }
        let all = self.all_outputs;
        let mut every = all;
        let mut some = 0u64;
        for &mask in &stage.masks {
            every &= mask;
            some |= mask;
        }
        let records = stage.masks.len() as u64;
        for (index, counters) in stage.outputs.iter().enumerate() {
            let bit = 1u64 << index;
            let routed = if every & bit != 0 {
                records
            } else if some & bit == 0 {
                0
            } else {
                stage.masks.iter().filter(|&&mask| mask & bit != 0).count() as u64
            };
            if routed > 0 {
                counters.routed.fetch_add(routed, Ordering::Relaxed);
            }
            if routed < records {
                counters
                    .skipped
                    .fetch_add(records - routed, Ordering::Relaxed);
            }
        }
        let partial = some & !every & all;
        if partial != 0 {
            let Some(pool) = stage.pool.clone() else {
                debug_assert!(false, "routes have encode buffers");
                return;
            };
            for index in 0..64 {
                let bit = 1u64 << index;
                if partial & bit != 0 {
                    self.send_copy(&stage.masks, &batch, bit, &pool);
                }
            }
        }
        batch.targets = every & all;
        if batch.targets == 0 {
            // Its records went out in the copies; it only carries the
            // marks and the ack.
            batch.len = 0;
            batch.records = 0;
        }
        self.forward(batch);
    }

    /// Copies the records of `batch` whose mask has `bit` into encode
    /// buffers for that one output, sent before `batch`.
    fn send_copy(&mut self, masks: &[u64], batch: &Batch, bit: u64, pool: &Arc<BufferPool>) {
        let bytes = batch.bytes();
        let mut out: Option<Batch> = None;
        let mut start = 0;
        for &mask in masks {
            let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) else {
                debug_assert!(false, "one mask per line");
                break;
            };
            let end = start + offset;
            let line = &bytes[start..=end];
            start = end + 1;
            if mask & bit == 0 {
                continue;
            }
            if out.as_ref().is_some_and(|part| part.room() < line.len()) {
                let full = out.take().expect("checked above");
                self.forward(full);
            }
            let part = match &mut out {
                Some(part) => part,
                None => {
                    let mut part = self.take_encode_buffer(pool);
                    part.targets = bit;
                    part.created = batch.created;
                    part.ack = batch.ack.as_ref().and_then(|ack| ack.split_off(1));
                    out.insert(part)
                }
            };
            part.buf[part.len..part.len + line.len()].copy_from_slice(line);
            part.len += line.len();
            part.records += 1;
        }
        if let Some(part) = out {
            self.forward(part);
        }
    }

    /// Cuts every line longer than `--max-line` to its first `max_line`
    /// bytes plus `\n`, compacting the batch.
    fn truncate_long_lines(&mut self, batch: &mut Batch) {
        let max_line = self.max_line_bytes;
        let bytes = &mut batch.buf[..batch.len];
        let mut truncated = 0u64;
        let mut write = 0;
        let mut start = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Replies, RequestDelivery};
    use crate::checkpoint::{AckedOffsets, Mark, Marks};
    use crate::ring::{Gauge, ring};
    use std::sync::atomic::AtomicU32;

    const OUTPUTS: usize = 3;

    /// A CPU worker over three outputs with routes, its ring(16)'s far end,
    /// and a pool to make input batches from.
    fn worker(
        acks: Option<(Arc<AckLog>, u32)>,
    ) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>) {
        let waker = Waker::for_test();
        let (_to_cpu, from_reader) = ring(4, Waker::for_test(), Arc::clone(&waker), Arc::default());
        let (to_dispatcher, from_cpu) = ring(
            16,
            Arc::clone(&waker),
            Waker::for_test(),
            Arc::new(Gauge::default()),
        );
        let pool = BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap();
        let stage = TransformStage::new(
            Transformer::new(None, (0..OUTPUTS).map(|_| None).collect(), 1024),
            true,
            true,
            Shape::Raw,
            Some(BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap()),
            (0..OUTPUTS).map(|_| Arc::default()).collect(),
        );
        let worker = CpuWorker {
            format: Format::Raw,
            on_invalid: OnInvalid::Raw,
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
            acks,
            all_outputs: (1 << OUTPUTS) - 1,
            transform: Some(stage),
        };
        (worker, from_cpu, pool)
    }

    fn batch(pool: &Arc<BufferPool>, text: &[u8], marks: Marks) -> Batch {
        let mut buf = pool.take().unwrap();
        buf[..text.len()].copy_from_slice(text);
        let mut batch = Batch::new(buf, text.len());
        batch.records = frame::count_lines(text) as u32;
        batch.marks = marks;
        batch
    }

    /// Sends `batch` whose records go where `masks` say, as the transform
    /// does after evaluating them.
    fn send(worker: &mut CpuWorker, batch: Batch, masks: &[u64]) {
        let mut stage = worker.transform.take().unwrap();
        stage.masks.clear();
        stage.masks.extend_from_slice(masks);
        worker.send_routed(&mut stage, batch);
        worker.transform = Some(stage);
        worker.flush_pending();
    }

    fn parts(from_cpu: &mut RingReceiver<Batch>) -> Vec<(u64, Vec<u8>, Batch)> {
        std::iter::from_fn(|| from_cpu.pop())
            .map(|batch| (batch.targets, batch.bytes().to_vec(), batch))
            .collect()
    }

    fn seq(batch: &Batch) -> u64 {
        match &batch.ack {
            Some(Ack::File { seq, .. }) => *seq,
            _ => panic!("a file lane's batch carries its ack log entry"),
        }
    }

    #[test]
    fn routes_split_a_batch_and_the_watermark_waits_for_every_part() {
        let offsets = AckedOffsets::new(1);
        offsets.reset(0, 1, 0, 0);
        let log = AckLog::new(16, Arc::clone(&offsets), Waker::for_test());
        let (mut worker, mut from_cpu, pool) = worker(Some((Arc::clone(&log), OUTPUTS as u32)));
        let mark = Marks::one(Mark {
            slot: 0,
            generation: 1,
            end: 6,
        });
        // a: outputs 0 and 1; b: output 0; c: every output.
        send(
            &mut worker,
            batch(&pool, b"a\nb\nc\n", mark),
            &[0b011, 0b001, 0b111],
        );
        let sent = parts(&mut from_cpu);
        let shape: Vec<(u64, &[u8])> = sent.iter().map(|(t, b, _)| (*t, b.as_slice())).collect();
        // Copies for the outputs that take some records first, then the
        // batch itself (zero copy) for the one that takes every record.
        assert_eq!(
            shape,
            [
                (0b010, &b"a\nc\n"[..]),
                (0b100, &b"c\n"[..]),
                (0b001, &b"a\nb\nc\n"[..])
            ]
        );
        assert_eq!(
            sent.iter().map(|(_, _, b)| b.records).collect::<Vec<_>>(),
            [2, 1, 3]
        );
        let stage = worker.transform.as_ref().unwrap();
        let counted = |f: fn(&OutputCounters) -> &std::sync::atomic::AtomicU64| {
            stage
                .outputs
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        };
        assert_eq!(counted(|c| &c.routed), [3, 2, 1]);
        assert_eq!(counted(|c| &c.skipped), [0, 1, 2]);
        // Each part is one output's ack; the marks ride on the last, so the
        // watermark moves only once every part is delivered, in any order.
        let seqs: Vec<u64> = sent.iter().map(|(_, _, b)| seq(b)).collect();
        assert_eq!(seqs, [0, 1, 2]);
        log.ack(2);
        assert_eq!(offsets.get(0, 1), Some(0));
        log.ack(0);
        assert_eq!(offsets.get(0, 1), Some(0));
        log.ack(1);
        assert_eq!(offsets.get(0, 1), Some(6));
    }

    #[test]
    fn a_batch_routed_nowhere_is_acked_at_once_after_those_before_it() {
        let offsets = AckedOffsets::new(1);
        offsets.reset(0, 1, 0, 0);
        let log = AckLog::new(16, Arc::clone(&offsets), Waker::for_test());
        let (mut worker, mut from_cpu, pool) = worker(Some((Arc::clone(&log), OUTPUTS as u32)));
        let mark = |end| {
            Marks::one(Mark {
                slot: 0,
                generation: 1,
                end,
            })
        };
        // Every record to every output: the batch goes whole, to all.
        send(&mut worker, batch(&pool, b"a\n", mark(2)), &[0b111]);
        // Nothing goes anywhere: no part is sent, yet its offsets count.
        send(&mut worker, batch(&pool, b"b\nc\n", mark(6)), &[0, 0]);
        let sent = parts(&mut from_cpu);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 0b111);
        assert_eq!(offsets.get(0, 1), Some(0), "waits for the batch before it");
        for _ in 0..OUTPUTS {
            log.ack(seq(&sent[0].2));
        }
        assert_eq!(offsets.get(0, 1), Some(6));
    }

    #[test]
    fn an_otlp_request_split_by_routes_is_answered_once_every_part_is_delivered() {
        let (mut worker, mut from_cpu, pool) = worker(None);
        let replies = Replies::new(4, Waker::for_test());
        // One batch pushed, plus one while the request is being emitted.
        let request = Arc::new(RequestDelivery {
            token: 7,
            pending: AtomicU32::new(2),
        });
        let mut input = batch(&pool, b"a\nb\n", Marks::default());
        input.ack = Some(Ack::Reply {
            replies: Arc::clone(&replies),
            request: Arc::clone(&request),
            remaining: AtomicU32::new(OUTPUTS as u32),
        });
        send(&mut worker, input, &[0b011, 0b001]);
        let sent = parts(&mut from_cpu);
        let targets: Vec<u64> = sent.iter().map(|(t, _, _)| *t).collect();
        assert_eq!(targets, [0b010, 0b001]);
        // The emission ends.
        request.pending.fetch_sub(1, Ordering::AcqRel);
        sent[1].2.ack.as_ref().unwrap().delivered();
        assert!(replies.take().is_none(), "a part is still undelivered");
        sent[0].2.ack.as_ref().unwrap().delivered();
        assert_eq!(replies.take(), Some(7));
        assert!(replies.take().is_none(), "answered once");

        // A request whose records all go nowhere is answered at once.
        let request = Arc::new(RequestDelivery {
            token: 8,
            pending: AtomicU32::new(2),
        });
        let mut input = batch(&pool, b"a\n", Marks::default());
        input.ack = Some(Ack::Reply {
            replies: Arc::clone(&replies),
            request: Arc::clone(&request),
            remaining: AtomicU32::new(OUTPUTS as u32),
        });
        send(&mut worker, input, &[0]);
        assert!(from_cpu.pop().is_none());
        request.pending.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(request.pending.load(Ordering::Acquire), 0);
    }
}

#[cfg(test)]
mod allocation_tests {
    use super::tests_support::*;

    /// Routing a batch (masks, copies into pooled buffers, the ack log) costs
    /// no allocation once the mask list has grown: nothing per record.
    #[test]
    fn splitting_a_batch_by_routes_allocates_nothing_after_warm_up() {
        let (mut worker, mut from_cpu, pool, log) = routed_file_worker();
        let text = b"a\nb\nc\nd\n";
        let masks = [0b011, 0b001, 0b111, 0b100];
        let mut end = 0;
        for round in 0..3 {
            end += text.len() as u64;
            let batch = input_batch(&pool, text, end);
            let before = crate::test_alloc::allocations_on_this_thread();
            send_masks(&mut worker, batch, &masks);
            let allocations = crate::test_alloc::allocations_on_this_thread() - before;
            if round > 0 {
                assert_eq!(allocations, 0, "round {round}");
            }
            while let Some(part) = from_cpu.pop() {
                for _ in 0..(part.targets & 0b111).count_ones() {
                    part.ack.as_ref().unwrap().delivered();
                }
            }
            assert!(log.has_room());
        }
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::checkpoint::{AckedOffsets, Mark, Marks};
    use crate::ring::ring;

    /// A file lane's CPU worker over three outputs with routes.
    pub fn routed_file_worker() -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
        let waker = Waker::for_test();
        let offsets = AckedOffsets::new(1);
        offsets.reset(0, 1, 0, 0);
        let log = AckLog::new(64, offsets, Waker::for_test());
        let (_to_cpu, from_reader) = ring(4, Waker::for_test(), Arc::clone(&waker), Arc::default());
        let (to_dispatcher, from_cpu) =
            ring(16, Arc::clone(&waker), Waker::for_test(), Arc::default());
        let pool = BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap();
        let stage = TransformStage::new(
            Transformer::new(None, vec![None, None, None], 1024),
            true,
            true,
            Shape::Raw,
            Some(BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap()),
            (0..3).map(|_| Arc::default()).collect(),
        );
        let worker = CpuWorker {
            format: Format::Raw,
            on_invalid: OnInvalid::Raw,
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
            acks: Some((Arc::clone(&log), 3)),
            all_outputs: 0b111,
            transform: Some(stage),
        };
        (worker, from_cpu, pool, log)
    }

    pub fn input_batch(pool: &Arc<BufferPool>, text: &[u8], end: u64) -> Batch {
        let mut buf = pool.take().unwrap();
        buf[..text.len()].copy_from_slice(text);
        let mut batch = Batch::new(buf, text.len());
        batch.records = frame::count_lines(text) as u32;
        batch.marks = Marks::one(Mark {
            slot: 0,
            generation: 1,
            end,
        });
        batch
    }

    pub fn send_masks(worker: &mut CpuWorker, batch: Batch, masks: &[u64]) {
        let mut stage = worker.transform.take().unwrap();
        stage.masks.clear();
        stage.masks.extend_from_slice(masks);
        worker.send_routed(&mut stage, batch);
        worker.transform = Some(stage);
        worker.flush_pending();
    }
}

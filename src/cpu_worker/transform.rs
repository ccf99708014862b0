//! The CPU worker's transform (DESIGN §5): every line of a lane with a query
//! or with routes goes through the lane's [`Transformer`]. `SELECT * FROM
//! logs` without routes passes each batch on as a lane without a query
//! does (the JSON check only). Kept lines of `SELECT * … WHERE` keep their
//! bytes, compacted in place a run of adjacent lines at a time (zero copy
//! when every line is kept); projected records are written into the
//! stage's pooled encode buffers. Routes give each part its `targets`: a part whose
//! records all go to the same outputs goes whole; otherwise each output
//! that takes only some records gets a copy of those, sent before the part
//! itself, which carries the file marks and the OTLP ack (so the ack log's
//! watermark passes them only once every part is delivered). A part routed
//! nowhere is acked at once (`CpuWorker::push`).

use super::{CpuWorker, KeptRuns, keep_valid_lines};
use crate::batch::Batch;
use crate::config::OnInvalid;
use crate::metrics::OutputCounters;
use crate::pool::BufferPool;
use crate::scan::frame;
use crate::transform::{LineResult, Outcome, Shape, Transformer};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What the transform needs in one lane.
pub(crate) struct TransformStage {
    pub transformer: Transformer,
    /// No query, or `SELECT *` [WHERE]: kept records are the lines' bytes,
    /// compacted in place.
    pub keeps_lines: bool,
    /// Every line is kept as it is (`SELECT * FROM logs`, no route with a
    /// condition): batches pass on as without a query.
    identity: bool,
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
    /// How the lines of the batch being transformed are seen.
    shape: Shape,
    /// That batch's counts.
    tally: Tally,
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
            identity: transformer.is_identity(),
            transformer,
            keeps_lines,
            routed,
            raw_shape,
            pool,
            outputs,
            masks: Vec::new(),
            shape: Shape::Raw,
            tally: Tally::default(),
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

impl Tally {
    /// Counts a line as kept or filtered; `None` when it goes nowhere.
    fn outcome(&mut self, result: LineResult) -> Option<LineResult> {
        match result.outcome {
            Outcome::Kept | Outcome::Projected => {
                self.kept += 1;
                Some(result)
            }
            Outcome::Filtered => {
                self.filtered += 1;
                if result.errors > 0 {
                    self.errors += 1;
                }
                None
            }
            Outcome::Invalid => None,
        }
    }
}

impl CpuWorker {
    /// A batch of `shape` lines of a lane with a transform: framed and
    /// evaluated line by line (for `json`, the evaluation's parse is the
    /// JSON check).
    pub(super) fn take_transformed(&mut self, batch: Batch, shape: Shape) {
        let shape = match (&self.transform, shape) {
            (Some(stage), Shape::Raw) => stage.raw_shape,
            _ => shape,
        };
        let framed = self.transform_batch(batch, shape);
        self.counters.records.fetch_add(framed, Ordering::Relaxed);
    }

    /// Sends on a batch of framed lines made here (syslog's JSON): through
    /// the transform when the lane has one.
    pub(super) fn emit(&mut self, batch: Batch) {
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
        stage.shape = shape;
        stage.tally = Tally::default();
        let framed = if stage.identity {
            self.transform_identity(&mut stage, batch)
        } else if stage.keeps_lines {
            self.transform_in_place(&mut stage, batch)
        } else {
            self.transform_into_buffers(&mut stage, batch)
        };
        let tally = std::mem::take(&mut stage.tally);
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

    /// Evaluates one line (`line` ends with its `\n`) of a query that
    /// keeps lines (nothing is written). `None`: it goes nowhere
    /// (filtered, or invalid and not passed on). Inline in the batch loop:
    /// the filter's whole cost per line is the parse and the walk.
    #[inline]
    fn evaluate(&mut self, stage: &mut TransformStage, line: &[u8]) -> Option<LineResult> {
        debug_assert!(stage.keeps_lines, "a projection writes records");
        let text = &line[..line.len() - 1];
        let mut result = stage.transformer.select(text, stage.shape);
        if result.outcome == Outcome::Invalid {
            if !self.invalid_line(stage, line) {
                return None;
            }
            // --on-invalid raw passes it on: as a raw line, `body`.
            result = stage.transformer.select(text, Shape::Raw);
        }
        let result = stage.tally.outcome(result)?;
        stage.tally.errors += u64::from(result.errors > 0);
        Some(result)
    }

    /// Counts an invalid line and writes it to the dead letter file;
    /// true when `--on-invalid raw` passes it on (as a raw line).
    #[cold]
    fn invalid_line(&mut self, stage: &mut TransformStage, line: &[u8]) -> bool {
        stage.tally.invalid += 1;
        if let Some(dead_letter) = &mut self.dead_letter {
            dead_letter.write_line(line);
        }
        self.on_invalid == OnInvalid::Raw
    }

    /// [`CpuWorker::evaluate`], a projected record written into `room`
    /// (see `Transformer::process_into`: `None` when it did not fit), its
    /// runtime errors left for the caller to count once it is written.
    fn evaluate_into(
        &mut self,
        stage: &mut TransformStage,
        line: &[u8],
        room: &mut [u8],
    ) -> Option<(LineResult, Option<usize>)> {
        let text = &line[..line.len() - 1];
        let (mut result, mut written) = stage.transformer.process_into(text, stage.shape, room);
        if result.outcome == Outcome::Invalid {
            if !self.invalid_line(stage, line) {
                return None;
            }
            // --on-invalid raw passes it on: as a raw line, `body`.
            (result, written) = stage.transformer.process_into(text, Shape::Raw, room);
        }
        let result = stage.tally.outcome(result)?;
        Some((result, written))
    }

    /// `SELECT * FROM logs` without routes: the batch passes on as it
    /// would without a query (only the JSON check of `json` lines can drop
    /// a line), its records counted as kept.
    fn transform_identity(&mut self, stage: &mut TransformStage, mut batch: Batch) -> u64 {
        let framed = match stage.shape {
            Shape::Raw => {
                let lines = frame::count_lines(batch.bytes());
                batch.records = lines as u32;
                lines
            }
            Shape::Json => {
                let transformer = &mut stage.transformer;
                let (framed, invalid) =
                    keep_valid_lines(&mut batch, &mut self.dead_letter, self.on_invalid, |line| {
                        transformer.is_valid_json(line)
                    });
                stage.tally.invalid += invalid;
                framed
            }
        };
        stage.tally.kept += u64::from(batch.records);
        self.send_routed(stage, batch);
        framed as u64
    }

    /// `SELECT * … WHERE …`, or routes: kept lines keep their bytes,
    /// compacted to the front, each run of adjacent ones with one copy
    /// (nothing moves when every line is kept).
    fn transform_in_place(&mut self, stage: &mut TransformStage, mut batch: Batch) -> u64 {
        stage.masks.clear();
        let mut framed = 0u64;
        let mut runs = KeptRuns::default();
        let mut start = 0;
        let len = batch.len;
        while let Some(offset) = memchr::memchr(b'\n', &batch.buf[start..len]) {
            let end = start + offset;
            framed += 1;
            if let Some(result) = self.evaluate(stage, &batch.buf[start..=end]) {
                debug_assert_ne!(result.outcome, Outcome::Projected, "SELECT * keeps lines");
                runs.keep(&mut batch.buf[..len], start..end + 1);
                stage.masks.push(result.routes);
            }
            start = end + 1;
        }
        debug_assert_eq!(start, len, "batches hold whole lines");
        batch.len = runs.finish(&mut batch.buf[..len]);
        batch.records = stage.masks.len() as u32;
        self.send_routed(stage, batch);
        framed
    }

    /// A projection: each kept record is written (the new object, or the
    /// line when kept as is) straight into encode buffers; a full one is
    /// sent on as a part of the batch, and the last part carries the
    /// batch's file marks and its OTLP ack.
    fn transform_into_buffers(&mut self, stage: &mut TransformStage, mut batch: Batch) -> u64 {
        let Some(pool) = stage.pool.clone() else {
            debug_assert!(false, "a projection has encode buffers");
            return 0;
        };
        // Each record is followed by its `\n`.
        let room_end = pool.buffer_bytes() - 1;
        stage.masks.clear();
        let mut part = self.take_encode_buffer(&pool);
        let mut framed = 0u64;
        let mut truncated = 0u64;
        let mut start = 0;
        while let Some(offset) = memchr::memchr(b'\n', &batch.bytes()[start..]) {
            let end = start + offset;
            framed += 1;
            let line = start..end;
            start = end + 1;
            // Past `room_end` when the last record filled the buffer.
            let room = &mut part.buf[part.len.min(room_end)..room_end];
            let Some((result, mut written)) =
                self.evaluate_into(stage, &batch.buf[line.start..=line.end], room)
            else {
                continue;
            };
            let mut errors = result.errors;
            let text = &batch.buf[line.clone()];
            if result.outcome == Outcome::Projected && written.is_none() && part.len > 0 {
                // Not in the room left: the part goes on, and the record
                // is written again into the next one.
                let next = self.take_encode_buffer(&pool);
                self.send_part(stage, std::mem::replace(&mut part, next), &batch);
                let (again, again_errors) = stage
                    .transformer
                    .project_into(text, &mut part.buf[..room_end]);
                written = again;
                errors += again_errors;
            }
            let record_len = match (result.outcome, written) {
                (Outcome::Projected, Some(len)) => len,
                (Outcome::Projected, None) => {
                    // Longer than a whole buffer (a projection that grew a
                    // line near --max-line): cut to fit, and counted.
                    errors += stage.transformer.project_again(text);
                    let record = stage.transformer.output();
                    let keep = record.len().min(room_end);
                    debug_assert!(part.len == 0 && keep < record.len());
                    truncated += 1;
                    part.buf[..keep].copy_from_slice(&record[..keep]);
                    keep
                }
                _ => {
                    let keep = text.len().min(room_end);
                    truncated += u64::from(keep < text.len());
                    if part.len + keep > room_end {
                        let next = self.take_encode_buffer(&pool);
                        self.send_part(stage, std::mem::replace(&mut part, next), &batch);
                    }
                    part.buf[part.len..part.len + keep].copy_from_slice(&text[..keep]);
                    keep
                }
            };
            stage.tally.errors += u64::from(errors > 0);
            part.buf[part.len + record_len] = b'\n';
            part.len += record_len + 1;
            part.records += 1;
            part.absorb_created(&batch);
            stage.masks.push(result.routes);
        }
        if truncated > 0 {
            self.counters
                .truncated
                .fetch_add(truncated, Ordering::Relaxed);
        }
        // The last part completes the batch: its marks and its ack (with
        // nothing kept, it goes on empty to carry them).
        part.marks = batch.marks;
        part.ack = batch.ack.take();
        drop(batch);
        self.send_routed(stage, part);
        framed
    }

    /// Sends on a full part of `batch` before its last: with a share of
    /// the batch's OTLP ack, not its marks.
    fn send_part(&mut self, stage: &mut TransformStage, mut full: Batch, batch: &Batch) {
        full.ack = batch.ack.as_ref().and_then(|ack| ack.split_off(1));
        self.send_routed(stage, full);
        stage.masks.clear();
    }

    /// Sends on a part whose records' route masks are `stage.masks`: whole
    /// when every record goes to the same outputs, else a copy per output
    /// that takes only some of them (sent first), then the part itself to
    /// the outputs that take every record. Empty or routed nowhere: acked
    /// at once (in `push`), after the parts before it.
    pub(super) fn send_routed(&mut self, stage: &mut TransformStage, mut batch: Batch) {
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
}

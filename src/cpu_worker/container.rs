//! Container log lines (`format=cri`, `format=docker`): each line parsed
//! (`scan::cri`), partial lines joined per (file, stream), one JSON record
//! `{"time","stream","body"}` plus the file's Kubernetes fields written per
//! message into this worker's encode buffers. With `multiline=`, messages
//! (and the lines of `format=raw`, as `{"body"}` records) are joined
//! further into records by `scan::multiline`'s rules, with `\n` between
//! them; a run then holds a record, and the same marks, timeout and
//! `--max-line` apply to it.
//!
//! [`ContainerConverter`] holds the parser, a fixed set of [`Run`]s (a
//! message whose partial lines are being joined; at most
//! [`MAX_PENDING_RUNS`], each with a body buffer of `--max-line` bytes
//! mapped at start, in a pool of their own: untouched, they take no
//! memory (as heap allocations they were resident from start-up, 18 MiB of
//! mimalloc's huge-page heap before the first line) and, per file slot,
//! the metadata fields computed once when a file's first batch arrives
//! ([`Source`]).
//!
//! Checkpoints stay exact: a batch's file mark says "every byte before
//! `end` is delivered once this batch is". While a run of that file is
//! pending, its lines are not in any record sent yet, so the mark this
//! worker sends is held at the file offset of the earliest pending run's
//! first line (`Run::start`, from the batch's `file_offset`). The watermark
//! then never passes a part of an unsent message: after a crash the file
//! is read again from that line and the message is joined whole, once.
//! Whole lines of the other stream between that offset and the crash were
//! already sent and are sent again — the at-least-once duplicates DESIGN §3
//! allows, never a torn record. Marks stay monotonic: a new run starts at
//! or after the batch's own start, which no earlier mark passed, and a run
//! that ends only raises the minimum.
//!
//! A rotation (the kubelet renames `0.log` away and the runtime goes on
//! in a new `0.log`) does not end a run: the new file's first line of the
//! stream, finding no run of its own, takes over a run of another file
//! opened under the same path (`Joiner::adopt_rotated`). The run then
//! holds both files' marks: the old file's in `Run::previous`, released
//! when the run is sent.
//!
//! A run ends with its final line (`F`, or a `log` value ending in `\n`);
//! after `--multiline-timeout` without one, when a new file takes over its
//! slot, when all runs are taken and another stream starts one, and at exit
//! it is sent as joined so far. A message longer than `--max-line` is cut
//! there (counted as truncated) and the rest of its parts are dropped up
//! to its final line. Parts are joined as raw bytes and escaped once, so a
//! UTF-8 character that a runtime split across two lines comes out whole.

use super::CpuWorker;
use crate::batch::Batch;
use crate::checkpoint::{AckedOffsets, Mark, Marks};
use crate::config::OnInvalid;
use crate::metrics::add_count;
use crate::pool::{BufferPool, PooledBuffer};
use crate::scan::cri::{Body, ObjectMessages};
use crate::scan::cri::{
    ContainerLine, DockerParser, MAX_TIME_BYTES, Stream, k8s_fields, parse_cri, record_bound,
    record_len, write_record,
};
use crate::scan::frame::newlines;
use crate::scan::json::JsonChecker;
use crate::scan::multiline::{Multiline, START, State, Step};
use crate::source::push_file_path_field;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How every Docker json-file line starts (the driver writes `log` first):
/// `format=auto` parses only such lines as Docker's.
const DOCKER_START: &[u8] = b"{\"log\":";

/// Messages that can be pending (being joined) at once in one lane: one
/// per (file, stream) with a partial line not yet ended. When all are
/// taken, the oldest is sent as it is to make room.
pub(crate) const MAX_PENDING_RUNS: usize = 16;

/// How each line is parsed.
pub(crate) enum LineParser {
    Cri,
    Docker(DockerParser),
    /// `format=raw` with `multiline=`: each line is a whole message of
    /// [`Stream::Plain`].
    Raw,
    /// `format=auto`: per line, CRI, else Docker, else JSON, else plain.
    Auto(DockerParser, JsonChecker),
}

/// What `format=cri|docker`, and `multiline=`, need in a CPU worker.
pub(crate) struct ContainerConverter {
    pub parser: LineParser,
    pub joiner: Joiner,
}

/// The state of the joins and the records being written.
pub(crate) struct Joiner {
    /// Encode buffers (this worker's own pool: returning buffers wake it).
    pool: Arc<BufferPool>,
    /// The encode buffer being filled.
    encoding: Option<Batch>,
    runs: [Run; MAX_PENDING_RUNS],
    /// `multiline=`: which messages start a record and which continue it.
    multiline: Option<Multiline>,
    /// `json=merge`: a message that is a JSON object is written as the
    /// record's members instead of `body`.
    objects: Option<ObjectMessages>,
    /// Runs with `active` set: with none, a line needs no lookup.
    active_runs: usize,
    timeout: Duration,
    max_line_bytes: usize,
    /// Add Kubernetes fields from each file's path (`k8s=`).
    k8s: bool,
    /// Add each file's path (`source=true`), after the Kubernetes fields.
    file_path: bool,
    /// Where file paths come from (the lane's offsets table); `None` in
    /// tests without files.
    offsets: Option<Arc<AckedOffsets>>,
    /// Per file slot; grows to the slots seen, at most `--max-open-files`.
    sources: Vec<Source>,
    /// Counts of the batch being converted, added to the shared counters
    /// once per batch.
    tally: Tally,
    /// When the batch being converted arrived, read once for it when a
    /// run starts in it (`None` until then): a run's `since` is its
    /// batch's, a fraction of a millisecond from its line's at most, and a
    /// clock read a line was 2% of the stage with every 20th line split.
    batch_time: Option<Instant>,
}

#[derive(Default)]
struct Tally {
    framed: u64,
    invalid: u64,
    truncated: u64,
}

/// One file slot's file as this worker knows it.
#[derive(Default)]
struct Source {
    /// The generation `metadata` was computed for; `None` before the first.
    generation: Option<u16>,
    /// `,"key":value` pairs for every record of the file.
    metadata: Vec<u8>,
    /// The end of the last mark seen for the file: where its watermark may
    /// go once its pending runs are sent.
    read_end: u64,
    /// A hash of the path the file was opened under (`None` without
    /// paths): a run pending in a file that a rotation renamed away is
    /// continued by the new file at the same path.
    path_hash: Option<u64>,
}

/// A message being joined from partial lines.
struct Run {
    active: bool,
    slot: u32,
    generation: u16,
    stream: Stream,
    /// The time of the first part (the message's), as written.
    time: [u8; MAX_TIME_BYTES],
    time_len: usize,
    /// File offset of the first part's line (in the file the run is
    /// keyed to now).
    start: u64,
    /// The file the run began in, when a rotation moved it on to the new
    /// file at the same path: that file's slot, generation and the offset
    /// of the run's first line, where its watermark is held too.
    previous: Option<Mark>,
    /// When the first part arrived, for `--multiline-timeout`.
    since: Instant,
    /// The parts so far, raw bytes: `body[..body_len]`, at most
    /// `max_line_bytes` (the buffer's size); with `multiline=`, the
    /// record's messages joined by `\n`. The run's own buffer for the
    /// life of the worker (`None` only while `send_run` writes from it).
    body: Option<PooledBuffer>,
    body_len: usize,
    /// The message passed `--max-line`: later parts are dropped.
    cut: bool,
    /// The last part was partial: the stream's next line continues it.
    partial: bool,
    /// `multiline=`'s state of the record; [`START`]: it ends with the
    /// message it holds (always so without `multiline=`).
    state: State,
}

impl Joiner {
    /// Writes records into `pool`'s buffers; maps a body buffer of
    /// `max_line_bytes` for each of the [`MAX_PENDING_RUNS`] runs (a pool
    /// of their own, waking `pool`'s owner: untouched, they take no memory).
    pub fn new(
        pool: Arc<BufferPool>,
        timeout: Duration,
        max_line_bytes: usize,
        k8s: bool,
        offsets: Option<Arc<AckedOffsets>>,
        multiline: Option<Multiline>,
        merge_json: bool,
    ) -> std::io::Result<Self> {
        let run_buffers =
            BufferPool::new(MAX_PENDING_RUNS, max_line_bytes, Arc::clone(pool.owner()))?;
        Ok(Self {
            pool,
            encoding: None,
            runs: std::array::from_fn(|_| Run {
                active: false,
                slot: 0,
                generation: 0,
                stream: Stream::Stdout,
                time: [0; MAX_TIME_BYTES],
                time_len: 0,
                start: 0,
                previous: None,
                since: Instant::now(),
                body: Some(run_buffers.take().expect("a buffer for every run")),
                body_len: 0,
                cut: false,
                partial: false,
                state: START,
            }),
            multiline,
            objects: merge_json.then(|| ObjectMessages::new(max_line_bytes)),
            active_runs: 0,
            timeout,
            max_line_bytes,
            k8s,
            file_path: false,
            offsets,
            sources: Vec::new(),
            tally: Tally::default(),
            batch_time: None,
        })
    }

    /// Adds each file's path to its records (`source=true`).
    pub fn with_file_path(mut self, file_path: bool) -> Self {
        self.file_path = file_path;
        self
    }

    /// When the oldest pending run is due to be sent by the timeout.
    pub fn deadline(&self) -> Option<Instant> {
        if self.timeout.is_zero() {
            return None;
        }
        self.runs
            .iter()
            .filter(|run| run.active)
            .map(|run| run.since + self.timeout)
            .min()
    }

    /// The source of `mark`'s file, its metadata computed when the slot
    /// shows a generation not seen before.
    fn source_for(&mut self, mark: &Mark, worker: &mut CpuWorker) -> usize {
        let slot = mark.slot as usize;
        if self.sources.len() <= slot {
            self.sources.resize_with(slot + 1, Source::default);
        }
        if self.sources[slot].generation != Some(mark.generation) {
            // The slot holds another file now: its runs can no longer end,
            // and a hold on its old file would never be let go.
            let old =
                |slot: u32, generation: u16| slot == mark.slot && generation != mark.generation;
            self.flush_runs(worker, |run| {
                old(run.slot, run.generation)
                    || run
                        .previous
                        .is_some_and(|held| old(held.slot, held.generation))
            });
            let source = &mut self.sources[slot];
            source.generation = Some(mark.generation);
            source.metadata.clear();
            source.path_hash = None;
            let (k8s, file_path) = (self.k8s, self.file_path);
            if let Some(offsets) = &self.offsets {
                offsets.with_path(slot, mark.generation, |path| {
                    if k8s {
                        k8s_fields(path, &mut source.metadata);
                    }
                    if file_path {
                        push_file_path_field(path, &mut source.metadata);
                    }
                    let mut hasher = std::hash::DefaultHasher::new();
                    path.hash(&mut hasher);
                    source.path_hash = Some(hasher.finish());
                });
            }
        }
        slot
    }

    /// Where the watermark of the file in `slot` may go: its last read end,
    /// held at the start of its earliest pending run (runs that a rotation
    /// moved on to a new file hold it too).
    fn floor(&self, slot: u32, generation: u16, end: u64) -> u64 {
        if self.active_runs == 0 {
            return end;
        }
        self.runs
            .iter()
            .filter(|run| run.active)
            .flat_map(|run| {
                let here = (run.slot == slot && run.generation == generation).then_some(run.start);
                let held = run
                    .previous
                    .filter(|held| held.slot == slot && held.generation == generation)
                    .map(|held| held.end);
                here.into_iter().chain(held)
            })
            .fold(end, u64::min)
    }

    /// A run of another file at the same path as the file in `slot`, of
    /// `stream`: the file a rotation renamed away, whose pending message
    /// or record the new file continues. Re-keyed to the new file (its
    /// line at `offset`), holding the old one's mark where it was.
    fn adopt_rotated(
        &mut self,
        slot: Option<usize>,
        mark: Option<&Mark>,
        stream: Stream,
        offset: u64,
    ) -> Option<usize> {
        let (slot, mark) = (slot?, mark?);
        let path_hash = self.sources[slot].path_hash?;
        let sources = &self.sources;
        let index = self.runs.iter().position(|run| {
            run.active
                && run.stream == stream
                && run.previous.is_none()
                && (run.slot, run.generation) != (mark.slot, mark.generation)
                && sources.get(run.slot as usize).is_some_and(|source| {
                    source.generation == Some(run.generation) && source.path_hash == Some(path_hash)
                })
        })?;
        let run = &mut self.runs[index];
        run.previous = Some(Mark {
            slot: run.slot,
            generation: run.generation,
            end: run.start,
        });
        run.slot = mark.slot;
        run.generation = mark.generation;
        run.start = offset;
        Some(index)
    }

    /// Writes one record into the encode buffer, sending the buffer on
    /// first when it has no room.
    fn write(
        &mut self,
        worker: &mut CpuWorker,
        time: &[u8],
        stream: Stream,
        mut body: &[u8],
        slot: Option<usize>,
    ) {
        let capacity = self.pool.buffer_bytes();
        let metadata = match slot {
            // Fields longer than half a buffer (a path of thousands of
            // bytes under a small --max-line) would leave no room: left out.
            Some(slot) if self.sources[slot].metadata.len() <= capacity / 2 => {
                &self.sources[slot].metadata[..]
            }
            _ => &[],
        };
        // Made here for the common text body (not from an `Option` of
        // members: copied through memory, its load waited on the stores,
        // half of this function's time).
        let mut record_body = match &mut self.objects {
            Some(objects) if stream != Stream::Plain => objects
                .members(body)
                .map_or(Body::Text(body), Body::Members),
            _ => Body::Text(body),
        };
        // Most records fit the buffer in hand by their bound, from lengths
        // alone: written in one pass. Near its end the exact length decides
        // (the same choice, so the same records share a buffer).
        let bound = record_bound(time, stream, record_body, metadata);
        if let Some(out) = self.encoding.as_mut().filter(|out| out.room() >= bound) {
            let written =
                write_record(&mut out.buf[out.len..], time, stream, record_body, metadata);
            out.len += written;
            out.records += 1;
            return;
        }
        let mut needed = record_len(time, stream, record_body, metadata);
        // A body whose JSON outgrows a whole buffer (heavy escaping of a
        // message near --max-line) is cut to fit, as text, and counted.
        if needed > capacity {
            while needed > capacity && !body.is_empty() {
                body = &body[..body.len() / 2];
                record_body = Body::Text(body);
                needed = record_len(time, stream, record_body, metadata);
            }
            self.tally.truncated += 1;
        }
        // Fits: metadata is at most half a buffer, time and keys are short.
        debug_assert!(needed <= capacity);
        let out = buffer_with_room(&mut self.encoding, &self.pool, worker, needed);
        let written = write_record(&mut out.buf[out.len..], time, stream, record_body, metadata);
        out.len += written;
        out.records += 1;
    }

    /// Writes an invalid line as it is, and a newline (`--on-invalid raw`).
    fn write_raw(&mut self, worker: &mut CpuWorker, line: &[u8]) {
        let needed = line.len() + 1;
        let out = buffer_with_room(&mut self.encoding, &self.pool, worker, needed);
        // Lines are cut to --max-line bytes, and buffers hold one more.
        let take = line.len().min(out.room() - 1);
        out.buf[out.len..out.len + take].copy_from_slice(&line[..take]);
        out.buf[out.len + take] = b'\n';
        out.len += take + 1;
        out.records += 1;
    }

    /// One parsed line of the file in `slot` (`offset`: its line's offset).
    /// Inlined for the common line, a whole message with no run pending:
    /// its parts stay in registers on the way to [`Joiner::write`].
    #[inline(always)]
    fn take_line(
        &mut self,
        worker: &mut CpuWorker,
        line: ContainerLine<'_>,
        mark: Option<&Mark>,
        slot: Option<usize>,
        offset: u64,
    ) {
        if self.active_runs == 0 && !line.partial && self.multiline.is_none() {
            self.write(worker, line.time, line.stream, line.message, slot);
        } else {
            self.join_line(worker, line, mark, slot, offset);
        }
    }

    /// [`Joiner::take_line`] of a line that is part of a run or starts one.
    fn join_line(
        &mut self,
        worker: &mut CpuWorker,
        line: ContainerLine<'_>,
        mark: Option<&Mark>,
        slot: Option<usize>,
        offset: u64,
    ) {
        let (run_slot, generation) = mark.map_or((u32::MAX, 0), |m| (m.slot, m.generation));
        let found = if self.active_runs == 0 {
            None
        } else {
            self.runs
                .iter()
                .position(|run| {
                    run.active
                        && run.slot == run_slot
                        && run.generation == generation
                        && run.stream == line.stream
                })
                .or_else(|| self.adopt_rotated(slot, mark, line.stream, offset))
        };
        if let Some(index) = found
            && self.runs[index].partial
        {
            // The next part of a message.
            self.append(index, b"", line.message);
            self.end_message(worker, index, line.partial);
            return;
        }
        // A new message: it continues the pending record or starts one.
        // A message split by the runtime is classified by its first part.
        let pending = found.map_or(START, |index| self.runs[index].state);
        let step = match &self.multiline {
            Some(multiline) => multiline.step(pending, line.message),
            None => Step::Single,
        };
        if let (Step::Continue(state), Some(index)) = (step, found) {
            self.runs[index].state = state;
            self.append(index, b"\n", line.message);
            self.end_message(worker, index, line.partial);
            return;
        }
        if let Some(index) = found {
            self.send_run(worker, index);
        }
        let state = match step {
            Step::Start(state) => state,
            Step::Continue(_) | Step::Single => START,
        };
        if state == START && !line.partial {
            self.write(worker, line.time, line.stream, line.message, slot);
            return;
        }
        // Parsers pass only RFC 3339 times, which fit.
        debug_assert!(line.time.len() <= MAX_TIME_BYTES);
        let time_len = line.time.len().min(MAX_TIME_BYTES);
        let index = match self.runs.iter().position(|run| !run.active) {
            Some(index) => index,
            None => {
                let oldest = (0..MAX_PENDING_RUNS)
                    .min_by_key(|&index| self.runs[index].since)
                    .expect("MAX_PENDING_RUNS > 0");
                self.send_run(worker, oldest);
                oldest
            }
        };
        let run = &mut self.runs[index];
        run.active = true;
        run.previous = None;
        self.active_runs += 1;
        run.slot = run_slot;
        run.generation = generation;
        run.stream = line.stream;
        run.time[..time_len].copy_from_slice(&line.time[..time_len]);
        run.time_len = time_len;
        run.start = offset;
        run.since = *self.batch_time.get_or_insert_with(Instant::now);
        run.body_len = 0;
        run.cut = false;
        run.partial = line.partial;
        run.state = state;
        self.append(index, b"", line.message);
    }

    /// After a part of run `index`: a message that ended ends the record
    /// when its state says so.
    fn end_message(&mut self, worker: &mut CpuWorker, index: usize, partial: bool) {
        let run = &mut self.runs[index];
        run.partial = partial;
        if !partial && run.state == START {
            self.send_run(worker, index);
        }
    }

    /// A JSON line of `format=auto`, passed on as it is; it ends a plain
    /// record pending in its file first (records keep the lines' order).
    fn take_json(&mut self, worker: &mut CpuWorker, line: &[u8], mark: Option<&Mark>) {
        if self.active_runs > 0 {
            let (slot, generation) = mark.map_or((u32::MAX, 0), |m| (m.slot, m.generation));
            let pending = self.runs.iter().position(|run| {
                run.active
                    && run.slot == slot
                    && run.generation == generation
                    && run.stream == Stream::Plain
            });
            if let Some(index) = pending {
                self.send_run(worker, index);
            }
        }
        self.write_raw(worker, line);
    }

    /// Appends `separator` and a part to a run, up to `--max-line` bytes.
    fn append(&mut self, index: usize, separator: &[u8], part: &[u8]) {
        let max_line = self.max_line_bytes;
        let run = &mut self.runs[index];
        if run.cut {
            return;
        }
        let Some(body) = &mut run.body else {
            debug_assert!(false, "a run holds its buffer between sends");
            return;
        };
        for piece in [separator, part] {
            let room = max_line - run.body_len;
            let take = piece.len().min(room);
            body[run.body_len..run.body_len + take].copy_from_slice(&piece[..take]);
            run.body_len += take;
            if take < piece.len() {
                run.cut = true;
                self.tally.truncated += 1;
                return;
            }
        }
    }

    /// Writes the record of run `index` and frees it.
    fn send_run(&mut self, worker: &mut CpuWorker, index: usize) {
        let body = self.runs[index].body.take();
        let run = &self.runs[index];
        let body_len = run.body_len;
        let (time, time_len, stream) = (run.time, run.time_len, run.stream);
        let (slot, generation) = (run.slot as usize, run.generation);
        // The file's fields, unless its slot holds another file by now.
        let known = self.sources.get(slot).and_then(|source| source.generation);
        let slot = (known == Some(generation)).then_some(slot);
        let text = body.as_deref().map_or(&[][..], |body| &body[..body_len]);
        self.write(worker, &time[..time_len], stream, text, slot);
        // The buffer goes back: it is the run's for good.
        let run = &mut self.runs[index];
        run.body = body;
        run.body_len = 0;
        run.active = false;
        self.active_runs -= 1;
        // The file the run began in, before a rotation, may move on: its
        // mark goes with the record (rare: a batch of its own).
        if let Some(held) = run.previous.take() {
            let read_end = self
                .sources
                .get(held.slot as usize)
                .filter(|source| source.generation == Some(held.generation))
                .map(|source| source.read_end);
            if let Some(read_end) = read_end {
                let end = self.floor(held.slot, held.generation, read_end);
                self.send_encoding(worker, Marks::one(Mark { end, ..held }));
            }
        }
    }

    /// Sends the runs `which` picks, and the encode buffer with marks that
    /// move each of their files' watermarks as far as the runs still
    /// pending allow.
    fn flush_runs(&mut self, worker: &mut CpuWorker, which: impl Fn(&Run) -> bool) {
        let mut marks = Marks::default();
        for index in 0..MAX_PENDING_RUNS {
            let run = &self.runs[index];
            if !run.active || !which(run) {
                continue;
            }
            let (slot, generation) = (run.slot, run.generation);
            self.send_run(worker, index);
            let read_end = self
                .sources
                .get(slot as usize)
                .filter(|source| source.generation == Some(generation))
                .map(|source| source.read_end);
            if let Some(read_end) = read_end {
                let mark = Marks::one(Mark {
                    slot,
                    generation,
                    end: self.floor(slot, generation, read_end),
                });
                if !marks.can_absorb(&mark) {
                    self.send_encoding(worker, std::mem::take(&mut marks));
                }
                marks.absorb(&mark);
            }
        }
        if self.encoding.is_some() || !marks.as_slice().is_empty() {
            self.send_encoding(worker, marks);
        }
    }

    /// Sends the encode buffer (or an empty batch) carrying `marks`.
    fn send_encoding(&mut self, worker: &mut CpuWorker, marks: Marks) {
        let mut out = match self.encoding.take() {
            Some(out) => out,
            None if marks.as_slice().is_empty() => return,
            None => worker.take_encode_buffer(&self.pool),
        };
        out.marks.absorb(&marks);
        worker.emit(out);
    }
}

impl CpuWorker {
    /// Converts every line of a batch of a `format=cri|docker` file input.
    pub(super) fn convert_container(&mut self, batch: Batch) {
        let Some(ContainerConverter {
            mut parser,
            mut joiner,
        }) = self.container.take()
        else {
            debug_assert!(false, "container formats have a converter");
            return;
        };
        // A file batch carries exactly one mark: its file's.
        let mark = batch.marks.as_slice().first().copied();
        let slot = mark.map(|mark| joiner.source_for(&mark, self));
        let bytes = batch.bytes();
        let max_line = joiner.max_line_bytes;
        joiner.batch_time = None;
        let mut start = 0;
        for end in newlines(bytes) {
            let mut line = &bytes[start..end];
            if line.len() > max_line {
                // Only with --read-buf above --max-line (the reader cuts
                // longer lines itself).
                line = &line[..max_line];
                joiner.tally.truncated += 1;
            }
            let offset = batch.file_offset + start as u64;
            joiner.tally.framed += 1;
            let plain = ContainerLine {
                time: b"",
                stream: Stream::Plain,
                partial: false,
                message: line,
            };
            let parsed = match &mut parser {
                LineParser::Cri => parse_cri(line)
                    .map(|parsed| joiner.take_line(self, parsed, mark.as_ref(), slot, offset)),
                LineParser::Auto(docker, json) => {
                    // Decided by the first bytes: only a line that starts
                    // like one is parsed as CRI, Docker or JSON.
                    let container = match line.first() {
                        Some(b'0'..=b'9') => parse_cri(line).map(|parsed| {
                            joiner.take_line(self, parsed, mark.as_ref(), slot, offset);
                        }),
                        Some(b'{') if line.starts_with(DOCKER_START) => {
                            docker.parse(line, |parsed| {
                                joiner.take_line(self, parsed, mark.as_ref(), slot, offset);
                            })
                        }
                        _ => None,
                    };
                    if container.is_none() {
                        if matches!(line.first(), Some(b'{' | b'[')) && json.is_valid(line) {
                            joiner.take_json(self, line, mark.as_ref());
                        } else {
                            joiner.take_line(self, plain, mark.as_ref(), slot, offset);
                        }
                    }
                    Some(())
                }
                LineParser::Docker(docker) => docker.parse(line, |parsed| {
                    joiner.take_line(self, parsed, mark.as_ref(), slot, offset);
                }),
                LineParser::Raw => {
                    joiner.take_line(self, plain, mark.as_ref(), slot, offset);
                    Some(())
                }
            };
            if parsed.is_none() {
                joiner.tally.invalid += 1;
                if let Some(dead_letter) = &mut self.dead_letter {
                    dead_letter.write_line(&bytes[start..=end]);
                    self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                }
                if self.on_invalid == OnInvalid::Raw {
                    joiner.write_raw(self, line);
                }
            }
            start = end + 1;
        }
        // The last encoded batch carries this batch's mark, held back at
        // the file's earliest pending run.
        let mut marks = Marks::default();
        if let (Some(mark), Some(slot)) = (mark, slot) {
            joiner.sources[slot].read_end = mark.end;
            marks = Marks::one(Mark {
                end: joiner.floor(mark.slot, mark.generation, mark.end),
                ..mark
            });
        }
        match joiner.encoding.take() {
            Some(mut out) => {
                out.absorb_created(&batch);
                out.marks.absorb(&marks);
                drop(batch);
                self.emit(out);
            }
            None => {
                let mut batch = batch;
                batch.len = 0;
                batch.records = 0;
                batch.marks = marks;
                self.emit(batch);
            }
        }
        self.add_tally(&mut joiner);
        joiner.batch_time = None;
        self.container = Some(ContainerConverter { parser, joiner });
    }

    /// Sends the runs the timeout is due for (`all`: every run, at exit).
    pub(super) fn flush_container_runs(&mut self, all: bool) {
        let Some(mut converter) = self.container.take() else {
            return;
        };
        let now = Instant::now();
        let timeout = converter.joiner.timeout;
        converter.joiner.flush_runs(self, |run| {
            all || (!timeout.is_zero() && now >= run.since + timeout)
        });
        self.add_tally(&mut converter.joiner);
        self.container = Some(converter);
    }

    fn add_tally(&self, joiner: &mut Joiner) {
        let tally = std::mem::take(&mut joiner.tally);
        self.counters
            .records
            .fetch_add(tally.framed, Ordering::Relaxed);
        add_count(&self.counters.invalid, tally.invalid);
        add_count(&self.counters.truncated, tally.truncated);
    }
}

#[cfg(test)]
mod tests;

/// The encode buffer in hand (`encoding`) if it has room for `needed` more
/// bytes, else a fresh one from `pool` (the full one is emitted).
fn buffer_with_room<'a>(
    encoding: &'a mut Option<Batch>,
    pool: &Arc<BufferPool>,
    worker: &mut CpuWorker,
    needed: usize,
) -> &'a mut Batch {
    if encoding.as_ref().is_some_and(|out| out.room() < needed) {
        let full = encoding.take().expect("checked above");
        worker.emit(full);
    }
    encoding.get_or_insert_with(|| worker.take_encode_buffer(pool))
}

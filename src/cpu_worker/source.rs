//! Source fields in the CPU worker (`source=true` on a file, UDP or TCP
//! input of `format=raw|json|syslog`; `cri|docker` add the path with their
//! metadata in `container`, OTLP receivers write the client's address
//! themselves).
//!
//! [`SourceStage`] holds the [`Fields`] of the source being written — the
//! path of a batch's file (looked up once per file, through its mark), or
//! the sender of each run of a network batch's records (its sender runs,
//! walked in step with the lines) — and, for raw and JSON lines, a pool of
//! encode buffers: every record is rewritten with the fields
//! (`crate::source`), then sent on through `emit`, like syslog's JSON.
//! Nothing is allocated per record: the fields are written once per file
//! or run into a buffer that keeps its capacity.

use super::CpuWorker;
use crate::batch::Batch;
use crate::checkpoint::AckedOffsets;
use crate::config::{Format, OnInvalid};
use crate::pool::BufferPool;
use crate::scan::frame::newlines;
use crate::scan::json::JsonLine;
use crate::source::{
    Fields, SenderRuns, merged_object_bound, raw_record_bound, raw_record_len, write_merged_object,
    write_raw_record,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) struct SourceStage {
    /// Encode buffers for raw and JSON records (this worker's own pool:
    /// returning buffers wake it); `None` for syslog, which writes into
    /// its converter's.
    pool: Option<Arc<BufferPool>>,
    /// The encode buffer being filled.
    encoding: Option<Batch>,
    /// Where file paths come from (a file lane's offsets table).
    offsets: Option<Arc<AckedOffsets>>,
    pub(super) fields: Fields,
    /// The file (slot, generation) whose path `fields` holds.
    file: Option<(u32, u16)>,
}

impl SourceStage {
    pub fn new(pool: Option<Arc<BufferPool>>, offsets: Option<Arc<AckedOffsets>>) -> Self {
        Self {
            pool,
            encoding: None,
            offsets,
            fields: Fields::default(),
            file: None,
        }
    }

    /// Sets the fields for the records of `batch` that come first: its
    /// file's path, or nothing for a network batch (its runs set them).
    /// A path whose field would take more than half of an encode buffer
    /// of `capacity` bytes (thousands of bytes under a small --read-buf)
    /// is left out, so every record still fits one.
    pub(super) fn start(&mut self, batch: &Batch, capacity: usize) {
        let Some(mark) = batch.marks.as_slice().first() else {
            self.fields.clear();
            self.file = None;
            return;
        };
        if self.file == Some((mark.slot, mark.generation)) {
            return;
        }
        self.fields.clear();
        self.file = Some((mark.slot, mark.generation));
        if let Some(offsets) = &self.offsets {
            let fields = &mut self.fields;
            offsets.with_path(mark.slot as usize, mark.generation, |path| {
                fields.set_file_path(path);
            });
            if fields.bytes().len() > capacity / 2 {
                fields.clear();
            }
        }
    }
}

/// Walks a network batch's sender runs in step with its records.
pub(super) struct SenderCursor<'a> {
    runs: Option<&'a SenderRuns>,
    /// The index of the run after the current one.
    next_run: usize,
    /// Records left in the current run.
    left: u32,
}

impl CpuWorker {
    /// Converts a batch of raw or JSON lines (`source=true`) into records
    /// with source fields, written into encode buffers and sent on; the
    /// input batch goes back to the reader's pool.
    pub(super) fn add_source_fields(&mut self, batch: Batch) {
        let Some(mut stage) = self.source.take() else {
            debug_assert!(false, "called with a source stage");
            return;
        };
        let pool = Arc::clone(
            stage
                .pool
                .as_ref()
                .expect("raw and json lanes have encode buffers"),
        );
        let capacity = pool.buffer_bytes();
        stage.start(&batch, capacity);
        let mut encoding = stage.encoding.take();
        let bytes = batch.bytes();
        let mut cursor = SenderCursor::new(&batch);
        let (mut framed, mut invalid, mut truncated) = (0u64, 0u64, 0u64);
        let mut start = 0;
        for end in newlines(bytes) {
            let line = &bytes[start..end];
            let whole = &bytes[start..=end];
            start = end + 1;
            framed += 1;
            cursor.next_record(&mut stage.fields);
            let fields = &stage.fields;
            match self.format {
                Format::Json => {
                    let checker = self.json.as_mut().expect("json format has a checker");
                    match checker.object_keys(line, fields.keys()) {
                        // Fields that would not fit one buffer with the
                        // line (a path of thousands of bytes beside a line
                        // near --max-line) are left out.
                        JsonLine::Object { .. } if merged_object_bound(line, fields) > capacity => {
                            self.encode_line(&mut encoding, &pool, whole, &batch);
                        }
                        JsonLine::Object { members, present } => {
                            let out = self.encode_room(
                                &mut encoding,
                                &pool,
                                merged_object_bound(line, fields),
                                &batch,
                            );
                            out.len += write_merged_object(
                                &mut out.buf[out.len..],
                                line,
                                members,
                                fields,
                                present,
                            );
                            out.records += 1;
                        }
                        // Not an object: nothing to merge into; as it is.
                        JsonLine::Value => self.encode_line(&mut encoding, &pool, whole, &batch),
                        JsonLine::Invalid => {
                            invalid += 1;
                            if let Some(dead_letter) = &mut self.dead_letter {
                                dead_letter.write_line(whole);
                            }
                            if self.on_invalid == OnInvalid::Raw {
                                self.encode_line(&mut encoding, &pool, whole, &batch);
                            }
                        }
                    }
                }
                _ => {
                    let mut needed = raw_record_bound(line, fields);
                    let mut line = line;
                    if needed > capacity {
                        needed = raw_record_len(line, fields);
                        // A line whose JSON outgrows a whole buffer (heavy
                        // escaping near --max-line) is cut to fit, counted.
                        if needed > capacity {
                            truncated += 1;
                            while needed > capacity && !line.is_empty() {
                                line = &line[..line.len() / 2];
                                needed = raw_record_len(line, fields);
                            }
                        }
                    }
                    let out = self.encode_room(&mut encoding, &pool, needed, &batch);
                    out.len += write_raw_record(&mut out.buf[out.len..], line, fields);
                    out.records += 1;
                }
            }
        }
        self.send_encoded(encoding.take(), batch);
        stage.encoding = encoding;
        self.source = Some(stage);
        self.counters.records.fetch_add(framed, Ordering::Relaxed);
        self.count_invalid_json(invalid);
        if truncated > 0 {
            self.counters
                .truncated
                .fetch_add(truncated, Ordering::Relaxed);
        }
    }

    /// Copies a whole line (its newline included) into the encode buffer
    /// (cut to a buffer's size, which only a --max-line above --read-buf
    /// allows).
    fn encode_line(
        &mut self,
        encoding: &mut Option<Batch>,
        pool: &Arc<BufferPool>,
        line: &[u8],
        from: &Batch,
    ) {
        let out = self.encode_room(encoding, pool, line.len(), from);
        let take = line.len().min(out.room());
        out.buf[out.len..out.len + take].copy_from_slice(&line[..take]);
        out.buf[out.len + take - 1] = b'\n';
        out.len += take;
        out.records += 1;
    }
}

impl<'a> SenderCursor<'a> {
    /// Over the sender runs of `batch`, if its buffer has them.
    pub fn new(batch: &'a Batch) -> Self {
        Self {
            runs: batch.buf.senders(),
            next_run: 0,
            left: 0,
        }
    }

    /// Moves to the next record: a record that starts a run sets `fields`
    /// to its sender's (no fields for a run without an address).
    pub fn next_record(&mut self, fields: &mut Fields) {
        let Some(runs) = self.runs else {
            return;
        };
        while self.left == 0 {
            let Some((sender, records)) = runs.run(self.next_run) else {
                // More lines than noted records: cannot happen (the
                // batcher notes every record); written without fields.
                debug_assert!(false, "every record's sender is noted");
                fields.clear();
                return;
            };
            self.next_run += 1;
            match sender {
                Some(sender) => fields.set_sender(sender),
                None => fields.clear(),
            }
            self.left = records;
        }
        self.left -= 1;
    }
}

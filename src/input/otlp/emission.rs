//! Writing a decoded request into ring(4): [`super::Emission`] fills batch
//! buffers with JSON lines ([`super::encode`]), holds them while ring(4) is
//! full, and either commits the request (never refused after) or rejects
//! it with 429 while it may still be refused.

use super::encode;
use super::{Emission, OtlpReceiver, Outcome, Phase};
use crate::ack::Ack;
use crate::batch::Batch;
use crate::metrics::add_count;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

impl OtlpReceiver {
    /// Writes the emission's records into batches and pushes them, as far
    /// as buffers and ring(4) allow; answers the request when it is done.
    ///
    /// A request is all or nothing while it can be: its batches are
    /// written first and pushed together only if ring(4) has room for all
    /// of them; otherwise they go back to the pool and the request gets
    /// 429. Only a request with more batches than ring(4) holds is taken
    /// piecemeal, and only into an empty ring(4): it is then committed,
    /// and its remaining batches follow as room frees.
    pub(super) fn drive_emission(&mut self) {
        let Some(mut emission) = self.emission.take() else {
            return;
        };
        let outcome = loop {
            if emission.committed {
                self.push_held(&mut emission);
                if !emission.held.is_empty() {
                    break Outcome::Waiting;
                }
            } else if emission.held.len() >= self.io_to_cpu_capacity {
                // More batches than ring(4) holds: committed only into an
                // empty ring.
                if self.to_cpu.free_slots() < self.io_to_cpu_capacity {
                    break Outcome::Rejected;
                }
                emission.committed = true;
                self.commit(&emission);
                continue;
            }
            let Some(resource_logs) = emission.logs.get(emission.resource) else {
                // Every record is written: the last batch goes too.
                if let Some(batch) = emission.batch.take().filter(|batch| batch.len > 0) {
                    emission.held.push_back(batch);
                    continue;
                }
                if emission.committed {
                    break Outcome::Finished;
                }
                if emission.held.len() > self.to_cpu.free_slots() {
                    break Outcome::Rejected;
                }
                emission.committed = true;
                self.commit(&emission);
                continue;
            };
            let Some(scope_logs) = resource_logs.scope_logs.get(emission.scope) else {
                emission.resource += 1;
                emission.scope = 0;
                emission.record = 0;
                continue;
            };
            let Some(record) = scope_logs.log_records.get(emission.record) else {
                emission.scope += 1;
                emission.record = 0;
                continue;
            };
            let mut batch = match emission.batch.take() {
                Some(batch) => batch,
                None => match self.pool.take() {
                    Some(buf) => Batch::new(buf, 0),
                    // Every buffer is taken: a committed request waits
                    // for them; one not committed is refused unless ring(4)
                    // is empty (its buffers are downstream, coming back).
                    None if emission.committed => break Outcome::Waiting,
                    None if self.to_cpu.free_slots() < self.io_to_cpu_capacity => {
                        break Outcome::Rejected;
                    }
                    None => {
                        emission.committed = true;
                        self.commit(&emission);
                        continue;
                    }
                },
            };
            let context = encode::Context {
                resource: resource_logs.resource.as_ref(),
                scope: scope_logs.scope.as_ref(),
                client: emission.client,
            };
            // One record is one line of at most --max-line bytes plus its
            // newline (and never more than a batch holds).
            let end = batch.buf.len().min(batch.len + self.max_line_bytes + 1);
            let mut out = encode::Writer::new(&mut batch.buf[batch.len..end]);
            encode::write_record(&mut out, record, context);
            if out.overflow {
                if batch.len > 0 {
                    // Full: the record goes into the next batch.
                    emission.held.push_back(batch);
                    continue;
                }
                // Larger than a line may be: written cut down, counted.
                let mut out = encode::Writer::new(&mut batch.buf[..end]);
                encode::write_cut_record(&mut out, record, context, encode::CUT_FIELD_BYTES);
                if out.overflow {
                    // A short --max-line: without the short fields at all.
                    out = encode::Writer::new(&mut batch.buf[..end]);
                    encode::write_cut_record(&mut out, record, context, 0);
                }
                emission.truncated += 1;
                if out.overflow {
                    // Not even the cut record fits a line (a --max-line
                    // under about 300 bytes): the record is dropped,
                    // counted as truncated.
                    emission.record += 1;
                    emission.batch = Some(batch);
                    continue;
                }
                batch.len = out.len;
            } else {
                batch.len += out.len;
            }
            batch.records += 1;
            emission.record += 1;
            emission.batch = Some(batch);
        };
        match outcome {
            Outcome::Waiting => {
                self.emission = Some(emission);
                return;
            }
            Outcome::Rejected => {
                self.reject(emission);
                return;
            }
            Outcome::Finished => {}
        }
        add_count(&self.counters.truncated, emission.truncated);
        add_count(&self.otlp.values_too_deep, emission.values_too_deep);
        let slot = emission.slot as usize;
        self.spare_held = emission.held;
        let conn = &mut self.conns[slot];
        if conn.serial != emission.serial || conn.phase != Phase::Busy {
            return; // the client went away meanwhile
        }
        conn.emitting = false;
        match &emission.delivery {
            None => self.respond(slot, 200, "", false),
            // The emission lets go of its reference; if every batch is
            // already delivered, no token will come: answer now.
            Some(delivery) => {
                if delivery.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.respond(slot, 200, "", false);
                }
            }
        }
    }

    /// The request is taken: its bytes and cut records count from here.
    pub(super) fn commit(&mut self, emission: &Emission) {
        self.counters
            .bytes
            .fetch_add(emission.wire_bytes as u64, Ordering::Relaxed);
    }

    /// Refuses a request whose batches did not fit: they go back to the
    /// pool unsent, and the client gets 429.
    pub(super) fn reject(&mut self, mut emission: Emission) {
        emission.held.clear();
        emission.batch = None;
        self.spare_held = std::mem::take(&mut emission.held);
        let slot = emission.slot as usize;
        if self.conns[slot].serial == emission.serial && self.conns[slot].phase == Phase::Busy {
            self.conns[slot].emitting = false;
            self.respond(slot, 429, "pipeline full, retry later", false);
        }
    }

    /// Pushes held batches into ring(4) while it has room; with
    /// `delivered`, each carries the request's token first.
    pub(super) fn push_held(&mut self, emission: &mut Emission) {
        while self.to_cpu.has_room() {
            let Some(mut batch) = emission.held.pop_front() else {
                return;
            };
            let records = u64::from(batch.records);
            if let Some(delivery) = &emission.delivery {
                delivery.pending.fetch_add(1, Ordering::AcqRel);
                batch.ack = Some(Ack::Reply {
                    replies: Arc::clone(&self.replies),
                    request: Arc::clone(delivery),
                    remaining: AtomicU32::new(self.outputs),
                });
            }
            if let Err(batch) = self.to_cpu.push(batch) {
                debug_assert!(false, "has_room() said there is room");
                emission.held.push_front(batch);
                return;
            }
            self.otlp
                .records_accepted
                .fetch_add(records, Ordering::Relaxed);
        }
    }
}

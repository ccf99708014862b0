//! Unit tests of the CPU worker's routes: how a batch is split, and that
//! its acks (the file lane's ack log, an OTLP request's reply) stay exact.

use super::*;
use crate::ack::{Replies, RequestDelivery};
use crate::checkpoint::{AckedOffsets, Mark, Marks};
use crate::metrics::OutputCounters;
use crate::scan::syslog::SyslogParser;
use crate::transform::{Shape, Transformer};
use std::sync::atomic::AtomicU32;

const OUTPUTS: usize = 3;

/// A CPU worker over three outputs with routes, its ring(16)'s far end,
/// and a pool to make input batches from.
fn worker(acks: Option<(Arc<AckLog>, u32)>) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>) {
    let waker = Waker::for_test();
    let stage = TransformStage::new(
        Transformer::new(None, (0..OUTPUTS).map(|_| None).collect(), 1024),
        true,
        true,
        Shape::Raw,
        Some(BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap()),
        (0..OUTPUTS).map(|_| Arc::default()).collect(),
    );
    worker_with(stage, Format::Raw, waker, acks)
}

/// A CPU worker of `format` lines with `stage`, whose pools wake `waker`.
fn worker_with(
    stage: TransformStage,
    format: Format,
    waker: Arc<Waker>,
    acks: Option<(Arc<AckLog>, u32)>,
) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>) {
    let pool = BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap();
    let (mut worker, from_cpu) = CpuWorker::for_test(format, waker);
    worker.on_invalid = OnInvalid::Raw;
    worker.acks = acks;
    worker.all_outputs = (1 << OUTPUTS) - 1;
    worker.transform = Some(stage);
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

/// A file lane's CPU worker over three outputs with routes, as [`worker`]
/// gives it, with its ack log and the offsets the log acknowledges (one
/// file: slot 0, generation 1, from offset 0).
fn routed_file_worker() -> (
    CpuWorker,
    RingReceiver<Batch>,
    Arc<BufferPool>,
    Arc<AckLog>,
    Arc<AckedOffsets>,
) {
    let offsets = AckedOffsets::new(1);
    offsets.reset(0, 1, 0, 0);
    let log = AckLog::new(64, Arc::clone(&offsets), Waker::for_test());
    let (worker, from_cpu, pool) = worker(Some((Arc::clone(&log), OUTPUTS as u32)));
    (worker, from_cpu, pool, log, offsets)
}

/// A batch of the file of [`routed_file_worker`] whose last record ends at
/// offset `end`.
fn input_batch(pool: &Arc<BufferPool>, text: &[u8], end: u64) -> Batch {
    let marks = Marks::one(Mark {
        slot: 0,
        generation: 1,
        end,
    });
    batch(pool, text, marks)
}

/// The one batch of OTLP request `token`, answered through `replies`. The
/// request is still being emitted: it is pending until that ends (a
/// `fetch_sub` of its `pending`) and this batch is delivered.
fn request_batch(
    pool: &Arc<BufferPool>,
    text: &[u8],
    replies: &Arc<Replies>,
    token: u64,
) -> (Batch, Arc<RequestDelivery>) {
    let request = Arc::new(RequestDelivery {
        token,
        pending: AtomicU32::new(2),
    });
    let mut batch = batch(pool, text, Marks::default());
    batch.ack = Some(Ack::Reply {
        replies: Arc::clone(replies),
        request: Arc::clone(&request),
        remaining: AtomicU32::new(OUTPUTS as u32),
    });
    (batch, request)
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
    let (mut worker, mut from_cpu, pool, log, offsets) = routed_file_worker();
    // a: outputs 0 and 1; b: output 0; c: every output.
    send(
        &mut worker,
        input_batch(&pool, b"a\nb\nc\n", 6),
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
    let (mut worker, mut from_cpu, pool, log, offsets) = routed_file_worker();
    // Every record to every output: the batch goes whole, to all.
    send(&mut worker, input_batch(&pool, b"a\n", 2), &[0b111]);
    // Nothing goes anywhere: no part is sent, yet its offsets count.
    send(&mut worker, input_batch(&pool, b"b\nc\n", 6), &[0, 0]);
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
    let (input, request) = request_batch(&pool, b"a\nb\n", &replies, 7);
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
    let (input, request) = request_batch(&pool, b"a\n", &replies, 8);
    send(&mut worker, input, &[0]);
    assert!(from_cpu.pop().is_none());
    request.pending.fetch_sub(1, Ordering::AcqRel);
    assert_eq!(request.pending.load(Ordering::Acquire), 0);
}

/// Routing a batch (masks, copies into pooled buffers, the ack log) costs
/// no allocation once the mask list has grown: nothing per record.
#[test]
fn splitting_a_batch_by_routes_allocates_nothing_after_warm_up() {
    let (mut worker, mut from_cpu, pool, log, _) = routed_file_worker();
    let text = b"a\nb\nc\nd\n";
    let masks = [0b011, 0b001, 0b111, 0b100];
    let mut end = 0;
    for round in 0..3 {
        end += text.len() as u64;
        let batch = input_batch(&pool, text, end);
        let before = crate::test_alloc::allocations_on_this_thread();
        send(&mut worker, batch, &masks);
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

#[test]
fn projected_records_fill_encode_buffers_in_order_and_one_longer_than_a_buffer_is_cut() {
    // Encode buffers of 256 bytes: two ~120-byte records a part, written
    // straight into the buffer until one does not fit, then again into the
    // next; a record longer than a whole buffer is cut to 255 bytes + \n.
    let query = Arc::new(crate::transform::Query::compile("SELECT s, s AS t FROM logs").unwrap());
    let waker = Waker::for_test();
    let stage = TransformStage::new(
        Transformer::new(Some(query), vec![None], 1024),
        false,
        false,
        Shape::Raw,
        Some(BufferPool::new(16, 256, Arc::clone(&waker)).unwrap()),
        vec![Arc::default()],
    );
    let (mut worker, mut from_cpu, pool) = worker_with(stage, Format::Json, waker, None);
    worker.all_outputs = 1;
    let sizes = [50, 50, 50, 50, 50, 200, 50, 10];
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for (index, size) in sizes.into_iter().enumerate() {
        let s = format!("{index}{}", "x".repeat(size));
        input.extend_from_slice(format!("{{\"s\":\"{s}\",\"n\":{index}}}\n").as_bytes());
        let record = format!(r#"{{"s":"{s}","t":"{s}"}}"#);
        expected.extend_from_slice(&record.as_bytes()[..record.len().min(255)]);
        expected.push(b'\n');
    }
    worker.take_transformed(batch(&pool, &input, Marks::default()), Shape::Json);
    worker.flush_pending();
    let parts = parts(&mut from_cpu);
    assert!(parts.len() >= 4, "{} parts", parts.len());
    assert!(parts.iter().all(|(_, bytes, _)| bytes.len() <= 256));
    let written: Vec<u8> = parts
        .iter()
        .flat_map(|(_, bytes, _)| bytes.clone())
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(worker.counters.truncated.load(Ordering::Relaxed), 1);
    assert_eq!(
        worker.counters.kept.load(Ordering::Relaxed),
        sizes.len() as u64
    );
}

/// A CPU worker of `format` lines with source fields and no transform,
/// its ring(16)'s far end and a pool of input buffers with sender runs;
/// file batches are of slot 0, generation 1, at `/var/log/app "x".log`.
fn source_worker(format: Format) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>) {
    let waker = Waker::for_test();
    let offsets = AckedOffsets::new(1);
    offsets.reset(0, 1, 0, 0);
    offsets.set_path(0, 1, std::path::Path::new("/var/log/app \"x\".log"));
    let stage = TransformStage::new(
        Transformer::new(None, vec![None], 1024),
        true,
        false,
        Shape::Raw,
        None,
        vec![Arc::default()],
    );
    let (mut worker, from_cpu, _) = worker_with(stage, format, Arc::clone(&waker), None);
    worker.transform = None;
    worker.all_outputs = 1;
    worker.json = Some(json::JsonChecker::new(1024));
    let encode =
        (format != Format::Syslog).then(|| BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap());
    worker.source = Some(SourceStage::new(encode, Some(offsets)));
    if format == Format::Syslog {
        worker.syslog = Some(SyslogConverter {
            parser: SyslogParser::new(),
            pool: BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap(),
            encoding: None,
        });
    }
    let input = BufferPool::with_senders(8, 4096, 4, waker).unwrap();
    (worker, from_cpu, input)
}

/// A network batch of `lines`, each sent by the sender beside it.
fn sent_batch(pool: &Arc<BufferPool>, lines: &[(&str, &str)]) -> Batch {
    let mut buf = pool.take().unwrap();
    buf.senders_mut().unwrap().clear();
    let mut len = 0;
    for (sender, line) in lines {
        buf.senders_mut().unwrap().note(sender.parse().ok());
        buf[len..len + line.len()].copy_from_slice(line.as_bytes());
        len += line.len();
    }
    Batch::new(buf, len)
}

fn output(from_cpu: &mut RingReceiver<Batch>) -> String {
    let bytes: Vec<u8> = std::iter::from_fn(|| from_cpu.pop())
        .flat_map(|batch| batch.bytes().to_vec())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn raw_lines_of_many_senders_become_objects_with_each_ones_address() {
    let (mut worker, mut from_cpu, input) = source_worker(Format::Raw);
    let batch = sent_batch(
        &input,
        &[
            ("127.0.0.1:5000", "one\n"),
            ("127.0.0.1:5000", "two \"q\"\n"),
            ("[::1]:6000", "three\n"),
            ("not an address", "four\n"),
        ],
    );
    worker.take(batch);
    worker.flush_pending();
    assert_eq!(
        output(&mut from_cpu),
        concat!(
            "{\"body\":\"one\",\"client.address\":\"127.0.0.1\",\"client.port\":5000}\n",
            "{\"body\":\"two \\\"q\\\"\",\"client.address\":\"127.0.0.1\",\"client.port\":5000}\n",
            "{\"body\":\"three\",\"client.address\":\"::1\",\"client.port\":6000}\n",
            "{\"body\":\"four\"}\n",
        )
    );
    assert_eq!(worker.counters.records.load(Ordering::Relaxed), 4);
}

#[test]
fn json_objects_take_the_fields_they_lack_and_other_lines_pass_as_they_are() {
    let (mut worker, mut from_cpu, input) = source_worker(Format::Json);
    let batch = sent_batch(
        &input,
        &[
            ("127.0.0.1:7", "{\"a\":1}\n"),
            ("127.0.0.1:7", "{}\n"),
            (
                "127.0.0.1:7",
                "{\"client.port\":\"mine\",\"n\":{\"client.address\":2}}\n",
            ),
            ("127.0.0.1:7", "[1,2]\n"),
            ("127.0.0.1:7", "{\"broken\":\n"),
        ],
    );
    worker.take(batch);
    worker.flush_pending();
    assert_eq!(
        output(&mut from_cpu),
        concat!(
            "{\"a\":1,\"client.address\":\"127.0.0.1\",\"client.port\":7}\n",
            "{\"client.address\":\"127.0.0.1\",\"client.port\":7}\n",
            "{\"client.port\":\"mine\",\"n\":{\"client.address\":2},\"client.address\":\"127.0.0.1\"}\n",
            "[1,2]\n",
            "{\"broken\":\n",
        )
    );
    assert_eq!(worker.counters.invalid.load(Ordering::Relaxed), 1);
}

#[test]
fn file_records_get_the_path_of_their_batchs_file() {
    let (mut worker, mut from_cpu, _) = source_worker(Format::Syslog);
    // A file input's buffers have no sender runs.
    let input = BufferPool::new(1, 4096, Waker::for_test()).unwrap();
    let mut batch = batch(
        &input,
        b"<13>Jun 14 15:16:01 host app: hi\n",
        Marks::default(),
    );
    batch.marks = Marks::one(Mark {
        slot: 0,
        generation: 1,
        end: 34,
    });
    worker.take(batch);
    worker.flush_pending();
    let sent = output(&mut from_cpu);
    assert!(
        sent.ends_with(",\"message\":\"hi\",\"log.file.path\":\"/var/log/app \\\"x\\\".log\"}\n"),
        "{sent}"
    );
    let value: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(value["host"], "host");
}

/// Adding source fields costs no allocation once the fields' buffer has
/// its size: nothing per record, nothing per batch.
#[test]
fn adding_source_fields_allocates_nothing_after_warm_up() {
    for format in [Format::Raw, Format::Json, Format::Syslog] {
        let (mut worker, mut from_cpu, input) = source_worker(format);
        let lines = [
            ("127.0.0.1:1", "{\"a\":1}\n"),
            ("[::1]:2", "<13>Jun 14 15:16:01 host app: hi\n"),
            ("[::1]:2", "plain\n"),
        ];
        for round in 0..3 {
            let batch = sent_batch(&input, &lines);
            let before = crate::test_alloc::allocations_on_this_thread();
            worker.take(batch);
            worker.flush_pending();
            let allocations = crate::test_alloc::allocations_on_this_thread() - before;
            if round > 0 {
                assert_eq!(allocations, 0, "{format:?}, round {round}");
            }
            while from_cpu.pop().is_some() {}
        }
    }
}

/// A CPU worker of JSON lines with `query` and no routes, as a lane
/// builds it.
fn query_worker(query: &str) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>) {
    let query = Arc::new(crate::transform::Query::compile(query).unwrap());
    let waker = Waker::for_test();
    let keeps_lines = query.keeps_lines();
    let stage = TransformStage::new(
        Transformer::new(Some(query), vec![None], 1024),
        keeps_lines,
        false,
        Shape::Raw,
        None,
        vec![Arc::default()],
    );
    let (mut worker, from_cpu, pool) = worker_with(stage, Format::Json, waker, None);
    worker.all_outputs = 1;
    worker.on_invalid = OnInvalid::Drop;
    (worker, from_cpu, pool)
}

#[test]
fn select_star_passes_each_batch_on_unmoved_and_counts_its_records_kept() {
    // `SELECT * FROM logs` is the identity: the batch goes on in its own
    // buffer, bytes unmoved, as without a query; only an invalid line is
    // dropped (--on-invalid drop), as the JSON check drops it.
    let (mut worker, mut from_cpu, pool) = query_worker("SELECT * FROM logs");
    let lines = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
    let input = batch(&pool, lines, Marks::default());
    let at = input.buf.as_ptr();
    worker.take(input);
    worker.flush_pending();
    let sent = from_cpu.pop().expect("sent on");
    assert_eq!(sent.buf.as_ptr(), at);
    assert_eq!(sent.bytes(), lines);
    assert_eq!(sent.records, 3);
    assert_eq!(worker.counters.kept.load(Ordering::Relaxed), 3);
    assert_eq!(worker.counters.records.load(Ordering::Relaxed), 3);
    drop(sent);
    worker.take(batch(
        &pool,
        b"{\"a\":1}\n{\"a\":\n{\"a\":3}\n",
        Marks::default(),
    ));
    worker.flush_pending();
    let sent = from_cpu.pop().expect("sent on");
    assert_eq!(sent.bytes(), b"{\"a\":1}\n{\"a\":3}\n");
    assert_eq!(worker.counters.kept.load(Ordering::Relaxed), 5);
    assert_eq!(worker.counters.invalid.load(Ordering::Relaxed), 1);
}

#[test]
fn a_filter_moves_each_run_of_kept_lines_to_the_front_and_nothing_when_all_are_kept() {
    let (mut worker, mut from_cpu, pool) = query_worker("SELECT * FROM logs WHERE k");
    let all = b"{\"k\":true,\"n\":1}\n{\"k\":true,\"n\":2}\n";
    worker.take(batch(&pool, all, Marks::default()));
    worker.flush_pending();
    let sent = from_cpu.pop().expect("sent on");
    assert_eq!(sent.bytes(), all);
    drop(sent);
    let lines = [
        r#"{"k":false,"n":1}"#,
        r#"{"k":true,"n":2}"#,
        r#"{"k":true,"n":3}"#,
        r#"{"k":false,"n":4}"#,
        r#"{"k":true,"n":5}"#,
        r#"{"k":false,"n":6}"#,
    ];
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    worker.take(batch(&pool, text.as_bytes(), Marks::default()));
    worker.flush_pending();
    let sent = from_cpu.pop().expect("sent on");
    let expected: String = [1, 2, 4]
        .iter()
        .map(|&index| format!("{}\n", lines[index]))
        .collect();
    assert_eq!(sent.bytes(), expected.as_bytes());
    assert_eq!(sent.records, 3);
    assert_eq!(worker.counters.filtered.load(Ordering::Relaxed), 3);
}

/// Drives one CPU worker over the lines of the file named by
/// `RINGWAY_CPU_STAGE_FILE` (1 MiB batches, as the reader cuts them), with
/// the query in `RINGWAY_CPU_STAGE_SQL` (none when unset), and drops what
/// it sends on, all in this thread. Run under
/// `valgrind --tool=callgrind --toggle-collect='*CpuWorker*take*'` it
/// counts the CPU stage's instructions a line without the I/O threads
/// (which valgrind serialises). Prints the lines in and records out.
/// With `RINGWAY_CPU_STAGE_FORMAT=cri` the file is read as `format=cri`
/// with its pod fields from the path (`k8s=true`, the default; set
/// `RINGWAY_CPU_STAGE_K8S=false` to leave them out), with `raw-source` as
/// `format=raw,source=true` (each line a `{"body"}` record with its file's
/// path), as one file whose batches carry their marks, as the file reader
/// sends them.
/// Without `RINGWAY_CPU_STAGE_FILE` (as in CI) it is a check: 3,000 lines
/// (about 1.2 MB, two batches) of which every third is an error, through a
/// filter that keeps those.
#[test]
fn cpu_stage_over_a_file() {
    let by_hand = std::env::var("RINGWAY_CPU_STAGE_FILE").ok();
    let text = match &by_hand {
        Some(path) => std::fs::read(path).unwrap(),
        None => (0..3000)
            .map(|n| {
                let level = if n % 3 == 0 { "ERROR" } else { "INFO" };
                format!(
                    "{{\"n\":{n},\"level\":\"{level}\",\"msg\":\"{}\"}}\n",
                    "x".repeat(n % 700)
                )
            })
            .collect::<String>()
            .into_bytes(),
    };
    let sql = match &by_hand {
        Some(_) => std::env::var("RINGWAY_CPU_STAGE_SQL").ok(),
        None => Some("SELECT * FROM logs WHERE level = 'ERROR'".to_string()),
    };
    let query = sql.map(|sql| Arc::new(crate::transform::Query::compile(&sql).unwrap()));
    const BATCH_BYTES: usize = 1 << 20;
    let waker = Waker::for_test();
    let transform = query.map(|query| {
        let keeps_lines = query.keeps_lines();
        TransformStage::new(
            Transformer::new(Some(query), vec![None], BATCH_BYTES),
            keeps_lines,
            false,
            Shape::Raw,
            (!keeps_lines).then(|| BufferPool::new(6, BATCH_BYTES, Arc::clone(&waker)).unwrap()),
            vec![Arc::default()],
        )
    });
    let pool = BufferPool::new(4, BATCH_BYTES, Arc::clone(&waker)).unwrap();
    let format = match &by_hand {
        Some(_) => match std::env::var("RINGWAY_CPU_STAGE_FORMAT").as_deref() {
            Ok("cri") => Format::Cri,
            Ok("raw-source") => Format::Raw,
            _ => Format::Json,
        },
        None => Format::Json,
    };
    // A file's batches carry its mark, which names its path.
    let file = format != Format::Json;
    let (mut worker, mut from_cpu) = CpuWorker::for_test(format, Arc::clone(&waker));
    worker.json = Some(json::JsonChecker::new(BATCH_BYTES));
    let offsets = AckedOffsets::new(1);
    offsets.reset(0, 1, 0, 0);
    if let Some(path) = &by_hand {
        offsets.set_path(0, 1, std::path::Path::new(path));
    }
    if format == Format::Raw {
        let encode = BufferPool::new(6, BATCH_BYTES, Arc::clone(&waker)).unwrap();
        worker.source = Some(SourceStage::new(Some(encode), Some(Arc::clone(&offsets))));
    }
    if format == Format::Cri {
        let k8s = std::env::var("RINGWAY_CPU_STAGE_K8S").map_or(true, |k8s| k8s != "false");
        worker.container = Some(ContainerConverter {
            parser: LineParser::Cri,
            joiner: Joiner::new(
                BufferPool::new(6, BATCH_BYTES, Arc::clone(&waker)).unwrap(),
                Duration::from_secs(1),
                BATCH_BYTES,
                k8s,
                Some(Arc::clone(&offsets)),
                None,
                false,
            )
            .unwrap(),
        });
    }
    worker.batch_bytes = BATCH_BYTES;
    // As --max-line's default: no batch is longer.
    worker.max_line_bytes = BATCH_BYTES;
    worker.transform = transform;
    let (mut lines, mut records, mut start) = (0u64, 0u64, 0);
    let started = std::time::Instant::now();
    while start < text.len() {
        let mut end = (start + BATCH_BYTES).min(text.len());
        if end < text.len() {
            end = start + memchr::memrchr(b'\n', &text[start..end]).unwrap() + 1;
        }
        let chunk = &text[start..end];
        lines += frame::count_lines(chunk) as u64;
        let mut read = batch(&pool, chunk, Marks::default());
        if file {
            read.file_offset = start as u64;
            read.marks = Marks::one(Mark {
                slot: 0,
                generation: 1,
                end: end as u64,
            });
        }
        worker.take(read);
        worker.flush_pending();
        while let Some(sent) = from_cpu.pop() {
            records += u64::from(sent.records);
        }
        start = end;
    }
    // The time, natively, for comparing builds (min of several runs on a
    // busy machine); under callgrind it means nothing.
    println!(
        "lines {lines} records {records} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    if by_hand.is_none() {
        assert_eq!((lines, records), (3000, 1000));
    }
}

#[test]
fn the_first_long_line_is_found_where_a_line_by_line_search_finds_it() {
    // The first line longer than max_line, or bytes after the last
    // newline, by looking at every line.
    let by_lines = |bytes: &[u8], max_line: usize| {
        let mut start = 0;
        for (at, _) in bytes.iter().enumerate().filter(|(_, byte)| **byte == b'\n') {
            if at - start > max_line {
                return Some(start);
            }
            start = at + 1;
        }
        (start < bytes.len()).then_some(start)
    };
    let mut seed = 7u64;
    for _ in 0..3000 {
        let mut bytes = Vec::new();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let lines = (seed >> 60) as usize;
        for line in 0..lines {
            let len = ((seed >> (line * 3 % 48)) & 0x1f) as usize;
            bytes.extend(std::iter::repeat_n(b'a', len));
            bytes.push(b'\n');
        }
        if seed & 1 == 0 {
            bytes.extend_from_slice(b"tail");
        }
        for max_line in 0..34 {
            assert_eq!(
                first_long_line(&bytes, max_line),
                by_lines(&bytes, max_line),
                "{max_line} {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

//! Unit tests of the container join in a CPU worker: the records it sends,
//! the file marks it holds back while a message is pending, and that the
//! per-record path allocates nothing.

use super::*;
use crate::checkpoint::AckLog;
use crate::config::Format;
use crate::config::MultilineRule;
use crate::ring::{RingReceiver, Waker};

/// A `format=cri` CPU worker of one file (slot 0, generation 1, at
/// `path`), with its ack log, its ring(16)'s far end and a pool to make
/// input batches from.
fn cri_worker(
    path: &str,
    timeout: Duration,
) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
    worker_of(Format::Cri, None, path, timeout)
}

/// A `cri_worker` of [`POD`] whose file (slot 0) the kubelet renamed away:
/// the runtime goes on in a new file at the same path, opened in slot 1.
fn rotated_cri_worker() -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
    let (worker, from_cpu, pool, log) = cri_worker(POD, Duration::from_secs(60));
    let offsets = log.offsets();
    offsets.reset(1, 1, 0, 0);
    offsets.set_path(1, 1, std::path::Path::new(POD));
    (worker, from_cpu, pool, log)
}

/// A CPU worker of `format` lines joined by `rule` (`multiline=`), of a
/// file at `/app.log` (as `cri_worker`).
fn multiline_worker(
    format: Format,
    rule: MultilineRule,
    timeout: Duration,
) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
    worker_of(format, Some(rule), "/app.log", timeout)
}

/// A CPU worker of `format` with `multiline` (as `cri_worker`).
fn worker_of(
    format: Format,
    multiline: Option<MultilineRule>,
    path: &str,
    timeout: Duration,
) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
    let waker = Waker::for_test();
    let offsets = AckedOffsets::new(MAX_PENDING_RUNS);
    offsets.reset(0, 1, 0, 0);
    offsets.set_path(0, 1, std::path::Path::new(path));
    let log = AckLog::new(64, Arc::clone(&offsets), Waker::for_test());
    let encode = BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap();
    let (mut worker, from_cpu) = CpuWorker::for_test(format, Arc::clone(&waker));
    worker.acks = Some((Arc::clone(&log), 1));
    worker.container = Some(ContainerConverter {
        parser: match format {
            Format::Cri => LineParser::Cri,
            Format::Docker => LineParser::Docker(DockerParser::new(1024)),
            _ => LineParser::Raw,
        },
        joiner: Joiner::new(
            encode,
            timeout,
            1024,
            format.is_container(),
            Some(offsets),
            multiline.map(|rule| Multiline::new(&rule).unwrap()),
            false,
        )
        .unwrap(),
    });
    let input = BufferPool::new(8, 4096, waker).unwrap();
    (worker, from_cpu, input, log)
}

/// A read of the worker's file: `text` starting at `from`.
fn read(pool: &Arc<BufferPool>, text: &[u8], from: u64) -> Batch {
    let mut buf = pool.take().unwrap();
    buf[..text.len()].copy_from_slice(text);
    let mut batch = Batch::new(buf, text.len());
    batch.file_offset = from;
    batch.marks = Marks::one(Mark {
        slot: 0,
        generation: 1,
        end: from + text.len() as u64,
    });
    batch
}

/// Takes every batch sent: (its text, its mark's end), acking each.
fn sent(from_cpu: &mut RingReceiver<Batch>) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    while let Some(batch) = from_cpu.pop() {
        if let Some(ack) = &batch.ack {
            ack.delivered();
        }
        out.push((
            String::from_utf8(batch.bytes().to_vec()).unwrap(),
            batch.marks.as_slice().first().map(|mark| mark.end),
        ));
    }
    out
}

/// When the worker's oldest pending run is due to be sent.
fn pending_deadline(worker: &CpuWorker) -> Option<Instant> {
    worker.container.as_ref().unwrap().joiner.deadline()
}

const POD: &str = "/var/log/pods/ns_pod_uid/app/0.log";
const FIELDS: &str = r#","k8s.namespace.name":"ns","k8s.pod.name":"pod","k8s.pod.uid":"uid","k8s.container.name":"app","k8s.container.restart_count":0"#;

#[test]
fn marks_hold_at_the_first_part_of_a_pending_message() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker(POD, Duration::from_secs(60));
    let first = b"2026-12-02T04:09:29Z stdout F a\n2026-12-02T04:09:30Z stdout P b\n";
    worker.take(read(&pool, first, 0));
    let held = "2026-12-02T04:09:29Z stdout F a\n".len() as u64;
    assert_eq!(
        sent(&mut from_cpu),
        [(
            format!(
                "{{\"time\":\"2026-12-02T04:09:29Z\",\"stream\":\"stdout\",\"body\":\"a\"{FIELDS}}}\n"
            ),
            Some(held)
        )]
    );
    // A read with a stderr line only: the stdout run still holds the mark.
    let second = b"2026-12-02T04:09:31Z stderr F e\n";
    let end = (first.len() + second.len()) as u64;
    worker.take(read(&pool, second, first.len() as u64));
    assert_eq!(sent(&mut from_cpu)[0].1, Some(held));
    let third = b"2026-12-02T04:09:32Z stdout F c\n";
    worker.take(read(&pool, third, end));
    let total = end + third.len() as u64;
    assert_eq!(
        sent(&mut from_cpu),
        [(
            format!(
                "{{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"bc\"{FIELDS}}}\n"
            ),
            Some(total)
        )]
    );
}

#[test]
fn the_timeout_and_the_exit_send_pending_messages_with_their_marks() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::from_millis(1));
    let text = b"2026-12-02T04:09:30Z stdout P alone\n";
    worker.take(read(&pool, text, 0));
    assert_eq!(sent(&mut from_cpu), [(String::new(), Some(0))]);
    let deadline = pending_deadline(&worker);
    assert!(deadline.is_some());
    std::thread::sleep(Duration::from_millis(5));
    worker.flush_container_runs(false);
    assert_eq!(
        sent(&mut from_cpu),
        [(
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"alone\"}\n"
                .to_string(),
            Some(text.len() as u64)
        )]
    );
    assert!(pending_deadline(&worker).is_none());
    // At exit, whatever the timeout.
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::ZERO);
    worker.take(read(&pool, text, 0));
    assert!(pending_deadline(&worker).is_none());
    sent(&mut from_cpu);
    worker.flush_container_runs(true);
    assert_eq!(sent(&mut from_cpu).len(), 1);
}

/// A read of `text` from the file in `slot` (generation `generation`).
fn read_of(pool: &Arc<BufferPool>, text: &[u8], slot: u32, generation: u16) -> Batch {
    let mut batch = read(pool, text, 0);
    batch.marks = Marks::one(Mark {
        slot,
        generation,
        end: text.len() as u64,
    });
    batch
}

/// The records among what was sent (empty batches carry marks only).
fn records(from_cpu: &mut RingReceiver<Batch>) -> Vec<String> {
    sent(from_cpu)
        .into_iter()
        .flat_map(|(text, _)| text.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn more_pending_messages_than_runs_send_the_oldest_and_a_new_file_ends_the_old_ones() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::from_secs(60));
    let text = b"2026-12-02T04:09:30Z stdout P out\n2026-12-02T04:09:30Z stderr P err\n";
    // Two runs a file: the ninth file's take the two oldest runs' places.
    let files = MAX_PENDING_RUNS as u32 / 2 + 1;
    let mut early = Vec::new();
    for slot in 0..files {
        worker.take(read_of(&pool, text, slot, 1));
        early.extend(records(&mut from_cpu));
    }
    assert_eq!(
        early,
        [
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"out\"}",
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stderr\",\"body\":\"err\"}",
        ]
    );
    // Slot 1 holds another file now: its old runs go, then its line.
    worker.take(read_of(&pool, b"2026-12-02T04:09:31Z stdout F new\n", 1, 2));
    let sent = records(&mut from_cpu);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].contains("\"body\":\"new\""));
}

/// Converts `text` as four reads in a row, and checks that from the
/// second on converting allocates nothing; `check` sees each read's
/// records.
fn assert_no_allocation_after_warm_up(
    worker: &mut CpuWorker,
    from_cpu: &mut RingReceiver<Batch>,
    pool: &Arc<BufferPool>,
    text: &[u8],
    mut check: impl FnMut(Vec<String>),
) {
    let mut from = 0;
    for round in 0..4 {
        let batch = read(pool, text, from);
        from += text.len() as u64;
        let before = crate::test_alloc::allocations_on_this_thread();
        worker.take(batch);
        let allocations = crate::test_alloc::allocations_on_this_thread() - before;
        if round > 0 {
            assert_eq!(allocations, 0, "round {round}");
        }
        check(records(from_cpu));
    }
}

#[test]
fn joining_allocates_nothing_after_warm_up() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker(POD, Duration::from_secs(60));
    let text = b"2026-12-02T04:09:30Z stdout P one \n2026-12-02T04:09:30Z stderr F err\n2026-12-02T04:09:30Z stdout P two \n2026-12-02T04:09:30Z stdout F:x three\nnot cri\n";
    assert_no_allocation_after_warm_up(&mut worker, &mut from_cpu, &pool, text, |records| {
        assert_eq!(records.len(), 2);
        assert!(records[1].contains("\"body\":\"one two three\""));
    });
    assert_eq!(worker.counters.invalid.load(Ordering::Relaxed), 4);
    assert_eq!(worker.counters.records.load(Ordering::Relaxed), 20);
}

/// `{"body":…}` of a plain line's record.
fn plain(body: &str) -> String {
    format!("{{\"body\":{}}}\n", serde_json::to_string(body).unwrap())
}

#[test]
fn raw_multiline_records_hold_the_mark_at_their_first_line() {
    let (mut worker, mut from_cpu, pool, _log) = multiline_worker(
        Format::Raw,
        MultilineRule::parse(r"start:^\d").unwrap(),
        Duration::from_secs(60),
    );
    let first = b"1 a\n  b\n2 c\n  d\n";
    worker.take(read(&pool, first, 0));
    // `2 c` started a record: `1 a` is sent; the mark waits at `2 c`.
    assert_eq!(
        sent(&mut from_cpu),
        [(plain("1 a\n  b"), Some("1 a\n  b\n".len() as u64))]
    );
    let second = b"  e\n3 f\n";
    worker.take(read(&pool, second, first.len() as u64));
    let held = (first.len() + "  e\n".len()) as u64;
    assert_eq!(sent(&mut from_cpu), [(plain("2 c\n  d\n  e"), Some(held))]);
    worker.flush_container_runs(true);
    assert_eq!(
        sent(&mut from_cpu),
        [(plain("3 f"), Some((first.len() + second.len()) as u64))]
    );
    assert_eq!(worker.counters.records.load(Ordering::Relaxed), 6);
}

#[test]
fn cri_multiline_joins_messages_split_in_parts_and_cuts_at_max_line() {
    let (mut worker, mut from_cpu, pool, _log) =
        multiline_worker(Format::Cri, MultilineRule::Python, Duration::from_secs(60));
    // A traceback on stderr, one of its lines split in two parts, with a
    // stdout line in between; the exception line ends the record at once.
    let text = "\
2026-12-02T04:09:30Z stderr F Traceback (most recent call last):
2026-12-02T04:09:30Z stderr P   File \"/app/main.py\",
2026-12-02T04:09:30Z stdout F hello
2026-12-02T04:09:30Z stderr F  line 1, in <module>
2026-12-02T04:09:30Z stderr F     main()
2026-12-02T04:09:30Z stderr F KeyError: 'x'
";
    worker.take(read(&pool, text.as_bytes(), 0));
    assert_eq!(
        records(&mut from_cpu),
        [
            r#"{"time":"2026-12-02T04:09:30Z","stream":"stdout","body":"hello"}"#,
            r#"{"time":"2026-12-02T04:09:30Z","stream":"stderr","body":"Traceback (most recent call last):\n  File \"/app/main.py\", line 1, in <module>\n    main()\nKeyError: 'x'"}"#,
        ]
    );
    // A record past --max-line (1024 here) is cut there and counted; the
    // next record is whole.
    let mut long =
        String::from("2026-12-02T04:09:31Z stderr F Traceback (most recent call last):\n");
    for _ in 0..20 {
        long.push_str(
            "2026-12-02T04:09:31Z stderr F   File \"/app/a_rather_long_module_name.py\", line 1\n",
        );
        long.push_str("2026-12-02T04:09:31Z stderr F     call()\n");
    }
    long.push_str("2026-12-02T04:09:31Z stderr F ValueError: deep\n");
    long.push_str("2026-12-02T04:09:32Z stderr F after\n");
    worker.take(read(&pool, long.as_bytes(), text.len() as u64));
    let sent = records(&mut from_cpu);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let cut: serde_json::Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(cut["body"].as_str().unwrap().len(), 1024);
    assert!(sent[1].ends_with(r#""body":"after"}"#));
    assert_eq!(worker.counters.truncated.load(Ordering::Relaxed), 1);
}

#[test]
fn a_pending_multiline_record_goes_on_the_timeout() {
    let (mut worker, mut from_cpu, pool, _log) =
        multiline_worker(Format::Raw, MultilineRule::Java, Duration::from_millis(1));
    let text = b"java.lang.IllegalStateException: boom\n\tat A.b(A.java:1)\n";
    worker.take(read(&pool, text, 0));
    assert_eq!(sent(&mut from_cpu), [(String::new(), Some(0))]);
    std::thread::sleep(Duration::from_millis(5));
    worker.flush_container_runs(false);
    assert_eq!(
        sent(&mut from_cpu),
        [(
            plain("java.lang.IllegalStateException: boom\n\tat A.b(A.java:1)"),
            Some(text.len() as u64)
        )]
    );
}

#[test]
fn multiline_joining_allocates_nothing_after_warm_up() {
    let (mut worker, mut from_cpu, pool, _log) =
        multiline_worker(Format::Raw, MultilineRule::Java, Duration::from_secs(60));
    let text = b"INFO start\njava.lang.Error: x\n\tat A.b(A.java:1)\nCaused by: java.io.IOException\n\t... 1 more\nINFO end\n";
    assert_no_allocation_after_warm_up(&mut worker, &mut from_cpu, &pool, text, |sent| {
        // `INFO end`, which no rule continues, ends the trace's record.
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent[1].matches("\\n").count(), 3, "{sent:?}");
    });
}

#[test]
fn a_partial_run_continues_in_the_new_file_after_a_rotation() {
    let (mut worker, mut from_cpu, pool, _log) = rotated_cri_worker();
    let old = b"2026-12-02T04:09:29Z stdout F a\n2026-12-02T04:09:30Z stdout P b1 \n";
    worker.take(read(&pool, old, 0));
    let held = "2026-12-02T04:09:29Z stdout F a\n".len() as u64;
    assert_eq!(sent(&mut from_cpu)[0].1, Some(held));
    let new = b"2026-12-02T04:09:31Z stdout P b2 \n2026-12-02T04:09:31Z stdout F b3\n";
    let mut batch = read_of(&pool, new, 1, 1);
    batch.file_offset = 0;
    worker.take(batch);
    let mut marks = Vec::new();
    let mut texts = String::new();
    while let Some(batch) = from_cpu.pop() {
        texts.push_str(std::str::from_utf8(batch.bytes()).unwrap());
        marks.extend(batch.marks.as_slice().iter().map(|m| (m.slot, m.end)));
    }
    assert_eq!(
        texts,
        format!(
            "{{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"b1 b2 b3\"{FIELDS}}}\n"
        )
    );
    // Both files' marks move past the joined message: the old one to its
    // end, the new one to its read end.
    assert_eq!(marks, [(0, old.len() as u64), (1, new.len() as u64)]);
}

#[test]
fn a_rotated_file_holds_its_mark_while_the_new_file_continues_the_run() {
    let (mut worker, mut from_cpu, pool, log) = rotated_cri_worker();
    let old = b"2026-12-02T04:09:30Z stdout P b1 \n";
    worker.take(read(&pool, old, 0));
    let new = b"2026-12-02T04:09:31Z stdout P b2 \n";
    worker.take(read_of(&pool, new, 1, 1));
    // Still pending: each file's mark holds at the run's line in it.
    let marks: Vec<_> = sent(&mut from_cpu)
        .into_iter()
        .map(|(_, end)| end)
        .collect();
    assert_eq!(marks, [Some(0), Some(0)]);
    let guard = worker.container.as_ref().unwrap();
    assert_eq!(guard.joiner.floor(0, 1, old.len() as u64), 0);
    assert_eq!(guard.joiner.floor(1, 1, new.len() as u64), 0);
    // The old file gets another line of the other stream: still held.
    worker.take(read(
        &pool,
        b"2026-12-02T04:09:32Z stderr F e\n",
        old.len() as u64,
    ));
    assert_eq!(sent(&mut from_cpu).last().unwrap().1, Some(0));
    // A file at another path never continues it.
    let offsets = log.offsets();
    offsets.reset(2, 1, 0, 0);
    offsets.set_path(
        2,
        1,
        std::path::Path::new("/var/log/pods/ns_pod_uid/app/1.log"),
    );
    worker.take(read_of(
        &pool,
        b"2026-12-02T04:09:33Z stdout F other\n",
        2,
        1,
    ));
    assert!(sent(&mut from_cpu)[0].0.contains("\"body\":\"other\""));
    worker.flush_container_runs(true);
    let sent = sent(&mut from_cpu);
    assert!(sent[0].0.contains("\"body\":\"b1 b2 \""), "{sent:?}");
}

#[test]
fn merging_json_messages_allocates_nothing_after_warm_up() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/app.log", Duration::from_secs(60));
    worker.container.as_mut().unwrap().joiner.objects =
        Some(crate::scan::cri::ObjectMessages::new(1024));
    let text = b"2026-12-02T04:09:30Z stdout P {\"a\":\n2026-12-02T04:09:30Z stdout F 1}\n2026-12-02T04:09:30Z stderr F {not json\n";
    assert_no_allocation_after_warm_up(&mut worker, &mut from_cpu, &pool, text, |records| {
        assert_eq!(
            records,
            [
                r#"{"time":"2026-12-02T04:09:30Z","stream":"stdout","a":1}"#,
                r#"{"time":"2026-12-02T04:09:30Z","stream":"stderr","body":"{not json"}"#,
            ]
        );
    });
}

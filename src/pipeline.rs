//! Builds the data path of DESIGN §1 from [`Settings`], runs it, and
//! supervises it: stats lines, signals, the drain at exit and the summary.
//!
//! Per input: an I/O thread ([`FileReader`]) and a CPU thread
//! ([`CpuWorker`]), pinned per `--cpus`, joined by ring(4); each CPU worker
//! feeds its own ring(16) to the one [`Dispatcher`], which feeds each output
//! worker's ring(1) slot. The main thread only supervises.

use crate::ack::Replies;
use crate::checkpoint::{AckLog, AckedOffsets, Checkpointer, InputState};
use crate::config::{Format, InputKind, OnInvalid, Settings};
use crate::input::file::{FileReader, FileReaderConfig, FileTracking};
use crate::input::otlp::{OtlpReceiver, ReceiverParts};
use crate::input::stdin::{StdinParts, StdinReader};
use crate::input::tcp::{TcpParts, TcpReader};
use crate::input::udp::UdpReader;
use crate::metrics::{Health, Held, InputCounters, LatencyHistogram, OutputCounters, Registry};
use crate::metrics::{OtlpCounters, TcpCounters, UdpInputStats};
use crate::metrics::{RingGauges, StatsReporter};
use crate::output::pool::{CommitOrder, Dispatcher, OutputPool, OutputWorker};
use crate::output::sink::Sink;
use crate::pool::BufferPool;
use crate::ring::{Waker, ring};
use crate::scan::SyslogConverter;
use crate::scan::syslog::SyslogParser;
use crate::scan::{CpuWorker, DeadLetter, json::JsonChecker};
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A second SIGINT/SIGTERM within this time of the first is the same stop
/// request delivered twice (`timeout` and some supervisors signal the
/// process and then its group at once), not a request to skip the drain.
/// Far shorter than a person's quickest double Ctrl-C (about 100 ms apart),
/// which must exit at once.
const REPEAT_SIGNAL_GRACE: Duration = Duration::from_millis(30);

/// Submission queue entries of an OTLP or TCP input's ring at least:
/// every connection keeps a receive posted.
const CONNECTION_URING_DEPTH: u32 = 256;

/// A stage thread to start: its name, the core to pin it to, its work.
type StageThread = (String, Option<usize>, Box<dyn FnOnce() + Send>);

/// Decrements the live-thread count and wakes the supervisor when a stage
/// thread ends, however it ends.
struct AliveGuard {
    alive: Arc<AtomicUsize>,
    /// This thread's entry in `/healthz`'s list of running stage threads.
    running: Arc<AtomicBool>,
    supervisor: Thread,
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
        self.alive.fetch_sub(1, Ordering::AcqRel);
        self.supervisor.unpark();
    }
}

struct Spawner {
    alive: Arc<AtomicUsize>,
    supervisor: Thread,
    online_cores: Vec<usize>,
}

impl Spawner {
    fn spawn(
        &self,
        name: String,
        core: Option<usize>,
        running: Arc<AtomicBool>,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), String> {
        self.alive.fetch_add(1, Ordering::AcqRel);
        let guard = AliveGuard {
            alive: Arc::clone(&self.alive),
            running,
            supervisor: self.supervisor.clone(),
        };
        let pin = core.filter(|core| {
            let exists = self.online_cores.contains(core);
            if !exists {
                eprintln!(
                    "ringway: warning: CPU {core} does not exist; thread {name} is not pinned"
                );
            }
            exists
        });
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _guard = guard;
                if let Some(id) = pin
                    && !core_affinity::set_for_current(core_affinity::CoreId { id })
                {
                    eprintln!("ringway: warning: pinning to CPU {id} failed; running unpinned");
                }
                work();
            })
            .map(|_| ())
            .map_err(|error| format!("cannot start thread {name}: {error}"))
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every
/// thread it spawns); a dedicated thread takes them with `sigwait`.
pub(crate) fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only read and write `set`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn spawn_signal_thread(
    set: libc::sigset_t,
    shutdown: Arc<AtomicBool>,
    wake_on_shutdown: Vec<Arc<Waker>>,
    supervisor: Thread,
) {
    let spawned = thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: `set` holds SIGINT, SIGTERM and SIGHUP, blocked in every thread.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    continue;
                }
                // SIGHUP (logrotate, `systemctl reload`): reopen file outputs.
                if signal == libc::SIGHUP {
                    crate::output::sink::request_reopen();
                    eprintln!("ringway: SIGHUP received; reopening file outputs before their next write");
                    continue;
                }
                // One stop request often arrives twice at once (sent to the
                // process and to its group, as `timeout` does): a signal
                // more than REPEAT_SIGNAL_GRACE after the first means "exit
                // now".
                if let Some(first) = first {
                    if first.elapsed() < REPEAT_SIGNAL_GRACE {
                        continue;
                    }
                    eprintln!("ringway: second signal; exiting now without draining");
                    std::process::exit(130);
                }
                first = Some(Instant::now());
                eprintln!("ringway: signal {signal} received; stopping inputs and draining (send again to exit at once)");
                shutdown.store(true, Ordering::SeqCst);
                for waker in &wake_on_shutdown {
                    waker.wake_now();
                }
                supervisor.unpark();
            }
        });
    if let Err(error) = spawned {
        eprintln!(
            "ringway: warning: no signal thread, SIGINT/SIGTERM will not drain; error = {error}"
        );
    }
}

/// Runs the pipeline to its end; returns the process exit code.
pub(crate) fn run(settings: Settings) -> i32 {
    if let Err(message) = crate::uring::probe_kernel() {
        eprintln!("ringway: error: {message}");
        return 1;
    }
    let started = Instant::now();
    let signal_set = block_termination_signals();
    let shutdown = Arc::new(AtomicBool::new(false));
    let alive = Arc::new(AtomicUsize::new(0));
    let file_readers_done = Arc::new(AtomicUsize::new(0));
    let network_readers_done = Arc::new(AtomicUsize::new(0));
    let supervisor = thread::current();
    let online_cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    let cpus = settings
        .cpus
        .clone()
        .unwrap_or_else(|| online_cores.clone());
    let spawner = Spawner {
        alive: Arc::clone(&alive),
        supervisor: supervisor.clone(),
        online_cores,
    };
    let gauges = RingGauges::default();
    let latency = Arc::new(LatencyHistogram::default());
    // Bound before anything starts, so a taken port fails the start.
    let metrics_listener = match settings.metrics_address.map(crate::metrics_server::bind) {
        None => None,
        Some(Ok((listener, bound))) => {
            eprintln!("ringway: metrics listening on {bound}");
            Some(listener)
        }
        Some(Err(error)) => {
            eprintln!(
                "ringway: error: --metrics {}: cannot listen; error = {error}",
                settings.metrics_address.expect("matched Some")
            );
            return 1;
        }
    };
    let dispatcher_waker = Waker::for_thread();
    let buffers_per_input = settings.buffers_per_input();
    let buffer_bytes = settings.buffer_bytes();

    let mut checkpoints = None;
    let mut loaded = Default::default();
    // A file input's checkpoints are saved under its path pattern, so an
    // edit of its other keys keeps them.
    let checkpoint_keys = crate::checkpoint::input_keys(&settings.inputs);
    if let Some(dir) = &settings.data_dir {
        let file_inputs: Vec<_> = checkpoint_keys.iter().flatten().cloned().collect();
        match Checkpointer::open(dir, &file_inputs) {
            Ok((checkpointer, saved)) => {
                checkpoints = Some(checkpointer);
                loaded = saved;
            }
            Err(message) => {
                eprintln!("ringway: error: {message}");
                return 1;
            }
        }
    }
    let mut file_offsets = Vec::new();
    let mut input_counters = Vec::new();
    let mut input_udp_stats = Vec::new();
    let mut input_otlp = Vec::new();
    let mut input_tcp = Vec::new();
    let mut io_wakers = Vec::new();
    // Encode buffers (format=syslog): what can be in flight past the CPU
    // worker, plus the one being filled.
    let encode_buffers = settings.pipeline_ring_capacity
        + 2
        + settings.output_workers
            * (settings.worker_slot_capacity + 1)
            * settings.outputs.len().max(1);
    let mut file_readers = 0usize;
    let mut to_dispatcher = Vec::new();
    let mut threads: Vec<StageThread> = Vec::new();
    // Each input has one lane (an I/O worker and a CPU worker joined by
    // ring(4)); a UDP input has one per socket.
    let mut lane_count = 0usize;
    let mut checkpoint_keys = checkpoint_keys.into_iter();
    for input in &settings.inputs {
        let checkpoint_key = checkpoint_keys.next().flatten();
        let counters = Arc::new(InputCounters::default());
        input_counters.push(Arc::clone(&counters));
        let mut udp_stats = None;
        let mut otlp_counters = None;
        let mut tcp_counters = None;
        let offsets = input
            .file_pattern()
            .map(|_| AckedOffsets::new(settings.max_open_files));
        file_offsets.push(offsets.clone());
        let lanes = match &input.kind {
            InputKind::File { .. } => 1,
            InputKind::Udp { sockets, .. } => {
                udp_stats = Some(UdpInputStats::default());
                *sockets
            }
            InputKind::Otlp { .. } | InputKind::Tcp { .. } | InputKind::Stdin => 1,
        };
        // Where a UDP input's first socket bound, once it has.
        let mut udp_bound: Option<std::net::SocketAddr> = None;
        for lane in 0..lanes {
            let fail = |what: &str, error: &dyn std::fmt::Display| {
                eprintln!("ringway: error: input '{}': {what}: {error}", input.name);
                1
            };
            let wake_fd = match crate::uring::eventfd() {
                Ok(fd) => fd,
                Err(error) => return fail("cannot create an eventfd", &error),
            };
            // Many connections each keep a receive posted on TCP and OTLP
            // inputs' rings.
            let depth = match input.kind {
                InputKind::Otlp { .. } | InputKind::Tcp { .. } => {
                    settings.uring_depth.max(CONNECTION_URING_DEPTH)
                }
                _ => settings.uring_depth,
            };
            // UDP receives one completion per datagram: its ring defers the
            // kernel's receive work to coalesced waits (see build_deferred_ring).
            let built = if matches!(input.kind, InputKind::Udp { .. }) {
                crate::uring::build_deferred_ring(depth, settings.sqpoll)
            } else {
                crate::uring::build_ring(depth, settings.sqpoll).map(|ring| (ring, false))
            };
            let (uring, deferred) = match built {
                Ok(built) => built,
                Err(error) => return fail("cannot set up io_uring", &error),
            };
            let io_waker = Waker::for_eventfd(wake_fd);
            io_wakers.push(Arc::clone(&io_waker));
            let cpu_waker = Waker::for_thread();
            let pool = match BufferPool::new(buffers_per_input, buffer_bytes, Arc::clone(&io_waker))
            {
                Ok(pool) => pool,
                Err(error) => return fail("cannot map its buffers", &error),
            };
            let (to_cpu, from_reader) = ring(
                settings.io_ring_capacity,
                Arc::clone(&io_waker),
                Arc::clone(&cpu_waker),
                Arc::clone(&gauges.io_to_cpu),
            );
            let (to_dispatch, from_cpu) = ring(
                settings.pipeline_ring_capacity,
                Arc::clone(&cpu_waker),
                Arc::clone(&dispatcher_waker),
                Arc::clone(&gauges.cpu_to_dispatch),
            );
            to_dispatcher.push(from_cpu);
            let dead_letter = match &settings.dead_letter {
                Some(path)
                    if input.format == Format::Json
                        && settings.on_invalid == OnInvalid::DeadLetter =>
                {
                    match DeadLetter::open(path) {
                        Ok(dead_letter) => Some(dead_letter),
                        Err(error) => return fail("cannot open --dead-letter", &error),
                    }
                }
                _ => None,
            };
            let mut acks = None;
            let reader: Box<dyn FnOnce() + Send> = match &input.kind {
                InputKind::File { pattern } => {
                    file_readers += 1;
                    let offsets = offsets.clone().expect("set for file inputs");
                    let state = checkpoints.as_mut().map(|checkpointer: &mut Checkpointer| {
                        let key = checkpoint_key.as_ref().expect("file inputs have a key");
                        let state = InputState::new(key.key.clone(), Arc::clone(&offsets));
                        checkpointer.add_input(Arc::clone(&state));
                        state
                    });
                    // Entries in flight past the CPU worker are bounded by the
                    // buffers that carry them; twice that leaves room for acks
                    // that arrive out of order.
                    let log_capacity = 2 * (buffers_per_input + encode_buffers);
                    acks = Some((
                        AckLog::new(log_capacity, Arc::clone(&offsets), Arc::clone(&cpu_waker)),
                        settings.outputs.len() as u32,
                    ));
                    let tracking = FileTracking {
                        offsets,
                        state,
                        saved: checkpoint_key
                            .as_ref()
                            .and_then(|key| loaded.remove(&key.key))
                            .unwrap_or_default(),
                    };
                    let reader = FileReader::new(
                        FileReaderConfig {
                            pattern: pattern.clone(),
                            from: input.from,
                            exit_on_eof: settings.exit_on_eof,
                            max_line_bytes: settings.max_line_bytes,
                            max_open_files: settings.max_open_files,
                            written: written_files(&settings),
                        },
                        uring,
                        pool,
                        to_cpu,
                        io_waker,
                        Arc::clone(&counters),
                        Arc::clone(&shutdown),
                        Arc::clone(&file_readers_done),
                        tracking,
                    );
                    Box::new(move || reader.run())
                }
                InputKind::Udp {
                    address,
                    rcvbuf_bytes,
                    sockets,
                } => {
                    // Every socket of the input binds where the first one
                    // did: with port 0, the port the kernel picked for it.
                    let target = udp_bound.unwrap_or(*address);
                    let (socket, stats, bound) =
                        match crate::input::udp::open_socket(target, *rcvbuf_bytes, *sockets > 1) {
                            Ok(opened) => opened,
                            Err(error) => return fail("cannot open its socket", &error),
                        };
                    if udp_bound.is_none() {
                        crate::input::net::announce(&input.name, bound);
                        udp_bound = Some(bound);
                    }
                    let rxq_overflow = Arc::new(AtomicU64::new(0));
                    let udp = udp_stats.as_mut().expect("set for UDP inputs");
                    udp.sockets.push(stats);
                    udp.rxq_overflow.push(Arc::clone(&rxq_overflow));
                    let reader = match UdpReader::new(
                        (uring, deferred),
                        socket,
                        settings.udp_max_datagram_bytes,
                        pool,
                        to_cpu,
                        io_waker,
                        Arc::clone(&counters),
                        rxq_overflow,
                        Arc::clone(&shutdown),
                        Arc::clone(&network_readers_done),
                        settings.batch_linger,
                    ) {
                        Ok(reader) => reader,
                        Err(error) => return fail("cannot set up receiving", &error),
                    };
                    Box::new(move || reader.run())
                }
                InputKind::Otlp { address } => {
                    let listener = match crate::input::net::listen(&input.name, *address) {
                        Ok(listener) => listener,
                        Err(error) => return fail("cannot open its socket", &error),
                    };
                    let counters_otlp = Arc::new(OtlpCounters::default());
                    otlp_counters = Some(Arc::clone(&counters_otlp));
                    let receiver = match OtlpReceiver::new(ReceiverParts {
                        ring: uring,
                        listener,
                        settings: settings.otlp,
                        max_line_bytes: settings.max_line_bytes,
                        io_ring_capacity: settings.io_ring_capacity,
                        replies: Replies::new(
                            buffers_per_input + settings.otlp.max_connections + 64,
                            Arc::clone(&io_waker),
                        ),
                        pool,
                        to_cpu,
                        waker: io_waker,
                        counters: Arc::clone(&counters),
                        otlp: counters_otlp,
                        outputs: settings.outputs.len() as u32,
                        shutdown: Arc::clone(&shutdown),
                        readers_done: Arc::clone(&network_readers_done),
                    }) {
                        Ok(receiver) => receiver,
                        Err(error) => return fail("cannot set up the receiver", &error),
                    };
                    Box::new(move || receiver.run())
                }
                InputKind::Stdin => {
                    // Counted with the file readers: --exit-on-eof waits
                    // for standard input's EOF too.
                    file_readers += 1;
                    if let Err(error) = StdinReader::check_descriptor() {
                        return fail("cannot read standard input", &error);
                    }
                    let reader = StdinReader::new(StdinParts {
                        ring: uring,
                        pool,
                        to_cpu,
                        waker: io_waker,
                        counters: Arc::clone(&counters),
                        shutdown: Arc::clone(&shutdown),
                        readers_done: Arc::clone(&file_readers_done),
                        max_line_bytes: settings.max_line_bytes,
                    });
                    Box::new(move || reader.run())
                }
                InputKind::Tcp { address } => {
                    let listener = match crate::input::net::listen(&input.name, *address) {
                        Ok(listener) => listener,
                        Err(error) => return fail("cannot open its socket", &error),
                    };
                    let counters_tcp = Arc::new(TcpCounters::default());
                    tcp_counters = Some(Arc::clone(&counters_tcp));
                    let reader = match TcpReader::new(TcpParts {
                        ring: uring,
                        listener,
                        max_connections: settings.tcp_max_connections,
                        idle_timeout: settings.tcp_idle_timeout,
                        max_line_bytes: settings.max_line_bytes,
                        linger: settings.batch_linger,
                        pool,
                        to_cpu,
                        waker: io_waker,
                        counters: Arc::clone(&counters),
                        tcp: counters_tcp,
                        shutdown: Arc::clone(&shutdown),
                        readers_done: Arc::clone(&network_readers_done),
                    }) {
                        Ok(reader) => reader,
                        Err(error) => return fail("cannot set up the receiver", &error),
                    };
                    Box::new(move || reader.run())
                }
            };
            let syslog = match input.format {
                Format::Syslog => {
                    let encode_pool =
                        match BufferPool::new(encode_buffers, buffer_bytes, Arc::clone(&cpu_waker))
                        {
                            Ok(pool) => pool,
                            Err(error) => return fail("cannot map its encode buffers", &error),
                        };
                    Some(SyslogConverter {
                        parser: SyslogParser::new(),
                        pool: encode_pool,
                        encoding: None,
                    })
                }
                _ => None,
            };
            let scanner = CpuWorker {
                format: input.format,
                on_invalid: settings.on_invalid,
                from_reader,
                to_dispatcher: to_dispatch,
                waker: cpu_waker,
                counters: Arc::clone(&counters),
                json: (input.format == Format::Json)
                    .then(|| JsonChecker::new(settings.max_line_bytes)),
                dead_letter,
                batch_bytes: settings.batch_bytes,
                // The OTLP and TCP receivers cut each record to --max-line
                // themselves: no batch of theirs needs another pass.
                max_line_bytes: match input.kind {
                    InputKind::Otlp { .. } | InputKind::Tcp { .. } => usize::MAX / 2,
                    _ => settings.max_line_bytes,
                },
                // A UDP reader already holds its batches for --batch-linger;
                // lingering again here would double the latency of a trickle.
                // An OTLP request is answered only once its batches moved on.
                linger: match input.kind {
                    InputKind::Udp { .. } | InputKind::Otlp { .. } | InputKind::Tcp { .. } => {
                        Duration::ZERO
                    }
                    InputKind::File { .. } | InputKind::Stdin => settings.batch_linger,
                },
                pending: None,
                syslog,
                acks,
            };
            let core = |n: usize| cpus.get(n % cpus.len().max(1)).copied();
            let name = if lanes > 1 {
                format!("{}-{lane}", input_counters.len() - 1)
            } else {
                format!("{}", input_counters.len() - 1)
            };
            threads.push((format!("ringway-io-{name}"), core(2 * lane_count), reader));
            threads.push((
                format!("ringway-cpu-{name}"),
                core(2 * lane_count + 1),
                Box::new(move || scanner.run()),
            ));
            lane_count += 1;
        }
        input_udp_stats.push(udp_stats);
        input_otlp.push(otlp_counters);
        input_tcp.push(tcp_counters);
    }

    let mut output_counters = Vec::new();
    let mut pools = Vec::new();
    // Batches a network output's receiver rejects go to --dead-letter.
    let rejected = settings
        .dead_letter
        .as_deref()
        .map(|path| Arc::new(crate::output::sink::DeadLetterFile::new(path)));
    for (output_index, output) in settings.outputs.iter().enumerate() {
        let counters = Arc::new(OutputCounters::default());
        output_counters.push(Arc::clone(&counters));
        let sink = Arc::new(Sink::new(
            &output.kind,
            settings.fsync,
            settings.data_dir.is_some(),
            settings.output_timeout,
            Arc::clone(&counters),
        ));
        let workers = settings.output_workers;
        let worker_wakers: Vec<Arc<Waker>> = (0..workers).map(|_| Waker::for_thread()).collect();
        let order = sink
            .ordered()
            .then(|| CommitOrder::new(worker_wakers.clone()));
        let finished = Arc::new(ArrayQueue::new(
            workers * (settings.worker_slot_capacity + 2),
        ));
        let mut slots = Vec::new();
        for (index, waker) in worker_wakers.into_iter().enumerate() {
            let (slot_tx, slot_rx) = ring(
                settings.worker_slot_capacity,
                Arc::clone(&dispatcher_waker),
                Arc::clone(&waker),
                Arc::clone(&gauges.worker_slots),
            );
            slots.push(slot_tx);
            let worker = OutputWorker {
                index,
                slot: slot_rx,
                waker,
                sink: Arc::clone(&sink),
                name: output.name.clone(),
                order: order.clone(),
                counters: Arc::clone(&counters),
                finished: Arc::clone(&finished),
                dispatcher: Arc::clone(&dispatcher_waker),
                retry_initial: settings.retry_initial,
                retry_max: settings.retry_max,
                dead_letter: rejected.clone(),
                latency: Arc::clone(&latency),
            };
            threads.push((
                format!("ringway-out-{output_index}-{index}"),
                None,
                Box::new(move || worker.run()),
            ));
        }
        pools.push(OutputPool::new(slots, finished, Arc::clone(&counters)));
    }
    let dispatcher_held = Arc::new(Held::default());
    let dispatcher = Dispatcher {
        inputs: to_dispatcher,
        pools,
        waker: dispatcher_waker,
        held: Arc::clone(&dispatcher_held),
    };
    threads.push((
        "ringway-dispatch".into(),
        None,
        Box::new(move || dispatcher.run()),
    ));

    let running: Vec<Arc<AtomicBool>> = threads
        .iter()
        .map(|_| Arc::new(AtomicBool::new(true)))
        .collect();
    let registry = Arc::new(Registry {
        input_names: settings.inputs.iter().map(|i| i.name.clone()).collect(),
        inputs: input_counters,
        udp: input_udp_stats,
        otlp: input_otlp,
        tcp: input_tcp,
        output_names: settings.outputs.iter().map(|o| o.name.clone()).collect(),
        outputs: output_counters,
        rings: gauges,
        dispatcher_held,
        file_offsets,
        latency,
        health: Health {
            shutdown: Arc::clone(&shutdown),
            threads: threads
                .iter()
                .zip(&running)
                .map(|((name, _, _), running)| (name.clone(), Arc::clone(running)))
                .collect(),
        },
    });

    spawn_signal_thread(
        signal_set,
        Arc::clone(&shutdown),
        io_wakers.clone(),
        supervisor,
    );
    for ((name, core, work), running) in threads.into_iter().zip(running) {
        if let Err(message) = spawner.spawn(name, core, running, work) {
            eprintln!("ringway: error: {message}");
            return 1;
        }
    }
    if let Some(listener) = metrics_listener
        && let Err(error) = crate::metrics_server::spawn(listener, Arc::clone(&registry))
    {
        eprintln!("ringway: error: cannot start the metrics thread; error = {error}");
        return 1;
    }

    let checkpoints = checkpoints.map(|checkpointer| Arc::new(Mutex::new(checkpointer)));
    let checkpoint_thread = checkpoints.as_ref().and_then(|checkpointer| {
        spawn_checkpoint_thread(Arc::clone(checkpointer), settings.checkpoint_interval)
    });

    let mut exit_code = supervise(
        &settings,
        &registry,
        &alive,
        &shutdown,
        &io_wakers,
        (&file_readers_done, file_readers),
    );
    if let Some((stop, thread)) = checkpoint_thread {
        stop.store(true, Ordering::Release);
        thread.thread().unpark();
        let _ = thread.join();
    }
    // The last checkpoint: every file at its delivered watermark (after a
    // drain that timed out, what was not delivered is read again next run).
    // Without it the next run repeats what this one delivered since the
    // last checkpoint on disk: a failure, so the exit status is 1.
    if let (Some(checkpointer), Some(dir)) = (&checkpoints, &settings.data_dir)
        && let Err(error) = lock(checkpointer).write()
    {
        eprintln!(
            "ringway: error: cannot write the final checkpoint to --data-dir {} (the next run repeats what was delivered since the last checkpoint written); error = {error}",
            dir.display()
        );
        exit_code = exit_code.max(1);
    }
    let elapsed = started.elapsed();
    if let Some(path) = &settings.summary_json
        && let Err(error) = std::fs::write(path, registry.summary_json(elapsed))
    {
        eprintln!(
            "ringway: error: cannot write --summary-json {}: {error}",
            path.display()
        );
    }
    eprintln!("{}", registry.exit_line(elapsed));
    exit_code
}

/// The files ringway writes, by name: every `file:` output and
/// `--dead-letter`. A file input never reads them.
fn written_files(settings: &Settings) -> Vec<(String, std::path::PathBuf)> {
    settings
        .outputs
        .iter()
        .filter_map(|output| match &output.kind {
            crate::config::OutputKind::File(path) => Some((output.name.clone(), path.clone())),
            _ => None,
        })
        .chain(
            settings
                .dead_letter
                .as_ref()
                .map(|path| ("--dead-letter".to_string(), path.clone())),
        )
        .collect()
}

fn lock(checkpointer: &Mutex<Checkpointer>) -> std::sync::MutexGuard<'_, Checkpointer> {
    checkpointer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the checkpoint thread looks at how much was delivered.
const CHECKPOINT_POLL: Duration = Duration::from_millis(100);
/// Delivered bytes that make a checkpoint due before its interval.
const CHECKPOINT_BYTES: u64 = 32 << 20;

/// Writes checkpoints every `interval` (never when it is zero), sooner after
/// a run's first delivery and after every CHECKPOINT_BYTES delivered, until
/// told to stop. Failures are warned about when they start and when they
/// end.
fn spawn_checkpoint_thread(
    checkpointer: Arc<Mutex<Checkpointer>>,
    interval: Duration,
) -> Option<(Arc<AtomicBool>, thread::JoinHandle<()>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let spawned = thread::Builder::new()
        .name("ringway-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            let mut last_write = Instant::now();
            let mut last_total = lock(&checkpointer).delivered_total();
            let mut written_once = false;
            while !stopped.load(Ordering::Acquire) {
                if interval.is_zero() {
                    thread::park();
                    continue;
                }
                thread::park_timeout(interval.min(CHECKPOINT_POLL));
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                // Due every interval; sooner once CHECKPOINT_BYTES more were
                // delivered (a fast catch-up), and for the first delivery
                // of the run (a run killed young must not replay again all
                // that the run before it replayed).
                let total = lock(&checkpointer).delivered_total();
                let moved = total.abs_diff(last_total);
                // (While writes fail, only once per interval.)
                let due = last_write.elapsed() >= interval
                    || (!failing && (moved >= CHECKPOINT_BYTES || (!written_once && moved > 0)));
                if !due {
                    continue;
                }
                last_write = Instant::now();
                let written = lock(&checkpointer).write();
                if written.is_ok() {
                    last_total = total;
                    written_once = true;
                }
                match written {
                    Ok(()) if failing => {
                        eprintln!("ringway: info: checkpoints are written again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        eprintln!(
                            "ringway: warning: cannot write a checkpoint (retrying every interval); error = {error}"
                        );
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    match spawned {
        Ok(handle) => Some((stop, handle)),
        Err(error) => {
            eprintln!(
                "ringway: warning: no checkpoint thread; checkpoints are written only at exit; error = {error}"
            );
            None
        }
    }
}

/// Waits for the stage threads to finish, printing stats lines; after a
/// signal, bounds the drain by `--shutdown-timeout`.
fn supervise(
    settings: &Settings,
    registry: &Registry,
    alive: &AtomicUsize,
    shutdown: &AtomicBool,
    io_wakers: &[Arc<Waker>],
    (file_readers_done, file_readers): (&AtomicUsize, usize),
) -> i32 {
    let mut stats = StatsReporter::new(settings.stats_format);
    let mut next_stats = settings
        .stats_interval
        .map(|interval| Instant::now() + interval);
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if alive.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let now = Instant::now();
        // The drain starts at a signal, or when every file reader finished at
        // EOF under --exit-on-eof: then the network inputs are closed too.
        // From then on --shutdown-timeout bounds it.
        let files_finished = settings.exit_on_eof
            && file_readers > 0
            && file_readers_done.load(Ordering::Acquire) == file_readers;
        if drain_deadline.is_none() && (shutdown.load(Ordering::SeqCst) || files_finished) {
            drain_deadline = Some(now + settings.shutdown_timeout);
            shutdown.store(true, Ordering::SeqCst);
            for waker in io_wakers {
                waker.wake_now();
            }
        }
        if let Some(deadline) = drain_deadline
            && now >= deadline
        {
            eprintln!(
                "ringway: error: the drain did not finish within --shutdown-timeout {:?}; undelivered: {}",
                settings.shutdown_timeout,
                registry.in_flight_description()
            );
            return 1;
        }
        if let (Some(due), Some(interval)) = (next_stats, settings.stats_interval)
            && now >= due
        {
            if let Some(line) = stats.line(registry) {
                eprintln!("{line}");
            }
            next_stats = Some(due.max(now - interval) + interval);
        }
        let mut wake_at = now + Duration::from_secs(1);
        if let Some(due) = next_stats {
            wake_at = wake_at.min(due);
        }
        if let Some(deadline) = drain_deadline {
            wake_at = wake_at.min(deadline);
        }
        thread::park_timeout(wake_at.saturating_duration_since(Instant::now()));
    }
}

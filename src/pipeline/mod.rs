//! Builds the data path of DESIGN §1 from [`Settings`], runs it, and
//! supervises it: stats lines, the drain at exit and the summary.
//!
//! [`run`] is the composition: build each input's lanes ([`Inputs`], in
//! `inputs.rs`: per lane an I/O worker and a CPU worker, pinned per
//! `--cpus`, joined by ring(4)), build each output ([`Outputs`], in
//! `outputs.rs`: a worker pool behind the one [`Dispatcher`], which every
//! CPU worker's ring(16) feeds), start the threads (with the signal thread
//! of [`crate::signals`] and the [`CheckpointWriter`]), then supervise.
//! What differs by kind of input is asked of the input's
//! [`InputKind`](crate::config::InputKind) (`lanes`, `uring_depth`,
//! `cpu_linger`, ...). The main thread only supervises.

mod inputs;
mod outputs;
mod sql;

use crate::checkpoint::writer::CheckpointWriter;
use crate::config::Settings;
use crate::metrics::{
    Health, Held, InputRings, LatencyHistogram, Registry, RingGauges, StatsReporter,
};
use crate::output::dispatcher::Dispatcher;
use crate::output::light::TrafficLight;
use crate::ring::{Gauge, Waker};
use inputs::Inputs;
use outputs::Outputs;
pub(crate) use sql::run_sql;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

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

/// Runs the pipeline to its end; returns the process exit code.
pub(crate) fn run(settings: Settings) -> i32 {
    if let Err(message) = crate::uring::probe_kernel() {
        eprintln!("ringway: error: {message}");
        return 1;
    }
    let started = Instant::now();
    let signal_set = crate::signals::block_termination_signals();
    let shared = Shared::new(&settings);
    // Bound before anything starts, so a taken port fails the start.
    let Some(metrics_listener) = bind_metrics(&settings) else {
        return 1;
    };
    let built = Inputs::build(&settings, &shared)
        .and_then(|inputs| Ok((inputs, Outputs::build(&settings, &shared)?)));
    let (mut inputs, outputs) = match built {
        Ok(built) => built,
        Err(message) => {
            eprintln!("ringway: error: {message}");
            return 1;
        }
    };
    let checkpoints = inputs.checkpoints.take();
    let io_wakers = inputs.io_wakers.clone();
    let credentials = std::mem::take(&mut inputs.credentials);
    let file_readers = inputs.file_readers;
    let (registry, threads) = assemble(&settings, &shared, inputs, outputs);

    crate::signals::spawn_signal_thread(
        signal_set,
        Arc::clone(&shared.shutdown),
        io_wakers.clone(),
        thread::current(),
        credentials,
    );
    if let Some(light) = &shared.light
        && let Err(error) = crate::output::light::spawn_control_thread(Arc::clone(light))
    {
        eprintln!("ringway: error: cannot start the traffic light's thread; error = {error}");
        return 1;
    }
    for ((name, core, work), running) in threads {
        if let Err(message) = shared.spawner.spawn(name, core, running, work) {
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
    let checkpoint_writer = checkpoints
        .map(|checkpointer| CheckpointWriter::start(checkpointer, settings.checkpoint_interval));

    let mut exit_code = supervise(
        &settings,
        &registry,
        &shared.spawner.alive,
        &shared.shutdown,
        &io_wakers,
        (&shared.file_readers_done, file_readers),
    );
    // The last checkpoint. Without it the next run repeats what this one
    // delivered since the last checkpoint on disk: a failure, so the exit
    // status is 1.
    if let (Some(writer), Some(dir)) = (checkpoint_writer, &settings.data_dir)
        && let Err(error) = writer.finish()
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

/// The `--metrics` listener, bound now (`Some(None)` without `--metrics`);
/// `None` when the address cannot be bound (said on stderr).
fn bind_metrics(settings: &Settings) -> Option<Option<std::net::TcpListener>> {
    match settings.metrics_address.map(crate::metrics_server::bind) {
        None => Some(None),
        Some(Ok((listener, bound))) => {
            eprintln!("ringway: metrics listening on {bound}");
            Some(Some(listener))
        }
        Some(Err(error)) => {
            eprintln!(
                "ringway: error: --metrics {}: cannot listen; error = {error}",
                settings.metrics_address.expect("matched Some")
            );
            None
        }
    }
}

/// What every lane and output is built with, and what the supervisor
/// shares with the stage threads.
struct Shared {
    /// Set at a signal or when --exit-on-eof's files are done: inputs stop.
    shutdown: Arc<AtomicBool>,
    /// File and stdin readers that finished (at EOF under --exit-on-eof).
    file_readers_done: Arc<AtomicUsize>,
    network_readers_done: Arc<AtomicUsize>,
    dispatcher_waker: Arc<Waker>,
    /// The gauge every dispatcher→worker ring shares (the per-input
    /// stages' gauges are each input's, made with its lanes).
    worker_rings: Arc<Gauge>,
    latency: Arc<LatencyHistogram>,
    /// The cores of `--cpus` (all online ones by default), taken in turn.
    cpus: Vec<usize>,
    spawner: Spawner,
    buffers_per_input: usize,
    buffer_bytes: usize,
    /// Encode buffers of a `format=syslog` lane: what can be in flight past
    /// the CPU worker, plus the one being filled.
    encode_buffers: usize,
    /// Every output's counters, made before the inputs: the CPU workers
    /// count each output's routed records.
    output_counters: Vec<Arc<crate::metrics::OutputCounters>>,
    /// `ringway demo`'s light before every output write; `None` without
    /// `--traffic-light`.
    light: Option<Arc<TrafficLight>>,
}

impl Shared {
    fn new(settings: &Settings) -> Self {
        let online_cores: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|core| core.id)
            .collect();
        Self {
            shutdown: Arc::new(AtomicBool::new(false)),
            file_readers_done: Arc::new(AtomicUsize::new(0)),
            network_readers_done: Arc::new(AtomicUsize::new(0)),
            dispatcher_waker: Waker::for_thread(),
            worker_rings: Arc::default(),
            latency: Arc::new(LatencyHistogram::default()),
            cpus: settings
                .cpus
                .clone()
                .unwrap_or_else(|| online_cores.clone()),
            spawner: Spawner {
                alive: Arc::new(AtomicUsize::new(0)),
                supervisor: thread::current(),
                online_cores,
            },
            buffers_per_input: settings.buffers_per_input(),
            buffer_bytes: settings.buffer_bytes(),
            encode_buffers: settings.cpu_to_dispatcher_capacity
                + 2
                + settings.output_workers
                    * (settings.dispatcher_to_worker_capacity + 1)
                    * settings.outputs.len().max(1),
            output_counters: settings
                .outputs
                .iter()
                .map(|_| Arc::new(crate::metrics::OutputCounters::default()))
                .collect(),
            light: settings.traffic_light.then(TrafficLight::new),
        }
    }

    /// The core for the `n`-th stage thread that is pinned.
    fn core(&self, n: usize) -> Option<usize> {
        self.cpus.get(n % self.cpus.len().max(1)).copied()
    }
}

/// The dispatcher joins the inputs' lanes to the outputs' pools; the
/// registry (counters, gauges, `/healthz`) is made of what both built.
/// Returns it with every stage thread to start and its running flag.
fn assemble(
    settings: &Settings,
    shared: &Shared,
    inputs: Inputs,
    outputs: Outputs,
) -> (Arc<Registry>, Vec<(StageThread, Arc<AtomicBool>)>) {
    let mut threads = inputs.threads;
    threads.extend(outputs.threads);
    let dispatcher_held = Arc::new(Held::default());
    let dispatcher = Dispatcher {
        inputs: inputs.to_dispatcher,
        pools: outputs.pools,
        waker: Arc::clone(&shared.dispatcher_waker),
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
    // A per-input stage's gauge reads the sum of every input's.
    let stage_total = |gauge: fn(&InputRings) -> &Arc<Gauge>| {
        Arc::new(Gauge::sum_of(
            inputs
                .rings
                .iter()
                .map(|rings| Arc::clone(gauge(rings)))
                .collect(),
        ))
    };
    let registry = Arc::new(Registry {
        input_names: settings.inputs.iter().map(|i| i.name.clone()).collect(),
        inputs: inputs.counters,
        udp: inputs.udp,
        otlp: inputs.otlp,
        tcp: inputs.tcp,
        output_names: settings.outputs.iter().map(|o| o.name.clone()).collect(),
        outputs: outputs.counters,
        rings: RingGauges {
            io_to_cpu: stage_total(|rings| &rings.io_to_cpu),
            cpu_to_dispatcher: stage_total(|rings| &rings.cpu_to_dispatcher),
            dispatcher_to_worker: Arc::clone(&shared.worker_rings),
        },
        input_rings: inputs.rings,
        dispatcher_held,
        file_offsets: inputs.file_offsets,
        latency: Arc::clone(&shared.latency),
        health: Health {
            shutdown: Arc::clone(&shared.shutdown),
            threads: threads
                .iter()
                .zip(&running)
                .map(|((name, _, _), running)| (name.clone(), Arc::clone(running)))
                .collect(),
        },
    });
    (registry, threads.into_iter().zip(running).collect())
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

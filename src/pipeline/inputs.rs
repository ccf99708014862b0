//! Building the inputs' lanes: [`Inputs`] holds every lane's threads and
//! what the registry needs of them; per lane an I/O worker (by kind:
//! [`FileReader`], [`UdpReader`], [`OtlpReceiver`], [`TcpReader`],
//! [`StdinReader`]) and a [`CpuWorker`], joined by ring(4). What differs by
//! kind of input is a method of [`InputKind`].

use super::{Shared, StageThread};
use crate::ack::Replies;
use crate::batch::Batch;
use crate::checkpoint::{AckLog, AckedOffsets, CheckpointKey, Checkpointer, InputState, Loaded};
use crate::config::{Format, InputKind, InputSpec, OnInvalid, Settings};
use crate::cpu_worker::{
    ContainerConverter, CpuWorker, Joiner, LineParser, SourceStage, SyslogConverter, TransformStage,
};
use crate::dead_letter::DeadLetter;
use crate::input::LaneParts;
use crate::input::file::{FileReader, FileReaderConfig, FileTracking};
use crate::input::otlp::{OtlpReceiver, ReceiverParts};
use crate::input::stdin::StdinReader;
use crate::input::tcp::{TcpParts, TcpReader};
use crate::input::tls::TlsParts;
use crate::input::udp::UdpReader;
use crate::metrics::{
    InputCounters, InputRings, OtlpCounters, TcpCounters, TlsCounters, UdpInputStats,
};
use crate::pool::BufferPool;
use crate::reload::Credentials;
use crate::ring::{RingReceiver, RingSender, Waker, ring};
use crate::scan::{
    cri::DockerParser, json::JsonChecker, multiline::Multiline, syslog::SyslogParser,
};
use crate::source::{CLIENT_ADDRESS_KEY, CLIENT_PORT_KEY, FILE_PATH_KEY, sender_runs_per_batch};
use crate::transform::{Condition, Query, Shape, Transformer};
use io_uring::IoUring;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

/// Encode buffers of a lane's transform in flight past its CPU worker, at
/// most (see `Inputs::transform_stage`).
const TRANSFORM_BUFFERS: usize = 8;

/// Submission queue entries of an OTLP or TCP input's ring at least:
/// every connection keeps a receive posted.
const CONNECTION_URING_DEPTH: u32 = 256;

impl InputKind {
    /// Lanes of the input (an I/O worker and a CPU worker joined by
    /// ring(4)): one, but one per socket for UDP.
    fn lanes(&self) -> usize {
        match self {
            InputKind::Udp { sockets, .. } => *sockets,
            InputKind::File { .. } | InputKind::Otlp { .. } | InputKind::Tcp { .. } => 1,
            InputKind::Stdin => 1,
        }
    }

    /// Submission queue entries of the lane's ring: many connections each
    /// keep a receive posted on TCP and OTLP inputs' rings.
    fn uring_depth(&self, configured: u32) -> u32 {
        match self {
            InputKind::Otlp { .. } | InputKind::Tcp { .. } => {
                configured.max(CONNECTION_URING_DEPTH)
            }
            _ => configured,
        }
    }

    /// UDP receives one completion per datagram: its ring defers the
    /// kernel's receive work to coalesced waits (see build_deferred_ring).
    fn defers_receives(&self) -> bool {
        matches!(self, InputKind::Udp { .. })
    }

    /// The longest line the CPU worker lets through: the OTLP and TCP
    /// receivers cut each record to --max-line themselves, so no batch of
    /// theirs needs another pass.
    fn cpu_max_line(&self, max_line_bytes: usize) -> usize {
        match self {
            InputKind::Otlp { .. } | InputKind::Tcp { .. } => usize::MAX / 2,
            _ => max_line_bytes,
        }
    }

    /// How long the CPU worker holds a small batch for more. A UDP or TCP
    /// reader already holds its batches for --batch-linger; lingering again
    /// would double the latency of a trickle. An OTLP request is answered
    /// only once its batches moved on.
    fn cpu_linger(&self, batch_linger: Duration) -> Duration {
        match self {
            InputKind::Udp { .. } | InputKind::Otlp { .. } | InputKind::Tcp { .. } => {
                Duration::ZERO
            }
            InputKind::File { .. } | InputKind::Stdin => batch_linger,
        }
    }
}

/// Every input's lanes, and what the registry and the supervisor need of
/// them (per input: counters and the kind's own counters).
#[derive(Default)]
pub(super) struct Inputs {
    pub(super) counters: Vec<Arc<InputCounters>>,
    /// Per input: the gauges its lanes' rings share.
    pub(super) rings: Vec<InputRings>,
    pub(super) udp: Vec<Option<UdpInputStats>>,
    pub(super) otlp: Vec<Option<Arc<OtlpCounters>>>,
    pub(super) tcp: Vec<Option<Arc<TcpCounters>>>,
    pub(super) file_offsets: Vec<Option<Arc<AckedOffsets>>>,
    /// Every lane's I/O worker, woken at shutdown.
    pub(super) io_wakers: Vec<Arc<Waker>>,
    /// The credentials of every TLS input and OTLP input with
    /// auth_token_file=, reloaded at SIGHUP.
    pub(super) credentials: Vec<Arc<Credentials>>,
    /// Every lane's ring(16), for the dispatcher.
    pub(super) to_dispatcher: Vec<RingReceiver<Batch>>,
    /// File and stdin readers: --exit-on-eof waits for them all.
    pub(super) file_readers: usize,
    pub(super) threads: Vec<StageThread>,
    /// Lanes built so far (their threads take cores in turn).
    lanes: usize,
    /// With --data-dir: the checkpointer and the state it loaded.
    pub(super) checkpoints: Option<Checkpointer>,
    loaded: Loaded,
    /// Every output's route, compiled once (`None`: takes every record).
    routes: Vec<Option<Arc<Condition>>>,
}

/// One input while its lanes are built.
struct InputBuild<'a> {
    settings: &'a Settings,
    shared: &'a Shared,
    input: &'a InputSpec,
    /// The input's query, compiled once for all its lanes.
    query: Option<Arc<Query>>,
    key: Option<CheckpointKey>,
    counters: Arc<InputCounters>,
    /// Gauges of the input's rings, shared by its lanes.
    rings: InputRings,
    offsets: Option<Arc<AckedOffsets>>,
    udp: Option<UdpInputStats>,
    otlp: Option<Arc<OtlpCounters>>,
    tcp: Option<Arc<TcpCounters>>,
    /// A TLS or token-checking input's credentials, for SIGHUP.
    credentials: Option<Arc<Credentials>>,
    /// Where a UDP input's first socket bound, once it has.
    udp_bound: Option<std::net::SocketAddr>,
}

impl InputBuild<'_> {
    /// A pool of encode buffers the CPU worker writes records it converts
    /// into.
    fn encode_pool(&self, cpu_waker: &Arc<Waker>) -> Result<Arc<BufferPool>, String> {
        BufferPool::new(
            self.shared.encode_buffers,
            self.shared.buffer_bytes,
            Arc::clone(cpu_waker),
        )
        .map_err(|error| format!("cannot map its encode buffers: {error}"))
    }

    /// The `--dead-letter` file of a lane whose invalid records go there.
    fn dead_letter(&self) -> Result<Option<DeadLetter>, String> {
        let (settings, input) = (self.settings, self.input);
        match &settings.dead_letter {
            Some(path)
                if (input.format == Format::Json || input.format.is_container())
                    && settings.on_invalid == OnInvalid::DeadLetter =>
            {
                DeadLetter::open(path)
                    .map(Some)
                    .map_err(|error| format!("cannot open --dead-letter: {error}"))
            }
            _ => Ok(None),
        }
    }

    /// The converter of a `format=syslog` lane.
    fn syslog_converter(&self, cpu_waker: &Arc<Waker>) -> Result<Option<SyslogConverter>, String> {
        if self.input.format != Format::Syslog {
            return Ok(None);
        }
        Ok(Some(SyslogConverter {
            parser: SyslogParser::new(),
            pool: self.encode_pool(cpu_waker)?,
            encoding: None,
        }))
    }

    /// The converter of a container format (`cri`, `docker`, `auto`) or a
    /// `multiline=` lane.
    fn container_converter(
        &self,
        acks: &Acks,
        cpu_waker: &Arc<Waker>,
    ) -> Result<Option<ContainerConverter>, String> {
        let (settings, input) = (self.settings, self.input);
        if !input.format.is_container() && input.multiline.is_none() {
            return Ok(None);
        }
        let parser = match input.format {
            Format::Docker => LineParser::Docker(DockerParser::new(settings.max_line_bytes)),
            Format::Cri => LineParser::Cri,
            Format::Auto => LineParser::Auto(
                DockerParser::new(settings.max_line_bytes),
                JsonChecker::new(settings.max_line_bytes),
            ),
            _ => LineParser::Raw,
        };
        // Checked when the SPEC was parsed.
        let multiline = input
            .multiline
            .as_ref()
            .map(Multiline::new)
            .transpose()
            .map_err(|error| format!("input '{}': {error}", input.name))?;
        let offsets = acks.as_ref().map(|(log, _)| Arc::clone(log.offsets()));
        Ok(Some(ContainerConverter {
            parser,
            joiner: Joiner::new(
                self.encode_pool(cpu_waker)?,
                settings.multiline_timeout,
                settings.max_line_bytes,
                input.k8s,
                offsets,
                multiline,
                input.merge_json,
            )
            .with_file_path(input.source),
        }))
    }

    /// The stage that adds source fields (`source=true`) to a raw, JSON or
    /// syslog lane's records.
    fn source_stage(
        &self,
        acks: &Acks,
        cpu_waker: &Arc<Waker>,
    ) -> Result<Option<SourceStage>, String> {
        let input = self.input;
        let adds = input.source
            && matches!(input.format, Format::Raw | Format::Json | Format::Syslog)
            && !matches!(input.kind, InputKind::Otlp { .. });
        if !adds {
            return Ok(None);
        }
        // Syslog writes into its converter's buffers: none here.
        let pool = match input.format {
            Format::Syslog => None,
            _ => Some(self.encode_pool(cpu_waker)?),
        };
        let offsets = acks.as_ref().map(|(log, _)| Arc::clone(log.offsets()));
        Ok(Some(SourceStage::new(pool, offsets)))
    }
}

/// A lane's I/O side, handed to its reader.
struct LaneIo {
    uring: (IoUring, bool),
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    waker: Arc<Waker>,
}

impl LaneIo {
    /// The lane's plumbing for a file, stdin, TCP or OTLP worker, which bumps
    /// `readers_done` when it is done.
    fn lane_parts(self, build: &InputBuild<'_>, readers_done: &Arc<AtomicUsize>) -> LaneParts {
        LaneParts {
            ring: self.uring.0,
            pool: self.pool,
            to_cpu: self.to_cpu,
            waker: self.waker,
            counters: Arc::clone(&build.counters),
            shutdown: Arc::clone(&build.shared.shutdown),
            readers_done: Arc::clone(readers_done),
            max_line_bytes: build.settings.max_line_bytes,
            source: build.input.source,
        }
    }
}

/// An I/O worker's thread body.
type Reader = Box<dyn FnOnce() + Send>;

/// A file lane's ack log, and how many outputs ack each batch.
type Acks = Option<(Arc<AckLog>, u32)>;

impl Inputs {
    /// Opens `--data-dir` and builds every input's lanes; an error is one
    /// line for stderr.
    pub(super) fn build(settings: &Settings, shared: &Shared) -> Result<Self, String> {
        let mut inputs = Inputs::default();
        // A file input's checkpoints are saved under its path pattern, so
        // an edit of its other keys keeps them.
        let keys = crate::checkpoint::input_keys(&settings.inputs);
        if let Some(dir) = &settings.data_dir {
            let file_inputs: Vec<_> = keys.iter().flatten().cloned().collect();
            let (checkpointer, saved) = Checkpointer::open(dir, &file_inputs)?;
            inputs.checkpoints = Some(checkpointer);
            inputs.loaded = saved;
        }
        // Validation compiled each query and route already; these cannot
        // fail but say so if they do.
        for output in &settings.outputs {
            let route = output.route.as_deref().map(Condition::compile).transpose();
            let route =
                route.map_err(|error| format!("output '{}' where: {error}", output.name))?;
            inputs.routes.push(route.map(Arc::new));
        }
        for (input, key) in settings.inputs.iter().zip(keys) {
            let query = input.sql.as_deref().map(Query::compile).transpose();
            let query = query
                .map_err(|error| format!("input '{}' sql: {error}", input.name))?
                .map(Arc::new);
            if let Some(query) = &query {
                warn_raw_fields(input, query);
            }
            let mut build = InputBuild {
                settings,
                shared,
                input,
                query,
                key,
                counters: Arc::new(InputCounters::default()),
                rings: InputRings::default(),
                offsets: input
                    .file_pattern()
                    .map(|_| AckedOffsets::new(settings.max_open_files)),
                udp: input.kind.defers_receives().then(UdpInputStats::default),
                otlp: None,
                tcp: None,
                credentials: None,
                udp_bound: None,
            };
            inputs.counters.push(Arc::clone(&build.counters));
            inputs.file_offsets.push(build.offsets.clone());
            let lanes = input.kind.lanes();
            for lane in 0..lanes {
                inputs
                    .add_lane(&mut build, lane, lanes)
                    .map_err(|message| format!("input '{}': {message}", input.name))?;
            }
            inputs.rings.push(build.rings);
            inputs.udp.push(build.udp);
            inputs.otlp.push(build.otlp);
            inputs.tcp.push(build.tcp);
            inputs.credentials.extend(build.credentials);
        }
        Ok(inputs)
    }

    /// Builds lane `lane` of `lanes` of an input: its ring, buffers and
    /// rings, its reader and its CPU worker, as two threads to start.
    fn add_lane(
        &mut self,
        build: &mut InputBuild<'_>,
        lane: usize,
        lanes: usize,
    ) -> Result<(), String> {
        let (settings, shared, input) = (build.settings, build.shared, build.input);
        let wake_fd = crate::uring::eventfd()
            .map_err(|error| format!("cannot create an eventfd: {error}"))?;
        let depth = input.kind.uring_depth(settings.uring_depth);
        let built = if input.kind.defers_receives() {
            crate::uring::build_deferred_ring(depth, settings.sqpoll)
        } else {
            crate::uring::build_ring(depth, settings.sqpoll).map(|ring| (ring, false))
        };
        let uring = built.map_err(|error| format!("cannot set up io_uring: {error}"))?;
        let io_waker = Waker::for_eventfd(wake_fd);
        self.io_wakers.push(Arc::clone(&io_waker));
        let cpu_waker = Waker::for_thread();
        // UDP and TCP batches hold records of many senders: with source
        // fields each buffer has a table of who sent its records.
        let sender_runs = match input.kind {
            InputKind::Udp { .. } | InputKind::Tcp { .. } if input.source => {
                sender_runs_per_batch(shared.buffer_bytes)
            }
            _ => 0,
        };
        let pool = BufferPool::with_senders(
            shared.buffers_per_input,
            shared.buffer_bytes,
            sender_runs,
            Arc::clone(&io_waker),
        )
        .map_err(|error| format!("cannot map its buffers: {error}"))?;
        let (to_cpu, from_reader) = ring(
            settings.io_to_cpu_capacity,
            Arc::clone(&io_waker),
            Arc::clone(&cpu_waker),
            Arc::clone(&build.rings.io_to_cpu),
        );
        let (to_dispatch, from_cpu) = ring(
            settings.cpu_to_dispatcher_capacity,
            Arc::clone(&cpu_waker),
            Arc::clone(&shared.dispatcher_waker),
            Arc::clone(&build.rings.cpu_to_dispatcher),
        );
        self.to_dispatcher.push(from_cpu);
        let dead_letter = build.dead_letter()?;
        let io = LaneIo {
            uring,
            pool,
            to_cpu,
            waker: io_waker,
        };
        let (reader, acks) = self.reader(build, io, &cpu_waker)?;
        let syslog = build.syslog_converter(&cpu_waker)?;
        let container = build.container_converter(&acks, &cpu_waker)?;
        let source = match container {
            // A container converter (`multiline=` on raw lines) adds the
            // file's path itself.
            Some(_) => None,
            None => build.source_stage(&acks, &cpu_waker)?,
        };
        let transform = self.transform_stage(build, &cpu_waker)?;
        let all_outputs = match settings.outputs.len() {
            64.. => u64::MAX,
            outputs => (1u64 << outputs) - 1,
        };
        let worker = CpuWorker {
            format: input.format,
            on_invalid: settings.on_invalid,
            from_reader,
            to_dispatcher: to_dispatch,
            waker: cpu_waker,
            counters: Arc::clone(&build.counters),
            json: (input.format == Format::Json).then(|| JsonChecker::new(settings.max_line_bytes)),
            dead_letter,
            batch_bytes: settings.batch_bytes,
            max_line_bytes: input.kind.cpu_max_line(settings.max_line_bytes),
            linger: input.kind.cpu_linger(settings.batch_linger),
            pending: None,
            syslog,
            container,
            acks,
            all_outputs,
            transform,
            source,
        };
        let name = if lanes > 1 {
            format!("{}-{lane}", self.counters.len() - 1)
        } else {
            format!("{}", self.counters.len() - 1)
        };
        let core = shared.core(2 * self.lanes);
        self.threads
            .push((format!("ringway-io-{name}"), core, reader));
        let core = shared.core(2 * self.lanes + 1);
        self.threads.push((
            format!("ringway-cpu-{name}"),
            core,
            Box::new(move || worker.run()),
        ));
        self.lanes += 1;
        Ok(())
    }

    /// The lane's transform stage: with a query, or when any output has a
    /// route. Encode buffers only where records can be rewritten or copied
    /// (a projection, routes): at most [`TRANSFORM_BUFFERS`] in flight past
    /// the CPU worker (fewer when fewer can be), plus one per output for the
    /// copies being filled. The pool cycles through its buffers, so each is
    /// touched: its size is RSS. Fewer than can be in flight only makes the
    /// CPU worker wait for the outputs a little sooner.
    fn transform_stage(
        &self,
        build: &InputBuild<'_>,
        cpu_waker: &Arc<Waker>,
    ) -> Result<Option<TransformStage>, String> {
        let routed = self.routes.iter().any(Option::is_some);
        if build.query.is_none() && !routed {
            return Ok(None);
        }
        let (settings, shared) = (build.settings, build.shared);
        let keeps_lines = build.query.as_ref().is_none_or(|query| query.keeps_lines());
        let pool = if keeps_lines && !routed {
            None
        } else {
            Some(
                BufferPool::new(
                    shared.encode_buffers.min(TRANSFORM_BUFFERS) + settings.outputs.len(),
                    shared.buffer_bytes,
                    Arc::clone(cpu_waker),
                )
                .map_err(|error| format!("cannot map its transform buffers: {error}"))?,
            )
        };
        let raw_shape = match build.input.kind {
            // The OTLP receiver writes each record as a JSON object.
            InputKind::Otlp { .. } => Shape::Json,
            _ => Shape::Raw,
        };
        let transformer = Transformer::new(
            build.query.clone(),
            self.routes.clone(),
            settings.max_line_bytes,
        );
        Ok(Some(TransformStage::new(
            transformer,
            keeps_lines,
            routed,
            raw_shape,
            pool,
            shared.output_counters.clone(),
        )))
    }

    /// The lane's I/O worker, by kind of input; file lanes also get their
    /// ack log.
    fn reader(
        &mut self,
        build: &mut InputBuild<'_>,
        io: LaneIo,
        cpu_waker: &Arc<Waker>,
    ) -> Result<(Reader, Acks), String> {
        match &build.input.kind {
            InputKind::File { pattern } => Ok(self.file_reader(build, io, cpu_waker, pattern)),
            InputKind::Udp {
                address,
                rcvbuf_bytes,
                sockets,
            } => Ok((
                udp_reader(build, io, *address, *rcvbuf_bytes, *sockets)?,
                None,
            )),
            InputKind::Otlp { address, .. } | InputKind::Tcp { address, .. } => {
                Ok((stream_reader(build, io, *address)?, None))
            }
            InputKind::Stdin => {
                // Counted with the file readers: --exit-on-eof waits for
                // standard input's EOF too.
                self.file_readers += 1;
                StdinReader::check_descriptor()
                    .map_err(|error| format!("cannot read standard input: {error}"))?;
                let readers_done = &build.shared.file_readers_done;
                let reader = StdinReader::new(io.lane_parts(build, readers_done));
                Ok((Box::new(move || reader.run()), None))
            }
        }
    }

    fn file_reader(
        &mut self,
        build: &mut InputBuild<'_>,
        io: LaneIo,
        cpu_waker: &Arc<Waker>,
        pattern: &str,
    ) -> (Reader, Acks) {
        let (settings, shared, input) = (build.settings, build.shared, build.input);
        self.file_readers += 1;
        let offsets = build.offsets.clone().expect("set for file inputs");
        let key = build.key.as_ref();
        let state = self.checkpoints.as_mut().map(|checkpointer| {
            let key = key.expect("file inputs have a key");
            let state = InputState::new(key.key.clone(), Arc::clone(&offsets));
            checkpointer.add_input(Arc::clone(&state));
            state
        });
        // Entries in flight past the CPU worker are bounded by the buffers
        // that carry them; twice that leaves room for acks that arrive out
        // of order.
        // A transform lane has a second pool of encode buffers.
        let log_capacity =
            2 * (shared.buffers_per_input + 2 * shared.encode_buffers + settings.outputs.len());
        let acks = Some((
            AckLog::new(log_capacity, Arc::clone(&offsets), Arc::clone(cpu_waker)),
            settings.outputs.len() as u32,
        ));
        let tracking = FileTracking {
            offsets,
            state,
            saved: key
                .and_then(|key| self.loaded.remove(&key.key))
                .unwrap_or_default(),
        };
        let reader = FileReader::new(
            FileReaderConfig {
                pattern: pattern.to_string(),
                from: input.from,
                exit_on_eof: settings.exit_on_eof,
                max_open_files: settings.max_open_files,
                written: written_files(settings),
            },
            io.lane_parts(build, &shared.file_readers_done),
            tracking,
        );
        (Box::new(move || reader.run()), acks)
    }
}

fn udp_reader(
    build: &mut InputBuild<'_>,
    io: LaneIo,
    address: std::net::SocketAddr,
    rcvbuf_bytes: usize,
    sockets: usize,
) -> Result<Reader, String> {
    let (settings, shared) = (build.settings, build.shared);
    // Every socket of the input binds where the first one did: with port
    // 0, the port the kernel picked for it.
    let target = build.udp_bound.unwrap_or(address);
    let (socket, stats, bound) = crate::input::udp::open_socket(target, rcvbuf_bytes, sockets > 1)
        .map_err(|error| format!("cannot open its socket: {error}"))?;
    if build.udp_bound.is_none() {
        crate::input::net::announce(&build.input.name, bound);
        build.udp_bound = Some(bound);
    }
    let rxq_overflow = Arc::new(AtomicU64::new(0));
    let udp = build.udp.as_mut().expect("set for UDP inputs");
    udp.sockets.push(stats);
    udp.rxq_overflow.push(Arc::clone(&rxq_overflow));
    let reader = UdpReader::new(
        io.uring,
        socket,
        settings.udp_max_datagram_bytes,
        io.pool,
        io.to_cpu,
        io.waker,
        Arc::clone(&build.counters),
        rxq_overflow,
        Arc::clone(&shared.shutdown),
        Arc::clone(&shared.network_readers_done),
        settings.batch_linger,
        build.input.source,
    )
    .map_err(|error| format!("cannot set up receiving: {error}"))?;
    Ok(Box::new(move || reader.run()))
}

/// A TCP or OTLP input's receiver, on its listening socket.
fn stream_reader(
    build: &mut InputBuild<'_>,
    io: LaneIo,
    address: std::net::SocketAddr,
) -> Result<Reader, String> {
    let settings = build.settings;
    let listener = crate::input::net::listen(&build.input.name, address)
        .map_err(|error| format!("cannot open its socket: {error}"))?;
    let lane = io.lane_parts(build, &build.shared.network_readers_done);
    let set_up = |error| format!("cannot set up the receiver: {error}");
    // Validation loaded these files already; a file changed since then
    // is refused here the same way.
    let (tls_files, token_file) = match &build.input.kind {
        InputKind::Tcp { tls, .. } => (tls.as_ref(), None),
        InputKind::Otlp {
            tls,
            auth_token_file,
            ..
        } => (tls.as_ref(), auth_token_file.as_deref()),
        _ => (None, None),
    };
    let tls_counters = Arc::new(TlsCounters::default());
    let credentials = if tls_files.is_some() || token_file.is_some() {
        let loaded = Credentials::load(
            &build.input.name,
            tls_files,
            token_file,
            Arc::clone(&tls_counters),
        )?;
        Some(Arc::new(loaded))
    } else {
        None
    };
    let tls = credentials
        .as_ref()
        .and_then(|credentials| credentials.server_config())
        .map(|config| TlsParts {
            config,
            handshake_timeout: settings.tls_handshake_timeout,
            counters: Arc::clone(&tls_counters),
        });
    let auth = credentials
        .as_ref()
        .and_then(|credentials| credentials.tokens());
    build.credentials = credentials;
    if matches!(build.input.kind, InputKind::Otlp { .. }) {
        let otlp = Arc::new(OtlpCounters {
            tls: tls_counters,
            ..OtlpCounters::default()
        });
        build.otlp = Some(Arc::clone(&otlp));
        let replies = Replies::new(
            build.shared.buffers_per_input + settings.otlp.max_connections + 64,
            Arc::clone(&lane.waker),
        );
        let receiver = OtlpReceiver::new(ReceiverParts {
            lane,
            name: build.input.name.clone(),
            auth,
            tls,
            listener,
            settings: settings.otlp,
            io_to_cpu_capacity: settings.io_to_cpu_capacity,
            replies,
            otlp,
            outputs: settings.outputs.len() as u32,
        })
        .map_err(set_up)?;
        return Ok(Box::new(move || receiver.run()));
    }
    let tcp = Arc::new(TcpCounters {
        tls: tls_counters,
        ..TcpCounters::default()
    });
    build.tcp = Some(Arc::clone(&tcp));
    let reader = TcpReader::new(TcpParts {
        lane,
        name: build.input.name.clone(),
        listener,
        tls,
        max_connections: settings.tcp_max_connections,
        idle_timeout: settings.tcp_idle_timeout,
        linger: settings.batch_linger,
        tcp,
    })
    .map_err(set_up)?;
    Ok(Box::new(move || reader.run()))
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

/// A query over a `raw` lane sees only `body` (and, with `source=true`,
/// the source fields): say so at start when it names other fields, which
/// would all be NULL (the usual cause: a missing `format=json`). OTLP
/// lanes make JSON whatever `format` says.
fn warn_raw_fields(input: &InputSpec, query: &Query) {
    if input.format != Format::Raw || matches!(input.kind, InputKind::Otlp { .. }) {
        return;
    }
    let source_keys = [FILE_PATH_KEY, CLIENT_ADDRESS_KEY, CLIENT_PORT_KEY];
    let fields: Vec<String> = query
        .fields_besides_body()
        .into_iter()
        .filter(|field| !(input.source && source_keys.contains(&field.as_str())))
        .collect();
    if !fields.is_empty() {
        eprintln!(
            "ringway: warning: input '{}' has format=raw, so its records have only `body`; \
             the fields the query names ({}) are always NULL (add ,format=json for JSON lines)",
            input.name,
            fields.join(", ")
        );
    }
}

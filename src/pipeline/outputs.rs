//! Building the outputs: [`Outputs`] holds, per output, the dispatcher's
//! side of its worker pool ([`OutputPool`]) and its [`OutputWorker`]s as
//! threads to start, all writing to one [`Sink`].

use super::{Shared, StageThread};
use crate::config::{OutputSpec, Settings};
use crate::dead_letter::SharedDeadLetter;
use crate::output::dispatcher::OutputPool;
use crate::output::sink::Sink;
use crate::output::worker::{CommitOrder, OutputWorker};
use crate::ring::{Waker, ring};
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// Every output's worker pool: the dispatcher's side of each, and the
/// workers as threads to start.
#[derive(Default)]
pub(super) struct Outputs {
    pub(super) counters: Vec<Arc<crate::metrics::OutputCounters>>,
    pub(super) pools: Vec<OutputPool>,
    pub(super) threads: Vec<StageThread>,
}

impl Outputs {
    /// `Err`: an output's TLS set-up failed (one line naming it).
    pub(super) fn build(settings: &Settings, shared: &Shared) -> Result<Self, String> {
        let mut outputs = Outputs::default();
        // Batches a network output's receiver rejects go to --dead-letter.
        let rejected = settings
            .dead_letter
            .as_deref()
            .map(|path| Arc::new(SharedDeadLetter::new(path)));
        for (index, output) in settings.outputs.iter().enumerate() {
            outputs.add(settings, shared, index, output, rejected.as_ref())?;
        }
        Ok(outputs)
    }

    /// Builds one output: its sink, `--output-workers` workers each behind
    /// a ring(1) slot, and the dispatcher's side of them.
    fn add(
        &mut self,
        settings: &Settings,
        shared: &Shared,
        output_index: usize,
        output: &OutputSpec,
        rejected: Option<&Arc<SharedDeadLetter>>,
    ) -> Result<(), String> {
        let counters = Arc::clone(&shared.output_counters[output_index]);
        self.counters.push(Arc::clone(&counters));
        if output
            .kind
            .tls()
            .is_some_and(|options| options.insecure_skip_verify)
        {
            eprintln!(
                "ringway: warning: output {}: insecure_skip_verify=true: the server's certificate is not checked, so anyone on the path can read and change what it sends",
                output.name
            );
        }
        if let crate::config::OutputKind::Kafka(target) = &output.kind
            && target.tls.is_none()
            && target
                .sasl
                .as_ref()
                .is_some_and(|sasl| sasl.mechanism == crate::config::KafkaSaslMechanism::Plain)
        {
            eprintln!(
                "ringway: warning: output {}: sasl=plain without tls sends the password to the brokers in the clear (add tls, or use sasl=scram-sha-512)",
                output.name
            );
        }
        // Validation built the TLS set-up already; a file changed since
        // then is refused here the same way.
        let sink = Arc::new(
            Sink::new(
                &output.kind,
                &output.name,
                &output.headers,
                settings.fsync,
                settings.data_dir.is_some(),
                settings.output_timeout,
                // A kafka: output's producer queues a batch (or line) for
                // each worker and one more.
                (settings.output_workers + 1) * settings.batch_bytes.max(settings.max_line_bytes),
                Arc::clone(&counters),
            )
            .map_err(|error| format!("output '{}': {error}", output.name))?,
        );
        let workers = settings.output_workers;
        let worker_wakers: Vec<Arc<Waker>> = (0..workers).map(|_| Waker::for_thread()).collect();
        let order = sink
            .ordered()
            .then(|| CommitOrder::new(worker_wakers.clone()));
        let finished = Arc::new(ArrayQueue::new(
            workers * (settings.dispatcher_to_worker_capacity + 2),
        ));
        let mut slots = Vec::new();
        for (index, waker) in worker_wakers.into_iter().enumerate() {
            let (slot_tx, slot_rx) = ring(
                settings.dispatcher_to_worker_capacity,
                Arc::clone(&shared.dispatcher_waker),
                Arc::clone(&waker),
                Arc::clone(&shared.worker_rings),
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
                dispatcher: Arc::clone(&shared.dispatcher_waker),
                retry_initial: settings.retry_initial,
                retry_max: settings.retry_max,
                dead_letter: rejected.cloned(),
                latency: Arc::clone(&shared.latency),
                light: shared.light.clone(),
            };
            self.threads.push((
                format!("ringway-out-{output_index}-{index}"),
                None,
                Box::new(move || worker.run()),
            ));
        }
        self.pools
            .push(OutputPool::new(slots, finished, Arc::clone(&counters)));
        Ok(())
    }
}

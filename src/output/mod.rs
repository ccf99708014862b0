//! Outputs: the dispatcher, the per-output worker pools and their sinks.
//!
//! `pool` holds the [`pool::Dispatcher`] (ring(16) → ring(1) slots, MRU
//! choice, fan-out) and the [`pool::OutputWorker`]s (retry, in-order
//! commit); `sink` holds what a worker writes to.

pub(crate) mod pool;
pub(crate) mod sink;

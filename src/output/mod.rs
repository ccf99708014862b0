//! Outputs: the dispatcher, the output workers and their sinks.
//!
//! [`dispatcher::Dispatcher`] (ring(16) → ring(1) slots, MRU choice,
//! fan-out) feeds the [`worker::OutputWorker`]s (retry, Retry-After,
//! dead-letter, in-order commit), which write to a [`sink::Sink`]: a file
//! ([`file::FileSink`]), stdout, a TCP connection ([`tcp::TcpSink`]), or
//! HTTP POSTs through the client in `http`, with OTLP protobuf bodies
//! encoded by `otlp`. `ringway demo`'s [`light::TrafficLight`] may hold
//! the workers before each write.

pub(crate) mod connect;
pub(crate) mod dispatcher;
pub(crate) mod failure;
pub(crate) mod file;
pub(crate) mod http;
pub(crate) mod kafka;
pub(crate) mod light;
pub(crate) mod otlp;
pub(crate) mod sink;
pub(crate) mod tcp;
pub(crate) mod worker;

//! ringway's integration tests, in one test binary (one link instead of
//! one per file): each module checks one area end to end by running the
//! real binary (`CARGO_BIN_EXE_ringway`) on real files and sockets.
//! Run one area with `cargo test --release --test it cli::`.

// Each area uses a part of the shared helpers.
#[allow(dead_code)]
mod common;

mod backpressure;
mod bad_input;
mod certs;
mod cli;
mod compare;
mod config;
mod config_env;
mod container_logs;
mod counters;
mod demo;
mod docs;
mod durability;
mod edge_cases;
mod file_input_safety;
mod file_pipeline;
mod kafka;
mod layering;
mod metrics;
mod mtls;
mod multiline;
mod otlp;
mod otlp_auth;
mod otlp_tls;
mod output_tls;
mod outputs;
mod rotation;
// x86-64 system call numbers and audit arch, like the profile it checks.
#[cfg(target_arch = "x86_64")]
mod seccomp;
mod shutdown;
mod source_fields;
mod sql;
mod sql_differential;
mod stats;
mod stdin;
mod tcp;
mod tls;
mod tls_reload;
mod transform;
mod tuning;
mod udp;

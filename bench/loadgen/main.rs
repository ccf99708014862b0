//! `loadgen`: the load generators and the machines' floors for ringway's
//! network inputs, one program with subcommands (`udp|tcp|otlp` ×
//! `send|floor`). Each `send` prints one JSON line on stdout at the end;
//! each `floor` prints `ready ADDR:PORT` once bound and one JSON line when
//! it ends (SIGINT/SIGTERM, or its own end condition). Messages go to
//! stderr; bad flags exit 2, network or protocol failures exit 1.
//!
//! Modules: `common` (stop flag, clocks, the one RNG, value parsers),
//! `udp` (sendmmsg blaster and recvmmsg floor), `tcp` (NDJSON sender and
//! read-and-discard floor), `otlp` (OTLP/HTTP sender on ringway's own HTTP
//! client, and a floor that parses request heads with ringway's receiver).
//! See bench/README.md for what each measures.
//!
//! Usage: loadgen udp send --to 127.0.0.1:5514 --count 1M
//!        loadgen udp floor --bind 127.0.0.1:0 --prefill 1M
//!        loadgen tcp send --target 127.0.0.1:5170 --duration 10s
//!        loadgen otlp floor --decode

mod common;
mod otlp;
mod tcp;
mod tls;
mod udp;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generators and bare floors for ringway's UDP, TCP and OTLP/HTTP inputs"
)]
struct Cli {
    #[command(subcommand)]
    protocol: Protocol,
}

#[derive(Subcommand)]
enum Protocol {
    /// Numbered syslog-like datagrams with sendmmsg; the bare recvmmsg floor.
    Udp {
        #[command(subcommand)]
        role: UdpRole,
    },
    /// NDJSON over TCP connections; a bare read-and-discard floor.
    Tcp {
        #[command(subcommand)]
        role: TcpRole,
    },
    /// OTLP/HTTP protobuf requests; a bare HTTP floor (optionally decoding).
    Otlp {
        #[command(subcommand)]
        role: OtlpRole,
    },
}

#[derive(Subcommand)]
enum UdpRole {
    /// Send datagrams (or probe the sender's own ceiling).
    Send(udp::SendArgs),
    /// Receive and discard, counting; prefill or live.
    Floor(udp::FloorArgs),
}

#[derive(Subcommand)]
enum TcpRole {
    /// Send whole NDJSON lines on N connections.
    Send(tcp::SendArgs),
    /// Read and discard on every accepted connection.
    Floor(tcp::FloorArgs),
}

#[derive(Subcommand)]
enum OtlpRole {
    /// POST pre-built ExportLogsServiceRequests on N keep-alive connections.
    Send(otlp::SendArgs),
    /// Answer 200 to every POST /v1/logs (with --decode, after decoding it).
    Floor(otlp::FloorArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.protocol {
        Protocol::Udp { role } => match role {
            UdpRole::Send(args) => udp::send(&args),
            UdpRole::Floor(args) => udp::floor(&args),
        },
        Protocol::Tcp { role } => match role {
            TcpRole::Send(args) => tcp::send(&args),
            TcpRole::Floor(args) => tcp::floor(&args),
        },
        Protocol::Otlp { role } => match role {
            OtlpRole::Send(args) => otlp::send(&args),
            OtlpRole::Floor(args) => otlp::floor(&args),
        },
    };
    std::process::exit(code);
}

/// A usage error found after parsing (a combination clap cannot express):
/// one line on stderr and exit 2, as clap's own.
fn usage_error(message: &str) -> i32 {
    eprintln!("loadgen: error: {message}");
    2
}

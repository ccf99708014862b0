//! The arguments of `ringway sql 'QUERY' [--format F] [FILE]`; the run
//! itself is `crate::pipeline::run_sql` (it composes the syslog converter
//! and the transform, as a pipeline does).

use crate::config::{self, Format};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct SqlArgs {
    /// The query: SELECT … FROM logs [WHERE …], the subset --sql takes (docs/transform.md).
    #[arg(value_name = "QUERY")]
    pub query: String,

    /// How lines are read: json (NDJSON), raw (each line is the field body), syslog (RFC 3164/5424, converted to
    /// ringway's JSON first), or cri or docker (container log lines, each converted to {"time","stream","body"};
    /// partial lines are not joined here)
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = parse_sql_format)]
    pub format: Format,

    /// Longest line kept whole; longer ones are cut to this many bytes (counted as truncated).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub max_line: usize,

    /// The file to read, line by line; standard input when absent or -.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `--format`: a run's formats but `auto`, which decides per line what a
/// file input's lines are (this command reads one format).
fn parse_sql_format(text: &str) -> Result<Format, String> {
    match config::parse_format_flag(text)? {
        Format::Auto => Err(
            "format auto is for file inputs of ringway run (use raw, json, syslog, cri or docker)"
                .to_string(),
        ),
        format => Ok(format),
    }
}

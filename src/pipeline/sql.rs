//! `ringway sql 'QUERY' [--format F] [FILE]`: runs a query over a file or
//! standard input and writes each resulting record and a newline to
//! standard output, for trying a query out before it goes into `--sql`.
//! The same [`Transformer`] as a CPU worker's does the work; syslog lines
//! are converted to ringway's JSON first, as a syslog lane does; CRI and
//! Docker lines too, each line on its own (partial lines are not joined
//! here).

use crate::config::Format;
use crate::scan::cri::{self, DockerParser};
use crate::scan::syslog::SyslogParser;
use crate::transform::{Outcome, Query, Shape, Transformer};
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;

/// Runs `ringway sql`: `query` over the lines of `file` (standard input
/// when `None` or `-`) read as `format`, each record to standard output.
/// Returns the exit status: 0; 2 for a query that does not compile or a
/// FILE that cannot be opened (bad arguments, like `run`'s); 1 when reading
/// or writing failed midway.
pub(crate) fn run_sql(
    query: &str,
    format: Format,
    max_line_bytes: usize,
    file: Option<&Path>,
) -> i32 {
    let text = query;
    let query = match Query::compile(text) {
        Ok(query) => query,
        Err(error) => {
            // As run and check say it: the query on one line.
            eprintln!(
                "ringway: error: --sql: {error}: {}",
                text.replace('\n', "\\n")
            );
            return 2;
        }
    };
    let Some(input) = open_input(file) else {
        return 2;
    };
    let max_line_bytes = max_line_bytes.max(1);
    let max_record_bytes = match format {
        Format::Syslog => SyslogParser::max_json_bytes(max_line_bytes),
        Format::Raw | Format::Json => max_line_bytes,
        // Each message byte becomes at most a 6-byte escape.
        Format::Cri | Format::Docker | Format::Auto => {
            max_line_bytes * 6 + cri::RECORD_OVERHEAD_BYTES
        }
    };
    let mut docker = DockerParser::new(max_line_bytes);
    let mut transformer = Transformer::new(
        Some(std::sync::Arc::new(query)),
        Vec::new(),
        max_record_bytes,
    );
    let mut syslog = SyslogParser::new();
    let mut converted = vec![0u8; max_record_bytes];
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = Vec::new();
    let (mut invalid, mut truncated, mut errors) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                eprintln!("ringway: error: reading input: {error}");
                return 1;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.len() > max_line_bytes {
            line.truncate(max_line_bytes);
            truncated += 1;
        }
        let (record, shape): (&[u8], Shape) = match format {
            Format::Json => (&line, Shape::Json),
            Format::Raw => (&line, Shape::Raw),
            Format::Syslog => {
                let (written, _) = syslog.write_json(&line, &mut converted);
                let json = converted[..written]
                    .strip_suffix(b"\n")
                    .unwrap_or(&converted[..written]);
                (json, Shape::Json)
            }
            Format::Cri | Format::Docker | Format::Auto => {
                let write = |parsed: cri::ContainerLine<'_>| {
                    cri::write_record(
                        &mut converted,
                        parsed.time,
                        parsed.stream,
                        cri::Body::Text(parsed.message),
                        b"",
                    )
                };
                let written = match format {
                    Format::Cri => cri::parse_cri(&line).map(write),
                    _ => docker.parse(&line, write),
                };
                let Some(written) = written else {
                    invalid += 1;
                    continue;
                };
                (&converted[..written - 1], Shape::Json)
            }
        };
        let result = transformer.process(record, shape);
        errors += u64::from(result.errors);
        let written = match result.outcome {
            Outcome::Invalid => {
                invalid += 1;
                continue;
            }
            Outcome::Filtered => continue,
            Outcome::Kept => out.write_all(record),
            Outcome::Projected => out.write_all(transformer.output()),
        };
        if let Err(error) = written.and_then(|()| out.write_all(b"\n")) {
            return write_failed(&error);
        }
    }
    if let Err(error) = out.flush() {
        return write_failed(&error);
    }
    if invalid > 0 {
        eprintln!("ringway sql: {invalid} invalid lines");
    }
    if truncated > 0 {
        eprintln!("ringway sql: {truncated} truncated lines");
    }
    if errors > 0 {
        eprintln!("ringway sql: {errors} runtime errors (each gave NULL)");
    }
    0
}

/// The file to read (standard input for none or `-`); `None` after saying
/// why it cannot be opened.
fn open_input(file: Option<&Path>) -> Option<Box<dyn Read>> {
    match file {
        None => Some(Box::new(std::io::stdin().lock())),
        Some(path) if path.as_os_str() == "-" => Some(Box::new(std::io::stdin().lock())),
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Some(Box::new(file)),
            Err(error) => {
                eprintln!("ringway: error: cannot open {}: {error}", path.display());
                None
            }
        },
    }
}

/// A closed pipe (`ringway sql … | head`) ends the run quietly.
fn write_failed(error: &std::io::Error) -> i32 {
    if error.kind() == ErrorKind::BrokenPipe {
        0
    } else {
        eprintln!("ringway: error: writing output: {error}");
        1
    }
}

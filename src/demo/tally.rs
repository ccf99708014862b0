//! The tally at the end of the demo: what each source handed over against
//! what reached the output file, counted in the file itself.
//!
//! [`count_output`] reads the output file once, line by line, and finds
//! each record's [`Marker`] and sequence number ([`Written`]: distinct
//! records per source, duplicates, lines from no source). [`Tally`] puts
//! that beside the sources' own counts and ringway's kernel-drop counter and
//! checks the three promises: file lines written = lines appended; OTLP
//! records written = records sent; UDP received + kernel drops = sent.

use super::sources::Marker;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

/// Digits of a record's sequence number (`sources::record_text`).
const SEQUENCE_DIGITS: usize = 8;

/// Records found in the output file.
#[derive(Default)]
pub(crate) struct Written {
    /// Distinct sequence numbers per source, in [`Marker::ALL`]'s order.
    pub distinct: [u64; 3],
    /// Records of a source seen more than once.
    pub duplicates: [u64; 3],
    /// Lines that carry no source's marker (or a sequence number past what
    /// the source sent).
    pub foreign: u64,
}

/// Counts the records in `path`; `sent[i]` bounds the sequence numbers of
/// source `i` (one bit each marks those seen).
pub(crate) fn count_output(path: &Path, sent: [u64; 3]) -> std::io::Result<Written> {
    let reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut seen: Vec<Vec<u64>> = sent
        .iter()
        .map(|&count| vec![0u64; count.div_ceil(64) as usize])
        .collect();
    let mut written = Written::default();
    for line in reader.split(b'\n') {
        let line = line?;
        let found = Marker::ALL.iter().enumerate().find_map(|(index, marker)| {
            let word = marker.word().as_bytes();
            let at = memchr::memmem::find(&line, word)?;
            let digits = line.get(at + word.len() + 1..at + word.len() + 1 + SEQUENCE_DIGITS)?;
            let sequence: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
            (sequence < sent[index]).then_some((index, sequence))
        });
        let Some((index, sequence)) = found else {
            written.foreign += 1;
            continue;
        };
        let (word, bit) = ((sequence / 64) as usize, 1u64 << (sequence % 64));
        if seen[index][word] & bit != 0 {
            written.duplicates[index] += 1;
        } else {
            seen[index][word] |= bit;
            written.distinct[index] += 1;
        }
    }
    Ok(written)
}

/// The tally's figures, each from a real count.
pub(crate) struct Tally {
    pub written: Written,
    pub file_appended: u64,
    pub udp_sent: u64,
    /// Datagrams the kernel dropped on the UDP input's socket (ringway's
    /// `kernel_drops`).
    pub udp_kernel_drops: u64,
    /// OTLP records of requests answered 200.
    pub otlp_sent: u64,
    pub otlp_retries: u64,
    /// OTLP records of a request given up at the end (never accepted, so
    /// never owed).
    pub otlp_abandoned: u64,
}

impl Tally {
    fn file_holds(&self) -> bool {
        self.written.distinct[0] == self.file_appended && self.written.duplicates[0] == 0
    }

    fn udp_holds(&self) -> bool {
        self.written.distinct[1] + self.udp_kernel_drops == self.udp_sent
            && self.written.duplicates[1] == 0
    }

    fn otlp_holds(&self) -> bool {
        self.written.distinct[2] == self.otlp_sent && self.written.duplicates[2] == 0
    }

    /// The promises that failed, by name; empty when all three hold.
    pub fn failures(&self) -> Vec<&'static str> {
        let mut failed = Vec::new();
        if !self.file_holds() {
            failed.push("file");
        }
        if !self.otlp_holds() {
            failed.push("OTLP");
        }
        if !self.udp_holds() {
            failed.push("UDP");
        }
        if self.written.foreign > 0 {
            failed.push("unknown lines");
        }
        failed
    }
}

/// `=` or `≠`.
fn sign(holds: bool) -> &'static str {
    if holds { "=" } else { "≠" }
}

/// ", N duplicated" when there are any.
fn duplicated(count: u64) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(", {count} DUPLICATED")
    }
}

/// "none lost" or "N LOST" (or "N too many").
fn lost(expected: u64, found: u64) -> String {
    match expected.cmp(&found) {
        std::cmp::Ordering::Equal => "none lost".to_string(),
        std::cmp::Ordering::Greater => format!("{} LOST", expected - found),
        std::cmp::Ordering::Less => format!("{} too many", found - expected),
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = &self.written;
        writeln!(
            f,
            "  file: lines written {} {} lines appended {} ({}{})",
            written.distinct[0],
            sign(self.file_holds()),
            self.file_appended,
            lost(self.file_appended, written.distinct[0]),
            duplicated(written.duplicates[0]),
        )?;
        let abandoned = if self.otlp_abandoned > 0 {
            format!(
                "; {} records given up at the end, never accepted",
                self.otlp_abandoned
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "  OTLP: records written {} {} sent {} ({}, {} retries after 429{}{})",
            written.distinct[2],
            sign(self.otlp_holds()),
            self.otlp_sent,
            lost(self.otlp_sent, written.distinct[2]),
            self.otlp_retries,
            duplicated(written.duplicates[2]),
            abandoned,
        )?;
        let accounted = written.distinct[1] + self.udp_kernel_drops;
        let udp_outcome = if self.udp_holds() {
            "every loss counted".to_string()
        } else {
            let gap = if self.udp_sent >= accounted {
                format!("{} NOT ACCOUNTED FOR", self.udp_sent - accounted)
            } else {
                format!("{} too many", accounted - self.udp_sent)
            };
            format!("{gap}{}", duplicated(written.duplicates[1]))
        };
        writeln!(
            f,
            "  UDP:  received {} + kernel drops {} {} sent {} ({udp_outcome})",
            written.distinct[1],
            self.udp_kernel_drops,
            sign(self.udp_holds()),
            self.udp_sent,
        )?;
        if written.foreign > 0 {
            writeln!(
                f,
                "  the output holds {} lines that no source sent",
                written.foreign
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(distinct: [u64; 3], duplicates: [u64; 3]) -> Tally {
        Tally {
            written: Written {
                distinct,
                duplicates,
                foreign: 0,
            },
            file_appended: 10,
            udp_sent: 10,
            udp_kernel_drops: 3,
            otlp_sent: 20,
            otlp_retries: 2,
            otlp_abandoned: 0,
        }
    }

    #[test]
    fn the_tally_holds_only_when_every_record_is_accounted_for() {
        let exact = tally([10, 7, 20], [0; 3]);
        assert!(exact.failures().is_empty());
        let text = exact.to_string();
        assert!(
            text.contains("lines written 10 = lines appended 10 (none lost)"),
            "{text}"
        );
        assert!(
            text.contains("received 7 + kernel drops 3 = sent 10"),
            "{text}"
        );
        assert!(
            text.contains("records written 20 = sent 20 (none lost, 2 retries after 429)"),
            "{text}"
        );

        let short = tally([9, 6, 19], [0; 3]);
        assert_eq!(short.failures(), ["file", "OTLP", "UDP"]);
        let text = short.to_string();
        assert!(
            text.contains("lines written 9 ≠ lines appended 10 (1 LOST)"),
            "{text}"
        );
        assert!(text.contains("1 NOT ACCOUNTED FOR"), "{text}");

        let doubled = tally([10, 7, 20], [1, 0, 0]);
        assert_eq!(doubled.failures(), ["file"]);
    }

    #[test]
    fn the_output_is_counted_by_marker_and_sequence() {
        let dir = std::env::temp_dir().join(format!("ringway-tally-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.log");
        std::fs::write(
            &path,
            "demo-file-record 00000000 a\n\
             {\"msg\":\"demo-udp-record 00000001 b\"}\n\
             demo-file-record 00000000 a\n\
             {\"body\":\"demo-otlp-record 00000000 c\"}\n\
             stray\n\
             demo-file-record 00000009 past what was sent\n",
        )
        .unwrap();
        let written = count_output(&path, [2, 2, 1]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(written.distinct, [1, 1, 1]);
        assert_eq!(written.duplicates, [1, 0, 0]);
        assert_eq!(written.foreign, 2);
    }
}

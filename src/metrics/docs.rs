//! docs/metrics.md's generated tables, rendered from the counter table
//! (`table`) and compared with the committed file, so the docs cannot
//! drift from the code. `RINGWAY_UPDATE_DOCS=1 cargo test --lib
//! metrics::docs` writes them anew.

use super::table::*;

/// Where each generated block starts and ends in docs/metrics.md.
const BLOCKS: [(&str, &str); 2] = [
    ("<!-- BEGIN metric table -->", "<!-- END metric table -->"),
    ("<!-- BEGIN summary table -->", "<!-- END summary table -->"),
];

/// A cell: no `|` may end it early.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// `ringway_dropped_records_total{input,reason="invalid"}`.
fn sample_name(entry: &str, meta: &Meta) -> String {
    let mut labels = vec![entry.to_string()];
    labels.extend(meta.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
    format!("{}{{{}}}", meta.family.name, labels.join(","))
}

/// One row per family: name, type, labels, which entries carry it and
/// what it means.
fn metric_table() -> String {
    let scopes = scopes();
    let mut out =
        String::from("| metric | type | labels | carried by | meaning |\n|---|---|---|---|---|\n");
    for family in FAMILIES {
        let mut carried_by: Vec<&str> = Vec::new();
        for (scope, _, metas) in &scopes {
            if metas.iter().any(|meta| std::ptr::eq(meta.family, family))
                && !carried_by.contains(scope)
            {
                carried_by.push(scope);
            }
        }
        if std::ptr::eq(family, &HTTP_RESPONSES) {
            carried_by.push("OTLP inputs");
        }
        // Build info and batch latency are one per process.
        let carried_by = if carried_by.is_empty() {
            "the process".to_string()
        } else {
            carried_by.join(", ")
        };
        let labels = if family.labels.is_empty() {
            "—".to_string()
        } else {
            let quoted: Vec<String> = family.labels.iter().map(|l| format!("`{l}`")).collect();
            quoted.join(", ")
        };
        let mut meaning = family.help.to_string();
        if !family.details.is_empty() {
            meaning.push(' ');
            meaning.push_str(family.details);
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            family.name,
            family.kind.as_str(),
            labels,
            carried_by,
            cell(&meaning)
        ));
    }
    out
}

/// One row per summary key: the entry list it is in, which entries
/// carry it, its sample in /metrics and its words on the stats line.
fn summary_table() -> String {
    let mut out = String::from(
        "| summary entry | key | carried by | sample in `/metrics` | stats line |\n|---|---|---|---|---|\n",
    );
    let mut row = |entry: &str, key: &str, carried_by: &str, sample: &str, stats: &str| {
        out.push_str(&format!(
            "| {entry} | `{key}` | {carried_by} | `{sample}` | {stats} |\n"
        ));
    };
    for (carried_by, entry, metas) in scopes() {
        for meta in metas {
            let Some(key) = meta.key else { continue };
            let mut stats = Vec::new();
            if let Some(short) = meta.stats.short {
                stats.push(format!("short: `{short} +N`"));
            }
            if let Some(long) = meta.stats.long {
                stats.push(format!("long: `{long} N`"));
            }
            let stats = if stats.is_empty() {
                "—".to_string()
            } else {
                stats.join(", ")
            };
            row(entry, key, carried_by, &sample_name(entry, meta), &stats);
        }
        if carried_by == OTLP.carried_by {
            // The responses by status code: a map in the summary, one
            // sample per code in /metrics.
            row(
                OTLP.entry,
                "http_responses",
                OTLP.carried_by,
                &format!("{}{{input,code}}", HTTP_RESPONSES.name),
                "short: `otlp 429 +N`, `otlp errors +N`; long: `otlp 200 N 429 N other N`",
            );
        }
    }
    out
}

/// `text` with every generated block written anew.
fn regenerate(text: &str) -> Result<String, String> {
    let mut text = text.to_string();
    for ((begin, end), body) in BLOCKS.iter().zip([metric_table(), summary_table()]) {
        let start = text
            .find(begin)
            .ok_or_else(|| format!("no {begin} line in docs/metrics.md"))?
            + begin.len();
        let stop = text[start..]
            .find(end)
            .ok_or_else(|| format!("no {end} line after {begin} in docs/metrics.md"))?
            + start;
        text.replace_range(start..stop, &format!("\n{body}"));
    }
    Ok(text)
}

#[test]
fn docs_metrics_md_is_generated_from_the_counter_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let expected = regenerate(&committed).unwrap_or_else(|error| panic!("{error}"));
    if std::env::var_os("RINGWAY_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/metrics.md");
        return;
    }
    if committed != expected {
        let old: Vec<&str> = committed.lines().collect();
        let new: Vec<&str> = expected.lines().collect();
        let mut diff = String::new();
        for line in old.iter().filter(|line| !new.contains(line)) {
            diff.push_str(&format!("- {line}\n"));
        }
        for line in new.iter().filter(|line| !old.contains(line)) {
            diff.push_str(&format!("+ {line}\n"));
        }
        panic!(
            "docs/metrics.md is not what src/metrics/table.rs generates:\n{diff}\nRegenerate it with: RINGWAY_UPDATE_DOCS=1 cargo test --lib metrics::docs"
        );
    }
}

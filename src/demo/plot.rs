//! `ringway demo --plot FILE.svg`: the run's samples as a hand-written SVG
//! of two panels over time. Above, each ring stage's occupancy as a share
//! of its capacity, over a band that is green or red with the light. Below,
//! the sources' reactions, each scaled to its own peak (named in the
//! legend): the file reader's bytes behind, UDP kernel drops per second and
//! OTLP 429s per second.

use super::Sample;
use crate::cli::DemoArgs;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 220.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
/// Between the panels, room for the lower panel's title.
const GAP: f64 = 60.0;
const BOTTOM: f64 = 40.0;
/// Colours of the three lines of each panel.
const COLOURS: [&str; 3] = ["#1f77b4", "#ff7f0e", "#9467bd"];

/// How a series' peak is written in the legend.
type Shown = dyn Fn(f64) -> String;

/// The SVG document for `samples` (oldest first).
pub(crate) fn svg(samples: &[Sample], args: &DemoArgs) -> String {
    let height = TOP + 2.0 * PANEL_HEIGHT + GAP + BOTTOM;
    let first = samples.first().map_or(0.0, |sample| sample.at_seconds);
    let last = samples.last().map_or(1.0, |sample| sample.at_seconds);
    let span = (last - first).max(1e-3);
    let x = |at: f64| LEFT + (at - first) / span * (WIDTH - LEFT - RIGHT);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14">ringway demo: light green {}% of each {:?}; ring occupancy (top) and source reactions (bottom) over {span:.0}s</text>"#,
        args.green, args.cycle
    );
    let upper = TOP;
    let lower = TOP + PANEL_HEIGHT + GAP;
    // The light: each sample's interval tinted green and red in
    // proportion to the time the light was each.
    let mut previous_at = first;
    for sample in samples {
        let (from, to) = (x(previous_at), x(sample.at_seconds));
        previous_at = sample.at_seconds;
        for (colour, share) in [
            ("#2ca02c", sample.green_share),
            ("#d62728", 1.0 - sample.green_share),
        ] {
            let _ = writeln!(
                out,
                r#"<rect x="{from:.1}" y="{upper}" width="{:.1}" height="{PANEL_HEIGHT}" fill="{colour}" fill-opacity="{:.2}"/>"#,
                (to - from).max(0.0),
                0.25 * share.clamp(0.0, 1.0)
            );
        }
    }
    frame(&mut out, upper, "ring occupancy, % of capacity", "100%");
    frame(
        &mut out,
        lower,
        "source reactions, each against its peak",
        "peak",
    );
    let stages = ["io→cpu", "cpu→dispatcher", "dispatcher→worker"];
    for (stage, (name, colour)) in stages.iter().zip(COLOURS).enumerate() {
        let points = samples.iter().map(|sample| {
            let (occupancy, capacity) = sample.rings[stage];
            let share = if capacity > 0.0 {
                occupancy / capacity
            } else {
                0.0
            };
            (x(sample.at_seconds), share)
        });
        polyline(&mut out, upper, points, colour);
        legend(&mut out, upper, stage, colour, name);
    }
    let rate = |field: fn(&Sample) -> f64| -> Vec<f64> {
        let mut before: Option<&Sample> = None;
        samples
            .iter()
            .map(|sample| {
                let value = before.map_or(0.0, |before| {
                    let seconds = (sample.at_seconds - before.at_seconds).max(1e-3);
                    (field(sample) - field(before)).max(0.0) / seconds
                });
                before = Some(sample);
                value
            })
            .collect()
    };
    let per_second = |peak: f64| format!("{peak:.0}/s");
    let series: [(&str, Vec<f64>, &Shown); 3] = [
        (
            "file bytes behind",
            samples
                .iter()
                .map(|sample| sample.file_behind_bytes)
                .collect(),
            &|peak| format!("{:.1} KB", peak / 1e3),
        ),
        (
            "UDP kernel drops",
            rate(|sample| sample.udp_kernel_drops),
            &per_second,
        ),
        ("OTLP 429s", rate(|sample| sample.otlp_refused), &per_second),
    ];
    for (index, ((name, values, shown), colour)) in series.iter().zip(COLOURS).enumerate() {
        let peak = values.iter().copied().fold(0.0, f64::max);
        let points = samples.iter().zip(values).map(|(sample, value)| {
            (
                x(sample.at_seconds),
                if peak > 0.0 { value / peak } else { 0.0 },
            )
        });
        polyline(&mut out, lower, points, colour);
        legend(
            &mut out,
            lower,
            index,
            colour,
            &format!("{name} (peak {})", shown(peak)),
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.0}">0s</text><text x="{:.0}" y="{:.0}" text-anchor="end">{span:.0}s</text>"#,
        lower + PANEL_HEIGHT + 18.0,
        WIDTH - RIGHT,
        lower + PANEL_HEIGHT + 18.0
    );
    out.push_str("</svg>\n");
    out
}

/// A panel's box, title and top label.
fn frame(out: &mut String, top: f64, title: &str, full: &str) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{:.0}" height="{PANEL_HEIGHT}" fill="none" stroke="#888"/><text x="{LEFT}" y="{:.0}">{title}</text><text x="{:.0}" y="{:.0}" text-anchor="end">{full}</text><text x="{:.0}" y="{:.0}" text-anchor="end">0</text>"##,
        WIDTH - LEFT - RIGHT,
        top - 6.0,
        LEFT - 4.0,
        top + 10.0,
        LEFT - 4.0,
        top + PANEL_HEIGHT,
    );
}

/// `points` as `(x, share of the panel's height)`.
fn polyline(out: &mut String, top: f64, points: impl Iterator<Item = (f64, f64)>, colour: &str) {
    let mut list = String::new();
    for (x, share) in points {
        let y = top + PANEL_HEIGHT * (1.0 - share.clamp(0.0, 1.0));
        let _ = write!(list, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
        list.trim_end()
    );
}

fn legend(out: &mut String, top: f64, index: usize, colour: &str, text: &str) {
    let x = LEFT + 8.0 + 290.0 * index as f64;
    let y = top + 16.0;
    let _ = writeln!(
        out,
        r#"<rect x="{x:.0}" y="{:.0}" width="12" height="3" fill="{colour}"/><text x="{:.0}" y="{y:.0}">{}</text>"#,
        y - 4.0,
        x + 16.0,
        escape(text)
    );
}

/// Text for an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_plot_is_one_svg_with_a_line_per_stage_and_reaction() {
        let args = DemoArgs {
            duration: Duration::from_secs(2),
            green: 30,
            cycle: Duration::from_secs(1),
            no_tty: true,
            plot: None,
        };
        let samples: Vec<Sample> = (0..8)
            .map(|index| Sample {
                at_seconds: index as f64 * 0.25,
                green_share: f64::from(u8::from(index % 4 == 0)),
                rings: [(4.0, 12.0), (48.0, 48.0), (2.0, 2.0)],
                file_behind_bytes: 100.0 * index as f64,
                udp_kernel_drops: 10.0 * index as f64,
                ..Sample::default()
            })
            .collect();
        let svg = svg(&samples, &args);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline ").count(), 6);
        assert!(svg.contains("UDP kernel drops (peak 40/s)"), "{svg}");
    }
}

//! Latency plots as self-contained SVG (no fonts, scripts or external files), one line per run.
//!
//! Four panels: TTFT, ITL and end-to-end latency against percentile on the "nines" axis
//! (x = −log10(1 − q): 0 %, 90 %, 99 %, 99.9 %, 99.99 %, then max) — the HdrHistogram plot, where
//! tails are as wide as the median — and successful requests per second over the run, with the
//! warm-up shaded. Input: the JSON reports `run --out` writes ([`crate::stats::Curves`] and
//! [`crate::stats::Second`] inside them), so a plot can be redrawn from archived results.

use std::fmt::Write;

use crate::report::Report;

/// Canvas size (px).
const W: f64 = 1200.0;
const H: f64 = 820.0;
/// Panel grid: 2 × 2 below a title band and above a legend band.
const TOP: f64 = 50.0;
const LEGEND: f64 = 70.0;
const PAD: (f64, f64, f64, f64) = (70.0, 20.0, 30.0, 45.0); // left, right, top, bottom
/// Line colours (Okabe–Ito, distinguishable with colour-blindness), cycled.
const COLOURS: &[&str] = &[
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];
/// Where the curve's last point (the maximum) is drawn on the nines axis.
const X_MAX_NINES: f64 = 4.6;

/// Escapes text for SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" axis: ticks at 1, 2 or 5 × 10^k covering `[0, max]`.
fn ticks(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

/// A tick label with as many decimals as the tick step needs (step 0.002 → 3 decimals).
fn label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    } else {
        0
    };
    format!("{v:.decimals$}")
}

/// x position of quantile `q` on the nines axis (the maximum, q = 1, at [`X_MAX_NINES`]).
fn nines(q: f64) -> f64 {
    if q >= 1.0 {
        X_MAX_NINES
    } else {
        (-(1.0 - q).log10()).clamp(0.0, 4.0)
    }
}

struct Panel {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Panel {
    fn at(col: usize, row: usize) -> Panel {
        let cw = W / 2.0;
        let ch = (H - TOP - LEGEND) / 2.0;
        Panel {
            x: col as f64 * cw + PAD.0,
            y: TOP + row as f64 * ch + PAD.2,
            w: cw - PAD.0 - PAD.1,
            h: ch - PAD.2 - PAD.3,
        }
    }

    /// Frame, title, y grid with labels; returns the y scale's top value.
    fn frame(&self, out: &mut String, title: &str, y_unit: &str, y_max: f64) -> f64 {
        let (top, ys) = ticks(y_max);
        let step = ys.get(1).copied().unwrap_or(top);
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold">{}</text>"##,
            self.x,
            self.y - 10.0,
            esc(title)
        );
        for v in ys {
            let py = self.y + self.h - v / top * self.h;
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                self.x,
                self.x + self.w,
                self.x - 6.0,
                py + 4.0,
                label(v, step)
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">{}</text>"##,
            self.x - 52.0,
            self.y + self.h / 2.0,
            self.x - 52.0,
            self.y + self.h / 2.0,
            esc(y_unit)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
            self.x, self.y, self.w, self.h
        );
        top
    }

    fn x_labels(&self, out: &mut String, marks: &[(f64, String)], x_max: f64) {
        for (v, text) in marks {
            let px = self.x + v / x_max * self.w;
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
                self.y,
                self.y + self.h,
                self.y + self.h + 15.0,
                esc(text)
            );
        }
    }

    fn empty(&self, out: &mut String) {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" fill="#888" text-anchor="middle">no data</text>"##,
            self.x + self.w / 2.0,
            self.y + self.h / 2.0
        );
    }

    /// One run's line; points in data units.
    fn line(&self, out: &mut String, pts: &[(f64, f64)], x_max: f64, y_top: f64, colour: &str) {
        let mut path = String::new();
        for (x, y) in pts {
            let px = self.x + (x / x_max).clamp(0.0, 1.0) * self.w;
            let py = self.y + self.h - (y / y_top).clamp(0.0, 1.0) * self.h;
            let _ = write!(path, "{px:.1},{py:.1} ");
        }
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"##,
            path.trim_end()
        );
    }
}

type CurveOf = fn(&Report) -> &[[f64; 2]];

fn percentile_panel(out: &mut String, p: &Panel, title: &str, reports: &[Report], of: CurveOf) {
    let y_max = reports
        .iter()
        .flat_map(|r| of(r).iter().map(|c| c[1]))
        .fold(0.0, f64::max);
    let top = p.frame(out, title, "ms", y_max);
    let marks: Vec<(f64, String)> = [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (X_MAX_NINES, "max"),
    ]
    .iter()
    .map(|(v, t)| (*v, (*t).to_string()))
    .collect();
    p.x_labels(out, &marks, X_MAX_NINES);
    if reports.iter().all(|r| of(r).is_empty()) {
        p.empty(out);
    }
    for (i, r) in reports.iter().enumerate() {
        let pts: Vec<(f64, f64)> = of(r).iter().map(|c| (nines(c[0]), c[1])).collect();
        if !pts.is_empty() {
            p.line(out, &pts, X_MAX_NINES, top, COLOURS[i % COLOURS.len()]);
        }
    }
}

fn timeline_panel(out: &mut String, p: &Panel, reports: &[Report]) {
    let y_max = reports
        .iter()
        .flat_map(|r| r.stats.timeline.iter().map(|s| s.ok as f64))
        .fold(0.0, f64::max);
    let x_end = reports
        .iter()
        .map(|r| (r.stats.timeline.len() as f64).max(r.plan.duration_s))
        .fold(1.0, f64::max);
    let top = p.frame(out, "Successful requests per second", "req/s", y_max);
    if let Some(w) = reports
        .first()
        .map(|r| r.plan.warmup_s)
        .filter(|w| *w > 0.0)
    {
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#000" fill-opacity="0.06"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#666">warm-up</text>"##,
            p.x,
            p.y,
            (w / x_end).min(1.0) * p.w,
            p.h,
            p.x + 4.0,
            p.y + 12.0
        );
    }
    let (_, xs) = ticks(x_end);
    let step = xs.get(1).copied().unwrap_or(1.0);
    let marks: Vec<(f64, String)> = xs
        .into_iter()
        .filter(|v| *v <= x_end)
        .map(|v| (v, format!("{}s", label(v, step))))
        .collect();
    p.x_labels(out, &marks, x_end);
    if reports.iter().all(|r| r.stats.timeline.is_empty()) {
        p.empty(out);
    }
    for (i, r) in reports.iter().enumerate() {
        // Each bucket at its midpoint.
        let pts: Vec<(f64, f64)> = r
            .stats
            .timeline
            .iter()
            .map(|s| (f64::from(s.t) + 0.5, s.ok as f64))
            .collect();
        if !pts.is_empty() {
            p.line(out, &pts, x_end, top, COLOURS[i % COLOURS.len()]);
        }
    }
}

/// The SVG document for `reports` (one colour per report, in order), titled `title`.
pub fn svg(reports: &[Report], title: &str) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"##
    );
    let _ = writeln!(out, r##"<rect width="{W}" height="{H}" fill="#fff"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="20" y="30" font-size="18" font-weight="bold">{}</text>"##,
        esc(title)
    );
    percentile_panel(
        &mut out,
        &Panel::at(0, 0),
        "Time to first token",
        reports,
        |r| &r.stats.curves.ttft_ms,
    );
    percentile_panel(
        &mut out,
        &Panel::at(1, 0),
        "Inter-token latency",
        reports,
        |r| &r.stats.curves.itl_ms,
    );
    percentile_panel(
        &mut out,
        &Panel::at(0, 1),
        "End-to-end latency",
        reports,
        |r| &r.stats.curves.e2e_ms,
    );
    timeline_panel(&mut out, &Panel::at(1, 1), reports);
    // Legend: up to 4 entries per row.
    for (i, r) in reports.iter().enumerate() {
        let x = 20.0 + (i % 4) as f64 * (W - 40.0) / 4.0;
        let y = H - LEGEND + 25.0 + (i / 4) as f64 * 20.0;
        let c = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{y:.1}" font-size="12">{} ({:.0} req/s, {} errors)</text>"##,
            y - 4.0,
            x + 24.0,
            y - 4.0,
            x + 30.0,
            esc(&r.label),
            r.stats.requests_per_s,
            r.stats.requests.errors.values().sum::<u64>()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::stats::{Curves, Second, Stats};

    fn report(label: &str, scale: f64, seconds: u32) -> Report {
        let curve: Vec<[f64; 2]> = crate::stats::curve_quantiles()
            .enumerate()
            .map(|(i, q)| [q, scale * (1.0 + i as f64)])
            .collect();
        let stats = Stats {
            curves: Curves {
                ttft_ms: curve.clone(),
                itl_ms: Vec::new(),
                e2e_ms: curve,
            },
            timeline: (0..seconds)
                .map(|t| Second {
                    t,
                    ok: 100 + u64::from(t),
                    errors: 0,
                    tokens: 0,
                })
                .collect(),
            ..Stats::default()
        };
        let plan = match crate::scenario::from_str(
            "name = \"t\"\nduration_s = 10\nwarmup_s = 2\n[arrival]\nkind = \"closed\"\nconcurrency = 1\n[workload]\nkind = \"fixed\"\ninput_tokens = 1\noutput_tokens = 1\n",
            &crate::scenario::Overrides::default(),
        ) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        Report {
            tool: "t".into(),
            label: label.into(),
            target: "http://x".into(),
            model: "m".into(),
            started_unix_s: 0,
            plan,
            stats,
            backends: Vec::new(),
            imbalance: None,
            notes: Vec::new(),
        }
    }

    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.lines()
            .filter_map(|l| l.split("points=\"").nth(1))
            .map(|p| {
                p.trim_end_matches("\"/>")
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap_or(("nan", "nan"));
                        (x.parse().unwrap_or(f64::NAN), y.parse().unwrap_or(f64::NAN))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_line_per_run_per_panel_with_data_all_inside_the_canvas() {
        let svg = svg(
            &[report("tollgate", 1.0, 10), report("nginx <&>", 2.0, 12)],
            "a & b",
        );
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        // TTFT + E2E + timeline for each of 2 runs; ITL is empty for both.
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 6);
        assert_eq!(svg.matches("no data").count(), 1, "the ITL panel says so");
        for l in &lines {
            assert!(
                l.iter()
                    .all(|(x, y)| (0.0..=W).contains(x) && (0.0..=H).contains(y))
            );
            // Percentile curves and the rising timeline go right and up (y shrinks).
            assert!(l.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 <= w[0].1));
        }
        assert!(svg.contains("nginx &lt;&amp;&gt;") && svg.contains("a &amp; b"));
        assert!(!svg.contains("<&>"));
        // Tags balance: every opened element is closed or self-closed.
        let opens = svg.matches("<text").count();
        assert_eq!(opens, svg.matches("</text>").count());
    }

    #[test]
    fn the_slower_run_is_drawn_higher_at_every_percentile() {
        let svg = svg(&[report("fast", 1.0, 3), report("slow", 3.0, 3)], "t");
        let lines = polylines(&svg);
        // Order: fast TTFT, slow TTFT, fast E2E, slow E2E, timelines.
        for (fast, slow) in [(&lines[0], &lines[1]), (&lines[2], &lines[3])] {
            assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(slow.iter()).skip(1) {
                assert_eq!(f.0, s.0);
                assert!(s.1 < f.1, "slow above fast (smaller y): {s:?} vs {f:?}");
            }
        }
    }

    #[test]
    fn nice_ticks_cover_the_maximum() {
        assert_eq!(ticks(7.3), (8.0, vec![0.0, 2.0, 4.0, 6.0, 8.0]));
        assert_eq!(ticks(100.0).0, 100.0);
        assert_eq!(ticks(0.0).0, 1.0);
        assert_eq!(ticks(f64::NAN).0, 1.0);
        assert_eq!(label(0.004, 0.002), "0.004");
        assert_eq!(label(12.5, 0.5), "12.5");
        assert_eq!(label(400.0, 100.0), "400");
        let (top, ys) = ticks(0.0011);
        let step = ys[1];
        let labels: Vec<String> = ys.iter().map(|v| label(*v, step)).collect();
        assert!((top - 0.0015).abs() < 1e-12, "{top}");
        assert_eq!(labels, ["0.0000", "0.0005", "0.0010", "0.0015"]);
    }
}

//! Aggregation of request outcomes into the numbers a report shows.
//!
//! Latencies go into HDR histograms in microseconds with 3 significant digits: values below
//! 2,048 µs are exact, larger ones are reported with ≤ 0.1% error (the bucket's highest
//! equivalent value, HdrHistogram's usual convention). Means and counts are exact (kept as sums).
//! Percentiles are nearest-rank, as `Histogram::value_at_quantile` defines them.
//!
//! # What counts
//! - Requests *sent* before the warm-up ends are excluded from the latency distributions, the
//!   counts, the token sums and the goodput attainment (they still count in `warmup_skipped`).
//! - Latency distributions use successful measured requests only; failures are counted by kind.
//! - Rates are steady-state: the window runs from the end of warm-up to the end of sending
//!   (`duration_s`, or the last completion if that comes first). `requests_per_s` counts
//!   successful completions inside the window and `output_tokens_per_s` the content tokens
//!   *received* inside it (each token stamped by the read that delivered it), whenever their
//!   request was sent. So the drain after sending stops neither dilutes nor inflates the rates
//!   (`drain_s` reports how long it took), and contenders are compared at the same offered load.
//! - Goodput: a successful request meets the SLOs when TTFT ≤ `ttft_ms` and TPOT ≤ `tpot_ms`
//!   (each optional). TPOT = (E2E − TTFT) / (output tokens − 1), for requests with ≥ 2 tokens.
//!   `attainment` is over measured requests (failures count as misses); `per_s` counts good
//!   completions inside the window.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::exec::{ErrorKind, Outcome};

/// Highest value the histograms hold (µs): one hour. Larger values are clamped to it.
const MAX_US: u64 = 3_600_000_000;

/// Significant digits kept: 3 = 0.1% resolution, ~30 KB per histogram over this range.
const SIG_DIGITS: u8 = 3;

/// Latency objectives for goodput.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// TTFT objective (ms).
    #[serde(default)]
    pub ttft_ms: Option<f64>,
    /// TPOT objective (ms per output token after the first).
    #[serde(default)]
    pub tpot_ms: Option<f64>,
}

/// Percentile summary of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Exact mean.
    pub mean: f64,
    /// 50th percentile.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// One latency distribution (µs in, ms out).
#[derive(Debug, Clone)]
pub struct Dist {
    hist: Option<Histogram<u64>>,
    sum: u128,
    count: u64,
}

impl Default for Dist {
    fn default() -> Self {
        Dist {
            hist: Histogram::new_with_bounds(1, MAX_US, SIG_DIGITS).ok(),
            sum: 0,
            count: 0,
        }
    }
}

impl Dist {
    /// Records one value in µs.
    pub fn record(&mut self, us: u64) {
        if let Some(h) = &mut self.hist {
            h.saturating_record(us.clamp(1, MAX_US));
        }
        self.sum += u128::from(us);
        self.count += 1;
    }

    /// Millisecond summary; all zeros when empty.
    pub fn summary(&self) -> Summary {
        let Some(h) = self.hist.as_ref().filter(|_| self.count > 0) else {
            return Summary::default();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: self.count,
            mean: self.sum as f64 / self.count as f64 / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Quantiles a percentile curve is sampled at: 1 − 10^(−k/10) for k = 0..=40 (0 … 99.99 %),
/// then the maximum. Evenly spaced on the "nines" axis latency plots use.
pub fn curve_quantiles() -> impl Iterator<Item = f64> {
    (0..=40)
        .map(|k| 1.0 - 10f64.powf(-f64::from(k) / 10.0))
        .chain(std::iter::once(1.0))
}

impl Dist {
    /// `[quantile, ms]` points at [`curve_quantiles`]; empty when there are no samples.
    pub fn curve(&self) -> Vec<[f64; 2]> {
        let Some(h) = self.hist.as_ref().filter(|_| self.count > 0) else {
            return Vec::new();
        };
        curve_quantiles()
            .map(|q| {
                let v = if q >= 1.0 {
                    h.max()
                } else {
                    h.value_at_quantile(q)
                };
                [q, v as f64 / 1000.0]
            })
            .collect()
    }
}

/// Percentile curves of the latency distributions, for plots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// TTFT `[quantile, ms]`.
    pub ttft_ms: Vec<[f64; 2]>,
    /// ITL `[quantile, ms]`.
    pub itl_ms: Vec<[f64; 2]>,
    /// E2E `[quantile, ms]`.
    pub e2e_ms: Vec<[f64; 2]>,
}

/// What happened in one second of the run (warm-up included), by completion time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started (this bucket covers `[t, t+1)`).
    pub t: u32,
    /// Successful completions.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Content tokens received (streaming: stamped per event; otherwise at completion).
    pub tokens: u64,
}

/// Request counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Outcomes received (measured + warm-up).
    pub finished: u64,
    /// Sent during warm-up, excluded.
    pub warmup_skipped: u64,
    /// Measured requests.
    pub measured: u64,
    /// Measured and successful.
    pub ok: u64,
    /// Measured failures by kind (`connect`, `timeout`, …); every kind present, zeros included.
    pub errors: BTreeMap<String, u64>,
    /// Statuses of `http_status` failures.
    pub status_codes: BTreeMap<String, u64>,
    /// A detail line for the first failure of each kind.
    pub error_examples: BTreeMap<String, String>,
}

/// Goodput against the SLOs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Goodput {
    /// The objectives used.
    pub slo: Slo,
    /// Successful measured requests meeting every objective.
    pub good: u64,
    /// good / measured (failures count as misses).
    pub attainment: f64,
    /// Good completions inside the window, per second.
    pub per_s: f64,
}

/// Everything computed from the outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Request counts and errors.
    pub requests: Counts,
    /// Steady-state window (s): end of warm-up → end of sending.
    pub window_s: f64,
    /// Time from the end of the window to the last completion (s).
    pub drain_s: f64,
    /// TTFT (ms).
    pub ttft_ms: Summary,
    /// Inter-token latency (ms), every gap.
    pub itl_ms: Summary,
    /// Time per output token per request (ms).
    pub tpot_ms: Summary,
    /// End-to-end latency (ms).
    pub e2e_ms: Summary,
    /// Output tokens of successful measured requests (usage, else content events).
    pub output_tokens: u64,
    /// Content tokens received inside the window, per second.
    pub output_tokens_per_s: f64,
    /// Successful completions inside the window, per second.
    pub requests_per_s: f64,
    /// Σ usage.prompt_tokens of successful measured requests.
    pub prompt_tokens: u64,
    /// Σ usage cached tokens.
    pub cached_tokens: u64,
    /// cached / prompt (only over requests that reported cached tokens); None if none did.
    pub prefix_hit: Option<f64>,
    /// Successful requests whose usage.completion_tokens ≠ content events seen.
    pub usage_mismatch: u64,
    /// Successful streamed requests that carried no usage.
    pub usage_missing: u64,
    /// Goodput.
    pub goodput: Goodput,
    /// Percentile curves (for `plot`).
    #[serde(default)]
    pub curves: Curves,
    /// Per-second completions and tokens over the whole run (for `plot`).
    #[serde(default)]
    pub timeline: Vec<Second>,
}

/// Accumulates outcomes as they arrive.
#[derive(Debug, Clone)]
pub struct Collector {
    warmup_us: u64,
    end_us: u64,
    stream: bool,
    slo: Slo,
    counts: Counts,
    ttft: Dist,
    itl: Dist,
    tpot: Dist,
    e2e: Dist,
    output_tokens: u64,
    prompt_tokens: u64,
    prompt_tokens_with_cache: u64,
    cached_tokens: u64,
    cache_reports: u64,
    usage_mismatch: u64,
    usage_missing: u64,
    good: u64,
    last_end_us: u64,
    window_tokens: u64,
    window_ok: u64,
    window_good: u64,
    timeline: Vec<Second>,
}

/// Longest timeline kept (s); later events land in the last bucket.
const MAX_TIMELINE_S: u64 = 24 * 3600;

impl Collector {
    /// A collector that ignores requests sent before `warmup_us` and computes rates over
    /// `[warmup_us, end_us)` (µs since the run started; `end_us` = when sending stops).
    pub fn new(warmup_us: u64, end_us: u64, stream: bool, slo: Slo) -> Collector {
        let mut counts = Counts::default();
        for k in ErrorKind::ALL {
            counts.errors.insert(k.as_str().to_string(), 0);
        }
        Collector {
            warmup_us,
            end_us,
            stream,
            slo,
            counts,
            ttft: Dist::default(),
            itl: Dist::default(),
            tpot: Dist::default(),
            e2e: Dist::default(),
            output_tokens: 0,
            prompt_tokens: 0,
            prompt_tokens_with_cache: 0,
            cached_tokens: 0,
            cache_reports: 0,
            usage_mismatch: 0,
            usage_missing: 0,
            good: 0,
            last_end_us: 0,
            window_tokens: 0,
            window_ok: 0,
            window_good: 0,
            timeline: Vec::new(),
        }
    }

    fn second(&mut self, us: u64) -> &mut Second {
        let t = (us / 1_000_000).min(MAX_TIMELINE_S) as usize;
        while self.timeline.len() <= t {
            let next = self.timeline.len() as u32;
            self.timeline.push(Second {
                t: next,
                ..Second::default()
            });
        }
        &mut self.timeline[t]
    }

    /// Per-second accounting of every finished request (warm-up included).
    fn add_to_timeline(&mut self, o: &Outcome) {
        if o.error.is_some() {
            self.second(o.end_us).errors += 1;
            return;
        }
        self.second(o.end_us).ok += 1;
        match o.ttft_us {
            Some(ttft) if self.stream && o.content_events > 0 => {
                let mut t = o.start_us + ttft;
                self.second(t).tokens += 1;
                for &g in &o.itl_us {
                    t += u64::from(g);
                    self.second(t).tokens += 1;
                }
            }
            _ => {
                let n = o.output_tokens();
                self.second(o.end_us).tokens += n;
            }
        }
    }

    /// Adds one outcome.
    pub fn add(&mut self, o: &Outcome) {
        self.counts.finished += 1;
        self.last_end_us = self.last_end_us.max(o.end_us);
        self.add_to_timeline(o);
        let good = o.error.is_none() && self.meets_slo(o);
        if o.error.is_none() {
            self.count_in_window(o, good);
        }
        if o.start_us < self.warmup_us {
            self.counts.warmup_skipped += 1;
            return;
        }
        self.counts.measured += 1;
        if let Some(k) = o.error {
            *self
                .counts
                .errors
                .entry(k.as_str().to_string())
                .or_default() += 1;
            if k == ErrorKind::HttpStatus
                && let Some(s) = o.status
            {
                *self.counts.status_codes.entry(s.to_string()).or_default() += 1;
            }
            if let Some(d) = &o.detail {
                self.counts
                    .error_examples
                    .entry(k.as_str().to_string())
                    .or_insert_with(|| d.chars().take(300).collect());
            }
            return;
        }
        self.counts.ok += 1;
        let e2e = o.e2e_us();
        self.e2e.record(e2e);
        if let Some(t) = o.ttft_us {
            self.ttft.record(t);
        }
        for &g in &o.itl_us {
            self.itl.record(u64::from(g));
        }
        self.output_tokens += o.output_tokens();
        if let Some(t) = tpot_us(o) {
            self.tpot.record(t);
        }
        match o.usage {
            Some(u) => {
                self.prompt_tokens += u.prompt_tokens;
                if let Some(c) = u.cached_tokens {
                    self.cached_tokens += c;
                    self.prompt_tokens_with_cache += u.prompt_tokens;
                    self.cache_reports += 1;
                }
                if self.stream && u.completion_tokens != u64::from(o.content_events) {
                    self.usage_mismatch += 1;
                }
            }
            None if self.stream => self.usage_missing += 1,
            None => {}
        }
        if good {
            self.good += 1;
        }
    }

    /// TTFT and TPOT within the SLOs (a missing objective always passes).
    fn meets_slo(&self, o: &Outcome) -> bool {
        let ttft_ok = match (self.slo.ttft_ms, o.ttft_us) {
            (Some(lim), Some(t)) => t as f64 <= lim * 1000.0,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let tpot_ok = match (self.slo.tpot_ms, tpot_us(o)) {
            (Some(lim), Some(t)) => t as f64 <= lim * 1000.0,
            _ => true,
        };
        ttft_ok && tpot_ok
    }

    /// Steady-state accounting of a successful outcome, whenever it was sent.
    fn count_in_window(&mut self, o: &Outcome, good: bool) {
        let inside = |t: u64| t >= self.warmup_us && t < self.end_us;
        if inside(o.end_us) {
            self.window_ok += 1;
            if good {
                self.window_good += 1;
            }
        }
        match o.ttft_us {
            Some(ttft) if self.stream => {
                let mut t = o.start_us + ttft;
                let mut n = u64::from(inside(t) && o.content_events > 0);
                for &g in &o.itl_us {
                    t += u64::from(g);
                    n += u64::from(inside(t));
                }
                self.window_tokens += n;
            }
            _ => {
                if inside(o.end_us) {
                    self.window_tokens += o.output_tokens();
                }
            }
        }
    }

    /// Requests accepted so far that were measured and succeeded.
    pub fn ok(&self) -> u64 {
        self.counts.ok
    }

    /// The final numbers.
    pub fn finish(&self) -> Stats {
        let window_end = self.end_us.min(self.last_end_us);
        let window_s = window_end.saturating_sub(self.warmup_us) as f64 / 1e6;
        let rate = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let measured = self.counts.measured;
        Stats {
            requests: self.counts.clone(),
            window_s,
            drain_s: self.last_end_us.saturating_sub(window_end) as f64 / 1e6,
            ttft_ms: self.ttft.summary(),
            itl_ms: self.itl.summary(),
            tpot_ms: self.tpot.summary(),
            e2e_ms: self.e2e.summary(),
            output_tokens: self.output_tokens,
            output_tokens_per_s: rate(self.window_tokens),
            requests_per_s: rate(self.window_ok),
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            prefix_hit: (self.cache_reports > 0 && self.prompt_tokens_with_cache > 0)
                .then(|| self.cached_tokens as f64 / self.prompt_tokens_with_cache as f64),
            usage_mismatch: self.usage_mismatch,
            usage_missing: self.usage_missing,
            goodput: Goodput {
                slo: self.slo,
                good: self.good,
                attainment: if measured > 0 {
                    self.good as f64 / measured as f64
                } else {
                    0.0
                },
                per_s: rate(self.window_good),
            },
            curves: Curves {
                ttft_ms: self.ttft.curve(),
                itl_ms: self.itl.curve(),
                e2e_ms: self.e2e.curve(),
            },
            timeline: self.timeline.clone(),
        }
    }
}

/// Time per output token after the first (µs), for outcomes with a TTFT and ≥ 2 tokens.
fn tpot_us(o: &Outcome) -> Option<u64> {
    match (o.ttft_us, o.output_tokens()) {
        (Some(t), n) if n >= 2 => Some(o.e2e_us().saturating_sub(t) / (n - 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Usage;

    /// A successful streamed request: sent at `start_ms`, first token after `ttft_ms`, then
    /// `gaps_us` between tokens, usage consistent with the events.
    fn ok(start_ms: u64, ttft_us: u64, gaps_us: &[u32], prompt: u64, cached: u64) -> Outcome {
        let start_us = start_ms * 1000;
        let e2e = ttft_us + gaps_us.iter().map(|&g| u64::from(g)).sum::<u64>();
        let events = gaps_us.len() as u32 + 1;
        Outcome {
            index: 0,
            start_us,
            end_us: start_us + e2e,
            error: None,
            detail: None,
            status: Some(200),
            ttft_us: Some(ttft_us),
            itl_us: gaps_us.to_vec(),
            content_events: events,
            usage: Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: u64::from(events),
                cached_tokens: Some(cached),
            }),
            body_bytes: 0,
        }
    }

    #[test]
    fn percentiles_and_means_of_known_latencies_are_exact() {
        // TTFTs 1..=1000 µs (below 2048: exact in the histogram).
        let mut c = Collector::new(0, u64::MAX, true, Slo::default());
        for t in 1..=1000u64 {
            c.add(&ok(0, t, &[], 10, 0));
        }
        let s = c.finish();
        assert_eq!(s.ttft_ms.count, 1000);
        assert_eq!(s.ttft_ms.p50, 0.5);
        assert_eq!(s.ttft_ms.p90, 0.9);
        assert_eq!(s.ttft_ms.p99, 0.99);
        assert_eq!(s.ttft_ms.max, 1.0);
        assert_eq!(s.ttft_ms.mean, 0.5005);
    }

    #[test]
    fn curves_agree_with_the_summary_and_never_decrease() {
        let mut c = Collector::new(0, u64::MAX, true, Slo::default());
        for t in 1..=1000u64 {
            c.add(&ok(0, t, &[], 10, 0));
        }
        let s = c.finish();
        let curve = &s.curves.ttft_ms;
        assert_eq!(curve.len(), 42);
        assert!(
            curve
                .windows(2)
                .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1])
        );
        let at = |q: f64| {
            curve
                .iter()
                .find(|p| (p[0] - q).abs() < 1e-9)
                .map_or(f64::NAN, |p| p[1])
        };
        assert_eq!(at(0.9), s.ttft_ms.p90);
        assert_eq!(at(0.99), s.ttft_ms.p99);
        assert_eq!(at(1.0), s.ttft_ms.max);
        assert_eq!(curve[0], [0.0, 0.001], "q=0 is the minimum, 1 µs");
        assert!(s.curves.itl_ms.is_empty(), "no gaps recorded, no curve");
    }

    #[test]
    fn timeline_buckets_completions_and_stamps_each_streamed_token() {
        let mut c = Collector::new(0, u64::MAX, true, Slo::default());
        // Sent at 0.5 s; tokens at 0.9 s, 1.2 s, 2.1 s; done at 2.1 s.
        c.add(&ok(500, 400_000, &[300_000, 900_000], 10, 0));
        let mut failed = ok(0, 1, &[], 10, 0);
        failed.error = Some(ErrorKind::Timeout);
        failed.end_us = 3_500_000;
        c.add(&failed);
        let s = c.finish();
        let cols: Vec<(u32, u64, u64, u64)> = s
            .timeline
            .iter()
            .map(|b| (b.t, b.ok, b.errors, b.tokens))
            .collect();
        assert_eq!(
            cols,
            [(0, 0, 0, 1), (1, 0, 0, 1), (2, 1, 0, 1), (3, 0, 1, 0)]
        );
    }

    #[test]
    fn large_latencies_are_within_a_tenth_of_a_percent() {
        let mut d = Dist::default();
        for ms in 1..=1000u64 {
            d.record(ms * 1000);
        }
        let s = d.summary();
        for (got, want) in [
            (s.p50, 500.0),
            (s.p90, 900.0),
            (s.p99, 990.0),
            (s.max, 1000.0),
        ] {
            assert!(got >= want && got <= want * 1.001, "{got} vs {want}");
        }
        assert_eq!(s.mean, 500.5);
    }

    #[test]
    fn itl_tpot_tokens_and_prefix_hit() {
        let mut c = Collector::new(0, u64::MAX, true, Slo::default());
        // 4 tokens: TTFT 100 µs, gaps 10, 20, 30 → E2E 160, TPOT (160-100)/3 = 20.
        c.add(&ok(0, 100, &[10, 20, 30], 100, 75));
        c.add(&ok(0, 200, &[40], 300, 25));
        let s = c.finish();
        assert_eq!(s.itl_ms.count, 4);
        assert_eq!(s.itl_ms.mean, 0.025);
        assert_eq!(s.itl_ms.max, 0.04);
        assert_eq!(s.tpot_ms.count, 2);
        assert_eq!(s.tpot_ms.p50, 0.02);
        assert_eq!(s.tpot_ms.max, 0.04);
        assert_eq!(s.output_tokens, 6);
        assert_eq!(s.prompt_tokens, 400);
        assert_eq!(s.cached_tokens, 100);
        assert_eq!(s.prefix_hit, Some(0.25));
        assert_eq!(s.usage_mismatch, 0);
    }

    #[test]
    fn warmup_is_excluded_and_rates_cover_the_steady_window_only() {
        // Warm-up ends at 1 s, sending stops at 3 s: window 2 s.
        let mut c = Collector::new(1_000_000, 3_000_000, true, Slo::default());
        c.add(&ok(500, 1000, &[], 1, 0)); // sent and done in warm-up: nowhere
        // Sent in warm-up at 0.9 s, tokens at 0.95 s and 1.05 s, done 1.05 s: not measured, but
        // one token and the completion land in the window.
        c.add(&ok(900, 50_000, &[100_000], 1, 0));
        c.add(&ok(1000, 1000, &[1000], 1, 0)); // tokens 1.001, 1.002 s: all in
        // Sent 2.9 s, tokens at 2.95 and 3.05 s: one token in, completion after the window.
        c.add(&ok(2900, 50_000, &[100_000], 1, 0));
        let s = c.finish();
        assert_eq!(s.requests.warmup_skipped, 2);
        assert_eq!(s.requests.measured, 2);
        assert_eq!(s.output_tokens, 4, "measured requests' tokens");
        assert_eq!(s.window_s, 2.0);
        assert_eq!(s.drain_s, 0.05);
        assert_eq!(
            s.output_tokens_per_s, 2.0,
            "4 tokens received in the window / 2 s"
        );
        assert_eq!(s.requests_per_s, 1.0, "2 completions in the window / 2 s");
        assert_eq!(s.goodput.per_s, 1.0);
    }

    #[test]
    fn a_run_that_ends_before_its_duration_has_a_shorter_window() {
        let mut c = Collector::new(0, 10_000_000, false, Slo::default());
        let mut o = ok(0, 500_000, &[], 1, 0);
        o.ttft_us = Some(500_000);
        c.add(&o);
        let s = c.finish();
        assert_eq!(s.window_s, 0.5);
        assert_eq!(s.requests_per_s, 2.0);
        assert_eq!(s.drain_s, 0.0);
    }

    #[test]
    fn goodput_counts_requests_meeting_every_slo() {
        let slo = Slo {
            ttft_ms: Some(1.0),
            tpot_ms: Some(0.05),
        };
        let mut c = Collector::new(0, u64::MAX, true, slo);
        c.add(&ok(0, 900, &[40, 40], 1, 0)); // good
        c.add(&ok(0, 1000, &[50], 1, 0)); // good: limits are inclusive
        c.add(&ok(0, 1001, &[10], 1, 0)); // TTFT miss
        c.add(&ok(0, 500, &[60, 60], 1, 0)); // TPOT miss
        let mut failed = ok(0, 100, &[], 1, 0);
        failed.error = Some(ErrorKind::HttpStatus);
        failed.status = Some(503);
        c.add(&failed);
        let s = c.finish();
        assert_eq!(s.goodput.good, 2);
        assert_eq!(s.goodput.attainment, 0.4);
        assert_eq!(s.requests.errors["http_status"], 1);
        assert_eq!(s.requests.errors["timeout"], 0);
        assert_eq!(s.requests.status_codes["503"], 1);
        assert_eq!(s.requests.ok, 4);
    }

    #[test]
    fn usage_mismatch_is_counted() {
        let mut c = Collector::new(0, u64::MAX, true, Slo::default());
        let mut o = ok(0, 10, &[1, 1], 1, 0);
        o.usage = Some(Usage {
            prompt_tokens: 1,
            completion_tokens: 5,
            cached_tokens: None,
        });
        c.add(&o);
        let s = c.finish();
        assert_eq!(s.usage_mismatch, 1);
        assert_eq!(s.output_tokens, 5, "usage wins over the event count");
        assert_eq!(s.prefix_hit, None);
    }
}

//! When requests are sent: a closed loop of fixed concurrency, or an open-loop schedule of
//! send times (Poisson, Gamma-renewal, or on/off bursts).
//!
//! Open-loop schedules are a seeded sequence of offsets from the run start, independent of how
//! fast the target answers (a slow target builds a queue, as real traffic would). The schedule
//! comes from its own RNG stream, so changing the workload leaves the arrival times unchanged.
//!
//! - `poisson {rate}`: exponential gaps, CV 1.
//! - `gamma {rate, cv}`: Gamma(k = 1/cv², θ = 1/(rate·k)) gaps; cv 3 is routing.md's W4.
//! - `on_off {rate, burst_factor, burst_s, period_s}`: a two-level Poisson process. The last
//!   `burst_s` seconds of every `period_s` run at `burst_factor` × the off-level rate; the levels
//!   are set so the long-run mean is `rate`. Exponential gaps are memoryless, so a gap that
//!   crosses a level boundary is redrawn from the boundary at the new level (exact).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dist::{exponential, gamma, mix_seed};

/// Seed tag of the arrival stream.
const TAG_ARRIVAL: u64 = 0x4152_5249;

/// The arrival process, as written in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalSpec {
    /// Closed loop: `concurrency` clients, each sending its next request when the last ends.
    Closed {
        /// Clients.
        concurrency: u32,
    },
    /// Poisson arrivals at `rate` per second.
    Poisson {
        /// Mean requests per second.
        rate: f64,
    },
    /// Gamma-renewal arrivals: mean `rate`, gap coefficient of variation `cv`.
    Gamma {
        /// Mean requests per second.
        rate: f64,
        /// CV of the gaps (1 = Poisson; >1 = bursty).
        cv: f64,
    },
    /// On/off bursts (see the module docs).
    OnOff {
        /// Long-run mean requests per second.
        rate: f64,
        /// Burst level ÷ off level.
        burst_factor: f64,
        /// Burst length (s), at the end of each period.
        burst_s: f64,
        /// Period (s).
        period_s: f64,
    },
}

impl ArrivalSpec {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |n: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("arrival.{n}: must be a positive number, got {v}"))
            }
        };
        match *self {
            ArrivalSpec::Closed { concurrency } => {
                if concurrency == 0 {
                    return Err("arrival.concurrency: must be at least 1".into());
                }
            }
            ArrivalSpec::Poisson { rate } => pos("rate", rate)?,
            ArrivalSpec::Gamma { rate, cv } => {
                pos("rate", rate)?;
                pos("cv", cv)?;
            }
            ArrivalSpec::OnOff {
                rate,
                burst_factor,
                burst_s,
                period_s,
            } => {
                pos("rate", rate)?;
                pos("burst_factor", burst_factor)?;
                pos("burst_s", burst_s)?;
                pos("period_s", period_s)?;
                if burst_s > period_s {
                    return Err("arrival.burst_s: must not exceed period_s".into());
                }
            }
        }
        Ok(())
    }

    /// The open-loop schedule, or `None` for a closed loop.
    pub fn schedule(&self, seed: u64) -> Option<Schedule> {
        let rng = ChaCha8Rng::seed_from_u64(mix_seed(seed ^ TAG_ARRIVAL, 0));
        let kind = match *self {
            ArrivalSpec::Closed { .. } => return None,
            ArrivalSpec::Poisson { rate } => Kind::Poisson {
                mean_gap: 1.0 / rate,
            },
            ArrivalSpec::Gamma { rate, cv } => {
                let shape = 1.0 / (cv * cv);
                Kind::Gamma {
                    shape,
                    scale: 1.0 / (rate * shape),
                }
            }
            ArrivalSpec::OnOff {
                rate,
                burst_factor,
                burst_s,
                period_s,
            } => {
                let off = rate * period_s / (burst_s * burst_factor + period_s - burst_s);
                Kind::OnOff {
                    off_rate: off,
                    on_rate: off * burst_factor,
                    burst_s,
                    period_s,
                }
            }
        };
        Some(Schedule { rng, t: 0.0, kind })
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Poisson {
        mean_gap: f64,
    },
    Gamma {
        shape: f64,
        scale: f64,
    },
    OnOff {
        off_rate: f64,
        on_rate: f64,
        burst_s: f64,
        period_s: f64,
    },
}

/// An infinite, seeded sequence of send times (seconds from the run start, non-decreasing).
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: ChaCha8Rng,
    t: f64,
    kind: Kind,
}

impl Iterator for Schedule {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        match self.kind {
            Kind::Poisson { mean_gap } => self.t += exponential(&mut self.rng, mean_gap),
            Kind::Gamma { shape, scale } => self.t += gamma(&mut self.rng, shape, scale),
            Kind::OnOff {
                off_rate,
                on_rate,
                burst_s,
                period_s,
            } => loop {
                let in_period = self.t.rem_euclid(period_s);
                let burst_start = period_s - burst_s;
                let (rate, boundary) = if in_period < burst_start {
                    (off_rate, self.t - in_period + burst_start)
                } else {
                    (on_rate, self.t - in_period + period_s)
                };
                let next = self.t + exponential(&mut self.rng, 1.0 / rate);
                if next < boundary {
                    self.t = next;
                    break;
                }
                // Crossed into the other level: restart from the boundary (memoryless).
                self.t = boundary;
            },
        }
        Some(self.t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(spec: &ArrivalSpec, n: usize) -> Vec<f64> {
        let ts: Vec<f64> = spec.schedule(1).unwrap().take(n).collect();
        ts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn mean_cv(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        (m, v.sqrt() / m)
    }

    #[test]
    fn poisson_and_gamma_have_the_requested_rate_and_burstiness() {
        let (m, cv) = mean_cv(&gaps(&ArrivalSpec::Poisson { rate: 20.0 }, 100_000));
        assert!(
            (m - 0.05).abs() < 0.001 && (cv - 1.0).abs() < 0.03,
            "{m} {cv}"
        );
        let (m, cv) = mean_cv(&gaps(
            &ArrivalSpec::Gamma {
                rate: 20.0,
                cv: 3.0,
            },
            200_000,
        ));
        assert!(
            (m - 0.05).abs() < 0.003 && (cv - 3.0).abs() < 0.2,
            "{m} {cv}"
        );
    }

    #[test]
    fn on_off_keeps_the_mean_rate_and_bursts_where_told() {
        let spec = ArrivalSpec::OnOff {
            rate: 10.0,
            burst_factor: 5.0,
            burst_s: 10.0,
            period_s: 30.0,
        };
        let ts: Vec<f64> = spec
            .schedule(2)
            .unwrap()
            .take_while(|&t| t < 3000.0)
            .collect();
        let rate = ts.len() as f64 / 3000.0;
        assert!((rate - 10.0).abs() < 0.3, "rate {rate}");
        let in_burst = ts.iter().filter(|t| t.rem_euclid(30.0) >= 20.0).count() as f64;
        let off = ts.len() as f64 - in_burst;
        // per-second levels: burst 10 s at 5x, off 20 s at 1x → 50 : 20 of the arrivals.
        let ratio = (in_burst / 10.0) / (off / 20.0);
        assert!((ratio - 5.0).abs() < 0.4, "ratio {ratio}");
    }

    #[test]
    fn schedules_are_seeded_and_closed_has_none() {
        let a: Vec<f64> = ArrivalSpec::Poisson { rate: 3.0 }
            .schedule(5)
            .unwrap()
            .take(10)
            .collect();
        let b: Vec<f64> = ArrivalSpec::Poisson { rate: 3.0 }
            .schedule(5)
            .unwrap()
            .take(10)
            .collect();
        assert_eq!(a, b);
        assert!(ArrivalSpec::Closed { concurrency: 2 }.schedule(5).is_none());
    }
}

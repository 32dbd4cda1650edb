//! Seeded random distributions the workloads and arrival processes draw from.
//!
//! Why hand-written: the offline registry has no `rand_distr`, and these five are a few lines
//! each. All take any [`rand::Rng`], so a seeded `ChaCha8Rng` makes every draw reproducible.
//! None of them can panic: degenerate parameters (mean ≤ 0, shape ≤ 0, …) return the mean or
//! the minimum rather than NaN.

use rand::Rng;

/// A uniform draw in (0, 1], safe to take the logarithm of.
pub fn unit_open0<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    1.0 - rng.random::<f64>()
}

/// Exponential with the given mean (inter-arrival times of a Poisson process).
pub fn exponential<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    -mean * unit_open0(rng).ln()
}

/// Standard normal (Box–Muller; one of the pair is discarded, which keeps the draw stateless).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1 = unit_open0(rng);
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Lognormal parameterised by its *mean* (not the median) and the σ of the underlying normal:
/// μ = ln(mean) − σ²/2, so the long-run average of the draws is `mean`.
pub fn lognormal_with_mean<R: Rng + ?Sized>(rng: &mut R, mean: f64, sigma: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    let mu = mean.ln() - sigma * sigma / 2.0;
    (mu + sigma * standard_normal(rng)).exp()
}

/// Gamma(shape k, scale θ) by Marsaglia–Tsang; for k < 1 the k+1 draw is scaled by U^(1/k).
/// Mean kθ, coefficient of variation 1/√k.
pub fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64, scale: f64) -> f64 {
    if shape <= 0.0 || scale <= 0.0 {
        return 0.0;
    }
    if shape < 1.0 {
        let u = unit_open0(rng);
        return gamma(rng, shape + 1.0, scale) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = unit_open0(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v * scale;
        }
    }
}

/// Pareto (type I) with minimum `x_min` and tail index `alpha`: P(X > x) = (x_min / x)^alpha.
pub fn pareto<R: Rng + ?Sized>(rng: &mut R, x_min: f64, alpha: f64) -> f64 {
    if alpha <= 0.0 {
        return x_min;
    }
    x_min / unit_open0(rng).powf(1.0 / alpha)
}

/// Zipf over ranks `0..n` with exponent `s` (weight of rank k ∝ 1/(k+1)^s); `s = 0` is uniform.
/// Sampling is a binary search in a precomputed CDF: O(log n), no allocation.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A Zipf distribution over `n` ranks (at least one).
    pub fn new(n: usize, s: f64) -> Zipf {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 0..n {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// Draws a rank in `0..n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u = rng.random::<f64>();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// splitmix64: derives independent sub-seeds (per request, per purpose) from one run seed.
pub fn mix_seed(seed: u64, tag: u64) -> u64 {
    let mut z = seed ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn mean_and_cv(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        (m, var.sqrt() / m)
    }

    #[test]
    fn exponential_has_the_requested_mean_and_cv_one() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let xs: Vec<f64> = (0..200_000).map(|_| exponential(&mut r, 0.05)).collect();
        let (m, cv) = mean_and_cv(&xs);
        assert!((m - 0.05).abs() < 0.001, "mean {m}");
        assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
    }

    #[test]
    fn gamma_has_the_requested_mean_and_cv() {
        let mut r = ChaCha8Rng::seed_from_u64(2);
        // CV 3 → shape 1/9, the W4 burstiness.
        let shape = 1.0 / 9.0;
        let xs: Vec<f64> = (0..400_000)
            .map(|_| gamma(&mut r, shape, 0.1 / shape))
            .collect();
        let (m, cv) = mean_and_cv(&xs);
        assert!((m - 0.1).abs() < 0.005, "mean {m}");
        assert!((cv - 3.0).abs() < 0.15, "cv {cv}");
    }

    #[test]
    fn lognormal_mean_is_the_mean_not_the_median() {
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<f64> = (0..200_000)
            .map(|_| lognormal_with_mean(&mut r, 230.0, 1.0))
            .collect();
        let (m, _) = mean_and_cv(&xs);
        assert!((m - 230.0).abs() < 5.0, "mean {m}");
    }

    #[test]
    fn pareto_never_goes_below_its_minimum() {
        let mut r = ChaCha8Rng::seed_from_u64(4);
        assert!((0..10_000).all(|_| pareto(&mut r, 100.0, 1.5) >= 100.0));
    }

    #[test]
    fn zipf_favours_low_ranks_and_uniform_when_s_is_zero() {
        let mut r = ChaCha8Rng::seed_from_u64(5);
        let z = Zipf::new(10, 1.0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[z.sample(&mut r)] += 1;
        }
        assert!(counts[0] > 2 * counts[1] - 2000 && counts[1] > counts[9]);
        let u = Zipf::new(4, 0.0);
        let mut c = [0u32; 4];
        for _ in 0..40_000 {
            c[u.sample(&mut r)] += 1;
        }
        assert!(c.iter().all(|&x| (9_000..11_000).contains(&x)), "{c:?}");
    }
}

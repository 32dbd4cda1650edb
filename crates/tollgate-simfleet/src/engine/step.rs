//! The step-time model of routing.md §3.2, as a pure function, plus the seeded jitter.
//!
//! Why a pure function: calibration fits (α, W, β, γ, δ, ε) against measured step times, and
//! the unit tests check the §3.2 sanity table directly; neither should need a running engine.

use rand::Rng;

use super::EngineParams;

/// Step time in milliseconds for one engine iteration (routing.md §3.2):
///
/// ```text
/// t = α + max(W, β·(Σn_i + |D|)) + γ·Σctx_j + δ·Σ n_i·(p_i + n_i/2) + ε·|D|
/// ```
///
/// divided by `speed_factor` (a non-positive or non-finite factor counts as 1). `decode_ctx`
/// holds the context length (tokens whose KV is read, the new one included) of every decode
/// sequence; `prefill_chunks` holds `(n_i, p_i)` per prefill chunk: `n_i` new tokens computed on
/// top of `p_i` already-computed or prefix-cached tokens. No jitter here: the engine multiplies
/// the result by its seeded lognormal factor.
pub fn step_time_ms(p: &EngineParams, decode_ctx: &[u32], prefill_chunks: &[(u32, u32)]) -> f64 {
    let d = decode_ctx.len() as f64;
    let new_tokens: f64 = prefill_chunks.iter().map(|&(n, _)| f64::from(n)).sum();
    let ctx: f64 = decode_ctx.iter().map(|&c| f64::from(c)).sum();
    let pairs: f64 = prefill_chunks
        .iter()
        .map(|&(n, prev)| {
            let n = f64::from(n);
            n * (f64::from(prev) + n / 2.0)
        })
        .sum();
    let t = p.alpha_ms
        + p.weights_ms.max(p.beta_ms_per_token * (new_tokens + d))
        + p.gamma_ms_per_ctx_token * ctx
        + p.delta_ms_per_pair * pairs
        + p.epsilon_ms_per_seq * d;
    let speed = if p.speed_factor.is_finite() && p.speed_factor > 0.0 {
        p.speed_factor
    } else {
        1.0
    };
    t / speed
}

/// Multiplicative lognormal jitter `exp(σ·z)`, z ~ N(0, 1) drawn from `rng` (Box–Muller).
/// `sigma <= 0` (or non-finite) returns exactly 1.0 without touching the generator, so a
/// deterministic engine's random stream is not consumed.
pub(super) fn jitter_factor(rng: &mut impl Rng, sigma: f64) -> f64 {
    if !(sigma.is_finite() && sigma > 0.0) {
        return 1.0;
    }
    // u1 in (0, 1]: avoids ln(0)
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * z).exp()
}

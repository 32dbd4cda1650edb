//! Seeded request streams for the routing.md §4.1 workloads, as both sides see them: the raw chat
//! `messages` JSON the gateway hashes for prefix affinity, and the same conversation tokenized by
//! `tollgate_simfleet::tokenizer` (chat template applied) for the engines' prefix cache.

use tollgate_simfleet::engine::SimRequest;
use tollgate_simfleet::tokenizer;

/// SplitMix64: small, seeded, good enough for workload generation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` and `stream` (independent streams from one seed).
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given mean and σ of the underlying normal.
    pub fn lognormal(&mut self, mean: f64, sigma: f64) -> f64 {
        let mu = mean.ln() - sigma * sigma / 2.0;
        (mu + sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Gamma(shape, scale), Marsaglia–Tsang (with the `U^(1/k)` boost for shape < 1).
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.f64();
            return self.gamma(shape + 1.0, scale) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.f64();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * scale;
            }
        }
    }
}

/// One prompt as both sides see it.
#[derive(Debug)]
pub struct Prompt {
    /// Raw `messages` JSON (what the gateway hashes).
    pub json: Vec<u8>,
    /// The same conversation tokenized for the engine (chat template applied).
    pub tokens: Vec<u32>,
}

/// A generated request stream.
#[derive(Debug)]
pub struct Workload {
    /// Distinct prompts (requests may share one).
    pub prompts: Vec<Prompt>,
    /// Per request: (arrival µs, prompt index, output tokens); request id = index.
    pub reqs: Vec<(u64, usize, u32)>,
}

impl Workload {
    /// Engine requests (ids are indices into `reqs`).
    pub fn sim_requests(&self) -> Vec<SimRequest> {
        self.reqs
            .iter()
            .enumerate()
            .map(|(i, &(t, p, out))| SimRequest {
                id: i as u64,
                prompt_tokens: self
                    .prompts
                    .get(p)
                    .map_or_else(Vec::new, |p| p.tokens.clone()),
                max_tokens: out,
                arrival_us: t,
            })
            .collect()
    }
}

/// Seeded pseudo-English of about `tokens` tokens (≈ 4.2 bytes per token with the simfleet
/// tokenizer: 2–6 letter words, a sentence every ~12 words).
pub fn text(rng: &mut Rng, tokens: usize) -> String {
    let mut s = String::with_capacity(tokens * 5);
    let mut n = 0usize;
    let mut in_sentence = 0u32;
    let mut word = String::new();
    while n < tokens {
        word.clear();
        word.push(' ');
        for k in 0..rng.range(2, 6) {
            let c = (b'a' + rng.range(0, 25) as u8) as char;
            word.push(if k == 0 && in_sentence == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        n += tokenizer::count_tokens(&word);
        s.push_str(&word);
        in_sentence += 1;
        if in_sentence >= 12 || n >= tokens {
            s.push('.');
            n += 1;
            in_sentence = 0;
        }
    }
    s
}

/// The prompt of a system + user chat.
pub fn chat(system: &str, user: &str) -> Prompt {
    let messages = serde_json::json!([
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]);
    let json = serde_json::to_vec(&messages).unwrap_or_default();
    let templated = format!("<|system|>\n{system}\n<|user|>\n{user}\n<|assistant|>\n");
    Prompt {
        json,
        tokens: tokenizer::tokenize(&templated),
    }
}

/// W1 (llm-d "B2B"): groups share a long system context; each group has a few users with a
/// fixed question each, and a request is a uniformly random (group, user) prompt — the
/// inference-perf `shared_prefix` generator's semantics, so full prompts repeat too.
#[derive(Clone, Debug)]
pub struct W1 {
    /// Prefix groups.
    pub groups: usize,
    /// Users (distinct questions) per group.
    pub users: usize,
    /// System context tokens.
    pub system_tokens: usize,
    /// Question tokens.
    pub question_tokens: usize,
    /// Output tokens, uniform in this range.
    pub output: (u32, u32),
    /// Group popularity: Zipf exponent (0 = uniform, as in routing.md; 1 = the top group of 150
    /// gets 18% of requests, more than one backend's fair share).
    pub zipf: f64,
    /// Poisson arrival rate.
    pub qps: f64,
    /// Requests.
    pub requests: usize,
}

impl W1 {
    /// Generates the stream for `seed`.
    pub fn generate(&self, seed: u64) -> Workload {
        let mut rng = Rng::new(seed, 1);
        let mut prompts = Vec::with_capacity(self.groups * self.users);
        for _ in 0..self.groups {
            let system = text(&mut rng, self.system_tokens);
            for _ in 0..self.users {
                prompts.push(chat(&system, &text(&mut rng, self.question_tokens)));
            }
        }
        let mut cdf: Vec<f64> = (0..self.groups)
            .scan(0.0, |acc, k| {
                *acc += 1.0 / ((k + 1) as f64).powf(self.zipf);
                Some(*acc)
            })
            .collect();
        let total = cdf.last().copied().unwrap_or(1.0);
        cdf.iter_mut().for_each(|c| *c /= total);
        let mut t = 0.0f64;
        let reqs = (0..self.requests)
            .map(|_| {
                t += rng.exp(1e6 / self.qps);
                let u = rng.f64();
                let group = cdf.partition_point(|&c| c < u).min(self.groups - 1);
                let p = group * self.users + rng.range(0, self.users as u64 - 1) as usize;
                let out = rng.range(u64::from(self.output.0), u64::from(self.output.1)) as u32;
                (t as u64, p, out)
            })
            .collect();
        Workload { prompts, reqs }
    }
}

/// W3 (ShareGPT-like) and W4 (bursty, heavy-tail): lognormal user input and output behind a
/// common system prompt; W4 adds Gamma inter-arrivals and a fraction of very long inputs.
#[derive(Clone, Debug)]
pub struct Chat {
    /// Common system prompt tokens.
    pub system_tokens: usize,
    /// Mean user input tokens (lognormal, σ 1.0, clamped to 4..=8192).
    pub input_mean: f64,
    /// Mean output tokens (lognormal, σ 0.9, clamped to 1..=2048).
    pub output_mean: f64,
    /// Mean arrival rate.
    pub qps: f64,
    /// Coefficient of variation of inter-arrival times (1 = Poisson; W4: 3, Gamma).
    pub arrival_cv: f64,
    /// Fraction of requests with a long input.
    pub long_fraction: f64,
    /// Long input tokens: Pareto(α 1.2) from the lower bound, clamped to the upper.
    pub long_tokens: (usize, usize),
    /// Requests.
    pub requests: usize,
}

impl Chat {
    /// Generates the stream for `seed`.
    pub fn generate(&self, seed: u64) -> Workload {
        let mut rng = Rng::new(seed, 3);
        let system = text(&mut rng, self.system_tokens);
        let mean_gap = 1e6 / self.qps;
        let shape = 1.0 / (self.arrival_cv * self.arrival_cv);
        let mut t = 0.0f64;
        let mut prompts = Vec::with_capacity(self.requests);
        let mut reqs = Vec::with_capacity(self.requests);
        for i in 0..self.requests {
            t += if (self.arrival_cv - 1.0).abs() < 1e-9 {
                rng.exp(mean_gap)
            } else {
                rng.gamma(shape, mean_gap / shape)
            };
            let input = if rng.f64() < self.long_fraction {
                let (lo, hi) = self.long_tokens;
                let x = lo as f64 / (1.0 - rng.f64()).powf(1.0 / 1.2);
                (x as usize).min(hi)
            } else {
                (rng.lognormal(self.input_mean, 1.0) as usize).clamp(4, 8192)
            };
            let out = (rng.lognormal(self.output_mean, 0.9) as u32).clamp(1, 2048);
            prompts.push(chat(&system, &text(&mut rng, input)));
            reqs.push((t as u64, i, out));
        }
        Workload { prompts, reqs }
    }
}

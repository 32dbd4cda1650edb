//! The compiled routing configuration: pools (tiers of backends and a selection policy) and
//! virtual models (ordered route rules, each sending matching requests to a weighted split of
//! pools). Built by tollgate-config from the config file; immutable once built.

use crate::state::EjectPolicy;
use crate::tokens::Tokenizer;

/// How a pool picks a backend among its healthy, unsaturated candidates (README has formulas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Rotate through the members, per worker.
    RoundRobin,
    /// Smooth weighted round-robin (nginx's), per worker, by member weight.
    Weighted,
    /// Fewest gateway in-flight requests (summed over workers).
    LeastRequest,
    /// Power of two choices: two random candidates, the one with fewer in-flight requests.
    P2c,
    /// GIE-style weighted score of queue depth, KV usage and in-flight tokens.
    LeastLoad,
    /// Prefix affinity bounded by load: follow the backend that last received this prompt's
    /// longest prefix unless it is busier than the imbalance bound; else least tokens in flight.
    PrefixAffinity,
}

impl Policy {
    /// Every policy, in documentation order.
    pub const ALL: [Policy; 6] = [
        Policy::RoundRobin,
        Policy::Weighted,
        Policy::LeastRequest,
        Policy::P2c,
        Policy::LeastLoad,
        Policy::PrefixAffinity,
    ];

    /// Config / metric-label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::Weighted => "weighted",
            Policy::LeastRequest => "least_request",
            Policy::P2c => "p2c",
            Policy::LeastLoad => "least_load",
            Policy::PrefixAffinity => "prefix_affinity",
        }
    }

    /// Parse a config value.
    pub fn from_name(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A backend in a pool tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Index into the config's backends.
    pub backend: usize,
    /// Weight for `weighted` (≥ 1).
    pub weight: u32,
}

/// A target pool: backends in priority tiers, and the policy that picks among them.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Name (metric label).
    pub name: String,
    /// Selection policy.
    pub policy: Policy,
    /// Tiers in priority order: tier 0 serves while it has a healthy, unsaturated backend; the
    /// next tier takes over otherwise.
    pub tiers: Vec<Vec<Member>>,
    /// Model name the backends of this pool expect (`model` is rewritten to it); `None` keeps
    /// the client's name.
    pub model: Option<String>,
    /// Seed of this pool's prefix hashes (from its name).
    pub seed: u64,
}

impl Pool {
    /// Every member, tier by tier.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.tiers.iter().flatten()
    }

    /// Number of members over all tiers.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    /// Whether the pool has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A weighted choice of pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// (pool index, weight ≥ 1).
    pub targets: Vec<(usize, u32)>,
}

impl Split {
    /// Choose a pool with `r` uniformly random bits.
    pub fn choose(&self, r: u64) -> Option<usize> {
        let total: u64 = self.targets.iter().map(|t| u64::from(t.1)).sum();
        if total == 0 {
            return self.targets.first().map(|t| t.0);
        }
        let mut x = r % total;
        for &(p, w) in &self.targets {
            if x < u64::from(w) {
                return Some(p);
            }
            x -= u64::from(w);
        }
        self.targets.last().map(|t| t.0)
    }
}

/// How a header value is tested.
#[derive(Clone, Debug)]
pub enum HeaderTest {
    /// Exact, case-sensitive equality.
    Equals(String),
    /// Unanchored regex search (anchor it yourself with `^…$`).
    Regex(regex::Regex),
    /// The header is present, whatever its value.
    Present,
}

/// How request content is tested.
#[derive(Clone, Debug)]
pub enum ContentTest {
    /// Any of these keywords (ASCII case-insensitive) occurs.
    Keywords(aho_corasick::AhoCorasick),
    /// The regex matches somewhere.
    Regex(regex::Regex),
}

/// Which text a content test reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentScope {
    /// The user's messages (chat) or the prompt (completions).
    User,
    /// The last user message only.
    LastUser,
    /// Every message, system prompt included.
    All,
}

/// One condition of a route rule.
#[derive(Clone, Debug)]
pub enum Condition {
    /// A request header.
    Header {
        /// Lowercase header name.
        name: String,
        /// The test.
        test: HeaderTest,
    },
    /// The request's text.
    Content {
        /// What text.
        scope: ContentScope,
        /// The test.
        test: ContentTest,
    },
    /// Prompt length in tokens (the model's tokenizer): `min ≤ tokens < max`.
    ContextTokens {
        /// Inclusive lower bound.
        min: Option<u64>,
        /// Exclusive upper bound.
        max: Option<u64>,
    },
}

impl Condition {
    /// Evaluation cost rank: headers before content before token counts, so a cheap condition
    /// that fails saves the expensive ones.
    pub fn cost(&self) -> u8 {
        match self {
            Condition::Header { .. } => 0,
            Condition::Content { .. } => 1,
            Condition::ContextTokens { .. } => 2,
        }
    }
}

/// A route rule: when every condition holds, the request goes to `split`.
#[derive(Clone, Debug)]
pub struct RouteRule {
    /// Name (access log, metrics).
    pub name: String,
    /// Conditions, all of which must hold (sorted by cost).
    pub when: Vec<Condition>,
    /// Where matching requests go.
    pub split: Split,
}

/// How a client-facing model name resolves.
#[derive(Clone, Debug)]
pub struct VirtualModel {
    /// Rules in order; the first that matches wins.
    pub routes: Vec<RouteRule>,
    /// Where requests no rule matched go.
    pub default: Split,
    /// Tokenizer for `context_tokens` conditions.
    pub tokenizer: Tokenizer,
}

impl VirtualModel {
    /// Whether any rule reads the request text (so it must be extracted).
    pub fn needs_text(&self) -> bool {
        self.routes
            .iter()
            .flat_map(|r| &r.when)
            .any(|c| c.cost() > 0)
    }

    /// Every pool this model can send to.
    pub fn pools(&self) -> impl Iterator<Item = usize> + '_ {
        self.routes
            .iter()
            .map(|r| &r.split)
            .chain(std::iter::once(&self.default))
            .flat_map(|s| s.targets.iter().map(|t| t.0))
    }
}

/// `[routing]`: settings shared by every pool.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often the control thread scrapes every backend's load.
    pub scrape_interval_ms: u64,
    /// Scraped load older than this is unknown (treated as saturated by `least_load`).
    pub stale_after_ms: u64,
    /// Deadline of one scrape or probe request.
    pub scrape_timeout_ms: u64,
    /// How often each backend's health endpoint is probed.
    pub probe_interval_ms: u64,
    /// Consecutive failed probes before a backend counts as down.
    pub probe_failures_down: u32,
    /// Passive ejection.
    pub eject: EjectPolicy,
    /// Most members of a pool that may be ejected at once, in percent (50 = half).
    pub max_ejected_percent: u32,
    /// A backend whose estimated queue reaches this is saturated: the next tier is preferred.
    pub saturation_queue: f64,
    /// `least_load` weights: queue, KV usage, in-flight tokens.
    pub weight_queue: f64,
    /// See `weight_queue`.
    pub weight_kv: f64,
    /// See `weight_queue`.
    pub weight_tokens: f64,
    /// Prefix block size in bytes of the prompt's JSON (≈ 4 bytes per token).
    pub prefix_block_bytes: usize,
    /// Most prefix blocks hashed per request (caps the work on huge prompts).
    pub prefix_max_blocks: usize,
    /// Slots in the shared prefix table (8 bytes each).
    pub prefix_table_slots: usize,
    /// Share of the prompt's blocks a recorded prefix must cover to be followed (0..1).
    pub prefix_min_match: f64,
    /// Prefix owner is followed while `inflight(owner) ≤ ratio · min_inflight + slack`.
    pub affinity_ratio: f64,
    /// See `affinity_ratio` (requests).
    pub affinity_slack: u32,
    /// Output tokens assumed for a request without `max_tokens` (in-flight token estimate).
    pub default_output_tokens: u64,
    /// Retries allowed, as a percentage of requests (per worker, over a sliding second), on top
    /// of `min_retries_per_sec`.
    pub retry_budget_percent: u32,
    /// Retries always allowed per worker per second.
    pub min_retries_per_sec: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scrape_interval_ms: 200,
            stale_after_ms: 1000,
            scrape_timeout_ms: 500,
            probe_interval_ms: 2000,
            probe_failures_down: 2,
            eject: EjectPolicy::default(),
            max_ejected_percent: 50,
            saturation_queue: 64.0,
            weight_queue: 2.0,
            weight_kv: 2.0,
            weight_tokens: 1.0,
            prefix_block_bytes: 256,
            prefix_max_blocks: 512,
            prefix_table_slots: 1 << 20,
            prefix_min_match: 0.5,
            affinity_ratio: 1.5,
            affinity_slack: 8,
            default_output_tokens: 256,
            retry_budget_percent: 20,
            min_retries_per_sec: 3,
        }
    }
}

/// FNV-1a of a pool name: the pool's prefix-hash seed.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

//! Limits for tollgate: requests per window, requests in flight and tokens per window, keyed on
//! any tuple of consumer / key / model / tenant / project, with time-of-day schedules and
//! optional Redis-shared budgets.
//!
//! This crate exists so that the proxy's data path can enforce budgets **without a lock and
//! without a network round-trip**: every worker thread calls [`WorkerQuota::admit`], which touches
//! only its own cache and the atomics of the counters involved (see `cell.rs`). Tokens are
//! reserved at admission from the proxy's [`Estimate`] and settled against actual [`Usage`] at the
//! end of the request, so a burst of concurrent requests can never admit more than the budget
//! covers. It is runtime-free: no async, no timers; the caller passes `now_ms` everywhere, which is
//! also what makes the schedule and window logic testable with a fake clock.
//!
//! Lifecycle: one [`QuotaShared`] per process (outlives config reloads; counters are keyed by rule
//! *name*, so a reload keeps usage), one [`WorkerQuota`] per worker thread, one [`Rules`] per
//! config snapshot. See the crate README for the full semantics.

#![deny(missing_docs)]

use std::sync::Arc;

mod admission;
mod cell;
mod cluster;
mod parse;
mod rule;
mod shared;
mod worker;

pub use admission::Admission;
pub use cluster::ClusterConfig;
pub use parse::{parse_days, parse_duration, parse_hhmm};
pub use rule::{Dim, Filter, Kind, LimitRule, Overrun, ScheduleWindow, TokenKind, glob_match};
pub use shared::{QuotaShared, QuotaStats};
pub use worker::WorkerQuota;

/// The authenticated identity of a request, as the limits see it. Never client headers: a limit
/// keyed on something the client controls can be dodged by changing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// Consumer name.
    pub consumer: &'a str,
    /// API key id.
    pub key: &'a str,
    /// Tenant.
    pub tenant: &'a str,
    /// Project.
    pub project: &'a str,
    /// Requested model.
    pub model: &'a str,
}

/// Token estimate made by the proxy at admission: prompt counted with a real tokenizer,
/// completion = `max_tokens` (or the configured default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Estimate {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens the request may produce.
    pub completion: u64,
}

/// Actual token usage reported at the end of a request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
}

/// Tokens reserved versus tokens actually used, for drift metrics (see [`Admission::settle`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Tokens the admission held at the end (estimate plus extensions), per
    /// [`Admission::reserved_tokens`].
    pub reserved: u64,
    /// Tokens actually used, counted the same way.
    pub actual: u64,
}

/// Why a request was not admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// A limit is reached: answer 429 with `Retry-After: retry_after_s`.
    Throttled {
        /// Name of the first rule that refused.
        rule: Arc<str>,
        /// What that rule counts.
        kind: Kind,
        /// Seconds until the window ends (ceil, at least 1); 1 for concurrency.
        retry_after_s: u64,
    },
    /// Cluster mode only: the worker's lease for a needed counter is empty and a refill from Redis
    /// is in flight. The caller sleeps ~1 ms (monoio timer) and calls admit again, up to the
    /// cluster timeout; after that (or when Redis is down) the local fallback share applies, so
    /// this is never returned while Redis is marked down.
    Pending,
}

/// One config snapshot's limits, ready for the data path. `Send + Sync`; built off the data path
/// on every reload and swapped in whole.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<LimitRule>,
    names: Vec<Arc<str>>,
    has_tokens: bool,
}

impl Rules {
    /// Compile a rule list. Windows shorter than 1 s are raised to 1 s (see `cell.rs`).
    pub fn new(mut rules: Vec<LimitRule>) -> Rules {
        for r in &mut rules {
            if r.window < std::time::Duration::from_secs(1) {
                r.window = std::time::Duration::from_secs(1);
            }
        }
        let names = rules.iter().map(|r| Arc::from(r.name.as_str())).collect();
        let has_tokens = rules.iter().any(|r| matches!(r.kind, Kind::Tokens(_)));
        Rules {
            rules,
            names,
            has_tokens,
        }
    }

    /// True when there are no rules (admit is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[LimitRule] {
        &self.rules
    }

    /// True when any rule counts tokens (the proxy then needs a prompt token count).
    pub fn has_token_rules(&self) -> bool {
        self.has_tokens
    }

    pub(crate) fn name(&self, i: usize) -> Arc<str> {
        self.names.get(i).cloned().unwrap_or_else(|| Arc::from(""))
    }
}

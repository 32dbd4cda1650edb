//! `[auth]`, `[quota]` (with its `[[quota.limits]]`) and `[ledger]`: who may call, how much, and where usage is
//! recorded. The keys file named by `auth.keys_file` is loaded here, so `tollgate check` validates
//! it and a config reload (SIGHUP, `POST /admin/reload`) reloads it; its errors name the keys
//! file, line and field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::compile::Ctx;
use crate::error::ConfigError;

type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub keys_file: Option<S<String>>,
    pub allow_ips: Option<S<Vec<S<String>>>>,
    pub deny_ips: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub default_max_tokens: Option<S<u64>>,
    pub redis_url: Option<S<String>>,
    pub redis_prefix: Option<S<String>>,
    pub lease_tokens: Option<S<u64>>,
    pub lease_requests: Option<S<u64>>,
    pub redis_timeout_ms: Option<S<u64>>,
    pub fallback_share: Option<S<f64>>,
    #[serde(default)]
    pub limits: Vec<RawLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub name: S<String>,
    pub kind: S<String>,
    pub tokens: Option<S<String>>,
    pub per: Option<S<Vec<S<String>>>>,
    pub limit: S<u64>,
    pub window: Option<S<String>>,
    pub timezone: Option<S<String>>,
    pub stream_overrun: Option<S<String>>,
    pub shared: Option<S<bool>>,
    pub consumers: Option<S<Vec<String>>>,
    pub keys: Option<S<Vec<String>>>,
    pub tenants: Option<S<Vec<String>>>,
    pub projects: Option<S<Vec<String>>>,
    pub models: Option<S<Vec<String>>>,
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub days: S<String>,
    pub from: S<String>,
    pub to: S<String>,
    pub limit: S<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    pub dir: Option<S<String>>,
    pub commit_interval_ms: Option<S<u64>>,
    pub fsync: Option<S<bool>>,
}

/// Compiled governance settings.
#[derive(Clone)]
pub struct Governance {
    /// The keys file, when API keys are required (`auth.keys_file`).
    pub keys_file: Option<PathBuf>,
    /// Consumers and keys (empty when auth is off).
    pub keys: Arc<tollgate_auth::KeyStore>,
    /// Global client IP rules (`auth.allow_ips` / `auth.deny_ips`), checked before anything else.
    pub ips: Arc<tollgate_auth::IpRules>,
    /// Completion tokens reserved for a request that gives no `max_tokens`.
    pub default_max_tokens: u64,
    /// Compiled `[[quota.limits]]`.
    pub limits: Arc<tollgate_quota::Rules>,
    /// Cluster mode (`quota.redis_url`): budgets shared through Redis.
    pub cluster: Option<tollgate_quota::ClusterConfig>,
    /// Usage ledger (`[ledger]`), when configured.
    pub ledger: Option<LedgerSettings>,
}

impl std::fmt::Debug for Governance {
    // The Redis URL may carry a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("keys_file", &self.keys_file)
            .field("keys", &self.keys.keys().len())
            .field("limits", &self.limits.rules().len())
            .field("cluster", &self.cluster.is_some())
            .field("ledger", &self.ledger)
            .finish()
    }
}

impl Governance {
    /// Whether requests must carry an API key.
    pub fn auth_required(&self) -> bool {
        self.keys_file.is_some()
    }
}

/// `[ledger]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSettings {
    /// Directory of the daily `usage-YYYY-MM-DD.jsonl` files.
    pub dir: PathBuf,
    /// Group-commit interval: the most a `kill -9` can lose is the records of requests that
    /// finished within the last interval.
    pub commit_interval: Duration,
    /// `fdatasync` after each commit (power-loss durability, at a cost per commit).
    pub fsync: bool,
}

/// Completion reservation default when `quota.default_max_tokens` is not set.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;
/// Group-commit interval default (`ledger.commit_interval_ms`).
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 20;

fn ip_list(cx: &mut Ctx<'_>, v: &Option<S<Vec<S<String>>>>, field: &str) -> Vec<String> {
    let Some(list) = v else { return Vec::new() };
    let mut out = Vec::new();
    for (i, s) in list.get_ref().iter().enumerate() {
        match tollgate_auth::IpRules::new(&[s.get_ref().as_str()], &[]) {
            Ok(_) => out.push(s.get_ref().clone()),
            Err(e) => cx.err(s, &format!("{field}[{i}]"), e),
        }
    }
    out
}

/// Compile the governance sections. Relative paths resolve against `base_dir`.
pub(crate) fn compile(
    cx: &mut Ctx<'_>,
    auth: &RawAuth,
    quota: &RawQuota,
    ledger: &RawLedger,
    base_dir: &Path,
) -> Governance {
    // Global IP rules.
    let allow = ip_list(cx, &auth.allow_ips, "auth.allow_ips");
    let deny = ip_list(cx, &auth.deny_ips, "auth.deny_ips");
    let a: Vec<&str> = allow.iter().map(String::as_str).collect();
    let d: Vec<&str> = deny.iter().map(String::as_str).collect();
    let ips =
        tollgate_auth::IpRules::new(&a, &d).unwrap_or_else(|_| tollgate_auth::IpRules::allow_all());

    // Keys file.
    let (keys_file, keys) = match &auth.keys_file {
        None => (None, tollgate_auth::KeyStore::empty()),
        Some(p) => {
            let path = base_dir.join(p.get_ref());
            match tollgate_auth::KeyStore::load(&path) {
                Ok(k) => (Some(path), k),
                Err(errs) => {
                    for e in errs {
                        if e.line == 0 && e.field.is_empty() {
                            // Cannot read the file at all: point at the config line naming it.
                            cx.err(p, "auth.keys_file", e.message);
                        } else {
                            cx.errors.push(ConfigError::new(
                                &e.file, e.line, e.col, &e.field, e.message,
                            ));
                        }
                    }
                    (Some(path), tollgate_auth::KeyStore::empty())
                }
            }
        }
    };

    let default_max_tokens = cx.num(
        &quota.default_max_tokens,
        "quota.default_max_tokens",
        DEFAULT_MAX_TOKENS,
        1,
        10_000_000,
    );
    let cluster = match &quota.redis_url {
        None => {
            let n = "quota.redis_url (cluster mode)";
            only_with(cx, &quota.redis_prefix, "quota.redis_prefix", n);
            only_with(cx, &quota.lease_tokens, "quota.lease_tokens", n);
            only_with(cx, &quota.lease_requests, "quota.lease_requests", n);
            only_with(cx, &quota.redis_timeout_ms, "quota.redis_timeout_ms", n);
            only_with(cx, &quota.fallback_share, "quota.fallback_share", n);
            None
        }
        Some(url) => {
            if !(url.get_ref().starts_with("redis://")) {
                cx.err(
                    url,
                    "quota.redis_url",
                    "must be a redis://[:password@]host:port[/db] URL",
                );
            }
            let share = match &quota.fallback_share {
                None => 0.5,
                Some(s) if (0.0..=1.0).contains(s.get_ref()) => *s.get_ref(),
                Some(s) => {
                    cx.err(s, "quota.fallback_share", "must be between 0.0 and 1.0");
                    0.5
                }
            };
            Some(tollgate_quota::ClusterConfig {
                url: url.get_ref().clone(),
                prefix: quota
                    .redis_prefix
                    .as_ref()
                    .map_or_else(|| "tollgate".to_string(), |s| s.get_ref().clone()),
                lease_tokens: cx.num(&quota.lease_tokens, "quota.lease_tokens", 4096, 1, 1 << 40),
                lease_requests: cx.num(
                    &quota.lease_requests,
                    "quota.lease_requests",
                    16,
                    1,
                    1 << 30,
                ),
                timeout: Duration::from_millis(cx.num(
                    &quota.redis_timeout_ms,
                    "quota.redis_timeout_ms",
                    200,
                    1,
                    60_000,
                )),
                fallback_share: share,
            })
        }
    };

    let mut rules = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, l) in quota.limits.iter().enumerate() {
        if let Some(r) = compile_limit(cx, l, i, &keys) {
            if !names.insert(r.name.clone()) {
                cx.err(
                    &l.name,
                    &format!("quota.limits[{i}].name"),
                    format!("duplicate limit name {:?}", r.name),
                );
            }
            rules.push(r);
        }
    }

    let settings = ledger.dir.as_ref().map(|d| LedgerSettings {
        dir: base_dir.join(d.get_ref()),
        commit_interval: Duration::from_millis(cx.num(
            &ledger.commit_interval_ms,
            "ledger.commit_interval_ms",
            DEFAULT_COMMIT_INTERVAL_MS,
            1,
            10_000,
        )),
        fsync: ledger.fsync.as_ref().is_some_and(|s| *s.get_ref()),
    });
    if ledger.dir.is_none() {
        only_with(
            cx,
            &ledger.commit_interval_ms,
            "ledger.commit_interval_ms",
            "ledger.dir",
        );
        only_with(cx, &ledger.fsync, "ledger.fsync", "ledger.dir");
    }

    Governance {
        keys_file,
        keys: Arc::new(keys),
        ips: Arc::new(ips),
        default_max_tokens,
        limits: Arc::new(tollgate_quota::Rules::new(rules)),
        cluster,
        ledger: settings,
    }
}

/// A setting given without the one that enables it is a mistake worth reporting.
fn only_with<T>(cx: &mut Ctx<'_>, v: &Option<S<T>>, field: &str, needs: &str) {
    if let Some(v) = v {
        cx.err(v, field, format!("only meaningful with {needs}"));
    }
}

fn compile_limit(
    cx: &mut Ctx<'_>,
    l: &RawLimit,
    i: usize,
    keys: &tollgate_auth::KeyStore,
) -> Option<tollgate_quota::LimitRule> {
    use tollgate_quota::{Dim, Kind, Overrun, TokenKind};
    let f = |name: &str| format!("quota.limits[{i}].{name}");
    let errs_before = cx.errors.len();
    let name = l.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        cx.err(
            &l.name,
            &f("name"),
            "must be non-empty and use only A-Z a-z 0-9 - _ .",
        );
    }
    let kind = match (l.kind.get_ref().as_str(), &l.tokens) {
        ("requests", None) => Kind::Requests,
        ("concurrency", None) => Kind::Concurrency,
        ("tokens", t) => match t.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("total") => Kind::Tokens(TokenKind::Total),
            Some("prompt") => Kind::Tokens(TokenKind::Prompt),
            Some("completion") => Kind::Tokens(TokenKind::Completion),
            Some(other) => {
                if let Some(t) = t {
                    cx.err(
                        t,
                        &f("tokens"),
                        format!(
                            "unknown token type {other:?}; expected prompt, completion or total"
                        ),
                    );
                }
                Kind::Tokens(TokenKind::Total)
            }
        },
        ("requests" | "concurrency", Some(t)) => {
            cx.err(t, &f("tokens"), "only meaningful with kind = \"tokens\"");
            Kind::Requests
        }
        (other, _) => {
            cx.err(
                &l.kind,
                &f("kind"),
                format!("unknown limit kind {other:?}; expected requests, concurrency or tokens"),
            );
            Kind::Requests
        }
    };
    let mut per = Vec::new();
    if let Some(list) = &l.per {
        for (j, d) in list.get_ref().iter().enumerate() {
            let dim = match d.get_ref().as_str() {
                "consumer" => Dim::Consumer,
                "key" => Dim::Key,
                "model" => Dim::Model,
                "tenant" => Dim::Tenant,
                "project" => Dim::Project,
                other => {
                    cx.err(d, &format!("quota.limits[{i}].per[{j}]"), format!("unknown dimension {other:?}; expected consumer, key, model, tenant or project"));
                    continue;
                }
            };
            if per.contains(&dim) {
                cx.err(d, &format!("quota.limits[{i}].per[{j}]"), "listed twice");
            }
            per.push(dim);
        }
    }
    if *l.limit.get_ref() == 0 {
        cx.err(
            &l.limit,
            &f("limit"),
            "must be at least 1 (disable a limit by removing it)",
        );
    }
    let window = match (&l.window, kind) {
        (Some(w), Kind::Concurrency) => {
            cx.err(w, &f("window"), "a concurrency limit has no window");
            Duration::from_secs(60)
        }
        (None, Kind::Concurrency) => Duration::from_secs(60),
        (None, _) => {
            cx.err(
                &l.kind,
                &f("window"),
                "requests and tokens limits need a window, e.g. window = \"1m\"",
            );
            Duration::from_secs(60)
        }
        (Some(w), _) => match tollgate_quota::parse_duration(w.get_ref()) {
            Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(366 * 86_400) => d,
            Ok(_) => {
                cx.err(w, &f("window"), "must be between 1s and 366d");
                Duration::from_secs(60)
            }
            Err(e) => {
                cx.err(w, &f("window"), e);
                Duration::from_secs(60)
            }
        },
    };
    let tz = match &l.timezone {
        None => jiff::tz::TimeZone::UTC,
        Some(s) => match jiff::tz::TimeZone::get(s.get_ref()) {
            Ok(tz) => tz,
            Err(e) => {
                cx.err(
                    s,
                    &f("timezone"),
                    format!("unknown time zone {:?}: {e}", s.get_ref()),
                );
                jiff::tz::TimeZone::UTC
            }
        },
    };
    let stream_overrun = match l.stream_overrun.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "allow")) => Overrun::Allow,
        Some((_, "cut")) => Overrun::Cut,
        Some((s, other)) => {
            cx.err(
                s,
                &f("stream_overrun"),
                format!("unknown value {other:?}; expected allow or cut"),
            );
            Overrun::Allow
        }
    };
    if let (Some(s), false) = (&l.stream_overrun, matches!(kind, Kind::Tokens(_))) {
        cx.err(
            s,
            &f("stream_overrun"),
            "only meaningful with kind = \"tokens\"",
        );
    }
    let list =
        |v: &Option<S<Vec<String>>>| v.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default();
    let filter = tollgate_quota::Filter {
        consumers: list(&l.consumers),
        keys: list(&l.keys),
        tenants: list(&l.tenants),
        projects: list(&l.projects),
        models: list(&l.models),
    };
    // Names that refer to the keys file must exist there (a typo would silently match nothing).
    if !keys.consumers().is_empty() {
        if let Some(c) = &l.consumers {
            for n in c.get_ref() {
                if !keys.consumers().iter().any(|x| &x.name == n) {
                    cx.err(
                        c,
                        &f("consumers"),
                        format!("no consumer {n:?} in the keys file"),
                    );
                }
            }
        }
        if let Some(c) = &l.tenants {
            for n in c.get_ref() {
                if !keys.consumers().iter().any(|x| &x.tenant == n) {
                    cx.err(
                        c,
                        &f("tenants"),
                        format!("no consumer of tenant {n:?} in the keys file"),
                    );
                }
            }
        }
        if let Some(c) = &l.keys {
            for n in c.get_ref() {
                if !keys.keys().iter().any(|x| &x.id == n) {
                    cx.err(c, &f("keys"), format!("no key id {n:?} in the keys file"));
                }
            }
        }
    }
    let mut schedule = Vec::new();
    for (j, s) in l.schedule.iter().enumerate() {
        let g = |n: &str| format!("quota.limits[{i}].schedule[{j}].{n}");
        if matches!(kind, Kind::Concurrency) {
            cx.err(
                &s.days,
                &g("days"),
                "schedules apply to requests and tokens limits",
            );
        }
        let days = tollgate_quota::parse_days(s.days.get_ref()).unwrap_or_else(|e| {
            cx.err(&s.days, &g("days"), e);
            [true; 7]
        });
        let from = tollgate_quota::parse_hhmm(s.from.get_ref()).unwrap_or_else(|e| {
            cx.err(&s.from, &g("from"), e);
            0
        });
        let to = tollgate_quota::parse_hhmm(s.to.get_ref()).unwrap_or_else(|e| {
            cx.err(&s.to, &g("to"), e);
            0
        });
        if from == to {
            cx.err(
                &s.to,
                &g("to"),
                "from and to are equal: the window would be empty",
            );
        }
        schedule.push(tollgate_quota::ScheduleWindow {
            days,
            from_min: from,
            to_min: to,
            limit: *s.limit.get_ref(),
        });
    }
    let shared = l.shared.as_ref().is_none_or(|s| *s.get_ref());
    if cx.errors.len() > errs_before {
        return None;
    }
    Some(tollgate_quota::LimitRule {
        name,
        kind,
        per,
        filter,
        limit: *l.limit.get_ref(),
        window,
        tz,
        schedule,
        stream_overrun,
        shared,
    })
}

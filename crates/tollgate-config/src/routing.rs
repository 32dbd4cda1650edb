//! `[routing]`, `[[pools]]` and the routing half of `[[models]]` (pool / split / routes):
//! names resolved to indices, regexes compiled, every error located at its line and field.

use std::collections::HashMap;

use tollgate_route::model::{
    Condition, ContentScope, ContentTest, HeaderTest, Member, Policy, Pool, RouteRule, Settings,
    Split, VirtualModel, seed_of,
};
use tollgate_route::{EjectPolicy, Tokenizer};
use toml::Spanned;

use crate::compile::Ctx;
use crate::raw::{RawModel, RawPool, RawRouting, RawSplitTarget};
use crate::types::Backend;

/// Compile `[routing]`; returns the settings and the default policy.
pub(crate) fn settings(cx: &mut Ctx<'_>, r: &RawRouting) -> (Settings, Policy) {
    let d = Settings::default();
    let default_policy = match &r.default_policy {
        None => Policy::PrefixAffinity,
        Some(s) => policy(cx, s, "routing.default_policy").unwrap_or(Policy::PrefixAffinity),
    };
    let f = |cx: &mut Ctx<'_>, v: &Option<Spanned<f64>>, field: &str, def: f64| match v {
        None => def,
        Some(x) if (0.0..=1000.0).contains(x.get_ref()) => *x.get_ref(),
        Some(x) => {
            cx.err(x, field, "must be between 0 and 1000");
            def
        }
    };
    let scrape_interval_ms = cx.num(
        &r.scrape_interval_ms,
        "routing.scrape_interval_ms",
        d.scrape_interval_ms,
        10,
        600_000,
    );
    let stale_after_ms = cx.num(
        &r.stale_after_ms,
        "routing.stale_after_ms",
        d.stale_after_ms.max(scrape_interval_ms * 3),
        10,
        3_600_000,
    );
    if let Some(s) = &r.stale_after_ms
        && *s.get_ref() < scrape_interval_ms
    {
        cx.err(s, "routing.stale_after_ms", format!("must be at least routing.scrape_interval_ms ({scrape_interval_ms}), or every scrape would count as stale"));
    }
    let settings = Settings {
        scrape_interval_ms,
        stale_after_ms,
        scrape_timeout_ms: cx.num(
            &r.scrape_timeout_ms,
            "routing.scrape_timeout_ms",
            d.scrape_timeout_ms,
            10,
            60_000,
        ),
        probe_interval_ms: cx.num(
            &r.probe_interval_ms,
            "routing.probe_interval_ms",
            d.probe_interval_ms,
            10,
            3_600_000,
        ),
        probe_failures_down: cx.num(
            &r.probe_failures_down,
            "routing.probe_failures_down",
            u64::from(d.probe_failures_down),
            1,
            100,
        ) as u32,
        eject: EjectPolicy {
            consecutive_failures: cx.num(
                &r.eject_consecutive_failures,
                "routing.eject_consecutive_failures",
                u64::from(d.eject.consecutive_failures),
                1,
                1000,
            ) as u32,
            base_ms: cx.num(
                &r.eject_base_ms,
                "routing.eject_base_ms",
                d.eject.base_ms,
                1,
                3_600_000,
            ),
            max_ms: cx.num(
                &r.eject_max_ms,
                "routing.eject_max_ms",
                d.eject.max_ms,
                1,
                86_400_000,
            ),
        },
        max_ejected_percent: cx.num(
            &r.max_ejected_percent,
            "routing.max_ejected_percent",
            u64::from(d.max_ejected_percent),
            0,
            100,
        ) as u32,
        saturation_queue: cx.num(
            &r.saturation_queue,
            "routing.saturation_queue",
            d.saturation_queue as u64,
            1,
            1_000_000,
        ) as f64,
        weight_queue: f(cx, &r.weight_queue, "routing.weight_queue", d.weight_queue),
        weight_kv: f(cx, &r.weight_kv, "routing.weight_kv", d.weight_kv),
        weight_tokens: f(
            cx,
            &r.weight_tokens,
            "routing.weight_tokens",
            d.weight_tokens,
        ),
        prefix_block_bytes: cx.num(
            &r.prefix_block_bytes,
            "routing.prefix_block_bytes",
            d.prefix_block_bytes as u64,
            16,
            65_536,
        ) as usize,
        prefix_max_blocks: cx.num(
            &r.prefix_max_blocks,
            "routing.prefix_max_blocks",
            d.prefix_max_blocks as u64,
            1,
            65_536,
        ) as usize,
        prefix_table_slots: cx.num(
            &r.prefix_table_slots,
            "routing.prefix_table_slots",
            d.prefix_table_slots as u64,
            1024,
            1 << 28,
        ) as usize,
        prefix_min_match: match &r.prefix_min_match {
            None => d.prefix_min_match,
            Some(x) if (0.0..=1.0).contains(x.get_ref()) => *x.get_ref(),
            Some(x) => {
                cx.err(x, "routing.prefix_min_match", "must be between 0 and 1");
                d.prefix_min_match
            }
        },
        affinity_ratio: f(
            cx,
            &r.affinity_ratio,
            "routing.affinity_ratio",
            d.affinity_ratio,
        ),
        affinity_slack: cx.num(
            &r.affinity_slack,
            "routing.affinity_slack",
            u64::from(d.affinity_slack),
            0,
            1_000_000,
        ) as u32,
        default_output_tokens: cx.num(
            &r.default_output_tokens,
            "routing.default_output_tokens",
            d.default_output_tokens,
            1,
            1 << 20,
        ),
        retry_budget_percent: cx.num(
            &r.retry_budget_percent,
            "routing.retry_budget_percent",
            u64::from(d.retry_budget_percent),
            0,
            100,
        ) as u32,
        min_retries_per_sec: cx.num(
            &r.min_retries_per_sec,
            "routing.min_retries_per_sec",
            u64::from(d.min_retries_per_sec),
            0,
            100_000,
        ) as u32,
    };
    (settings, default_policy)
}

fn policy(cx: &mut Ctx<'_>, s: &Spanned<String>, field: &str) -> Option<Policy> {
    let p = Policy::from_name(s.get_ref());
    if p.is_none() {
        let all: Vec<&str> = Policy::ALL.iter().map(|p| p.as_str()).collect();
        cx.err(
            s,
            field,
            format!(
                "unknown policy {:?}; expected one of {}",
                s.get_ref(),
                all.join(", ")
            ),
        );
    }
    p
}

fn backend_list(
    cx: &mut Ctx<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    backends: &[Backend],
    weights: &HashMap<String, u32>,
) -> Vec<Member> {
    let mut out = Vec::new();
    for (j, bn) in list.get_ref().iter().enumerate() {
        match backends.iter().position(|b| &b.name == bn.get_ref()) {
            Some(p) if out.iter().any(|m: &Member| m.backend == p) => {
                cx.err(
                    bn,
                    &format!("{field}[{j}]"),
                    format!("backend {:?} is listed twice", bn.get_ref()),
                );
            }
            Some(p) => out.push(Member {
                backend: p,
                weight: weights.get(bn.get_ref()).copied().unwrap_or(1),
            }),
            None => cx.err(
                bn,
                &format!("{field}[{j}]"),
                format!("unknown backend {:?}", bn.get_ref()),
            ),
        }
    }
    out
}

/// Compile `[[pools]]`.
pub(crate) fn pools(
    cx: &mut Ctx<'_>,
    raw: &[RawPool],
    backends: &[Backend],
    default_policy: Policy,
) -> Vec<Pool> {
    let mut out: Vec<Pool> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let f = |k: &str| format!("pools[{i}].{k}");
        let name = p.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            cx.err(
                &p.name,
                &f("name"),
                "must be non-empty and use only [A-Za-z0-9-_.:]",
            );
        }
        if out.iter().any(|q| q.name == name) {
            cx.err(&p.name, &f("name"), format!("duplicate pool name {name:?}"));
        }
        let mut weights = HashMap::new();
        if let Some(w) = &p.weights {
            for (k, v) in w.get_ref() {
                if !(1..=1_000_000).contains(v.get_ref()) {
                    cx.err(
                        v,
                        &f(&format!("weights.{k}")),
                        "must be between 1 and 1000000",
                    );
                }
                weights.insert(k.clone(), (*v.get_ref()).clamp(1, 1_000_000) as u32);
            }
        }
        let mut tiers = Vec::new();
        match (&p.backends, &p.tiers) {
            (Some(_), Some(t)) => cx.err(
                t,
                &f("tiers"),
                "set either backends (+ backup) or tiers, not both",
            ),
            (None, None) => cx.err(
                &p.name,
                &f("backends"),
                "a pool needs backends = [...] or tiers = [[...], ...]",
            ),
            (Some(b), None) => {
                tiers.push(backend_list(cx, b, &f("backends"), backends, &weights));
                if let Some(bk) = &p.backup {
                    tiers.push(backend_list(cx, bk, &f("backup"), backends, &weights));
                }
            }
            (None, Some(t)) => {
                if let Some(bk) = &p.backup {
                    cx.err(
                        bk,
                        &f("backup"),
                        "backup goes with backends; with tiers, add another tier",
                    );
                }
                for (k, tier) in t.get_ref().iter().enumerate() {
                    tiers.push(backend_list(
                        cx,
                        tier,
                        &f(&format!("tiers[{k}]")),
                        backends,
                        &weights,
                    ));
                }
            }
        }
        for (k, tier) in tiers.iter().enumerate() {
            if tier.is_empty() {
                cx.err(
                    &p.name,
                    &f(&format!("tiers[{k}]")),
                    "a tier needs at least one backend",
                );
            }
        }
        let all: Vec<usize> = tiers.iter().flatten().map(|m| m.backend).collect();
        if let Some(w) = &p.weights {
            for k in w.get_ref().keys() {
                if !all
                    .iter()
                    .any(|&b| backends.get(b).is_some_and(|x| &x.name == k))
                {
                    cx.err(
                        w,
                        &f("weights"),
                        format!("{k:?} is not a backend of this pool"),
                    );
                }
            }
        }
        for (x, &b) in all.iter().enumerate() {
            if all[..x].contains(&b) {
                cx.err(
                    &p.name,
                    &f("tiers"),
                    format!(
                        "backend {:?} is in two tiers",
                        backends.get(b).map_or("", |x| &x.name)
                    ),
                );
            }
        }
        let pol = match &p.policy {
            Some(s) => policy(cx, s, &f("policy")).unwrap_or(default_policy),
            None => default_policy,
        };
        let model = p.model.as_ref().map(|m| {
            if m.get_ref().is_empty()
                || m.get_ref().len() > 256
                || m.get_ref()
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\')
            {
                cx.err(
                    m,
                    &f("model"),
                    "must be 1..256 characters without control characters, quotes or backslashes",
                );
            }
            m.get_ref().clone()
        });
        out.push(Pool {
            seed: seed_of(&name),
            name,
            policy: pol,
            tiers,
            model,
        });
    }
    out
}

fn split(
    cx: &mut Ctx<'_>,
    pool: &Option<Spanned<String>>,
    split: &Option<Spanned<Vec<RawSplitTarget>>>,
    field: &str,
    pools: &[Pool],
) -> Option<Split> {
    let find = |cx: &mut Ctx<'_>, s: &Spanned<String>, f: &str| {
        let p = pools.iter().position(|p| &p.name == s.get_ref());
        if p.is_none() {
            cx.err(s, f, format!("unknown pool {:?}", s.get_ref()));
        }
        p
    };
    match (pool, split) {
        (Some(p), None) => find(cx, p, &format!("{field}.pool")).map(|p| Split {
            targets: vec![(p, 1)],
        }),
        (None, Some(s)) => {
            if s.get_ref().is_empty() {
                cx.err(s, &format!("{field}.split"), "needs at least one target");
                return None;
            }
            let mut targets = Vec::new();
            for (k, t) in s.get_ref().iter().enumerate() {
                let f = format!("{field}.split[{k}]");
                if !(1..=1_000_000).contains(t.weight.get_ref()) {
                    cx.err(
                        &t.weight,
                        &format!("{f}.weight"),
                        "must be between 1 and 1000000",
                    );
                }
                if let Some(p) = find(cx, &t.pool, &format!("{f}.pool")) {
                    targets.push((p, (*t.weight.get_ref()).clamp(1, 1_000_000) as u32));
                }
            }
            Some(Split { targets })
        }
        (Some(p), Some(_)) => {
            cx.err(
                p,
                &format!("{field}.pool"),
                "set either pool or split, not both",
            );
            None
        }
        (None, None) => None,
    }
}

/// Compile the routing half of model `i`: its default split (an implicit pool is appended to
/// `pools` for `backends = [...]`) and its route rules.
pub(crate) fn model(
    cx: &mut Ctx<'_>,
    i: usize,
    m: &RawModel,
    backends: &[Backend],
    pools: &mut Vec<Pool>,
    default_policy: Policy,
) -> VirtualModel {
    let f = |k: &str| format!("models[{i}].{k}");
    let default = match (&m.backends, &m.pool, &m.split) {
        (Some(b), None, None) => {
            if b.get_ref().is_empty() {
                cx.err(b, &f("backends"), "needs at least one backend");
            }
            let tier = backend_list(cx, b, &f("backends"), backends, &HashMap::new());
            let name = format!("model:{}", m.name.get_ref());
            pools.push(Pool {
                seed: seed_of(&name),
                name,
                policy: default_policy,
                tiers: vec![tier],
                model: None,
            });
            Some(Split {
                targets: vec![(pools.len() - 1, 1)],
            })
        }
        (None, _, _) => split(cx, &m.pool, &m.split, &format!("models[{i}]"), pools),
        (Some(b), _, _) => {
            cx.err(b, &f("backends"), "set one of backends, pool or split");
            None
        }
    };
    if default.is_none() && m.backends.is_none() && m.pool.is_none() && m.split.is_none() {
        cx.err(
            &m.name,
            &f("pool"),
            "a model needs pool = \"...\", split = [...] or backends = [...]",
        );
    }
    let tokenizer = match &m.tokenizer {
        None => Tokenizer::Cl100k,
        Some(t) => Tokenizer::from_name(t.get_ref()).unwrap_or_else(|| {
            cx.err(
                t,
                &f("tokenizer"),
                format!(
                    "unknown tokenizer {:?}; expected cl100k_base or o200k_base",
                    t.get_ref()
                ),
            );
            Tokenizer::Cl100k
        }),
    };
    let mut routes = Vec::new();
    for (k, r) in m.routes.iter().enumerate() {
        let rf = format!("models[{i}].routes[{k}]");
        let name = r
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| format!("route{k}"));
        let target = split(cx, &r.pool, &r.split, &rf, pools);
        if r.pool.is_none() && r.split.is_none() {
            cx.err(
                &r.when,
                &format!("{rf}.pool"),
                "a route needs pool = \"...\" or split = [...]",
            );
        }
        let w = r.when.get_ref();
        let mut when = Vec::new();
        if let Some(h) = &w.header {
            let h = h.get_ref();
            let hname = h.name.get_ref().to_ascii_lowercase();
            if hname.is_empty()
                || !hname
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                cx.err(
                    &h.name,
                    &format!("{rf}.when.header.name"),
                    "not a valid header name",
                );
            }
            let test = match (&h.equals, &h.regex, &h.present) {
                (Some(e), None, None) => Some(HeaderTest::Equals(e.get_ref().clone())),
                (None, Some(re), None) => match regex::Regex::new(re.get_ref()) {
                    Ok(re) => Some(HeaderTest::Regex(re)),
                    Err(e) => {
                        cx.err(
                            re,
                            &format!("{rf}.when.header.regex"),
                            format!("invalid regex: {e}"),
                        );
                        None
                    }
                },
                (None, None, Some(p)) if *p.get_ref() => Some(HeaderTest::Present),
                _ => {
                    cx.err(
                        &h.name,
                        &format!("{rf}.when.header"),
                        "set exactly one of equals, regex or present = true",
                    );
                    None
                }
            };
            if let Some(test) = test {
                when.push(Condition::Header { name: hname, test });
            }
        }
        if let Some(c) = &w.content {
            let c = c.get_ref();
            let scope = match c.scope.as_ref().map(|s| (s, s.get_ref().as_str())) {
                None | Some((_, "user")) => ContentScope::User,
                Some((_, "last_user")) => ContentScope::LastUser,
                Some((_, "all")) => ContentScope::All,
                Some((s, other)) => {
                    cx.err(
                        s,
                        &format!("{rf}.when.content.scope"),
                        format!("unknown scope {other:?}; expected user, last_user or all"),
                    );
                    ContentScope::User
                }
            };
            let test = match (&c.keywords, &c.regex) {
                (Some(k), None) => {
                    if k.get_ref().is_empty() || k.get_ref().iter().any(String::is_empty) {
                        cx.err(
                            k,
                            &format!("{rf}.when.content.keywords"),
                            "needs at least one keyword, none empty",
                        );
                        None
                    } else {
                        match aho_corasick::AhoCorasick::builder()
                            .ascii_case_insensitive(true)
                            .build(k.get_ref())
                        {
                            Ok(ac) => Some(ContentTest::Keywords(ac)),
                            Err(e) => {
                                cx.err(
                                    k,
                                    &format!("{rf}.when.content.keywords"),
                                    format!("cannot build the keyword automaton: {e}"),
                                );
                                None
                            }
                        }
                    }
                }
                (None, Some(re)) => match regex::RegexBuilder::new(re.get_ref())
                    .size_limit(1 << 22)
                    .build()
                {
                    Ok(re) => Some(ContentTest::Regex(re)),
                    Err(e) => {
                        cx.err(
                            re,
                            &format!("{rf}.when.content.regex"),
                            format!("invalid regex: {e}"),
                        );
                        None
                    }
                },
                _ => {
                    cx.err(
                        &r.when,
                        &format!("{rf}.when.content"),
                        "set exactly one of keywords or regex",
                    );
                    None
                }
            };
            if let Some(test) = test {
                when.push(Condition::Content { scope, test });
            }
        }
        if let Some(t) = &w.context_tokens {
            let tc = t.get_ref();
            let (min, max) = (
                tc.min.as_ref().map(|v| *v.get_ref()),
                tc.max.as_ref().map(|v| *v.get_ref()),
            );
            match (min, max) {
                (None, None) => cx.err(
                    t,
                    &format!("{rf}.when.context_tokens"),
                    "set min, max or both",
                ),
                (Some(a), Some(b)) if a >= b => cx.err(
                    t,
                    &format!("{rf}.when.context_tokens"),
                    format!("min ({a}) must be below max ({b})"),
                ),
                _ => when.push(Condition::ContextTokens { min, max }),
            }
        }
        if w.header.is_none() && w.content.is_none() && w.context_tokens.is_none() {
            cx.err(
                &r.when,
                &format!("{rf}.when"),
                "needs at least one of header, content or context_tokens",
            );
        }
        when.sort_by_key(Condition::cost);
        if let Some(split) = target {
            routes.push(RouteRule { name, when, split });
        }
    }
    VirtualModel {
        routes,
        default: default.unwrap_or(Split {
            targets: Vec::new(),
        }),
        tokenizer,
    }
}

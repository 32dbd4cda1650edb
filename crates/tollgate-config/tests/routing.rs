//! `[routing]`, `[[pools]]` and model routes: what compiles to what, and every error located.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tollgate_route::model::{Condition, ContentScope, HeaderTest, Policy};

const BASE: &str = r#"
[[backends]]
name = "a"
url = "http://127.0.0.1:8000"
kind = "vllm"
[[backends]]
name = "b"
url = "http://127.0.0.1:8001"
kind = "sglang"
[[backends]]
name = "c"
url = "http://127.0.0.1:8002"
kind = "vllm"
max_inflight = 32
"#;

fn errs(text: &str) -> Vec<String> {
    tollgate_config::parse_str(text, "t.toml", Path::new("."))
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn pools_tiers_routes_and_splits_compile() {
    let text = format!(
        r#"{BASE}
[routing]
scrape_interval_ms = 100
default_policy = "least_load"
[[pools]]
name = "main"
backends = ["a", "b"]
backup = ["c"]
policy = "p2c"
model = "meta-llama/Llama-3.1-8B-Instruct"
[[pools]]
name = "canary"
tiers = [["c"]]
[[pools]]
name = "w"
backends = ["a", "b"]
policy = "weighted"
weights = {{ a = 3 }}
[[models]]
name = "chat"
split = [{{ pool = "main", weight = 90 }}, {{ pool = "canary", weight = 10 }}]
tokenizer = "o200k_base"
[[models.routes]]
name = "gold"
pool = "canary"
when = {{ header = {{ name = "X-Tier", equals = "gold" }} }}
[[models.routes]]
name = "long"
pool = "w"
when = {{ context_tokens = {{ min = 8000 }}, content = {{ keywords = ["sql"], scope = "last_user" }} }}
"#
    );
    let c = tollgate_config::parse_str(&text, "t.toml", Path::new(".")).unwrap();
    assert_eq!(c.routing.scrape_interval_ms, 100);
    assert_eq!(c.routing.stale_after_ms, 1000);
    let main = &c.pools[0];
    assert_eq!(main.policy, Policy::P2c);
    assert_eq!(main.tiers.len(), 2);
    assert_eq!(main.tiers[1][0].backend, 2);
    assert_eq!(
        main.model.as_deref(),
        Some("meta-llama/Llama-3.1-8B-Instruct")
    );
    assert_eq!(
        c.pools[1].policy,
        Policy::LeastLoad,
        "default_policy applies"
    );
    assert_eq!(c.pools[2].tiers[0][0].weight, 3);
    assert_eq!(c.pools[2].tiers[0][1].weight, 1);
    assert_eq!(c.backends[2].max_inflight, 32);
    let m = &c.model("chat").unwrap().1.routing;
    assert_eq!(m.default.targets, vec![(0, 90), (1, 10)]);
    assert_eq!(m.tokenizer, tollgate_route::Tokenizer::O200k);
    assert_eq!(m.routes.len(), 2);
    match &m.routes[0].when[0] {
        Condition::Header {
            name,
            test: HeaderTest::Equals(v),
        } => {
            assert_eq!((name.as_str(), v.as_str()), ("x-tier", "gold"))
        }
        other => panic!("{other:?}"),
    }
    // Conditions are sorted cheapest first: content before the token count.
    assert!(matches!(
        m.routes[1].when[0],
        Condition::Content {
            scope: ContentScope::LastUser,
            ..
        }
    ));
    assert!(matches!(
        m.routes[1].when[1],
        Condition::ContextTokens {
            min: Some(8000),
            max: None
        }
    ));
    assert!(m.needs_text());
}

#[test]
fn routing_errors_name_line_and_field() {
    let text = format!(
        r#"{BASE}
[routing]
scrape_interval_ms = 500
stale_after_ms = 100
default_policy = "fastest"
[[pools]]
name = "main"
backends = ["a", "zz", "a"]
policy = "lottery"
[[pools]]
name = "main"
tiers = [["b"], []]
weights = {{ c = 0 }}
[[models]]
name = "chat"
pool = "nope"
tokenizer = "llama"
[[models.routes]]
split = [{{ pool = "main", weight = 0 }}]
when = {{ header = {{ name = "x", equals = "1", regex = "2" }} }}
[[models.routes]]
pool = "main"
when = {{ content = {{ regex = "(" }}, context_tokens = {{ min = 10, max = 5 }} }}
[[models.routes]]
pool = "main"
when = {{}}
"#
    );
    let e = errs(&text);
    let want = [
        "routing.stale_after_ms: must be at least routing.scrape_interval_ms (500)",
        "routing.default_policy: unknown policy \"fastest\"",
        "pools[0].backends[1]: unknown backend \"zz\"",
        "pools[0].backends[2]: backend \"a\" is listed twice",
        "pools[0].policy: unknown policy \"lottery\"",
        "pools[1].name: duplicate pool name \"main\"",
        "pools[1].weights.c: must be between 1 and 1000000",
        "pools[1].tiers[1]: a tier needs at least one backend",
        "pools[1].weights: \"c\" is not a backend of this pool",
        "models[0].pool: unknown pool \"nope\"",
        "models[0].tokenizer: unknown tokenizer \"llama\"",
        "models[0].routes[0].split[0].weight: must be between 1 and 1000000",
        "models[0].routes[0].when.header: set exactly one of equals, regex or present = true",
        "models[0].routes[1].when.content.regex: invalid regex",
        "models[0].routes[1].when.context_tokens: min (10) must be below max (5)",
        "models[0].routes[2].when: needs at least one of header, content or context_tokens",
    ];
    for w in want {
        assert!(e.iter().any(|x| x.contains(w)), "missing {w:?} in {e:#?}");
    }
    // Every error carries file:line:col.
    for x in &e {
        assert!(
            x.starts_with("t.toml:") && !x.starts_with("t.toml:0:"),
            "{x}"
        );
    }
}

#[test]
fn a_model_needs_a_target() {
    let e = errs(&format!("{BASE}\n[[models]]\nname = \"m\"\n"));
    assert!(
        e.iter()
            .any(|x| x.contains("models[0].pool: a model needs pool")),
        "{e:?}"
    );
    let e = errs(&format!(
        "{BASE}\n[[pools]]\nname = \"p\"\nbackends = [\"a\"]\n[[models]]\nname = \"m\"\npool = \"p\"\nbackends = [\"a\"]\n"
    ));
    assert!(
        e.iter()
            .any(|x| x.contains("models[0].backends: set one of backends, pool or split")),
        "{e:?}"
    );
}

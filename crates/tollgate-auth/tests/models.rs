//! Model permissions: exact names, `*`, `?`, prefix/suffix globs, case sensitivity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tollgate_auth::ModelMatcher;

fn m(p: &[&str]) -> ModelMatcher {
    ModelMatcher::new(p).unwrap()
}

#[test]
fn exact_match_only() {
    let x = m(&["llama-3-8b"]);
    assert!(x.allows("llama-3-8b"));
    assert!(!x.allows("llama-3-8b-instruct"));
    assert!(!x.allows("llama-3-8"));
    assert!(!x.allows(""));
}

#[test]
fn star_allows_everything() {
    for x in [m(&["*"]), ModelMatcher::all(), m(&["**"])] {
        assert!(x.allows("anything") && x.allows("") && x.allows("Ω"));
    }
    assert_eq!(ModelMatcher::all().patterns(), ["*"]);
}

#[test]
fn prefix_and_suffix_globs() {
    let x = m(&["qwen-*", "*-instruct", "mid*dle"]);
    assert!(x.allows("qwen-7b") && x.allows("qwen-"));
    assert!(!x.allows("qwen") && !x.allows("xqwen-7b"));
    assert!(x.allows("llama-instruct") && x.allows("-instruct"));
    assert!(!x.allows("llama-instruct-v2"));
    assert!(x.allows("middle") && x.allows("mid-x-dle"));
    assert!(!x.allows("midle"));
}

#[test]
fn question_mark_is_one_char() {
    let x = m(&["gpt-?"]);
    assert!(x.allows("gpt-4") && x.allows("gpt-é"));
    assert!(!x.allows("gpt-") && !x.allows("gpt-4o"));
}

#[test]
fn no_case_folding() {
    let x = m(&["Llama-*", "Qwen"]);
    assert!(x.allows("Llama-3"));
    assert!(!x.allows("llama-3") && !x.allows("LLAMA-3"));
    assert!(!x.allows("qwen") && !x.allows("QWEN"));
}

#[test]
fn bad_patterns_are_rejected() {
    assert!(ModelMatcher::new::<&str>(&[]).is_err());
    for bad in [
        "",
        "qwen-[0-9]",
        "a{b,c}",
        "a\\*",
        "has space",
        "tab\t",
        "tgk_0123456789ab_x",
    ] {
        assert!(ModelMatcher::new(&[bad]).is_err(), "{bad:?}");
    }
    assert!(ModelMatcher::new(&["x".repeat(257)]).is_err());
}

proptest! {
    /// A pattern without wildcards matches exactly itself.
    #[test]
    fn literal_matches_only_itself(p in "[A-Za-z0-9._:/-]{1,24}", other in "[A-Za-z0-9._:/*?-]{0,24}") {
        let x = m(&[p.as_str()]);
        prop_assert!(x.allows(&p));
        prop_assert_eq!(x.allows(&other), other == p);
        let longer = format!("{p}x");
        prop_assert!(!x.allows(&longer));
        prop_assert!(!x.allows(&p.to_uppercase()) || p.to_uppercase() == p);
    }

    /// `prefix*` agrees with `starts_with`, `*suffix` with `ends_with`.
    #[test]
    fn star_globs_agree_with_str_methods(a in "[a-c]{0,4}", t in "[a-c]{0,8}") {
        prop_assert_eq!(m(&[format!("{a}*").as_str()]).allows(&t), t.starts_with(&a));
        prop_assert_eq!(m(&[format!("*{a}").as_str()]).allows(&t), t.ends_with(&a));
        prop_assert_eq!(m(&[format!("*{a}*").as_str()]).allows(&t), t.contains(&a));
    }
}

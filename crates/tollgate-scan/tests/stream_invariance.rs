//! The streaming masker must produce, for any split of a text into pieces, exactly what
//! masking the whole text produces — and never emit a raw canary.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use tollgate_scan::{Direction, RuleSet, Scanner};

const RULES: &str = r#"
[[rule]]
id = "email"
pattern = '''[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,120}\.[A-Za-z]{2,24}'''
action = "mask"
replacement = "[EMAIL]"

[[rule]]
id = "card"
pattern = '''\b(?:\d[ -]?){12,18}\d\b'''
validator = "luhn"
action = "mask"
replacement = "****"
keep_last = 4

[[rule]]
id = "cn-mobile"
pattern = '''\b1[3-9]\d{9}\b'''
action = "mask"

[[rule]]
id = "words"
words = ["nightingale", "project x", "机密文件", "绝密"]
case_insensitive = true
whole_word = true
action = "mask"
replacement = "***"

[[rule]]
id = "ipv4"
pattern = '''\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b'''
action = "audit"
"#;

fn rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::compile(&[(Path::new("test.toml"), RULES)], 256).unwrap())
}

fn stream_mask(sc: &mut Scanner, pieces: &[&str]) -> String {
    let mut st = sc.stream(Direction::Response);
    let mut out = String::new();
    let mut hits = Vec::new();
    for p in pieces {
        st.push(sc, p, &mut out, &mut hits).unwrap();
        assert!(st.held() <= 256 + 1 + p.len() + 64, "held {}", st.held());
    }
    st.finish(sc, &mut out, &mut hits).unwrap();
    out
}

fn whole(sc: &mut Scanner, text: &str) -> String {
    let r = sc.scan_text(Direction::Response, text);
    r.masked.unwrap_or_else(|| text.to_string())
}

fn fragment_list() -> impl Strategy<Value = Vec<String>> {
    let frag = prop_oneof![
        Just("alice@example.com".to_string()),
        Just("bob.smith+x@mail.example.co.uk".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("4111111111111112".to_string()),
        Just("4111111111111111".to_string()),
        Just("13800138000".to_string()),
        Just("138001380001".to_string()),
        Just("Nightingale".to_string()),
        Just("nightingales".to_string()),
        Just("project X".to_string()),
        Just("机密文件".to_string()),
        Just("10.0.0.1".to_string()),
        Just("@".to_string()),
        Just(".".to_string()),
        Just(" ".to_string()),
        Just("，".to_string()),
        "[a-z]{1,8}",
        "[0-9]{1,6}",
        "[ a-zA-Z0-9@.\\-]{1,12}",
        "[中文测试é]{1,4}",
    ];
    prop::collection::vec(frag, 1..24)
}

/// Fragments glued together (adversarial contexts).
fn fragments() -> impl Strategy<Value = String> {
    fragment_list().prop_map(|v| v.concat())
}

/// Fragments separated by spaces, so each canary stands on its own.
fn spaced() -> impl Strategy<Value = String> {
    fragment_list().prop_map(|v| v.join(" "))
}

const CANARIES: &[&str] = &[
    "alice@example.com",
    "bob.smith+x@mail.example.co.uk",
    "4111 1111 1111 1111",
    "4111111111111111",
    "13800138000",
    "nightingale",
    "project x",
    "机密文件",
];

fn split_points(text: &str, cuts: &[usize]) -> Vec<String> {
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let mut pts: Vec<usize> = cuts.iter().map(|c| bounds[c % bounds.len()]).collect();
    pts.push(0);
    pts.push(text.len());
    pts.sort_unstable();
    pts.dedup();
    pts.windows(2)
        .map(|w| text[w[0]..w[1]].to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_split_equals_whole(text in fragments(), cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let r = rules();
        let mut sc = Scanner::new(r).unwrap();
        let expect = whole(&mut sc, &text);
        let pieces = split_points(&text, &cuts);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let got = stream_mask(&mut sc, &refs);
        prop_assert_eq!(&got, &expect);
    }

    #[test]
    fn no_canary_survives_any_split(text in spaced(), cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let mut sc = Scanner::new(rules()).unwrap();
        let pieces = split_points(&text, &cuts);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let got = format!(" {} ", stream_mask(&mut sc, &refs).to_lowercase());
        for c in CANARIES {
            prop_assert!(!got.contains(&format!(" {c} ")), "canary {} leaked in {:?}", c, got);
        }
    }

    #[test]
    fn one_char_per_piece_equals_whole(text in fragments()) {
        let mut sc = Scanner::new(rules()).unwrap();
        let expect = whole(&mut sc, &text);
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        prop_assert_eq!(stream_mask(&mut sc, &refs), expect);
    }
}

#[test]
fn masks_basic_canaries() {
    let mut sc = Scanner::new(rules()).unwrap();
    let out = whole(
        &mut sc,
        "mail alice@example.com, card 4111 1111 1111 1111, tel 13800138000, Project X and 机密文件.",
    );
    assert_eq!(
        out,
        "mail [EMAIL], card ****1111, tel [CN-MOBILE], *** and ***."
    );
    // Near miss: Luhn fails.
    assert_eq!(
        whole(&mut sc, "card 4111 1111 1111 1112"),
        "card 4111 1111 1111 1112"
    );
    // Whole word: no match inside a longer word.
    assert_eq!(whole(&mut sc, "nightingales sing"), "nightingales sing");
}

#[test]
fn hold_back_releases_as_soon_as_possible() {
    let mut sc = Scanner::new(rules()).unwrap();
    let mut st = sc.stream(Direction::Response);
    let mut out = String::new();
    let mut hits = Vec::new();
    st.push(&mut sc, "Hello ", &mut out, &mut hits).unwrap();
    assert_eq!(out, "Hello ");
    st.push(&mut sc, "wor", &mut out, &mut hits).unwrap();
    assert_eq!(out, "Hello ", "a word could still become an e-mail");
    st.push(&mut sc, "ld! ", &mut out, &mut hits).unwrap();
    assert_eq!(out, "Hello world! ");
    st.push(&mut sc, "alice@exa", &mut out, &mut hits).unwrap();
    assert_eq!(out, "Hello world! ");
    st.push(&mut sc, "mple.com ok", &mut out, &mut hits)
        .unwrap();
    assert_eq!(out, "Hello world! [EMAIL] ");
    st.finish(&mut sc, &mut out, &mut hits).unwrap();
    assert_eq!(out, "Hello world! [EMAIL] ok");
    assert_eq!(hits.len(), 1);
}

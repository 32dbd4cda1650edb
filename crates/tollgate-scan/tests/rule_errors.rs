//! Every rule-file mistake is reported with file, line and rule — all of them at once.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use tollgate_scan::RuleSet;

fn errors(text: &str) -> Vec<String> {
    match RuleSet::compile(&[(Path::new("rules/x.toml"), text)], 256) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn syntax_and_unknown_keys_name_line_and_rule() {
    let e = errors("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"mask\"\nreplacment = \"y\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("rules/x.toml:5: rule 'a': unknown field `replacment`"),
        "{e:?}"
    );
    let e = errors("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"erase\"\n");
    assert!(
        e[0].starts_with("rules/x.toml:4: rule 'a': unknown variant `erase`"),
        "{e:?}"
    );
    let e = errors("[[rule]\n");
    assert!(e[0].starts_with("rules/x.toml:1:"), "{e:?}");
}

#[test]
fn semantic_errors_are_all_reported() {
    let text = r#"
[[rule]]
id = "unbounded"
pattern = '''[a-z]+@x\.com'''
action = "mask"

[[rule]]
id = "anchored"
pattern = '''^secret'''
action = "block"

[[rule]]
id = "empty"
pattern = '''a?'''
action = "audit"

[[rule]]
id = "bad-regex"
pattern = '''(unclosed'''
action = "mask"

[[rule]]
id = "Upper"
words = ["x"]
action = "mask"

[[rule]]
id = "both"
pattern = 'x'
words = ["x"]
action = "mask"

[[rule]]
id = "nofile"
words_file = "does/not/exist.txt"
action = "mask"

[[rule]]
id = "fullwidth"
words = ["ｓｅｃｒｅｔ"]
action = "mask"

[[rule]]
id = "dup"
words = ["a"]
action = "block"
replacement = "x"

[[rule]]
id = "dup"
words = ["a"]
action = "mask"
"#;
    let e = errors(text);
    let find = |needle: &str| {
        e.iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no error containing {needle:?} in {e:#?}"))
            .clone()
    };
    assert!(
        find("rule 'unbounded'").contains(":4: "),
        "the pattern line"
    );
    assert!(find("rule 'unbounded'").contains("no maximum length"));
    assert!(find("rule 'anchored'").contains("anchors"));
    assert!(find("rule 'empty'").contains("empty string"));
    assert!(find("rule 'bad-regex'").contains("invalid pattern"));
    assert!(find("rule 'Upper'").contains("id must be"));
    assert!(find("rule 'both'").contains("exactly one of"));
    assert!(find("rule 'nofile'").contains("does/not/exist.txt"));
    assert!(find("rule 'fullwidth'").contains("\"secret\""));
    assert!(find("rule 'dup'").contains("apply to action = \"mask\" only"));
    assert!(
        e.iter().filter(|l| l.contains("duplicate rule id")).count() == 1,
        "{e:#?}"
    );
}

#[test]
fn max_match_len_bounds_patterns_and_words() {
    let text = "[[rule]]\nid = \"long\"\npattern = '''[a-z]{1,40}'''\naction = \"mask\"\n";
    assert!(RuleSet::compile(&[(Path::new("r.toml"), text)], 64).is_ok());
    let e = match RuleSet::compile(&[(Path::new("r.toml"), text)], 16) {
        Err(e) => e,
        Ok(_) => panic!("40 > 16 must fail"),
    };
    assert!(
        e[0].to_string().contains("more than max_match_len 16"),
        "{e:?}"
    );
}

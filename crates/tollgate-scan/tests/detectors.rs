//! Table-driven tests for the shipped detectors in `rules/` (`pii.toml`, `secrets.toml`,
//! `words.toml`, `bench/dict10k.toml`).
//!
//! For every detector: true positives in several formats, near misses that must not match, and
//! evasion variants (full-width forms, zero-width characters, Unicode dashes, mixed case) that
//! must still match after normalisation. A true positive asserts that
//! * a hit of the expected rule exists whose byte span is exactly the original (un-normalised)
//!   substring,
//! * for mask rules, the masked text no longer contains that substring (nor the listed
//!   fragments of it) and does contain the replacement,
//! * for block rules, `blocked` names the rule.
//!
//! Secret-looking test values are assembled with `concat!` so that secret scanners do not flag
//! this file; all of them are random and fake.

// Test helpers outside `#[test]` functions report failures by panicking.
#![allow(clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use tollgate_scan::{Action, Direction, Hit, RuleSet, Scanner};

const PII: &str = "../../rules/pii.toml";
const SECRETS: &str = "../../rules/secrets.toml";
const WORDS: &str = "../../rules/words.toml";
const DICT10K: &str = "../../rules/bench/dict10k.toml";
const DICT10K_WORDS: &str = "../../rules/bench/words-10k.txt";
const CLEAN: &str = "tests/data/clean.txt";

/// Maximum match length handed to the loader (the shipped patterns are all <= 256 bytes).
const MAX_MATCH: usize = 256;

fn scanner(files: &[&str]) -> Scanner {
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let rules = match RuleSet::load(paths.as_slice(), MAX_MATCH) {
        Ok(rules) => rules,
        Err(errs) => {
            let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            panic!(
                "shipped rules {files:?} failed to load:\n{}",
                msgs.join("\n")
            )
        }
    };
    match Scanner::new(Arc::new(rules)) {
        Ok(sc) => sc,
        Err(e) => panic!("scanner for {files:?}: {e}"),
    }
}

/// What a detector does with a match, as shipped.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Mask with this replacement, followed by the last `keep_last` ASCII alphanumerics.
    Mask(&'static str, usize),
    Block,
    Audit,
}

/// `ensure!(cond, fmt, ..)`: return `Err(message)` from the enclosing check when `cond` fails.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Scan `text` and check that rule `id` reports a hit spanning exactly `span` (a substring of
/// `text`), that the action is applied, and that none of `gone` survives in the masked text.
fn check_detects(
    sc: &mut Scanner,
    dir: Direction,
    id: &str,
    expect: Expect,
    text: &str,
    span: &str,
    gone: &[&str],
) -> Result<(), String> {
    let Some(pos) = text.find(span) else {
        return Err(format!("test bug: span {span:?} is not in {text:?}"));
    };
    let want = (pos, pos + span.len());
    let out = sc.scan_text(dir, text);
    let ours: Vec<&Hit> = out
        .hits
        .iter()
        .filter(|h| rule_id(sc, h.rule) == id)
        .collect();
    ensure!(
        ours.iter().any(|h| (h.start, h.end) == want),
        "rule {id}: no hit spanning {span:?} at {want:?} in {text:?}; all hits: {}",
        describe(sc, text, &out.hits),
    );
    for h in &ours {
        ensure!(
            h.action == sc.rules().rule(h.rule).action,
            "rule {id}: hit action {:?} is not the rule's",
            h.action
        );
    }
    match expect {
        Expect::Mask(repl, keep_last) => {
            let Some(masked) = out.masked.as_deref() else {
                return Err(format!(
                    "rule {id}: {text:?} matched but nothing was masked"
                ));
            };
            ensure!(
                !masked.contains(span),
                "rule {id}: {span:?} survives in {masked:?}"
            );
            for g in gone {
                ensure!(
                    !masked.contains(g),
                    "rule {id}: fragment {g:?} survives in {masked:?}"
                );
            }
            let mut expected = repl.to_string();
            if keep_last > 0 {
                let alnum: Vec<char> = span.chars().filter(char::is_ascii_alphanumeric).collect();
                let from = alnum.len().saturating_sub(keep_last);
                expected.extend(&alnum[from..]);
            }
            ensure!(
                masked.contains(&expected),
                "rule {id}: replacement {expected:?} missing from {masked:?} (input {text:?})"
            );
            ensure!(
                out.blocked.is_none(),
                "rule {id}: {text:?} unexpectedly blocked"
            );
        }
        Expect::Block => {
            let blocked = out.blocked.map(|i| rule_id(sc, i));
            ensure!(
                blocked == Some(id),
                "rule {id}: {text:?} not blocked by it (blocked: {blocked:?})"
            );
            ensure!(
                ours.iter().any(|h| h.action == Action::Block),
                "rule {id}: hit is not a block hit"
            );
        }
        Expect::Audit => {
            ensure!(
                ours.iter().all(|h| h.action == Action::Audit),
                "rule {id}: non-audit hit"
            );
            ensure!(
                out.masked.is_none() && out.blocked.is_none(),
                "audit rule {id} must not change or block {text:?}: {:?} / {:?}",
                out.masked,
                out.blocked
            );
        }
    }
    Ok(())
}

/// Check that rule `id` does not fire on `text`.
fn check_ignores(sc: &mut Scanner, id: &str, text: &str) -> Result<(), String> {
    let out = sc.scan_text(Direction::Request, text);
    ensure!(
        !out.hits.iter().any(|h| rule_id(sc, h.rule) == id),
        "rule {id} must not match {text:?}; got {}",
        describe(sc, text, &out.hits)
    );
    Ok(())
}

fn describe(sc: &Scanner, text: &str, hits: &[Hit]) -> String {
    let parts: Vec<String> = hits
        .iter()
        .map(|h| {
            let frag = text.get(h.start..h.end).unwrap_or("<not a char boundary>");
            format!("{}@{}..{} {:?}", rule_id(sc, h.rule), h.start, h.end, frag)
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn rule_id(sc: &Scanner, i: usize) -> &str {
    sc.rules().rule(i).id.as_str()
}

/// One true-positive row: (text, exact original span, fragments that must not survive masking).
type Tp = (&'static str, &'static str, &'static [&'static str]);

/// Run every row of a detector's table and report all failing rows at once.
fn run_table(files: &[&str], id: &str, expect: Expect, tps: &[Tp], misses: &[&str]) {
    let mut sc = scanner(files);
    assert!(
        sc.rules().rules().iter().any(|r| r.id == id),
        "rule {id} is not shipped in {files:?}"
    );
    let mut failures = Vec::new();
    for (i, (text, span, gone)) in tps.iter().enumerate() {
        // Alternate directions: every shipped rule applies to both.
        let dir = if i % 2 == 0 {
            Direction::Request
        } else {
            Direction::Response
        };
        if let Err(e) = check_detects(&mut sc, dir, id, expect, text, span, gone) {
            failures.push(e);
        }
    }
    for text in misses {
        if let Err(e) = check_ignores(&mut sc, id, text) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed for rule {id}:\n  {}",
        failures.len(),
        tps.len() + misses.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// PII
// ---------------------------------------------------------------------------------------------

#[test]
fn email() {
    run_table(
        &[PII],
        "email",
        Expect::Mask("[EMAIL]", 0),
        &[
            (
                "mail me at alice@example.com",
                "alice@example.com",
                &["alice", "example.com"],
            ),
            (
                "Bob.Smith+tag@mail.example.co.uk wrote:",
                "Bob.Smith+tag@mail.example.co.uk",
                &["Smith"],
            ),
            (
                "<first_last@sub-domain.example.org>",
                "first_last@sub-domain.example.org",
                &["first_last"],
            ),
            (
                "邮箱：zhang.san@example.cn。",
                "zhang.san@example.cn",
                &["zhang.san"],
            ),
            ("reply to x.y-z%1@a.io.", "x.y-z%1@a.io", &["x.y-z"]),
            ("\"to\":\"ops@EXAMPLE.COM\"", "ops@EXAMPLE.COM", &["ops@"]),
            // evasion: full-width letters and at sign / full stop
            (
                "ｍａｉｌ ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
                "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
                &[],
            ),
            // evasion: zero-width joiner / space / BOM inside
            (
                "contact alice\u{200D}@example.com now",
                "alice\u{200D}@example.com",
                &["alice", "example.com"],
            ),
            (
                "a\u{200B}lice@exa\u{FEFF}mple.com",
                "a\u{200B}lice@exa\u{FEFF}mple.com",
                &["lice@", "mple.com"],
            ),
        ],
        &[
            "alice@localhost",
            "user@example",
            "write to @example.com",
            "npm i lodash@4.17.21 and react@18.2.0",
            "foo@bar.c",
            "an @ sign and example.com",
        ],
    );
}

#[test]
fn email_with_cyrillic_lookalike() {
    // "аlice" starts with CYRILLIC SMALL LETTER A (U+0430). Whether or not the normaliser folds
    // confusables, the address must be masked: the ASCII remainder is still an e-mail address.
    let mut sc = scanner(&[PII]);
    let text = "write to \u{430}lice@example.com today";
    let out = sc.scan_text(Direction::Request, text);
    let ascii = "lice@example.com";
    let Some(pos) = text.find(ascii) else {
        panic!("test bug")
    };
    let full_start = pos - '\u{430}'.len_utf8();
    assert!(
        out.hits.iter().any(|h| rule_id(&sc, h.rule) == "email"
            && (h.start == pos || h.start == full_start)
            && h.end == pos + ascii.len()),
        "no email hit covering {ascii:?}: {}",
        describe(&sc, text, &out.hits)
    );
    let Some(masked) = out.masked.as_deref() else {
        panic!("not masked")
    };
    assert!(
        !masked.contains("lice") && !masked.contains("example.com"),
        "{masked:?}"
    );
    assert!(masked.contains("[EMAIL]"), "{masked:?}");
}

#[test]
fn phone_international() {
    run_table(
        &[PII],
        "phone_intl",
        Expect::Mask("[PHONE]", 0),
        &[
            ("call +44 20 7946 0958 today", "+44 20 7946 0958", &["7946"]),
            (
                "US office: +1 (415) 555-2671.",
                "+1 (415) 555-2671",
                &["2671"],
            ),
            ("E.164: +14155552671", "+14155552671", &["4155552671"]),
            (
                "Paris +33 1 23 45 67 89",
                "+33 1 23 45 67 89",
                &["45 67 89"],
            ),
            (
                "Berlin +49 (0)30 1234567",
                "+49 (0)30 1234567",
                &["1234567"],
            ),
            ("tel:+1-415-555-2671", "+1-415-555-2671", &["555-2671"]),
            (
                "dotted +1.415.555.2671 works",
                "+1.415.555.2671",
                &["555.2671"],
            ),
            ("香港：+852 9123 4567", "+852 9123 4567", &["9123"]),
            ("Tokyo +81 3-1234-5678", "+81 3-1234-5678", &["1234-5678"]),
            // evasion: full-width plus and digits, Unicode spaces and dashes
            (
                "＋４４ ２０ ７９４６ ０９５８",
                "＋４４ ２０ ７９４６ ０９５８",
                &[],
            ),
            (
                "+44\u{00A0}20\u{2009}7946\u{2011}0958",
                "+44\u{00A0}20\u{2009}7946\u{2011}0958",
                &["7946"],
            ),
            (
                "+1 415\u{200B}555 2671",
                "+1 415\u{200B}555 2671",
                &["2671"],
            ),
        ],
        &[
            "pi is about +3.14159265",
            "growth of +15 % and +2.5 points",
            "2+3456789012 is arithmetic",
            "offset +08:00 and +0530",
            "+12 345",
            "+1234567890123456789 is too long",
            "a score of +100 then +250",
        ],
    );
}

#[test]
fn phone_nanp() {
    run_table(
        &[PII],
        "phone_nanp",
        Expect::Mask("[PHONE]", 0),
        &[
            ("call (555) 123-4567 now", "(555) 123-4567", &["123-4567"]),
            ("(555)123-4567", "(555)123-4567", &["4567"]),
            ("office 415-555-2671 ext. 2", "415-555-2671", &["555-2671"]),
            ("fax 415.555.2671", "415.555.2671", &["2671"]),
            ("(212) 555 0100", "(212) 555 0100", &["0100"]),
            // evasion: full-width parentheses and digits, non-breaking hyphen
            (
                "（５５５） １２３－４５６７",
                "（５５５） １２３－４５６７",
                &[],
            ),
            (
                "415\u{2011}555\u{2011}2671",
                "415\u{2011}555\u{2011}2671",
                &["2671"],
            ),
        ],
        &[
            "order 123-555-2671 (area code cannot start with 1 unparenthesised)",
            "dated 2024-01-15",
            "ISBN 978-0-13-468599-1",
            "4155552671",
            "version 415.555.26711",
            "(555) 123-45678",
        ],
    );
}

#[test]
fn phone_cn_mobile() {
    run_table(
        &[PII],
        "phone_cn_mobile",
        Expect::Mask("[PHONE]", 0),
        &[
            (
                "我的手机号是13800138000，请回电。",
                "13800138000",
                &["13800138000", "0013"],
            ),
            ("138 0013 8000", "138 0013 8000", &["0013"]),
            ("电话：138-0013-8000", "138-0013-8000", &["0013"]),
            ("+86 13912345678", "+86 13912345678", &["12345678"]),
            ("+86-139-1234-5678", "+86-139-1234-5678", &["1234"]),
            ("8618612345678", "8618612345678", &["12345678"]),
            ("tel 86 199 8888 7777", "86 199 8888 7777", &["8888"]),
            // evasion: full-width digits, zero-width space, ideographic space
            ("手机１３８００１３８０００", "１３８００１３８０００", &[]),
            (
                "138\u{200B}0013\u{200B}8000",
                "138\u{200B}0013\u{200B}8000",
                &["0013"],
            ),
            (
                "138\u{3000}0013\u{3000}8000",
                "138\u{3000}0013\u{3000}8000",
                &["0013"],
            ),
        ],
        &[
            "12800138000",
            "138001380001",
            "order 213800138000",
            "10086 and 12345678901",
            "1380013800",
            "tel13800138000x",
        ],
    );
}

#[test]
fn credit_card() {
    run_table(
        &[PII],
        "credit_card",
        Expect::Mask("****", 4),
        &[
            (
                "card 4111 1111 1111 1111 exp 12/27",
                "4111 1111 1111 1111",
                &["4111 1111 1111"],
            ),
            ("4111111111111111", "4111111111111111", &["411111111111"]),
            (
                "MC 5555-5555-5555-4444",
                "5555-5555-5555-4444",
                &["5555-5555-5555"],
            ),
            ("Amex 3782 822463 10005", "3782 822463 10005", &["822463"]),
            ("Diners 3056 9309 0259 04", "3056 9309 0259 04", &["9309"]),
            ("Visa-13 4222222222222", "4222222222222", &["422222222"]),
            (
                "MC2 2223003122003222",
                "2223003122003222",
                &["222300312200"],
            ),
            (
                "Discover 6011 1111 1111 1117.",
                "6011 1111 1111 1117",
                &["6011"],
            ),
            (
                "UnionPay 6212 3456 7890 1234 569",
                "6212 3456 7890 1234 569",
                &["6212", "7890"],
            ),
            (
                "卡号：6200000000000005",
                "6200000000000005",
                &["620000000000"],
            ),
            // evasion: zero-width space, full-width digits, Unicode dashes / spaces
            (
                "pay with 4111\u{200B}1111 1111 1111",
                "4111\u{200B}1111 1111 1111",
                &["4111", "1111 1111 1111"],
            ),
            (
                "４１１１ １１１１ １１１１ １１１１",
                "４１１１ １１１１ １１１１ １１１１",
                &[],
            ),
            (
                "5555\u{2013}5555\u{2013}5555\u{2013}4444",
                "5555\u{2013}5555\u{2013}5555\u{2013}4444",
                &["5555"],
            ),
            (
                "4111\u{00A0}1111\u{00A0}1111\u{00A0}1111",
                "4111\u{00A0}1111\u{00A0}1111\u{00A0}1111",
                &["4111"],
            ),
        ],
        &[
            // fails Luhn
            "card 4111 1111 1111 1112",
            "4111111111111112",
            // too short / too long
            "411111111111",
            "41111111111111111111",
            // first digit outside 2-6
            "1111 1111 1111 1117",
            "7111 1111 1111 1111",
            // more than one separator between groups
            "4111  1111  1111  1111",
            // not a card: a list of years, a timestamp in ms
            "1700000000000",
            "years 2019 2020 2021",
        ],
    );
}

#[test]
fn iban() {
    run_table(
        &[PII],
        "iban",
        Expect::Mask("[IBAN]", 0),
        &[
            (
                "IBAN DE89 3704 0044 0532 0130 00 (Germany)",
                "DE89 3704 0044 0532 0130 00",
                &["3704", "0532"],
            ),
            (
                "DE89370400440532013000",
                "DE89370400440532013000",
                &["370400440532"],
            ),
            (
                "GB29 NWBK 6016 1331 9268 19",
                "GB29 NWBK 6016 1331 9268 19",
                &["NWBK", "6016"],
            ),
            (
                "pay FR14 2004 1010 0505 0001 3M02 606.",
                "FR14 2004 1010 0505 0001 3M02 606",
                &["3M02"],
            ),
            ("NL91ABNA0417164300", "NL91ABNA0417164300", &["ABNA0417"]),
            (
                "Norway: NO9386011117947",
                "NO9386011117947",
                &["86011117947"],
            ),
            (
                "账户 BE68539007547034 收款",
                "BE68539007547034",
                &["539007547034"],
            ),
            // evasion: full-width letters/digits, zero-width space, no-break spaces
            (
                "ＤＥ８９ ３７０４ ００４４ ０５３２ ０１３０ ００",
                "ＤＥ８９ ３７０４ ００４４ ０５３２ ０１３０ ００",
                &[],
            ),
            (
                "GB29\u{200B}NWBK\u{00A0}6016\u{00A0}1331\u{00A0}9268\u{00A0}19",
                "GB29\u{200B}NWBK\u{00A0}6016\u{00A0}1331\u{00A0}9268\u{00A0}19",
                &["NWBK"],
            ),
        ],
        &[
            // bad checksum
            "DE88 3704 0044 0532 0130 00",
            "GB28 NWBK 6016 1331 9268 19",
            // too short
            "DE89 3704",
            // lower-case letters are not matched (IBANs are printed upper-case)
            "gb29 nwbk 6016 1331 9268 19",
            // ordinary upper-case identifiers
            "ISO 8601 and RFC 3339",
            "SKU AB12 CDEF GHIJ",
        ],
    );
}

#[test]
fn us_ssn() {
    run_table(
        &[PII],
        "us_ssn",
        Expect::Mask("[US_SSN]", 0),
        &[
            ("SSN 123-45-6789", "123-45-6789", &["6789"]),
            (
                "078-05-1120 was printed on wallets",
                "078-05-1120",
                &["1120"],
            ),
            ("社会安全号 001-01-0001", "001-01-0001", &["0001"]),
            ("665-99-9999 and", "665-99-9999", &["9999"]),
            ("899-12-3456", "899-12-3456", &["3456"]),
            ("667-01-2345", "667-01-2345", &["2345"]),
            // evasion: full-width digits, Unicode dashes, zero-width space
            ("１２３－４５－６７８９", "１２３－４５－６７８９", &[]),
            (
                "123\u{2010}45\u{2014}6789",
                "123\u{2010}45\u{2014}6789",
                &["6789"],
            ),
            ("123-45-\u{200B}6789", "123-45-\u{200B}6789", &["6789"]),
        ],
        &[
            // never-issued areas, group and serial
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            // wrong shape
            "123-456-7890",
            "12-345-6789",
            "1123-45-6789",
            "123-45-67890",
            "123 45 6789",
        ],
    );
}

#[test]
fn cn_resident_id() {
    run_table(
        &[PII],
        "cn_resident_id",
        Expect::Mask("[CN_RESIDENT_ID]", 0),
        &[
            (
                "身份证号：11010519491231002X",
                "11010519491231002X",
                &["19491231"],
            ),
            (
                "id 11010519491231002x (lower-case x)",
                "11010519491231002x",
                &["19491231"],
            ),
            ("440308199003071235", "440308199003071235", &["19900307"]),
            // 2000-02-29 exists (leap year)
            (
                "身份证310115200002294567号",
                "310115200002294567",
                &["20000229"],
            ),
            ("510108202312310019。", "510108202312310019", &["20231231"]),
            ("110105190101011239", "110105190101011239", &["19010101"]),
            // evasion: full-width digits and X, zero-width joiner
            (
                "１１０１０５１９４９１２３１００２Ｘ",
                "１１０１０５１９４９１２３１００２Ｘ",
                &[],
            ),
            (
                "110105\u{200D}19491231\u{200D}002X",
                "110105\u{200D}19491231\u{200D}002X",
                &["19491231"],
            ),
        ],
        &[
            // wrong check character
            "110105194912310021",
            "11010519491231002Y",
            // impossible birth dates: 30 February, 1900-02-29 (not a leap year), month 13, day 32
            "110105194902301234",
            "110105190002291234",
            "110105194913011234",
            "110105194901321234",
            // wrong length
            "11010519491231002",
            "11010519491231002X1",
            // first digit 0
            "010105194912310020",
        ],
    );
}

#[test]
fn ipv4_is_audited() {
    run_table(
        &[PII],
        "ipv4",
        Expect::Audit,
        &[
            ("ping 192.168.1.1 now", "192.168.1.1", &[]),
            ("10.0.0.255:8080", "10.0.0.255", &[]),
            ("255.255.255.255", "255.255.255.255", &[]),
            ("DNS 8.8.8.8.", "8.8.8.8", &[]),
            ("服务器地址是172.16.254.1，端口443", "172.16.254.1", &[]),
            ("0.0.0.0", "0.0.0.0", &[]),
            // evasion: full-width digits and full stops, zero-width space
            ("１９２．１６８．０．１", "１９２．１６８．０．１", &[]),
            ("192.168\u{200B}.1.1", "192.168\u{200B}.1.1", &[]),
        ],
        &[
            "256.1.1.1 is out of range",
            "192.168.1 has three octets",
            "192.168.01.1 has a leading zero",
            "1.2.3.400",
            "v2.3.4",
        ],
    );
}

#[test]
fn ipv4_inside_longer_dotted_versions_only_audits() {
    // Known limit (no lookaround): a dotted quad inside a longer dotted run such as a five-part
    // version string is reported. The rule is audit-only, so the text is never altered.
    let mut sc = scanner(&[PII]);
    for text in ["version 1.2.3.4.5", "firmware 10.4.0.12.7"] {
        let out = sc.scan_text(Direction::Response, text);
        assert_eq!(out.masked, None, "{text:?}");
        assert_eq!(out.blocked, None, "{text:?}");
        assert!(
            out.hits.iter().all(|h| h.action == Action::Audit),
            "{text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn aws_access_key_id() {
    run_table(
        &[SECRETS],
        "aws_access_key_id",
        Expect::Mask("[AWS_ACCESS_KEY_ID]", 0),
        &[
            (
                concat!("aws_access_key_id = AKIA", "IOSFODNN7EXAMPLE"),
                concat!("AKIA", "IOSFODNN7EXAMPLE"),
                &["IOSFODNN7"],
            ),
            (
                concat!("\"AccessKeyId\": \"ASIA", "ZV0MWUFXBV932BYV\""),
                concat!("ASIA", "ZV0MWUFXBV932BYV"),
                &["ZV0MWUFX"],
            ),
            (
                concat!("key=AKIA", "2E0A8F3B244C9986&x=1"),
                concat!("AKIA", "2E0A8F3B244C9986"),
                &["2E0A8F3B"],
            ),
            // evasion: full-width letters, zero-width space
            (
                concat!("ＡＫＩＡ", "ＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ"),
                concat!("ＡＫＩＡ", "ＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ"),
                &[],
            ),
            (
                concat!("AKIA\u{200B}", "IOSFODNN7EXAMPLE"),
                concat!("AKIA\u{200B}", "IOSFODNN7EXAMPLE"),
                &["IOSFODNN7"],
            ),
        ],
        &[
            concat!("AKIA", "IOSFODNN7EXAMPL"),
            concat!("AKIA", "IOSFODNN7EXAMPLEX"),
            concat!("akia", "iosfodnn7example"),
            concat!("AKIA", "iosfodnn7example"),
            concat!("XAKIA", "IOSFODNN7EXAMPLE"),
        ],
    );
}

#[test]
fn google_api_key() {
    run_table(
        &[SECRETS],
        "google_api_key",
        Expect::Mask("[GOOGLE_API_KEY]", 0),
        &[
            (
                concat!("key=AIza", "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOO_-&q=x"),
                concat!("AIza", "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOO_-"),
                &["u8jzPde0"],
            ),
            (
                concat!(
                    "\"apiKey\": \"AIza",
                    "hYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5K\""
                ),
                concat!("AIza", "hYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5K"),
                &["hYgCfrL1"],
            ),
            // evasion: zero-width joiner inside
            (
                concat!("AIza", "hYgCfrL1spNx\u{200D}nyVmihA-2O76UMFxFkM-R5K"),
                concat!("AIza", "hYgCfrL1spNx\u{200D}nyVmihA-2O76UMFxFkM-R5K"),
                &["hYgCfrL1"],
            ),
        ],
        &[
            concat!("AIza", "SyShortKey123"),
            concat!("aiza", "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOO_-"),
        ],
    );
}

#[test]
fn sk_api_key() {
    run_table(
        &[SECRETS],
        "sk_api_key",
        Expect::Mask("[API_KEY]", 0),
        &[
            (
                concat!(
                    "OPENAI_API_KEY=sk-",
                    "MehGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQedUStPKR0"
                ),
                concat!("sk-", "MehGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQedUStPKR0"),
                &["MehGAkWvj7"],
            ),
            (
                concat!(
                    "Bearer sk-proj-",
                    "5KXSc7Tvo-hBKqFYY-kv5ZJr3J1TWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA"
                ),
                concat!(
                    "sk-proj-",
                    "5KXSc7Tvo-hBKqFYY-kv5ZJr3J1TWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA"
                ),
                &["5KXSc7Tvo", "YYZYn9ZhyiA"],
            ),
            (
                concat!(
                    "x-api-key: sk-ant-api03-",
                    "4uoRgnatmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS5SUkCnD8zRA9a9SkpXz9w3QlY7ZkuvqdAA"
                ),
                concat!(
                    "sk-ant-api03-",
                    "4uoRgnatmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS5SUkCnD8zRA9a9SkpXz9w3QlY7ZkuvqdAA"
                ),
                &["4uoRgnat", "ZkuvqdAA"],
            ),
            (
                concat!("{\"key\":\"sk-", "0123456789abcdefghij\"}"),
                concat!("sk-", "0123456789abcdefghij"),
                &["abcdefghij"],
            ),
            (
                concat!("sk-svcacct-", "abcdefghijklmnoP0123456789abcdefghij"),
                concat!("sk-svcacct-", "abcdefghijklmnoP0123456789abcdefghij"),
                &["P0123456789"],
            ),
            // evasion: full-width hyphen and letters, zero-width space
            (
                concat!("ｓｋ－", "ＭｅｈＧＡｋＷｖｊ７ＦＡｃ９ＱｅＷＪＫＹ４０ｕｖ"),
                concat!("ｓｋ－", "ＭｅｈＧＡｋＷｖｊ７ＦＡｃ９ＱｅＷＪＫＹ４０ｕｖ"),
                &[],
            ),
            (
                concat!("sk-", "MehGAkWvj7\u{200B}FAc9QeWJKY40uv"),
                concat!("sk-", "MehGAkWvj7\u{200B}FAc9QeWJKY40uv"),
                &["MehGAkWvj7", "FAc9QeWJKY"],
            ),
        ],
        &[
            concat!("sk-", "abc123"),
            concat!("sk-", "0123456789abcdefghi"),
            "the task-scheduler-service-worker-pool handles it",
            "use the risk-assessment-framework-for-vendors",
            "SK-ABCDEFGHIJ0123456789",
            // kebab-case identifiers: no upper-case letter or digit among the first 16
            "sk-learn-compatible-estimator-api",
            "sk-hynix-quarterly-results-summary",
            concat!("sk-", "abcdefghijklmnopqrstuvwxyz"),
        ],
    );
}

#[test]
fn github_tokens() {
    run_table(
        &[SECRETS],
        "github_token",
        Expect::Mask("[GITHUB_TOKEN]", 0),
        &[
            (
                concat!("GITHUB_TOKEN=ghp", "_jL5DZPjN0MEQ7wjJJibaZUPgHV7iB3m03nbq"),
                concat!("ghp", "_jL5DZPjN0MEQ7wjJJibaZUPgHV7iB3m03nbq"),
                &["jL5DZPjN0"],
            ),
            (
                concat!("token gho", "_nsGpWLuqIA1id6Vw5DQL05HA064GiIjHGb3C"),
                concat!("gho", "_nsGpWLuqIA1id6Vw5DQL05HA064GiIjHGb3C"),
                &["nsGpWLuq"],
            ),
            (
                concat!("\"ghs", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ\""),
                concat!("ghs", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
                &["XlMaXZjl"],
            ),
            (
                concat!("ghu", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
                concat!("ghu", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
                &["XlMaXZjl"],
            ),
            (
                concat!("ghr", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
                concat!("ghr", "_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
                &["XlMaXZjl"],
            ),
            // evasion: full-width letters and low line
            (
                concat!(
                    "ｇｈｐ",
                    "＿ｊＬ５ＤＺＰｊＮ０ＭＥＱ７ｗｊＪＪｉｂａＺＵＰｇＨＶ７ｉＢ３ｍ０３ｎｂｑ"
                ),
                concat!(
                    "ｇｈｐ",
                    "＿ｊＬ５ＤＺＰｊＮ０ＭＥＱ７ｗｊＪＪｉｂａＺＵＰｇＨＶ７ｉＢ３ｍ０３ｎｂｑ"
                ),
                &[],
            ),
        ],
        &[
            concat!("ghp", "_tooShort123"),
            concat!("ghx", "_jL5DZPjN0MEQ7wjJJibaZUPgHV7iB3m03nbq"),
            concat!("xghp", "_jL5DZPjN0MEQ7wjJJibaZUPgHV7iB3m03nbq"),
        ],
    );
    run_table(
        &[SECRETS],
        "github_pat",
        Expect::Mask("[GITHUB_TOKEN]", 0),
        &[(
            concat!(
                "token: github",
                "_pat_bW56eCuNGMGmSrCGIZEG8p_SH4487q7J58m1CiAhzCueQpBenQtYh5Xj8TPQxjq4i9DoV8gz4FkQ1okTBG"
            ),
            concat!(
                "github",
                "_pat_bW56eCuNGMGmSrCGIZEG8p_SH4487q7J58m1CiAhzCueQpBenQtYh5Xj8TPQxjq4i9DoV8gz4FkQ1okTBG"
            ),
            &["bW56eCuNG", "FkQ1okTBG"],
        )],
        &[concat!("github", "_pat_short_token_1234")],
    );
}

#[test]
fn slack_token() {
    run_table(
        &[SECRETS],
        "slack_token",
        Expect::Mask("[SLACK_TOKEN]", 0),
        &[
            (
                concat!(
                    "SLACK_BOT_TOKEN=xoxb",
                    "-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
                ),
                concat!(
                    "xoxb",
                    "-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
                ),
                &["AbCdEfGh"],
            ),
            (
                concat!(
                    "xoxp",
                    "-1234567890-1234567890-1234567890123-0123456789abcdef0123456789abcdef"
                ),
                concat!(
                    "xoxp",
                    "-1234567890-1234567890-1234567890123-0123456789abcdef0123456789abcdef"
                ),
                &["0123456789abcdef"],
            ),
            (
                concat!("token xoxa", "-2-1234567890-abcdefABCDEF"),
                concat!("xoxa", "-2-1234567890-abcdefABCDEF"),
                &["abcdefABCDEF"],
            ),
            // evasion: en dash instead of hyphen
            (
                concat!(
                    "xoxb\u{2013}",
                    "123456789012\u{2013}1234567890123\u{2013}AbCdEfGhIjKl"
                ),
                concat!(
                    "xoxb\u{2013}",
                    "123456789012\u{2013}1234567890123\u{2013}AbCdEfGhIjKl"
                ),
                &["AbCdEfGh"],
            ),
        ],
        &[
            concat!("xoxb", "-not-a-token"),
            concat!("xoxz", "-123456789012-abcdefghij"),
            concat!("xoxb", "-123456789012-short"),
        ],
    );
}

#[test]
fn private_key_blocks() {
    run_table(
        &[SECRETS],
        "private_key",
        Expect::Block,
        &[
            (
                concat!("-----BEGIN RSA PRIVATE", " KEY-----\nMIIEow..."),
                concat!("-----BEGIN RSA PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("-----BEGIN PRIVATE", " KEY-----"),
                concat!("-----BEGIN PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("key:\n-----BEGIN OPENSSH PRIVATE", " KEY-----\nb3Blbn..."),
                concat!("-----BEGIN OPENSSH PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("-----BEGIN EC PRIVATE", " KEY-----"),
                concat!("-----BEGIN EC PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("-----BEGIN DSA PRIVATE", " KEY-----"),
                concat!("-----BEGIN DSA PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("-----BEGIN ENCRYPTED PRIVATE", " KEY-----"),
                concat!("-----BEGIN ENCRYPTED PRIVATE", " KEY-----"),
                &[],
            ),
            (
                concat!("-----BEGIN PGP PRIVATE", " KEY BLOCK-----"),
                concat!("-----BEGIN PGP PRIVATE", " KEY BLOCK-----"),
                &[],
            ),
            // evasion: full-width hyphen-minus / letters, Unicode dashes, zero-width space
            (
                concat!("－－－－－ＢＥＧＩＮ ＰＲＩＶＡＴＥ", " ＫＥＹ－－－－－"),
                concat!("－－－－－ＢＥＧＩＮ ＰＲＩＶＡＴＥ", " ＫＥＹ－－－－－"),
                &[],
            ),
            (
                concat!(
                    "\u{2014}\u{2014}\u{2014}\u{2014}\u{2014}BEGIN PRIVATE",
                    " KEY\u{2013}\u{2013}\u{2013}\u{2013}\u{2013}"
                ),
                concat!(
                    "\u{2014}\u{2014}\u{2014}\u{2014}\u{2014}BEGIN PRIVATE",
                    " KEY\u{2013}\u{2013}\u{2013}\u{2013}\u{2013}"
                ),
                &[],
            ),
            (
                concat!("-----BEGIN PRI\u{200B}VATE", " KEY-----"),
                concat!("-----BEGIN PRI\u{200B}VATE", " KEY-----"),
                &[],
            ),
        ],
        &[
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN OPENSSH PUBLIC KEY-----",
            concat!("-----begin private", " key-----"),
            concat!("BEGIN PRIVATE", " KEY"),
        ],
    );
}

/// The jwt.io example token (HS256): header.payload.signature, 155 bytes.
const JWT_SHORT: &str = concat!(
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
);

#[test]
fn jwt() {
    run_table(
        &[SECRETS],
        "jwt",
        Expect::Mask("[JWT]", 0),
        &[
            (
                concat!(
                    "Authorization: Bearer ",
                    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
                    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
                ),
                JWT_SHORT,
                &["SflKxwRJ", "eyJzdWIi"],
            ),
            (
                concat!(
                    "{\"id_token\":\"",
                    "eyJhbGciOiJub25lIn0",
                    ".eyJzdWIiOiJhYmMifQ",
                    ".\"}"
                ),
                concat!("eyJhbGciOiJub25lIn0", ".eyJzdWIiOiJhYmMifQ", "."),
                &["eyJzdWIiOiJhYmMifQ"],
            ),
            // evasion: zero-width space inside the payload
            (
                concat!(
                    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                    ".eyJzdWIiOiIxMjM0\u{200B}NTY3ODkwIn0",
                    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
                ),
                concat!(
                    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                    ".eyJzdWIiOiIxMjM0\u{200B}NTY3ODkwIn0",
                    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
                ),
                &["SflKxwRJ"],
            ),
        ],
        &[
            "eyJhbGciOiJIUzI1NiJ9 alone is just a header",
            "eyJ.eyJ.abc",
            "header.eyJzdWIiOiJhYmMifQ.sig",
        ],
    );
}

#[test]
fn jwt_longer_than_the_match_bound_is_still_destroyed() {
    // Known limit: a match is at most 256 bytes, so for a long token the mask covers the header
    // and the first 120 payload characters; the rest of the token may stay visible, but the
    // header and the start of the claims are gone, so the token can no longer be replayed.
    let payload: String = "eyJ"
        .chars()
        .chain(
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo"
                .chars()
                .cycle()
                .take(400),
        )
        .collect();
    let header = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9";
    let text = format!("Bearer {header}.{payload}.c2lnbmF0dXJl");
    let mut sc = scanner(&[SECRETS]);
    let out = sc.scan_text(Direction::Request, &text);
    let start = "Bearer ".len();
    assert!(
        out.hits
            .iter()
            .any(|h| rule_id(&sc, h.rule) == "jwt" && h.start == start && h.end - h.start >= 160),
        "{}",
        describe(&sc, &text, &out.hits)
    );
    let Some(masked) = out.masked.as_deref() else {
        panic!("not masked")
    };
    assert!(masked.starts_with("Bearer [JWT]"), "{masked:?}");
    assert!(!masked.contains(header), "{masked:?}");
}

// ---------------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------------

#[test]
fn words_english_mask() {
    run_table(
        &[WORDS],
        "words.en",
        Expect::Mask("***", 0),
        &[
            ("We compete with Initech on price.", "Initech", &[]),
            ("INITECH and Globex Corporation", "INITECH", &[]),
            ("iNiTeCh", "iNiTeCh", &[]),
            (
                "This memo is confidential-internal.",
                "confidential-internal",
                &[],
            ),
            ("cOnFiDeNtIaL-InTeRnAl", "cOnFiDeNtIaL-InTeRnAl", &[]),
            ("Status of Project Kestrel?", "Project Kestrel", &[]),
            ("FOR INTERNAL USE ONLY", "INTERNAL USE ONLY", &[]),
            ("（Hooli）", "Hooli", &[]),
            ("竞争对手Umbrella Corp的报价", "Umbrella Corp", &[]),
            // evasion: full-width letters, zero-width characters, Unicode dash / space
            ("Ｉｎｉｔｅｃｈ", "Ｉｎｉｔｅｃｈ", &[]),
            ("Ini\u{200B}tech", "Ini\u{200B}tech", &[]),
            (
                "confidential\u{2013}internal",
                "confidential\u{2013}internal",
                &[],
            ),
            ("Project\u{00A0}Kestrel", "Project\u{00A0}Kestrel", &[]),
        ],
        &[
            // whole_word: not inside longer words
            "Initechnology",
            "preInitech",
            "Hoolie",
            "Project Kestrels",
            "confidential internal",
            "confidential",
        ],
    );
}

#[test]
fn words_chinese_mask() {
    run_table(
        &[WORDS],
        "words.zh",
        Expect::Mask("***", 0),
        &[
            ("这是内部资料，请勿外传。", "内部资料", &[]),
            ("附件为机密文件", "机密文件", &[]),
            ("本文件仅限内部使用", "仅限内部使用", &[]),
            ("夜莺计划进展如何？", "夜莺计划", &[]),
            ("mixed 内部文件abc", "内部文件", &[]),
            // evasion: zero-width space / joiner inside the word
            ("内部\u{200B}资料", "内部\u{200B}资料", &[]),
            (
                "机\u{200D}密\u{200D}文\u{200D}件",
                "机\u{200D}密\u{200D}文\u{200D}件",
                &[],
            ),
        ],
        &["内部", "资料", "机密", "内 部 资 料"],
    );
}

#[test]
fn words_block_list() {
    run_table(
        &[WORDS],
        "words.block",
        Expect::Block,
        &[
            (
                "Any news on Project Nightingale?",
                "Project Nightingale",
                &[],
            ),
            ("project nightingale", "project nightingale", &[]),
            ("PROJECT NIGHTINGALE", "PROJECT NIGHTINGALE", &[]),
            ("该文件属于绝密级别", "绝密级", &[]),
            ("附件：绝密文件一份", "绝密文件", &[]),
            ("这是未公开财报的摘要", "未公开财报", &[]),
            ("marked TOP SECRET//NOFORN", "TOP SECRET//NOFORN", &[]),
            // evasion: full-width, zero-width, mixed case
            (
                "Ｐｒｏｊｅｃｔ Ｎｉｇｈｔｉｎｇａｌｅ",
                "Ｐｒｏｊｅｃｔ Ｎｉｇｈｔｉｎｇａｌｅ",
                &[],
            ),
            (
                "Project Night\u{200C}ingale",
                "Project Night\u{200C}ingale",
                &[],
            ),
            ("绝\u{200B}密级", "绝\u{200B}密级", &[]),
        ],
        &[
            "Project Nightingales",
            "Nightingale",
            "ProjectNightingale",
            "绝对秘密",
            // no word segmentation in Chinese: the list avoids a bare "绝密" for this reason
            "请不要拒绝密码重置请求",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// All shipped files together
// ---------------------------------------------------------------------------------------------

const SHIPPED_IDS: &[&str] = &[
    "email",
    "phone_intl",
    "phone_nanp",
    "phone_cn_mobile",
    "credit_card",
    "iban",
    "us_ssn",
    "cn_resident_id",
    "ipv4",
    "aws_access_key_id",
    "google_api_key",
    "sk_api_key",
    "github_token",
    "github_pat",
    "slack_token",
    "private_key",
    "jwt",
    "words.en",
    "words.zh",
    "words.block",
];

#[test]
fn all_shipped_files_load_together() {
    let sc = scanner(&[PII, SECRETS, WORDS]);
    let rules = sc.rules();
    let ids: Vec<&str> = rules.rules().iter().map(|r| r.id.as_str()).collect();
    for want in SHIPPED_IDS {
        assert!(ids.contains(want), "rule {want} missing; loaded {ids:?}");
    }
    assert_eq!(ids.len(), SHIPPED_IDS.len(), "unexpected rules: {ids:?}");
    for (i, id) in ids.iter().enumerate() {
        let want = match *id {
            "private_key" | "words.block" => "block",
            "ipv4" => "audit",
            _ => "mask",
        };
        assert_eq!(rules.rule(i).action.as_str(), want, "action of {id}");
    }
}

#[test]
fn mixed_text_masks_everything_with_correct_offsets() {
    let mut sc = scanner(&[PII, SECRETS, WORDS]);
    let text = concat!(
        "Hi, I am Zhang San (zhang.san@example.cn, 手机 138 0013 8000), card ４１１１ １１１１ ",
        "１１１１ １１１１, key sk-",
        "MehGAkWvj7FAc9QeWJKY40uv; re: 内部资料 and Initech. Server 10.1.2.3 is fine."
    );
    let out = sc.scan_text(Direction::Request, text);
    let ids: Vec<&str> = out.hits.iter().map(|h| rule_id(&sc, h.rule)).collect();
    for want in [
        "email",
        "phone_cn_mobile",
        "credit_card",
        "sk_api_key",
        "words.zh",
        "words.en",
        "ipv4",
    ] {
        assert!(
            ids.contains(&want),
            "{want} missing: {}",
            describe(&sc, text, &out.hits)
        );
    }
    for h in &out.hits {
        assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end) && h.start < h.end);
    }
    assert_eq!(out.blocked, None);
    let Some(masked) = out.masked.as_deref() else {
        panic!("nothing masked")
    };
    assert_eq!(
        masked,
        "Hi, I am Zhang San ([EMAIL], 手机 [PHONE]), card ****1111, key [API_KEY]; re: *** and ***. Server 10.1.2.3 is fine."
    );
}

#[test]
fn clean_text_has_no_mask_or_block_hits() {
    let mut sc = scanner(&[PII, SECRETS, WORDS]);
    let data = match std::fs::read_to_string(CLEAN) {
        Ok(d) => d,
        Err(e) => panic!("{CLEAN}: {e}"),
    };
    let lines: Vec<&str> = data
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        lines.len() >= 190,
        "clean corpus shrank to {} lines",
        lines.len()
    );
    let mut offenders = Vec::new();
    let mut audits = 0;
    for line in &lines {
        let out = sc.scan_text(Direction::Request, line);
        for h in &out.hits {
            if h.action == Action::Audit {
                audits += 1;
            } else {
                offenders.push(format!(
                    "{line:?}: {}",
                    describe(&sc, line, std::slice::from_ref(h))
                ));
            }
        }
        let again = sc.scan_text(Direction::Response, line);
        assert_eq!(
            again.masked, None,
            "{line:?} changed in the response direction"
        );
        assert_eq!(
            again.blocked, None,
            "{line:?} blocked in the response direction"
        );
    }
    assert!(
        offenders.is_empty(),
        "{} false positives:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
    // The corpus deliberately contains a few IPv4 addresses and dotted versions (audit only).
    assert!(
        audits >= 3,
        "expected the deliberate IPv4 audit hits, got {audits}"
    );
}

// ---------------------------------------------------------------------------------------------
// Benchmark dictionary
// ---------------------------------------------------------------------------------------------

#[test]
fn bench_dictionary_loads_and_matches_its_entries() {
    let data = match std::fs::read_to_string(DICT10K_WORDS) {
        Ok(d) => d,
        Err(e) => panic!("{DICT10K_WORDS}: {e}"),
    };
    let words: Vec<&str> = data
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(words.len(), 10_000);
    let mut sc = scanner(&[DICT10K]);
    // A sample across the file, including the two-word and CJK entries.
    let mut failures = Vec::new();
    let sample = words
        .iter()
        .step_by(97)
        .chain(words.iter().filter(|w| w.contains(' ')).take(5))
        .chain(words.iter().filter(|w| !w.is_ascii()).take(5));
    for w in sample {
        let text = format!("before {w} after");
        let r = check_detects(
            &mut sc,
            Direction::Request,
            "bench.dict10k",
            Expect::Mask("***", 0),
            &text,
            w,
            &[],
        );
        if let Err(e) = r {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The content-scanner fuzz checks, shared by the fuzz target (`fuzz/fuzz_targets/scan.rs`,
//! nightly cargo-fuzz) and its stable corpus replay (`crates/tollgate-scan/tests/fuzz_corpus.rs`)
//! so the two can never drift apart. See the fuzz target's header for what `check` verifies.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tollgate_scan::json::{self, StreamScanner};
use tollgate_scan::normalize::{Normalized, normalize};
use tollgate_scan::{Direction, RuleSet, Scanner};

const RULES: &str = r#"
[[rule]]
id = "card"
pattern = '''\b[2-6]\d{3}(?:[ -]?\d){9,15}\b'''
validator = "luhn"
action = "mask"
replacement = "****"
keep_last = 4

[[rule]]
id = "email"
pattern = '''[A-Za-z0-9_][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9][A-Za-z0-9.-]{0,150}\.[A-Za-z]{2,24}\b'''
action = "mask"
replacement = "[EMAIL]"

[[rule]]
id = "cn-id"
pattern = '''\b[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]\b'''
validator = "cn_resident_id"
action = "mask"

[[rule]]
id = "words"
words = ["nightingale", "project x", "code-red", "机密文件", "绝密", "a"]
case_insensitive = true
whole_word = true
action = "mask"
replacement = "***"

[[rule]]
id = "block"
words = ["do-not-distribute", "top secret", "未公开财报"]
case_insensitive = true
whole_word = true
action = "block"

[[rule]]
id = "ipv4"
pattern = '''\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b'''
action = "audit"
"#;

pub fn rules() -> &'static Arc<RuleSet> {
    static R: OnceLock<Arc<RuleSet>> = OnceLock::new();
    R.get_or_init(
        || match RuleSet::compile(&[(Path::new("fuzz.toml"), RULES)], 256) {
            Ok(r) => Arc::new(r),
            Err(e) => panic!("fuzz rules do not compile: {e:?}"),
        },
    )
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n as u64).max(1)) as usize
    }
}

/// Largest char boundary `<= i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    for _ in 0..4 {
        if s.is_char_boundary(i) {
            break;
        }
        i -= 1;
    }
    i
}

fn pieces_at<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for &c in cuts {
        let c = floor_boundary(text, c).max(at);
        out.push(&text[at..c]);
        at = c;
    }
    out.push(&text[at..]);
    out
}

/// The splits to check: random cuts, one cut, and (for short texts) every char.
fn splits(data: &[u8], text: &str) -> Vec<Vec<usize>> {
    let mut seed = [0u8; 8];
    let k = data.len().min(8);
    seed[..k].copy_from_slice(&data[..k]);
    let mut rng = Rng(u64::from_le_bytes(seed) ^ (data.len() as u64).rotate_left(32));
    let len = text.len();
    let mut random: Vec<usize> = (0..1 + rng.below(8)).map(|_| rng.below(len + 1)).collect();
    random.sort_unstable();
    let mut out = vec![random, vec![rng.below(len + 1)]];
    if len <= 512 {
        out.push(text.char_indices().map(|(i, _)| i).skip(1).collect());
    }
    out
}

fn check_normalize(text: &str, cuts: &[usize]) -> Result<(), String> {
    let n = normalize(text);
    let ns = n.as_str();
    let nl = ns.len();
    if n.original_len() != text.len() {
        return Err(format!(
            "original_len {} != {}",
            n.original_len(),
            text.len()
        ));
    }
    if n.is_identity() && ns != text {
        return Err("is_identity but the normalised text differs".into());
    }
    let mut prev = 0;
    for i in 0..=nl {
        let o = n.orig_offset(i);
        if o > text.len() || !text.is_char_boundary(o) || o < prev {
            return Err(format!(
                "orig_offset({i}) = {o} (prev {prev}, len {})",
                text.len()
            ));
        }
        prev = o;
        let (pb, nb) = (n.prev_boundary(i), n.next_boundary(i));
        if !(pb <= i && i <= nb && nb <= nl && ns.is_char_boundary(pb) && ns.is_char_boundary(nb)) {
            return Err(format!("boundaries of {i}: prev {pb} next {nb} (len {nl})"));
        }
        if i < nl {
            let (s, e) = n.original_span(i, i + 1);
            if !(s == o && s < e && e <= text.len() && text.is_char_boundary(e)) {
                return Err(format!(
                    "original_span({i}, {}) = ({s}, {e}), orig_offset {o}",
                    i + 1
                ));
            }
        }
    }
    if n.orig_offset(nl) != text.len() {
        return Err(format!(
            "orig_offset(len) = {} != {}",
            n.orig_offset(nl),
            text.len()
        ));
    }
    if nl > 0 {
        let (s, e) = n.original_span(0, nl);
        if !(s == n.orig_offset(0) && s < e && e <= text.len()) {
            return Err(format!("original_span(0, {nl}) = ({s}, {e})"));
        }
    }
    let again = normalize(ns);
    if again.as_str() != ns {
        return Err(format!("not idempotent: {ns:?} -> {:?}", again.as_str()));
    }
    let mut m = Normalized::new();
    for p in pieces_at(text, cuts) {
        m.push_str(p);
    }
    if m.as_str() != ns || m.original_len() != text.len() {
        return Err(format!("piecewise normalisation differs: {:?}", m.as_str()));
    }
    for i in 0..=nl {
        if m.orig_offset(i) != n.orig_offset(i) {
            return Err(format!(
                "piecewise map differs at {i}: {} vs {}",
                m.orig_offset(i),
                n.orig_offset(i)
            ));
        }
    }
    Ok(())
}

/// Stream `pieces`: the released text, or the blocking rule.
pub fn stream_mask(sc: &mut Scanner, pieces: &[&str]) -> Result<String, usize> {
    let mut st = sc.stream(Direction::Response);
    let mut out = String::new();
    let mut hits = Vec::new();
    for p in pieces {
        st.push(sc, p, &mut out, &mut hits).map_err(|b| b.0)?;
    }
    st.finish(sc, &mut out, &mut hits).map_err(|b| b.0)?;
    Ok(out)
}

pub fn check(sc: &mut Scanner, data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let splits = splits(data, text);

    // (a)
    check_normalize(text, &splits[0])?;

    // (b)
    let _ = sc.scan_text(Direction::Request, text);
    let whole = sc.scan_text(Direction::Response, text);
    for h in &whole.hits {
        if !(h.start <= h.end
            && h.end <= text.len()
            && text.is_char_boundary(h.start)
            && text.is_char_boundary(h.end))
        {
            return Err(format!(
                "hit span out of bounds: {h:?} (len {})",
                text.len()
            ));
        }
    }
    let expected = whole.masked.as_deref().unwrap_or(text);

    // (c)
    for cuts in &splits {
        let pieces = pieces_at(text, cuts);
        match (whole.blocked, stream_mask(sc, &pieces)) {
            (Some(_), Err(_)) => {}
            (None, Ok(out)) if out == expected => {}
            (wb, got) => {
                return Err(format!(
                    "stream differs from whole: pieces {pieces:?}\n  whole: blocked {wb:?}, \
                     text {expected:?}\n  stream: {got:?}"
                ));
            }
        }
    }

    // (d)
    let mut ss = StreamScanner::new();
    let _ = ss.on_chunk(sc, data);
    let _ = ss.on_done(sc);
    let _ = json::scan_request(sc, data);
    let _ = json::scan_response(sc, data);
    Ok(())
}

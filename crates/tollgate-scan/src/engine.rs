//! Compiled matchers for one direction, and the match-selection procedure shared by block
//! scans and streams.
//!
//! Three structures are built from the rules of a direction:
//! * one Hyperscan block-mode database holding every regex (in `PREFILTER | SINGLEMATCH` mode:
//!   "this detector may match somewhere in the buffer") and every dictionary word (exact, one
//!   id per word, so a match end gives the exact span);
//! * per regex detector an exact `regex-automata` matcher (leftmost-first, ASCII semantics),
//!   run only for detectors the prefilter flagged;
//! * a liveness automaton: an anchored lazy DFA over all regexes (match kind `All`) plus the
//!   sorted word lists, answering "could a match that starts here still be growing at the end
//!   of the buffer?" — the hold-back decision for streams.
//!
//! Selection is leftmost, then longest, then `block` before `mask`, then rule order; matches do
//! not overlap. Audit rules are selected in a separate pass so a shadow rule can never hide an
//! enforcing one.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::meta::{self, Regex};
use regex_automata::util::start;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, nfa::thompson};
use regex_syntax::hir::Look;

use crate::hs;
use crate::rules::{Action, Matcher, Rule, RuleError};

/// Which rules a selection pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `block` and `mask` rules.
    Enforce,
    /// `audit` rules.
    Audit,
}

/// A selected match in normalised coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// Regex detector `det` (index into `regexes`).
    Regex(usize),
    /// A word of rule `rule`, `len` bytes long; `left`/`right`: an ASCII word boundary is
    /// required before / after it (`whole_word`).
    Word {
        rule: usize,
        len: usize,
        left: bool,
        right: bool,
    },
}

#[derive(Debug)]
struct RegexDet {
    rule: usize,
    class: Class,
    re: Regex,
}

/// Everything compiled for one direction.
#[derive(Debug)]
pub(crate) struct Engine {
    db: hs::Database,
    targets: Vec<Target>,
    regexes: Vec<RegexDet>,
    live: Option<DFA>,
    /// Sorted, deduplicated words (lower-cased copies for case-insensitive rules).
    words_cs: Vec<Box<[u8]>>,
    words_ci: Vec<Box<[u8]>>,
    /// Longest word in each list: a longer tail cannot be a prefix of any of them.
    max_word_cs: usize,
    max_word_ci: usize,
    /// Bytes that can begin a match (any lookbehind).
    first: [bool; 256],
    pub(crate) max_len: usize,
    pub(crate) has_audit: bool,
    pub(crate) has_enforce: bool,
}

/// Per-thread mutable state for one engine.
#[derive(Debug)]
pub(crate) struct EngineScratch {
    hs: hs::Scratch,
    dfa: Option<DfaCache>,
    caches: Vec<meta::Cache>,
    /// Regex detectors the last prefilter pass flagged (any class).
    seen: Vec<bool>,
    /// Working copy for one `select`: flagged, of its class, and not yet exhausted.
    flagged: Vec<bool>,
    /// Dictionary words found by the last prefilter pass (any class), sorted.
    words: Vec<Found>,
    next: Vec<Option<(usize, usize)>>,
}

fn syntax_cfg(ci: bool) -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(ci)
}

/// Escape a literal for Hyperscan: alphanumerics as is, everything else as `\xHH`.
fn hs_escape(w: &str) -> String {
    let mut s = String::with_capacity(w.len() * 2);
    for b in w.bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Check a pattern against the language rules; returns the problem, if any.
pub(crate) fn check_pattern(p: &str, ci: bool, max_len: usize) -> Result<(), String> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(ci)
        .build()
        .parse(p)
        .map_err(|e| format!("invalid pattern: {e}"))?;
    let props = hir.properties();
    for look in props.look_set().iter() {
        if !matches!(
            look,
            Look::WordAscii
                | Look::WordAsciiNegate
                | Look::WordStartAscii
                | Look::WordEndAscii
                | Look::WordStartHalfAscii
                | Look::WordEndHalfAscii
        ) {
            return Err(format!(
                "anchors and line assertions are not allowed in patterns (found {look:?}); \
                 only \\b and \\B"
            ));
        }
    }
    match props.maximum_len() {
        Some(n) if n <= max_len => {}
        Some(n) => {
            return Err(format!(
                "pattern can match {n} bytes, more than max_match_len {max_len}; bound the \
                 repetitions (e.g. {{1,64}} instead of +)"
            ));
        }
        None => {
            return Err(format!(
                "pattern has no maximum length; bound every repetition (e.g. {{1,64}} instead \
                 of + or *) to at most max_match_len {max_len} bytes in total"
            ));
        }
    }
    if props.minimum_len().unwrap_or(0) == 0 {
        return Err("pattern can match the empty string".into());
    }
    Ok(())
}

impl Engine {
    /// Compile the rules selected by `pick` (indices into `rules`). `None` when no rule applies.
    pub(crate) fn build(
        rules: &[Rule],
        pick: &dyn Fn(&Rule) -> bool,
        max_len: usize,
        errors: &mut Vec<RuleError>,
    ) -> Option<Engine> {
        let mut exprs = Vec::new();
        let mut targets = Vec::new();
        let mut regexes = Vec::new();
        let mut live_patterns = Vec::new();
        let mut words_cs = Vec::new();
        let mut words_ci = Vec::new();
        let mut first = [false; 256];
        let mut has_audit = false;
        let mut has_enforce = false;
        let mut expr_rule = Vec::new();
        let err = |r: &Rule, message: String| RuleError {
            file: r.file.clone(),
            line: r.line,
            rule: Some(r.id.clone()),
            message,
        };
        let n_err = errors.len();
        for (ri, r) in rules.iter().enumerate() {
            if !pick(r) {
                continue;
            }
            let class = if r.action == Action::Audit {
                has_audit = true;
                Class::Audit
            } else {
                has_enforce = true;
                Class::Enforce
            };
            let ci_flag = if r.case_insensitive {
                hs::FLAG_CASELESS
            } else {
                0
            };
            match &r.matcher {
                Matcher::Pattern(p) => {
                    if let Err(m) = check_pattern(p, r.case_insensitive, max_len) {
                        errors.push(err(r, m));
                        continue;
                    }
                    let re = Regex::builder()
                        .syntax(syntax_cfg(r.case_insensitive))
                        .configure(
                            meta::Config::new()
                                .match_kind(MatchKind::LeftmostFirst)
                                .utf8_empty(false),
                        )
                        .build(p);
                    let re = match re {
                        Ok(re) => re,
                        Err(e) => {
                            errors.push(err(r, format!("invalid pattern: {e}")));
                            continue;
                        }
                    };
                    let id = targets.len() as u32;
                    targets.push(Target::Regex(regexes.len()));
                    regexes.push(RegexDet {
                        rule: ri,
                        class,
                        re,
                    });
                    exprs.push(hs::Expr {
                        pattern: r.prefilter.clone().unwrap_or_else(|| p.clone()),
                        flags: hs::FLAG_PREFILTER
                            | hs::FLAG_SINGLEMATCH
                            | hs::FLAG_DOTALL
                            | ci_flag,
                        id,
                    });
                    expr_rule.push(ri);
                    live_patterns.push(if r.case_insensitive {
                        format!("(?i:{p})")
                    } else {
                        format!("(?:{p})")
                    });
                }
                Matcher::Words(ws) => {
                    for w in ws {
                        // Plain literals: Hyperscan compiles 10k of them in ~0.2 s, but 17 s
                        // when each is wrapped in `\b`; word boundaries are checked here instead.
                        let bytes = w.as_bytes();
                        let pat = hs_escape(w);
                        let id = targets.len() as u32;
                        targets.push(Target::Word {
                            rule: ri,
                            len: w.len(),
                            left: r.whole_word && bytes.first().is_some_and(|&b| is_word_byte(b)),
                            right: r.whole_word && bytes.last().is_some_and(|&b| is_word_byte(b)),
                        });
                        exprs.push(hs::Expr {
                            pattern: pat,
                            flags: ci_flag,
                            id,
                        });
                        expr_rule.push(ri);
                        if r.case_insensitive {
                            let lw = w.to_ascii_lowercase();
                            first[usize::from(lw.as_bytes()[0])] = true;
                            first[usize::from(lw.as_bytes()[0].to_ascii_uppercase())] = true;
                            words_ci.push(lw.into_bytes().into_boxed_slice());
                        } else {
                            first[usize::from(bytes[0])] = true;
                            words_cs.push(bytes.to_vec().into_boxed_slice());
                        }
                    }
                }
            }
        }
        if errors.len() > n_err || exprs.is_empty() {
            return None;
        }
        let db = match hs::Database::compile(&exprs) {
            Ok(db) => db,
            Err(e) => {
                match e
                    .index
                    .and_then(|i| expr_rule.get(i))
                    .and_then(|&ri| rules.get(ri))
                {
                    Some(r) => errors.push(err(r, format!("Hyperscan rejected the pattern: {e}"))),
                    None => errors.push(RuleError {
                        file: Default::default(),
                        line: 0,
                        rule: None,
                        message: format!("Hyperscan compile failed: {e}"),
                    }),
                }
                return None;
            }
        };
        let live = if live_patterns.is_empty() {
            None
        } else {
            let built = DFA::builder()
                .configure(
                    DFA::config()
                        .match_kind(MatchKind::All)
                        .cache_capacity(8 << 20)
                        .skip_cache_capacity_check(true),
                )
                .syntax(syntax_cfg(false))
                .thompson(thompson::Config::new().utf8(false))
                .build_many(&live_patterns);
            match built {
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(RuleError {
                        file: Default::default(),
                        line: 0,
                        rule: None,
                        message: format!("building the stream hold-back automaton failed: {e}"),
                    });
                    return None;
                }
            }
        };
        words_cs.sort_unstable();
        words_cs.dedup();
        words_ci.sort_unstable();
        words_ci.dedup();
        let longest = |ws: &[Box<[u8]>]| ws.iter().map(|w| w.len()).max().unwrap_or(0);
        let mut eng = Engine {
            db,
            targets,
            regexes,
            live,
            max_word_cs: longest(&words_cs),
            max_word_ci: longest(&words_ci),
            words_cs,
            words_ci,
            first,
            max_len,
            has_audit,
            has_enforce,
        };
        if let Some(d) = &eng.live {
            let mut cache = d.create_cache();
            for b in 0..=255u8 {
                for lb in [None, Some(b'a'), Some(b' ')] {
                    let cfg = start::Config::new().anchored(Anchored::Yes).look_behind(lb);
                    let alive = match d.start_state(&mut cache, &cfg) {
                        Ok(s) => match d.next_state(&mut cache, s, b) {
                            Ok(n) => !n.is_dead(),
                            Err(_) => true,
                        },
                        Err(_) => true,
                    };
                    if alive {
                        eng.first[usize::from(b)] = true;
                    }
                }
            }
        }
        Some(eng)
    }

    /// Allocate per-thread state.
    pub(crate) fn scratch(&self) -> Result<EngineScratch, String> {
        Ok(EngineScratch {
            hs: self.db.scratch()?,
            dfa: self.live.as_ref().map(DFA::create_cache),
            caches: self.regexes.iter().map(|r| r.re.create_cache()).collect(),
            seen: vec![false; self.regexes.len()],
            flagged: vec![false; self.regexes.len()],
            words: Vec::new(),
            next: vec![None; self.regexes.len()],
        })
    }

    /// Leftmost-first match of detector `d` starting in `[pos, limit)` that passes the rule's
    /// validator. When the leftmost-first match at a start fails validation, the other match
    /// ends at that start are tried, longest first (so `4111 1111 1111 1111 4` still yields
    /// the valid 16-digit card), before moving on.
    fn find_valid(
        &self,
        d: usize,
        rules: &[Rule],
        bytes: &[u8],
        mut pos: usize,
        limit: usize,
        s: &mut EngineScratch,
    ) -> Option<(usize, usize)> {
        let det = &self.regexes[d];
        let rule = &rules[det.rule];
        let valid = |a: usize, b: usize| match rule.validator {
            None => true,
            Some(v) => std::str::from_utf8(&bytes[a..b]).is_ok_and(|t| v.check(t)),
        };
        while pos < limit {
            let m = det
                .re
                .search_with(&mut s.caches[d], &Input::new(bytes).range(pos..bytes.len()))?;
            if m.start() >= limit {
                return None;
            }
            if valid(m.start(), m.end()) {
                return Some((m.start(), m.end()));
            }
            let mut ends = self.all_ends(d, bytes, m.start(), s);
            ends.sort_unstable_by(|a, b| b.cmp(a));
            if let Some(&e) = ends.iter().find(|&&e| e != m.end() && valid(m.start(), e)) {
                return Some((m.start(), e));
            }
            pos = m.start() + 1;
        }
        None
    }

    /// Every end of a match of detector `d` anchored at `start` (from the `All`-semantics DFA).
    fn all_ends(&self, d: usize, bytes: &[u8], start: usize, s: &mut EngineScratch) -> Vec<usize> {
        let mut ends = Vec::new();
        let (Some(dfa), Some(cache)) = (&self.live, s.dfa.as_mut()) else {
            return ends;
        };
        let lb = start.checked_sub(1).map(|i| bytes[i]);
        let cfg = start::Config::new().anchored(Anchored::Yes).look_behind(lb);
        let Ok(mut sid) = dfa.start_state(cache, &cfg) else {
            return ends;
        };
        let mut record = |sid: LazyStateID, at: usize, cache: &mut DfaCache| {
            if sid.is_match() {
                for k in 0..dfa.match_len(cache, sid) {
                    if dfa.match_pattern(cache, sid, k).as_usize() == d {
                        ends.push(at);
                    }
                }
            }
        };
        for (i, &b) in bytes.iter().enumerate().skip(start) {
            match dfa.next_state(cache, sid, b) {
                Ok(n) => sid = n,
                Err(_) => return ends,
            }
            if sid.is_dead() || sid.is_quit() {
                return ends;
            }
            record(sid, i, cache);
        }
        if let Ok(n) = dfa.next_eoi_state(cache, sid) {
            record(n, bytes.len(), cache);
        }
        ends
    }

    /// Could a match beginning at `p` still be incomplete at the end of `buf`?
    fn alive_at(&self, buf: &[u8], p: usize, s: &mut EngineScratch) -> bool {
        let tail = &buf[p..];
        if tail.len() > self.max_len + 1 {
            return false;
        }
        if let (Some(d), Some(cache)) = (&self.live, s.dfa.as_mut()) {
            let lb = p.checked_sub(1).map(|i| buf[i]);
            let cfg = start::Config::new().anchored(Anchored::Yes).look_behind(lb);
            let mut sid: LazyStateID = match d.start_state(cache, &cfg) {
                Ok(x) => x,
                Err(_) => return true,
            };
            let mut dead = false;
            for &b in tail {
                sid = match d.next_state(cache, sid, b) {
                    Ok(x) => x,
                    Err(_) => return true, // cache trouble: be conservative
                };
                if sid.is_dead() {
                    dead = true;
                    break;
                }
                if sid.is_quit() {
                    return true;
                }
            }
            if !dead {
                return true;
            }
        }
        (tail.len() <= self.max_word_cs && prefix_of_any(&self.words_cs, tail))
            || (tail.len() <= self.max_word_ci && prefix_of_any_ci(&self.words_ci, tail))
    }

    /// The first position in `[from, len)` where a match could still be growing at the end
    /// of `buf` (`buf.len()` if none).
    pub(crate) fn hold_point(&self, buf: &[u8], from: usize, s: &mut EngineScratch) -> usize {
        let lo = from.max(buf.len().saturating_sub(self.max_len + 1));
        (lo..buf.len())
            .find(|&p| self.first[usize::from(buf[p])] && self.alive_at(buf, p, s))
            .unwrap_or(buf.len())
    }

    /// One Hyperscan pass over `buf` from `from` (plus one byte of left context): which regex
    /// detectors may match, and every dictionary word starting in `[from, limit)`, for both
    /// classes at once. [`Engine::select`] then works from this.
    pub(crate) fn prefilter(
        &self,
        buf: &str,
        from: usize,
        limit: usize,
        s: &mut EngineScratch,
    ) -> Result<(), String> {
        s.seen.iter_mut().for_each(|f| *f = false);
        s.words.clear();
        if from >= limit {
            return Ok(());
        }
        let bytes = buf.as_bytes();
        let ctx = from.saturating_sub(1);
        let targets = &self.targets;
        let seen = &mut s.seen;
        let words = &mut s.words;
        self.db.scan(&bytes[ctx..], &mut s.hs, |id, _from, to| {
            match targets.get(id as usize) {
                Some(Target::Regex(d)) => seen[*d] = true,
                Some(Target::Word {
                    rule,
                    len,
                    left,
                    right,
                }) => {
                    let end = ctx + to;
                    if let Some(start) = end.checked_sub(*len)
                        && start >= from
                        && start < limit
                        && (!*left || start == 0 || !is_word_byte(bytes[start - 1]))
                        && (!*right || end == bytes.len() || !is_word_byte(bytes[end]))
                    {
                        words.push(Found {
                            rule: *rule,
                            start,
                            end,
                        });
                    }
                }
                None => {}
            }
            true
        })?;
        // Words: by start, longest first, then rule order.
        s.words.sort_unstable_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.rule).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.rule,
            ))
        });
        Ok(())
    }

    /// Select the non-overlapping matches of `class` starting in `[from, limit)` of `buf`,
    /// appending them to `out` in order, from the last [`Engine::prefilter`] (which must have
    /// covered `[from, limit)`). `limit` must be a position before which every start is settled
    /// (see `hold_point`), or `buf.len()` for a complete text.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn select(
        &self,
        rules: &[Rule],
        buf: &str,
        from: usize,
        limit: usize,
        class: Class,
        s: &mut EngineScratch,
        out: &mut Vec<Found>,
    ) -> Result<(), String> {
        if from >= limit {
            return Ok(());
        }
        let bytes = buf.as_bytes();
        let in_class = |r: usize| (rules[r].action == Action::Audit) == (class == Class::Audit);
        let mut any = false;
        for (d, det) in self.regexes.iter().enumerate() {
            s.flagged[d] = s.seen[d] && det.class == class;
            any |= s.flagged[d];
        }
        any |= s.words.iter().any(|w| in_class(w.rule));
        if !any {
            return Ok(());
        }
        s.next.iter_mut().for_each(|n| *n = None);
        let mut pos = from;
        let mut wi = 0;
        loop {
            // Refresh each flagged detector's next match at or after `pos`.
            for d in 0..self.regexes.len() {
                if !s.flagged[d] {
                    continue;
                }
                if s.next[d].is_none_or(|(st, _)| st < pos) {
                    s.next[d] = self.find_valid(d, rules, bytes, pos, limit, s);
                    if s.next[d].is_none() {
                        s.flagged[d] = false;
                    }
                }
            }
            while wi < s.words.len() && s.words[wi].start < pos {
                wi += 1;
            }
            // Best candidate: leftmost, longest, block first, rule order.
            let mut best: Option<Found> = None;
            let better = |c: &Found, b: &Option<Found>| match b {
                None => true,
                Some(b) => {
                    let key = |f: &Found| {
                        (
                            f.start,
                            std::cmp::Reverse(f.end),
                            rules[f.rule].action != Action::Block,
                            f.rule,
                        )
                    };
                    key(c) < key(b)
                }
            };
            for (d, n) in s.next.iter().enumerate() {
                if let (true, Some((st, en))) = (s.flagged[d], n) {
                    let c = Found {
                        rule: self.regexes[d].rule,
                        start: *st,
                        end: *en,
                    };
                    if better(&c, &best) {
                        best = Some(c);
                    }
                }
            }
            let mut k = wi;
            while k < s.words.len() {
                let c = s.words[k];
                if best.is_some_and(|b| c.start > b.start) {
                    break;
                }
                if in_class(c.rule)
                    && rules[c.rule]
                        .validator
                        .is_none_or(|v| v.check(&buf[c.start..c.end]))
                    && better(&c, &best)
                {
                    best = Some(c);
                }
                k += 1;
            }
            match best {
                Some(f) if f.start < limit => {
                    out.push(f);
                    pos = f.end;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Is `tail` a prefix of (or equal to) some word in the sorted list?
fn prefix_of_any(sorted: &[Box<[u8]>], tail: &[u8]) -> bool {
    let i = sorted.partition_point(|w| &w[..] < tail);
    sorted.get(i).is_some_and(|w| w.starts_with(tail))
}

/// [`prefix_of_any`] for lower-cased words and a tail in any case, without lower-casing a copy
/// of the tail (this runs for every held-back position of every streamed chunk).
fn prefix_of_any_ci(sorted_lower: &[Box<[u8]>], tail: &[u8]) -> bool {
    let lower = tail.iter().map(u8::to_ascii_lowercase);
    let i = sorted_lower.partition_point(|w| w.iter().copied().lt(lower.clone()));
    sorted_lower
        .get(i)
        .is_some_and(|w| w.len() >= tail.len() && w.iter().copied().zip(lower).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(ws: &[&str]) -> Vec<Box<[u8]>> {
        let mut v: Vec<Box<[u8]>> = ws.iter().map(|w| w.as_bytes().into()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn case_insensitive_prefix_examples() {
        let ws = words(&["apple", "banana", "band", "secret"]);
        for (tail, want) in [
            ("BAN", true),
            ("BaNd", true),
            ("bando", false),
            ("SECRET", true),
            ("secrets", false),
            ("", true),
            ("c", false),
            ("zzz", false),
        ] {
            assert_eq!(prefix_of_any_ci(&ws, tail.as_bytes()), want, "{tail:?}");
        }
        assert!(!prefix_of_any_ci(&[], b"a"));
    }

    proptest! {
        /// Same answer as lower-casing a copy of the tail and using the case-sensitive search.
        #[test]
        fn case_insensitive_prefix_matches_the_allocating_version(
            ws in proptest::collection::vec("[a-d]{1,5}", 0..12),
            tail in "[a-dA-D]{0,6}",
        ) {
            let mut lower: Vec<Box<[u8]>> =
                ws.iter().map(|w| w.to_ascii_lowercase().into_bytes().into()).collect();
            lower.sort_unstable();
            lower.dedup();
            prop_assert_eq!(
                prefix_of_any_ci(&lower, tail.as_bytes()),
                prefix_of_any(&lower, &tail.as_bytes().to_ascii_lowercase())
            );
        }
    }
}

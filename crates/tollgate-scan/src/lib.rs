//! Inline content scanning for tollgate: PII detectors and sensitive-word lists from rule
//! files, applied to request bodies and to streamed responses with zero leaks across chunks.
//!
//! Runtime-free: no I/O besides reading rule files at load time, no threads, no async.
//!
//! # Pipeline
//! 1. **Text extraction** ([`json`]): the text fields of OpenAI chat/completions bodies and
//!    stream chunks are found with serde's borrowed `RawValue`s (so their byte spans are known)
//!    and JSON-unescaped (`\u0040` → `@`).
//! 2. **Normalisation** ([`normalize`]): per character — zero-width/format characters and
//!    combining marks removed, other-script digits folded, NFKC (full-width → ASCII), common
//!    Cyrillic/Greek look-alikes folded — keeping a map back to the original bytes.
//! 3. **Matching** (`engine`): a Hyperscan block-mode database prefilters all regex detectors
//!    and matches all dictionary words in one pass; flagged regex detectors are then matched
//!    exactly with `regex-automata` (leftmost-first). Validators (Luhn, ISO 7064, MOD-97)
//!    confirm candidates.
//! 4. **Action**: `mask` rewrites the original span, `block` refuses, `audit` only counts.
//!
//! # Engine choice (measured)
//! Hyperscan (system `libhs`, through our own 6-function binding in [`hs`]) is the one pass
//! over every byte: with 1,000 literals it ran at 1.5–2.2 GB/s against aho-corasick's
//! 0.13–0.49 GB/s on this machine class, and it takes regexes and words in the same database.
//! It is not the exact matcher: start-of-match tracking (`SOM_LEFTMOST`) cut it to ~240 MB/s on
//! PII regexes, so it runs in prefilter mode and the rare flagged buffer is re-matched exactly
//! by `regex-automata`. Aho-Corasick is not used on the data path; `benches/scan.rs` keeps the
//! comparison (see the README's performance table) so the decision can be re-checked.
//!
//! # Streams
//! [`TextStream`] carries state across frames: it holds back only the bytes at which a match
//! could still be growing (decided by an anchored lazy DFA over all patterns plus a sorted word
//! list), releases them as soon as that is impossible, and every pattern is bounded by
//! `max_match_len`, so the hold-back never exceeds `max_match_len + 1` normalised bytes. The
//! output for any split of the text equals [`Scanner::scan_text`] on the whole text.

pub mod hs;
pub mod json;
pub mod normalize;
pub mod rules;
pub mod validate;

mod engine;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::{Class, Engine, EngineScratch, Found};
pub use rules::{Action, Directions, Rule, RuleError, Severity};

use normalize::Normalized;

/// Rule index reported as `blocked` when scanning itself failed (fail closed); its code is
/// `scan_failed`.
pub const SCAN_FAILED: usize = usize::MAX;

/// Default bound on the length of one match, in bytes of normalised text.
pub const DEFAULT_MAX_MATCH_LEN: usize = 256;

/// Traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → model.
    Request,
    /// Model → client.
    Response,
}

impl Direction {
    /// `request` or `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// Compiled rules: immutable, shared by all workers.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    req: Option<Arc<Engine>>,
    resp: Option<Arc<Engine>>,
    max_match_len: usize,
    files: Vec<PathBuf>,
}

impl RuleSet {
    /// Load and compile rule files. All errors are collected.
    pub fn load(paths: &[PathBuf], max_match_len: usize) -> Result<RuleSet, Vec<RuleError>> {
        let mut texts = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(t) => texts.push((p.clone(), t)),
                Err(e) => errors.push(RuleError {
                    file: p.clone(),
                    line: 0,
                    rule: None,
                    message: format!("cannot read rule file: {e}"),
                }),
            }
        }
        let refs: Vec<(&Path, &str)> = texts
            .iter()
            .map(|(p, t)| (p.as_path(), t.as_str()))
            .collect();
        match Self::compile(&refs, max_match_len) {
            Ok(r) if errors.is_empty() => Ok(r),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Compile rule file texts (`(path, text)`; `words_file` resolves next to `path`).
    pub fn compile(
        files: &[(&Path, &str)],
        max_match_len: usize,
    ) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        let mut rules = Vec::new();
        if !(8..=4096).contains(&max_match_len) {
            errors.push(RuleError {
                file: PathBuf::new(),
                line: 0,
                rule: None,
                message: format!("max_match_len must be 8–4096, not {max_match_len}"),
            });
            return Err(errors);
        }
        for (path, text) in files {
            let base = path.parent().unwrap_or(Path::new("."));
            rules.extend(rules::parse_file(
                text,
                path,
                base,
                max_match_len,
                &mut seen,
                &mut errors,
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let req = Engine::build(
            &rules,
            &|r: &Rule| r.on_request(),
            max_match_len,
            &mut errors,
        )
        .map(Arc::new);
        // Most rules apply to both directions: compile once when the two sets are the same.
        let resp = if !errors.is_empty() {
            None
        } else if rules.iter().all(|r| r.on_request() == r.on_response()) {
            req.clone()
        } else {
            Engine::build(
                &rules,
                &|r: &Rule| r.on_response(),
                max_match_len,
                &mut errors,
            )
            .map(Arc::new)
        };
        if !errors.is_empty() {
            errors.dedup();
            return Err(errors);
        }
        Ok(RuleSet {
            rules,
            req,
            resp,
            max_match_len,
            files: files.iter().map(|(p, _)| p.to_path_buf()).collect(),
        })
    }

    /// All loaded (enabled) rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule by index.
    pub fn rule(&self, i: usize) -> &Rule {
        &self.rules[i.min(self.rules.len().saturating_sub(1))]
    }

    /// The error code for a blocking rule index (`scan_failed` for [`SCAN_FAILED`]).
    pub fn code(&self, i: usize) -> &'static str {
        self.rules.get(i).map_or("scan_failed", |r| r.code)
    }

    /// The configured bound on one match (normalised bytes).
    pub fn max_match_len(&self) -> usize {
        self.max_match_len
    }

    /// Files loaded.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Is there any rule for this direction?
    pub fn active(&self, dir: Direction) -> bool {
        self.engine(dir).is_some()
    }

    fn engine(&self, dir: Direction) -> Option<&Engine> {
        match dir {
            Direction::Request => self.req.as_deref(),
            Direction::Response => self.resp.as_deref(),
        }
    }
}

/// One rule hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Rule index in the [`RuleSet`].
    pub rule: usize,
    /// The rule's action.
    pub action: Action,
    /// Byte span in the original text (for streams: within the piece being released; 0,0 when
    /// not meaningful).
    pub start: usize,
    /// End of the span.
    pub end: usize,
}

/// Result of scanning one complete text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextScan {
    /// The text with `mask` matches replaced; `None` when nothing was masked.
    pub masked: Option<String>,
    /// Every hit (enforced and audit), in order of position per class.
    pub hits: Vec<Hit>,
    /// The first `block` rule that matched.
    pub blocked: Option<usize>,
}

/// Per-thread scanner: compiled rules plus scratch space. Not `Sync`; one per worker.
#[derive(Debug)]
pub struct Scanner {
    rules: Arc<RuleSet>,
    req: Option<EngineScratch>,
    resp: Option<EngineScratch>,
    norm: Normalized,
    found: Vec<Found>,
    audit: Vec<Found>,
}

impl Scanner {
    /// Allocate scratch space for `rules`.
    pub fn new(rules: Arc<RuleSet>) -> Result<Scanner, String> {
        let req = rules.req.as_deref().map(Engine::scratch).transpose()?;
        let resp = rules.resp.as_deref().map(Engine::scratch).transpose()?;
        Ok(Scanner {
            rules,
            req,
            resp,
            norm: Normalized::new(),
            found: Vec::new(),
            audit: Vec::new(),
        })
    }

    /// The rules this scanner runs.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Is there any rule for this direction?
    pub fn active(&self, dir: Direction) -> bool {
        self.rules.active(dir)
    }

    fn parts(&mut self, dir: Direction) -> Option<(&Engine, &mut EngineScratch)> {
        match dir {
            Direction::Request => Some((self.rules.req.as_deref()?, self.req.as_mut()?)),
            Direction::Response => Some((self.rules.resp.as_deref()?, self.resp.as_mut()?)),
        }
    }

    /// Scan a complete text.
    pub fn scan_text(&mut self, dir: Direction, text: &str) -> TextScan {
        let mut out = TextScan::default();
        let mut norm = std::mem::take(&mut self.norm);
        let mut found = std::mem::take(&mut self.found);
        let mut audit = std::mem::take(&mut self.audit);
        norm.clear();
        norm.push_str(text);
        found.clear();
        audit.clear();
        let rules = Arc::clone(&self.rules);
        if let Some((eng, scr)) = self.parts(dir) {
            let buf = norm.as_str();
            let len = buf.len();
            let r0 = eng.prefilter(buf, 0, len, scr);
            let r1 = if r0.is_err() {
                r0
            } else if eng.has_enforce {
                eng.select(&rules.rules, buf, 0, len, Class::Enforce, scr, &mut found)
            } else {
                Ok(())
            };
            let r2 = if eng.has_audit {
                eng.select(&rules.rules, buf, 0, len, Class::Audit, scr, &mut audit)
            } else {
                Ok(())
            };
            if r1.is_err() || r2.is_err() {
                // Scanning failed (libhs error): fail closed.
                out.blocked = Some(SCAN_FAILED);
            }
        }
        let mut masked = String::new();
        let mut written = 0usize;
        let mut changed = false;
        for f in &found {
            let rule = &rules.rules[f.rule];
            let (os, oe) = norm.original_span(f.start, f.end);
            let os = os.max(written);
            out.hits.push(Hit {
                rule: f.rule,
                action: rule.action,
                start: os,
                end: oe,
            });
            match rule.action {
                Action::Block => {
                    if out.blocked.is_none() {
                        out.blocked = Some(f.rule);
                    }
                }
                Action::Mask => {
                    masked.push_str(text.get(written..os).unwrap_or(""));
                    push_replacement(&mut masked, rule, &norm.as_str()[f.start..f.end]);
                    written = oe.max(written);
                    changed = true;
                }
                Action::Audit => {}
            }
        }
        for f in &audit {
            let (os, oe) = norm.original_span(f.start, f.end);
            out.hits.push(Hit {
                rule: f.rule,
                action: Action::Audit,
                start: os,
                end: oe,
            });
        }
        if changed {
            masked.push_str(text.get(written..).unwrap_or(""));
            out.masked = Some(masked);
        }
        self.norm = norm;
        self.found = found;
        self.audit = audit;
        out
    }

    /// A new stream state for one text field of a streamed response (or request).
    pub fn stream(&self, dir: Direction) -> TextStream {
        TextStream {
            dir,
            orig: String::new(),
            norm: Normalized::new(),
            pos: 0,
            opos: 0,
            apos: 0,
            found: Vec::new(),
        }
    }
}

fn push_replacement(out: &mut String, rule: &Rule, matched_norm: &str) {
    out.push_str(&rule.replacement);
    if rule.keep_last > 0 {
        let tail: Vec<char> = matched_norm
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let n = rule.keep_last.min(tail.len());
        out.extend(&tail[tail.len() - n..]);
    }
}

/// Scanning state for one text carried across stream frames (one per choice and field).
#[derive(Debug)]
pub struct TextStream {
    dir: Direction,
    /// Original text from a little before the release cursor to the end of what arrived.
    orig: String,
    /// Its normalisation.
    norm: Normalized,
    /// Release cursor in `norm` (normalised bytes).
    pos: usize,
    /// Release cursor in `orig`.
    opos: usize,
    /// Audit cursor in `norm`.
    apos: usize,
    found: Vec<Found>,
}

/// A stream was blocked by this rule index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked(pub usize);

impl TextStream {
    /// Append `piece`; write whatever can be released to `out` (masked). Hits are appended to
    /// `hits` (spans are not meaningful for streams).
    pub fn push(
        &mut self,
        sc: &mut Scanner,
        piece: &str,
        out: &mut String,
        hits: &mut Vec<Hit>,
    ) -> Result<(), Blocked> {
        self.orig.push_str(piece);
        self.norm.push_str(piece);
        self.advance(sc, false, out, hits)
    }

    /// End of the text: release everything that is left.
    pub fn finish(
        &mut self,
        sc: &mut Scanner,
        out: &mut String,
        hits: &mut Vec<Hit>,
    ) -> Result<(), Blocked> {
        self.advance(sc, true, out, hits)
    }

    /// Bytes of original text held back right now.
    pub fn held(&self) -> usize {
        self.orig.len() - self.opos
    }

    fn advance(
        &mut self,
        sc: &mut Scanner,
        eoi: bool,
        out: &mut String,
        hits: &mut Vec<Hit>,
    ) -> Result<(), Blocked> {
        let rules = Arc::clone(&sc.rules);
        let Some((eng, scr)) = sc.parts(self.dir) else {
            out.push_str(&self.orig[self.opos..]);
            self.opos = self.orig.len();
            self.compact();
            return Ok(());
        };
        loop {
            let buf = self.norm.as_str();
            let len = buf.len();
            let h = if eoi {
                len
            } else {
                self.norm
                    .prev_boundary(eng.hold_point(buf.as_bytes(), self.pos, scr))
                    .max(self.pos)
            };
            self.found.clear();
            let lo = if eng.has_audit {
                self.pos.min(self.apos)
            } else {
                self.pos
            };
            eng.prefilter(buf, lo, h, scr)
                .map_err(|_| Blocked(SCAN_FAILED))?;
            if eng.has_enforce {
                eng.select(
                    &rules.rules,
                    buf,
                    self.pos,
                    h,
                    Class::Enforce,
                    scr,
                    &mut self.found,
                )
                .map_err(|_| Blocked(SCAN_FAILED))?;
            }
            if eng.has_audit && self.apos < h {
                let mut audit = Vec::new();
                eng.select(
                    &rules.rules,
                    buf,
                    self.apos,
                    h,
                    Class::Audit,
                    scr,
                    &mut audit,
                )
                .map_err(|_| Blocked(SCAN_FAILED))?;
                self.apos = h;
                for f in audit {
                    self.apos = self.apos.max(f.end);
                    hits.push(Hit {
                        rule: f.rule,
                        action: Action::Audit,
                        start: 0,
                        end: 0,
                    });
                }
            }
            if let Some(b) = self
                .found
                .iter()
                .find(|f| rules.rules[f.rule].action == Action::Block)
            {
                hits.push(Hit {
                    rule: b.rule,
                    action: Action::Block,
                    start: 0,
                    end: 0,
                });
                return Err(Blocked(b.rule));
            }
            let mut last_end = self.pos;
            for f in &self.found {
                let rule = &rules.rules[f.rule];
                let (os, oe) = self.norm.original_span(f.start, f.end);
                let os = os.max(self.opos);
                out.push_str(&self.orig[self.opos..os]);
                push_replacement(out, rule, &buf[f.start..f.end]);
                hits.push(Hit {
                    rule: f.rule,
                    action: rule.action,
                    start: 0,
                    end: 0,
                });
                self.opos = oe.max(self.opos);
                last_end = self.norm.next_boundary(f.end);
            }
            if last_end > h {
                self.pos = last_end;
                continue;
            }
            let oh = self.norm.orig_offset(h).max(self.opos);
            out.push_str(&self.orig[self.opos..oh]);
            self.opos = oh;
            self.pos = h;
            break;
        }
        self.compact();
        Ok(())
    }

    /// Drop released text, keeping a few bytes of left context for `\b`.
    fn compact(&mut self) {
        if self.pos < 1024 {
            return;
        }
        let n = self.norm.prev_boundary(self.pos - 16);
        let k = self.norm.drain_front(n);
        self.orig.drain(..k.min(self.opos));
        self.pos -= n;
        self.apos = self.apos.saturating_sub(n);
        self.opos -= k.min(self.opos);
    }
}

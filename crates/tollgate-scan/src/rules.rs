//! Rule files: TOML with `[[rule]]` tables (see the README's rule-file reference). Parsing is
//! strict (unknown keys are errors) and every error names the file, the line and the rule.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::validate::Validator;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request (400) or end the stream with an error event.
    Block,
    /// Replace the matched text.
    Mask,
    /// Count and log only (shadow mode).
    Audit,
}

impl Action {
    /// Lower-case name, as in rule files and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Mask => "mask",
            Action::Audit => "audit",
        }
    }
}

/// Which traffic a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Directions {
    /// Client → model only.
    Request,
    /// Model → client only.
    Response,
    /// Both.
    #[default]
    Both,
}

/// Severity, carried into logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium (default).
    #[default]
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// A parse or compile error in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// The rule id, when known.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(r) = &self.rule {
            write!(f, ": rule '{r}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a rule matches.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A regular expression (byte/ASCII semantics, bounded length).
    Pattern(String),
    /// A list of literal words or phrases.
    Words(Vec<String>),
}

/// One rule, as loaded.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id (`[a-z0-9_.-]+`), used in error codes, metrics and logs.
    pub id: String,
    /// The id as a `'static` string (interned once per distinct id), for error codes.
    pub code: &'static str,
    /// Free text.
    pub description: String,
    /// What it matches.
    pub matcher: Matcher,
    /// A cheaper expression Hyperscan runs instead of the pattern to decide whether the
    /// pattern needs to run at all; it must match wherever the pattern matches.
    pub prefilter: Option<String>,
    /// ASCII case-insensitive.
    pub case_insensitive: bool,
    /// Words only: require ASCII word boundaries at word-character edges.
    pub whole_word: bool,
    /// Checksum the match must pass.
    pub validator: Option<Validator>,
    /// Request, response or both.
    pub directions: Directions,
    /// Block, mask or audit.
    pub action: Action,
    /// Replacement text for `mask`.
    pub replacement: String,
    /// Keep this many trailing ASCII alphanumerics of the match after the replacement.
    pub keep_last: usize,
    /// Severity.
    pub severity: Severity,
    /// File the rule came from.
    pub file: PathBuf,
    /// Line of its `id`.
    pub line: usize,
}

impl Rule {
    /// Does the rule apply to requests?
    pub fn on_request(&self) -> bool {
        matches!(self.directions, Directions::Request | Directions::Both)
    }
    /// Does the rule apply to responses?
    pub fn on_response(&self) -> bool {
        matches!(self.directions, Directions::Response | Directions::Both)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    description: String,
    pattern: Option<Spanned<String>>,
    prefilter: Option<Spanned<String>>,
    words: Option<Spanned<Vec<String>>>,
    words_file: Option<Spanned<String>>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    whole_word: bool,
    validator: Option<Validator>,
    #[serde(default)]
    direction: Directions,
    action: Action,
    replacement: Option<Spanned<String>>,
    #[serde(default)]
    keep_last: usize,
    #[serde(default)]
    severity: Severity,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The id of the `[[rule]]` table enclosing `offset`, if its `id` line can be found.
fn rule_id_near(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind("[[rule]]")?;
    let end = text[start + 8..]
        .find("[[rule]]")
        .map(|e| start + 8 + e)
        .unwrap_or(text.len());
    text[start..end].lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "id").then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// Longest accepted id.
pub const MAX_ID_LEN: usize = 64;
/// Most words one rule may list.
pub const MAX_WORDS: usize = 1_000_000;

/// Parse one rule file's text. `file` names it in errors; `words_file` paths resolve against
/// `base_dir`. Disabled rules are dropped. Errors are appended to `errors`.
pub fn parse_file(
    text: &str,
    file: &Path,
    base_dir: &Path,
    max_match_len: usize,
    seen: &mut HashSet<String>,
    errors: &mut Vec<RuleError>,
) -> Vec<Rule> {
    let err = |line: usize, rule: Option<&str>, message: String| RuleError {
        file: file.to_path_buf(),
        line,
        rule: rule.map(str::to_string),
        message,
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, rule) = match e.span() {
                Some(s) => (line_of(text, s.start), rule_id_near(text, s.start)),
                None => (0, None),
            };
            errors.push(err(line, rule.as_deref(), e.message().to_string()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for r in raw.rule {
        let line = line_of(text, r.id.span().start);
        let id = r.id.get_ref().clone();
        let e = |msg: String| err(line, Some(&id), msg);
        if id.is_empty()
            || id.len() > MAX_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            errors.push(e(format!(
                "id must be 1–{MAX_ID_LEN} characters of [a-z0-9_.-]"
            )));
            continue;
        }
        if !seen.insert(id.clone()) {
            errors.push(e(
                "duplicate rule id (ids are unique across all rule files)".into(),
            ));
            continue;
        }
        if r.prefilter.is_some() && r.pattern.is_none() {
            errors.push(e("prefilter applies to pattern rules only".into()));
            continue;
        }
        let sources = [
            r.pattern.is_some(),
            r.words.is_some(),
            r.words_file.is_some(),
        ];
        if sources.iter().filter(|&&x| x).count() != 1 {
            errors.push(e(
                "exactly one of pattern, words or words_file is required".into()
            ));
            continue;
        }
        let matcher = if let Some(p) = r.pattern {
            let l = line_of(text, p.span().start);
            if r.whole_word {
                errors.push(err(
                    l,
                    Some(&id),
                    "whole_word applies to word lists only".into(),
                ));
                continue;
            }
            if let Err(m) =
                crate::engine::check_pattern(p.get_ref(), r.case_insensitive, max_match_len)
            {
                errors.push(err(l, Some(&id), m));
                continue;
            }
            Matcher::Pattern(p.into_inner())
        } else {
            let (words, l) = if let Some(w) = r.words {
                (w.get_ref().clone(), line_of(text, w.span().start))
            } else if let Some(f) = r.words_file {
                let l = line_of(text, f.span().start);
                let path = base_dir.join(f.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(t) => (
                        t.lines()
                            .map(str::trim)
                            .filter(|w| !w.is_empty() && !w.starts_with('#'))
                            .map(str::to_string)
                            .collect(),
                        l,
                    ),
                    Err(er) => {
                        errors.push(err(
                            l,
                            Some(&id),
                            format!("words_file {}: {er}", path.display()),
                        ));
                        continue;
                    }
                }
            } else {
                continue;
            };
            if words.is_empty() || words.len() > MAX_WORDS {
                errors.push(err(
                    l,
                    Some(&id),
                    format!("a word list needs 1–{MAX_WORDS} entries"),
                ));
                continue;
            }
            if let Some(w) = words
                .iter()
                .find(|w| w.len() > max_match_len || w.is_empty())
            {
                errors.push(err(
                    l,
                    Some(&id),
                    format!(
                        "word of {} bytes exceeds max_match_len {max_match_len}",
                        w.len()
                    ),
                ));
                continue;
            }
            if let Some(w) = words
                .iter()
                .find(|w| crate::normalize::normalize(w).as_str() != w.as_str())
            {
                errors.push(err(
                    l,
                    Some(&id),
                    format!(
                        "word {w:?} is not in normalised form (text is matched after NFKC, \
                         zero-width removal and look-alike folding; write it as {:?})",
                        crate::normalize::normalize(w).as_str()
                    ),
                ));
                continue;
            }
            Matcher::Words(words)
        };
        if r.action != Action::Mask && (r.replacement.is_some() || r.keep_last > 0) {
            errors.push(e(
                "replacement and keep_last apply to action = \"mask\" only".into(),
            ));
            continue;
        }
        let replacement = r
            .replacement
            .map(Spanned::into_inner)
            .unwrap_or_else(|| format!("[{}]", id.to_ascii_uppercase()));
        if !r.enabled {
            continue;
        }
        out.push(Rule {
            prefilter: r.prefilter.map(Spanned::into_inner),
            code: intern(&id),
            id,
            description: r.description,
            matcher,
            case_insensitive: r.case_insensitive,
            whole_word: r.whole_word,
            validator: r.validator,
            directions: r.direction,
            action: r.action,
            replacement,
            keep_last: r.keep_last,
            severity: r.severity,
            file: file.to_path_buf(),
            line,
        });
    }
    out
}

/// Intern a rule id: each distinct id is leaked once, so codes can be `&'static str` and a
/// reload that keeps its ids allocates nothing. Runs at rule-load time only (control plane).
#[allow(clippy::disallowed_types)]
pub fn intern(id: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let set = SET.get_or_init(|| Mutex::new(HashSet::new()));
    let mut g = match set.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some(s) = g.get(id) {
        return s;
    }
    let s: &'static str = Box::leak(id.to_string().into_boxed_str());
    g.insert(s);
    s
}

//! Per-key model permissions: exact names and `*`/`?` globs, matched case-sensitively.
//!
//! Model names are identifiers the operator chose in the gateway config, so matching is exact
//! byte-for-byte (after glob expansion): `Llama-*` does not admit `llama-3`. Unsupported glob
//! syntax (`[`, `]`, `{`, `}`, `\`) is rejected rather than taken literally, so nobody writes
//! `qwen-[0-9]*` believing it works.

use std::collections::HashSet;

/// Longest accepted pattern, in bytes. Model names are short; this only bounds the work a
/// hostile keys file can make `allows` do (glob matching is O(pattern × name)).
pub const MAX_PATTERN_BYTES: usize = 256;

/// Which models a key may call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMatcher {
    /// `true` when some pattern is `*` (or otherwise matches everything).
    all: bool,
    /// Wildcard-free patterns.
    exact: HashSet<String>,
    /// Patterns with `*` or `?`, pre-split into chars.
    globs: Vec<Vec<char>>,
    /// The patterns as written, for display (`tollgate keys list`).
    patterns: Vec<String>,
}

impl ModelMatcher {
    /// Compile patterns. An empty list is an error (a key that may call nothing is a mistake;
    /// revoke it instead). The error names the offending pattern.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<ModelMatcher, String> {
        if patterns.is_empty() {
            return Err("models must not be empty; use [\"*\"] to allow every model".to_string());
        }
        let mut m = ModelMatcher {
            all: false,
            exact: HashSet::new(),
            globs: Vec::new(),
            patterns: Vec::new(),
        };
        for p in patterns {
            let p = p.as_ref();
            check_pattern(p)?;
            m.patterns.push(p.to_string());
            if p.chars().all(|c| c == '*') {
                m.all = true;
            } else if p.contains(['*', '?']) {
                m.globs.push(p.chars().collect());
            } else {
                m.exact.insert(p.to_string());
            }
        }
        Ok(m)
    }

    /// A matcher that admits every model (`["*"]`).
    pub fn all() -> ModelMatcher {
        ModelMatcher {
            all: true,
            exact: HashSet::new(),
            globs: Vec::new(),
            patterns: vec!["*".to_string()],
        }
    }

    /// Whether `model` is permitted. Case-sensitive; `*` matches any run of characters
    /// (including none), `?` exactly one character.
    pub fn allows(&self, model: &str) -> bool {
        self.all || self.exact.contains(model) || self.globs.iter().any(|g| glob_match(g, model))
    }

    /// The patterns as written in the keys file.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Validate one pattern: non-empty, bounded, printable, no whitespace and no glob syntax we
/// do not implement.
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty model pattern".to_string());
    }
    if p.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "model pattern longer than {MAX_PATTERN_BYTES} bytes"
        ));
    }
    if p.contains(crate::secret::TOKEN_PREFIX) {
        return Err("model pattern looks like an API token; list model names here".to_string());
    }
    if let Some(c) = p
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '[' | ']' | '{' | '}' | '\\'))
    {
        return Err(format!(
            "bad model pattern {p:?}: {c:?} is not allowed (only `*` and `?` are wildcards)"
        ));
    }
    Ok(())
}

/// Iterative glob match with single-star backtracking: O(|pattern| × |text|) worst case, no
/// recursion, no allocation.
fn glob_match(pat: &[char], text: &str) -> bool {
    let mut pi = 0usize;
    let mut ti = 0usize; // byte index into `text`, always on a char boundary
    // After a `*`: (pattern index after the star, text index the star's run ends at).
    let mut star: Option<(usize, usize)> = None;
    loop {
        let tc = text.get(ti..).and_then(|r| r.chars().next());
        match (pat.get(pi), tc) {
            (Some('*'), _) => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            (Some('?'), Some(c)) => {
                pi += 1;
                ti += c.len_utf8();
                continue;
            }
            (Some(&pc), Some(c)) if pc == c => {
                pi += 1;
                ti += c.len_utf8();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        // Mismatch: let the last star swallow one more character, or fail.
        let Some((sp, st)) = star else {
            return false;
        };
        let Some(c) = text.get(st..).and_then(|r| r.chars().next()) else {
            return false;
        };
        star = Some((sp, st + c.len_utf8()));
        pi = sp;
        ti = st + c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str, t: &str) -> bool {
        glob_match(&p.chars().collect::<Vec<_>>(), t)
    }

    #[test]
    fn glob_table() {
        let cases = [
            ("a*", "a", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abcbc", true),
            ("a*c", "abcb", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("?", "é", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(g(p, t), want, "{p:?} vs {t:?}");
        }
    }
}

//! A parser for the Prometheus text exposition format (0.0.4), as vLLM's and SGLang's
//! `prometheus_client` and MindIE's prometheus-cpp print it.
//!
//! It validates every sample line the way Prometheus' own scraper does (one malformed line fails
//! the whole body, with its line number), but keeps nothing: the caller gets each sample as
//! borrowed text and picks the few names it needs. What it accepts:
//!
//! * `#` lines (HELP, TYPE, comments, OpenMetrics `# EOF`) and blank lines are skipped;
//! * `name{label="value",...} value [timestamp]`, with blanks or tabs between the parts, a
//!   trailing comma in the label set, and label values escaping `\\`, `\"` and `\n` (a `,` or `}`
//!   inside quotes is just text);
//! * Prometheus 3's quoted names, `{"metric.name", "label.name"="v"} 1`;
//! * values and timestamps in Go `ParseFloat` syntax: `1`, `1.0`, `-2.5e-3`, `NaN`, `+Inf`, `-Inf`
//!   (hex floats are not accepted; no server we scrape prints them).
//!
//! # Cost
//!
//! One pass over the body, no allocation per line except for label values containing escapes
//! that a caller actually looks up. Bodies are capped by the caller (see
//! `adapter::MAX_BODY_BYTES`).

use std::borrow::Cow;

/// One sample line, borrowing from the body.
#[derive(Debug)]
pub(crate) struct Sample<'a> {
    /// Metric name (owned only for a quoted name with escapes).
    pub name: Cow<'a, str>,
    /// The label set as written, braces included (`""` when there is none); already validated.
    labels: &'a str,
    /// The sample value (may be NaN or infinite).
    pub value: f64,
}

impl<'a> Sample<'a> {
    /// The value of label `key`, unescaped.
    pub fn label(&self, key: &str) -> Option<Cow<'a, str>> {
        if self.labels.is_empty() {
            return None;
        }
        let mut found = None;
        let mut c = Cur::new(self.labels);
        // Already validated when the line was parsed, so this cannot fail.
        let _ = label_set(&mut c, &mut |k, v| {
            if found.is_none() && k == key {
                found = Some(v);
            }
        });
        found
    }
}

/// Calls `f` for every sample line of `body`, in order.
///
/// # Errors
///
/// The first malformed line, as `line N: what (near "...")`.
pub(crate) fn for_each_sample<'a>(
    body: &'a str,
    mut f: impl FnMut(&Sample<'a>),
) -> Result<(), String> {
    for (i, raw) in body.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match sample_line(line) {
            Ok(Some(s)) => f(&s),
            Ok(None) => {}
            Err(what) => return Err(format!("line {}: {what} (near {:?})", i + 1, excerpt(line))),
        }
    }
    Ok(())
}

/// The first 48 bytes of `line` (on a char boundary), for error messages.
fn excerpt(line: &str) -> &str {
    let mut end = line.len().min(48);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.get(..end).unwrap_or_default()
}

/// Parses one line: `Ok(None)` for blank and `#` lines.
fn sample_line(line: &str) -> Result<Option<Sample<'_>>, String> {
    let mut c = Cur::new(line);
    c.blanks();
    if c.at_end() || c.peek() == Some(b'#') {
        return Ok(None);
    }
    let (name, labels) = if c.peek() == Some(b'{') {
        let start = c.i;
        let name = label_set(&mut c, &mut |_, _| {})?;
        let name = name.ok_or("a label set with no metric name")?;
        (name, c.since(start))
    } else {
        let name = c.ident(true).ok_or("invalid metric name")?;
        c.blanks();
        let start = c.i;
        if c.peek() == Some(b'{') && label_set(&mut c, &mut |_, _| {})?.is_some() {
            return Err("a quoted metric name after a bare one".into());
        }
        (Cow::Borrowed(name), c.since(start))
    };
    c.blanks();
    let value = number(c.token()).ok_or("missing or malformed sample value")?;
    c.blanks();
    if !c.at_end() {
        number(c.token()).ok_or("malformed timestamp")?;
        c.blanks();
        if !c.at_end() {
            return Err("unexpected text after the timestamp".into());
        }
    }
    Ok(Some(Sample {
        name,
        labels,
        value,
    }))
}

/// A value or timestamp in Go `ParseFloat` syntax (minus hex floats). Rust's parser accepts the
/// same spellings of NaN and infinities, case-insensitively, with an optional sign.
fn number(tok: &str) -> Option<f64> {
    if tok.is_empty() {
        return None;
    }
    tok.parse::<f64>().ok()
}

/// Parses `{...}` at the cursor, calling `pair` for each `name="value"`. Returns the metric name
/// when the set opens with a lone quoted string (Prometheus 3 quoted-name form).
fn label_set<'a>(
    c: &mut Cur<'a>,
    pair: &mut dyn FnMut(&str, Cow<'a, str>),
) -> Result<Option<Cow<'a, str>>, String> {
    if !c.eat(b'{') {
        return Err("expected '{'".into());
    }
    let mut name = None;
    let mut first = true;
    loop {
        c.blanks();
        match c.peek() {
            Some(b'}') => {
                c.i += 1;
                return Ok(name);
            }
            None => return Err("unterminated label set".into()),
            _ => {}
        }
        let (key, quoted) = if c.peek() == Some(b'"') {
            (c.quoted()?, true)
        } else {
            let k = c.ident(false).ok_or("invalid label name")?;
            (Cow::Borrowed(k), false)
        };
        c.blanks();
        if c.eat(b'=') {
            c.blanks();
            if c.peek() != Some(b'"') {
                return Err(format!("label {key:?}: value must be a quoted string"));
            }
            let value = c.quoted()?;
            pair(&key, value);
        } else if first && quoted {
            name = Some(key);
        } else {
            return Err(format!("label {key:?}: expected '='"));
        }
        first = false;
        c.blanks();
        match c.peek() {
            Some(b',') => c.i += 1,
            Some(b'}') => {}
            None => return Err("unterminated label set".into()),
            Some(_) => return Err("expected ',' or '}' after a label".into()),
        }
    }
}

/// A byte cursor over one line. It only ever stops on ASCII bytes, so every slice it takes is on
/// a char boundary.
struct Cur<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn since(&self, start: usize) -> &'a str {
        self.s.get(start..self.i).unwrap_or_default()
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Everything up to the next blank or the end.
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.i += 1;
        }
        self.since(start)
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or, with `metric` false, a label name (no `:`).
    fn ident(&mut self, metric: bool) -> Option<&'a str> {
        let ok = |b: u8, first: bool| {
            b.is_ascii_alphabetic()
                || b == b'_'
                || (metric && b == b':')
                || (!first && b.is_ascii_digit())
        };
        let start = self.i;
        while self.peek().is_some_and(|b| ok(b, self.i == start)) {
            self.i += 1;
        }
        (self.i > start).then(|| self.since(start))
    }

    /// A `"..."` string with `\\`, `\"` and `\n` escapes; borrowed unless it has escapes.
    fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        if !self.eat(b'"') {
            return Err("expected '\"'".into());
        }
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    let tail = self.s.get(run..self.i).unwrap_or_default();
                    self.i += 1;
                    return Ok(match owned {
                        Some(mut o) => {
                            o.push_str(tail);
                            Cow::Owned(o)
                        }
                        None => Cow::Borrowed(tail),
                    });
                }
                Some(b'\\') => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(self.s.get(run..self.i).unwrap_or_default());
                    let esc = self.s.as_bytes().get(self.i + 1).copied();
                    o.push(match esc {
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'n') => '\n',
                        _ => return Err("invalid escape in quoted string".into()),
                    });
                    self.i += 2;
                    run = self.i;
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

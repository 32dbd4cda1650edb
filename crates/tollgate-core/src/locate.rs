//! Map byte offsets in TOML text to line/column and to a dotted field path (`backends[1].url`),
//! so serde errors, which only carry a span, can still name the field. Shared by every file
//! tollgate reads (config, keys file), so they all report `file:line:col: field: message` alike.

/// (line, column, field path) of a parser error's span start, or `(0, 0, "")` when the parser
/// gave no span: what `file:line:col: field: message` errors are built from.
pub fn position(text: &str, span_start: Option<usize>) -> (usize, usize, String) {
    match span_start {
        Some(at) => {
            let (l, c) = line_col(text, at);
            (l, c, field_path_at(text, at))
        }
        None => (0, 0, String::new()),
    }
}

/// 1-based (line, column) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = text
        .get(line_start..offset)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Best-effort dotted path of the key at `offset`: the enclosing `[table]` / `[[array]]` header
/// (with the array index) plus the key on that line.
pub fn field_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut pos = 0usize;
    let mut key = String::new();
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let t = line.trim();
        if start > offset {
            break;
        }
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let idx = match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c - 1
                }
                None => {
                    counts.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{idx}]");
            key.clear();
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
            key.clear();
        } else if offset < pos {
            key = t
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string();
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_array_index_and_key() {
        let t = "workers = 2\n[[backends]]\nname = \"a\"\n[[backends]]\nname = \"b\"\nkindd = 1\n";
        let off = t.find("kindd").unwrap();
        assert_eq!(line_col(t, off), (6, 1));
        assert_eq!(field_path_at(t, off), "backends[1].kindd");
        assert_eq!(field_path_at(t, t.find("workers").unwrap()), "workers");
    }
}

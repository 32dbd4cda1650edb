//! Text rendering of a [`Report`] for a terminal: one aligned table per dimension.
//!
//! Names are left-aligned, numbers right-aligned, columns two spaces apart, no trailing spaces
//! (so output diffs and greps cleanly). Widths count `char`s, which is right for the ASCII names
//! the gateway issues; a wide Unicode name shifts its own row only.

use std::fmt::Write;

use super::{GroupTable, Report, Row, Usage};

const USAGE_HEADERS: [&str; 5] = ["REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "TOTAL"];

/// The whole report as text.
pub(super) fn render(report: &Report) -> String {
    let mut out = format!("usage {} .. {}\n", report.since, report.until);
    if report.totals.requests == 0 {
        out.push_str("no requests in range\n");
    } else {
        out.push('\n');
        let mut header = vec![""];
        header.extend(USAGE_HEADERS);
        out.push_str(&grid(&header, &[usage_cells("total", &report.totals)]));
        for table in &report.by {
            out.push('\n');
            render_group(&mut out, table);
        }
    }
    if report.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {} unreadable ledger lines skipped; figures may be incomplete",
            report.skipped_lines
        );
    }
    out
}

fn render_group(out: &mut String, table: &GroupTable) {
    let by = table.by.as_str();
    if table.other.is_some() {
        let _ = writeln!(
            out,
            "by {by}: top {} of {} groups",
            table.top.len(),
            table.groups
        );
    } else {
        let _ = writeln!(out, "by {by}: {} groups", table.groups);
    }
    let first = by.to_ascii_uppercase();
    let mut header = vec![first.as_str()];
    header.extend(USAGE_HEADERS);
    header.push("SHARE");
    let mut rows: Vec<Vec<String>> = table.top.iter().map(row_cells).collect();
    if let Some(other) = &table.other {
        let mut cells = row_cells(other);
        let n = table.other_groups;
        cells[0] = format!("({n} other group{})", if n == 1 { "" } else { "s" });
        rows.push(cells);
    }
    out.push_str(&grid(&header, &rows));
}

fn usage_cells(name: &str, u: &Usage) -> Vec<String> {
    vec![
        name.to_string(),
        u.requests.to_string(),
        u.errors.to_string(),
        u.prompt_tokens.to_string(),
        u.completion_tokens.to_string(),
        u.total_tokens.to_string(),
    ]
}

fn row_cells(row: &Row) -> Vec<String> {
    let mut cells = usage_cells(&row.name, &row.usage);
    cells.push(format!("{:.2}%", row.share_pct));
    cells
}

/// Aligns `rows` under `header`: first column left-aligned, the others right-aligned.
fn grid(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (i, (cell, &w)) in row.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(line, "{cell:<w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

//! Where the ledger lives on disk: one `usage-YYYY-MM-DD.jsonl` file per UTC day, and the
//! torn-tail rule that keeps a crash from corrupting more than one line.
//!
//! Both the writer (to pick and repair the file it appends to) and the reader (to pick the files a
//! time range needs) go through this module, so the naming rule exists once.
//!
//! # Torn tail
//! A `kill -9` or power loss in the middle of a write can leave the last line of a file without its
//! `\n`. Before anything is appended to a file, [`repair_tail`] adds the missing `\n`, so the
//! fragment stays an isolated bad line that readers skip and count, instead of being glued to the
//! next good record and taking it down with it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Milliseconds in a day: file days are UTC days of this length (no leap seconds in Unix time).
pub(crate) const DAY_MS: i64 = 86_400_000;

const PREFIX: &str = "usage-";
const SUFFIX: &str = ".jsonl";

/// A day file found in the ledger directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DayFile {
    /// Days since the Unix epoch (UTC) of the file's date.
    pub(crate) day: i64,
    /// Full path of the file.
    pub(crate) path: PathBuf,
}

/// Unix day number (days since 1970-01-01 UTC) containing `ms`.
pub(crate) fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// File name for a Unix day number, e.g. `usage-2026-11-22.jsonl`.
///
/// Days outside jiff's range (year ±9999) cannot come from a real clock; they are clamped to the
/// range's ends rather than failing the write.
pub(crate) fn file_name(day: i64) -> String {
    let ms = day.saturating_mul(DAY_MS);
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    let date = ts.to_zoned(TimeZone::UTC).date();
    format!("{PREFIX}{date}{SUFFIX}")
}

/// Parses a day file name back to its Unix day number; `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    let date = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // Exactly YYYY-MM-DD: jiff also accepts longer forms we never write.
    if date.len() != 10 {
        return None;
    }
    let date: Date = date.parse().ok()?;
    let ms = date
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_millisecond();
    Some(day_of_ms(ms))
}

/// Lists the day files in `dir`, oldest first. Other files are ignored.
pub(crate) fn list_day_files(dir: &Path) -> io::Result<Vec<DayFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, dir))? {
        let entry = entry.map_err(|e| with_path(e, dir))?;
        let name = entry.file_name();
        let Some(day) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        files.push(DayFile {
            day,
            path: entry.path(),
        });
    }
    files.sort();
    Ok(files)
}

/// Opens (creating if needed) the day file at `path` for appending, with its torn tail repaired.
///
/// The handle is opened with `O_APPEND`, so every write lands at the end of the file even if
/// someone else appended meanwhile.
pub(crate) fn open_for_append(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| with_path(e, path))?;
    repair_tail(&mut file).map_err(|e| with_path(e, path))?;
    Ok(file)
}

/// Repairs the newest day file in `dir`, if any (see the module doc). Returns whether a `\n` was
/// added.
pub(crate) fn repair_newest(dir: &Path) -> io::Result<bool> {
    let Some(newest) = list_day_files(dir)?.pop() else {
        return Ok(false);
    };
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&newest.path)
        .map_err(|e| with_path(e, &newest.path))?;
    repair_tail(&mut file).map_err(|e| with_path(e, &newest.path))
}

/// Appends `\n` if the file is non-empty and does not end with one. Returns whether it did.
pub(crate) fn repair_tail(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(false);
    }
    file.write_all(b"\n")?;
    Ok(true)
}

/// Prefixes an I/O error with the path it concerns: `io::Error` alone does not name it, and
/// "Permission denied" without a path is useless in a log.
pub(crate) fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_through_day_numbers() {
        for day in [-1, 0, 1, 20_414, 20_779] {
            let name = file_name(day);
            assert_eq!(parse_file_name(&name), Some(day), "{name}");
        }
        assert_eq!(file_name(0), "usage-1970-01-01.jsonl");
        assert_eq!(file_name(20_779), "usage-2026-11-22.jsonl");
    }

    #[test]
    fn other_file_names_are_not_day_files() {
        for name in [
            "usage-2026-11-22.json",
            "usage-2026-11-22.jsonl.bak",
            "usage-2026-13-01.jsonl",
            "usage-26-11-22.jsonl",
            "notes.txt",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn day_of_negative_ms_rounds_down() {
        assert_eq!(day_of_ms(-1), -1);
        assert_eq!(day_of_ms(0), 0);
        assert_eq!(day_of_ms(DAY_MS - 1), 0);
    }

    #[test]
    fn repair_adds_newline_only_to_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        fs::write(&path, b"{\"ok\":1}\n{\"torn").unwrap();
        assert!(repair_newest(dir.path()).unwrap());
        assert!(!repair_newest(dir.path()).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"{\"ok\":1}\n{\"torn\n");
        let empty = dir.path().join(file_name(2));
        fs::write(&empty, b"").unwrap();
        assert!(!repair_newest(dir.path()).unwrap());
        assert_eq!(fs::read(&empty).unwrap(), b"");
    }
}

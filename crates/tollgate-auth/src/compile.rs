//! Validation and compilation of a keys file: names, cross-references (key → consumer),
//! uniqueness, hashes, globs, CIDRs and timestamps. Collects every error instead of stopping
//! at the first.

use std::collections::HashMap;

use toml::Spanned;

use crate::error::KeysError;
use crate::ip::{self, IpRules};
use crate::models::{self, ModelMatcher};
use crate::raw::{List, RawConsumer, RawKey, RawKeysFile};
use crate::secret::{self, KeyHash};
use crate::store::KeyStore;
use crate::types::{Consumer, Key};
use tollgate_core::locate::line_col;

/// Longest consumer / tenant / project name.
pub const MAX_NAME_LEN: usize = 64;

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<KeysError>,
}

impl Ctx<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, field: &str, msg: impl Into<String>) {
        let (l, c) = self.line_col(at);
        self.errors
            .push(KeysError::new(self.file, l, c, field, msg.into()));
    }

    fn line_col<T>(&self, at: &Spanned<T>) -> (usize, usize) {
        line_col(self.text, at.span().start)
    }

    /// A name in `[A-Za-z0-9._-]{1,64}`.
    fn name(&mut self, v: &Spanned<String>, field: &str) {
        if let Err(m) = check_name(v.get_ref()) {
            self.err(v, field, m);
        }
    }

    /// An RFC 3339 timestamp → unix seconds.
    fn timestamp(&mut self, v: &Spanned<String>, field: &str) -> Option<i64> {
        match parse_timestamp(v.get_ref()) {
            Ok(t) => Some(t),
            Err(m) => {
                self.err(v, field, m);
                None
            }
        }
    }

    fn nets(&mut self, list: &Option<List>, field: &str) -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        for (i, s) in list.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
            match ip::parse_net(s.get_ref()) {
                Ok(n) => out.push(n),
                Err(m) => self.err(s, &format!("{field}[{i}]"), m),
            }
        }
        out
    }
}

/// `[A-Za-z0-9._-]{1,64}`: safe in logs, metric labels, file names and the ledger.
pub(crate) fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(format!("must be 1 to {MAX_NAME_LEN} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!("{s:?} has characters outside [A-Za-z0-9._-]"));
    }
    Ok(())
}

/// RFC 3339 (`2027-01-01T00:00:00Z`, `2027-01-01T02:00:00+02:00`) → unix seconds.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| format!("{s:?} is not an RFC 3339 timestamp (e.g. \"2027-01-01T00:00:00Z\")"))
}

/// Compile a raw keys file into a [`KeyStore`], or return every error found.
pub(crate) fn compile(
    raw: RawKeysFile,
    text: &str,
    file: &str,
) -> Result<KeyStore, Vec<KeysError>> {
    let mut cx = Ctx {
        text,
        file,
        errors: Vec::new(),
    };
    let mut store = KeyStore::empty();
    // name → (index, line of first definition)
    let mut by_name: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, c) in raw.consumer.iter().enumerate() {
        let consumer = consumer(&mut cx, i, c);
        let line = cx.line_col(&c.name).0;
        match by_name.get(&consumer.name) {
            Some((_, first)) => cx.err(
                &c.name,
                &format!("consumer[{i}].name"),
                format!(
                    "duplicate consumer name {:?} (first defined at line {first})",
                    consumer.name
                ),
            ),
            None => {
                by_name.insert(consumer.name.clone(), (i, line));
            }
        }
        store.consumers.push(consumer);
    }

    let mut first_id_line: HashMap<[u8; secret::ID_HEX_LEN], usize> = HashMap::new();
    for (i, k) in raw.key.iter().enumerate() {
        let owner = match by_name.get(k.consumer.get_ref()) {
            Some(&(ci, _)) => Some(ci),
            None => {
                cx.err(
                    &k.consumer,
                    &format!("key[{i}].consumer"),
                    format!("unknown consumer {:?}", k.consumer.get_ref()),
                );
                None
            }
        };
        // Uniqueness is checked on the id alone, so a duplicate is reported even when the
        // rest of the table has errors too.
        let suffix = secret::id_suffix(k.id.get_ref());
        if let Some(sfx) = suffix {
            match first_id_line.get(&sfx) {
                Some(first) => cx.err(
                    &k.id,
                    &format!("key[{i}].id"),
                    format!(
                        "duplicate key id {:?} (first defined at line {first})",
                        k.id.get_ref()
                    ),
                ),
                None => {
                    let line = cx.line_col(&k.id).0;
                    first_id_line.insert(sfx, line);
                }
            }
        }
        let (Some(key), Some(sfx)) = (key(&mut cx, i, k, owner.unwrap_or(0)), suffix) else {
            continue;
        };
        store.by_id.entry(sfx).or_insert(store.keys.len());
        store.keys.push(key);
    }

    if cx.errors.is_empty() {
        Ok(store)
    } else {
        // File order reads best; the sort is stable, so same-spot errors keep their order.
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(cx.errors)
    }
}

fn consumer(cx: &mut Ctx<'_>, i: usize, c: &RawConsumer) -> Consumer {
    let f = |k: &str| format!("consumer[{i}].{k}");
    cx.name(&c.name, &f("name"));
    cx.name(&c.tenant, &f("tenant"));
    if let Some(p) = &c.project {
        cx.name(p, &f("project"));
    }
    let allow = cx.nets(&c.allow_ips, &f("allow_ips"));
    let deny = cx.nets(&c.deny_ips, &f("deny_ips"));
    Consumer {
        name: c.name.get_ref().clone(),
        tenant: c.tenant.get_ref().clone(),
        project: c
            .project
            .as_ref()
            .map_or_else(|| "default".to_string(), |p| p.get_ref().clone()),
        enabled: c.enabled.unwrap_or(true),
        ips: IpRules::from_nets(allow, deny),
    }
}

/// Validate one key. `None` when a field is unusable (the error is already recorded).
fn key(cx: &mut Ctx<'_>, i: usize, k: &RawKey, consumer: usize) -> Option<Key> {
    let f = |n: &str| format!("key[{i}].{n}");
    let id_ok = secret::id_suffix(k.id.get_ref()).is_some();
    if !id_ok {
        cx.err(
            &k.id,
            &f("id"),
            format!(
                "{:?} is not a key id: expected \"k_\" followed by {} lowercase hex digits",
                k.id.get_ref(),
                secret::ID_HEX_LEN
            ),
        );
    }
    let hash = match KeyHash::parse(k.hash.get_ref()) {
        Ok(h) => Some(h),
        Err(m) => {
            cx.err(&k.hash, &f("hash"), m);
            None
        }
    };
    let models = compile_models(cx, &k.models, &f("models"));
    let expires = k
        .expires
        .as_ref()
        .and_then(|e| cx.timestamp(e, &f("expires")));
    let created = k
        .created
        .as_ref()
        .and_then(|e| cx.timestamp(e, &f("created")));
    // A token pasted into the note would be echoed by `Debug` and `tollgate keys list`.
    let note_ok = match &k.note {
        Some(n) if n.get_ref().contains(secret::TOKEN_PREFIX) => {
            cx.err(
                n,
                &f("note"),
                "note looks like it contains an API token; remove it",
            );
            false
        }
        _ => true,
    };
    let (true, true, Some(hash), Some(models)) = (id_ok, note_ok, hash, models) else {
        return None;
    };
    Some(Key {
        id: k.id.get_ref().clone(),
        consumer,
        models,
        enabled: k.enabled.unwrap_or(true),
        expires,
        created,
        note: k.note.as_ref().map(|n| n.get_ref().clone()),
        hash,
    })
}

fn compile_models(cx: &mut Ctx<'_>, list: &List, field: &str) -> Option<ModelMatcher> {
    let items = list.get_ref();
    if items.is_empty() {
        cx.err(
            list,
            field,
            "models must not be empty; use [\"*\"] to allow every model",
        );
        return None;
    }
    let mut ok = true;
    for (j, p) in items.iter().enumerate() {
        if let Err(m) = models::check_pattern(p.get_ref()) {
            cx.err(p, &format!("{field}[{j}]"), m);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let patterns: Vec<&str> = items.iter().map(|p| p.get_ref().as_str()).collect();
    match ModelMatcher::new(&patterns) {
        Ok(m) => Some(m),
        Err(m) => {
            cx.err(list, field, m);
            None
        }
    }
}

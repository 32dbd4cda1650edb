//! Library side of `tollgate keys add|revoke|list`: edit the keys file without disturbing what
//! the operator wrote (comments, order, formatting), write it atomically, and never write or
//! print a secret except the one token returned by [`add_key`].
//!
//! New tables are appended as text, so every existing byte is kept; flipping `enabled` goes
//! through `toml_edit`, which preserves formatting around the edit. Every edit is re-parsed with
//! [`KeyStore::parse`] *before* it replaces the file, so a bad edit never lands.
//!
//! Concurrent edits of one file by two CLI processes are not serialised: the last rename wins.
//! Editing is an operator action, so this is documented rather than locked.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value, value};

use crate::compile::{check_name, parse_timestamp};
use crate::models;
use crate::secret;
use crate::store::KeyStore;

/// A freshly created key. `token` is the only copy of the secret: print it once.
/// `Debug` and `Display` show the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Public key id (`k_…`).
    pub id: String,
    /// The full credential (`tgk_<id hex>_<secret>`), to hand to the client. Not stored.
    pub token: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {} (token redacted)", self.id)
    }
}

/// Generate fresh key material without touching any file: the key (id + token, print once)
/// and the stored `hash` value for a `[[key]]` table. For tooling and tests that build keys
/// files themselves; [`add_key`] is the usual way.
pub fn generate_key() -> Result<(NewKey, String), String> {
    let g = secret::generate()?;
    Ok((
        NewKey {
            id: g.id,
            token: g.token,
        },
        g.hash.encode(),
    ))
}

/// Generate a key for `consumer` (which must exist in the file), append a `[[key]]` table with
/// only its salted hash, write the file atomically (mode 0600 on Unix) and return the token.
///
/// `models` must be non-empty (`["*"]` for all); `expires` is an RFC 3339 timestamp, stored
/// normalised to UTC. `created` is set to now. The file must already exist: create it (and the
/// consumer) with [`add_consumer`] first.
pub fn add_key(
    path: &Path,
    consumer: &str,
    models: &[String],
    expires: Option<&str>,
    note: Option<&str>,
) -> Result<NewKey, String> {
    let text = read(path)?;
    let store = parse(&text, path)?;
    if store.consumer_by_name(consumer).is_none() {
        return Err(format!(
            "{}: no consumer named {consumer:?}; add it first with `tollgate keys add-consumer`",
            path.display()
        ));
    }
    models::ModelMatcher::new(models)?;
    let expires = expires
        .map(|e| parse_timestamp(e).map(timestamp_string))
        .transpose()?;

    // 48-bit ids: a collision is rare but possible in a large file; draw again.
    let mut generated = secret::generate()?;
    let mut tries = 0;
    while store.key_by_id(&generated.id).is_some() {
        tries += 1;
        if tries > 16 {
            return Err("could not draw an unused key id".to_string());
        }
        generated = secret::generate()?;
    }

    let mut t = Table::new();
    t.insert("id", value(generated.id.as_str()));
    t.insert("consumer", value(consumer));
    t.insert("hash", value(generated.hash.encode()));
    t.insert(
        "models",
        value(Array::from_iter(models.iter().map(String::as_str))),
    );
    t.insert("enabled", value(true));
    if let Some(e) = &expires {
        t.insert("expires", value(e.as_str()));
    }
    t.insert(
        "created",
        value(timestamp_string(jiff::Timestamp::now().as_second())),
    );
    if let Some(n) = note {
        t.insert("note", value(n));
    }
    let new_text = append_table(&text, "key", t);

    // Validate before replacing the file, including that the token really verifies.
    let new_store = parse(&new_text, path)?;
    let now = jiff::Timestamp::now().as_second();
    // (A disabled consumer or a past expiry is the operator's choice, not a failure here.)
    match new_store.authenticate(generated.token.as_bytes(), now) {
        Ok(_) | Err(crate::AuthFailure::Expired | crate::AuthFailure::Revoked) => {}
        Err(f) => {
            return Err(format!(
                "internal error: new key does not verify ({})",
                f.reason()
            ));
        }
    }
    write_atomic(path, &new_text)?;
    Ok(NewKey {
        id: generated.id,
        token: generated.token,
    })
}

/// Append a `[[consumer]]` table. Creates the file (mode 0600) if it does not exist. Fails if
/// the name is taken or a name is not `[A-Za-z0-9._-]{1,64}`.
pub fn add_consumer(
    path: &Path,
    name: &str,
    tenant: &str,
    project: Option<&str>,
) -> Result<(), String> {
    for (field, v) in [
        ("name", Some(name)),
        ("tenant", Some(tenant)),
        ("project", project),
    ] {
        if let Some(v) = v {
            check_name(v).map_err(|m| format!("consumer {field}: {m}"))?;
        }
    }
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let store = parse(&text, path)?;
    if store.consumer_by_name(name).is_some() {
        return Err(format!(
            "{}: consumer {name:?} already exists",
            path.display()
        ));
    }
    let mut t = Table::new();
    t.insert("name", value(name));
    t.insert("tenant", value(tenant));
    if let Some(p) = project {
        t.insert("project", value(p));
    }
    let new_text = append_table(&text, "consumer", t);
    parse(&new_text, path)?;
    write_atomic(path, &new_text)
}

/// Enable or disable (revoke = `false`) a key by id. Only the `enabled` value changes; comments
/// and formatting elsewhere are preserved.
pub fn set_key_enabled(path: &Path, id: &str, enabled: bool) -> Result<(), String> {
    let text = read(path)?;
    parse(&text, path)?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = doc
        .get_mut("key")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| format!("{}: no [[key]] tables", path.display()))?;
    let table = keys
        .iter_mut()
        .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        .ok_or_else(|| format!("{}: no key with id {id:?}", path.display()))?;
    match table.get_mut("enabled").and_then(Item::as_value_mut) {
        Some(v) => {
            // Keep the value's surrounding whitespace and trailing comment.
            let decor = v.decor().clone();
            *v = Value::from(enabled);
            *v.decor_mut() = decor;
        }
        None => {
            table.insert("enabled", value(enabled));
        }
    }
    let new_text = doc.to_string();
    parse(&new_text, path)?;
    write_atomic(path, &new_text)
}

/// A plain-text table of keys: id, consumer, tenant, models, enabled, expires. Never hashes.
///
/// `enabled` is `yes`, `no`, or `no (consumer)` when the key is on but its consumer is
/// disabled; `expires` is the timestamp, `never`, or the timestamp with ` (expired)`.
pub fn list(path: &Path) -> Result<String, String> {
    let store = parse(&read(path)?, path)?;
    let now = jiff::Timestamp::now().as_second();
    let mut rows: Vec<[String; 6]> = vec![[
        "ID".into(),
        "CONSUMER".into(),
        "TENANT".into(),
        "MODELS".into(),
        "ENABLED".into(),
        "EXPIRES".into(),
    ]];
    for k in store.keys() {
        let c = store.consumer(k.consumer);
        let enabled = match (k.enabled, c.enabled) {
            (false, _) => "no",
            (true, false) => "no (consumer)",
            (true, true) => "yes",
        };
        let expires = match k.expires {
            None => "never".to_string(),
            Some(e) if now >= e => format!("{} (expired)", timestamp_string(e)),
            Some(e) => timestamp_string(e),
        };
        rows.push([
            k.id.clone(),
            c.name.clone(),
            c.tenant.clone(),
            k.models.patterns().join(","),
            enabled.to_string(),
            expires,
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn parse(text: &str, path: &Path) -> Result<KeyStore, String> {
    KeyStore::parse(text, &path.display().to_string()).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn timestamp_string(unix_s: i64) -> String {
    jiff::Timestamp::from_second(unix_s)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix_s.to_string())
}

/// Append `[[name]]` + `table` after the existing text, separated by a blank line. Existing
/// bytes are untouched (a missing final newline is added).
fn append_table(existing: &str, name: &str, table: Table) -> String {
    let mut doc = DocumentMut::new();
    let mut aot = ArrayOfTables::new();
    aot.push(table);
    doc.insert(name, Item::ArrayOfTables(aot));
    let mut out = existing.to_string();
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&doc.to_string());
    out
}

/// Write via a temp file in the same directory + rename, so readers (a reloading proxy) see
/// the old file or the new one, never a torn one. The new file is mode 0600 on Unix: it holds
/// hashes only, but nobody else needs to read them.
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file path", path.display()))?;
    let mut rnd = [0u8; 6];
    secret::fill_random(&mut rnd)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        secret::hex(&rnd)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            opts.mode(0o600);
            let f = opts.open(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            write_sync(f, text)?;
        }
        #[cfg(not(unix))]
        write_sync(opts.open(&tmp)?, text)?;
        fs::rename(&tmp, path)?;
        // Make the rename durable; best effort (not every platform can open a directory).
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

fn write_sync(mut f: fs::File, text: &str) -> std::io::Result<()> {
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

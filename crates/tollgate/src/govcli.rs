//! `tollgate keys …` (consumers and API keys in the keys file) and `tollgate usage` (Top-N
//! reports over the usage ledger). Both work on files, offline: a running gateway picks keys-file
//! changes up on reload (SIGHUP or `POST /admin/reload`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Where the keys file is: given directly, or named by a config's `auth.keys_file`.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct KeysFileArg {
    /// Keys file (TOML).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Config file whose `auth.keys_file` names the keys file.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// `tollgate keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a key for a consumer: prints the key once; the file gets only its salted hash.
    Add {
        #[command(flatten)]
        file: KeysFileArg,
        /// Consumer the key belongs to (must exist; see `add-consumer`).
        #[arg(long)]
        consumer: String,
        /// Models the key may use: exact names or globs (`*`, `?`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        models: Vec<String>,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
        /// Free-text note stored with the key.
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a consumer (creates the keys file if it does not exist).
    AddConsumer {
        #[command(flatten)]
        file: KeysFileArg,
        /// Consumer name.
        #[arg(long)]
        name: String,
        /// Tenant (billing dimension).
        #[arg(long)]
        tenant: String,
        /// Project (billing dimension; default "default").
        #[arg(long)]
        project: Option<String>,
    },
    /// Revoke a key (`enabled = false`); takes effect on the gateway's next reload.
    Revoke {
        #[command(flatten)]
        file: KeysFileArg,
        /// Key id (`k_…`).
        #[arg(long)]
        id: String,
    },
    /// Re-enable a revoked key.
    Enable {
        #[command(flatten)]
        file: KeysFileArg,
        /// Key id (`k_…`).
        #[arg(long)]
        id: String,
    },
    /// List keys (ids, consumers, models, state — never hashes).
    List {
        #[command(flatten)]
        file: KeysFileArg,
    },
}

/// `tollgate usage` arguments.
#[derive(Args)]
pub struct UsageArgs {
    /// Ledger directory.
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    ledger: Option<PathBuf>,
    /// Config file whose `ledger.dir` names the ledger directory.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Start of the range: RFC 3339, a date (UTC midnight), "now", or relative ("-2h", "-7d").
    #[arg(long, default_value = "-24h", allow_hyphen_values = true)]
    since: String,
    /// End of the range (exclusive), same forms as --since.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    until: String,
    /// Top-N groupings, comma-separated: tenant, project, consumer, key, model, backend.
    #[arg(long, value_delimiter = ',', default_value = "tenant,key,model")]
    by: Vec<String>,
    /// Rows per grouping.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// Read just enough of a config to find a path in it, resolved against the config's directory.
fn path_from_config(config: &Path, what: &str) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("{}: cannot read: {e}", config.display()))?;
    let v: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let (table, key) = what.split_once('.').unwrap_or(("", what));
    let p = v
        .get(table)
        .and_then(|t| t.get(key))
        .and_then(|p| p.as_str())
        .ok_or_else(|| format!("{}: no {what} set", config.display()))?;
    let base = config.parent().unwrap_or(Path::new(""));
    Ok(base.join(p))
}

fn keys_path(f: &KeysFileArg) -> Result<PathBuf, String> {
    match (&f.keys, &f.config) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(c)) => path_from_config(c, "auth.keys_file"),
        (None, None) => Err("give --keys FILE or --config FILE".into()),
    }
}

/// Run a `tollgate keys` subcommand.
pub fn keys(cmd: KeysCmd) -> ExitCode {
    let r = match cmd {
        KeysCmd::Add {
            file,
            consumer,
            models,
            expires,
            note,
        } => keys_path(&file).and_then(|p| {
            let k = tollgate_auth::add_key(&p, &consumer, &models, expires.as_deref(), note.as_deref())?;
            // The key goes to stdout once, and nowhere else; the id is for logs and revocation.
            println!("{}", k.token);
            eprintln!(
                "tollgate: key {} added for consumer {consumer:?} in {} (shown once; only its hash is stored). Reload the gateway to use it.",
                k.id,
                p.display()
            );
            Ok(())
        }),
        KeysCmd::AddConsumer {
            file,
            name,
            tenant,
            project,
        } => keys_path(&file).and_then(|p| {
            tollgate_auth::add_consumer(&p, &name, &tenant, project.as_deref())?;
            eprintln!("tollgate: consumer {name:?} (tenant {tenant:?}) added to {}", p.display());
            Ok(())
        }),
        KeysCmd::Revoke { file, id } => keys_path(&file).and_then(|p| {
            tollgate_auth::set_key_enabled(&p, &id, false)?;
            eprintln!("tollgate: key {id} revoked in {}; reload the gateway to apply", p.display());
            Ok(())
        }),
        KeysCmd::Enable { file, id } => keys_path(&file).and_then(|p| {
            tollgate_auth::set_key_enabled(&p, &id, true)?;
            eprintln!("tollgate: key {id} enabled in {}; reload the gateway to apply", p.display());
            Ok(())
        }),
        KeysCmd::List { file } => keys_path(&file).and_then(|p| {
            print!("{}", tollgate_auth::list(&p)?);
            Ok(())
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Run `tollgate usage`.
pub fn usage(a: UsageArgs) -> ExitCode {
    let dir = match (&a.ledger, &a.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => match path_from_config(c, "ledger.dir") {
            Ok(d) => d,
            Err(e) => return fail(e),
        },
        (None, None) => return fail("give --ledger DIR or --config FILE"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = match tollgate_ledger::parse_time(&a.since, now) {
        Ok(t) => t,
        Err(e) => return fail(format!("--since: {e}")),
    };
    let until = match tollgate_ledger::parse_time(&a.until, now) {
        Ok(t) => t,
        Err(e) => return fail(format!("--until: {e}")),
    };
    if until <= since {
        return fail("--until must be after --since");
    }
    let mut by = Vec::new();
    for b in &a.by {
        match b.parse::<tollgate_ledger::GroupBy>() {
            Ok(g) => by.push(g),
            Err(_) => {
                return fail(format!(
                    "--by: unknown grouping {b:?}; expected tenant, project, consumer, key, model or backend"
                ));
            }
        }
    }
    let read = match tollgate_ledger::read_range(&dir, since, until) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", dir.display())),
    };
    // Unreadable lines (a torn write from a crash leaves at most one per restart) are counted
    // in the report, not fatal.
    let rep =
        tollgate_ledger::report(&read.records, &by, a.top, since, until).with_skipped(read.skipped);
    if a.json {
        println!("{}", rep.to_json());
    } else {
        print!("{}", rep.to_table());
    }
    ExitCode::SUCCESS
}

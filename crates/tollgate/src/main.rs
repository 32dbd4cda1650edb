//! The `tollgate` binary: `serve` the gateway, `check` a config, run a `demo` with a
//! simulated inference fleet embedded (works on a machine with no GPU), manage API `keys`, or
//! report `usage` from the ledger. Signals: SIGHUP reloads
//! the config; SIGTERM / SIGINT drain in-flight requests and exit (a second one exits at once).

mod demo;
mod govcli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "tollgate — a thread-per-core AI gateway for OpenAI-compatible inference backends"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway.
    Serve {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file (and its TLS material); print every error with file, line and field.
    Check {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start a simulated fleet (2 vLLM + 1 SGLang + 1 MindIE) and the gateway in front of it.
    Demo {
        /// Gateway listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Admin listen address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: String,
        /// Use instant backends (no model latency) instead of the latency model.
        #[arg(long)]
        instant: bool,
    },
    /// Manage consumers and API keys in a keys file (add, add-consumer, revoke, enable, list).
    Keys {
        #[command(subcommand)]
        cmd: govcli::KeysCmd,
    },
    /// Usage report from the ledger: totals and Top-N by tenant, key, model over a time range.
    Usage(govcli::UsageArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::Serve { config } => serve(&config),
        Cmd::Demo {
            listen,
            admin,
            instant,
        } => demo::run(&listen, &admin, instant),
        Cmd::Keys { cmd } => govcli::keys(cmd),
        Cmd::Usage(a) => govcli::usage(a),
    }
}

fn load(path: &Path) -> Result<tollgate_config::Config, ExitCode> {
    tollgate_config::load(path).map_err(|errs| {
        for e in &errs {
            eprintln!("error: {e}");
        }
        eprintln!("{}: {} error(s)", path.display(), errs.len());
        ExitCode::from(1)
    })
}

fn check(path: &Path) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (b, m) = (cfg.backends.len(), cfg.models.len());
    let routes: usize = cfg.models.iter().map(|m| m.routing.routes.len()).sum();
    let pools = format!(", {} pools, {routes} routes", cfg.pools.len());
    let scan = match &cfg.scan {
        Some(r) => format!(
            ", {} scan rules from {} files, max_match_len {}",
            r.len(),
            r.files().len(),
            r.max_match_len()
        ),
        None => String::new(),
    };
    let g = &cfg.governance;
    let mut gov = String::new();
    if g.auth_required() {
        gov.push_str(&format!(
            ", auth: {} consumers / {} keys",
            g.keys.consumers().len(),
            g.keys.keys().len()
        ));
    }
    if !g.limits.is_empty() {
        gov.push_str(&format!(", {} limits", g.limits.rules().len()));
    }
    if g.cluster.is_some() {
        gov.push_str(" (shared through Redis)");
    }
    if let Some(l) = &g.ledger {
        gov.push_str(&format!(", ledger {}", l.dir.display()));
    }
    match tollgate_proxy::build_snapshot(cfg, 1, None) {
        Ok(_) => {
            println!(
                "{}: ok ({b} backends, {m} models{pools}{scan}{gov})",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

fn serve(path: &Path) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let handle = match tollgate_proxy::start(cfg, Some(path.to_path_buf())) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(signals) = signals() else {
        return ExitCode::from(1);
    };
    announce(&handle);
    run_until_signal(handle, signals)
}

/// Install the SIGHUP/SIGTERM/SIGINT handlers. Done before the gateway announces its address,
/// so a signal sent as soon as someone sees it (a supervisor, a test) is never lost: SIGHUP
/// before the handler would be ignored under nohup, or kill the process otherwise.
pub fn signals() -> Option<Signals> {
    match Signals::new([SIGHUP, SIGTERM, SIGINT]) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            None
        }
    }
}

/// Print where the gateway listens (tests and scripts read these lines).
pub fn announce(h: &tollgate_proxy::ServerHandle) {
    if let Some(a) = h.http_addr {
        eprintln!("tollgate: listening http://{a}");
    }
    if let Some(a) = h.https_addr {
        eprintln!("tollgate: listening https://{a}");
    }
    eprintln!("tollgate: admin http://{}", h.admin_addr);
}

/// Block on signals: SIGHUP reloads; SIGTERM/SIGINT drain and exit.
pub fn run_until_signal(handle: tollgate_proxy::ServerHandle, mut signals: Signals) -> ExitCode {
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                let _ = handle.reload();
            }
            _ => {
                eprintln!("tollgate: draining (signal {sig}); a second signal exits at once");
                // A second SIGTERM/SIGINT during the drain exits immediately.
                std::thread::spawn(move || {
                    if let Ok(mut s) = Signals::new([SIGTERM, SIGINT])
                        && s.forever().next().is_some()
                    {
                        std::process::exit(130);
                    }
                });
                handle.join();
                eprintln!("tollgate: stopped");
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

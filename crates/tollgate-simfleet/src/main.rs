//! `tollgate-simfleet`: run a simulated fleet from a TOML file, or one instant-mode backend for
//! benchmarks, until interrupted.

use std::process::ExitCode;

use clap::Parser;
use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{BackendConfig, Fleet, FleetConfig, Mode};

/// Simulated vLLM / SGLang / MindIE inference backends for tollgate.
#[derive(Parser, Debug)]
#[command(name = "tollgate-simfleet", version)]
struct Args {
    /// Fleet description (see fleet.example.toml).
    #[arg(long, conflicts_with = "instant")]
    config: Option<std::path::PathBuf>,
    /// Start one instant-mode backend (no engine, precomputed answers) for benchmarks.
    #[arg(long)]
    instant: bool,
    /// Listen address for --instant.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Personality for --instant: vllm, sglang or mindie.
    #[arg(long, default_value = "vllm")]
    personality: String,
    /// Content events per streamed response for --instant.
    #[arg(long, default_value_t = 64)]
    events: u32,
    /// Tokio worker threads (overrides the config's `threads`).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-simfleet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut cfg = if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        FleetConfig::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else if args.instant {
        let personality = match args.personality.as_str() {
            "vllm" => Personality::Vllm,
            "sglang" => Personality::Sglang,
            "mindie" => Personality::Mindie,
            other => {
                return Err(format!(
                    "--personality {other}: expected vllm, sglang or mindie"
                ));
            }
        };
        FleetConfig {
            seed: 0,
            threads: 1,
            backends: vec![BackendConfig {
                name: "instant".into(),
                personality,
                listen: args.listen.clone(),
                mode: Mode::Instant,
                instant_events: args.events,
                ..BackendConfig::default()
            }],
        }
    } else {
        return Err("give --config <fleet.toml> or --instant (see --help)".into());
    };
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    let fleet = Fleet::start(cfg).map_err(|e| e.to_string())?;
    for b in fleet.backends() {
        let mut line = format!(
            "{} {} model={} api=http://{}",
            b.name,
            b.personality.as_str(),
            b.model,
            b.api_addr
        );
        if let Some(a) = b.management_addr {
            line.push_str(&format!(" management=http://{a}"));
        }
        if let Some(a) = b.metrics_addr {
            line.push_str(&format!(" metrics=http://{a}"));
        }
        println!("{line}");
    }
    // Serve until killed; the fleet runs on its own thread.
    loop {
        std::thread::park();
    }
}

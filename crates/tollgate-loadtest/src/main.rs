//! `tollgate-loadtest`: run a scenario against a target, tabulate results, or inspect what a
//! scenario would send.
//!
//! ```sh
//! tollgate-loadtest run --scenario loadtest/route/w1.toml --target http://127.0.0.1:18080 \
//!     --model llama-3-8b --out w1-rr.json --label round_robin \
//!     --backend-metrics http://127.0.0.1:19300/metrics http://127.0.0.1:19301/metrics
//! tollgate-loadtest table w1-rr.json w1-pa.json
//! tollgate-loadtest plot w1-rr.json w1-pa.json --out w1.svg
//! tollgate-loadtest sample --scenario loadtest/route/w3.toml -n 1000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tollgate_loadtest::report::{self, Report};
use tollgate_loadtest::scenario::{self, Overrides};
use tollgate_loadtest::workload::Workload;
use tollgate_loadtest::{RunOptions, run_blocking};

/// LLM-aware load generator for tollgate benchmarks.
#[derive(Parser, Debug)]
#[command(name = "tollgate-loadtest", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a scenario against a target; print a Markdown row, write JSON.
    Run(Box<RunArgs>),
    /// Print a side-by-side Markdown table of result JSON files.
    Table {
        /// Result files written by `run --out`.
        files: Vec<PathBuf>,
        /// Also print each run's per-backend table.
        #[arg(long)]
        backends: bool,
    },
    /// Draw TTFT / ITL / E2E percentile curves and requests per second of result JSON files
    /// into one SVG.
    Plot {
        /// Result files written by `run --out`.
        files: Vec<PathBuf>,
        /// SVG file to write.
        #[arg(long)]
        out: PathBuf,
        /// Title (default: the first run's scenario name and description).
        #[arg(long)]
        title: Option<String>,
    },
    /// Print what a scenario would send: one line per request and length statistics.
    Sample {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Requests to generate.
        #[arg(short = 'n', long, default_value_t = 10)]
        count: u64,
        /// Print only the summary line.
        #[arg(long)]
        summary: bool,
    },
}

#[derive(Args, Debug)]
struct ScenarioArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Override `arrival.rate` (req/s).
    #[arg(long)]
    rate: Option<f64>,
    /// Override `arrival.concurrency`.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Override `duration_s`.
    #[arg(long)]
    duration: Option<f64>,
    /// Override `warmup_s`.
    #[arg(long)]
    warmup: Option<f64>,
    /// Override `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Override `max_requests`.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Override `timeout_s` (per request).
    #[arg(long)]
    timeout: Option<f64>,
    /// Override `slo.ttft_ms`.
    #[arg(long)]
    slo_ttft_ms: Option<f64>,
    /// Override `slo.tpot_ms`.
    #[arg(long)]
    slo_tpot_ms: Option<f64>,
    /// Set any scenario field: `--set workload.groups=12` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Base URL of the target (gateway or backend).
    #[arg(long)]
    target: String,
    /// Model name to send (overrides the scenario's `model`).
    #[arg(long)]
    model: Option<String>,
    /// Extra request header `Name: value` (repeatable), e.g. `--header "Authorization: Bearer sk-…"`.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Request path.
    #[arg(long, default_value = "/v1/chat/completions")]
    path: String,
    /// Row label (default: the scenario name).
    #[arg(long)]
    label: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also draw this run's latency plot (SVG) here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Backend Prometheus endpoints to scrape before/after (and during) the run.
    #[arg(long, num_args = 1.., value_name = "URL")]
    backend_metrics: Vec<String>,
    /// Load-gauge sampling period during the run; 0 = before/after only.
    #[arg(long, default_value_t = 1000)]
    scrape_interval_ms: u64,
    /// tokio worker threads for the driver.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Run(a) => cmd_run(*a),
        Cmd::Table { files, backends } => cmd_table(&files, backends),
        Cmd::Plot { files, out, title } => cmd_plot(&files, &out, title.as_deref()),
        Cmd::Sample {
            scenario,
            count,
            summary,
        } => cmd_sample(&scenario, count, summary),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn overrides(a: &ScenarioArgs) -> Overrides {
    Overrides {
        rate: a.rate,
        concurrency: a.concurrency,
        duration_s: a.duration,
        warmup_s: a.warmup,
        seed: a.seed,
        max_requests: a.max_requests,
        timeout_s: a.timeout,
        slo_ttft_ms: a.slo_ttft_ms,
        slo_tpot_ms: a.slo_tpot_ms,
        set: a.set.clone(),
    }
}

fn cmd_run(a: RunArgs) -> Result<(), String> {
    let plan = scenario::load(&a.scenario.scenario, &overrides(&a.scenario))?;
    let mut opts = RunOptions::new(&a.target);
    opts.model = a.model;
    opts.label = a.label;
    opts.headers = a.headers;
    opts.path = a.path;
    opts.backend_metrics = a.backend_metrics;
    opts.scrape_interval =
        (a.scrape_interval_ms > 0).then(|| Duration::from_millis(a.scrape_interval_ms));
    opts.progress = !a.quiet;
    let rep = run_blocking(&plan, &opts, a.threads)?;
    if let Some(out) = &a.out {
        let json = serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?;
        std::fs::write(out, json + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
    }
    if let Some(p) = &a.plot {
        write_plot(std::slice::from_ref(&rep), p, None)?;
    }
    print!("{}", report::table(std::slice::from_ref(&rep)));
    for n in &rep.notes {
        println!("note: {n}");
    }
    Ok(())
}

fn read_reports(files: &[PathBuf]) -> Result<Vec<Report>, String> {
    if files.is_empty() {
        return Err("no result files given".into());
    }
    let mut reps = Vec::with_capacity(files.len());
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let r: Report = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        reps.push(r);
    }
    Ok(reps)
}

fn write_plot(reps: &[Report], out: &PathBuf, title: Option<&str>) -> Result<(), String> {
    let title = match (title, reps.first()) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => match &r.plan.description {
            Some(d) => format!("{}: {d}", r.plan.name),
            None => r.plan.name.clone(),
        },
        (None, None) => String::new(),
    };
    std::fs::write(out, tollgate_loadtest::plot::svg(reps, &title))
        .map_err(|e| format!("{}: {e}", out.display()))
}

fn cmd_plot(files: &[PathBuf], out: &PathBuf, title: Option<&str>) -> Result<(), String> {
    let reps = read_reports(files)?;
    write_plot(&reps, out, title)?;
    eprintln!("tollgate-loadtest: wrote {}", out.display());
    Ok(())
}

fn cmd_table(files: &[PathBuf], backends: bool) -> Result<(), String> {
    let reps = read_reports(files)?;
    print!("{}", report::table(&reps));
    if backends {
        for r in &reps {
            println!("\n**{}** per backend:\n", r.label);
            print!("{}", report::backend_table(r));
        }
    }
    Ok(())
}

fn cmd_sample(a: &ScenarioArgs, count: u64, summary: bool) -> Result<(), String> {
    let plan = scenario::load(&a.scenario, &overrides(a))?;
    let w = Workload::build(&plan.workload, plan.seed);
    let (mut sum_in, mut sum_out, mut max_in, mut bytes) = (0u64, 0u64, 0u32, 0u64);
    for i in 0..count {
        let p = w.request(i);
        sum_in += u64::from(p.prompt_tokens);
        sum_out += u64::from(p.max_tokens);
        max_in = max_in.max(p.prompt_tokens);
        let sys_len = p.system.as_ref().map_or(0, |s| s.len());
        let history_len: usize = p.history.iter().map(|(u, a)| u.len() + a.len()).sum();
        bytes += (sys_len + history_len + p.user.len()) as u64;
        if !summary {
            let head: String = p.user.chars().take(60).collect();
            println!(
                "{i}\tgroup={}\tprompt_tokens={}\tmax_tokens={}\tsystem_bytes={sys_len}\thistory_turns={}\tuser={head:?}",
                p.group.map_or_else(|| "-".to_string(), |g| g.to_string()),
                p.prompt_tokens,
                p.max_tokens,
                p.history.len(),
            );
        }
    }
    let n = count.max(1) as f64;
    println!(
        "requests={count} mean_prompt_tokens={:.1} max_prompt_tokens={max_in} mean_max_tokens={:.1} bytes_per_token={:.2}",
        sum_in as f64 / n,
        sum_out as f64 / n,
        bytes as f64 / sum_in.max(1) as f64
    );
    Ok(())
}

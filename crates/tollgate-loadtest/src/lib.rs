//! tollgate-loadtest: an LLM-aware load generator for tollgate's benchmarks.
//!
//! It drives OpenAI `POST /v1/chat/completions` (streaming or not) with seeded, generated
//! workloads ([`workload`]: fixed lengths, multi-turn sessions, W1 shared prefix, W3
//! ShareGPT-like, W4 heavy tail) on a closed loop
//! or an open-loop schedule ([`arrival`]: Poisson, Gamma, on/off bursts), measures each request
//! from the client side ([`exec`]: TTFT, every inter-token gap, E2E, usage with cached tokens,
//! errors by kind), aggregates them ([`stats`]: HDR percentiles, goodput against SLOs), scrapes
//! the backends' Prometheus metrics before, during and after ([`prom`]: per-backend shares,
//! prefix hit, imbalance CV), and writes JSON plus a Markdown row ([`report`]) and an SVG latency
//! plot ([`plot`]).
//!
//! Layering: `dist`, `text`, `workload`, `arrival`, `http1`, `sse`, `openai`, `stats`, `prom`,
//! `report` and `plot` are pure (bytes and values in, values out) and unit-tested; `client`, `exec`
//! and `run` are the tokio shell around them. Scenario files are parsed by [`scenario`].
//!
//! Entry points: [`scenario::load`] → [`run::run_blocking`] → [`report::table`].
#![deny(missing_docs)]
// A load generator is not tollgate's monoio data path: the workspace bans on `tokio::spawn` and
// std locks (.clippy.toml) guard the gateway's per-core workers. Here tokio is the runtime, and
// the one mutex (the idle-connection stack) is held for a push or a pop, never across an await.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod arrival;
pub mod client;
pub mod dist;
pub mod exec;
pub mod http1;
pub mod openai;
pub mod plot;
pub mod prom;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sse;
pub mod stats;
pub mod text;
pub mod workload;

pub use report::Report;
pub use run::{RunOptions, run, run_blocking};
pub use scenario::{Overrides, Plan};

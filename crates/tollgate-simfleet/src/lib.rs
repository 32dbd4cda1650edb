//! tollgate-simfleet: simulated vLLM / SGLang / MindIE inference servers.
//!
//! tollgate's tests, demo and benchmarks have no GPUs. This crate stands in for the fleet: each
//! simulated backend speaks the exact HTTP, SSE and Prometheus surface of the real server it
//! imitates (see `README.md`), answers either through an iteration-level engine model
//! ([`engine`], model mode) or with precomputed bytes (instant mode, for gateway overhead
//! benchmarks), injects faults on demand ([`fault`]) and records every request it saw
//! ([`RequestRecord`]) so tests can use it as an oracle.
//!
//! Entry point: [`Fleet::start`] with a [`FleetConfig`].
#![deny(missing_docs)]
// The fleet is a tokio test fixture, not tollgate's monoio data path: the workspace bans on
// `tokio::spawn`, `std::thread::sleep` and std locks (.clippy.toml) guard the gateway's per-core
// workers and do not apply here. Locks below are held for a few instructions, never across await.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod config;
pub mod engine;
pub mod fault;
pub mod fleet;
pub mod metrics;
pub mod server;
pub mod tokenizer;

pub use config::{BackendConfig, FleetConfig, Mode};
pub use fault::FaultSpec;
pub use fleet::{BackendInfo, BackendStats, Fleet, Outcome, RequestRecord};

//! tollgate-route: routing without a runtime. Virtual models resolve through ordered route rules
//! to a pool; a pool's policy picks a backend from the control thread's scraped load snapshot and
//! the workers' own in-flight counters (per-worker padded atomic slots, never a lock). Health
//! (passive ejection, active probes) and the backend-kind adapters (metric names, load and health
//! endpoints) live here too. The proxy owns the sockets; this crate owns the decisions, so every
//! policy is unit-tested and benchmarked without a network.
#![deny(missing_docs)]

pub mod adapter;
pub mod facts;
pub mod load;
pub mod model;
pub mod pick;
pub mod prefix;
pub mod resolve;
pub mod state;
pub mod tokens;

pub use facts::{Facts, Headers};
pub use load::{BackendLoad, LoadSnapshot, Scraped};
pub use model::{Policy, Pool, Settings, Split, VirtualModel};
pub use pick::{Ask, Env, Local, Pick, pick};
pub use prefix::PrefixTable;
pub use state::{BackendState, EjectPolicy, InflightGuard, Registry};
pub use tokens::Tokenizer;

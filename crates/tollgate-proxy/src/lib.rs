//! tollgate's data plane: one monoio runtime per core (io_uring, epoll fallback), each with its
//! own SO_REUSEPORT listeners, upstream pools and metrics; the request pipeline as explicit
//! phases (`pipeline::handle`); the admin listener; and the control operations (reload, drain).
//! See ARCHITECTURE.md for the shape and README.md for configuration.
#![deny(missing_docs)]

mod access_log;
mod admin;
mod conn;
mod control;
mod inbound;
mod metrics;
pub mod pipeline;
pub mod routing;
pub mod scrape;
mod server;
mod shutdown;
mod snapshot;
mod tls;
mod upstream;
mod worker;

pub use server::{ServerHandle, Shared, start};
pub use snapshot::{Snapshot, build_snapshot};

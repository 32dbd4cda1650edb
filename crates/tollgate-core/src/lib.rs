//! Vocabulary shared by every tollgate crate: the error model, request ids and the names of the
//! request-pipeline phases. No I/O and no async runtime here, so every crate above can use it and
//! stay unit-testable on its own.
#![deny(missing_docs)]

pub mod error;
pub mod id;
pub mod locate;
pub mod phase;

pub use error::{Error, ErrorKind, Side};
pub use id::RequestIdGen;
pub use phase::Phase;

//! Server-sent events for the data path, without a runtime.
//!
//! The gateway relays `text/event-stream` bodies from upstream LLM servers. It needs to see each
//! event (to count tokens, spot `[DONE]`, inject an error event) while forwarding the original
//! bytes untouched whenever it has no reason to rewrite them. This crate is the byte-level half of
//! that: it takes bytes and returns values, so it can be fuzzed, property-tested and benchmarked
//! without sockets (STYLE.md §2).
//!
//! - [`decoder`]: incremental, zero-copy, bounded-memory SSE frame decoder.
//! - [`encode`]: builders for the frames the gateway writes itself.
//! - [`openai`]: cheap inspection of OpenAI-style stream chunks (usage, finish, content length).
//! - [`check`]: the split-equals-whole reference property shared by proptest, the fuzz target
//!   and the corpus replay test.
#![deny(missing_docs)]

pub mod check;
pub mod decoder;
pub mod encode;
pub mod openai;

pub use decoder::{Decoder, Frame, SseError};
pub use encode::{data_frame, done_frame, error_event};
pub use openai::{
    ChunkInfo, FinishReason, Usage, inspect_chunk, synth_usage_chunk, usage_from_body,
};

//! Test support (the `testing` feature): an in-memory store ([`MemoryStore`]) with the same
//! semantics as the SQL stores, and the store conformance suite every store runs
//! ([`conformance`]).

pub mod conformance;
mod memory;

pub use memory::{MemoryStore, MemoryUsers, scopes};

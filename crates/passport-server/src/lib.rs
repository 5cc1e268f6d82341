//! The standalone Passport server: the `passport` command line and the HTTP application it
//! serves. The binary in `main.rs` is a thin wrapper; tests and embedders use [`app`] directly.

pub mod app;
pub mod cli;
pub mod commands;

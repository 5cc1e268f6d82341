//! End-to-end tests of the standalone server and the CLI. One test binary (fast linking on two
//! cores); each module drives one area through HTTP or the command line. A test that runs on
//! every backend is written once with `backend_test!` and comes out as `NAME_sqlite` and
//! `NAME_postgres`; the PostgreSQL one does nothing unless `PASSPORT_TEST_DATABASE_URL` is set.
//! MySQL gets one smoke test of its own (`mysql.rs`, with `PASSPORT_TEST_MYSQL_URL`), not a
//! copy of every test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// First, so that its `backend_test!` is in scope in every module after it.
#[macro_use]
mod common;

mod authorize;
mod bad_input;
mod browser;
mod cache;
mod cli;
mod client_assertion;
mod connections;
mod device;
mod discovery;
mod dpop;
mod e2e;
mod fapi;
mod fleet;
mod guard;
mod hardening;
mod introspection;
mod keys;
mod laravel;
mod metrics;
mod modern_client;
#[cfg(feature = "mysql")]
mod mysql;
mod oidc;
mod par;
mod rate_limit;
mod registration;
mod relying_party;
mod selfservice;
mod support_browser;
mod support_web;
mod token;

//! End-to-end tests of the standalone server and the CLI. One test binary (fast linking on two
//! cores); each module drives one area through HTTP or the command line, on SQLite and, when
//! `PASSPORT_TEST_DATABASE_URL` is set, on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authorize;
mod bad_input;
mod browser;
mod cli;
mod common;
mod device;
mod e2e;
mod guard;
mod rate_limit;
mod selfservice;
mod support_browser;
mod support_web;
mod token;

//! The `spicehub` package's integration tests, in one binary (one link
//! instead of one per file): the real binary over HTTP and as a command
//! line, against the Azure DevOps emulator, on SQLite and, when
//! `SPICEHUB_TEST_POSTGRES_URL` is set, PostgreSQL.

mod common;

mod admin;
mod auth;
mod branches;
mod cli;
mod federated;
mod graphs;
mod hardening;
mod refusals;
mod removal;
mod secrets_in_logs;
mod sync;
mod viewer;
mod webhook;

//! The hub's domain, below the web layer and the binary: configuration
//! (`config`), secrets at rest (`crypto`), accounts and sign-in (`auth`),
//! the database with the job queue's SQL (`db`), the sync engine (`sync`),
//! drawing registries (`graph`) and what an admin does (`admin`). [`Hub`]
//! ties them together once, for the server and every CLI command alike.

pub mod admin;
pub mod auth;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod db;
pub mod graph;
pub mod hub;
pub mod issuer;
pub mod sync;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use hub::{Hub, HubError};

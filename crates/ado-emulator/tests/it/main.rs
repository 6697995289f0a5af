//! The Entra ID + Azure DevOps emulator over real HTTP: token endpoint,
//! authorization answers, the Git API on real repositories, faults, TSTU
//! rate limiting, webhooks, the demo dataset, and conformance with
//! Microsoft's examples.
//! One test binary for all of it: each binary links the whole crate.

mod common;
mod conformance;
mod demo;
mod devops_auth;
mod faults;
mod federated;
mod git_api;
mod rate_limit;
mod token;
mod webhook;

//! The Azure DevOps client and token manager: Microsoft's example payloads,
//! the emulator over real HTTP, and wire quirks from a canned server.

mod against_emulator;
mod common;
mod rate_limit;
mod vectors;
mod wire_quirks;

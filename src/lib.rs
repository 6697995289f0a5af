//! The `spicehub` binary's own layer: the command line (`cli`) and the HTTP
//! server (`server`: router, middleware, webhook, metrics, consent). It is
//! the composition root; everything below lives in the workspace's crates
//! (`ARCHITECTURE.md` has the map). The library target exists so this
//! package's integration tests can start the server in-process.

pub mod cli;
pub mod server;

//! The sync engine end to end: the real `spicehub serve` binary replicates
//! repositories from the Azure DevOps emulator over real HTTP, on SQLite
//! and (when configured) PostgreSQL. The emulator's request log shows what
//! was fetched; the database shows what readers see.

mod harness;

mod batching;
mod crash;
mod facts;
mod faults;
mod flows;
mod instances;
mod lfs;
mod prelayout;
mod robustness;

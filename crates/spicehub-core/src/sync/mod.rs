//! The sync engine. Webhook deliveries, admin actions and the periodic
//! reconcile enqueue jobs on a durable queue in the database (`queue`);
//! runners on any hub instance claim them with a lease (`runner`) and hand
//! them to the `engine`, which fetches from Azure DevOps (through `crate::connections`), stages
//! the kept files (`files`) as a new snapshot, parses it (a full sync
//! parses each file as it is stored: `prepare`) and switches the
//! repository to it atomically. `reconcile` catches up missed webhooks and
//! `hooks` creates and repairs service hook subscriptions; `retention`
//! prunes what piles up and cleans the work directory at start;
//! `prelayout` lays out each registry's views once a job has switched its
//! repository to a new commit.

pub mod engine;
pub mod files;
pub mod hooks;
pub mod prelayout;
pub mod prepare;
/// The job queue's SQL lives with the rest of the database code
/// (`db::queue`); the sync engine is its main user.
pub use crate::db::queue;
pub mod reconcile;
pub mod retention;
pub mod runner;

pub use queue::{Job, JobKind, JobStatus, Lease, NewJob, Queue, QueueConfig, QueueError};

//! The sync engine: a durable job queue in the database (`queue`). Webhook
//! deliveries, admin actions and the periodic reconcile enqueue jobs; runners
//! on any hub instance claim them with a lease. Fetching and applying the
//! repository contents is not implemented yet; `runner` is the loop that
//! will run it (a skeleton, not started by `serve`).

pub mod queue;
pub mod runner;

pub use queue::{Job, JobKind, JobStatus, NewJob, Queue, QueueConfig, QueueError};

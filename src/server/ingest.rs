//! Group commit for webhook deliveries. Every delivery must be durable
//! before its 200 (Azure DevOps does not resend a delivery it saw
//! succeed), and on SQLite a durable commit is one fsync that only one
//! writer at a time can do. So the handlers hand their records to one
//! writer task per instance, which commits whatever has queued up meanwhile
//! in a single transaction and then answers each handler. Under load a
//! batch grows to absorb it; alone, a delivery is committed at once.

use tokio::sync::{mpsc, oneshot};

use spicehub_core::db::deliveries::{Decision, NewDelivery, Recorded};
use spicehub_core::db::Db;
use spicehub_core::sync::queue::NewJob;
use spicehub_core::sync::JobKind;

/// Most deliveries committed together; bounds one transaction's size.
const MAX_BATCH: usize = 256;
/// Handlers waiting for the writer; beyond this they wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// A delivery to record, owned so that it can cross to the writer task.
pub struct PendingDelivery {
    pub provider_id: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub repository_id: Option<String>,
    pub ref_name: Option<String>,
    pub new_commit: Option<String>,
    pub body: String,
    pub action: PendingAction,
}

pub enum PendingAction {
    Ignore(String),
    /// Enqueue a job of this kind for `repository_id`.
    Enqueue(JobKind),
}

impl PendingDelivery {
    fn borrowed(&self) -> (NewDelivery<'_>, Decision<'_>) {
        let delivery = NewDelivery {
            provider_id: &self.provider_id,
            event_id: self.event_id.as_deref(),
            event_type: self.event_type.as_deref(),
            repository_id: self.repository_id.as_deref(),
            ref_name: self.ref_name.as_deref(),
            new_commit: self.new_commit.as_deref(),
            body: &self.body,
        };
        let decision = match (&self.action, self.repository_id.as_deref()) {
            (PendingAction::Enqueue(kind), Some(repository_id)) => Decision::Enqueue(NewJob {
                repository_id,
                kind: *kind,
                target_commit: self.new_commit.as_deref(),
                delivery_id: None,
            }),
            (PendingAction::Ignore(reason), _) => Decision::Ignore(reason.clone()),
            (PendingAction::Enqueue(_), None) => Decision::Ignore("nothing to do".into()),
        };
        (delivery, decision)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The database refused the write (logged by the writer, with the cause).
    #[error("the delivery could not be recorded")]
    NotRecorded,
    #[error("the delivery writer has stopped")]
    Stopped,
}

struct Pending {
    delivery: PendingDelivery,
    reply: oneshot::Sender<Result<Recorded, IngestError>>,
}

/// The handlers' side of the writer.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Pending>,
}

impl Ingest {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db, max_attempts: i64) -> Ingest {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(writer(db, max_attempts, rx));
        Ingest { tx }
    }

    /// Records the delivery (and its job) and returns once it is committed.
    pub async fn record(&self, delivery: PendingDelivery) -> Result<Recorded, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { delivery, reply })
            .await
            .map_err(|_| IngestError::Stopped)?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }
}

async fn writer(db: Db, max_attempts: i64, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let items = batch.iter().map(|p| p.delivery.borrowed()).collect();
        match db.record_deliveries(items, max_attempts).await {
            Ok(recorded) => {
                for (p, r) in batch.drain(..).zip(recorded) {
                    // A handler that went away (client hung up) needs no answer.
                    let _ = p.reply.send(Ok(r));
                }
            }
            Err(e) if batch.len() == 1 => {
                tracing::error!(error = %e, "webhook: cannot record the delivery");
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(IngestError::NotRecorded));
                }
            }
            Err(e) => {
                // One bad record must not cost the others theirs: retry
                // each on its own.
                tracing::warn!(error = %e, size = batch.len(), "webhook: batch failed; recording one by one");
                for p in batch.drain(..) {
                    let (delivery, decision) = p.delivery.borrowed();
                    let r = db.record_delivery(&delivery, decision, max_attempts).await;
                    let r = r.map_err(|e| {
                        tracing::error!(error = %e, "webhook: cannot record the delivery");
                        IngestError::NotRecorded
                    });
                    let _ = p.reply.send(r);
                }
            }
        }
    }
}

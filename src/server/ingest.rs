//! Group commit for webhook deliveries. Every delivery must be durable
//! before its 200 (Azure DevOps does not resend a delivery it saw
//! succeed), and on SQLite a durable commit is one fsync that only one
//! writer at a time can do. So the handlers hand their records to one
//! writer task per instance, which commits whatever has queued up meanwhile
//! in a single transaction and then answers each handler. Under load a
//! batch grows to absorb it; alone, a delivery is committed at once.
//!
//! The writer is supervised: if it ever stops (a panic), it is started
//! again on the same queue, and `/healthz` reports it meanwhile, so the hub
//! never answers every delivery 503 while saying it is healthy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

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
    health: Arc<WriterHealth>,
}

/// What `/healthz` reads about the writer.
#[derive(Default)]
pub struct WriterHealth {
    running: AtomicBool,
    restarts: AtomicU64,
    /// The running writer, so a test can make it die like a panic would.
    current: parking_lot::Mutex<Option<tokio::task::AbortHandle>>,
}

impl WriterHealth {
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// Pause before a writer that died is started again, so a writer that
/// dies at once does not spin.
const RESTART_DELAY: Duration = Duration::from_millis(200);

impl Ingest {
    /// Starts the supervised writer task on the current runtime.
    pub fn start(db: Db, max_attempts: i64) -> Ingest {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let health = Arc::new(WriterHealth::default());
        tokio::spawn(supervise(
            db,
            max_attempts,
            Arc::new(Mutex::new(rx)),
            health.clone(),
        ));
        Ingest { tx, health }
    }

    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    /// Stops the running writer as a panic would (tests only).
    #[cfg(test)]
    fn kill_writer(&self) {
        if let Some(handle) = self.health.current.lock().take() {
            handle.abort();
        }
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

async fn supervise(
    db: Db,
    max_attempts: i64,
    rx: Arc<Mutex<mpsc::Receiver<Pending>>>,
    health: Arc<WriterHealth>,
) {
    loop {
        let task = tokio::spawn(writer(db.clone(), max_attempts, rx.clone()));
        *health.current.lock() = Some(task.abort_handle());
        health.running.store(true, Ordering::Release);
        let ended = task.await;
        health.running.store(false, Ordering::Release);
        match ended {
            // Every sender is gone: the server has stopped.
            Ok(()) => return,
            Err(e) => {
                health.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "webhook: the delivery writer stopped; starting it again");
                tokio::time::sleep(RESTART_DELAY).await;
            }
        }
    }
}

async fn writer(db: Db, max_attempts: i64, rx: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    // Held for the writer's life; a writer that dies releases it (tokio's
    // mutex is not poisoned) for the next one. The deliveries of a batch
    // that was being written are answered 503 (their reply senders drop),
    // which Azure DevOps retries.
    let mut rx = rx.lock().await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_core::testing::TestDb;

    fn delivery(provider_id: &str, n: usize) -> PendingDelivery {
        PendingDelivery {
            provider_id: provider_id.to_owned(),
            event_id: Some(format!("event-{n}")),
            event_type: Some("git.push".into()),
            repository_id: None,
            ref_name: None,
            new_commit: None,
            body: "{}".into(),
            action: PendingAction::Ignore("test".into()),
        }
    }

    #[tokio::test]
    async fn a_writer_that_dies_is_started_again_and_reported_meanwhile() {
        for test_db in TestDb::all().await {
            let db = test_db.open().await;
            let dir = tempfile::tempdir().expect("dir");
            let key = spicehub_core::crypto::SecretKey::load_or_generate(&dir.path().join("k"))
                .expect("key");
            let provider = db
                .create_provider(
                    &key,
                    &spicehub_core::db::providers::NewProvider {
                        display_name: "p",
                        tenant_id: "11111111-2222-4333-8444-555555555555",
                        client_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                        credential_kind: spicehub_core::db::providers::CredentialKind::ClientSecret,
                        credential: b"client~secret",
                        webhook_username: "hook",
                        webhook_password: "Zx8-webhook-password-0123456789",
                        secret_expires_at: None,
                    },
                )
                .await
                .expect("provider")
                .id;
            let ingest = Ingest::start(db.clone(), 5);
            ingest.record(delivery(&provider, 1)).await.expect("first");
            assert!(ingest.health().running());

            ingest.kill_writer();
            // Reported while it is down...
            let mut seen_down = false;
            for _ in 0..100 {
                if !ingest.health().running() {
                    seen_down = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(seen_down, "{}: health shows the dead writer", test_db.label);
            // ...and deliveries are recorded again once it is back.
            ingest
                .record(delivery(&provider, 2))
                .await
                .expect("recorded after the restart");
            assert!(ingest.health().running());
            assert_eq!(ingest.health().restarts(), 1, "{}", test_db.label);
        }
    }
}

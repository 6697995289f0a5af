//! Webhook deliveries refused for their credentials, counted in memory and
//! added to the database every [`FLUSH_EVERY`] (`Db::add_webhook_refusals`)
//! and once more at shutdown. A flood of wrong passwords therefore costs at
//! most one write per provider (plus one for unknown user names) per
//! interval, however many requests it has; the memory held is one entry
//! per provider plus one, since the key is a provider id the hub knows.
//! Only counts, times and the client address are kept: never the password
//! or the body.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use spicehub_core::db::refusals::Refusals;
use spicehub_core::db::Db;

/// How long counts wait in memory before they are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

pub struct RefusalLog {
    db: Db,
    /// Keyed by provider id; `None`: a user name no provider uses.
    pending: Mutex<HashMap<Option<String>, Refusals>>,
}

impl RefusalLog {
    pub fn new(db: Db) -> RefusalLog {
        RefusalLog {
            db,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one refusal. `provider_id` must come from the hub's own list
    /// of providers (never from the request), which is what bounds the map.
    pub fn record(&self, provider_id: Option<String>, client: IpAddr) {
        let now = spicehub_core::db::now();
        let attempt = Refusals {
            provider_id: provider_id.clone(),
            attempts: 1,
            first_at: now,
            last_at: now,
            last_address: client.to_string(),
        };
        self.pending
            .lock()
            .entry(provider_id)
            .and_modify(|r| r.merge(&attempt))
            .or_insert(attempt);
    }

    /// Writes what was counted since the last flush. What cannot be written
    /// (database down) goes back to be tried again next time.
    pub async fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock());
        for (key, delta) in pending {
            if let Err(e) = self.db.add_webhook_refusals(&delta).await {
                tracing::warn!(error = %e, "could not record refused webhook deliveries; will retry");
                self.pending
                    .lock()
                    .entry(key)
                    .and_modify(|r| r.merge(&delta))
                    .or_insert(delta);
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`], and once more when `shutdown` turns
    /// true (after the last request was answered), then ends.
    pub fn start(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => log.flush().await,
                    changed = shutdown.changed() => {
                        if changed.is_err() || *shutdown.borrow() {
                            log.flush().await;
                            return;
                        }
                    }
                }
            }
        })
    }
}

//! Layouts ready before anyone asks: once a sync job has switched a
//! repository to a new commit, each of its registries' default views (and
//! their full views, up to [`MAX_FULL_NODES`] nodes) are laid out in the
//! background and stored in the layout cache, so the first visitor of a
//! registry never waits for `dot`.
//!
//! The work is bounded: one worker per hub instance, one registry at a
//! time, one `dot` at a time (view building and packing on the blocking
//! pool). Scheduling only marks the repository as pending, so a sync job's
//! completion never waits for it. A repository scheduled again while its
//! registries are being laid out (a newer commit arrived) supersedes that
//! work: the `dot` run in progress is killed and the worker starts over
//! with whatever commit is visible then.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use super::queue::Job;
use super::runner::{JobFailure, JobHandler, Progress};
use crate::db::Db;
use crate::graph::{prelayout_registry, GraphError, Layouter};

/// Full views up to this many nodes are laid out ahead too: `dot` takes
/// seconds on them, and the viewer offers the full view one click away.
pub const MAX_FULL_NODES: usize = 5_000;

#[derive(Default)]
struct Shared {
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
    /// Bumped by every [`Prelayouter::schedule`]: what a layout in progress
    /// watches to notice that its repository was scheduled again.
    scheduled: watch::Sender<u64>,
    /// Repositories whose registries were all gone through (tests wait on it).
    finished: watch::Sender<u64>,
    /// Views computed so far.
    computed: AtomicU64,
}

/// The handle that schedules work for the background worker. Cheap to
/// clone; clones share the worker.
#[derive(Clone)]
pub struct Prelayouter {
    shared: Arc<Shared>,
}

/// Why the layouts of a repository were not all made.
enum Stop {
    Superseded,
    Failed(GraphError),
}

impl From<GraphError> for Stop {
    fn from(e: GraphError) -> Self {
        Stop::Failed(e)
    }
}

impl From<crate::db::DbError> for Stop {
    fn from(e: crate::db::DbError) -> Self {
        Stop::Failed(e.into())
    }
}

impl Prelayouter {
    /// Starts the worker, which lays out with `layouter` until `shutdown`
    /// turns true.
    pub fn start(
        db: Db,
        layouter: Layouter,
        mut shutdown: watch::Receiver<bool>,
    ) -> (Prelayouter, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared::default());
        let handle = Prelayouter {
            shared: shared.clone(),
        };
        let worker = tokio::spawn(async move {
            loop {
                let next = shared.pending.lock().pop_first();
                let Some(repository) = next else {
                    // `notify_one` keeps a permit, so a schedule between
                    // the pop and this wait is not missed.
                    tokio::select! {
                        _ = shared.wake.notified() => continue,
                        _ = shutdown.changed() => return,
                    }
                };
                if *shutdown.borrow() {
                    return;
                }
                tokio::select! {
                    _ = prepare(&shared, &db, &layouter, &repository) => {},
                    // Dropping the work kills its dot.
                    _ = shutdown.changed() => return,
                }
            }
        });
        (handle, worker)
    }

    /// Lays out `repository_id`'s visible commit when the worker gets to
    /// it; returns at once.
    pub fn schedule(&self, repository_id: &str) {
        self.shared.pending.lock().insert(repository_id.to_owned());
        self.shared.scheduled.send_modify(|n| *n += 1);
        self.shared.wake.notify_one();
    }

    /// How many repositories the worker has gone through (laid out, found
    /// cached, or given up on after an error); not those superseded.
    pub fn finished(&self) -> u64 {
        *self.shared.finished.borrow()
    }

    /// Waits until [`Prelayouter::finished`] reaches `n`.
    pub async fn wait_finished(&self, n: u64) {
        let mut rx = self.shared.finished.subscribe();
        // Only fails when the sender is gone, and `self` holds it.
        let _ = rx.wait_for(|done| *done >= n).await;
    }

    /// Views laid out so far.
    pub fn computed(&self) -> u64 {
        self.shared.computed.load(Ordering::Relaxed)
    }
}

/// Lays out every registry of `repository`'s visible commit, one at a time,
/// unless it is scheduled again meanwhile.
async fn prepare(shared: &Shared, db: &Db, layouter: &Layouter, repository: &str) {
    let mut scheduled = shared.scheduled.subscribe();
    scheduled.mark_unchanged();
    let superseded = async {
        loop {
            if scheduled.changed().await.is_err() {
                // The handle is gone with the hub: nothing supersedes.
                std::future::pending::<()>().await;
            }
            if shared.pending.lock().contains(repository) {
                return;
            }
        }
    };
    let work = async {
        let Some(commit) = db.visible_commit(repository).await? else {
            return Ok(());
        };
        for summary in db.repository_registries(repository).await? {
            let registry = &summary.registry.id;
            match prelayout_registry(db, layouter, repository, &commit, registry, MAX_FULL_NODES)
                .await
            {
                Ok(n) => {
                    let n = n.unwrap_or(0) as u64;
                    shared.computed.fetch_add(n, Ordering::Relaxed);
                }
                // One registry too big for the time limit does not keep
                // the others from being ready; its visitor will wait.
                Err(e) => tracing::warn!(
                    repository, commit = %commit, registry, error = %e,
                    "cannot lay out a registry ahead"
                ),
            }
        }
        Ok::<(), Stop>(())
    };
    let outcome = tokio::select! {
        done = work => done,
        _ = superseded => Err(Stop::Superseded),
    };
    match outcome {
        Ok(()) => {}
        Err(Stop::Superseded) => {
            tracing::debug!(repository, "layouts ahead superseded by a newer sync");
            return;
        }
        Err(Stop::Failed(e)) => {
            tracing::warn!(repository, error = %e, "cannot lay out the registries ahead");
        }
    }
    shared.finished.send_modify(|n| *n += 1);
}

/// A job handler that schedules the layouts of a repository once `inner`
/// has run a job for it successfully (a sync, a re-parse: anything that
/// may have made a new graph visible; when nothing changed, every view is
/// found cached and no `dot` runs).
pub struct WithPrelayout<H> {
    inner: Arc<H>,
    prelayouter: Prelayouter,
}

impl<H> WithPrelayout<H> {
    pub fn new(inner: Arc<H>, prelayouter: Prelayouter) -> Self {
        WithPrelayout { inner, prelayouter }
    }
}

#[async_trait::async_trait]
impl<H: JobHandler> JobHandler for WithPrelayout<H> {
    async fn run(&self, job: &Job, progress: &Progress) -> Result<(), JobFailure> {
        let outcome = self.inner.run(job, progress).await;
        if outcome.is_ok() {
            self.prelayouter.schedule(&job.repository_id);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::graph::{get_or_compute_layout, views, View, DEFAULT_COLLAPSE_THRESHOLD};
    use crate::testing::TestDb;
    use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};

    /// A registry of `n` entries in modules of 50, each entry depending on
    /// one or two before it: connected, so each view is a `dot` run.
    fn add_registry(graph: &mut Graph, id: &str, n: usize) {
        graph.registries.push(Registry {
            id: id.into(),
            label: id.into(),
            file: format!("{id}/registry.py"),
            line: 1,
        });
        for i in 0..n {
            graph.entries.push(Entry {
                registry: id.into(),
                name: format!("e{i}"),
                kind: EntryKind::Function,
                target: format!("{id}.m{}.e{i}", i / 50),
                file: format!("{id}/m{}.py", i / 50),
                line: 1,
                doc: None,
            });
            for back in [1 + i % 3, 1 + (i * 7) % 31] {
                if back <= i {
                    graph.edges.push(Edge {
                        registry: id.into(),
                        from: format!("e{}", i - back),
                        to: format!("e{i}"),
                        kind: EdgeKind::Parameter,
                        dangling: false,
                    });
                }
            }
        }
    }

    /// A small registry (opens with its full view) and one above the
    /// collapse threshold (opens collapsed; its full view is laid out too).
    fn two_registries() -> Graph {
        let mut graph = Graph::default();
        add_registry(&mut graph, "small", 20);
        add_registry(&mut graph, "big", DEFAULT_COLLAPSE_THRESHOLD + 100);
        graph.sort();
        graph
    }

    async fn within<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
        match tokio::time::timeout(Duration::from_secs(120), work).await {
            Ok(value) => value,
            Err(_) => panic!("{what} took over two minutes"),
        }
    }

    /// The views a visitor opens each registry of `commit` with, laid out
    /// by `visitor`.
    async fn open_default_views(db: &Db, visitor: &Layouter, commit: &str) -> usize {
        let mut opened = 0;
        let registries = db.repository_registries("repo").await.expect("registries");
        assert_eq!(registries.len(), 2);
        for summary in registries {
            let id = &summary.registry.id;
            let graph = db
                .registry_graph("repo", commit, id)
                .await
                .expect("graph")
                .expect("registry");
            let nodes = views::full(&graph).nodes.len();
            let default = View::default_for(nodes, DEFAULT_COLLAPSE_THRESHOLD);
            for view in [default, View::Full] {
                let layout = get_or_compute_layout(db, visitor, "repo", commit, id, &view)
                    .await
                    .expect("layout")
                    .expect("registry");
                assert!(!layout.nodes.is_empty());
                opened += 1;
            }
        }
        opened
    }

    #[tokio::test]
    async fn after_a_switch_every_registry_opens_without_dot() {
        for t in TestDb::all().await {
            let db = t.open().await;
            db.store_graph("repo", "c1", &two_registries())
                .await
                .expect("store");
            let background = Layouter::new();
            let (stop, shutdown) = watch::channel(false);
            let (prelayouter, worker) =
                Prelayouter::start(db.clone(), background.clone(), shutdown);
            prelayouter.schedule("repo");
            within("laying out ahead", prelayouter.wait_finished(1)).await;
            // small: full; big: collapsed and full.
            assert_eq!(background.runs(), 3, "{}", t.label);
            assert_eq!(prelayouter.computed(), 3);

            let visitor = Layouter::new();
            let before = crate::graph::dot_runs_total();
            assert_eq!(open_default_views(&db, &visitor, "c1").await, 4);
            assert_eq!(visitor.runs(), 0, "a visitor waited for dot on {}", t.label);
            println!(
                "{}: dot runs while opening every registry after the sync: {}",
                t.label,
                visitor.runs()
            );
            // Other tests of this process run dot meanwhile: only the
            // visitor's own count is exact, the total only bounds it.
            assert!(crate::graph::dot_runs_total() >= before);

            // Scheduled again with nothing new: found cached, no dot.
            prelayouter.schedule("repo");
            within("checking the cache", prelayouter.wait_finished(2)).await;
            assert_eq!(background.runs(), 3, "{}", t.label);

            let _ = stop.send(true);
            within("stopping", worker).await.expect("worker");
            db.close().await;
        }
    }

    /// A `dot` that takes a second before it starts working.
    fn slow_dot(dir: &Path) -> PathBuf {
        let real = which_dot();
        let script = dir.join("dot");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nsleep 1\nexec '{}' \"$@\"\n", real.display()),
        )
        .expect("write script");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script
    }

    fn which_dot() -> PathBuf {
        let path = std::env::var_os("PATH").expect("PATH");
        std::env::split_paths(&path)
            .map(|d| d.join("dot"))
            .find(|p| p.is_file())
            .expect("Graphviz installed for the tests")
    }

    #[tokio::test]
    async fn a_newer_commit_supersedes_the_layouts_in_progress() {
        let t = TestDb::sqlite();
        let db = t.open().await;
        db.store_graph("repo", "c1", &two_registries())
            .await
            .expect("store");
        let dir = tempfile::tempdir().expect("temp dir");
        let background = Layouter::new().with_dot(slow_dot(dir.path()));
        let (_stop, shutdown) = watch::channel(false);
        let (prelayouter, _worker) = Prelayouter::start(db.clone(), background.clone(), shutdown);
        prelayouter.schedule("repo");
        within("the first dot run", async {
            while background.runs() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // A sync switches to c2 while c1's first registry is in dot.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        db.store_graph("repo", "c2", &two_registries())
            .await
            .expect("store");
        prelayouter.schedule("repo");
        within("laying out c2", prelayouter.wait_finished(1)).await;
        let cached = |commit: &'static str, view: View| {
            let db = db.clone();
            async move {
                let mut n = 0;
                for registry in ["small", "big"] {
                    if db
                        .cached_layout("repo", commit, registry, &view.key())
                        .await
                        .expect("cache")
                        .is_some()
                    {
                        n += 1;
                    }
                }
                n
            }
        };
        assert_eq!(cached("c2", View::Full).await, 2);
        assert_eq!(cached("c2", View::Collapsed).await, 1);
        // c1 was given up at its first dot run (a second into it): at
        // most that one layout was stored, not the three.
        assert!(cached("c1", View::Full).await + cached("c1", View::Collapsed).await <= 1);
        // c2's three runs, and c1's: one or two started.
        assert!(
            (4..=5).contains(&background.runs()),
            "{}",
            background.runs()
        );
        db.close().await;
    }
}

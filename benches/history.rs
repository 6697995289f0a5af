//! Registries through time: what history costs. Not a timed test: it
//! prints figures, on SQLite (and on PostgreSQL too when
//! `SPICEHUB_TEST_POSTGRES_URL` is set).
//!
//! - A 10,000-file repository (one registry, one entry per file, a few
//!   hundred edges): the first commit, then 100 commits that each change
//!   one file (an entry moved a line, every tenth a docstring), recorded as
//!   the sync engine records them. Printed: the history's bytes after one
//!   commit and after 101, the bytes each further commit added, the time to
//!   record one, and the SQLite file's size (after VACUUM) against the same
//!   database holding one commit.
//! - The demo repository (`data_pipeline`), parsed, then the push of the
//!   browser test (`admin.history.spec.ts`) applied and parsed again.
//! - The time to open a diff (two kept graphs read, compared, both drawn
//!   together by `dot` and marked): the diff view's server function, on
//!   the 10,000-entry registry (changed only, its default there) and on the
//!   demo.
//!
//! `cargo bench --bench history`.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use spicehub_core::db::Db;
use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};
use spicehub_web::api::viewer::timeline::registry_diff;
use spicehub_web::api::viewer::{DiffRequest, Drawing};

const FILES: usize = 10_000;
const PUSHES: usize = 100;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn kib(bytes: i64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn big_registry() -> Graph {
    let reg = Registry {
        id: "bench.registry".into(),
        label: "registry".into(),
        file: "bench/registry.py".into(),
        line: 1,
    };
    let entries = (0..FILES)
        .map(|i| Entry {
            registry: reg.id.clone(),
            name: format!("step_{i:05}"),
            kind: EntryKind::Function,
            target: format!("bench.p{:02}.m{i:05}.step_{i:05}", i / 100),
            file: format!("bench/p{:02}/m{i:05}.py", i / 100),
            line: 4,
            doc: Some(format!("Step {i} of the nightly run.")),
        })
        .collect();
    // A chain every hundred entries: real registries are mostly
    // unconnected, with a few pipelines.
    let edges = (1..FILES)
        .filter(|i| i % 100 != 0 && i % 100 < 4)
        .map(|i| Edge {
            registry: reg.id.clone(),
            from: format!("step_{:05}", i - 1),
            to: format!("step_{i:05}"),
            kind: EdgeKind::Explicit,
            dangling: false,
        })
        .collect();
    let mut g = Graph {
        registries: vec![reg],
        entries,
        edges,
        diagnostics: vec![],
    };
    g.sort();
    g
}

async fn sqlite_bytes(db: &Db, path: &Path) -> Result<u64, Box<dyn Error>> {
    sqlx::query("VACUUM").execute(db.pool()).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(db.pool())
        .await?;
    Ok(std::fs::metadata(path)?.len())
}

fn commit(i: usize) -> String {
    format!("{i:040x}")
}

async fn open_diff(
    db: &Db,
    repo: &str,
    registry: &str,
) -> Result<(Duration, String), Box<dyn Error>> {
    let started = Instant::now();
    let d = registry_diff(db, repo, registry, DiffRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let drawn = match &d.drawing {
        Some(Drawing::Ready(l)) => format!("{} nodes drawn", l.nodes.len()),
        Some(other) => format!("no drawing: {other:?}"),
        None => "nothing changed".into(),
    };
    Ok((
        took,
        format!(
            "{} changes, {drawn}{}",
            d.changes.len(),
            if d.changed_only {
                " (changed only)"
            } else {
                ""
            }
        ),
    ))
}

async fn big_repository(db: &Db, file: Option<&Path>) -> Result<(), Box<dyn Error>> {
    let mut g = big_registry();
    db.record_history("big", &commit(0), &g, None).await?;
    db.store_graph("big", &commit(0), &g).await?;
    let one = db.history_size("big").await?;
    let one_file = match file {
        Some(p) => Some(sqlite_bytes(db, p).await?),
        None => None,
    };
    let mut record = Vec::with_capacity(PUSHES);
    for i in 1..=PUSHES {
        // One file changed per push.
        let entry = &mut g.entries[(i * 97) % FILES];
        entry.line += 1;
        if i % 10 == 0 {
            entry.doc = Some(format!("Changed in push {i}."));
        }
        let started = Instant::now();
        db.record_history("big", &commit(i), &g, None).await?;
        record.push(started.elapsed());
    }
    let all = db.history_size("big").await?;
    record.sort();
    println!(
        "  {FILES}-file repository: {} items; history {} after 1 commit, {} after {} ({:.3}x); \
         {} per further commit",
        one.items,
        kib(one.bytes),
        kib(all.bytes),
        all.commits,
        all.bytes as f64 / one.bytes as f64,
        kib((all.bytes - one.bytes) / PUSHES as i64),
    );
    println!(
        "  recording one commit: median {}, p95 {}, max {}",
        ms(record[PUSHES / 2]),
        ms(record[PUSHES * 95 / 100]),
        ms(record[PUSHES - 1])
    );
    if let (Some(p), Some(before)) = (file, one_file) {
        let after = sqlite_bytes(db, p).await?;
        println!(
            "  SQLite file (VACUUM): {} with 1 commit kept, {} with {} ({:.3}x; the visible graph's own tables, one copy, included)",
            kib(before as i64),
            kib(after as i64),
            all.commits,
            after as f64 / before as f64
        );
    }
    // The diff view opens on the visible commit: the newest graph stored.
    db.store_graph("big", &commit(PUSHES), &g).await?;
    for _ in 0..2 {
        let (took, what) = open_diff(db, "big", "bench.registry").await?;
        println!("  open the diff of the last push: {} ({what})", ms(took));
    }
    Ok(())
}

async fn demo(db: &Db) -> Result<(), Box<dyn Error>> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/spicehub-parser/tests/fixtures/data_pipeline");
    let work = tempfile::tempdir()?;
    copy_dir(&fixture, work.path())?;
    let before = spicehub_parser::parse_dir(work.path())?;
    db.record_history("demo", &commit(1), &before, None).await?;
    let one = db.history_size("demo").await?;
    std::fs::write(
        work.path().join("src/shopflow/steps/reporting.py"),
        REPORTING,
    )?;
    let after = spicehub_parser::parse_dir(work.path())?;
    db.record_history("demo", &commit(2), &after, None).await?;
    db.store_graph("demo", &commit(2), &after).await?;
    let two = db.history_size("demo").await?;
    println!(
        "  demo (data_pipeline, {} entries): history {} for its first commit, {} added by the push",
        before.entries.len(),
        kib(one.bytes),
        kib(two.bytes - one.bytes)
    );
    for _ in 0..2 {
        let (took, what) = open_diff(db, "demo", "shopflow.registry.pipelines").await?;
        println!("  open the push's diff: {} ({what})", ms(took));
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The push of `end2end/tests/admin.history.spec.ts`: `data_pipeline`'s
/// `src/shopflow/steps/reporting.py` after it.
const REPORTING: &str =
    include_str!("../crates/spicehub-parser/tests/fixtures/data_pipeline_push/reporting.py");

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.db");
    let sqlite = Db::connect(&format!("sqlite://{}", file.display()))
        .await?
        .with_history_retention(spicehub_core::db::history::HistoryRetention {
            commits: 1000,
            max_age: Duration::ZERO,
        });
    sqlite.migrate().await?;
    println!("SQLite:");
    big_repository(&sqlite, Some(&file)).await?;
    demo(&sqlite).await?;
    if let Ok(url) = std::env::var("SPICEHUB_TEST_POSTGRES_URL") {
        if !url.is_empty() {
            let t = spicehub_core::testing::TestDb::postgres(&url).await;
            let pg = t.open().await.with_history_retention(
                spicehub_core::db::history::HistoryRetention {
                    commits: 1000,
                    max_age: Duration::ZERO,
                },
            );
            println!("PostgreSQL:");
            big_repository(&pg, None).await?;
            demo(&pg).await?;
        }
    }
    Ok(())
}

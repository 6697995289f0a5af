//! Registries through time: the graph of every synced commit a repository
//! keeps, stored by change rather than by copy.
//!
//! Synced commits are numbered per repository in the order they became
//! visible (`seq`). Each version of a registry, entry, edge or diagnostic
//! is one `history_items` row valid over `[from_seq, to_seq)`; `to_seq` is
//! NULL while the newest kept commit still has it. Recording a commit
//! compares the new graph with the open rows: an identical item is left
//! alone, a changed or vanished one is closed, a new version is inserted.
//! So a push that changes one entry costs one row and one update, however
//! large the repository, and the graph of any kept commit is the rows valid
//! at its `seq` (one indexed range per registry).
//!
//! Items are matched by the identity of `spicehub_parser::diff` (an entry by
//! registry, name and occurrence; an edge by registry, ends and kind), and
//! the timeline's counts are that module's diff against the previous kept
//! commit, made once when the commit is recorded.
//!
//! Retention ([`HistoryRetention`]) keeps the newest `commits` synced commits
//! and every one synced within `max_age`; a row no kept commit sees is
//! deleted with the commit that last saw it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::graphs::{insert_batched, Val, ROWS_PER_INSERT};
use super::{now, Db, DbError};
use spicehub_parser::diff::{diff, ChangeCounts, RegistryStatus};
use spicehub_parser::{Diagnostic, Edge, Entry, Graph, Registry};

/// How much history a repository keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRetention {
    /// The newest synced commits kept whatever their age (at least 1: the
    /// visible one).
    pub commits: u32,
    /// Commits synced within this long are kept whatever their number.
    pub max_age: Duration,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention {
            commits: 50,
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

/// What Azure DevOps says about a synced commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    pub author: Option<String>,
    /// Unix seconds.
    pub authored_at: Option<i64>,
    pub message: Option<String>,
}

/// One registry's changes since the previous kept commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryChanges {
    pub registry: String,
    pub status: RegistryStatus,
    #[serde(flatten)]
    pub counts: ChangeCounts,
}

/// What a synced commit changed, against `base`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The previous synced commit when it was recorded; `None` for the
    /// first one (everything in it counts as added).
    pub base: Option<String>,
    pub registries: Vec<RegistryChanges>,
}

/// One synced commit of a repository's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCommit {
    pub seq: i64,
    pub commit_id: String,
    pub author: Option<String>,
    pub authored_at: Option<i64>,
    pub message: Option<String>,
    pub synced_at: i64,
    pub changes: Changes,
}

/// How much a repository's history holds, for the figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistorySize {
    pub commits: i64,
    pub items: i64,
    /// Bytes of the items' keys and data and of the commits' texts: what
    /// the history adds, before the database's own overhead.
    pub bytes: i64,
}

const KIND_REGISTRY: &str = "registry";
const KIND_ENTRY: &str = "entry";
const KIND_EDGE: &str = "edge";
const KIND_DIAGNOSTIC: &str = "diagnostic";

/// Separates the parts of a key; not a character names or paths hold.
const SEP: char = '\u{1f}';

/// One item of a graph as history keeps it.
struct Item {
    kind: &'static str,
    registry: String,
    key: String,
    data: String,
}

fn json<T: Serialize>(value: &T) -> String {
    // The parser's model types serialise without failing (no maps with
    // non-string keys, no custom serialisers).
    serde_json::to_string(value).unwrap_or_default()
}

/// The graph's items, keyed as `spicehub_parser::diff` matches them, each
/// key once: a key seen again (a registry id declared twice, which `diff`
/// also reads as one) keeps its first item, so the open rows stay one per
/// key.
fn items(graph: &Graph) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    let mut all = all_items(graph);
    all.retain(|i| seen.insert((i.kind, i.registry.clone(), i.key.clone())));
    all
}

fn all_items(graph: &Graph) -> Vec<Item> {
    let mut out = Vec::with_capacity(
        graph.registries.len() + graph.entries.len() + graph.edges.len() + graph.diagnostics.len(),
    );
    for r in &graph.registries {
        out.push(Item {
            kind: KIND_REGISTRY,
            registry: r.id.clone(),
            key: r.id.clone(),
            data: json(r),
        });
    }
    let mut entries: Vec<&Entry> = graph.entries.iter().collect();
    entries.sort_by(|a, b| {
        (&a.registry, &a.name, &a.file, a.line).cmp(&(&b.registry, &b.name, &b.file, b.line))
    });
    let mut previous: Option<(&str, &str)> = None;
    let mut occurrence = 0usize;
    for e in entries {
        let id = (e.registry.as_str(), e.name.as_str());
        occurrence = if previous == Some(id) {
            occurrence + 1
        } else {
            0
        };
        previous = Some(id);
        out.push(Item {
            kind: KIND_ENTRY,
            registry: e.registry.clone(),
            key: format!("{}{SEP}{occurrence}", e.name),
            data: json(e),
        });
    }
    for e in &graph.edges {
        out.push(Item {
            kind: KIND_EDGE,
            registry: e.registry.clone(),
            key: format!("{}{SEP}{}{SEP}{}", e.from, e.to, json(&e.kind)),
            data: json(e),
        });
    }
    for d in &graph.diagnostics {
        let data = json(d);
        out.push(Item {
            kind: KIND_DIAGNOSTIC,
            registry: String::new(),
            key: data.clone(),
            data,
        });
    }
    out
}

/// A row that does not decode: the database was written by something else.
fn corrupt(what: String) -> DbError {
    DbError::Sqlx(sqlx::Error::Decode(what.into()))
}

/// Adds one stored item to a graph being rebuilt.
fn add_item(graph: &mut Graph, kind: &str, data: &str) -> Result<(), DbError> {
    let bad = |e: serde_json::Error| corrupt(format!("history item ({kind}): {e}"));
    match kind {
        KIND_REGISTRY => graph
            .registries
            .push(serde_json::from_str::<Registry>(data).map_err(bad)?),
        KIND_ENTRY => graph
            .entries
            .push(serde_json::from_str::<Entry>(data).map_err(bad)?),
        KIND_EDGE => graph
            .edges
            .push(serde_json::from_str::<Edge>(data).map_err(bad)?),
        KIND_DIAGNOSTIC => graph
            .diagnostics
            .push(serde_json::from_str::<Diagnostic>(data).map_err(bad)?),
        other => return Err(corrupt(format!("unknown history item kind {other:?}"))),
    }
    Ok(())
}

/// The graph of a repository at `seq`, in the spec's order; with a
/// registry, only its declaration, entries and edges (no diagnostics).
async fn graph_at(
    conn: &mut AnyConnection,
    repository_id: &str,
    seq: i64,
    registry_id: Option<&str>,
) -> Result<Graph, DbError> {
    let mut sql = String::from(
        "SELECT kind, data FROM history_items WHERE repository_id = $1 \
         AND from_seq <= $2 AND (to_seq IS NULL OR to_seq > $3)",
    );
    if registry_id.is_some() {
        sql.push_str(" AND registry_id = $4");
    }
    let mut query = sqlx::query(&sql).bind(repository_id).bind(seq).bind(seq);
    if let Some(r) = registry_id {
        query = query.bind(r);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut graph = Graph::default();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let data: String = row.try_get("data")?;
        add_item(&mut graph, &kind, &data)?;
    }
    graph.sort();
    Ok(graph)
}

async fn newest_commit(
    conn: &mut AnyConnection,
    repository_id: &str,
) -> Result<Option<(i64, String)>, DbError> {
    let row = sqlx::query(
        "SELECT seq, commit_id FROM history_commits WHERE repository_id = $1 \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(repository_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((r.try_get("seq")?, r.try_get("commit_id")?)))
        .transpose()
}

/// Runs `sql` (ending in `IN (`) over `ids` in chunks, after the leading
/// binds `first` (`$1`…).
async fn for_ids(
    conn: &mut AnyConnection,
    sql: &str,
    first: &[i64],
    ids: &[i64],
) -> Result<(), DbError> {
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut text = String::from(sql);
        for i in 0..chunk.len() {
            let _ = write!(
                text,
                "{}${}",
                if i == 0 { "" } else { ", " },
                first.len() + i + 1
            );
        }
        text.push(')');
        let mut query = sqlx::query(&text);
        for v in first.iter().chain(chunk) {
            query = query.bind(*v);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records `graph` as the graph of `commit_id`, the repository's newly
/// visible commit, inside the caller's transaction (the switch that makes
/// it visible), then applies the retention. When the newest recorded
/// commit is already `commit_id` (a re-parse, or a full resync of the same
/// head), its record is replaced instead of adding one.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    repository_id: &str,
    commit_id: &str,
    graph: &Graph,
    info: Option<&CommitInfo>,
    retention: HistoryRetention,
) -> Result<(), DbError> {
    let newest = newest_commit(conn, repository_id).await?;
    let (seq, again) = match &newest {
        Some((seq, id)) if id == commit_id => (*seq, true),
        Some((seq, _)) => (seq + 1, false),
        None => (1, false),
    };

    // The open rows: what the newest recorded commit holds.
    let rows = sqlx::query(
        "SELECT id, kind, registry_id, item_key, from_seq, data FROM history_items \
         WHERE repository_id = $1 AND to_seq IS NULL",
    )
    .bind(repository_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut open: HashMap<(String, String, String), (i64, i64, String)> =
        HashMap::with_capacity(rows.len());
    // Rows that no key should have twice (see `items`); none is expected.
    let mut duplicates: Vec<(i64, i64)> = Vec::new();
    for row in &rows {
        let row_key = (
            row.try_get("kind")?,
            row.try_get("registry_id")?,
            row.try_get("item_key")?,
        );
        let value: (i64, i64, String) = (
            row.try_get("id")?,
            row.try_get("from_seq")?,
            row.try_get("data")?,
        );
        if let Some(twice) = open.insert(row_key, value) {
            duplicates.push((twice.0, twice.1));
        }
    }

    // The base the counts are against: the previous recorded commit.
    let base = if again {
        let row = sqlx::query(
            "SELECT seq, commit_id FROM history_commits WHERE repository_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(repository_id)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(r) => {
                let base_seq: i64 = r.try_get("seq")?;
                let id: String = r.try_get("commit_id")?;
                Some((id, graph_at(conn, repository_id, base_seq, None).await?))
            }
            None => None,
        }
    } else {
        match &newest {
            Some((_, id)) => {
                let mut g = Graph::default();
                for ((kind, _, _), (_, _, data)) in &open {
                    add_item(&mut g, kind, data)?;
                }
                g.sort();
                Some((id.clone(), g))
            }
            None => None,
        }
    };
    let changes = {
        let (base_id, base_graph) = match &base {
            Some((id, g)) => (Some(id.clone()), g.clone()),
            None => (None, Graph::default()),
        };
        let d = diff(&base_graph, graph);
        Changes {
            base: base_id,
            registries: d
                .registries
                .iter()
                .map(|r| RegistryChanges {
                    registry: r.registry.clone(),
                    status: r.status,
                    counts: r.counts(),
                })
                .collect(),
        }
    };

    let mut inserts: Vec<Item> = Vec::new();
    for item in items(graph) {
        let key = (
            item.kind.to_owned(),
            item.registry.clone(),
            item.key.clone(),
        );
        match open.remove(&key) {
            Some(row) if row.2 == item.data => {}
            Some(row) => {
                // A new version: the old row is closed below.
                open.insert(key, row);
                inserts.push(item);
            }
            None => inserts.push(item),
        }
    }
    // What is left open (vanished, or replaced by a new version) ends here;
    // a row made for this very seq (recorded again) is simply deleted.
    let mut close = Vec::new();
    let mut delete = Vec::new();
    let ended = open.into_values().map(|(id, from_seq, _)| (id, from_seq));
    for (id, from_seq) in ended.chain(duplicates) {
        if from_seq >= seq {
            delete.push(id);
        } else {
            close.push(id);
        }
    }
    for_ids(
        conn,
        "UPDATE history_items SET to_seq = $1 WHERE id IN (",
        &[seq],
        &close,
    )
    .await?;
    for_ids(
        conn,
        "DELETE FROM history_items WHERE id IN (",
        &[],
        &delete,
    )
    .await?;
    let rows: Vec<Vec<Val>> = inserts
        .iter()
        .map(|i| {
            vec![
                Val::Text(repository_id),
                Val::Text(i.kind),
                Val::Text(&i.registry),
                Val::Text(&i.key),
                Val::Int(seq),
                Val::Text(&i.data),
            ]
        })
        .collect();
    insert_batched(
        &mut *conn,
        "history_items (repository_id, kind, registry_id, item_key, from_seq, data)",
        &rows,
    )
    .await?;

    let changes_json = serde_json::to_string(&changes).unwrap_or_default();
    let info = info.cloned().unwrap_or_default();
    if again {
        sqlx::query(
            "UPDATE history_commits SET changes = $1, synced_at = $2, \
             author = COALESCE($3, author), authored_at = COALESCE($4, authored_at), \
             message = COALESCE($5, message) WHERE repository_id = $6 AND seq = $7",
        )
        .bind(&changes_json)
        .bind(now())
        .bind(info.author.as_deref())
        .bind(info.authored_at)
        .bind(info.message.as_deref())
        .bind(repository_id)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO history_commits (repository_id, seq, commit_id, author, authored_at, \
             message, synced_at, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(repository_id)
        .bind(seq)
        .bind(commit_id)
        .bind(info.author.as_deref())
        .bind(info.authored_at)
        .bind(info.message.as_deref())
        .bind(now())
        .bind(&changes_json)
        .execute(&mut *conn)
        .await?;
    }
    prune(conn, repository_id, retention).await
}

/// Drops the commits the retention no longer keeps, and every row that
/// only they saw.
async fn prune(
    conn: &mut AnyConnection,
    repository_id: &str,
    retention: HistoryRetention,
) -> Result<(), DbError> {
    let keep = i64::from(retention.commits.max(1));
    // The oldest seq kept by number: the keep-th newest.
    let by_number = sqlx::query(
        "SELECT seq FROM history_commits WHERE repository_id = $1 \
         ORDER BY seq DESC LIMIT 1 OFFSET $2",
    )
    .bind(repository_id)
    .bind(keep - 1)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(by_number) = by_number else {
        return Ok(());
    };
    let by_number: i64 = by_number.try_get("seq")?;
    let cutoff = now() - i64::try_from(retention.max_age.as_secs()).unwrap_or(i64::MAX);
    // The oldest seq kept by age (seqs are in sync order, so the kept
    // commits are one run up to the newest).
    let by_age = sqlx::query(
        "SELECT MIN(seq) AS seq FROM history_commits WHERE repository_id = $1 AND synced_at > $2",
    )
    .bind(repository_id)
    .bind(cutoff)
    .fetch_one(&mut *conn)
    .await?;
    let by_age: Option<i64> = by_age.try_get("seq")?;
    let oldest_kept = by_age.map_or(by_number, |a| a.min(by_number));
    sqlx::query("DELETE FROM history_commits WHERE repository_id = $1 AND seq < $2")
        .bind(repository_id)
        .bind(oldest_kept)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM history_items WHERE repository_id = $1 AND to_seq IS NOT NULL \
         AND to_seq <= $2",
    )
    .bind(repository_id)
    .bind(oldest_kept)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn commit_from_row(row: &sqlx::any::AnyRow) -> Result<HistoryCommit, DbError> {
    let changes: String = row.try_get("changes")?;
    Ok(HistoryCommit {
        seq: row.try_get("seq")?,
        commit_id: row.try_get("commit_id")?,
        author: row.try_get("author")?,
        authored_at: row.try_get("authored_at")?,
        message: row.try_get("message")?,
        synced_at: row.try_get("synced_at")?,
        changes: serde_json::from_str(&changes)
            .map_err(|e| corrupt(format!("history changes: {e}")))?,
    })
}

const COMMIT_COLUMNS: &str = "seq, commit_id, author, authored_at, message, synced_at, changes";

impl Db {
    /// The history retention applied when a commit is recorded.
    pub fn with_history_retention(mut self, retention: HistoryRetention) -> Self {
        self.history = retention;
        self
    }

    pub fn history_retention(&self) -> HistoryRetention {
        self.history
    }

    /// Records a graph in the history on its own, outside a sync's switch
    /// (benchmarks, tests and imports: the sync engine records inside the
    /// transaction that makes a commit visible).
    pub async fn record_history(
        &self,
        repository_id: &str,
        commit_id: &str,
        graph: &Graph,
        info: Option<&CommitInfo>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        record(
            &mut tx,
            repository_id,
            commit_id,
            graph,
            info,
            self.history_retention(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A repository's kept commits, newest first.
    pub async fn history(&self, repository_id: &str) -> Result<Vec<HistoryCommit>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMIT_COLUMNS} FROM history_commits WHERE repository_id = $1 \
             ORDER BY seq DESC"
        ))
        .bind(repository_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(commit_from_row).collect()
    }

    /// The kept record of a commit (its newest, if it was synced twice);
    /// `None` when the commit was never synced or is no longer kept.
    pub async fn history_commit(
        &self,
        repository_id: &str,
        commit_id: &str,
    ) -> Result<Option<HistoryCommit>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COMMIT_COLUMNS} FROM history_commits WHERE repository_id = $1 \
             AND commit_id = $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(repository_id)
        .bind(commit_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(commit_from_row).transpose()
    }

    /// The kept records of several (repository, commit) pairs in a few
    /// queries (the Repositories tab and the Webhooks page link each row to
    /// what its commit changed); pairs not kept are absent.
    pub async fn history_records(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), HistoryCommit>, DbError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let mut sql =
                format!("SELECT repository_id, {COMMIT_COLUMNS} FROM history_commits WHERE ");
            for i in 0..chunk.len() {
                let _ = write!(
                    sql,
                    "{}(repository_id = ${} AND commit_id = ${})",
                    if i == 0 { "" } else { " OR " },
                    2 * i + 1,
                    2 * i + 2
                );
            }
            // Newest last, so a commit synced twice keeps its newest record.
            sql.push_str(" ORDER BY seq");
            let mut query = sqlx::query(&sql);
            for (repo, commit) in chunk {
                query = query.bind(repo.as_str()).bind(commit.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                let repo: String = row.try_get("repository_id")?;
                let c = commit_from_row(&row)?;
                out.insert((repo, c.commit_id.clone()), c);
            }
        }
        Ok(out)
    }

    /// The kept commit synced just before `seq`, if any.
    pub async fn history_previous(
        &self,
        repository_id: &str,
        seq: i64,
    ) -> Result<Option<HistoryCommit>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COMMIT_COLUMNS} FROM history_commits WHERE repository_id = $1 \
             AND seq < $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(repository_id)
        .bind(seq)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(commit_from_row).transpose()
    }

    /// The graph of a kept commit (by its `seq`), in the spec's order: the
    /// whole graph, or one registry's declaration, entries and edges.
    pub async fn history_graph(
        &self,
        repository_id: &str,
        seq: i64,
        registry_id: Option<&str>,
    ) -> Result<Graph, DbError> {
        let mut conn = self.pool().acquire().await?;
        graph_at(&mut conn, repository_id, seq, registry_id).await
    }

    /// How much a repository's history holds.
    pub async fn history_size(&self, repository_id: &str) -> Result<HistorySize, DbError> {
        let items = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(item_key) + LENGTH(data) \
             + LENGTH(registry_id) + LENGTH(kind) + 32), 0) AS bytes \
             FROM history_items WHERE repository_id = $1",
        )
        .bind(repository_id)
        .fetch_one(self.pool())
        .await?;
        let commits = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(commit_id) + LENGTH(changes) \
             + COALESCE(LENGTH(author), 0) + COALESCE(LENGTH(message), 0) + 32), 0) AS bytes \
             FROM history_commits WHERE repository_id = $1",
        )
        .bind(repository_id)
        .fetch_one(self.pool())
        .await?;
        let item_bytes: i64 = items.try_get("bytes")?;
        let commit_bytes: i64 = commits.try_get("bytes")?;
        Ok(HistorySize {
            commits: commits.try_get("n")?,
            items: items.try_get("n")?,
            bytes: item_bytes + commit_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::queue::tests::TestDb;
    use spicehub_parser::{EdgeKind, EntryKind};

    fn entry(name: &str, file: &str, line: u32) -> Entry {
        Entry {
            registry: "r".to_owned(),
            name: name.to_owned(),
            kind: EntryKind::Function,
            target: format!("pkg.{name}"),
            file: file.to_owned(),
            line,
            doc: None,
        }
    }

    /// A registry of `n` entries, one file each, with a chain of edges
    /// over the first ten.
    fn graph(n: usize) -> Graph {
        let mut g = Graph {
            registries: vec![Registry {
                id: "r".to_owned(),
                label: "r".to_owned(),
                file: "reg.py".to_owned(),
                line: 1,
            }],
            entries: (0..n)
                .map(|i| entry(&format!("step_{i}"), &format!("pkg/m{i}.py"), 3))
                .collect(),
            edges: (1..n.min(10))
                .map(|i| Edge {
                    registry: "r".to_owned(),
                    from: format!("step_{}", i - 1),
                    to: format!("step_{i}"),
                    kind: EdgeKind::Explicit,
                    dangling: false,
                })
                .collect(),
            diagnostics: vec![Diagnostic::new(
                "pkg/m0.py",
                0,
                spicehub_parser::Severity::Warning,
                "something",
            )],
        };
        g.sort();
        g
    }

    async fn record_as(db: &Db, repo: &str, commit: &str, g: &Graph) {
        db.record_history(repo, commit, g, None).await.unwrap();
    }

    #[tokio::test]
    async fn every_kept_commit_reads_back_as_it_was_recorded() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let g1 = graph(5);
            let mut g2 = g1.clone();
            g2.entries.retain(|e| e.name != "step_4");
            g2.entries.push(entry("step_9", "pkg/m9.py", 1));
            g2.entries[0].doc = Some("First.".to_owned());
            g2.edges.push(Edge {
                registry: "r".to_owned(),
                from: "step_9".to_owned(),
                to: "step_2".to_owned(),
                kind: EdgeKind::Parameter,
                dangling: false,
            });
            g2.diagnostics.clear();
            g2.sort();
            let mut g3 = g2.clone();
            g3.entries[1].line = 7;
            g3.sort();
            record_as(&db, "repo", "c1", &g1).await;
            record_as(&db, "repo", "c2", &g2).await;
            record_as(&db, "repo", "c3", &g3).await;

            let kept = db.history("repo").await.unwrap();
            let ids: Vec<_> = kept.iter().map(|c| c.commit_id.as_str()).collect();
            assert_eq!(ids, ["c3", "c2", "c1"], "{}", t.label);
            for (seq, g) in [(1, &g1), (2, &g2), (3, &g3)] {
                assert_eq!(&db.history_graph("repo", seq, None).await.unwrap(), g);
            }
            let only_r = db.history_graph("repo", 2, Some("r")).await.unwrap();
            assert_eq!(only_r.entries, g2.entries);
            assert!(only_r.diagnostics.is_empty());

            // c2 against c1: one entry added, one removed, step_0's doc
            // and step_2's dependencies changed, one edge added.
            let c2 = &kept[1].changes;
            assert_eq!(c2.base.as_deref(), Some("c1"));
            let counts = &c2.registries[0].counts;
            assert_eq!(
                (
                    counts.entries_added,
                    counts.entries_removed,
                    counts.entries_changed,
                    counts.edges_added,
                    counts.edges_removed
                ),
                (1, 1, 2, 1, 0)
            );
            assert_eq!(kept[2].changes.base, None);
            assert_eq!(kept[2].changes.registries[0].status, RegistryStatus::Added);

            // Recording the visible commit again (a re-parse) replaces its
            // record rather than adding one.
            let mut g3b = g3.clone();
            g3b.entries[2].doc = Some("Re-parsed.".to_owned());
            record_as(&db, "repo", "c3", &g3b).await;
            let kept = db.history("repo").await.unwrap();
            assert_eq!(kept.len(), 3);
            assert_eq!(db.history_graph("repo", 3, None).await.unwrap(), g3b);
            assert_eq!(db.history_graph("repo", 2, None).await.unwrap(), g2);
            assert_eq!(kept[0].changes.base.as_deref(), Some("c2"));
            assert_eq!(
                db.history_commit("repo", "c2").await.unwrap().unwrap().seq,
                2
            );
            assert!(db.history_commit("repo", "nope").await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_registry_declared_twice_is_kept_once_and_never_piles_up() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let mut g = graph(3);
            let mut again = g.registries[0].clone();
            again.line = 9;
            g.registries.push(again);
            for c in ["c1", "c2", "c3"] {
                record_as(&db, "repo", c, &g).await;
            }
            let at = db.history_graph("repo", 3, None).await.unwrap();
            assert_eq!(at.registries.len(), 1, "{}", t.label);
            assert_eq!(at.registries[0].line, 1);
            // Identical commits: nothing added after the first.
            let kept = db.history("repo").await.unwrap();
            assert!(kept[0].changes.registries.is_empty());
            assert_eq!(db.history_size("repo").await.unwrap().items, 1 + 3 + 2 + 1);
        }
    }

    #[tokio::test]
    async fn retention_drops_old_commits_and_frees_what_only_they_held() {
        for t in TestDb::all().await {
            let db = t.open().await.with_history_retention(HistoryRetention {
                commits: 3,
                max_age: Duration::ZERO,
            });
            let mut g = graph(20);
            let mut sizes = Vec::new();
            for i in 0..8 {
                // Each commit replaces one entry by a new one.
                g.entries.retain(|e| e.name != format!("step_{i}"));
                g.entries
                    .push(entry(&format!("new_{i}"), "pkg/new.py", i + 1));
                g.sort();
                record_as(&db, "repo", &format!("c{i}"), &g).await;
                sizes.push(db.history_size("repo").await.unwrap());
            }
            let kept: Vec<_> = db
                .history("repo")
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.commit_id)
                .collect();
            assert_eq!(kept, ["c7", "c6", "c5"], "{}", t.label);
            assert!(db.history_commit("repo", "c1").await.unwrap().is_none());
            // Bounded: once the retention is full, each commit adds one
            // entry version and frees one.
            assert_eq!(sizes[7].items, sizes[4].items, "{sizes:?}");
            assert_eq!(sizes[7].commits, 3);
            // The oldest kept commit is still whole.
            let oldest = db.history_commit("repo", "c5").await.unwrap().unwrap();
            let at = db.history_graph("repo", oldest.seq, None).await.unwrap();
            assert_eq!(at.entries.len(), 20);
            assert!(at.entries.iter().any(|e| e.name == "new_5"));
            assert!(!at.entries.iter().any(|e| e.name == "new_6"));
        }
    }

    /// The issue's bound: 100 commits, each changing one file of a
    /// 10,000-file repository, within 1.5 times one commit's history.
    /// Both databases at once (it is the suite's longest test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_one_file_pushes_cost_a_fraction_of_one_commit() {
        let mut runs = tokio::task::JoinSet::new();
        for t in TestDb::all().await {
            runs.spawn(async move {
                let db = t.open().await.with_history_retention(HistoryRetention {
                    commits: 1000,
                    max_age: Duration::ZERO,
                });
                let mut g = graph(10_000);
                record_as(&db, "repo", "c0", &g).await;
                let one = db.history_size("repo").await.unwrap();
                for i in 1..=100u32 {
                    // One file changed: its entry moved down a line.
                    let e = g
                        .entries
                        .iter_mut()
                        .find(|e| e.name == format!("step_{}", i * 7))
                        .unwrap();
                    e.line += 1;
                    record_as(&db, "repo", &format!("c{i}"), &g).await;
                }
                let hundred = db.history_size("repo").await.unwrap();
                assert_eq!(hundred.commits, 101);
                assert!(
                    hundred.bytes * 2 <= one.bytes * 3,
                    "{}: {} bytes for 101 commits, {} for one",
                    t.label,
                    hundred.bytes,
                    one.bytes
                );
                // The last commit still reads back whole.
                assert_eq!(db.history_graph("repo", 101, None).await.unwrap(), g);
            });
        }
        while let Some(run) = runs.join_next().await {
            run.unwrap();
        }
    }
}

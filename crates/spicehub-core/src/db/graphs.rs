//! Parsed spice graphs, stored per (repository, commit), and the cache of
//! their layouts (the layouts themselves are computed by `crate::graph`).
//!
//! A snapshot is written in one transaction, so a reader sees either the
//! previous graph of that commit or the new one, never a mix. Each array of
//! the [`Graph`] keeps its order through a `position` column: a loaded graph
//! is equal to the stored one, sorted or not.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{now, Db, DbError};
use spicehub_parser::{Diagnostic, Edge, EdgeKind, Entry, EntryKind, Graph, Registry, Severity};

/// Rows per multi-row INSERT. Large enough that a 10,000-edge graph takes a
/// hundred round trips rather than ten thousand (it matters on PostgreSQL),
/// small enough to stay far below SQLite's 32,766 bound parameters.
pub(crate) const ROWS_PER_INSERT: usize = 100;

/// One registry of a repository's visible snapshot, as the registry list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySummary {
    pub repository_id: String,
    pub commit_id: String,
    /// `project/name` from the repositories table; `None` for graphs stored
    /// without a repository row.
    pub repository_name: Option<String>,
    pub registry: Registry,
    /// Entries registered in it (an entry registered twice counts twice).
    pub entry_count: i64,
    /// Diagnostics of the snapshot about the registry's declaration file or
    /// a file of one of its entries: the diagnostics a user of this registry
    /// should see (dangling edges are reported in the dependent entry's file).
    pub diagnostics_count: i64,
}

/// One registry with its entries and the edges into its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryGraph {
    pub registry: Registry,
    pub entries: Vec<Entry>,
    pub edges: Vec<Edge>,
}

/// A value bound into a batched INSERT.
pub(crate) enum Val<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Int(i64),
}

fn entry_kind_str(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Function => "function",
        EntryKind::Class => "class",
        EntryKind::Object => "object",
    }
}

fn edge_kind_str(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Explicit => "explicit",
        EdgeKind::Parameter => "parameter",
    }
}

fn severity_str(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// A row that the schema's CHECK constraints should have made impossible.
fn corrupt(what: String) -> DbError {
    DbError::Sqlx(sqlx::Error::Decode(what.into()))
}

fn line_of(row: &AnyRow) -> Result<u32, DbError> {
    let line: i64 = row.try_get("line")?;
    u32::try_from(line).map_err(|_| corrupt(format!("line number out of range: {line}")))
}

fn registry_from_row(row: &AnyRow) -> Result<Registry, DbError> {
    Ok(Registry {
        id: row.try_get("registry_id")?,
        label: row.try_get("label")?,
        file: row.try_get("file")?,
        line: line_of(row)?,
    })
}

fn entry_from_row(row: &AnyRow) -> Result<Entry, DbError> {
    let kind: String = row.try_get("kind")?;
    Ok(Entry {
        registry: row.try_get("registry_id")?,
        name: row.try_get("name")?,
        kind: match kind.as_str() {
            "function" => EntryKind::Function,
            "class" => EntryKind::Class,
            "object" => EntryKind::Object,
            other => return Err(corrupt(format!("unknown entry kind {other:?}"))),
        },
        target: row.try_get("target")?,
        file: row.try_get("file")?,
        line: line_of(row)?,
        doc: row.try_get("doc")?,
    })
}

fn edge_from_row(row: &AnyRow) -> Result<Edge, DbError> {
    let kind: String = row.try_get("kind")?;
    let dangling: i64 = row.try_get("dangling")?;
    Ok(Edge {
        registry: row.try_get("registry_id")?,
        from: row.try_get("from_name")?,
        to: row.try_get("to_name")?,
        kind: match kind.as_str() {
            "explicit" => EdgeKind::Explicit,
            "parameter" => EdgeKind::Parameter,
            other => return Err(corrupt(format!("unknown edge kind {other:?}"))),
        },
        dangling: dangling != 0,
    })
}

fn diagnostic_from_row(row: &AnyRow) -> Result<Diagnostic, DbError> {
    let severity: String = row.try_get("severity")?;
    Ok(Diagnostic {
        file: row.try_get("file")?,
        line: line_of(row)?,
        severity: match severity.as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            other => return Err(corrupt(format!("unknown severity {other:?}"))),
        },
        message: row.try_get("message")?,
    })
}

/// `INSERT INTO <head> VALUES (...), (...)` in chunks of [`ROWS_PER_INSERT`].
pub(crate) async fn insert_batched(
    conn: &mut AnyConnection,
    head: &str,
    rows: &[Vec<Val<'_>>],
) -> Result<(), DbError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = format!("INSERT INTO {head} VALUES ");
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for c in 0..row.len() {
                n += 1;
                let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                Val::Text(s) => query.bind(*s),
                Val::MaybeText(s) => query.bind(*s),
                Val::Int(i) => query.bind(*i),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Array index as stored in `position`.
fn pos(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// The child tables of a snapshot, deleted before the snapshot row so that
/// the foreign keys hold whether or not SQLite enforces them.
const SNAPSHOT_CHILDREN: [&str; 5] = [
    "graph_layouts",
    "graph_diagnostics",
    "graph_edges",
    "graph_entries",
    "graph_registries",
];

impl Db {
    /// Stores the graph of `commit_id`, replacing any graph (and cached
    /// layouts) stored before for the same repository and commit. All or
    /// nothing: one transaction.
    pub async fn store_graph(
        &self,
        repository_id: &str,
        commit_id: &str,
        graph: &Graph,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        write_graph(&mut tx, repository_id, commit_id, graph).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The graph stored for this repository and commit, in stored order.
    pub async fn load_graph(
        &self,
        repository_id: &str,
        commit_id: &str,
    ) -> Result<Option<Graph>, DbError> {
        // One read transaction: a concurrent store_graph cannot be seen half.
        let mut tx = self.pool().begin().await?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM graph_snapshots WHERE repository_id = $1 AND commit_id = $2",
        )
        .bind(repository_id)
        .bind(commit_id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let fetch = |sql: &'static str| {
            sqlx::query(sql)
                .bind(repository_id.to_owned())
                .bind(commit_id.to_owned())
        };
        let registries = fetch(
            "SELECT registry_id, label, file, line FROM graph_registries \
             WHERE repository_id = $1 AND commit_id = $2 ORDER BY position",
        )
        .fetch_all(&mut *tx)
        .await?;
        let entries = fetch(
            "SELECT registry_id, name, kind, target, file, line, doc FROM graph_entries \
             WHERE repository_id = $1 AND commit_id = $2 ORDER BY position",
        )
        .fetch_all(&mut *tx)
        .await?;
        let edges = fetch(
            "SELECT registry_id, from_name, to_name, kind, dangling FROM graph_edges \
             WHERE repository_id = $1 AND commit_id = $2 ORDER BY position",
        )
        .fetch_all(&mut *tx)
        .await?;
        let diagnostics = fetch(
            "SELECT file, line, severity, message FROM graph_diagnostics \
             WHERE repository_id = $1 AND commit_id = $2 ORDER BY position",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Graph {
            registries: registries
                .iter()
                .map(registry_from_row)
                .collect::<Result<_, _>>()?,
            entries: entries
                .iter()
                .map(entry_from_row)
                .collect::<Result<_, _>>()?,
            edges: edges.iter().map(edge_from_row).collect::<Result<_, _>>()?,
            diagnostics: diagnostics
                .iter()
                .map(diagnostic_from_row)
                .collect::<Result<_, _>>()?,
        }))
    }

    /// The registries of each repository's *visible* snapshot (see
    /// [`Db::visible_commit`]), with counts, ordered by repository and
    /// registry id. `filter` keeps the registries whose id, label,
    /// repository id or repository name (`project/name`) contains it,
    /// ignoring ASCII case.
    pub async fn list_registries(
        &self,
        filter: Option<&str>,
    ) -> Result<Vec<RegistrySummary>, DbError> {
        self.visible_registries(filter, None).await
    }

    /// The registries of one repository's visible snapshot, with counts.
    pub async fn repository_registries(
        &self,
        repository_id: &str,
    ) -> Result<Vec<RegistrySummary>, DbError> {
        self.visible_registries(None, Some(repository_id)).await
    }

    /// The commit the viewer shows for a repository. When a `repositories`
    /// row exists, it is its `last_synced_commit` (the sync engine moves it
    /// atomically once a commit is stored; `None` before the first sync).
    /// Graphs stored without a repository row (tests, imports) show the
    /// latest snapshot: the one stored last, ties within one second going
    /// to the greater commit id.
    pub async fn visible_commit(&self, repository_id: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT last_synced_commit FROM repositories WHERE id = $1")
            .bind(repository_id)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = row {
            return Ok(row.try_get("last_synced_commit")?);
        }
        let row = sqlx::query(
            "SELECT commit_id FROM graph_snapshots WHERE repository_id = $1 \
             ORDER BY stored_at DESC, commit_id DESC LIMIT 1",
        )
        .bind(repository_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("commit_id"))
            .transpose()
            .map_err(Into::into)
    }

    async fn visible_registries(
        &self,
        filter: Option<&str>,
        repository_id: Option<&str>,
    ) -> Result<Vec<RegistrySummary>, DbError> {
        // The visible snapshot: the repository's last synced commit when
        // the repositories table knows it, else the latest one stored.
        let mut sql = String::from(
            "SELECT r.repository_id, r.commit_id, r.registry_id, r.label, r.file, r.line, \
             rp.project_name, rp.name AS repository_name, \
             (SELECT COUNT(*) FROM graph_entries e WHERE e.repository_id = r.repository_id \
               AND e.commit_id = r.commit_id AND e.registry_id = r.registry_id) AS entry_count, \
             (SELECT COUNT(*) FROM graph_diagnostics d WHERE d.repository_id = r.repository_id \
               AND d.commit_id = r.commit_id AND (d.file = r.file OR d.file IN \
                 (SELECT e2.file FROM graph_entries e2 WHERE e2.repository_id = r.repository_id \
                   AND e2.commit_id = r.commit_id AND e2.registry_id = r.registry_id))) \
               AS diagnostics_count \
             FROM graph_registries r JOIN graph_snapshots s \
               ON s.repository_id = r.repository_id AND s.commit_id = r.commit_id \
             LEFT JOIN repositories rp ON rp.id = s.repository_id \
             WHERE ",
        );
        sql.push_str(VISIBLE_SNAPSHOT);
        let pattern = filter
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(like_pattern);
        // SQLite numbers `$n` parameters by first appearance, so each use
        // of a value gets its own placeholder (reuse is not portable).
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if pattern.is_some() {
            let (a, b, c, d) = (next(), next(), next(), next());
            let _ = write!(
                sql,
                " AND (LOWER(r.registry_id) LIKE ${a} ESCAPE '\\' \
                 OR LOWER(r.label) LIKE ${b} ESCAPE '\\' \
                 OR LOWER(r.repository_id) LIKE ${c} ESCAPE '\\' \
                 OR LOWER(COALESCE(rp.project_name || '/' || rp.name, '')) LIKE ${d} ESCAPE '\\')"
            );
        }
        if repository_id.is_some() {
            let _ = write!(sql, " AND r.repository_id = ${}", next());
        }
        sql.push_str(" ORDER BY r.repository_id, r.registry_id, r.position");
        let mut query = sqlx::query(&sql);
        if let Some(p) = &pattern {
            for _ in 0..4 {
                query = query.bind(p.as_str());
            }
        }
        if let Some(id) = repository_id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let project: Option<String> = row.try_get("project_name")?;
                let name: Option<String> = row.try_get("repository_name")?;
                Ok(RegistrySummary {
                    repository_id: row.try_get("repository_id")?,
                    commit_id: row.try_get("commit_id")?,
                    repository_name: project.zip(name).map(|(p, n)| format!("{p}/{n}")),
                    registry: registry_from_row(row)?,
                    entry_count: row.try_get("entry_count")?,
                    diagnostics_count: row.try_get("diagnostics_count")?,
                })
            })
            .collect()
    }

    /// One registry of a snapshot with its entries and the edges into them,
    /// in stored order; `None` when the snapshot has no such registry.
    pub async fn registry_graph(
        &self,
        repository_id: &str,
        commit_id: &str,
        registry_id: &str,
    ) -> Result<Option<RegistryGraph>, DbError> {
        let mut tx = self.pool().begin().await?;
        let registry = sqlx::query(
            "SELECT registry_id, label, file, line FROM graph_registries \
             WHERE repository_id = $1 AND commit_id = $2 AND registry_id = $3 \
             ORDER BY position LIMIT 1",
        )
        .bind(repository_id)
        .bind(commit_id)
        .bind(registry_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(registry) = registry else {
            return Ok(None);
        };
        let entries = sqlx::query(
            "SELECT registry_id, name, kind, target, file, line, doc FROM graph_entries \
             WHERE repository_id = $1 AND commit_id = $2 AND registry_id = $3 ORDER BY position",
        )
        .bind(repository_id)
        .bind(commit_id)
        .bind(registry_id)
        .fetch_all(&mut *tx)
        .await?;
        let edges = sqlx::query(
            "SELECT registry_id, from_name, to_name, kind, dangling FROM graph_edges \
             WHERE repository_id = $1 AND commit_id = $2 AND registry_id = $3 ORDER BY position",
        )
        .bind(repository_id)
        .bind(commit_id)
        .bind(registry_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(RegistryGraph {
            registry: registry_from_row(&registry)?,
            entries: entries
                .iter()
                .map(entry_from_row)
                .collect::<Result<_, _>>()?,
            edges: edges.iter().map(edge_from_row).collect::<Result<_, _>>()?,
        }))
    }

    /// All diagnostics of a snapshot, in stored order (empty when there is
    /// no such snapshot).
    pub async fn snapshot_diagnostics(
        &self,
        repository_id: &str,
        commit_id: &str,
    ) -> Result<Vec<Diagnostic>, DbError> {
        let rows = sqlx::query(
            "SELECT file, line, severity, message FROM graph_diagnostics \
             WHERE repository_id = $1 AND commit_id = $2 ORDER BY position",
        )
        .bind(repository_id)
        .bind(commit_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(diagnostic_from_row).collect()
    }

    /// A cached layout (JSON), if one was stored for this view.
    pub async fn cached_layout(
        &self,
        repository_id: &str,
        commit_id: &str,
        registry_id: &str,
        view_key: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT layout FROM graph_layouts WHERE repository_id = $1 AND commit_id = $2 \
             AND registry_id = $3 AND view_key = $4",
        )
        .bind(repository_id)
        .bind(commit_id)
        .bind(registry_id)
        .bind(view_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("layout"))
            .transpose()
            .map_err(Into::into)
    }

    /// Caches a layout. A concurrent computation of the same view may have
    /// stored it first: both are the same layout, the first one stays.
    /// Returns false when the snapshot is gone (replaced meanwhile), in which
    /// case nothing is cached.
    pub async fn store_layout(
        &self,
        repository_id: &str,
        commit_id: &str,
        registry_id: &str,
        view_key: &str,
        layout_json: &str,
    ) -> Result<bool, DbError> {
        // INSERT ... SELECT: caching against a snapshot that store_graph
        // just deleted would leave a row that no later store removes.
        let result = sqlx::query(
            "INSERT INTO graph_layouts \
             (repository_id, commit_id, registry_id, view_key, layout, computed_at) \
             SELECT repository_id, commit_id, $1, $2, $3, $4 FROM graph_snapshots \
             WHERE repository_id = $5 AND commit_id = $6 \
             ON CONFLICT (repository_id, commit_id, registry_id, view_key) DO NOTHING",
        )
        .bind(registry_id)
        .bind(view_key)
        .bind(layout_json)
        .bind(now())
        .bind(repository_id)
        .bind(commit_id)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0
            || self
                .cached_layout(repository_id, commit_id, registry_id, view_key)
                .await?
                .is_some())
    }

    /// Keeps at most `max` cached layouts of one registry of a snapshot:
    /// those whose key is in `keep`, then the newest others; deletes the
    /// rest. Returns how many were deleted. Only keys are read, and there
    /// are few: every store is followed by a trim.
    pub async fn trim_layouts(
        &self,
        repository_id: &str,
        commit_id: &str,
        registry_id: &str,
        max: usize,
        keep: &[&str],
    ) -> Result<u64, DbError> {
        let rows = sqlx::query(
            "SELECT view_key FROM graph_layouts WHERE repository_id = $1 AND commit_id = $2 \
             AND registry_id = $3 ORDER BY computed_at DESC, view_key",
        )
        .bind(repository_id)
        .bind(commit_id)
        .bind(registry_id)
        .fetch_all(self.pool())
        .await?;
        if rows.len() <= max {
            return Ok(0);
        }
        let keys = rows
            .iter()
            .map(|r| r.try_get::<String, _>("view_key"))
            .collect::<Result<Vec<_>, _>>()?;
        let kept = keys.iter().filter(|k| keep.contains(&k.as_str())).count();
        let doomed: Vec<&String> = keys
            .iter()
            .filter(|k| !keep.contains(&k.as_str()))
            .skip(max.saturating_sub(kept))
            .collect();
        let mut deleted = 0;
        for chunk in doomed.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "DELETE FROM graph_layouts WHERE repository_id = $1 AND commit_id = $2 \
                 AND registry_id = $3 AND view_key IN (",
            );
            for i in 0..chunk.len() {
                let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, i + 4);
            }
            sql.push(')');
            let mut query = sqlx::query(&sql)
                .bind(repository_id)
                .bind(commit_id)
                .bind(registry_id);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            deleted += query.execute(self.pool()).await?.rows_affected();
        }
        Ok(deleted)
    }
}

/// `%text%` for LIKE, lower-cased, with LIKE's wildcards escaped so that a
/// user's `_` matches an underscore only.
/// The condition that snapshot `s` (of `graph_snapshots`, with `rp` its
/// `repositories` row LEFT JOINed) is the one the viewer shows: the
/// repository's last synced commit when the repositories table knows it,
/// else the latest snapshot stored. See [`Db::visible_commit`].
pub(crate) const VISIBLE_SNAPSHOT: &str =
    "((rp.id IS NOT NULL AND s.commit_id = rp.last_synced_commit) \
     OR (rp.id IS NULL AND NOT EXISTS (SELECT 1 FROM graph_snapshots n \
       WHERE n.repository_id = s.repository_id AND (n.stored_at > s.stored_at \
         OR (n.stored_at = s.stored_at AND n.commit_id > s.commit_id)))))";

pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The body of [`Db::store_graph`], on a connection the caller holds inside
/// its own transaction (the sync engine stores a graph and switches the
/// visible commit in one transaction).
pub(crate) async fn write_graph(
    conn: &mut AnyConnection,
    repository_id: &str,
    commit_id: &str,
    graph: &Graph,
) -> Result<(), DbError> {
    for table in SNAPSHOT_CHILDREN {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE repository_id = $1 AND commit_id = $2"
        ))
        .bind(repository_id)
        .bind(commit_id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM graph_snapshots WHERE repository_id = $1 AND commit_id = $2")
        .bind(repository_id)
        .bind(commit_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO graph_snapshots (repository_id, commit_id, stored_at) VALUES ($1, $2, $3)",
    )
    .bind(repository_id)
    .bind(commit_id)
    .bind(now())
    .execute(&mut *conn)
    .await?;

    let key = |i: usize| {
        [
            Val::Text(repository_id),
            Val::Text(commit_id),
            Val::Int(pos(i)),
        ]
    };
    let rows: Vec<Vec<Val>> = graph
        .registries
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = Vec::from(key(i));
            row.extend([
                Val::Text(&r.id),
                Val::Text(&r.label),
                Val::Text(&r.file),
                Val::Int(r.line.into()),
            ]);
            row
        })
        .collect();
    insert_batched(
        &mut *conn,
        "graph_registries (repository_id, commit_id, position, registry_id, label, file, line)",
        &rows,
    )
    .await?;

    let rows: Vec<Vec<Val>> = graph
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut row = Vec::from(key(i));
            row.extend([
                Val::Text(&e.registry),
                Val::Text(&e.name),
                Val::Text(entry_kind_str(e.kind)),
                Val::Text(&e.target),
                Val::Text(&e.file),
                Val::Int(e.line.into()),
                Val::MaybeText(e.doc.as_deref()),
            ]);
            row
        })
        .collect();
    insert_batched(
        &mut *conn,
        "graph_entries (repository_id, commit_id, position, registry_id, name, kind, \
         target, file, line, doc)",
        &rows,
    )
    .await?;

    let rows: Vec<Vec<Val>> = graph
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut row = Vec::from(key(i));
            row.extend([
                Val::Text(&e.registry),
                Val::Text(&e.from),
                Val::Text(&e.to),
                Val::Text(edge_kind_str(e.kind)),
                Val::Int(i64::from(e.dangling)),
            ]);
            row
        })
        .collect();
    insert_batched(
        &mut *conn,
        "graph_edges (repository_id, commit_id, position, registry_id, from_name, to_name, \
         kind, dangling)",
        &rows,
    )
    .await?;

    let rows: Vec<Vec<Val>> = graph
        .diagnostics
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut row = Vec::from(key(i));
            row.extend([
                Val::Text(&d.file),
                Val::Int(d.line.into()),
                Val::Text(severity_str(d.severity)),
                Val::Text(&d.message),
            ]);
            row
        })
        .collect();
    insert_batched(
        &mut *conn,
        "graph_diagnostics (repository_id, commit_id, position, file, line, severity, message)",
        &rows,
    )
    .await?;

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Load_Users"), "%load\\_users%");
        assert_eq!(like_pattern("50%"), "%50\\%%");
    }
}

//! Entries by name across every registry of every repository, at the commit
//! each repository shows: the Registries tab's search.
//!
//! A substring match (`LIKE '%text%'`) scans the visible snapshots' entries;
//! neither SQLite nor PostgreSQL can index it portably, and even 100,000
//! entries scan in milliseconds. What bounds a request is the caller's
//! input length and [`MAX_HITS`].

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::graphs::{like_pattern, VISIBLE_SNAPSHOT};
use super::{Db, DbError};

/// At most this many hits are returned; the caller is told there were more.
pub const MAX_HITS: usize = 100;

/// One entry whose name (or registered object) matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryHit {
    pub repository_id: String,
    /// `project/name`, when the repository is in the repositories table.
    pub repository_name: Option<String>,
    pub web_url: Option<String>,
    pub commit_id: String,
    pub registry_id: String,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub file: String,
    pub line: u32,
}

/// The hits, best first, and whether more matched than were returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntrySearch {
    pub hits: Vec<EntryHit>,
    pub more: bool,
}

impl Db {
    /// Entries whose name or target contains `text` (case-insensitive):
    /// exact names first, then names starting with it, then the rest, each
    /// shortest first. An empty `text` finds nothing.
    pub async fn search_entries(&self, text: &str, limit: usize) -> Result<EntrySearch, DbError> {
        let text = text.trim().to_lowercase();
        let limit = limit.clamp(1, MAX_HITS);
        if text.is_empty() {
            return Ok(EntrySearch::default());
        }
        let contains = like_pattern(&text);
        // like_pattern gives `%text%`; the prefix pattern drops the first `%`.
        let prefix = contains[1..].to_owned();
        let sql = format!(
            "SELECT e.repository_id, e.commit_id, e.registry_id, e.name, e.kind, e.target, \
             e.file, e.line, rp.project_name, rp.name AS repository_name, rp.web_url \
             FROM graph_entries e JOIN graph_snapshots s \
               ON s.repository_id = e.repository_id AND s.commit_id = e.commit_id \
             LEFT JOIN repositories rp ON rp.id = s.repository_id \
             WHERE {VISIBLE_SNAPSHOT} \
               AND (LOWER(e.name) LIKE $1 ESCAPE '\\' OR LOWER(e.target) LIKE $2 ESCAPE '\\') \
             ORDER BY CASE WHEN LOWER(e.name) = $3 THEN 0 \
                           WHEN LOWER(e.name) LIKE $4 ESCAPE '\\' THEN 1 ELSE 2 END, \
               LENGTH(e.name), e.name, e.repository_id, e.registry_id, e.position \
             LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(contains.as_str())
            .bind(contains.as_str())
            .bind(text.as_str())
            .bind(prefix.as_str())
            .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        let more = rows.len() > limit;
        let hits = rows
            .iter()
            .take(limit)
            .map(|row| {
                let project: Option<String> = row.try_get("project_name")?;
                let name: Option<String> = row.try_get("repository_name")?;
                let line: i64 = row.try_get("line")?;
                Ok(EntryHit {
                    repository_id: row.try_get("repository_id")?,
                    repository_name: project.zip(name).map(|(p, n)| format!("{p}/{n}")),
                    web_url: row.try_get("web_url")?,
                    commit_id: row.try_get("commit_id")?,
                    registry_id: row.try_get("registry_id")?,
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    target: row.try_get("target")?,
                    file: row.try_get("file")?,
                    line: u32::try_from(line).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(EntrySearch { hits, more })
    }
}

#[cfg(test)]
mod tests {
    use spicehub_parser::{Entry, EntryKind, Graph, Registry};

    use crate::testing::TestDb;

    fn entry(registry: &str, name: &str, file: &str, line: u32) -> Entry {
        Entry {
            registry: registry.into(),
            name: name.into(),
            kind: EntryKind::Class,
            target: format!("pkg.models.{name}"),
            file: file.into(),
            line,
            doc: None,
        }
    }

    fn graph(entries: Vec<Entry>) -> Graph {
        Graph {
            registries: vec![
                Registry {
                    id: "models".into(),
                    label: "MODELS".into(),
                    file: "pkg/registry.py".into(),
                    line: 3,
                },
                Registry {
                    id: "losses".into(),
                    label: "LOSSES".into(),
                    file: "pkg/registry.py".into(),
                    line: 4,
                },
            ],
            entries,
            ..Graph::default()
        }
    }

    #[tokio::test]
    async fn finds_entries_of_visible_commits_across_registries_best_first() {
        for db in TestDb::all().await {
            let d = &db.open().await;
            // The repository's older commit holds an entry the newer one
            // dropped: only the newer one is searched (stored in the same
            // second, the greater commit id is the newer).
            d.store_graph(
                "repo-a",
                "c1",
                &graph(vec![entry("models", "OldNet", "pkg/old.py", 1)]),
            )
            .await
            .unwrap();
            d.store_graph(
                "repo-a",
                "c2",
                &graph(vec![
                    entry("models", "ResNetV2", "pkg/resnet.py", 10),
                    entry("models", "ResNet", "pkg/resnet.py", 3),
                    entry("losses", "FocalLoss", "pkg/losses.py", 7),
                ]),
            )
            .await
            .unwrap();
            d.store_graph(
                "repo-b",
                "c9",
                &graph(vec![entry("models", "TinyResNet", "b/nets.py", 5)]),
            )
            .await
            .unwrap();

            let found = d.search_entries("resnet", 50).await.unwrap();
            let names: Vec<_> = found.hits.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["ResNet", "ResNetV2", "TinyResNet"], "{}", db.label);
            assert!(!found.more);
            let first = &found.hits[0];
            assert_eq!(
                (
                    first.repository_id.as_str(),
                    first.commit_id.as_str(),
                    first.registry_id.as_str()
                ),
                ("repo-a", "c2", "models")
            );
            assert_eq!((first.file.as_str(), first.line), ("pkg/resnet.py", 3));

            // The registered object's dotted path matches too.
            let by_target = d.search_entries("models.focal", 50).await.unwrap();
            assert_eq!(by_target.hits.len(), 1, "{}", db.label);
            assert_eq!(by_target.hits[0].registry_id, "losses");

            assert!(d
                .search_entries("oldnet", 50)
                .await
                .unwrap()
                .hits
                .is_empty());
            assert!(d.search_entries("  ", 50).await.unwrap().hits.is_empty());
            // LIKE's wildcards are searched for, not obeyed.
            assert!(d.search_entries("%", 50).await.unwrap().hits.is_empty());

            let capped = d.search_entries("net", 1).await.unwrap();
            assert_eq!(capped.hits.len(), 1, "{}", db.label);
            assert!(capped.more);
        }
    }
}

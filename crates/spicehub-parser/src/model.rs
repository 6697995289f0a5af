//! The parser's result, serialised exactly as spec §6 shows it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    pub registries: Vec<Registry>,
    pub entries: Vec<Entry>,
    pub edges: Vec<Edge>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Registry {
    /// The qualified variable (`shop.registries.pipelines`), or the configured
    /// name of a decorator registry (`assets`).
    pub id: String,
    pub label: String,
    pub file: String,
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Function,
    Class,
    Object,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub registry: String,
    pub name: String,
    pub kind: EntryKind,
    /// Python qualified name of what was registered.
    pub target: String,
    pub file: String,
    pub line: u32,
    /// First line of the target's docstring; serialised as `null` when absent.
    pub doc: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// `depends_on=`, `requires=`, `inputs=`, `deps=` (spec §3.1).
    Explicit,
    /// A parameter named like another entry of the same registry (spec §3.2).
    Parameter,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// The registry of the dependent entry (`to`).
    pub registry: String,
    /// The entry depended upon: an entry name of `registry`, or
    /// `other.registry.id:entry` for an entry of another registry.
    pub from: String,
    /// The dependent entry's name.
    pub to: String,
    pub kind: EdgeKind,
    pub dangling: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Repository-relative path of the file (or directory) concerned.
    pub file: String,
    /// 1-based line; 0 when the diagnostic is about a whole file or directory.
    pub line: u32,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<String>,
        line: u32,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            severity,
            message: message.into(),
        }
    }
}

impl Graph {
    /// Puts every array in the order of spec §6. Ties on the spec's keys are
    /// broken on the remaining fields so that the order is total and the JSON
    /// byte-identical from run to run.
    pub fn sort(&mut self) {
        self.registries.sort();
        self.registries.dedup();
        self.entries.sort_by(|a, b| {
            (
                &a.registry,
                &a.name,
                &a.file,
                a.line,
                a.kind,
                &a.target,
                &a.doc,
            )
                .cmp(&(
                    &b.registry,
                    &b.name,
                    &b.file,
                    b.line,
                    b.kind,
                    &b.target,
                    &b.doc,
                ))
        });
        self.entries.dedup();
        self.edges.sort_by(|a, b| {
            (&a.registry, &a.from, &a.to, a.kind, a.dangling).cmp(&(
                &b.registry,
                &b.from,
                &b.to,
                b.kind,
                b.dangling,
            ))
        });
        self.edges.dedup();
        self.diagnostics.sort_by(|a, b| {
            (&a.file, a.line, a.severity, &a.message)
                .cmp(&(&b.file, b.line, b.severity, &b.message))
        });
        self.diagnostics.dedup();
    }
}

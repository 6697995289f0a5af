//! Repository configuration (spec §4): `spice.toml` at the root (keys at its
//! top level), or else a `[tool.spice]` table in the root `pyproject.toml`.
//!
//! A configuration problem never stops a parse: it becomes a diagnostic and the
//! offending key (or, for invalid TOML, the whole file) falls back to defaults.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::model::{Diagnostic, Severity};

pub const SPICE_TOML: &str = "spice.toml";
pub const PYPROJECT_TOML: &str = "pyproject.toml";

/// Configuration files are small; a larger one is not worth parsing.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The TOML parser and its value tree recurse on nesting; no real
/// configuration nests more than a few levels.
const MAX_TOML_NESTING: usize = 64;

/// A decorator that makes its targets entries of a registry without a declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoratorRegistry {
    /// Last name of the decorator (`asset` matches `@asset`, `@dg.asset(...)`).
    pub decorator: String,
    /// The registry's configured name, used as its id and label.
    pub registry: String,
    /// Configuration file and 1-based line of the entry naming it.
    pub file: String,
    pub line: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file the configuration came from, if any.
    pub file: Option<String>,
    /// Extra registry constructors: a bare name matches the last component of
    /// the resolved callee (like `Registry`), a dotted one the whole resolved name.
    pub registry_constructors: Vec<String>,
    pub decorator_registries: Vec<DecoratorRegistry>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Config {
    /// Whether a repository path is parsed under `include`/`exclude`. A glob
    /// that matches a directory applies to everything below it, so
    /// `exclude = ["tests"]` works as users expect.
    pub fn selects(&self, path: &str) -> bool {
        let matches = |set: &GlobSet| ancestors_and_self(path).any(|p| set.is_match(p));
        if let Some(include) = &self.include {
            if !matches(include) {
                return false;
            }
        }
        match &self.exclude {
            Some(exclude) => !matches(exclude),
            None => true,
        }
    }

    pub fn decorator_registry(&self, last_name: &str) -> Option<&DecoratorRegistry> {
        self.decorator_registries
            .iter()
            .find(|d| d.decorator == last_name)
    }
}

/// `a/b/c.py`, `a/b`, `a`.
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rfind('/').map(|i| &current[..i]);
        Some(current)
    })
}

/// Reads the configuration from `spice.toml` or, failing that, `pyproject.toml`.
/// `read` returns the file's bytes when it exists at the root.
pub fn load(read: impl Fn(&str) -> Option<std::io::Result<Vec<u8>>>) -> (Config, Vec<Diagnostic>) {
    for (file, in_pyproject) in [(SPICE_TOML, false), (PYPROJECT_TOML, true)] {
        let Some(bytes) = read(file) else {
            continue;
        };
        let warn = |message: String| {
            (
                Config::default(),
                vec![Diagnostic::new(file, 0, Severity::Warning, message)],
            )
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(err) => return warn(format!("cannot read {file}: {err}; defaults apply")),
        };
        if bytes.len() > MAX_CONFIG_BYTES {
            return warn(format!(
                "{file} is larger than {MAX_CONFIG_BYTES} bytes; defaults apply"
            ));
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return warn(format!("{file} is not valid UTF-8; defaults apply"));
        };
        let (config, diagnostics) = parse(file, &text, in_pyproject);
        // A pyproject.toml without [tool.spice] is not a configuration.
        if in_pyproject && config.file.is_none() && diagnostics.is_empty() {
            return (Config::default(), Vec::new());
        }
        return (config, diagnostics);
    }
    (Config::default(), Vec::new())
}

/// Parses one configuration file. For `pyproject.toml` only `[tool.spice]` is read.
pub fn parse(file: &str, text: &str, in_pyproject: bool) -> (Config, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let line_of = |offset: usize| line_at(text, offset);
    if let Some(offset) = excessive_nesting(text) {
        diags.push(Diagnostic::new(
            file,
            line_of(offset),
            Severity::Warning,
            format!("{file} nests deeper than {MAX_TOML_NESTING} levels; defaults apply"),
        ));
        return (Config::default(), diags);
    }
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            let line = err.span().map_or(0, |s| line_of(s.start));
            diags.push(Diagnostic::new(
                file,
                line,
                Severity::Warning,
                format!(
                    "invalid TOML in {file}: {}; defaults apply",
                    err.message().trim()
                ),
            ));
            return (Config::default(), diags);
        }
    };

    let table: &DeTable = if in_pyproject {
        let spice = doc
            .get_ref()
            .get("tool")
            .and_then(|tool| tool.get_ref().as_table())
            .and_then(|tool| tool.get("spice"));
        match spice {
            None => return (Config::default(), diags),
            Some(value) => match value.get_ref().as_table() {
                Some(table) => table,
                None => {
                    diags.push(Diagnostic::new(
                        file,
                        line_of(value.span().start),
                        Severity::Warning,
                        "[tool.spice] must be a table; defaults apply",
                    ));
                    return (Config::default(), diags);
                }
            },
        }
    } else {
        doc.get_ref()
    };

    let mut config = Config {
        file: Some(file.to_owned()),
        ..Config::default()
    };
    for (key, value) in table {
        let line = line_of(value.span().start);
        let mut warn = |message: String| {
            diags.push(Diagnostic::new(file, line, Severity::Warning, message));
        };
        match &**key.get_ref() {
            "registry_constructors" => match string_list(value) {
                Ok(names) => {
                    for (name, _) in names {
                        if valid_dotted(&name) {
                            config.registry_constructors.push(name);
                        } else {
                            warn(format!(
                                "registry_constructors: `{name}` is not a Python name; ignored"
                            ));
                        }
                    }
                }
                Err(()) => warn("registry_constructors must be a list of strings; ignored".into()),
            },
            "decorator_registries" => match value.get_ref().as_table() {
                Some(entries) => {
                    for (decorator, registry) in entries {
                        let decorator = decorator.get_ref().to_string();
                        let entry_line = line_of(registry.span().start);
                        match registry.get_ref().as_str() {
                            Some(name) if valid_identifier(&decorator) && !name.is_empty() => {
                                config.decorator_registries.push(DecoratorRegistry {
                                    decorator,
                                    registry: name.to_owned(),
                                    file: file.to_owned(),
                                    line: entry_line,
                                });
                            }
                            _ => diags.push(Diagnostic::new(
                                file,
                                entry_line,
                                Severity::Warning,
                                format!(
                                    "decorator_registries: `{decorator}` must be a Python name mapped to a non-empty string; ignored"
                                ),
                            )),
                        }
                    }
                }
                None => warn(
                    "decorator_registries must be a table such as { asset = \"assets\" }; ignored"
                        .into(),
                ),
            },
            which @ ("include" | "exclude") => match string_list(value) {
                Ok(globs) => {
                    let set = build_globset(file, which, globs, text, &mut diags);
                    if which == "include" {
                        config.include = set;
                    } else {
                        config.exclude = set;
                    }
                }
                Err(()) => warn(format!("{which} must be a list of glob strings; ignored")),
            },
            other => warn(format!("unknown configuration key `{other}`; ignored")),
        }
    }
    (config, diags)
}

/// A string or a list of strings, with the offset of each.
fn string_list(value: &Spanned<DeValue<'_>>) -> Result<Vec<(String, usize)>, ()> {
    match value.get_ref() {
        DeValue::String(s) => Ok(vec![(s.to_string(), value.span().start)]),
        DeValue::Array(items) => items
            .iter()
            .map(|item| {
                item.get_ref()
                    .as_str()
                    .map(|s| (s.to_owned(), item.span().start))
                    .ok_or(())
            })
            .collect(),
        _ => Err(()),
    }
}

fn build_globset(
    file: &str,
    key: &str,
    globs: Vec<(String, usize)>,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for (glob, offset) in globs {
        let pattern = glob.trim_start_matches("./").trim_end_matches('/');
        // `*` stays within a directory and `**` crosses them, as in .gitignore.
        match GlobBuilder::new(pattern).literal_separator(true).build() {
            Ok(g) => {
                builder.add(g);
                any = true;
            }
            Err(err) => diags.push(Diagnostic::new(
                file,
                line_at(text, offset),
                Severity::Warning,
                format!("{key}: invalid glob `{glob}`: {err}; ignored"),
            )),
        }
    }
    if !any {
        return None;
    }
    match builder.build() {
        Ok(set) => Some(set),
        Err(err) => {
            diags.push(Diagnostic::new(
                file,
                0,
                Severity::Warning,
                format!("{key}: {err}; ignored"),
            ));
            None
        }
    }
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn valid_dotted(name: &str) -> bool {
    name.split('.').all(valid_identifier)
}

/// 1-based line of a byte offset.
pub(crate) fn line_at(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    let newlines = text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Offset where bracket nesting first exceeds the limit, skipping strings and comments.
fn excessive_nesting(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_TOML_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spice_toml_top_level_keys() {
        let text = r#"
registry_constructors = ["make_registry", "plugins.create"]
decorator_registries = { asset = "assets", fixture = "fixtures" }
include = ["src/**"]
exclude = ["src/shop/legacy", "**/test_*.py"]
"#;
        let (config, diags) = parse(SPICE_TOML, text, false);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.file.as_deref(), Some(SPICE_TOML));
        assert_eq!(
            config.registry_constructors,
            vec!["make_registry", "plugins.create"]
        );
        assert_eq!(config.decorator_registries.len(), 2);
        let asset = config
            .decorator_registry("asset")
            .map(|d| (&d.registry[..], d.line));
        assert_eq!(asset, Some(("assets", 3)));
        assert!(config.selects("src/shop/orders.py"));
        assert!(!config.selects("scripts/run.py"), "not included");
        assert!(
            !config.selects("src/shop/legacy/old.py"),
            "excluded directory"
        );
        assert!(!config.selects("src/shop/test_orders.py"), "excluded glob");
    }

    #[test]
    fn pyproject_tool_spice_table() {
        let text = r#"
[project]
name = "shop"

[tool.black]
line-length = 100

[tool.spice]
registry_constructors = ["make_registry"]

[tool.spice.decorator_registries]
fixture = "fixtures"
asset = "assets"
"#;
        let (config, diags) = parse(PYPROJECT_TOML, text, true);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.registry_constructors, vec!["make_registry"]);
        let lines: Vec<_> = config
            .decorator_registries
            .iter()
            .map(|d| (d.decorator.as_str(), d.registry.as_str(), d.line))
            .collect();
        assert_eq!(
            lines,
            vec![("asset", "assets", 13), ("fixture", "fixtures", 12)]
        );
        assert!(config.selects("anything.py"));
    }

    #[test]
    fn pyproject_without_tool_spice_is_no_config() {
        let (config, diags) =
            load(|f| (f == PYPROJECT_TOML).then(|| Ok(b"[project]\nname = \"x\"\n".to_vec())));
        assert!(diags.is_empty());
        assert!(config.file.is_none());
    }

    #[test]
    fn spice_toml_wins_over_pyproject() {
        let (config, _) = load(|f| match f {
            SPICE_TOML => Some(Ok(b"registry_constructors = [\"a\"]\n".to_vec())),
            PYPROJECT_TOML => Some(Ok(
                b"[tool.spice]\nregistry_constructors = [\"b\"]\n".to_vec()
            )),
            _ => None,
        });
        assert_eq!(config.registry_constructors, vec!["a"]);
    }

    #[test]
    fn invalid_toml_gives_a_diagnostic_and_defaults() {
        let (config, diags) = parse(
            SPICE_TOML,
            "registry_constructors = [\n\"a\",\n= oops\n",
            false,
        );
        assert!(config.registry_constructors.is_empty());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].file, SPICE_TOML);
        assert!(diags[0].line >= 2, "{diags:?}");
        assert!(diags[0].message.contains("invalid TOML"));
    }

    #[test]
    fn bad_values_fall_back_per_key() {
        let text = "registry_constructors = 3\ndecorator_registries = { asset = 1, fixture = \"fixtures\" }\ninclude = [\"src/[\"]\nexclude = [\"docs\"]\ncolour = \"red\"\n";
        let (config, diags) = parse(SPICE_TOML, text, false);
        let mut lines: Vec<u32> = diags.iter().map(|d| d.line).collect();
        lines.sort();
        assert_eq!(lines, vec![1, 2, 3, 5], "{diags:?}");
        assert!(config.registry_constructors.is_empty());
        assert_eq!(config.decorator_registries.len(), 1);
        assert!(config.selects("src/a.py"), "invalid include glob ignored");
        assert!(!config.selects("docs/conf.py"), "valid exclude kept");
    }

    #[test]
    fn deeply_nested_toml_is_refused() {
        let text = format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let (config, diags) = parse(SPICE_TOML, &text, false);
        assert!(config.file.is_none());
        assert!(diags[0].message.contains("nests deeper"));
    }
}

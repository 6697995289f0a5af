//! The viewer's URL builders: links to its own pages (`/registries/…`, with
//! the view and selection in the query string) and to a source line in Azure
//! DevOps. Pure string functions compiled in both builds, because the pages
//! build links in the browser and the server puts source links into the
//! views it returns.

use super::wire::{Selection, ViewSpec};

/// `/registries/<repository>/<registry>`, each part percent-encoded.
pub fn registry_path(repository: &str, registry: &str) -> String {
    format!(
        "/registries/{}/{}",
        encode_component(repository),
        encode_component(registry)
    )
}

/// `/registries/<repository>`.
pub fn repository_path(repository: &str) -> String {
    format!("/registries/{}", encode_component(repository))
}

/// A download of a registry: `/export/<repository>/<registry>/<format>`
/// (`svg`, `png` or `json`); add the view's [`view_query`].
pub fn export_path(repository: &str, registry: &str, format: &str) -> String {
    format!(
        "{}/{}/{}/{}",
        spicehub_routes::EXPORT,
        encode_component(repository),
        encode_component(registry),
        encode_component(format)
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string (with `?`, or empty) of a view and a selection.
pub fn view_query(view: &ViewSpec, automatic: bool, selection: Option<&Selection>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match view {
        _ if automatic => {}
        ViewSpec::Full => parts.push("view=full".into()),
        ViewSpec::Collapsed => parts.push("view=collapsed".into()),
        ViewSpec::Expanded(groups) => {
            parts.extend(
                groups
                    .iter()
                    .map(|g| format!("expand={}", encode_component(g))),
            );
        }
        ViewSpec::Focus { node, k } => {
            parts.push(format!("focus={}", encode_component(node)));
            parts.push(format!("k={k}"));
        }
    }
    match selection {
        Some(Selection::Node(n)) => parts.push(format!("node={}", encode_component(n))),
        Some(Selection::Group(g)) => parts.push(format!("group={}", encode_component(g))),
        None => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The Azure DevOps address of a line: `{web_url}?path=/{file}&line={line}`,
/// pinned to `commit` when it is a full commit id. `None` unless `web_url`
/// is an http(s) URL (it is shown as a link).
pub fn source_link(
    web_url: Option<&str>,
    commit: Option<&str>,
    file: &str,
    line: u32,
) -> Option<String> {
    let base = web_url?.trim();
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || base.contains(['?', '#'])
    {
        return None;
    }
    let mut path = String::from("/");
    for b in file.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    let mut link = format!("{}?path={path}&line={line}", base.trim_end_matches('/'));
    if let Some(commit) =
        commit.filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        link.push_str("&version=GC");
        link.push_str(commit);
    }
    Some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_line_and_only_for_web_urls() {
        let web = Some("https://dev.azure.com/org/proj/_git/repo");
        assert_eq!(
            source_link(web, None, "pkg/mod.py", 12).as_deref(),
            Some("https://dev.azure.com/org/proj/_git/repo?path=/pkg/mod.py&line=12")
        );
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            source_link(web, Some(sha), "a b.py", 1).as_deref(),
            Some(
                "https://dev.azure.com/org/proj/_git/repo?path=/a%20b.py&line=1\
                 &version=GC0123456789abcdef0123456789abcdef01234567"
            )
        );
        assert_eq!(
            source_link(Some("javascript:alert(1)"), None, "a.py", 1),
            None
        );
        assert_eq!(source_link(None, None, "a.py", 1), None);
    }

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(
            registry_path("repo 1", "pkg.reg/x"),
            "/registries/repo%201/pkg.reg%2Fx"
        );
        assert_eq!(
            export_path("repo 1", "pkg.reg/x", "svg"),
            "/export/repo%201/pkg.reg%2Fx/svg"
        );
        assert_eq!(view_query(&ViewSpec::Collapsed, true, None), "");
        assert_eq!(
            view_query(
                &ViewSpec::Focus {
                    node: "a&b".into(),
                    k: 3
                },
                false,
                Some(&Selection::Node("c d".into()))
            ),
            "?focus=a%26b&k=3&node=c%20d"
        );
        assert_eq!(
            view_query(
                &ViewSpec::Expanded(vec!["m.one".into(), "m.two".into()]),
                false,
                Some(&Selection::Group("m.two".into()))
            ),
            "?expand=m.one&expand=m.two&group=m.two"
        );
    }
}

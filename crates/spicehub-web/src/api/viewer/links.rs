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

/// `/registries/<repository>/-/history`: the repository's timeline. The
/// `-` keeps it apart from a registry that happens to be named `history`.
pub fn history_path(repository: &str) -> String {
    format!("{}/-/history", repository_path(repository))
}

/// `/registries/<repository>/<registry>/diff`, comparing `from` with `to`
/// (each omitted for the page's default: the previous synced commit and
/// the current one).
pub fn diff_path(repository: &str, registry: &str, from: Option<&str>, to: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(from) = from {
        parts.push(format!("from={}", encode_component(from)));
    }
    if let Some(to) = to {
        parts.push(format!("to={}", encode_component(to)));
    }
    let query = if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    };
    format!("{}/diff{query}", registry_path(repository, registry))
}

/// A page address with `commit=` added to its query (`None`: unchanged).
pub fn with_commit(url: &str, commit: Option<&str>) -> String {
    match commit {
        None => url.to_owned(),
        Some(c) if url.contains('?') => format!("{url}&commit={}", encode_component(c)),
        Some(c) => format!("{url}?commit={}", encode_component(c)),
    }
}

/// The commit's page in Azure DevOps (`{web_url}/commit/{id}`), for a full
/// commit id and an http(s) web URL only.
pub fn commit_link(web_url: Option<&str>, commit: &str) -> Option<String> {
    let base = web_url?.trim();
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || base.contains(['?', '#'])
        || commit.len() != 40
        || !commit.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Some(format!("{}/commit/{commit}", base.trim_end_matches('/')))
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

/// The part of the drawing a link opens at (`zoom=<x>,<y>,<w>`): the view's
/// top-left corner and width in whole SVG user units. The height is left
/// out because the drawing's aspect ratio gives it, so a link cannot ask
/// for a distorted view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zoom {
    pub x: i64,
    pub y: i64,
    pub w: i64,
}

/// Largest coordinate a `zoom=` may name: drawings are a few tens of
/// thousands of units at most, and bigger numbers only come from typos.
const MAX_ZOOM_COORD: i64 = 10_000_000;

impl Zoom {
    /// Reads `x,y,w`; anything else (missing parts, fractions, a width of
    /// zero or less, absurd sizes) is `None`, which the page reads as Fit.
    pub fn parse(text: &str) -> Option<Zoom> {
        let mut parts = text.split(',').map(|p| p.trim().parse::<i64>().ok());
        let (x, y, w) = (parts.next()??, parts.next()??, parts.next()??);
        let sane = |v: i64| v.abs() <= MAX_ZOOM_COORD;
        (parts.next().is_none() && w > 0 && sane(x) && sane(y) && sane(w)).then_some(Zoom {
            x,
            y,
            w,
        })
    }
}

impl std::fmt::Display for Zoom {
    /// What [`Zoom::parse`] reads; commas need no escaping in a query.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.x, self.y, self.w)
    }
}

/// The query string (with `?`, or empty) of a view, a selection and a zoom.
pub fn view_query(
    view: &ViewSpec,
    automatic: bool,
    selection: Option<&Selection>,
    zoom: Option<Zoom>,
) -> String {
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
    if let Some(zoom) = zoom {
        parts.push(format!("zoom={zoom}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A raw query string (with or without its `?`) without the parameters
/// `names`, the others kept as they were written; with `?`, or empty.
pub fn query_without(search: &str, names: &[&str]) -> String {
    let kept: Vec<&str> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|part| {
            let name = part.split_once('=').map_or(*part, |(name, _)| name);
            !part.is_empty() && !names.contains(&name)
        })
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// The zoom a raw query string names (the last `zoom=` that reads,
/// percent-decoded: whoever shared the link may have encoded its commas).
pub fn zoom_in(search: &str) -> Option<Zoom> {
    form_urlencoded::parse(search.trim_start_matches('?').as_bytes())
        .filter(|(name, _)| name == "zoom")
        .filter_map(|(_, value)| Zoom::parse(&value))
        .last()
}

/// A raw query string with its `zoom` replaced (or removed, for Fit), so
/// recording the zoom keeps every other parameter as the page wrote it.
pub fn with_zoom(search: &str, zoom: Option<Zoom>) -> String {
    let rest = query_without(search, &["zoom"]);
    match zoom {
        None => rest,
        Some(zoom) if rest.is_empty() => format!("?zoom={zoom}"),
        Some(zoom) => format!("{rest}&zoom={zoom}"),
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
    fn history_links_carry_their_commits_encoded() {
        assert_eq!(history_path("r 1"), "/registries/r%201/-/history");
        assert_eq!(
            diff_path("r", "a.b", Some("c1"), None),
            "/registries/r/a.b/diff?from=c1"
        );
        assert_eq!(diff_path("r", "a", None, None), "/registries/r/a/diff");
        assert_eq!(
            with_commit("/x?view=full", Some("ab")),
            "/x?view=full&commit=ab"
        );
        assert_eq!(with_commit("/x", Some("a&b")), "/x?commit=a%26b");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            commit_link(Some("https://dev.azure.com/o/p/_git/r"), sha).as_deref(),
            Some(
                "https://dev.azure.com/o/p/_git/r/commit/0123456789abcdef0123456789abcdef01234567"
            )
        );
        assert_eq!(commit_link(Some("javascript:x"), sha), None);
        assert_eq!(commit_link(Some("https://x"), "abc"), None);
    }

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
        assert_eq!(view_query(&ViewSpec::Collapsed, true, None, None), "");
        assert_eq!(
            view_query(
                &ViewSpec::Focus {
                    node: "a&b".into(),
                    k: 3
                },
                false,
                Some(&Selection::Node("c d".into())),
                None
            ),
            "?focus=a%26b&k=3&node=c%20d"
        );
        assert_eq!(
            view_query(
                &ViewSpec::Expanded(vec!["m.one".into(), "m.two".into()]),
                false,
                Some(&Selection::Group("m.two".into())),
                None
            ),
            "?expand=m.one&expand=m.two&group=m.two"
        );
        assert_eq!(
            view_query(
                &ViewSpec::Full,
                false,
                Some(&Selection::Node("a".into())),
                Some(Zoom {
                    x: -3,
                    y: 40,
                    w: 900
                })
            ),
            "?view=full&node=a&zoom=-3,40,900"
        );
    }

    #[test]
    fn zoom_round_trips_and_garbage_means_fit() {
        for zoom in [
            Zoom { x: 0, y: 0, w: 1 },
            Zoom {
                x: -120,
                y: 4_500,
                w: 60,
            },
        ] {
            assert_eq!(Zoom::parse(&zoom.to_string()), Some(zoom));
        }
        assert_eq!(
            Zoom::parse(" 10 , 20 ,300 "),
            Some(Zoom {
                x: 10,
                y: 20,
                w: 300
            })
        );
        for garbage in [
            "",
            "fit",
            "1,2",
            "1,2,",
            ",,",
            "1,2,3,4",
            "1,2,0",
            "1,2,-300",
            "1.5,2,300",
            "a,b,c",
            "NaN,0,100",
            "0,0,99999999999",
            "0,0,99999999999999999999999",
            "0;0;100",
        ] {
            assert_eq!(Zoom::parse(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_zoom_is_replaced_in_place_of_the_old_one() {
        let z = Zoom { x: 1, y: 2, w: 300 };
        assert_eq!(with_zoom("", Some(z)), "?zoom=1,2,300");
        assert_eq!(with_zoom("?view=full", Some(z)), "?view=full&zoom=1,2,300");
        assert_eq!(
            with_zoom("view=full&zoom=9,9,9&node=a%20b", Some(z)),
            "?view=full&node=a%20b&zoom=1,2,300"
        );
        assert_eq!(with_zoom("?zoom=9,9,9", None), "");
        assert_eq!(with_zoom("?zoom&view=full", None), "?view=full");
        assert_eq!(
            query_without("?expand=a&node=x&zoomed=1&find=q", &["node", "find"]),
            "?expand=a&zoomed=1"
        );
    }

    #[test]
    fn the_zoom_is_read_back_from_a_query() {
        let z = Some(Zoom {
            x: -4,
            y: 2,
            w: 300,
        });
        assert_eq!(zoom_in("?view=full&zoom=-4,2,300&node=a"), z);
        assert_eq!(zoom_in("zoom=-4%2C2%2c300"), z);
        // However the sharer's tool encoded it.
        assert_eq!(zoom_in("?zoom=%2D4%2C2%2C300"), z);
        assert_eq!(zoom_in(&with_zoom("?node=a", z)), z);
        // A later one wins, garbage and look-alikes are Fit.
        assert_eq!(zoom_in("?zoom=1,1,1&zoom=-4,2,300"), z);
        assert_eq!(zoom_in("?zoom=1,1"), None);
        assert_eq!(zoom_in("?zoomed=1,1,1"), None);
        assert_eq!(zoom_in(""), None);
    }
}

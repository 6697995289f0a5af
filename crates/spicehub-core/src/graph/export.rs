//! Downloads of a registry from the viewer: a view's SVG rasterised to PNG
//! (resvg, pure Rust, bounded in size and in how many run at once), the
//! registry as JSON in the parser's shape (registries.md §6), and the file
//! names they are saved under.
//!
//! The SVG itself is [`super::svg::render`] of the view's cached layout;
//! nothing here runs `dot`.

use std::sync::{Arc, LazyLock};

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};
use serde::Serialize;
use spicehub_parser::{Diagnostic, Edge, Entry, Registry};

use super::layout::{LayoutError, LayoutSlots};

/// Longest side of a PNG, in pixels.
pub const MAX_PNG_SIDE: u32 = 4096;
/// Most pixels in a PNG (16 Mpx, 64 MB of RGBA while it is drawn).
pub const MAX_PNG_PIXELS: u64 = 16_000_000;
/// Pixels per SVG unit when the bounds allow: small graphs come out sharp.
pub const PNG_SCALE: f64 = 2.0;
/// Longest file name handed out (without its extension).
const MAX_FILE_STEM: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Every rasterising slot stayed busy (see [`LayoutSlots`]).
    #[error("the hub is busy drawing other pictures; try again in a moment")]
    Busy,
    #[error("the SVG could not be read: {0}")]
    Svg(String),
    #[error("the PNG could not be written: {0}")]
    Png(String),
    #[error("drawing was interrupted: {0}")]
    Interrupted(String),
}

/// The size of the PNG of a `width` × `height` SVG and the scale that gives
/// it: [`PNG_SCALE`], or less so that neither side exceeds
/// [`MAX_PNG_SIDE`] and the area stays within [`MAX_PNG_PIXELS`]. Each
/// side is at least one pixel.
pub fn png_size(width: f64, height: f64) -> (u32, u32, f64) {
    let (w, h) = (width.max(1.0), height.max(1.0));
    let side = f64::from(MAX_PNG_SIDE) / w.max(h);
    // Precision is irrelevant here: the bound is far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let area = (MAX_PNG_PIXELS as f64 / (w * h)).sqrt();
    let scale = PNG_SCALE.min(side).min(area);
    let px = |v: f64| {
        let v = (v * scale).floor().clamp(1.0, f64::from(MAX_PNG_SIDE));
        // In 1..=MAX_PNG_SIDE after the clamp.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let v = v as u32;
        v
    };
    (px(w), px(h), scale)
}

/// The fonts text is drawn with: the system's, loaded once. The SVG asks
/// for Helvetica, Arial or sans-serif; `sans-serif` is mapped to the first
/// common sans family installed (DejaVu Sans on Debian). With no font at
/// all, boxes and edges are drawn without their labels.
static FONTS: LazyLock<Arc<fontdb::Database>> = LazyLock::new(|| {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let preferred = [
        "DejaVu Sans",
        "Liberation Sans",
        "Arial",
        "Helvetica",
        "Noto Sans",
    ];
    let sans = preferred
        .iter()
        .find(|p| families.iter().any(|f| f == *p))
        .map(|p| (*p).to_owned())
        .or_else(|| families.first().cloned());
    match sans {
        Some(family) => db.set_sans_serif_family(family),
        None => tracing::warn!("no font found: PNG downloads are drawn without labels"),
    }
    Arc::new(db)
});

/// Whether any font was found for PNG labels.
pub fn fonts_available() -> bool {
    !FONTS.is_empty()
}

/// The PNG of `svg` (the hub's own SVG: no external references), at the
/// size [`png_size`] gives. CPU-bound: run it off the async workers
/// ([`png`] does).
pub fn rasterize(svg: &str) -> Result<Vec<u8>, ExportError> {
    let options = usvg::Options {
        fontdb: FONTS.clone(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| ExportError::Svg(e.to_string()))?;
    let size = tree.size();
    let (w, h, scale) = png_size(f64::from(size.width()), f64::from(size.height()));
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| ExportError::Png(format!("cannot allocate {w}×{h} pixels")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    // The scale is at most PNG_SCALE: f32 is plenty.
    #[allow(clippy::cast_possible_truncation)]
    let scale = scale as f32;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| ExportError::Png(e.to_string()))
}

/// [`rasterize`] on the blocking pool, once one of `slots` is free (or
/// [`ExportError::Busy`] after the slots' wait). The slot is held until the
/// drawing ends, even when the caller has gone.
pub async fn png(svg: String, slots: &LayoutSlots) -> Result<Vec<u8>, ExportError> {
    let slot = slots.acquire().await.map_err(|e| match e {
        LayoutError::Busy(_) => ExportError::Busy,
        other => ExportError::Interrupted(other.to_string()),
    })?;
    match tokio::task::spawn_blocking(move || {
        let _slot = slot;
        rasterize(&svg)
    })
    .await
    {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(ExportError::Interrupted(e.to_string())),
        },
    }
}

/// A file name made of `parts` joined by `-`: ASCII letters, digits, `.`,
/// `_` and `-` kept, anything else `_`, no leading dot, at most
/// [`MAX_FILE_STEM`] characters, then `.ext`. Safe inside a quoted
/// `Content-Disposition` filename.
pub fn file_name(parts: &[&str], ext: &str) -> String {
    let joined = parts.join("-");
    let mut stem: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FILE_STEM)
        .collect();
    let dots = stem.len() - stem.trim_start_matches('.').len();
    stem.replace_range(..dots, &"_".repeat(dots));
    if stem.is_empty() {
        stem.push_str("registry");
    }
    format!("{stem}.{ext}")
}

/// The registry as the parser prints a graph (registries.md §6: registries,
/// entries, edges, diagnostics, sorted as §6 sorts them), restricted to one
/// registry, after where it comes from.
#[derive(Debug, Serialize)]
struct RegistryDocument<'a> {
    repository: &'a str,
    repository_id: &'a str,
    commit: &'a str,
    registry: &'a str,
    registries: [&'a Registry; 1],
    entries: Vec<&'a Entry>,
    edges: Vec<&'a Edge>,
    diagnostics: Vec<&'a Diagnostic>,
}

/// Where a registry's JSON comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `project/name`, or the id when the repository row is gone.
    pub repository: &'a str,
    pub repository_id: &'a str,
    pub commit: &'a str,
}

/// The diagnostics about `registry`: those of the files it is declared in
/// or has entries in, and those that name it (dangling edges).
pub fn registry_diagnostics<'a>(
    registry: &Registry,
    entries: &[Entry],
    diagnostics: &'a [Diagnostic],
) -> Vec<&'a Diagnostic> {
    let files: std::collections::HashSet<&str> = std::iter::once(registry.file.as_str())
        .chain(entries.iter().map(|e| e.file.as_str()))
        .collect();
    let named = format!("`{}`", registry.id);
    diagnostics
        .iter()
        .filter(|d| files.contains(d.file.as_str()) || d.message.contains(&named))
        .collect()
}

/// The JSON document of one registry (pretty, with a trailing newline).
pub fn registry_json(
    origin: Origin<'_>,
    registry: &Registry,
    entries: &[Entry],
    edges: &[Edge],
    diagnostics: &[Diagnostic],
) -> Result<String, serde_json::Error> {
    let mut diagnostics = registry_diagnostics(registry, entries, diagnostics);
    diagnostics.sort_by(|a, b| (&a.file, a.line, &a.message).cmp(&(&b.file, b.line, &b.message)));
    let mut entries: Vec<&Entry> = entries.iter().collect();
    entries.sort_by(|a, b| {
        (&a.registry, &a.name, &a.file, a.line).cmp(&(&b.registry, &b.name, &b.file, b.line))
    });
    let mut edges: Vec<&Edge> = edges.iter().collect();
    edges.sort_by(|a, b| {
        (&a.registry, &a.from, &a.to, a.kind).cmp(&(&b.registry, &b.from, &b.to, b.kind))
    });
    let document = RegistryDocument {
        repository: origin.repository,
        repository_id: origin.repository_id,
        commit: origin.commit,
        registry: &registry.id,
        registries: [registry],
        entries,
        edges,
        diagnostics,
    };
    let mut out = serde_json::to_string_pretty(&document)?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_parser::{EdgeKind, EntryKind, Severity};

    #[test]
    fn png_sizes_are_bounded() {
        assert_eq!(png_size(100.0, 50.0), (200, 100, 2.0));
        let (w, h, _) = png_size(100_000.0, 20_000.0);
        assert_eq!(w, MAX_PNG_SIDE);
        assert!(h <= MAX_PNG_SIDE && u64::from(w) * u64::from(h) <= MAX_PNG_PIXELS);
        let (w, h, _) = png_size(4000.0, 4000.0);
        assert!(u64::from(w) * u64::from(h) <= MAX_PNG_PIXELS, "{w}×{h}");
        assert!(w <= MAX_PNG_SIDE && h <= MAX_PNG_SIDE);
        let (w, h, _) = png_size(1_000_000.0, 1.0);
        assert_eq!((w, h), (MAX_PNG_SIDE, 1));
        assert_eq!(png_size(0.0, f64::NAN).0, 2);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name(&["shop.registry.pipelines", "full"], "svg"),
            "shop.registry.pipelines-full.svg"
        );
        assert_eq!(
            file_name(&["a\"b/c\\d\r\n", "focus", "<x>"], "png"),
            "a_b_c_d__-focus-_x_.png"
        );
        assert_eq!(file_name(&["..", "full"], "svg"), "__-full.svg");
        assert_eq!(file_name(&[""], "json"), "registry.json");
        assert_eq!(file_name(&["é"], "json"), "_.json");
        assert!(file_name(&[&"x".repeat(500)], "svg").len() <= MAX_FILE_STEM + 4);
    }

    #[test]
    fn a_small_svg_becomes_a_png() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\">\
                   <rect width=\"40\" height=\"20\" fill=\"#eef\"/>\
                   <text x=\"2\" y=\"12\" font-family=\"Helvetica, Arial, sans-serif\">a</text></svg>";
        let png = rasterize(svg).expect("png");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(&png[16..24], &[0, 0, 0, 80, 0, 0, 0, 40]);
        assert!(matches!(rasterize("<nope"), Err(ExportError::Svg(_))));
        // With a font installed (DejaVu on Debian), the label is drawn.
        let blank = rasterize(&svg.replace(">a</text>", "></text>")).expect("png");
        assert_eq!(
            fonts_available(),
            png != blank,
            "labels drawn iff a font exists"
        );
    }

    #[test]
    fn registry_json_keeps_its_own_diagnostics() {
        let registry = Registry {
            id: "pkg.reg".into(),
            label: "reg".into(),
            file: "pkg/reg.py".into(),
            line: 1,
        };
        let entry = |name: &str, file: &str| Entry {
            registry: "pkg.reg".into(),
            name: name.into(),
            kind: EntryKind::Function,
            target: format!("pkg.{name}"),
            file: file.into(),
            line: 3,
            doc: None,
        };
        let entries = vec![entry("b", "pkg/b.py"), entry("a", "pkg/a.py")];
        let edges = vec![Edge {
            registry: "pkg.reg".into(),
            from: "a".into(),
            to: "b".into(),
            kind: EdgeKind::Explicit,
            dangling: false,
        }];
        let diag = |file: &str, message: &str| Diagnostic {
            file: file.into(),
            line: 2,
            severity: Severity::Warning,
            message: message.into(),
        };
        let diagnostics = vec![
            diag("pkg/a.py", "in a"),
            diag("other.py", "elsewhere"),
            diag("x.py", "dangling edge in `pkg.reg`: ..."),
            diag("pkg/reg.py", "in the declaration"),
        ];
        let origin = Origin {
            repository: "proj/repo",
            repository_id: "r1",
            commit: "c1",
        };
        let json = registry_json(origin, &registry, &entries, &edges, &diagnostics).expect("json");
        let value: serde_json::Value = serde_json::from_str(&json).expect("parses");
        assert_eq!(value["repository"], "proj/repo");
        assert_eq!(value["commit"], "c1");
        assert_eq!(value["registry"], "pkg.reg");
        assert_eq!(value["registries"][0]["file"], "pkg/reg.py");
        assert_eq!(value["entries"][0]["name"], "a", "sorted");
        assert_eq!(value["entries"][0]["doc"], serde_json::Value::Null);
        assert_eq!(value["edges"][0]["kind"], "explicit");
        let files: Vec<&str> = value["diagnostics"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|d| d["file"].as_str())
            .collect();
        assert_eq!(files, ["pkg/a.py", "pkg/reg.py", "x.py"]);
        assert_eq!(value["diagnostics"][0]["severity"], "warning");
    }
}

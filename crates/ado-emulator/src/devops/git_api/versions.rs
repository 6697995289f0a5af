//! Version descriptors (`version`, `versionType`, `versionOptions`), shared by items, commits and diffs: one
//! resolver so every section names a commit by branch, tag or id alike and fails with the same TF401175.

use axum::body::Body;
use axum::http::{Response, StatusCode};

use super::or_internal;
use crate::devops::{bad_request, Ctx};
use crate::git;
use crate::http::{self, tf_error};
use crate::state::RepoState;

/// A version descriptor (`version`, `versionType`, `versionOptions`).
#[derive(Clone, Debug)]
pub(super) struct VersionDescriptor {
    pub(super) version: Option<String>,
    pub(super) vtype: String,
    pub(super) options: Option<String>,
}

impl VersionDescriptor {
    pub(super) fn from_query(
        ctx: &Ctx,
        version: &[&str],
        vtype: &[&str],
        options: &[&str],
    ) -> VersionDescriptor {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| ctx.query.get(name))
                .map(str::to_string)
        };
        VersionDescriptor {
            version: first(version),
            vtype: first(vtype)
                .unwrap_or_else(|| "branch".into())
                .to_ascii_lowercase(),
            options: first(options).map(|value| value.to_ascii_lowercase()),
        }
    }
    pub(super) fn type_label(&self) -> &'static str {
        match self.vtype.as_str() {
            "commit" => "Commit",
            "tag" => "Tag",
            _ => "Branch",
        }
    }
}

fn no_branches(repo: &RepoState) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "VS403403: Cannot find any branches for the {} repository.",
            repo.name
        ),
        "GitItemNotFoundException",
        http::TN_ITEM_NOT_FOUND,
    )
}

/// Resolves a version descriptor to `(commit id, "<Branch: main >" label, version shown in urls)`.
pub(super) fn resolve(
    repo: &RepoState,
    descriptor: &VersionDescriptor,
) -> Result<(String, String, String), Response<Body>> {
    let dir = &repo.path;
    let version = match &descriptor.version {
        Some(version) => version.clone(),
        None => match repo.default_branch() {
            Some(branch) if descriptor.vtype == "branch" => {
                branch.trim_start_matches("refs/heads/").to_string()
            }
            Some(_) | None if descriptor.vtype != "branch" => {
                return Err(bad_request(
                    "A version must be specified for this version type.",
                ))
            }
            _ => return Err(no_branches(repo)),
        },
    };
    let label = format!("<{}: {} >", descriptor.type_label(), version);
    let unresolvable = || {
        tf_error(
            StatusCode::NOT_FOUND,
            &format!(
                "TF401175:The version descriptor {label} could not be resolved to a version in the repository {}",
                repo.name
            ),
            "GitUnresolvableToCommitException",
            http::TN_UNRESOLVABLE,
        )
    };
    let rev = match descriptor.vtype.as_str() {
        "branch" => format!("refs/heads/{}", version.trim_start_matches("refs/heads/")),
        "tag" => format!("refs/tags/{}", version.trim_start_matches("refs/tags/")),
        "commit" => {
            if !git::is_hex(&version) || version.len() < 4 {
                return Err(unresolvable());
            }
            version.clone()
        }
        other => {
            return Err(bad_request(&format!(
                "The value '{other}' is not valid for versionType."
            )))
        }
    };
    let commit =
        or_internal(git::rev_parse(dir, &format!("{rev}^{{commit}}")))?.ok_or_else(unresolvable)?;
    let commit = match descriptor.options.as_deref() {
        Some("previouschange") => {
            let info = or_internal(git::commit(dir, &commit))?.ok_or_else(unresolvable)?;
            info.parents.first().cloned().ok_or_else(unresolvable)?
        }
        _ => commit,
    };
    Ok((commit, label, version))
}

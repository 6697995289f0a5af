//! URL building shared by every endpoint: the organization path, the
//! `_apis/git/repositories/{repo}` prefix and a query string that always carries
//! `api-version`. One builder means no endpoint can forget the API version or encode
//! a path segment differently from the others; the continuation-token header read by
//! paged listings lives here for the same reason.

use reqwest::header::HeaderMap;

use super::{AzureClient, GitVersion};
use crate::diagnosis::AzureError;
use crate::API_VERSION;

/// Query-string builder that keeps `$top`/`$skip` readable (form encoding would turn
/// `$` into `%24`; both are valid, the literal is what Microsoft documents).
#[derive(Default)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn new() -> Self {
        Query::default()
    }

    pub(super) fn push(mut self, k: &str, v: impl ToString) -> Self {
        self.0.push((k.to_string(), v.to_string()));
        self
    }

    pub(super) fn push_opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.push(k, v),
            None => self,
        }
    }

    pub(super) fn version(self, prefix: &str, v: &GitVersion) -> Self {
        let (version, kind) = v.parts();
        self.push(&format!("{prefix}.version"), version)
            .push(&format!("{prefix}.versionType"), kind)
    }

    fn apply(self, url: &mut url::Url) {
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k).replace("%24", "$"), enc(v)))
            .collect();
        parts.push(format!("api-version={API_VERSION}"));
        url.set_query(Some(&parts.join("&")));
    }
}

impl AzureClient {
    /// `{devops_url}/{organization}/{segments}?{query}&api-version=7.1`; empty segments
    /// are skipped so that a caller can pass an optional project as `""`.
    pub(super) fn url(&self, segments: &[&str], query: Query) -> Result<url::Url, AzureError> {
        let mut url = self.shared.devops_url.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                AzureError::InvalidArgument("Azure DevOps URL cannot be a base".into())
            })?;
            path.pop_if_empty();
            path.push(&self.org);
            for s in segments.iter().filter(|s| !s.is_empty()) {
                path.push(s);
            }
        }
        query.apply(&mut url);
        Ok(url)
    }

    /// A repository's resource (`{project}/_apis/git/repositories/{repo}/{tail}`).
    pub(super) fn repo_url(
        &self,
        project: &str,
        repo: &str,
        tail: &[&str],
        query: Query,
    ) -> Result<url::Url, AzureError> {
        let mut segs = vec![project, "_apis", "git", "repositories", repo];
        segs.extend_from_slice(tail);
        self.url(&segs, query)
    }
}

/// The next page's token, from the header Azure DevOps puts it in.
pub(super) fn continuation_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-ms-continuationtoken")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_dollar_and_encodes_values() {
        let mut u = url::Url::parse("https://dev.azure.com/org/_apis/projects")
            .unwrap_or_else(|e| panic!("{e}"));
        Query::new()
            .push("$top", 5)
            .push("path", "/a b/c+d.py")
            .apply(&mut u);
        assert_eq!(
            u.query(),
            Some("$top=5&path=%2Fa+b%2Fc%2Bd.py&api-version=7.1")
        );
    }
}

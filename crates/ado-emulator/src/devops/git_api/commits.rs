//! Commits section: `GET .../commits` (search criteria), `GET .../commits/{commitId}[/changes]` and
//! `POST .../commitsbatch`. Search criteria keep ADO's names, optional `searchCriteria.` prefix and date formats
//! so a client written against Azure DevOps works here unchanged.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::changes::{cached_counts, change_counts, change_json, change_type, commit_diff};
use super::pushes::{push_commits, pusher_json};
use super::repositories::{repo_api_url, repo_web_url};
use super::versions::{resolve, VersionDescriptor};
use super::{internal, or_internal};
use crate::devops::{bad_request, parse_bool, parse_usize, Ctx, HandlerResult};
use crate::git::{self, CommitInfo};
use crate::http::{self, ado_json, ado_time, git_time, tf_error};
use crate::state::{PushRecord, RepoState};
use crate::EmulatorError;

fn person_json(person: &git::Person) -> Value {
    json!({"name": person.name, "email": person.email, "date": git_time(person.time)})
}

/// `GitCommitRef` as listed (comment truncated to its first line / 100 characters).
pub(super) fn commit_ref_json(
    ctx: &Ctx,
    repo: &RepoState,
    commit: &CommitInfo,
    counts: bool,
) -> Result<Value, EmulatorError> {
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let full = commit.message.trim_end();
    let first = full.lines().next().unwrap_or("");
    let truncated = first.chars().count() > 100 || full.len() > first.len();
    let comment: String = first.chars().take(100).collect();
    let mut commit_ref = Map::new();
    commit_ref.insert("commitId".into(), json!(commit.id));
    commit_ref.insert("author".into(), person_json(&commit.author));
    commit_ref.insert("committer".into(), person_json(&commit.committer));
    commit_ref.insert("comment".into(), json!(comment));
    if truncated {
        commit_ref.insert("commentTruncated".into(), json!(true));
    }
    if counts {
        commit_ref.insert("changeCounts".into(), json!(cached_counts(repo, commit)?));
    }
    commit_ref.insert(
        "url".into(),
        json!(format!("{repo_url}/commits/{}", commit.id)),
    );
    commit_ref.insert(
        "remoteUrl".into(),
        json!(format!("{web}/commit/{}", commit.id)),
    );
    Ok(Value::Object(commit_ref))
}

fn push_of(repo: &RepoState, commit: &str) -> Option<PushRecord> {
    repo.pushes
        .lock()
        .iter()
        .find(|push| push.commits.iter().any(|pushed| pushed == commit))
        .cloned()
}

/// Dates as ADO accepts them: RFC 3339, `2014-01-15`, `2014-02-01T14:00`, or `6/14/2018 12:00:00 AM`.
pub(super) fn parse_date(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(parsed) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(parsed.unix_timestamp());
    }
    if text.contains('/') {
        // M/D/YYYY [h:mm[:ss] [AM|PM]] (UTC)
        let mut parts = text.split_whitespace();
        let date_fields: Vec<i64> = parts
            .next()?
            .split('/')
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let (month, day, year) = (
            *date_fields.first()?,
            *date_fields.get(1)?,
            *date_fields.get(2)?,
        );
        let mut hms = [0i64; 3];
        if let Some(clock) = parts.next() {
            for (i, field) in clock.split(':').enumerate().take(3) {
                hms[i] = field.parse().ok()?;
            }
        }
        match parts.next().map(str::to_ascii_uppercase).as_deref() {
            Some("PM") if hms[0] < 12 => hms[0] += 12,
            Some("AM") if hms[0] == 12 => hms[0] = 0,
            _ => {}
        }
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = time::Date::from_calendar_date(
            i32::try_from(year).ok()?,
            month,
            u8::try_from(day).ok()?,
        )
        .ok()?;
        let clock_field = |index: usize| u8::try_from(hms[index]).ok();
        let time_of_day =
            time::Time::from_hms(clock_field(0)?, clock_field(1)?, clock_field(2)?).ok()?;
        return Some(
            time::PrimitiveDateTime::new(date, time_of_day)
                .assume_utc()
                .unix_timestamp(),
        );
    }
    let with_time = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else if text.len() == 16 {
        format!("{text}:00Z")
    } else if text.len() == 19 {
        format!("{text}Z")
    } else {
        text.to_string()
    };
    OffsetDateTime::parse(&with_time, &Rfc3339)
        .ok()
        .map(|parsed| parsed.unix_timestamp())
}

/// `GET .../commits` — `searchCriteria.*` (prefix optional): `itemVersion`, `compareVersion`, `fromCommitId`,
/// `toCommitId`, `ids`, `author`, `fromDate`, `toDate`, `itemPath`, `showOldestCommitsFirst`, `$top` (100),
/// `$skip`; or `pushId` with `top`/`skip`.
pub(super) fn commits_list(ctx: &Ctx, repo: &RepoState) -> HandlerResult {
    let query = &ctx.query;
    if let Some(push_id) = query.get("pushId") {
        return push_commits(ctx, repo, push_id);
    }
    let dir = &repo.path;
    let top = parse_usize("$top", query.sc("$top").or(query.get("top")))?;
    let skip = parse_usize("$skip", query.sc("$skip").or(query.get("skip")))?.unwrap_or(0);
    let ids: Vec<String> = query
        .all("searchCriteria.ids")
        .into_iter()
        .chain(query.all("ids"))
        .flat_map(|value| {
            value
                .split(',')
                .map(|id| id.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|id| !id.is_empty())
        .collect();
    let mut infos: Vec<CommitInfo> = if !ids.is_empty() {
        or_internal(git::commits(dir, &ids))?
    } else {
        if repo.default_branch().is_none()
            && query.sc("itemVersion.version").is_none()
            && query.sc("toCommitId").is_none()
        {
            return Ok(ado_json(StatusCode::OK, &json!({"count": 0, "value": []})));
        }
        let item = VersionDescriptor {
            version: query.sc("itemVersion.version").map(str::to_string),
            vtype: query
                .sc("itemVersion.versionType")
                .unwrap_or("branch")
                .to_ascii_lowercase(),
            options: query
                .sc("itemVersion.versionOptions")
                .map(str::to_ascii_lowercase),
        };
        let mut include = Vec::new();
        match query.sc("toCommitId") {
            Some(to) => include.push(
                resolve(
                    repo,
                    &VersionDescriptor {
                        version: Some(to.to_string()),
                        vtype: "commit".into(),
                        options: None,
                    },
                )?
                .0,
            ),
            None => include.push(resolve(repo, &item)?.0),
        }
        let mut exclude = Vec::new();
        if let Some(compare_version) = query.sc("compareVersion.version") {
            let compare = VersionDescriptor {
                version: Some(compare_version.to_string()),
                vtype: query
                    .sc("compareVersion.versionType")
                    .unwrap_or("branch")
                    .to_ascii_lowercase(),
                options: query
                    .sc("compareVersion.versionOptions")
                    .map(str::to_ascii_lowercase),
            };
            exclude.push(resolve(repo, &compare)?.0);
        }
        if let Some(from) = query.sc("fromCommitId") {
            let (from, _, _) = resolve(
                repo,
                &VersionDescriptor {
                    version: Some(from.to_string()),
                    vtype: "commit".into(),
                    options: None,
                },
            )?;
            // [INFER] fromCommitId is inclusive: exclude what precedes it.
            if let Some(info) = or_internal(git::commit(dir, &from))? {
                exclude.extend(info.parents);
            }
        }
        let filter = git::LogFilter {
            include,
            exclude,
            author: query.sc("author").map(str::to_string),
            committer: query.sc("user").map(str::to_string),
            since: query.sc("fromDate").and_then(parse_date),
            until: query.sc("toDate").and_then(parse_date),
            path: query
                .sc("itemPath")
                .map(|path| path.trim_start_matches('/').to_string())
                .filter(|path| !path.is_empty()),
        };
        or_internal(git::log(dir, &filter))?
    };
    if parse_bool("showOldestCommitsFirst", query.sc("showOldestCommitsFirst"))?.unwrap_or(false) {
        infos.reverse();
    }
    let page = ctx.page(top, 100);
    let item_path = query
        .sc("itemPath")
        .map(|path| format!("/{}", path.trim_matches('/')))
        .filter(|path| path != "/");
    let value: Vec<Value> = infos
        .iter()
        .skip(skip)
        .take(page)
        .map(|commit| {
            let mut commit_ref = commit_ref_json(ctx, repo, commit, true)?;
            // With itemPath, ADO lists the commit's changes to that path.
            if let (Some(item_path), Some(obj)) = (&item_path, commit_ref.as_object_mut()) {
                let under = format!("{item_path}/");
                let changes: Vec<Value> = commit_diff(repo, commit)?
                    .iter()
                    .filter(|change| {
                        let path = format!("/{}", change.path);
                        path == *item_path || path.starts_with(&under)
                    })
                    .map(|change| json!({"sourceServerItem": format!("/{}", change.path), "changeType": change_type(change)}))
                    .collect();
                obj.insert("changes".into(), json!(changes));
            }
            Ok(commit_ref)
        })
        .collect::<Result<_, EmulatorError>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

fn commit_not_found(repo: &RepoState, id: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF401029: The commit {id} does not exist in the repository {}.",
            repo.name
        ),
        "GitCommitDoesNotExistException",
        http::TN_COMMIT_NOT_FOUND,
    )
}

/// `GET .../commits/{commitId}` (`changeCount`).
pub(super) fn commit_get(ctx: &Ctx, repo: &RepoState, id: &str) -> HandlerResult {
    let Some(commit) = or_internal(git::commit(&repo.path, id))
        .ok()
        .flatten()
        .filter(|_| git::is_hex(id))
    else {
        return Err(commit_not_found(repo, id));
    };
    let change_count = parse_usize("changeCount", ctx.query.get("changeCount"))?.unwrap_or(0);
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let mut fields = Map::new();
    fields.insert("treeId".into(), json!(commit.tree));
    fields.insert("parents".into(), json!(commit.parents));
    if let Some(push) = push_of(repo, &commit.id) {
        fields.insert(
            "push".into(),
            json!({"pushedBy": pusher_json(&ctx.shared, &ctx.org, &push), "pushId": push.push_id, "date": ado_time(push.date)}),
        );
    }
    fields.insert("commitId".into(), json!(commit.id));
    fields.insert("author".into(), person_json(&commit.author));
    fields.insert("committer".into(), person_json(&commit.committer));
    fields.insert("comment".into(), json!(commit.message));
    if change_count > 0 {
        let entries = or_internal(commit_diff(repo, &commit))?;
        fields.insert("changeCounts".into(), json!(change_counts(&entries)));
        let changes: Vec<Value> = entries
            .iter()
            .take(change_count)
            .map(|change| change_json(&repo_url, &commit.id, change, false))
            .collect();
        fields.insert("changes".into(), json!(changes));
    }
    fields.insert(
        "url".into(),
        json!(format!("{repo_url}/commits/{}", commit.id)),
    );
    fields.insert(
        "remoteUrl".into(),
        json!(format!("{web}/commit/{}", commit.id)),
    );
    fields.insert(
        "_links".into(),
        json!({
            "self": {"href": format!("{repo_url}/commits/{}", commit.id)},
            "repository": {"href": repo_url},
            "changes": {"href": format!("{repo_url}/commits/{}/changes", commit.id)},
            "web": {"href": format!("{web}/commit/{}", commit.id)},
            "tree": {"href": format!("{repo_url}/trees/{}", commit.tree)},
        }),
    );
    Ok(ado_json(StatusCode::OK, &Value::Object(fields)))
}

/// `GET .../commits/{commitId}/changes` (`top`, `skip`).
pub(super) fn commit_changes(ctx: &Ctx, repo: &RepoState, id: &str) -> HandlerResult {
    let Some(commit) = or_internal(git::commit(&repo.path, id))
        .ok()
        .flatten()
        .filter(|_| git::is_hex(id))
    else {
        return Err(commit_not_found(repo, id));
    };
    let top = parse_usize("top", ctx.query.get("top").or(ctx.query.get("$top")))?;
    let skip = parse_usize("skip", ctx.query.get("skip").or(ctx.query.get("$skip")))?.unwrap_or(0);
    let entries = or_internal(commit_diff(repo, &commit))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let page = ctx.page(top, 100);
    let changes: Vec<Value> = entries
        .iter()
        .skip(skip)
        .take(page)
        .map(|change| change_json(&repo_url, &commit.id, change, false))
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"changeCounts": change_counts(&entries), "changes": changes}),
    ))
}

/// `POST .../commitsbatch` — body `GitQueryCommitsCriteria` (`ids`, or `itemVersion` + `compareVersion`).
pub(super) fn commits_batch(ctx: &Ctx, repo: &RepoState) -> HandlerResult {
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|error| bad_request(&format!("Invalid request body: {error}")))?;
    let dir = &repo.path;
    let top = parse_usize(
        "$top",
        ctx.query
            .get("$top")
            .or(body.get("$top").and_then(Value::as_str)),
    )?
    .or(body
        .get("$top")
        .and_then(Value::as_u64)
        .map(|count| count as usize));
    let skip = parse_usize("$skip", ctx.query.get("$skip"))?
        .or(body
            .get("$skip")
            .and_then(Value::as_u64)
            .map(|count| count as usize))
        .unwrap_or(0);
    let descriptor_of = |criteria: &Value| VersionDescriptor {
        version: criteria
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_string),
        vtype: criteria
            .get("versionType")
            .and_then(Value::as_str)
            .unwrap_or("branch")
            .to_ascii_lowercase(),
        options: criteria
            .get("versionOptions")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
    };
    let infos = if let Some(ids) = body.get("ids").and_then(Value::as_array) {
        let ids: Vec<String> = ids
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        or_internal(git::commits(dir, &ids))?
    } else {
        let item = body
            .get("itemVersion")
            .map(descriptor_of)
            .unwrap_or(VersionDescriptor {
                version: None,
                vtype: "branch".into(),
                options: None,
            });
        let include = vec![resolve(repo, &item)?.0];
        let mut exclude = Vec::new();
        if let Some(compare_version) = body.get("compareVersion") {
            exclude.push(resolve(repo, &descriptor_of(compare_version))?.0);
        }
        or_internal(git::log(
            dir,
            &git::LogFilter {
                include,
                exclude,
                ..Default::default()
            },
        ))?
    };
    let page = ctx.page(top, 100);
    let value: Vec<Value> = infos
        .iter()
        .skip(skip)
        .take(page)
        .map(|commit| commit_ref_json(ctx, repo, commit, true))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_ado_formats() {
        let day = 1_718_323_200; // 2024-06-14T00:00:00Z
        assert_eq!(parse_date("2024-06-14"), Some(day));
        assert_eq!(parse_date("2024-06-14T00:00"), Some(day));
        assert_eq!(parse_date("2024-06-14T00:00:00Z"), Some(day));
        assert_eq!(parse_date("6/14/2024 12:00:00 AM"), Some(day));
        assert_eq!(
            parse_date("6/14/2024 1:30:00 PM"),
            Some(day + 13 * 3600 + 1800)
        );
        assert_eq!(parse_date("13/45/2024"), None);
        assert_eq!(parse_date("soon"), None);
    }
}

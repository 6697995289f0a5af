//! Core area: projects (paged with `x-ms-continuationtoken`) and `connectionData`.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::Visibility;
use crate::devops::{bad_request, parse_usize, Ctx, R};
use crate::http::{self, ado_json, ado_time, tf_error};
use crate::state::{OrgState, ProjectState, Shared};

/// Default (and maximum useful) page size of the projects list.
pub const PROJECTS_PAGE: usize = 100;

pub(crate) fn project_not_found(key: &str) -> Response<Body> {
    if Uuid::parse_str(key).is_ok() {
        tf_error(
            StatusCode::NOT_FOUND,
            &format!("VS800075: The project with id 'vstfs:///Classification/TeamProject/{key}' does not exist, or you do not have permission to access it."),
            "ProjectDoesNotExistException",
            "Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistException, Microsoft.TeamFoundation.Core.WebApi",
        )
    } else {
        tf_error(
            StatusCode::NOT_FOUND,
            &format!("TF200016: The following project does not exist: {key}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server."),
            "ProjectDoesNotExistWithNameException",
            http::TN_PROJECT_NOT_FOUND,
        )
    }
}

/// `TeamProjectReference`
pub(crate) fn project_ref_json(shared: &Shared, org: &OrgState, p: &ProjectState) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "url": format!("{}/_apis/projects/{}", shared.org_url(org), p.id),
        "state": "wellFormed",
        "revision": p.revision,
        "visibility": match p.visibility { Visibility::Private => "private", Visibility::Public => "public" },
        "lastUpdateTime": ado_time(p.last_update_time),
    });
    if let (Some(obj), Some(d)) = (v.as_object_mut(), &p.description) {
        obj.insert("description".into(), json!(d));
    }
    v
}

/// `GET {org}/_apis/projects` — `stateFilter`, `$top` (default 100), `$skip`, `continuationToken` (int).
pub(crate) fn list_projects(ctx: &Ctx) -> R {
    let q = &ctx.query;
    let state = q
        .get("stateFilter")
        .unwrap_or("wellFormed")
        .to_ascii_lowercase();
    if !matches!(
        state.as_str(),
        "wellformed" | "all" | "deleting" | "new" | "createpending" | "unchanged" | "deleted"
    ) {
        return Err(bad_request(&format!(
            "The value '{state}' is not valid for stateFilter."
        )));
    }
    let mut projects: Vec<&ProjectState> = if matches!(state.as_str(), "wellformed" | "all") {
        ctx.org.projects.iter().collect()
    } else {
        Vec::new()
    };
    projects.sort_by_key(|p| p.name.to_lowercase());
    let top = parse_usize("$top", q.get("$top"))?;
    let skip = parse_usize("$skip", q.get("$skip"))?.unwrap_or(0);
    let start = match q.get("continuationToken") {
        Some(t) => t
            .trim()
            .parse::<usize>()
            .map_err(|_| bad_request(&format!("The continuation token '{t}' is not valid.")))?,
        None => skip,
    };
    let page = ctx.page(top.map(|t| t.min(PROJECTS_PAGE * 10)), PROJECTS_PAGE);
    let end = (start + page).min(projects.len());
    let value: Vec<Value> = projects
        .get(start.min(projects.len())..end)
        .unwrap_or(&[])
        .iter()
        .map(|p| project_ref_json(&ctx.shared, &ctx.org, p))
        .collect();
    let mut r = ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    );
    if end < projects.len() {
        http::set_header(r.headers_mut(), "x-ms-continuationtoken", &end.to_string());
    }
    Ok(r)
}

/// `GET {org}/_apis/projects/{projectId}`
pub(crate) fn get_project(ctx: &Ctx, key: &str) -> R {
    let Some(p) = ctx.org.project(key) else {
        return Err(project_not_found(key));
    };
    let mut v = project_ref_json(&ctx.shared, &ctx.org, p);
    let org_url = ctx.org_url();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "_links".into(),
            json!({
                "self": {"href": format!("{org_url}/_apis/projects/{}", p.id)},
                "collection": {"href": format!("{org_url}/_apis/projectCollections/{}", ctx.org.id)},
                "web": {"href": format!("{org_url}/{}", crate::state::enc_segment(&p.name))},
            }),
        );
        obj.insert(
            "defaultTeam".into(),
            json!({
                "id": crate::config::derived_id("team", &p.id),
                "name": format!("{} Team", p.name),
                "url": format!("{org_url}/_apis/projects/{}/teams/{}", p.id, crate::config::derived_id("team", &p.id)),
            }),
        );
    }
    Ok(ado_json(StatusCode::OK, &v))
}

/// `GET {org}/_apis/connectionData`
pub(crate) fn connection_data(ctx: &Ctx) -> R {
    let p = &ctx.principal;
    let user = json!({
        "id": p.object_id,
        "descriptor": format!("Microsoft.VisualStudio.Services.Claims.AadServicePrincipal;{}\\{}", ctx.org.tenant_id, p.object_id),
        "subjectDescriptor": format!("aadsp.{}", p.object_id),
        "providerDisplayName": p.display_name,
        "isActive": true,
        "properties": {},
        "resourceVersion": 2,
        "metaTypeId": 0,
    });
    Ok(ado_json(
        StatusCode::OK,
        &json!({
            "authenticatedUser": user,
            "authorizedUser": user,
            "instanceId": ctx.org.id,
            "deploymentId": ctx.org.account_id,
            "deploymentType": "hosted",
            "locationServiceData": {
                "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping",
                "lastChangeId": 1,
                "lastChangeId64": 1,
            },
        }),
    ))
}

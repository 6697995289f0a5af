//! Core area: projects (paged with `x-ms-continuationtoken`) and `connectionData`.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::Visibility;
use crate::devops::{bad_request, parse_usize, Ctx, HandlerResult};
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
pub(crate) fn project_ref_json(shared: &Shared, org: &OrgState, project: &ProjectState) -> Value {
    let mut reference = json!({
        "id": project.id,
        "name": project.name,
        "url": format!("{}/_apis/projects/{}", shared.org_url(org), project.id),
        "state": "wellFormed",
        "revision": project.revision,
        "visibility": match project.visibility { Visibility::Private => "private", Visibility::Public => "public" },
        "lastUpdateTime": ado_time(project.last_update_time),
    });
    if let (Some(obj), Some(description)) = (reference.as_object_mut(), &project.description) {
        obj.insert("description".into(), json!(description));
    }
    reference
}

/// `GET {org}/_apis/projects` — `stateFilter`, `$top` (default 100), `$skip`, `continuationToken` (int).
pub(crate) fn list_projects(ctx: &Ctx) -> HandlerResult {
    let query = &ctx.query;
    let state = query
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
    projects.sort_by_key(|project| project.name.to_lowercase());
    let top = parse_usize("$top", query.get("$top"))?;
    let skip = parse_usize("$skip", query.get("$skip"))?.unwrap_or(0);
    let start = match query.get("continuationToken") {
        Some(token) => token
            .trim()
            .parse::<usize>()
            .map_err(|_| bad_request(&format!("The continuation token '{token}' is not valid.")))?,
        None => skip,
    };
    let page = ctx.page(top.map(|top| top.min(PROJECTS_PAGE * 10)), PROJECTS_PAGE);
    let end = (start + page).min(projects.len());
    let value: Vec<Value> = projects
        .get(start.min(projects.len())..end)
        .unwrap_or(&[])
        .iter()
        .map(|project| project_ref_json(&ctx.shared, &ctx.org, project))
        .collect();
    let mut response = ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    );
    if end < projects.len() {
        http::set_header(
            response.headers_mut(),
            "x-ms-continuationtoken",
            &end.to_string(),
        );
    }
    Ok(response)
}

/// `GET {org}/_apis/projects/{projectId}`
pub(crate) fn get_project(ctx: &Ctx, key: &str) -> HandlerResult {
    let Some(project) = ctx.org.project(key) else {
        return Err(project_not_found(key));
    };
    let mut project_json = project_ref_json(&ctx.shared, &ctx.org, project);
    let org_url = ctx.org_url();
    if let Some(obj) = project_json.as_object_mut() {
        obj.insert(
            "_links".into(),
            json!({
                "self": {"href": format!("{org_url}/_apis/projects/{}", project.id)},
                "collection": {"href": format!("{org_url}/_apis/projectCollections/{}", ctx.org.id)},
                "web": {"href": format!("{org_url}/{}", crate::state::enc_segment(&project.name))},
            }),
        );
        obj.insert(
            "defaultTeam".into(),
            json!({
                "id": crate::config::derived_id("team", &project.id),
                "name": format!("{} Team", project.name),
                "url": format!("{org_url}/_apis/projects/{}/teams/{}", project.id, crate::config::derived_id("team", &project.id)),
            }),
        );
    }
    Ok(ado_json(StatusCode::OK, &project_json))
}

/// `GET {org}/_apis/connectionData`
pub(crate) fn connection_data(ctx: &Ctx) -> HandlerResult {
    let principal = &ctx.principal;
    let user = json!({
        "id": principal.object_id,
        "descriptor": format!("Microsoft.VisualStudio.Services.Claims.AadServicePrincipal;{}\\{}", ctx.org.tenant_id, principal.object_id),
        "subjectDescriptor": format!("aadsp.{}", principal.object_id),
        "providerDisplayName": principal.display_name,
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

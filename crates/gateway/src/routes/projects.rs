//! Projects, scenes, assets and presets, relayed to the project service with the caller's token.
//! Ids in paths are passed through as given; the service answers 400 for a malformed one and 404
//! for one that is missing or someone else's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use studio_proto::project::v1 as pb;

use crate::dto::*;
use crate::error::{ApiResult, Problems};
use crate::extract::{ApiJson, ApiQuery, Authed};
use crate::routes::grpc;
use crate::state::AppState;

/// Creates a project from a text or a topic.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProjectBody,
    responses((status = 201, description = "Created", body = ProjectDto), Problems))]
pub async fn create_project(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(body): ApiJson<CreateProjectBody>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let request = pb::CreateProjectRequest {
        title: body.title,
        source_text: body.source_text,
        topic: body.topic,
        aspect: body.aspect.unwrap_or(AspectDto::Landscape).to_pb() as i32,
        style: body.style.unwrap_or_default(),
        settings: Some(body.settings.unwrap_or_default().into()),
    };
    let project = state
        .project
        .clone()
        .create_project(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok((StatusCode::CREATED, Json(project.into_inner().into())))
}

/// Your projects, newest first.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of projects", body = Page<ProjectDto>), Problems))]
pub async fn list_projects(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ProjectDto>>> {
    let request = pb::ListProjectsRequest {
        page: Some(page.to_pb()),
    };
    let list = state
        .project
        .clone()
        .list_projects(grpc(request, Some(&authed.token), state.timeout))
        .await?
        .into_inner();
    Ok(Json(Page {
        items: list.projects.into_iter().map(Into::into).collect(),
        next_page_token: list.next_page_token,
    }))
}

/// One project.
#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id")),
    responses((status = 200, description = "The project", body = ProjectDto), Problems))]
pub async fn get_project(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectDto>> {
    let project = state
        .project
        .clone()
        .get_project(grpc(
            pb::GetProjectRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(project.into_inner().into()))
}

/// Changes the fields present in the body.
#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id")),
    request_body = UpdateProjectBody,
    responses((status = 200, description = "The updated project", body = ProjectDto), Problems))]
pub async fn update_project(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProjectBody>,
) -> ApiResult<Json<ProjectDto>> {
    let mut mask = Vec::new();
    let mut note = |present: bool, name: &str| {
        if present {
            mask.push(name.to_owned());
        }
    };
    note(body.title.is_some(), "title");
    note(body.source_text.is_some(), "source_text");
    note(body.topic.is_some(), "topic");
    note(body.aspect.is_some(), "aspect");
    note(body.style.is_some(), "style");
    note(body.settings.is_some(), "settings");
    if mask.is_empty() {
        return Err(crate::error::ApiError::invalid(
            "body",
            "name at least one field to change: title, source_text, topic, aspect, style, settings",
        ));
    }
    let request = pb::UpdateProjectRequest {
        id,
        update_mask: mask,
        title: body.title,
        source_text: body.source_text,
        topic: body.topic,
        aspect: body.aspect.map(|a| a.to_pb() as i32).unwrap_or(0),
        style: body.style,
        settings: body.settings.map(Into::into),
    };
    let project = state
        .project
        .clone()
        .update_project(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok(Json(project.into_inner().into()))
}

/// Deletes a project with its scenes and assets, and its jobs: they are gone from every read,
/// running ones are cancelled, and the project's files are purged from storage shortly after.
#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id")),
    responses((status = 204, description = "Deleted"), Problems))]
pub async fn delete_project(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    studio_core::id::ProjectId::parse("id", &id)?;
    // The jobs and files first: a failure leaves the project in place, and deleting again
    // finishes the job (each step is idempotent).
    state
        .jobs
        .clone()
        .delete_project_jobs(grpc(
            studio_proto::job::v1::DeleteProjectJobsRequest {
                project_id: id.clone(),
            },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    state
        .project
        .clone()
        .delete_project(grpc(
            pb::DeleteProjectRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a scene to a project.
#[utoipa::path(post, path = "/v1/projects/{id}/scenes", tag = "scenes", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id")),
    request_body = CreateSceneBody,
    responses((status = 201, description = "Created", body = SceneDto), Problems))]
pub async fn create_scene(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateSceneBody>,
) -> ApiResult<(StatusCode, Json<SceneDto>)> {
    let request = pb::CreateSceneRequest {
        project_id: id,
        position: body.position,
        heading: body.heading,
        narration: body.narration,
        search_terms: body.search_terms,
        duration_s: body.duration_s,
    };
    let scene = state
        .project
        .clone()
        .create_scene(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok((StatusCode::CREATED, Json(scene.into_inner().into())))
}

/// A project's scenes in order.
#[utoipa::path(get, path = "/v1/projects/{id}/scenes", tag = "scenes", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id"), PageQuery),
    responses((status = 200, description = "A page of scenes", body = Page<SceneDto>), Problems))]
pub async fn list_scenes(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<SceneDto>>> {
    let request = pb::ListScenesRequest {
        project_id: id,
        page: Some(page.to_pb()),
    };
    let list = state
        .project
        .clone()
        .list_scenes(grpc(request, Some(&authed.token), state.timeout))
        .await?
        .into_inner();
    Ok(Json(Page {
        items: list.scenes.into_iter().map(Into::into).collect(),
        next_page_token: list.next_page_token,
    }))
}

/// One scene.
#[utoipa::path(get, path = "/v1/scenes/{id}", tag = "scenes", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Scene id")),
    responses((status = 200, description = "The scene", body = SceneDto), Problems))]
pub async fn get_scene(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SceneDto>> {
    let scene = state
        .project
        .clone()
        .get_scene(grpc(
            pb::GetSceneRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(scene.into_inner().into()))
}

/// Changes the fields present in the body.
#[utoipa::path(patch, path = "/v1/scenes/{id}", tag = "scenes", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Scene id")),
    request_body = UpdateSceneBody,
    responses((status = 200, description = "The updated scene", body = SceneDto), Problems))]
pub async fn update_scene(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateSceneBody>,
) -> ApiResult<Json<SceneDto>> {
    let mut mask = Vec::new();
    for (present, name) in [
        (body.position.is_some(), "position"),
        (body.heading.is_some(), "heading"),
        (body.narration.is_some(), "narration"),
        (body.search_terms.is_some(), "search_terms"),
        (body.duration_s.is_some(), "duration_s"),
    ] {
        if present {
            mask.push(name.to_owned());
        }
    }
    if mask.is_empty() {
        return Err(crate::error::ApiError::invalid(
            "body",
            "name at least one field to change: position, heading, narration, search_terms, duration_s",
        ));
    }
    let request = pb::UpdateSceneRequest {
        id,
        update_mask: mask,
        position: body.position,
        heading: body.heading,
        narration: body.narration,
        search_terms: body.search_terms.unwrap_or_default(),
        duration_s: body.duration_s,
    };
    let scene = state
        .project
        .clone()
        .update_scene(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok(Json(scene.into_inner().into()))
}

/// Deletes a scene.
#[utoipa::path(delete, path = "/v1/scenes/{id}", tag = "scenes", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Scene id")),
    responses((status = 204, description = "Deleted"), Problems))]
pub async fn delete_scene(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .project
        .clone()
        .delete_scene(grpc(
            pb::DeleteSceneRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records a stored media object of a project.
#[utoipa::path(post, path = "/v1/projects/{id}/assets", tag = "assets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id")),
    request_body = CreateAssetBody,
    responses((status = 201, description = "Created", body = AssetDto), Problems))]
pub async fn create_asset(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateAssetBody>,
) -> ApiResult<(StatusCode, Json<AssetDto>)> {
    let m = body.media;
    let request = pb::CreateAssetRequest {
        project_id: id,
        scene_id: body.scene_id,
        kind: body.kind.to_pb() as i32,
        storage_key: body.storage_key,
        media: Some(pb::MediaInfo {
            mime_type: m.mime_type,
            size_bytes: m.size_bytes,
            width_px: m.width_px,
            height_px: m.height_px,
            duration_s: m.duration_s,
            sha256: m.sha256,
        }),
        credit: body.credit,
    };
    let asset = state
        .project
        .clone()
        .create_asset(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok((StatusCode::CREATED, Json(asset.into_inner().into())))
}

/// A project's assets.
#[utoipa::path(get, path = "/v1/projects/{id}/assets", tag = "assets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id"), PageQuery),
    responses((status = 200, description = "A page of assets", body = Page<AssetDto>), Problems))]
pub async fn list_assets(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AssetDto>>> {
    let request = pb::ListAssetsRequest {
        project_id: id,
        page: Some(page.to_pb()),
    };
    let list = state
        .project
        .clone()
        .list_assets(grpc(request, Some(&authed.token), state.timeout))
        .await?
        .into_inner();
    Ok(Json(Page {
        items: list.assets.into_iter().map(Into::into).collect(),
        next_page_token: list.next_page_token,
    }))
}

/// One asset.
#[utoipa::path(get, path = "/v1/assets/{id}", tag = "assets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Asset id")),
    responses((status = 200, description = "The asset", body = AssetDto), Problems))]
pub async fn get_asset(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<AssetDto>> {
    let asset = state
        .project
        .clone()
        .get_asset(grpc(
            pb::GetAssetRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(asset.into_inner().into()))
}

/// Forgets an asset (the stored object is removed by the storage lifecycle).
#[utoipa::path(delete, path = "/v1/assets/{id}", tag = "assets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Asset id")),
    responses((status = 204, description = "Deleted"), Problems))]
pub async fn delete_asset(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .project
        .clone()
        .delete_asset(grpc(
            pb::DeleteAssetRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Built-in presets and yours.
#[utoipa::path(get, path = "/v1/presets", tag = "presets", security(("bearer" = [])),
    responses((status = 200, description = "All presets", body = Vec<PresetDto>), Problems))]
pub async fn list_presets(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<PresetDto>>> {
    let list = state
        .project
        .clone()
        .list_presets(grpc(
            pb::ListPresetsRequest {},
            Some(&authed.token),
            state.timeout,
        ))
        .await?
        .into_inner();
    Ok(Json(list.presets.into_iter().map(Into::into).collect()))
}

/// Saves a style preset (checked as `studio render --style` would).
#[utoipa::path(post, path = "/v1/presets", tag = "presets", security(("bearer" = [])),
    request_body = CreatePresetBody,
    responses((status = 201, description = "Created", body = PresetDto), Problems))]
pub async fn create_preset(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(body): ApiJson<CreatePresetBody>,
) -> ApiResult<(StatusCode, Json<PresetDto>)> {
    let request = pb::CreatePresetRequest {
        name: body.name,
        description: body.description,
        style_toml: body.style_toml,
    };
    let preset = state
        .project
        .clone()
        .create_preset(grpc(request, Some(&authed.token), state.timeout))
        .await?;
    Ok((StatusCode::CREATED, Json(preset.into_inner().into())))
}

/// Deletes one of your presets.
#[utoipa::path(delete, path = "/v1/presets/{name}", tag = "presets", security(("bearer" = [])),
    params(("name" = String, Path, description = "Preset name")),
    responses((status = 204, description = "Deleted"), Problems))]
pub async fn delete_preset(
    State(state): State<AppState>,
    authed: Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .project
        .clone()
        .delete_preset(grpc(
            pb::DeletePresetRequest { name },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

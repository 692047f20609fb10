//! The gRPC adapter for `studio.project.v1.ProjectService`: authenticates the caller, converts
//! proto messages to domain types (naming the field on bad input) and back.

use std::sync::Arc;

use studio_auth::{Caller, JwksVerifier};
use studio_core::id::{AssetId, ProjectId, SceneId};
use studio_core::page::Page;
use studio_core::Error;
use studio_proto::common::v1 as common;
use studio_proto::project::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::*;
use crate::service::ProjectService;

/// `studio.project.v1.ProjectService` over [`ProjectService`].
#[derive(Debug, Clone)]
pub struct GrpcProject {
    pub service: ProjectService,
    pub verifier: Arc<JwksVerifier>,
}

fn aspect_from_pb(field: &str, value: i32) -> Result<Option<Aspect>, Error> {
    match common::Aspect::try_from(value) {
        Ok(common::Aspect::Unspecified) => Ok(None),
        Ok(common::Aspect::Landscape) => Ok(Some(Aspect::Landscape)),
        Ok(common::Aspect::Portrait) => Ok(Some(Aspect::Portrait)),
        Ok(common::Aspect::Square) => Ok(Some(Aspect::Square)),
        Ok(common::Aspect::Feed) => Ok(Some(Aspect::Feed)),
        Err(_) => Err(Error::invalid(field, "is not a known Aspect value")),
    }
}

fn aspect_to_pb(aspect: Aspect) -> common::Aspect {
    match aspect {
        Aspect::Landscape => common::Aspect::Landscape,
        Aspect::Portrait => common::Aspect::Portrait,
        Aspect::Square => common::Aspect::Square,
        Aspect::Feed => common::Aspect::Feed,
    }
}

fn settings_from_pb(s: Option<pb::ProjectSettings>) -> ProjectSettings {
    let d = ProjectSettings::default();
    match s {
        None => d,
        Some(s) => ProjectSettings {
            duration_s: s.duration_s,
            voice: if s.voice.is_empty() { d.voice } else { s.voice },
            rate_wpm: if s.rate_wpm == 0 {
                d.rate_wpm
            } else {
                s.rate_wpm
            },
            section: s.section,
            music: s.music,
            seed: s.seed,
        },
    }
}

impl From<Project> for pb::Project {
    fn from(p: Project) -> Self {
        let (source_text, topic) = match p.source {
            Source::Text(t) => (Some(t), None),
            Source::Topic(t) => (None, Some(t)),
        };
        pb::Project {
            id: p.id.to_string(),
            owner_id: p.owner_id.to_string(),
            title: p.title,
            source_text,
            topic,
            aspect: aspect_to_pb(p.aspect) as i32,
            style: p.style,
            settings: Some(pb::ProjectSettings {
                duration_s: p.settings.duration_s,
                voice: p.settings.voice,
                rate_wpm: p.settings.rate_wpm,
                section: p.settings.section,
                music: p.settings.music,
                seed: p.settings.seed,
            }),
            created_at_ms: p.created_at.timestamp_millis(),
            updated_at_ms: p.updated_at.timestamp_millis(),
        }
    }
}

impl From<Scene> for pb::Scene {
    fn from(s: Scene) -> Self {
        pb::Scene {
            id: s.id.to_string(),
            project_id: s.project_id.to_string(),
            position: s.position,
            heading: s.heading,
            narration: s.narration,
            search_terms: s.search_terms,
            duration_s: s.duration_s,
            created_at_ms: s.created_at.timestamp_millis(),
            updated_at_ms: s.updated_at.timestamp_millis(),
        }
    }
}

fn kind_to_pb(kind: AssetKind) -> pb::AssetKind {
    match kind {
        AssetKind::Image => pb::AssetKind::Image,
        AssetKind::Video => pb::AssetKind::Video,
        AssetKind::Audio => pb::AssetKind::Audio,
        AssetKind::Music => pb::AssetKind::Music,
        AssetKind::Narration => pb::AssetKind::Narration,
        AssetKind::Captions => pb::AssetKind::Captions,
        AssetKind::Render => pb::AssetKind::Render,
        AssetKind::Thumbnail => pb::AssetKind::Thumbnail,
    }
}

fn kind_from_pb(value: i32) -> Result<AssetKind, Error> {
    let kind = pb::AssetKind::try_from(value)
        .map_err(|_| Error::invalid("kind", "is not a known AssetKind value"))?;
    Ok(match kind {
        pb::AssetKind::Unspecified => {
            return Err(Error::invalid(
                "kind",
                "is required (image, video, audio, …)",
            ))
        }
        pb::AssetKind::Image => AssetKind::Image,
        pb::AssetKind::Video => AssetKind::Video,
        pb::AssetKind::Audio => AssetKind::Audio,
        pb::AssetKind::Music => AssetKind::Music,
        pb::AssetKind::Narration => AssetKind::Narration,
        pb::AssetKind::Captions => AssetKind::Captions,
        pb::AssetKind::Render => AssetKind::Render,
        pb::AssetKind::Thumbnail => AssetKind::Thumbnail,
    })
}

impl From<Asset> for pb::Asset {
    fn from(a: Asset) -> Self {
        pb::Asset {
            id: a.id.to_string(),
            project_id: a.project_id.to_string(),
            scene_id: a.scene_id.map(|s| s.to_string()),
            kind: kind_to_pb(a.kind) as i32,
            storage_key: a.storage_key,
            media: Some(pb::MediaInfo {
                mime_type: a.media.mime_type,
                size_bytes: a.media.size_bytes,
                width_px: a.media.width_px,
                height_px: a.media.height_px,
                duration_s: a.media.duration_s,
                sha256: a.media.sha256,
            }),
            credit: a.credit,
            created_at_ms: a.created_at.timestamp_millis(),
        }
    }
}

impl From<Preset> for pb::Preset {
    fn from(p: Preset) -> Self {
        pb::Preset {
            name: p.name,
            built_in: p.built_in,
            description: p.description,
            style_toml: p.style_toml,
        }
    }
}

fn page(p: Option<common::PageRequest>) -> Result<Page, Error> {
    let p = p.unwrap_or_default();
    Page::parse(p.page_size, &p.page_token)
}

/// Checks an update mask against the allowed names; empty means "every field that is set".
fn mask(mask: &[String], allowed: &[&str]) -> Result<Option<Vec<String>>, Error> {
    if mask.is_empty() {
        return Ok(None);
    }
    for name in mask {
        if !allowed.contains(&name.as_str()) {
            return Err(Error::invalid(
                "update_mask",
                format!(
                    "{name:?} cannot be updated; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(Some(mask.to_vec()))
}

fn wants(mask: &Option<Vec<String>>, name: &str, is_set: bool) -> bool {
    match mask {
        Some(mask) => mask.iter().any(|m| m == name),
        None => is_set,
    }
}

impl GrpcProject {
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.verifier.verify_request(request).await
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::project_service_server::ProjectService for GrpcProject {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Reply<pb::Project> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let new = NewProject {
            title: r.title,
            source: Source::parse(r.source_text, r.topic)?,
            aspect: aspect_from_pb("aspect", r.aspect)?.unwrap_or(Aspect::Landscape),
            style: if r.style.is_empty() {
                "storybook".to_owned()
            } else {
                r.style
            },
            settings: settings_from_pb(r.settings),
        };
        Ok(Response::new(
            self.service.create_project(caller, new).await?.into(),
        ))
    }

    async fn get_project(&self, request: Request<pb::GetProjectRequest>) -> Reply<pb::Project> {
        let caller = self.caller(&request).await?;
        let id = ProjectId::parse("id", &request.get_ref().id)?;
        Ok(Response::new(
            self.service.get_project(caller, id).await?.into(),
        ))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let caller = self.caller(&request).await?;
        let page = page(request.into_inner().page)?;
        let (projects, next_page_token) = self.service.list_projects(caller, page).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Reply<pb::Project> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let id = ProjectId::parse("id", &r.id)?;
        let m = mask(
            &r.update_mask,
            &[
                "title",
                "source_text",
                "topic",
                "aspect",
                "style",
                "settings",
            ],
        )?;
        let mut patch = ProjectPatch::default();
        if wants(&m, "title", r.title.is_some()) {
            patch.title = Some(r.title.unwrap_or_default());
        }
        let text = wants(&m, "source_text", r.source_text.is_some());
        let topic = wants(&m, "topic", r.topic.is_some());
        if text || topic {
            patch.source = Some(Source::parse(
                r.source_text.filter(|_| text),
                r.topic.filter(|_| topic),
            )?);
        }
        if wants(&m, "aspect", r.aspect != 0) {
            patch.aspect = Some(
                aspect_from_pb("aspect", r.aspect)?
                    .ok_or_else(|| Error::invalid("aspect", "is required when in update_mask"))?,
            );
        }
        if wants(&m, "style", r.style.is_some()) {
            patch.style = Some(r.style.unwrap_or_default());
        }
        if wants(&m, "settings", r.settings.is_some()) {
            patch.settings = Some(settings_from_pb(r.settings));
        }
        Ok(Response::new(
            self.service.update_project(caller, id, patch).await?.into(),
        ))
    }

    async fn delete_project(
        &self,
        request: Request<pb::DeleteProjectRequest>,
    ) -> Reply<pb::DeleteProjectResponse> {
        let caller = self.caller(&request).await?;
        let id = ProjectId::parse("id", &request.get_ref().id)?;
        self.service.delete_project(caller, id).await?;
        Ok(Response::new(pb::DeleteProjectResponse {}))
    }

    async fn create_scene(&self, request: Request<pb::CreateSceneRequest>) -> Reply<pb::Scene> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let project = ProjectId::parse("project_id", &r.project_id)?;
        let new = NewScene {
            position: r.position,
            heading: r.heading,
            narration: r.narration,
            search_terms: r.search_terms,
            duration_s: r.duration_s,
        };
        Ok(Response::new(
            self.service
                .create_scene(caller, project, new)
                .await?
                .into(),
        ))
    }

    async fn get_scene(&self, request: Request<pb::GetSceneRequest>) -> Reply<pb::Scene> {
        let caller = self.caller(&request).await?;
        let id = SceneId::parse("id", &request.get_ref().id)?;
        Ok(Response::new(
            self.service.get_scene(caller, id).await?.into(),
        ))
    }

    async fn list_scenes(
        &self,
        request: Request<pb::ListScenesRequest>,
    ) -> Reply<pb::ListScenesResponse> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let project = ProjectId::parse("project_id", &r.project_id)?;
        let (scenes, next_page_token) = self
            .service
            .list_scenes(caller, project, page(r.page)?)
            .await?;
        Ok(Response::new(pb::ListScenesResponse {
            scenes: scenes.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_scene(&self, request: Request<pb::UpdateSceneRequest>) -> Reply<pb::Scene> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let id = SceneId::parse("id", &r.id)?;
        let m = mask(
            &r.update_mask,
            &[
                "position",
                "heading",
                "narration",
                "search_terms",
                "duration_s",
            ],
        )?;
        let patch = ScenePatch {
            position: r.position.filter(|_| wants(&m, "position", true)),
            heading: r.heading.filter(|_| wants(&m, "heading", true)),
            narration: r.narration.filter(|_| wants(&m, "narration", true)),
            search_terms: wants(&m, "search_terms", !r.search_terms.is_empty())
                .then_some(r.search_terms),
            duration_s: r.duration_s.filter(|_| wants(&m, "duration_s", true)),
        };
        Ok(Response::new(
            self.service.update_scene(caller, id, patch).await?.into(),
        ))
    }

    async fn delete_scene(
        &self,
        request: Request<pb::DeleteSceneRequest>,
    ) -> Reply<pb::DeleteSceneResponse> {
        let caller = self.caller(&request).await?;
        let id = SceneId::parse("id", &request.get_ref().id)?;
        self.service.delete_scene(caller, id).await?;
        Ok(Response::new(pb::DeleteSceneResponse {}))
    }

    async fn create_asset(&self, request: Request<pb::CreateAssetRequest>) -> Reply<pb::Asset> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let project = ProjectId::parse("project_id", &r.project_id)?;
        let media = r.media.unwrap_or_default();
        let new = NewAsset {
            scene_id: r
                .scene_id
                .filter(|s| !s.is_empty())
                .map(|s| SceneId::parse("scene_id", &s))
                .transpose()?,
            kind: kind_from_pb(r.kind)?,
            storage_key: r.storage_key,
            media: MediaInfo {
                mime_type: media.mime_type,
                size_bytes: media.size_bytes,
                width_px: media.width_px,
                height_px: media.height_px,
                duration_s: media.duration_s,
                sha256: media.sha256,
            },
            credit: r.credit,
        };
        Ok(Response::new(
            self.service
                .create_asset(caller, project, new)
                .await?
                .into(),
        ))
    }

    async fn get_asset(&self, request: Request<pb::GetAssetRequest>) -> Reply<pb::Asset> {
        let caller = self.caller(&request).await?;
        let id = AssetId::parse("id", &request.get_ref().id)?;
        Ok(Response::new(
            self.service.get_asset(caller, id).await?.into(),
        ))
    }

    async fn list_assets(
        &self,
        request: Request<pb::ListAssetsRequest>,
    ) -> Reply<pb::ListAssetsResponse> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let project = ProjectId::parse("project_id", &r.project_id)?;
        let (assets, next_page_token) = self
            .service
            .list_assets(caller, project, page(r.page)?)
            .await?;
        Ok(Response::new(pb::ListAssetsResponse {
            assets: assets.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn delete_asset(
        &self,
        request: Request<pb::DeleteAssetRequest>,
    ) -> Reply<pb::DeleteAssetResponse> {
        let caller = self.caller(&request).await?;
        let id = AssetId::parse("id", &request.get_ref().id)?;
        self.service.delete_asset(caller, id).await?;
        Ok(Response::new(pb::DeleteAssetResponse {}))
    }

    async fn list_presets(
        &self,
        request: Request<pb::ListPresetsRequest>,
    ) -> Reply<pb::ListPresetsResponse> {
        let caller = self.caller(&request).await?;
        let presets = self.service.list_presets(caller).await?;
        Ok(Response::new(pb::ListPresetsResponse {
            presets: presets.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_preset(&self, request: Request<pb::GetPresetRequest>) -> Reply<pb::Preset> {
        let caller = self.caller(&request).await?;
        let preset = self
            .service
            .get_preset(caller, &request.get_ref().name)
            .await?;
        Ok(Response::new(preset.into()))
    }

    async fn create_preset(&self, request: Request<pb::CreatePresetRequest>) -> Reply<pb::Preset> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let preset = self
            .service
            .create_preset(caller, &r.name, &r.description, &r.style_toml)
            .await?;
        Ok(Response::new(preset.into()))
    }

    async fn delete_preset(
        &self,
        request: Request<pb::DeletePresetRequest>,
    ) -> Reply<pb::DeletePresetResponse> {
        let caller = self.caller(&request).await?;
        self.service
            .delete_preset(caller, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeletePresetResponse {}))
    }
}

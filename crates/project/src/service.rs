//! The project service's logic in domain types. Every call takes the verified [`Caller`] and acts
//! on the caller's own objects only; someone else's id answers `NotFound`.

use studio_auth::Caller;
use studio_core::id::{AssetId, ProjectId, SceneId, UserId};
use studio_core::page::{finish, Page};
use studio_core::{Error, ErrorCode};
use studio_style::{Style, BUILT_IN};

use crate::domain::*;
use crate::repo::{AssetRow, Full, ProjectRow, ProjectWrite, Repo, SceneRow};
use crate::settings::Limits;

/// The answer to a create past a quota: how many the caller owns, the setting, and what to do.
fn full(what: &str, Full(owned): Full, setting: &str) -> Error {
    Error::new(
        ErrorCode::FailedPrecondition,
        format!(
            "you have {owned} {what}, the most one account may have (project.limits.{setting}); \
             delete one to make room"
        ),
    )
}

fn db(err: sqlx::Error) -> Error {
    tracing::error!(error = %err, "database error");
    Error::internal()
}

fn project(row: ProjectRow) -> Result<Project, Error> {
    let source = match (row.source_text, row.topic) {
        (Some(text), _) => Source::Text(text),
        (None, Some(topic)) => Source::Topic(topic),
        (None, None) => {
            tracing::error!(project_id = %row.id, "project without a source");
            return Err(Error::internal());
        }
    };
    Ok(Project {
        id: ProjectId(row.id),
        owner_id: UserId(row.owner_id),
        title: row.title,
        source,
        aspect: Aspect::parse("aspect", &row.aspect)?,
        style: row.style,
        settings: row.settings.0,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn scene(row: SceneRow) -> Scene {
    Scene {
        id: SceneId(row.id),
        project_id: ProjectId(row.project_id),
        position: row.position.max(0) as u32,
        heading: row.heading,
        narration: row.narration,
        search_terms: row.search_terms,
        duration_s: row.duration_s,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn asset(row: AssetRow) -> Result<Asset, Error> {
    Ok(Asset {
        id: AssetId(row.id),
        project_id: ProjectId(row.project_id),
        scene_id: row.scene_id.map(SceneId),
        kind: AssetKind::parse("kind", &row.kind)?,
        storage_key: row.storage_key,
        media: MediaInfo {
            mime_type: row.mime_type,
            size_bytes: row.size_bytes.max(0) as u64,
            width_px: row.width_px.max(0) as u32,
            height_px: row.height_px.max(0) as u32,
            duration_s: row.duration_s,
            sha256: row.sha256,
        },
        credit: row.credit,
        created_at: row.created_at,
    })
}

fn write<'a>(
    title: &'a str,
    source: &'a Source,
    aspect: Aspect,
    style: &'a str,
    settings: &'a ProjectSettings,
) -> ProjectWrite<'a> {
    let (source_text, topic) = match source {
        Source::Text(t) => (Some(t.as_str()), None),
        Source::Topic(t) => (None, Some(t.as_str())),
    };
    ProjectWrite {
        title,
        source_text,
        topic,
        aspect: aspect.as_str(),
        style,
        settings,
    }
}

/// Parses the page cursor of a newest-first id list.
fn uuid_cursor(page: &Page) -> Result<Option<uuid::Uuid>, Error> {
    page.after
        .as_deref()
        .map(|s| {
            uuid::Uuid::parse_str(s)
                .map_err(|_| Error::invalid("page_token", "is not a token this service returned"))
        })
        .transpose()
}

/// The project service.
#[derive(Debug, Clone)]
pub struct ProjectService {
    repo: Repo,
    limits: Limits,
}

impl ProjectService {
    pub fn new(repo: Repo, limits: Limits) -> Self {
        ProjectService { repo, limits }
    }

    /// Checks that `style` names a built-in preset or one of the owner's.
    async fn check_style(&self, owner: UserId, style: &str) -> Result<(), Error> {
        if BUILT_IN.iter().any(|(name, _)| *name == style) {
            return Ok(());
        }
        if check_preset_name(style).is_ok()
            && self.repo.preset_exists(owner.0, style).await.map_err(db)?
        {
            return Ok(());
        }
        let built_in: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        Err(Error::invalid(
            "style",
            format!(
                "must be a built-in preset ({}) or one of your presets",
                built_in.join(", ")
            ),
        ))
    }

    /// Creates a project. Errors: `InvalidArgument` naming the field; `FailedPrecondition` when
    /// the caller owns `max_projects_per_user` projects already.
    pub async fn create_project(&self, caller: Caller, new: NewProject) -> Result<Project, Error> {
        let title = check_title(&new.title)?;
        new.settings.check()?;
        self.check_style(caller.user_id, &new.style).await?;
        let id = ProjectId::new();
        let row = self
            .repo
            .insert_project(
                id.0,
                caller.user_id.0,
                write(&title, &new.source, new.aspect, &new.style, &new.settings),
                i64::from(self.limits.max_projects_per_user),
            )
            .await
            .map_err(db)?
            .map_err(|f| full("projects", f, "max_projects_per_user"))?;
        tracing::info!(project_id = %id, user_id = %caller.user_id, "project created");
        project(row)
    }

    pub async fn get_project(&self, caller: Caller, id: ProjectId) -> Result<Project, Error> {
        let row = self
            .repo
            .project(id.0, caller.user_id.0)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("project"))?;
        project(row)
    }

    /// The caller's projects, newest first, and the next page token.
    pub async fn list_projects(
        &self,
        caller: Caller,
        page: Page,
    ) -> Result<(Vec<Project>, String), Error> {
        let rows = self
            .repo
            .projects(caller.user_id.0, uuid_cursor(&page)?, page.fetch())
            .await
            .map_err(db)?;
        let (rows, next) = finish(&page, rows, |r| r.id.to_string());
        Ok((
            rows.into_iter().map(project).collect::<Result<_, _>>()?,
            next,
        ))
    }

    /// Applies `patch`; the result is checked as a whole (e.g. a new topic replaces the text).
    pub async fn update_project(
        &self,
        caller: Caller,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<Project, Error> {
        let current = self.get_project(caller, id).await?;
        let title = match &patch.title {
            Some(title) => check_title(title)?,
            None => current.title,
        };
        let settings = patch.settings.unwrap_or(current.settings);
        settings.check()?;
        let style = patch.style.unwrap_or(current.style);
        self.check_style(caller.user_id, &style).await?;
        let source = patch.source.unwrap_or(current.source);
        let aspect = patch.aspect.unwrap_or(current.aspect);
        let row = self
            .repo
            .update_project(
                id.0,
                caller.user_id.0,
                write(&title, &source, aspect, &style, &settings),
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("project"))?;
        project(row)
    }

    pub async fn delete_project(&self, caller: Caller, id: ProjectId) -> Result<(), Error> {
        if self
            .repo
            .delete_project(id.0, caller.user_id.0)
            .await
            .map_err(db)?
        {
            tracing::info!(project_id = %id, "project deleted");
            Ok(())
        } else {
            Err(Error::not_found("project"))
        }
    }

    pub async fn create_scene(
        &self,
        caller: Caller,
        project_id: ProjectId,
        new: NewScene,
    ) -> Result<Scene, Error> {
        check_scene_fields(
            new.position,
            Some(&new.heading),
            Some(&new.narration),
            Some(&new.search_terms),
            Some(new.duration_s),
        )?;
        let row = self
            .repo
            .insert_scene(
                SceneId::new().0,
                project_id.0,
                caller.user_id.0,
                new.position.map(|p| p as i32),
                new.heading.trim(),
                &new.narration,
                &new.search_terms,
                new.duration_s,
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("project"))?;
        Ok(scene(row))
    }

    pub async fn get_scene(&self, caller: Caller, id: SceneId) -> Result<Scene, Error> {
        self.repo
            .scene(id.0, caller.user_id.0)
            .await
            .map_err(db)?
            .map(scene)
            .ok_or_else(|| Error::not_found("scene"))
    }

    /// A project's scenes in position order. `NotFound` when the project is not the caller's.
    pub async fn list_scenes(
        &self,
        caller: Caller,
        project_id: ProjectId,
        page: Page,
    ) -> Result<(Vec<Scene>, String), Error> {
        self.get_project(caller, project_id).await?;
        let after = page
            .after
            .as_deref()
            .map(|s| {
                s.split_once(':')
                    .and_then(|(p, id)| Some((p.parse().ok()?, uuid::Uuid::parse_str(id).ok()?)))
                    .ok_or_else(|| {
                        Error::invalid("page_token", "is not a token this service returned")
                    })
            })
            .transpose()?;
        let rows = self
            .repo
            .scenes(project_id.0, caller.user_id.0, after, page.fetch())
            .await
            .map_err(db)?;
        let (rows, next) = finish(&page, rows, |r| format!("{}:{}", r.position, r.id));
        Ok((rows.into_iter().map(scene).collect(), next))
    }

    pub async fn update_scene(
        &self,
        caller: Caller,
        id: SceneId,
        patch: ScenePatch,
    ) -> Result<Scene, Error> {
        check_scene_fields(
            patch.position,
            patch.heading.as_deref(),
            patch.narration.as_deref(),
            patch.search_terms.as_deref(),
            patch.duration_s,
        )?;
        let current = self.get_scene(caller, id).await?;
        let row = self
            .repo
            .update_scene(
                id.0,
                caller.user_id.0,
                patch.position.unwrap_or(current.position) as i32,
                patch
                    .heading
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or(&current.heading),
                patch.narration.as_deref().unwrap_or(&current.narration),
                patch
                    .search_terms
                    .as_deref()
                    .unwrap_or(&current.search_terms),
                patch.duration_s.unwrap_or(current.duration_s),
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("scene"))?;
        Ok(scene(row))
    }

    pub async fn delete_scene(&self, caller: Caller, id: SceneId) -> Result<(), Error> {
        if self
            .repo
            .delete_scene(id.0, caller.user_id.0)
            .await
            .map_err(db)?
        {
            Ok(())
        } else {
            Err(Error::not_found("scene"))
        }
    }

    /// Records an asset. `InvalidArgument` for a `scene_id` outside the project or a storage key
    /// outside `projects/{project}/`; `FailedPrecondition` when the caller owns
    /// `max_assets_per_user` assets already.
    pub async fn create_asset(
        &self,
        caller: Caller,
        project_id: ProjectId,
        new: NewAsset,
    ) -> Result<Asset, Error> {
        new.check(project_id)?;
        if let Some(scene_id) = new.scene_id {
            if !self
                .repo
                .scene_in_project(scene_id.0, project_id.0, caller.user_id.0)
                .await
                .map_err(db)?
            {
                // Same answer whether the project is missing or the scene is elsewhere.
                self.get_project(caller, project_id).await?;
                return Err(Error::invalid("scene_id", "is not a scene of this project"));
            }
        }
        let row = self
            .repo
            .insert_asset(
                AssetId::new().0,
                project_id.0,
                caller.user_id.0,
                &new,
                i64::from(self.limits.max_assets_per_user),
            )
            .await
            .map_err(db)?
            .map_err(|f| full("assets", f, "max_assets_per_user"))?
            .ok_or_else(|| Error::not_found("project"))?;
        asset(row)
    }

    pub async fn get_asset(&self, caller: Caller, id: AssetId) -> Result<Asset, Error> {
        let row = self
            .repo
            .asset(id.0, caller.user_id.0)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("asset"))?;
        asset(row)
    }

    pub async fn list_assets(
        &self,
        caller: Caller,
        project_id: ProjectId,
        page: Page,
    ) -> Result<(Vec<Asset>, String), Error> {
        self.get_project(caller, project_id).await?;
        let rows = self
            .repo
            .assets(
                project_id.0,
                caller.user_id.0,
                uuid_cursor(&page)?,
                page.fetch(),
            )
            .await
            .map_err(db)?;
        let (rows, next) = finish(&page, rows, |r| r.id.to_string());
        Ok((rows.into_iter().map(asset).collect::<Result<_, _>>()?, next))
    }

    pub async fn delete_asset(&self, caller: Caller, id: AssetId) -> Result<(), Error> {
        if self
            .repo
            .delete_asset(id.0, caller.user_id.0)
            .await
            .map_err(db)?
        {
            Ok(())
        } else {
            Err(Error::not_found("asset"))
        }
    }

    /// Built-in presets first, then the caller's, by name.
    pub async fn list_presets(&self, caller: Caller) -> Result<Vec<Preset>, Error> {
        let mut presets: Vec<Preset> = BUILT_IN
            .iter()
            .map(|(name, toml)| Preset {
                name: (*name).to_owned(),
                built_in: true,
                description: Style::parse(name, toml)
                    .map(|s| s.description)
                    .unwrap_or_default(),
                style_toml: (*toml).to_owned(),
            })
            .collect();
        let own = self.repo.presets(caller.user_id.0).await.map_err(db)?;
        presets.extend(own.into_iter().map(|p| Preset {
            name: p.name,
            built_in: false,
            description: p.description,
            style_toml: p.style_toml,
        }));
        Ok(presets)
    }

    /// The built-in preset `name`, or the caller's. `NotFound` when there is none.
    pub async fn get_preset(&self, caller: Caller, name: &str) -> Result<Preset, Error> {
        if let Some((name, toml)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Ok(Preset {
                name: (*name).to_owned(),
                built_in: true,
                description: Style::parse(name, toml)
                    .map(|s| s.description)
                    .unwrap_or_default(),
                style_toml: (*toml).to_owned(),
            });
        }
        let own = self
            .repo
            .preset(caller.user_id.0, name)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("preset"))?;
        Ok(Preset {
            name: own.name,
            built_in: false,
            description: own.description,
            style_toml: own.style_toml,
        })
    }

    /// Stores a preset after checking its TOML as `studio render --style` would.
    /// Errors: `InvalidArgument` (name, style_toml), `AlreadyExists`, `FailedPrecondition` when
    /// the caller owns `max_presets_per_user` presets already.
    pub async fn create_preset(
        &self,
        caller: Caller,
        name: &str,
        description: &str,
        style_toml: &str,
    ) -> Result<Preset, Error> {
        check_preset_name(name)?;
        if BUILT_IN.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid(
                "name",
                "is a built-in preset; pick another name",
            ));
        }
        if style_toml.len() > 64 * 1024 {
            return Err(Error::invalid("style_toml", "must be at most 64 KiB"));
        }
        let style = Style::parse(name, style_toml)
            .map_err(|e| Error::invalid("style_toml", e.to_string()))?;
        // A preset names fonts installed on the render workers; a path would let a user probe
        // the workers' file system through render errors (security review L2).
        for (key, font) in [
            ("title", &style.fonts.title),
            ("heading", &style.fonts.heading),
            ("captions", &style.fonts.captions),
        ] {
            if font.contains(['/', '\\']) || font.starts_with('.') {
                return Err(Error::invalid(
                    "style_toml",
                    format!(
                        "fonts.{key} = {font:?}: name a font file installed on the render workers, such as \"DejaVuSans-Bold.ttf\"; paths are not accepted in presets"
                    ),
                ));
            }
        }
        let description = if description.trim().is_empty() {
            style.description
        } else {
            description.trim().chars().take(500).collect()
        };
        self.repo
            .insert_preset(
                caller.user_id.0,
                name,
                &description,
                style_toml,
                i64::from(self.limits.max_presets_per_user),
            )
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => Error::new(
                    ErrorCode::AlreadyExists,
                    "name: you have a preset with this name",
                )
                .with_field("name"),
                _ => db(e),
            })?
            .map_err(|f| full("presets", f, "max_presets_per_user"))?;
        Ok(Preset {
            name: name.to_owned(),
            built_in: false,
            description,
            style_toml: style_toml.to_owned(),
        })
    }

    pub async fn delete_preset(&self, caller: Caller, name: &str) -> Result<(), Error> {
        if self
            .repo
            .delete_preset(caller.user_id.0, name)
            .await
            .map_err(db)?
        {
            Ok(())
        } else {
            Err(Error::not_found("preset"))
        }
    }
}

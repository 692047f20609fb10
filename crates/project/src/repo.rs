//! Postgres access for the project service. Every query that takes an object id also takes the
//! owner and matches both, so another user's object is indistinguishable from a missing one.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::ProjectSettings;

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub source_text: Option<String>,
    pub topic: Option<String>,
    pub aspect: String,
    pub style: String,
    pub settings: Json<ProjectSettings>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SceneRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub position: i32,
    pub heading: String,
    pub narration: String,
    pub search_terms: Vec<String>,
    pub duration_s: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AssetRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub scene_id: Option<Uuid>,
    pub kind: String,
    pub storage_key: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width_px: i32,
    pub height_px: i32,
    pub duration_s: f64,
    pub sha256: String,
    pub credit: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PresetRow {
    pub name: String,
    pub description: String,
    pub style_toml: String,
}

/// Project rows to write.
#[derive(Debug, Clone)]
pub struct ProjectWrite<'a> {
    pub title: &'a str,
    pub source_text: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub aspect: &'a str,
    pub style: &'a str,
    pub settings: &'a ProjectSettings,
}

/// What a user may own only so many of (`[project.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Projects,
    Assets,
    Presets,
}

/// An insert that would take its owner past a [`Quota`]: how many they own now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full(pub i64);

/// Takes `owner`'s lock for `quota` until `tx` ends, and answers whether they own fewer than
/// `max` rows of it, so two inserts cannot both pass the last free place.
async fn within(
    tx: &mut sqlx::PgConnection,
    quota: Quota,
    owner: Uuid,
    max: i64,
) -> Result<Result<(), Full>, sqlx::Error> {
    let (name, count) = match quota {
        Quota::Projects => (
            "projects",
            "SELECT count(*) FROM projects WHERE owner_id = $1",
        ),
        Quota::Assets => ("assets", "SELECT count(*) FROM assets WHERE owner_id = $1"),
        Quota::Presets => (
            "presets",
            "SELECT count(*) FROM presets WHERE owner_id = $1",
        ),
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{name}:{owner}"))
        .execute(&mut *tx)
        .await?;
    let owned: i64 = sqlx::query_scalar(count)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
    Ok(if owned < max {
        Ok(())
    } else {
        Err(Full(owned))
    })
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub pool: PgPool,
}

impl Repo {
    /// Inserts a project unless its owner has `max` already.
    pub async fn insert_project(
        &self,
        id: Uuid,
        owner: Uuid,
        p: ProjectWrite<'_>,
        max: i64,
    ) -> Result<Result<ProjectRow, Full>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Err(full) = within(&mut tx, Quota::Projects, owner, max).await? {
            return Ok(Err(full));
        }
        let row = sqlx::query_as!(
            ProjectRow,
            r#"INSERT INTO projects (id, owner_id, title, source_text, topic, aspect, style, settings)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               RETURNING id, owner_id, title, source_text, topic, aspect, style,
                         settings AS "settings: Json<ProjectSettings>", created_at, updated_at"#,
            id,
            owner,
            p.title,
            p.source_text,
            p.topic,
            p.aspect,
            p.style,
            Json(p.settings) as _
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(row))
    }

    pub async fn project(&self, id: Uuid, owner: Uuid) -> Result<Option<ProjectRow>, sqlx::Error> {
        sqlx::query_as!(
            ProjectRow,
            r#"SELECT id, owner_id, title, source_text, topic, aspect, style,
                      settings AS "settings: Json<ProjectSettings>", created_at, updated_at
               FROM projects WHERE id = $1 AND owner_id = $2"#,
            id,
            owner
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Newest first, after the cursor id.
    pub async fn projects(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ProjectRow>, sqlx::Error> {
        sqlx::query_as!(
            ProjectRow,
            r#"SELECT id, owner_id, title, source_text, topic, aspect, style,
                      settings AS "settings: Json<ProjectSettings>", created_at, updated_at
               FROM projects
               WHERE owner_id = $1 AND ($2::uuid IS NULL OR id < $2)
               ORDER BY id DESC LIMIT $3"#,
            owner,
            before,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn update_project(
        &self,
        id: Uuid,
        owner: Uuid,
        p: ProjectWrite<'_>,
    ) -> Result<Option<ProjectRow>, sqlx::Error> {
        sqlx::query_as!(
            ProjectRow,
            r#"UPDATE projects
               SET title = $3, source_text = $4, topic = $5, aspect = $6, style = $7,
                   settings = $8, updated_at = now()
               WHERE id = $1 AND owner_id = $2
               RETURNING id, owner_id, title, source_text, topic, aspect, style,
                         settings AS "settings: Json<ProjectSettings>", created_at, updated_at"#,
            id,
            owner,
            p.title,
            p.source_text,
            p.topic,
            p.aspect,
            p.style,
            Json(p.settings) as _
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn delete_project(&self, id: Uuid, owner: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "DELETE FROM projects WHERE id = $1 AND owner_id = $2",
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a scene at `position`, or after the last one when `None`. Scenes at or after the
    /// position move down one, in the same transaction. `None` when the project is not the owner's.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_scene(
        &self,
        id: Uuid,
        project: Uuid,
        owner: Uuid,
        position: Option<i32>,
        heading: &str,
        narration: &str,
        terms: &[String],
        duration_s: f64,
    ) -> Result<Option<SceneRow>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Locks the project row: concurrent inserts into one project take turns.
        let owned = sqlx::query_scalar!(
            "SELECT id FROM projects WHERE id = $1 AND owner_id = $2 FOR UPDATE",
            project,
            owner
        )
        .fetch_optional(&mut *tx)
        .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let position = match position {
            Some(p) => {
                sqlx::query!(
                    "UPDATE scenes SET position = position + 1 WHERE project_id = $1 AND position >= $2",
                    project,
                    p
                )
                .execute(&mut *tx)
                .await?;
                p
            }
            None => sqlx::query_scalar!(
                r#"SELECT COALESCE(MAX(position) + 1, 0) AS "next!" FROM scenes WHERE project_id = $1"#,
                project
            )
            .fetch_one(&mut *tx)
            .await?,
        };
        let row = sqlx::query_as!(
            SceneRow,
            r#"INSERT INTO scenes (id, project_id, owner_id, position, heading, narration, search_terms, duration_s)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               RETURNING id, project_id, position, heading, narration, search_terms, duration_s,
                         created_at, updated_at"#,
            id,
            project,
            owner,
            position,
            heading,
            narration,
            terms,
            duration_s
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    pub async fn scene(&self, id: Uuid, owner: Uuid) -> Result<Option<SceneRow>, sqlx::Error> {
        sqlx::query_as!(
            SceneRow,
            r#"SELECT id, project_id, position, heading, narration, search_terms, duration_s,
                      created_at, updated_at
               FROM scenes WHERE id = $1 AND owner_id = $2"#,
            id,
            owner
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// In (position, id) order, after the cursor.
    pub async fn scenes(
        &self,
        project: Uuid,
        owner: Uuid,
        after: Option<(i32, Uuid)>,
        limit: i64,
    ) -> Result<Vec<SceneRow>, sqlx::Error> {
        let (after_pos, after_id) = after.map_or((None, None), |(p, i)| (Some(p), Some(i)));
        sqlx::query_as!(
            SceneRow,
            r#"SELECT id, project_id, position, heading, narration, search_terms, duration_s,
                      created_at, updated_at
               FROM scenes
               WHERE project_id = $1 AND owner_id = $2
                 AND ($3::int IS NULL OR (position, id) > ($3, $4::uuid))
               ORDER BY position, id LIMIT $5"#,
            project,
            owner,
            after_pos,
            after_id,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn update_scene(
        &self,
        id: Uuid,
        owner: Uuid,
        position: i32,
        heading: &str,
        narration: &str,
        terms: &[String],
        duration_s: f64,
    ) -> Result<Option<SceneRow>, sqlx::Error> {
        sqlx::query_as!(
            SceneRow,
            r#"UPDATE scenes SET position = $3, heading = $4, narration = $5, search_terms = $6,
                      duration_s = $7, updated_at = now()
               WHERE id = $1 AND owner_id = $2
               RETURNING id, project_id, position, heading, narration, search_terms, duration_s,
                         created_at, updated_at"#,
            id,
            owner,
            position,
            heading,
            narration,
            terms,
            duration_s
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn delete_scene(&self, id: Uuid, owner: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "DELETE FROM scenes WHERE id = $1 AND owner_id = $2",
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the scene exists in this project for this owner.
    pub async fn scene_in_project(
        &self,
        scene: Uuid,
        project: Uuid,
        owner: Uuid,
    ) -> Result<bool, sqlx::Error> {
        let found = sqlx::query_scalar!(
            "SELECT id FROM scenes WHERE id = $1 AND project_id = $2 AND owner_id = $3",
            scene,
            project,
            owner
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Inserts an asset unless its owner has `max` already; `None` when the project is not
    /// the owner's.
    pub async fn insert_asset(
        &self,
        id: Uuid,
        project: Uuid,
        owner: Uuid,
        a: &crate::domain::NewAsset,
        max: i64,
    ) -> Result<Result<Option<AssetRow>, Full>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Err(full) = within(&mut tx, Quota::Assets, owner, max).await? {
            return Ok(Err(full));
        }
        // INSERT … SELECT: nothing is written unless the project is the owner's.
        let row = sqlx::query_as!(
            AssetRow,
            r#"INSERT INTO assets (id, project_id, owner_id, scene_id, kind, storage_key, mime_type,
                                   size_bytes, width_px, height_px, duration_s, sha256, credit)
               SELECT $1, p.id, p.owner_id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
               FROM projects p WHERE p.id = $2 AND p.owner_id = $3
               RETURNING id, project_id, scene_id, kind, storage_key, mime_type, size_bytes,
                         width_px, height_px, duration_s, sha256, credit, created_at"#,
            id,
            project,
            owner,
            a.scene_id.map(|s| s.0),
            a.kind.as_str(),
            a.storage_key,
            a.media.mime_type,
            a.media.size_bytes as i64,
            a.media.width_px as i32,
            a.media.height_px as i32,
            a.media.duration_s,
            a.media.sha256.to_lowercase(),
            a.credit
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(row))
    }

    pub async fn asset(&self, id: Uuid, owner: Uuid) -> Result<Option<AssetRow>, sqlx::Error> {
        sqlx::query_as!(
            AssetRow,
            r#"SELECT id, project_id, scene_id, kind, storage_key, mime_type, size_bytes, width_px,
                      height_px, duration_s, sha256, credit, created_at
               FROM assets WHERE id = $1 AND owner_id = $2"#,
            id,
            owner
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn assets(
        &self,
        project: Uuid,
        owner: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AssetRow>, sqlx::Error> {
        sqlx::query_as!(
            AssetRow,
            r#"SELECT id, project_id, scene_id, kind, storage_key, mime_type, size_bytes, width_px,
                      height_px, duration_s, sha256, credit, created_at
               FROM assets
               WHERE project_id = $1 AND owner_id = $2 AND ($3::uuid IS NULL OR id > $3)
               ORDER BY id LIMIT $4"#,
            project,
            owner,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn delete_asset(&self, id: Uuid, owner: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "DELETE FROM assets WHERE id = $1 AND owner_id = $2",
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn presets(&self, owner: Uuid) -> Result<Vec<PresetRow>, sqlx::Error> {
        sqlx::query_as!(
            PresetRow,
            "SELECT name, description, style_toml FROM presets WHERE owner_id = $1 ORDER BY name",
            owner
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn preset(&self, owner: Uuid, name: &str) -> Result<Option<PresetRow>, sqlx::Error> {
        sqlx::query_as!(
            PresetRow,
            "SELECT name, description, style_toml FROM presets WHERE owner_id = $1 AND name = $2",
            owner,
            name
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn preset_exists(&self, owner: Uuid, name: &str) -> Result<bool, sqlx::Error> {
        let found = sqlx::query_scalar!(
            "SELECT name FROM presets WHERE owner_id = $1 AND name = $2",
            owner,
            name
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Inserts a preset unless its owner has `max` already.
    pub async fn insert_preset(
        &self,
        owner: Uuid,
        name: &str,
        description: &str,
        style_toml: &str,
        max: i64,
    ) -> Result<Result<(), Full>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Err(full) = within(&mut tx, Quota::Presets, owner, max).await? {
            return Ok(Err(full));
        }
        sqlx::query!(
            "INSERT INTO presets (owner_id, name, description, style_toml) VALUES ($1, $2, $3, $4)",
            owner,
            name,
            description,
            style_toml
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn delete_preset(&self, owner: Uuid, name: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "DELETE FROM presets WHERE owner_id = $1 AND name = $2",
            owner,
            name
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

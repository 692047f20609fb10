//! The REST shapes, as the OpenAPI document publishes them, and their conversions from the
//! services' proto messages. Request bodies refuse unknown fields, so a `role` or `owner_id`
//! smuggled into a body is a 400 naming it, never a silent write (OWASP API3:2023).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studio_proto::common::v1 as common;
use studio_proto::project::v1 as project;
use studio_proto::user::v1 as user;
use utoipa::{IntoParams, ToSchema};

/// Unix milliseconds to RFC 3339.
fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The account's email; sign-in is case-insensitive.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 256 characters.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 256)]
    pub password: String,
    /// Up to 100 characters.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub display_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The refresh token of the last pair; it is spent by this call.
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `user` or `admin`.
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// `password`, `google`.
    pub sign_in_methods: Vec<String>,
    /// Whether the owner of the address proved it (the link in the verification mail, or
    /// Google sign-in).
    pub email_verified: bool,
}

impl From<user::User> for UserDto {
    fn from(u: user::User) -> Self {
        UserDto {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role: match user::Role::try_from(u.role) {
                Ok(user::Role::Admin) => "admin",
                _ => "user",
            }
            .to_owned(),
            created_at: time(u.created_at_ms),
            sign_in_methods: u.sign_in_methods,
            email_verified: u.email_verified,
        }
    }
}

/// A token pair (RFC 6749 §5.1 field names).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPairDto {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Refresh-token lifetime in seconds.
    pub refresh_expires_in: i64,
    pub user: Option<UserDto>,
}

impl From<user::TokenPair> for TokenPairDto {
    fn from(p: user::TokenPair) -> Self {
        TokenPairDto {
            access_token: p.access_token,
            token_type: p.token_type,
            expires_in: p.expires_in_s,
            refresh_token: p.refresh_token,
            refresh_expires_in: p.refresh_expires_in_s,
            user: p.user.map(Into::into),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GoogleStartQuery {
    /// One of the redirect URIs registered with Google.
    pub redirect_uri: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailBody {
    /// The `token` parameter of the link in the verification mail.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedEmailDto {
    /// The address now verified.
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationSentDto {
    /// Seconds the new link works.
    pub expires_in: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GoogleStartDto {
    /// Send the browser here.
    pub authorization_url: String,
    pub state: String,
    /// Keep this in the browser (`sessionStorage`) and send it to finish: a sign-in started
    /// elsewhere cannot be finished here.
    pub binding: String,
    /// Seconds to finish the sign-in.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleFinishBody {
    /// `code` from the redirect's query.
    pub code: String,
    /// `state` from the redirect's query.
    pub state: String,
    /// The `binding` that `/v1/auth/google/start` returned to this client.
    pub binding: String,
}

/// Frame shape of the video.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub enum AspectDto {
    #[serde(rename = "16:9")]
    Landscape,
    #[serde(rename = "9:16")]
    Portrait,
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "4:5")]
    Feed,
}

impl AspectDto {
    pub fn to_pb(self) -> common::Aspect {
        match self {
            AspectDto::Landscape => common::Aspect::Landscape,
            AspectDto::Portrait => common::Aspect::Portrait,
            AspectDto::Square => common::Aspect::Square,
            AspectDto::Feed => common::Aspect::Feed,
        }
    }

    fn from_pb(value: i32) -> Self {
        match common::Aspect::try_from(value) {
            Ok(common::Aspect::Portrait) => AspectDto::Portrait,
            Ok(common::Aspect::Square) => AspectDto::Square,
            Ok(common::Aspect::Feed) => AspectDto::Feed,
            _ => AspectDto::Landscape,
        }
    }
}

/// How the video is made. Absent fields take their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectSettingsDto {
    /// Target length in seconds; 0 means the whole text. 0 or 10 to 3600.
    #[schema(minimum = 0, maximum = 3600)]
    pub duration_s: f64,
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
    /// Words per minute, 80 to 450.
    #[schema(minimum = 80, maximum = 450)]
    pub rate_wpm: u32,
    /// A section title of the source text (chapter or fable); empty for the whole text.
    pub section: String,
    pub music: bool,
    pub seed: u64,
}

impl Default for ProjectSettingsDto {
    fn default() -> Self {
        ProjectSettingsDto {
            duration_s: 0.0,
            voice: studio_style::narrator::VOICE.to_owned(),
            rate_wpm: studio_style::narrator::RATE_WPM,
            section: String::new(),
            music: true,
            seed: 0,
        }
    }
}

impl From<ProjectSettingsDto> for project::ProjectSettings {
    fn from(s: ProjectSettingsDto) -> Self {
        project::ProjectSettings {
            duration_s: s.duration_s,
            voice: s.voice,
            rate_wpm: s.rate_wpm,
            section: s.section,
            music: s.music,
            seed: s.seed,
        }
    }
}

impl From<project::ProjectSettings> for ProjectSettingsDto {
    fn from(s: project::ProjectSettings) -> Self {
        ProjectSettingsDto {
            duration_s: s.duration_s,
            voice: s.voice,
            rate_wpm: s.rate_wpm,
            section: s.section,
            music: s.music,
            seed: s.seed,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectBody {
    /// 1 to 200 characters.
    #[schema(
        example = "The Hare and the Tortoise",
        min_length = 1,
        max_length = 200
    )]
    pub title: String,
    /// The text to narrate (up to 1 MB). Exactly one of `source_text` and `topic`.
    pub source_text: Option<String>,
    /// A topic for a script writer to write about (up to 500 characters).
    #[schema(max_length = 500)]
    pub topic: Option<String>,
    /// Default `16:9`.
    pub aspect: Option<AspectDto>,
    /// A preset name; default `storybook`.
    #[schema(max_length = 40)]
    pub style: Option<String>,
    pub settings: Option<ProjectSettingsDto>,
}

/// Fields to change; absent fields stay. Setting `topic` replaces `source_text` and vice versa.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectBody {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    pub source_text: Option<String>,
    pub topic: Option<String>,
    pub aspect: Option<AspectDto>,
    pub style: Option<String>,
    pub settings: Option<ProjectSettingsDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectDto {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub aspect: AspectDto,
    pub style: String,
    pub settings: ProjectSettingsDto,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<project::Project> for ProjectDto {
    fn from(p: project::Project) -> Self {
        ProjectDto {
            id: p.id,
            title: p.title,
            source_text: p.source_text,
            topic: p.topic,
            aspect: AspectDto::from_pb(p.aspect),
            style: p.style,
            settings: p.settings.map(Into::into).unwrap_or_default(),
            created_at: time(p.created_at_ms),
            updated_at: time(p.updated_at_ms),
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `page_token` for the next page; empty on the last page.
    pub next_page_token: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; default 20.
    #[param(minimum = 0, maximum = 100)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

impl PageQuery {
    pub fn to_pb(&self) -> common::PageRequest {
        common::PageRequest {
            page_size: self.page_size.unwrap_or(0),
            page_token: self.page_token.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSceneBody {
    /// 0-based; appended at the end when absent.
    #[schema(maximum = 10000)]
    pub position: Option<u32>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub heading: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub narration: String,
    /// At most 20 non-empty terms of at most 60 characters.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub search_terms: Vec<String>,
    /// Planned length in seconds, 0 to 600.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 600)]
    pub duration_s: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSceneBody {
    #[schema(maximum = 10000)]
    pub position: Option<u32>,
    pub heading: Option<String>,
    pub narration: Option<String>,
    pub search_terms: Option<Vec<String>>,
    pub duration_s: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SceneDto {
    pub id: String,
    pub project_id: String,
    pub position: u32,
    pub heading: String,
    pub narration: String,
    pub search_terms: Vec<String>,
    pub duration_s: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<project::Scene> for SceneDto {
    fn from(s: project::Scene) -> Self {
        SceneDto {
            id: s.id,
            project_id: s.project_id,
            position: s.position,
            heading: s.heading,
            narration: s.narration,
            search_terms: s.search_terms,
            duration_s: s.duration_s,
            created_at: time(s.created_at_ms),
            updated_at: time(s.updated_at_ms),
        }
    }
}

/// What an asset holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKindDto {
    Image,
    Video,
    Audio,
    Music,
    Narration,
    Captions,
    Render,
    Thumbnail,
}

impl AssetKindDto {
    pub fn to_pb(self) -> project::AssetKind {
        match self {
            AssetKindDto::Image => project::AssetKind::Image,
            AssetKindDto::Video => project::AssetKind::Video,
            AssetKindDto::Audio => project::AssetKind::Audio,
            AssetKindDto::Music => project::AssetKind::Music,
            AssetKindDto::Narration => project::AssetKind::Narration,
            AssetKindDto::Captions => project::AssetKind::Captions,
            AssetKindDto::Render => project::AssetKind::Render,
            AssetKindDto::Thumbnail => project::AssetKind::Thumbnail,
        }
    }

    fn from_pb(value: i32) -> Self {
        match project::AssetKind::try_from(value) {
            Ok(project::AssetKind::Video) => AssetKindDto::Video,
            Ok(project::AssetKind::Audio) => AssetKindDto::Audio,
            Ok(project::AssetKind::Music) => AssetKindDto::Music,
            Ok(project::AssetKind::Narration) => AssetKindDto::Narration,
            Ok(project::AssetKind::Captions) => AssetKindDto::Captions,
            Ok(project::AssetKind::Render) => AssetKindDto::Render,
            Ok(project::AssetKind::Thumbnail) => AssetKindDto::Thumbnail,
            _ => AssetKindDto::Image,
        }
    }
}

/// Media facts as probed; zero where not applicable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MediaDto {
    pub mime_type: String,
    pub size_bytes: u64,
    #[schema(maximum = 16384)]
    pub width_px: u32,
    #[schema(maximum = 16384)]
    pub height_px: u32,
    pub duration_s: f64,
    /// 64 hex characters, or empty.
    pub sha256: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssetBody {
    /// A scene of the same project.
    pub scene_id: Option<String>,
    pub kind: AssetKindDto,
    /// Object key under `projects/{project_id}/`.
    pub storage_key: String,
    #[serde(default)]
    pub media: MediaDto,
    /// Attribution for CC-BY media.
    #[serde(default)]
    pub credit: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetDto {
    pub id: String,
    pub project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene_id: Option<String>,
    pub kind: AssetKindDto,
    pub storage_key: String,
    pub media: MediaDto,
    pub credit: String,
    pub created_at: DateTime<Utc>,
}

impl From<project::Asset> for AssetDto {
    fn from(a: project::Asset) -> Self {
        let m = a.media.unwrap_or_default();
        AssetDto {
            id: a.id,
            project_id: a.project_id,
            scene_id: a.scene_id,
            kind: AssetKindDto::from_pb(a.kind),
            storage_key: a.storage_key,
            media: MediaDto {
                mime_type: m.mime_type,
                size_bytes: m.size_bytes,
                width_px: m.width_px,
                height_px: m.height_px,
                duration_s: m.duration_s,
                sha256: m.sha256,
            },
            credit: a.credit,
            created_at: time(a.created_at_ms),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePresetBody {
    /// 1 to 40 characters of a-z, 0-9 and `-`.
    #[schema(example = "my-bold", pattern = "^[a-z0-9-]{1,40}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The style as TOML, as `studio render --style FILE.toml` reads it.
    pub style_toml: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresetDto {
    pub name: String,
    pub built_in: bool,
    pub description: String,
    pub style_toml: String,
}

impl From<project::Preset> for PresetDto {
    fn from(p: project::Preset) -> Self {
        PresetDto {
            name: p.name,
            built_in: p.built_in,
            description: p.description,
            style_toml: p.style_toml,
        }
    }
}

mod jobs;
pub use jobs::*;

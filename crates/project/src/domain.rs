//! Project domain types, valid by construction: the `parse`/`check` functions here are the only
//! way in from the edge, and their errors name the field and say what is accepted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studio_core::id::{AssetId, ProjectId, SceneId, UserId};
use studio_core::Error;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Largest source text, in bytes (a long book chapter is ~100 KB).
pub const MAX_SOURCE_BYTES: usize = 1_000_000;
/// Longest topic, in characters.
pub const MAX_TOPIC: usize = 500;

/// Output frame shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aspect {
    /// 16:9, 1920×1080.
    #[serde(rename = "16:9")]
    Landscape,
    /// 9:16, 1080×1920.
    #[serde(rename = "9:16")]
    Portrait,
    /// 1:1, 1080×1080.
    #[serde(rename = "1:1")]
    Square,
    /// 4:5, 1080×1350.
    #[serde(rename = "4:5")]
    Feed,
}

impl Aspect {
    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::Landscape => "16:9",
            Aspect::Portrait => "9:16",
            Aspect::Square => "1:1",
            Aspect::Feed => "4:5",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Aspect, Error> {
        match value {
            "16:9" => Ok(Aspect::Landscape),
            "9:16" => Ok(Aspect::Portrait),
            "1:1" => Ok(Aspect::Square),
            "4:5" => Ok(Aspect::Feed),
            _ => Err(Error::invalid(field, "must be one of 16:9, 9:16, 1:1, 4:5")),
        }
    }
}

/// What the video is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Text(String),
    Topic(String),
}

impl Source {
    /// Exactly one of `source_text` and `topic`.
    pub fn parse(source_text: Option<String>, topic: Option<String>) -> Result<Source, Error> {
        match (source_text, topic) {
            (Some(text), None) => {
                if text.trim().is_empty() {
                    return Err(Error::invalid("source_text", "must not be empty"));
                }
                if text.len() > MAX_SOURCE_BYTES {
                    return Err(Error::invalid(
                        "source_text",
                        format!("must be at most {MAX_SOURCE_BYTES} bytes; split the book into chapters"),
                    ));
                }
                Ok(Source::Text(text))
            }
            (None, Some(topic)) => {
                let topic = topic.trim().to_owned();
                if topic.is_empty() || topic.chars().count() > MAX_TOPIC {
                    return Err(Error::invalid(
                        "topic",
                        format!("must be 1 to {MAX_TOPIC} characters"),
                    ));
                }
                Ok(Source::Topic(topic))
            }
            (Some(_), Some(_)) => Err(Error::invalid(
                "source_text",
                "give either source_text or topic, not both",
            )),
            (None, None) => Err(Error::invalid(
                "source_text",
                "give source_text (the text to narrate) or topic",
            )),
        }
    }
}

/// How the video is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectSettings {
    /// Target length in seconds; 0 means the whole text. 0 or 10..=3600.
    pub duration_s: f64,
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
    /// Words per minute, 80..=450.
    pub rate_wpm: u32,
    /// A section title of the source text; empty for the whole text.
    pub section: String,
    /// Score the video with music.
    pub music: bool,
    /// Seed for generated cards and music.
    pub seed: u64,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings {
            duration_s: 0.0,
            voice: studio_style::narrator::VOICE.to_owned(),
            rate_wpm: studio_style::narrator::RATE_WPM,
            section: String::new(),
            music: true,
            seed: 0,
        }
    }
}

impl ProjectSettings {
    pub fn check(&self) -> Result<(), Error> {
        if !(self.duration_s == 0.0 || (10.0..=3600.0).contains(&self.duration_s)) {
            return Err(Error::invalid(
                "settings.duration_s",
                "must be 0 (the whole text) or 10 to 3600 seconds",
            ));
        }
        if !(80..=450).contains(&self.rate_wpm) {
            return Err(Error::invalid(
                "settings.rate_wpm",
                "must be 80 to 450 words per minute",
            ));
        }
        let voice_ok = !self.voice.is_empty()
            && self.voice.len() <= 40
            && self
                .voice
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-+_".contains(c));
        if !voice_ok {
            return Err(Error::invalid(
                "settings.voice",
                "must be an espeak-ng voice name such as en-us or en-gb+f3",
            ));
        }
        if self.section.chars().count() > 200 {
            return Err(Error::invalid(
                "settings.section",
                "must be at most 200 characters",
            ));
        }
        Ok(())
    }
}

/// A project as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub owner_id: UserId,
    pub title: String,
    pub source: Source,
    pub aspect: Aspect,
    pub style: String,
    pub settings: ProjectSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project to create.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub title: String,
    pub source: Source,
    pub aspect: Aspect,
    pub style: String,
    pub settings: ProjectSettings,
}

/// Changes to a project; `None` leaves a field as it is. Owner and id cannot change.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub title: Option<String>,
    pub source: Option<Source>,
    pub aspect: Option<Aspect>,
    pub style: Option<String>,
    pub settings: Option<ProjectSettings>,
}

/// Checks a title: 1..=200 characters after trimming, no control characters.
pub fn check_title(title: &str) -> Result<String, Error> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE || title.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "title",
            format!("must be 1 to {MAX_TITLE} characters, without control characters"),
        ));
    }
    Ok(title.to_owned())
}

/// A scene of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub id: SceneId,
    pub project_id: ProjectId,
    pub position: u32,
    pub heading: String,
    pub narration: String,
    pub search_terms: Vec<String>,
    pub duration_s: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A scene to create; `position` `None` appends.
#[derive(Debug, Clone, Default)]
pub struct NewScene {
    pub position: Option<u32>,
    pub heading: String,
    pub narration: String,
    pub search_terms: Vec<String>,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ScenePatch {
    pub position: Option<u32>,
    pub heading: Option<String>,
    pub narration: Option<String>,
    pub search_terms: Option<Vec<String>>,
    pub duration_s: Option<f64>,
}

/// Checks scene fields: heading ≤ 200 characters, narration ≤ 10,000, at most 20 search terms of
/// ≤ 60 characters, duration 0..=600 s, position ≤ 10,000.
pub fn check_scene_fields(
    position: Option<u32>,
    heading: Option<&str>,
    narration: Option<&str>,
    terms: Option<&[String]>,
    duration_s: Option<f64>,
) -> Result<(), Error> {
    if position.is_some_and(|p| p > 10_000) {
        return Err(Error::invalid("position", "must be 0 to 10000"));
    }
    if heading.is_some_and(|h| h.chars().count() > 200) {
        return Err(Error::invalid("heading", "must be at most 200 characters"));
    }
    if narration.is_some_and(|n| n.chars().count() > 10_000) {
        return Err(Error::invalid(
            "narration",
            "must be at most 10000 characters; split the scene",
        ));
    }
    if let Some(terms) = terms {
        if terms.len() > 20
            || terms
                .iter()
                .any(|t| t.trim().is_empty() || t.chars().count() > 60)
        {
            return Err(Error::invalid(
                "search_terms",
                "must be at most 20 non-empty terms of at most 60 characters",
            ));
        }
    }
    if duration_s.is_some_and(|d| !(0.0..=600.0).contains(&d)) {
        return Err(Error::invalid("duration_s", "must be 0 to 600 seconds"));
    }
    Ok(())
}

/// What an asset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Image,
    Video,
    Audio,
    Music,
    Narration,
    Captions,
    Render,
    Thumbnail,
}

impl AssetKind {
    pub const ALL: [AssetKind; 8] = [
        AssetKind::Image,
        AssetKind::Video,
        AssetKind::Audio,
        AssetKind::Music,
        AssetKind::Narration,
        AssetKind::Captions,
        AssetKind::Render,
        AssetKind::Thumbnail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Image => "image",
            AssetKind::Video => "video",
            AssetKind::Audio => "audio",
            AssetKind::Music => "music",
            AssetKind::Narration => "narration",
            AssetKind::Captions => "captions",
            AssetKind::Render => "render",
            AssetKind::Thumbnail => "thumbnail",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<AssetKind, Error> {
        AssetKind::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "must be one of image, video, audio, music, narration, captions, render, thumbnail",
                )
            })
    }
}

/// Media facts as probed; zero where not applicable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaInfo {
    pub mime_type: String,
    pub size_bytes: u64,
    pub width_px: u32,
    pub height_px: u32,
    pub duration_s: f64,
    /// Hex SHA-256, 64 lowercase characters, or empty.
    pub sha256: String,
}

/// A stored media object.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    pub id: AssetId,
    pub project_id: ProjectId,
    pub scene_id: Option<SceneId>,
    pub kind: AssetKind,
    pub storage_key: String,
    pub media: MediaInfo,
    pub credit: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewAsset {
    pub scene_id: Option<SceneId>,
    pub kind: AssetKind,
    pub storage_key: String,
    pub media: MediaInfo,
    pub credit: String,
}

impl NewAsset {
    /// Checks the storage key lies under `projects/{project}/`, has no `..` or empty segments and
    /// at most 1024 bytes (S3's limit); media facts in range; credit ≤ 500 characters.
    pub fn check(&self, project: ProjectId) -> Result<(), Error> {
        let prefix = format!("projects/{project}/");
        let key = &self.storage_key;
        if !key.starts_with(&prefix)
            || key.len() > 1024
            || key.len() == prefix.len()
            || key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            || key.chars().any(|c| c.is_control() || c == '\\')
        {
            return Err(Error::invalid(
                "storage_key",
                format!("must be an object key under {prefix}, without empty, . or .. segments"),
            ));
        }
        let m = &self.media;
        if m.mime_type.len() > 100 || (!m.mime_type.is_empty() && !m.mime_type.contains('/')) {
            return Err(Error::invalid(
                "media.mime_type",
                "must be a MIME type such as image/png",
            ));
        }
        if m.size_bytes > i64::MAX as u64 || m.width_px > 16_384 || m.height_px > 16_384 {
            return Err(Error::invalid(
                "media",
                "width_px and height_px must be at most 16384",
            ));
        }
        if !(0.0..=86_400.0).contains(&m.duration_s) {
            return Err(Error::invalid(
                "media.duration_s",
                "must be 0 to 86400 seconds",
            ));
        }
        if !(m.sha256.is_empty()
            || (m.sha256.len() == 64 && m.sha256.chars().all(|c| c.is_ascii_hexdigit())))
        {
            return Err(Error::invalid(
                "media.sha256",
                "must be 64 hex characters or empty",
            ));
        }
        if self.credit.chars().count() > 500 {
            return Err(Error::invalid("credit", "must be at most 500 characters"));
        }
        Ok(())
    }
}

/// A style preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: String,
    pub built_in: bool,
    pub description: String,
    pub style_toml: String,
}

/// Checks a preset name: 1..=40 of `a-z`, `0-9`, `-`.
pub fn check_preset_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "must be 1 to 40 characters of a-z, 0-9 and -",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_need_exactly_one() {
        assert!(Source::parse(Some("Once upon a time.".into()), None).is_ok());
        assert_eq!(
            Source::parse(None, None).unwrap_err().field.as_deref(),
            Some("source_text")
        );
        assert!(Source::parse(Some("a".into()), Some("b".into())).is_err());
        assert_eq!(
            Source::parse(None, Some(" ".into()))
                .unwrap_err()
                .field
                .as_deref(),
            Some("topic")
        );
    }

    #[test]
    fn storage_keys_stay_in_their_project() {
        let project = ProjectId::new();
        let asset = |key: String| NewAsset {
            scene_id: None,
            kind: AssetKind::Image,
            storage_key: key,
            media: MediaInfo::default(),
            credit: String::new(),
        };
        assert!(asset(format!("projects/{project}/assets/a.png"))
            .check(project)
            .is_ok());
        for bad in [
            format!("projects/{}/a.png", ProjectId::new()),
            format!("projects/{project}/../x/a.png"),
            format!("projects/{project}//a.png"),
            format!("projects/{project}/"),
            "a.png".to_owned(),
        ] {
            assert!(asset(bad.clone()).check(project).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_range_checked() {
        assert!(ProjectSettings::default().check().is_ok());
        let s = ProjectSettings {
            duration_s: 5.0,
            ..Default::default()
        };
        assert_eq!(
            s.check().unwrap_err().field.as_deref(),
            Some("settings.duration_s")
        );
        let s = ProjectSettings {
            voice: "en us; rm".into(),
            ..Default::default()
        };
        assert_eq!(
            s.check().unwrap_err().field.as_deref(),
            Some("settings.voice")
        );
    }
}

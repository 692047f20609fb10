//! The audio tracks: narration and effect clips, the music bed and how it ducks under the
//! voice. Gains in dB, times in seconds.

use super::*;

/// Voice, music and effect tracks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioTracks {
    /// Narration clips; music ducks under them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voice: Vec<AudioClip>,
    /// A music bed under the whole video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music: Option<MusicBed>,
    /// Sound effects; they do not duck the music.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<AudioClip>,
    /// How the music ducks under the voice.
    #[serde(default)]
    pub ducking: Ducking,
}

/// An audio clip placed on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioClip {
    /// Path relative to the input folder (WAV, FLAC, Ogg, MP3, M4A).
    pub path: String,
    /// Timeline time where the clip starts, seconds.
    #[serde(default)]
    pub start: f64,
    /// Gain in dB. Default 0.
    #[serde(default)]
    pub gain_db: f64,
    /// Where to start in the source, seconds. Default 0.
    #[serde(default)]
    pub source_start: f64,
    /// Where to stop in the source, seconds; default its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_end: Option<f64>,
}

impl AudioClip {
    /// A clip of `path` starting at `start` seconds.
    pub fn at(path: impl Into<String>, start: f64) -> Self {
        Self {
            path: path.into(),
            start,
            gain_db: 0.0,
            source_start: 0.0,
            source_end: None,
        }
    }
}

/// A music bed laid under the whole video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MusicBed {
    /// Path relative to the input folder.
    pub path: String,
    /// Gain in dB before ducking. Default -8.
    #[serde(default = "default_music_gain")]
    pub gain_db: f64,
    /// Loop the track when it is shorter than the video (else silence follows). Default true.
    #[serde(default = "default_true")]
    pub r#loop: bool,
    /// Fade-in length, seconds. Default 1.
    #[serde(default = "default_fade_in")]
    pub fade_in: f64,
    /// Fade-out length at the end of the video, seconds. Default 2.
    #[serde(default = "default_fade_out")]
    pub fade_out: f64,
    /// Credit line the licence asks for (CC-BY); copied into the render report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
}

fn default_music_gain() -> f64 {
    -8.0
}
fn default_fade_in() -> f64 {
    1.0
}
fn default_fade_out() -> f64 {
    2.0
}

impl MusicBed {
    /// A bed of `path` with default gain, looping and fades.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            gain_db: default_music_gain(),
            r#loop: true,
            fade_in: default_fade_in(),
            fade_out: default_fade_out(),
            credit: None,
        }
    }
}

/// Sidechain compression of the music keyed by the voice (FFmpeg `sidechaincompress`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ducking {
    /// Duck at all. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Voice level above which the music is compressed, dBFS. Default -40.
    #[serde(default = "default_duck_threshold")]
    pub threshold_db: f64,
    /// Compression ratio, 1..=20. Default 20.
    #[serde(default = "default_duck_ratio")]
    pub ratio: f64,
    /// Attack, milliseconds. Default 20.
    #[serde(default = "default_duck_attack")]
    pub attack_ms: f64,
    /// Release, milliseconds. Default 600.
    #[serde(default = "default_duck_release")]
    pub release_ms: f64,
}

fn default_duck_threshold() -> f64 {
    -40.0
}
fn default_duck_ratio() -> f64 {
    20.0
}
fn default_duck_attack() -> f64 {
    20.0
}
fn default_duck_release() -> f64 {
    600.0
}

impl Default for Ducking {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_db: default_duck_threshold(),
            ratio: default_duck_ratio(),
            attack_ms: default_duck_attack(),
            release_ms: default_duck_release(),
        }
    }
}

//! Output settings: encoder preset, CRF, audio bitrate, loudness target (LUFS), true peak,
//! size cap, threads and the thumbnail.

use super::*;

/// x264 speed presets, fastest first.
///
/// `ultrafast` is not offered: it turns off CABAC and 8×8 transforms, so its streams are
/// Constrained Baseline rather than the High profile Studio delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum EncoderPreset {
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl EncoderPreset {
    /// Returns the name libx264 takes.
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderPreset::Superfast => "superfast",
            EncoderPreset::Veryfast => "veryfast",
            EncoderPreset::Faster => "faster",
            EncoderPreset::Fast => "fast",
            EncoderPreset::Medium => "medium",
            EncoderPreset::Slow => "slow",
            EncoderPreset::Slower => "slower",
            EncoderPreset::Veryslow => "veryslow",
        }
    }
}

/// Encoder, loudness, size cap and thumbnail settings.
///
/// Video is always H.264 High, yuv420p, BT.709, in MP4 with `+faststart`; audio AAC-LC 48 kHz
/// stereo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// x264 constant rate factor, 0..=51 (lower is better). Default 21.
    #[serde(default = "default_crf")]
    pub crf: u8,
    /// x264 preset. Default `veryfast`.
    #[serde(default)]
    pub preset: EncoderPreset,
    /// Encoder threads per FFmpeg process; default 0 (FFmpeg picks).
    #[serde(default)]
    pub threads: u32,
    /// AAC bitrate, kbit/s, 64..=512. Default 192.
    #[serde(default = "default_audio_bitrate")]
    pub audio_bitrate_kbps: u32,
    /// Integrated loudness target, LUFS (EBU R 128 / ITU-R BS.1770). Default -14, the level
    /// YouTube, Spotify and TikTok normalise to.
    #[serde(default = "default_target_lufs")]
    pub loudness_lufs: f64,
    /// True-peak ceiling, dBTP. Default -1.
    #[serde(default = "default_true_peak")]
    pub true_peak_dbtp: f64,
    /// Largest allowed file size in bytes; the video is re-encoded at a higher CRF until it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Which frame becomes `thumbnail.jpg`.
    #[serde(default)]
    pub thumbnail: ThumbnailSpec,
}

fn default_crf() -> u8 {
    21
}
fn default_audio_bitrate() -> u32 {
    192
}
fn default_target_lufs() -> f64 {
    -14.0
}
fn default_true_peak() -> f64 {
    -1.0
}

impl Default for OutputSettings {
    fn default() -> Self {
        Self {
            crf: default_crf(),
            preset: EncoderPreset::default(),
            threads: 0,
            audio_bitrate_kbps: default_audio_bitrate(),
            loudness_lufs: default_target_lufs(),
            true_peak_dbtp: default_true_peak(),
            max_bytes: None,
            thumbnail: ThumbnailSpec::default(),
        }
    }
}

/// Which frame becomes the thumbnail.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailSpec {
    /// Scene index (0-based). Default 0.
    #[serde(default)]
    pub scene: usize,
    /// Seconds into the scene; default its middle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}

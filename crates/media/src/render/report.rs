//! What a render did, written to `report.json`: [`RenderReport`] with a [`SegmentReport`] per
//! segment and the [`AudioReport`] of the mix.

use serde::Serialize;

/// What a render did, written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RenderReport {
    /// Engine version.
    pub engine: String,
    /// `ffmpeg -version` first line.
    pub ffmpeg: String,
    /// SHA-256 of the timeline JSON as rendered.
    pub timeline_sha256: String,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames in the video.
    pub frames: u64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Every segment in join order.
    pub segments: Vec<SegmentReport>,
    /// Segments encoded by this render.
    pub segments_rendered: usize,
    /// Segments taken from the cache.
    pub segments_cached: usize,
    /// The audio mix.
    pub audio: AudioReport,
    /// CRF of the published video (differs from the timeline's when `max_bytes` forced more).
    pub crf: u8,
    /// Each encode attempt against `max_bytes`: `(crf, bytes)`.
    pub size_attempts: Vec<(u8, u64)>,
    /// Size of `final.mp4`, bytes.
    pub bytes: u64,
    /// Files written, relative to the output folder.
    pub outputs: Vec<String>,
    /// Credit lines of licensed media used (music `credit`).
    pub credits: Vec<String>,
    /// Wall time of the render, seconds.
    pub wall_s: f64,
}

/// One segment in the report.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    /// Join position.
    pub index: usize,
    /// `scene` or `transition`.
    pub kind: &'static str,
    /// Scenes it shows (one for a scene body, two for a transition).
    pub scenes: Vec<usize>,
    /// First frame on the timeline.
    pub start_frame: u64,
    /// Frames.
    pub frames: u64,
    /// Cache key (SHA-256 hex).
    pub key: String,
    /// True when it came from the cache.
    pub cached: bool,
    /// Seconds spent encoding it (0 when cached).
    pub encode_s: f64,
}

/// The audio mix in the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AudioReport {
    /// Cache key.
    pub key: String,
    /// True when it came from the cache.
    pub cached: bool,
    /// Integrated loudness of the mix before normalisation, LUFS.
    pub input_lufs: Option<f64>,
    /// True peak of the mix before normalisation, dBTP.
    pub input_true_peak: Option<f64>,
    /// Target, LUFS.
    pub target_lufs: f64,
    /// `linear` or `dynamic` (loudnorm's mode), or `none` for silence.
    pub normalization: String,
}

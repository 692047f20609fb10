//! Rendering a timeline into `final.mp4`, captions, a thumbnail and a report.
//!
//! Order of work:
//! 1. structural validation, then input checks (folder, existence, real format, ffprobe) — all
//!    problems at once, before any frame is rendered;
//! 2. each segment (see [`crate::layout`]) is built as one FFmpeg command; its cache key is the
//!    SHA-256 of the command with inputs replaced by their content hashes, plus the FFmpeg
//!    version; a segment whose key is in `cache/segments/` is reused, others are encoded;
//! 3. the audio mix (voice, looped/faded music ducked by sidechain compression, effects) is
//!    rendered once for the whole timeline, normalised with two-pass `loudnorm` and encoded to
//!    AAC, cached the same way;
//! 4. segments are joined with the concat demuxer without re-encoding (`-c copy`), the audio is
//!    muxed in, `+faststart`; if the file is over `max_bytes` the segments are re-encoded at a
//!    higher CRF until it fits;
//! 5. thumbnail, SRT, WebVTT and `report.json` are written; every output is written under a
//!    temporary name and renamed into place only when all of them exist.
//!
//! Cancelling (the token, or dropping the future) and the timeout kill FFmpeg and leave nothing
//! under the final names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::MediaError;
use crate::ffmpeg::{RunControl, Sandbox, Toolchain};
use crate::outputs::OutputKind;
use crate::text::{self, FontBook};
use crate::timeline::*;
use crate::validate::validate;

/// Bumped whenever the engine changes how a segment is drawn, to retire old cache entries.
const SEGMENT_ENGINE: &str = "studio-media/segment/v1";
const AUDIO_ENGINE: &str = "studio-media/audio/v1";
const MOTION_ENGINE: &str = "studio-media/motion/v1";
const STILL_ENGINE: &str = "studio-media/still/v1";

mod audio;
mod context;
mod inputs;
mod join;
mod overlays;
mod report;
mod segments;
mod visual;

pub use crate::encoder::VideoEncoder;
pub use report::{AudioReport, RenderReport, SegmentReport};

use audio::{mix_command, render_audio};
use context::{RenderContext, Source, StagedFile};
use inputs::{check_inputs, file_len};
use join::{join, thumbnail};
use overlays::{image_overlays, text_events};
use segments::render_segments;
use visual::prepare_stills;

/// Where a render reads, writes and caches, and how it reports.
#[derive(Clone)]
pub struct RenderOptions {
    /// Folder that the timeline's relative paths start from.
    pub input_dir: PathBuf,
    /// Folder receiving `final.mp4`, `captions.srt`, `captions.vtt`, `thumbnail.jpg`,
    /// `report.json`.
    pub output_dir: PathBuf,
    /// Segment, audio, font and script cache; also FFmpeg's working folder.
    pub cache_dir: PathBuf,
    /// FFmpeg binaries.
    pub toolchain: Toolchain,
    /// Fires to cancel the render.
    pub cancel: CancellationToken,
    /// Longest time the whole render may take.
    pub timeout: Option<Duration>,
    /// Segments encoded at the same time. Default 1.
    pub jobs: usize,
    /// Receives progress updates.
    pub progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    /// H.264 encoder of the segments. Default [`VideoEncoder::Libx264`].
    pub encoder: VideoEncoder,
}

impl std::fmt::Debug for RenderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderOptions")
            .field("input_dir", &self.input_dir)
            .field("output_dir", &self.output_dir)
            .field("cache_dir", &self.cache_dir)
            .field("timeout", &self.timeout)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl RenderOptions {
    /// Options reading from `input_dir` and writing to `output_dir`, caching in
    /// `output_dir/.cache`.
    pub fn new(input_dir: impl Into<PathBuf>, output_dir: impl Into<PathBuf>) -> Self {
        let output_dir = output_dir.into();
        Self {
            input_dir: input_dir.into(),
            cache_dir: output_dir.join(".cache"),
            output_dir,
            toolchain: Toolchain::default(),
            cancel: CancellationToken::new(),
            timeout: None,
            jobs: 1,
            progress: None,
            encoder: VideoEncoder::default(),
        }
    }
}

/// Where a render is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Checking the timeline and probing inputs.
    Checking,
    /// Encoding segments; `frames_done` counts.
    Segments,
    /// Mixing and normalising audio.
    Audio,
    /// Joining segments and muxing.
    Joining,
    /// Thumbnail, captions, report.
    Finishing,
}

/// A progress update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Current stage.
    pub stage: Stage,
    /// Frames encoded so far (segments that need encoding only).
    pub frames_done: u64,
    /// Frames to encode in total (0 when everything came from cache).
    pub frames_total: u64,
}

/// Parses a timeline from JSON text; the error names the JSON path that failed.
///
/// Errors with [`MediaError::Json`].
pub fn parse_timeline(json: &str) -> Result<Timeline, MediaError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        MediaError::Json {
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Renders `timeline` into `options.output_dir`. See the module docs for what happens.
///
/// Errors: [`MediaError::Invalid`] listing every problem of the timeline and its inputs (before
/// any frame is rendered); [`MediaError::Cancelled`] and [`MediaError::TimedOut`];
/// [`MediaError::Ffmpeg`] when FFmpeg fails; [`MediaError::TooLarge`] when `max_bytes` cannot
/// be met; [`MediaError::Io`] for filesystem failures. On any error nothing is left under the
/// output names (cached segments stay in the cache).
pub async fn render(
    timeline: &Timeline,
    options: &RenderOptions,
) -> Result<RenderReport, MediaError> {
    let work = render_inner(timeline, options);
    let deadline = async {
        match options.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = work => r,
        _ = options.cancel.cancelled() => Err(MediaError::Cancelled),
        _ = deadline => Err(MediaError::TimedOut(options.timeout.unwrap_or_default())),
    }
}

fn emit(options: &RenderOptions, stage: Stage, done: u64, total: u64) {
    if let Some(p) = &options.progress {
        p(Progress {
            stage,
            frames_done: done,
            frames_total: total,
        });
    }
}

async fn render_inner(
    timeline: &Timeline,
    options: &RenderOptions,
) -> Result<RenderReport, MediaError> {
    let started = Instant::now();
    emit(options, Stage::Checking, 0, 0);
    let ffmpeg_version = options.toolchain.ffmpeg_version().await?;
    let (sandbox, sources, ctl) = prepare(timeline, options).await?;

    let mut ctx = RenderContext::new(timeline, sandbox, sources, ctl, options);
    ctx.ffmpeg_version = ffmpeg_version;
    let mut fonts = FontBook::default();
    ctx.text = text_events(timeline, &ctx.layout, &ctx.sandbox, &mut fonts)?;
    ctx.images = image_overlays(timeline, &ctx.layout);
    let (width, height) = (ctx.frame.width, ctx.frame.height);
    for dir in ["segments", "audio", "ass", "tmp", "stills"] {
        let d = ctx.sandbox.work.join(dir);
        std::fs::create_dir_all(&d).map_err(|e| MediaError::io(&d, e))?;
    }
    ctx.stills = prepare_stills(&ctx).await?;

    let audio_task = render_audio(&ctx, options);
    let mut crf = timeline.output.crf;
    let mut attempts = Vec::new();
    let (segments, audio) = tokio::try_join!(render_segments(&ctx, options, crf), audio_task)?;
    let (audio_path, audio_report) = audio;
    let mut segments = segments;

    emit(options, Stage::Joining, 0, 0);
    let out_dir = &ctx.sandbox.output;
    let mut video = join(&ctx, &segments, &audio_path).await?;
    let mut bytes = file_len(&video.path)?;
    attempts.push((crf, bytes));
    if let Some(max_bytes) = timeline.output.max_bytes {
        while bytes > max_bytes {
            if crf >= 51 {
                return Err(MediaError::TooLarge {
                    size: bytes,
                    max_bytes,
                });
            }
            // x264 roughly halves the bitrate every +6 CRF; aim a little under the cap.
            let audio_bytes = file_len(&audio_path)?;
            let ratio = (bytes.saturating_sub(audio_bytes)) as f64
                / (max_bytes.saturating_sub(audio_bytes).max(1)) as f64
                * 1.05;
            let step = (6.0 * ratio.log2()).ceil().clamp(1.0, 12.0) as u8;
            crf = (crf + step).min(51);
            tracing::info!(crf, bytes, max_bytes, "re-encoding to fit the size cap");
            segments = render_segments(&ctx, options, crf).await?;
            video = join(&ctx, &segments, &audio_path).await?;
            bytes = file_len(&video.path)?;
            attempts.push((crf, bytes));
        }
    }

    emit(options, Stage::Finishing, 0, 0);
    let thumb = thumbnail(&ctx, &video.path).await?;
    let srt = StagedFile::new(out_dir, "captions.srt");
    std::fs::write(&srt.path, text::srt(&timeline.captions.cues).as_bytes())
        .map_err(|e| MediaError::io(&srt.path, e))?;
    let vtt = StagedFile::new(out_dir, "captions.vtt");
    std::fs::write(&vtt.path, text::webvtt(&timeline.captions.cues).as_bytes())
        .map_err(|e| MediaError::io(&vtt.path, e))?;

    let timeline_json =
        serde_json::to_vec(timeline).map_err(|e| MediaError::Internal(e.to_string()))?;
    let report = RenderReport {
        engine: format!("studio-media {}", env!("CARGO_PKG_VERSION")),
        ffmpeg: ctx.ffmpeg_version.clone(),
        timeline_sha256: hex::encode(Sha256::digest(&timeline_json)),
        width,
        height,
        fps: ctx.frame.fps,
        frames: ctx.layout.total_frames,
        duration_s: ctx.layout.duration(),
        segments_rendered: segments.iter().filter(|s| !s.cached).count(),
        segments_cached: segments.iter().filter(|s| s.cached).count(),
        segments,
        audio: audio_report,
        crf,
        size_attempts: attempts,
        bytes,
        outputs: published_names(),
        credits: timeline
            .audio
            .music
            .iter()
            .filter_map(|m| m.credit.clone())
            .collect(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let report_file = StagedFile::new(out_dir, "report.json");
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| MediaError::Internal(e.to_string()))?;
    std::fs::write(&report_file.path, &json).map_err(|e| MediaError::io(&report_file.path, e))?;

    // Publish: every file exists under its temporary name; rename them into place.
    thumb.commit(&out_dir.join(OutputKind::Thumbnail.file_name()))?;
    srt.commit(&out_dir.join(OutputKind::CaptionsSrt.file_name()))?;
    vtt.commit(&out_dir.join(OutputKind::CaptionsVtt.file_name()))?;
    video.commit(&out_dir.join(OutputKind::Video.file_name()))?;
    report_file.commit(&out_dir.join("report.json"))?;
    tracing::info!(
        frames = report.frames,
        rendered = report.segments_rendered,
        cached = report.segments_cached,
        "render finished"
    );
    Ok(report)
}

/// The files a render publishes, the video first and `report.json` last.
fn published_names() -> Vec<String> {
    let mut kinds = OutputKind::ALL.to_vec();
    kinds.sort_by_key(|k| *k != OutputKind::Video);
    let mut names: Vec<String> = kinds.iter().map(|k| k.file_name().to_owned()).collect();
    names.push("report.json".into());
    names
}

/// Checks `timeline` and every input it names (folder, existence, real format, ffprobe)
/// without rendering anything.
///
/// Errors: [`MediaError::Invalid`] listing every problem; [`MediaError::MissingTool`] without
/// ffprobe.
pub async fn check(timeline: &Timeline, options: &RenderOptions) -> Result<(), MediaError> {
    prepare(timeline, options).await.map(|_| ())
}

async fn prepare(
    timeline: &Timeline,
    options: &RenderOptions,
) -> Result<(Sandbox, HashMap<String, Source>, RunControl), MediaError> {
    let problems = validate(timeline);
    if !problems.is_empty() {
        return Err(MediaError::Invalid(problems));
    }
    if !options.input_dir.is_dir() {
        return Err(MediaError::Input {
            path: options.input_dir.clone(),
            problem: "input folder does not exist".into(),
        });
    }
    let sandbox = Sandbox::new(&options.input_dir, &options.cache_dir, &options.output_dir)?;
    let ctl = RunControl {
        cancel: options.cancel.clone(),
        timeout: None,
    };
    let sources = check_inputs(timeline, &sandbox, &options.toolchain, &ctl).await?;
    Ok((sandbox, sources, ctl))
}

/// Mixes the timeline's audio without normalisation into `output` (a WAV, 48 kHz stereo
/// float), for analysis such as measuring how far the music ducks under the voice.
///
/// Errors as [`render`] (validation and input checks included).
pub async fn mix_audio(
    timeline: &Timeline,
    options: &RenderOptions,
    output: &Path,
) -> Result<(), MediaError> {
    let (sandbox, sources, ctl) = prepare(timeline, options).await?;
    let ctx = RenderContext::new(timeline, sandbox, sources, ctl, options);
    let cmd = mix_command(&ctx, output)?;
    cmd.run(&ctx.toolchain, &ctx.ctl, None).await?;
    Ok(())
}

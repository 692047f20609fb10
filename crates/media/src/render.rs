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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::MediaError;
use crate::ffmpeg::{FfmpegCommand, RunControl, Sandbox, Toolchain};
use crate::graph::{self, Frame};
use crate::layout::{Layout, SegmentKind, SegmentPlan};
use crate::motion::MotionFeed;
use crate::probe::{probe, ProbeInfo};
use crate::sniff::SourceFormat;
use crate::text::{self, FontBook, Placement, ResolvedStyle, TextEvent};
use crate::timeline::*;
use crate::validate::{validate, Problem, Problems};

/// Bumped whenever the engine changes how a segment is drawn, to retire old cache entries.
const SEGMENT_ENGINE: &str = "studio-media/segment/v1";
const AUDIO_ENGINE: &str = "studio-media/audio/v1";
const MOTION_ENGINE: &str = "studio-media/motion/v1";
const STILL_ENGINE: &str = "studio-media/still/v1";

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

/// The H.264 encoder segments are made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoEncoder {
    /// x264 on the CPU: the reference, bit-exact across runs.
    #[default]
    Libx264,
    /// NVIDIA NVENC: needs an NVIDIA GPU and an FFmpeg built with it; check with
    /// [`VideoEncoder::self_test`] before use. Constant-quality VBR at the timeline's CRF as `-cq`.
    H264Nvenc,
}

impl VideoEncoder {
    /// FFmpeg's name for it.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            VideoEncoder::Libx264 => "libx264",
            VideoEncoder::H264Nvenc => "h264_nvenc",
        }
    }

    /// Encodes one second of a 256x256 test pattern to nowhere; `Err` with FFmpeg's last lines
    /// when this encoder cannot run here (no GPU, no driver, FFmpeg built without it).
    pub async fn self_test(self, toolchain: &Toolchain) -> Result<(), String> {
        let output = tokio::process::Command::new(&toolchain.ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
            ])
            .args(["-i", "testsrc2=size=256x256:rate=30:duration=1", "-c:v"])
            .arg(self.ffmpeg_name())
            .args(["-pix_fmt", "yuv420p", "-f", "null", "-"])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("{}: {e}", toolchain.ffmpeg.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            Err(tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
        }
    }
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

/// An input file checked and probed.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    format: SourceFormat,
    info: ProbeInfo,
}

/// A timed image overlay on the whole timeline.
#[derive(Debug, Clone)]
struct ImageOverlay {
    source: String,
    position: Position,
    width: Option<u32>,
    opacity: f64,
    start: f64,
    end: f64,
}

/// Everything segment builders need.
struct Ctx<'a> {
    timeline: &'a Timeline,
    layout: Layout,
    frame: Frame,
    sandbox: Sandbox,
    sources: HashMap<String, Source>,
    text: Vec<TextEvent>,
    images: Vec<ImageOverlay>,
    toolchain: Toolchain,
    encoder: VideoEncoder,
    ffmpeg_version: String,
    hashes: Mutex<HashMap<PathBuf, String>>,
    ctl: RunControl,
    /// Fitted stills of moving scenes: scene index -> (raw `yuv420p` file, cache key).
    stills: HashMap<usize, (PathBuf, String)>,
}

impl Ctx<'_> {
    fn source(&self, path: &str) -> Result<&Source, MediaError> {
        self.sources
            .get(path)
            .ok_or_else(|| MediaError::Internal(format!("input {path} was not checked")))
    }

    fn file_hash(&self, path: &Path) -> Result<String, MediaError> {
        if let Some(h) = self.hashes.lock().expect("hash cache lock").get(path) {
            return Ok(h.clone());
        }
        let mut file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| MediaError::io(path, e))?;
        let h = hex::encode(hasher.finalize());
        self.hashes
            .lock()
            .expect("hash cache lock")
            .insert(path.to_path_buf(), h.clone());
        Ok(h)
    }

    /// Cache key of a command: engine salt, FFmpeg version, arguments, input contents.
    fn key(&self, salt: &str, cmd: &FfmpegCommand) -> Result<String, MediaError> {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update(b"\0");
        h.update(self.ffmpeg_version.as_bytes());
        for a in cmd.key_args() {
            h.update(b"\0");
            h.update(a.as_bytes());
        }
        for input in cmd.inputs() {
            h.update(b"\0");
            h.update(self.file_hash(input)?.as_bytes());
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// A file being written under a temporary name; removed on drop unless committed.
#[derive(Debug)]
struct Partial {
    path: PathBuf,
    committed: bool,
}

impl Partial {
    fn new(dir: &Path, name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            path: dir.join(format!(".{name}.{}-{n}.partial", std::process::id())),
            committed: false,
        }
    }

    fn commit(mut self, target: &Path) -> Result<(), MediaError> {
        std::fs::rename(&self.path, target).map_err(|e| MediaError::io(target, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
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

    let layout = Layout::compute(timeline);
    let (width, height) = timeline.canvas.size();
    let frame = Frame {
        width,
        height,
        fps: layout.fps,
    };
    let mut fonts = FontBook::default();
    let text = text_events(timeline, &layout, &sandbox, &mut fonts)?;
    let images = image_overlays(timeline, &layout);
    let mut ctx = Ctx {
        timeline,
        layout,
        frame,
        sandbox,
        sources,
        text,
        images,
        toolchain: options.toolchain.clone(),
        encoder: options.encoder,
        ffmpeg_version,
        hashes: Mutex::new(HashMap::new()),
        ctl,
        stills: HashMap::new(),
    };
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
    let srt = Partial::new(out_dir, "captions.srt");
    crate::write_file(&srt.path, text::srt(&timeline.captions.cues).as_bytes())?;
    let vtt = Partial::new(out_dir, "captions.vtt");
    crate::write_file(&vtt.path, text::webvtt(&timeline.captions.cues).as_bytes())?;

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
        outputs: [
            "final.mp4",
            "captions.srt",
            "captions.vtt",
            "thumbnail.jpg",
            "report.json",
        ]
        .map(String::from)
        .to_vec(),
        credits: timeline
            .audio
            .music
            .iter()
            .filter_map(|m| m.credit.clone())
            .collect(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let report_file = Partial::new(out_dir, "report.json");
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| MediaError::Internal(e.to_string()))?;
    crate::write_file(&report_file.path, &json)?;

    // Publish: every file exists under its temporary name; rename them into place.
    thumb.commit(&out_dir.join("thumbnail.jpg"))?;
    srt.commit(&out_dir.join("captions.srt"))?;
    vtt.commit(&out_dir.join("captions.vtt"))?;
    video.commit(&out_dir.join("final.mp4"))?;
    report_file.commit(&out_dir.join("report.json"))?;
    tracing::info!(
        frames = report.frames,
        rendered = report.segments_rendered,
        cached = report.segments_cached,
        "render finished"
    );
    Ok(report)
}

fn file_len(path: &Path) -> Result<u64, MediaError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| MediaError::io(path, e))
}

/// What an input reference must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Image,
    Video,
    Audio,
}

/// Every file the timeline references, with its JSON path and what it must be.
fn references(t: &Timeline) -> Vec<(String, String, Need)> {
    let mut refs = Vec::new();
    for (i, s) in t.scenes.iter().enumerate() {
        match &s.visual {
            Visual::Image { path } => refs.push((
                format!("$.scenes[{i}].visual.path"),
                path.clone(),
                Need::Image,
            )),
            Visual::Video { path, .. } => refs.push((
                format!("$.scenes[{i}].visual.path"),
                path.clone(),
                Need::Video,
            )),
            Visual::Title {
                background: Background::Image { path },
                ..
            } => refs.push((
                format!("$.scenes[{i}].visual.background.path"),
                path.clone(),
                Need::Image,
            )),
            _ => {}
        }
        for (j, o) in s.overlays.iter().enumerate() {
            if let Overlay::Image { path, .. } = o {
                refs.push((
                    format!("$.scenes[{i}].overlays[{j}].path"),
                    path.clone(),
                    Need::Image,
                ));
            }
        }
    }
    for (j, o) in t.overlays.iter().enumerate() {
        if let Overlay::Image { path, .. } = o {
            refs.push((format!("$.overlays[{j}].path"), path.clone(), Need::Image));
        }
    }
    for (i, c) in t.audio.voice.iter().enumerate() {
        refs.push((
            format!("$.audio.voice[{i}].path"),
            c.path.clone(),
            Need::Audio,
        ));
    }
    for (i, c) in t.audio.effects.iter().enumerate() {
        refs.push((
            format!("$.audio.effects[{i}].path"),
            c.path.clone(),
            Need::Audio,
        ));
    }
    if let Some(m) = &t.audio.music {
        refs.push(("$.audio.music.path".into(), m.path.clone(), Need::Audio));
    }
    refs
}

/// Checks and probes every input; returns all problems at once.
async fn check_inputs(
    t: &Timeline,
    sandbox: &Sandbox,
    toolchain: &Toolchain,
    ctl: &RunControl,
) -> Result<HashMap<String, Source>, MediaError> {
    let mut problems = Problems::default();
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    for (json_path, user_path, need) in references(t) {
        if let Some(reason) = failed.get(&user_path) {
            problems.push(
                json_path,
                reason.clone(),
                "an existing image, audio or video file inside the input folder",
            );
            continue;
        }
        if !sources.contains_key(&user_path) {
            let path = sandbox.input_path(&user_path);
            match probe(sandbox, toolchain, &path, ctl).await {
                Ok(info) => {
                    let format = info.format.expect("probe sets the format");
                    sources.insert(
                        user_path.clone(),
                        Source {
                            path: sandbox.check_read(&path)?,
                            format,
                            info,
                        },
                    );
                }
                Err(e @ (MediaError::Input { .. } | MediaError::OutsideSandbox { .. })) => {
                    let reason = e.to_string();
                    failed.insert(user_path.clone(), reason.clone());
                    problems.push(
                        json_path,
                        reason,
                        "an existing image, audio or video file inside the input folder",
                    );
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let source = &sources[&user_path];
        let ok = match need {
            Need::Image => source.format.is_image(),
            Need::Video => source.format.can_hold_video() && source.info.video.is_some(),
            Need::Audio => source.info.audio.is_some(),
        };
        if !ok {
            let wanted = match need {
                Need::Image => "a still image (PNG, JPEG, WebP, BMP)",
                Need::Video => "a video (MP4/MOV or Matroska/WebM with a video stream)",
                Need::Audio => "a file with an audio stream (WAV, FLAC, Ogg, MP3, M4A)",
            };
            problems.push(
                json_path,
                format!(
                    "input {user_path} has {} content, which this slot cannot use",
                    source.format
                ),
                wanted,
            );
        }
    }
    // Source ranges must start inside the source.
    let check_start = |problems: &mut Problems, json: String, user_path: &str, start: f64| {
        if let Some(d) = sources.get(user_path).and_then(|s| s.info.duration) {
            if start >= d {
                problems.push(
                    json,
                    format!("{start} seconds is past the end of {user_path} ({d:.3} s)"),
                    format!("0..{d:.3} seconds"),
                );
            }
        }
    };
    for (i, s) in t.scenes.iter().enumerate() {
        if let Visual::Video {
            path, source_start, ..
        } = &s.visual
        {
            check_start(
                &mut problems,
                format!("$.scenes[{i}].visual.source_start"),
                path,
                *source_start,
            );
        }
    }
    for (i, c) in t.audio.voice.iter().enumerate() {
        check_start(
            &mut problems,
            format!("$.audio.voice[{i}].source_start"),
            &c.path,
            c.source_start,
        );
    }
    if problems.0.is_empty() {
        Ok(sources)
    } else {
        Err(MediaError::Invalid(problems.0))
    }
}

fn default_text_size(w: u32, h: u32, fraction: f64) -> u32 {
    (w.min(h) as f64 * fraction).round() as u32
}

fn resolve_style(
    style: &TextStyle,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
    default_size: u32,
    json_path: &str,
) -> Result<ResolvedStyle, MediaError> {
    let font = fonts
        .load(sandbox, style.font.as_deref())
        .map_err(|e| match e {
            MediaError::Input { .. } | MediaError::OutsideSandbox { .. } => {
                MediaError::Invalid(vec![Problem {
                    path: format!("{json_path}.font"),
                    message: e.to_string(),
                    allowed: "a .ttf/.otf file in the input folder or a system font file name"
                        .into(),
                }])
            }
            other => other,
        })?;
    Ok(ResolvedStyle {
        font,
        size: style.size.unwrap_or(default_size),
        style: style.clone(),
    })
}

/// All burned text on the timeline, in global seconds.
fn text_events(
    t: &Timeline,
    layout: &Layout,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
) -> Result<Vec<TextEvent>, MediaError> {
    let (w, h) = t.canvas.size();
    let mut events = Vec::new();
    let overlay_text = |events: &mut Vec<TextEvent>,
                        fonts: &mut FontBook,
                        o: &Overlay,
                        offset: f64,
                        default_end: f64,
                        json: &str|
     -> Result<(), MediaError> {
        if let Overlay::Text {
            text,
            style,
            position,
            start,
            end,
        } = o
        {
            let style = resolve_style(
                style,
                sandbox,
                fonts,
                default_text_size(w, h, 0.05),
                &format!("{json}.style"),
            )?;
            let lines = text::wrap(
                &style.font,
                text,
                style.size as f64,
                text::anchored_width(w, position),
            );
            let end = end
                .map(|e| e + offset)
                .unwrap_or(default_end)
                .min(default_end);
            events.push(TextEvent {
                start: start + offset,
                end,
                lines,
                style,
                place: Placement::At(*position),
            });
        }
        Ok(())
    };
    for (i, scene) in t.scenes.iter().enumerate() {
        let sl = &layout.scenes[i];
        let s0 = layout.seconds(sl.start);
        let s1 = layout.seconds(sl.start + sl.frames);
        if let Visual::Title { text, style, .. } = &scene.visual {
            let style = resolve_style(
                style,
                sandbox,
                fonts,
                default_text_size(w, h, 0.085),
                &format!("$.scenes[{i}].visual.style"),
            )?;
            let lines = text::wrap(&style.font, text, style.size as f64, w as f64 * 0.8);
            events.push(TextEvent {
                start: s0,
                end: s1,
                lines,
                style,
                place: Placement::At(Position::default()),
            });
        }
        for (j, o) in scene.overlays.iter().enumerate() {
            overlay_text(
                &mut events,
                fonts,
                o,
                s0,
                s1,
                &format!("$.scenes[{i}].overlays[{j}]"),
            )?;
        }
    }
    for (j, o) in t.overlays.iter().enumerate() {
        overlay_text(
            &mut events,
            fonts,
            o,
            0.0,
            layout.duration(),
            &format!("$.overlays[{j}]"),
        )?;
    }
    if t.captions.burn && !t.captions.cues.is_empty() {
        let cs = &t.captions.style;
        let default_size = if h > w {
            (w as f64 * 0.065).round() as u32
        } else {
            (h as f64 * 0.05).round() as u32
        };
        let style = resolve_style(
            &cs.text,
            sandbox,
            fonts,
            default_size,
            "$.captions.style.text",
        )?;
        let margins = cs.margins.unwrap_or_else(|| SafeMargins::for_canvas(w, h));
        let max_width = (w - margins.left - margins.right) as f64;
        for cue in &t.captions.cues {
            let lines = text::wrap(&style.font, &cue.text, style.size as f64, max_width);
            for (start, end, lines) in text::split_cue(cue, lines, cs.max_lines as usize) {
                events.push(TextEvent {
                    start,
                    end,
                    lines,
                    style: style.clone(),
                    place: Placement::Caption(cs.position, margins),
                });
            }
        }
    }
    Ok(events)
}

fn image_overlays(t: &Timeline, layout: &Layout) -> Vec<ImageOverlay> {
    let mut out = Vec::new();
    let mut push = |o: &Overlay, offset: f64, default_end: f64| {
        if let Overlay::Image {
            path,
            position,
            width,
            opacity,
            start,
            end,
        } = o
        {
            out.push(ImageOverlay {
                source: path.clone(),
                position: *position,
                width: *width,
                opacity: *opacity,
                start: start + offset,
                end: end
                    .map(|e| e + offset)
                    .unwrap_or(default_end)
                    .min(default_end),
            });
        }
    };
    for (i, scene) in t.scenes.iter().enumerate() {
        let sl = &layout.scenes[i];
        for o in &scene.overlays {
            push(
                o,
                layout.seconds(sl.start),
                layout.seconds(sl.start + sl.frames),
            );
        }
    }
    for o in &t.overlays {
        push(o, 0.0, layout.duration());
    }
    out
}

/// The parts of a segment's command under construction.
struct SegmentBuild<'a> {
    cmd: FfmpegCommand<'a>,
    graph: Vec<String>,
    feeds: Vec<(MotionFeed, Partial)>,
}

/// Adds the chain for scene-local frames `[from, to)` of scene `i`, labelled `[out]`.
fn visual_chain(
    ctx: &Ctx,
    build: &mut SegmentBuild,
    i: usize,
    from: u64,
    to: u64,
    out: &str,
) -> Result<(), MediaError> {
    let SegmentBuild { cmd, graph, feeds } = build;
    let scene = &ctx.timeline.scenes[i];
    let sl = &ctx.layout.scenes[i];
    let f = ctx.frame;
    let n = to - from;
    let fades = graph::scene_fades(sl, from, to);
    let mut still =
        |cmd: &mut FfmpegCommand, graph: &mut Vec<String>, path: &str| -> Result<(), MediaError> {
            if scene.motion.effect == MotionEffect::None {
                let src = ctx.source(path)?;
                let idx = cmd.input(&src.path, src.format, &[])?;
                let fit = graph::fit_still(&format!("{idx}:v"), scene.fit, f.width, f.height, out);
                graph.push(format!("{fit},{}{fades}[{out}]", graph::hold(n, f)));
                return Ok(());
            }
            let (still, still_key) = ctx
                .stills
                .get(&i)
                .ok_or_else(|| MediaError::Internal(format!("scene {i} has no fitted still")))?;
            let fifo = Partial::new(&ctx.sandbox.work.join("tmp"), "motion.yuv");
            nix::unistd::mkfifo(
                &fifo.path,
                nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            )
            .map_err(|e| MediaError::io(&fifo.path, std::io::Error::from(e)))?;
            let motion = serde_json::to_string(&scene.motion)
                .map_err(|e| MediaError::Internal(e.to_string()))?;
            let key = hex::encode(Sha256::digest(
                format!(
                    "{MOTION_ENGINE}|{still_key}|{motion}|{from}|{to}|{}",
                    sl.frames
                )
                .as_bytes(),
            ));
            let idx = cmd.generated_input(&fifo.path, f.width, f.height, f.fps, &key)?;
            graph.push(format!("[{idx}:v]setsar=1{fades}[{out}]"));
            let feed = MotionFeed {
                fifo: fifo.path.clone(),
                still: still.clone(),
                width: f.width as usize,
                height: f.height as usize,
                motion: scene.motion.clone(),
                from,
                to,
                total: sl.frames,
            };
            feeds.push((feed, fifo));
            Ok(())
        };
    match &scene.visual {
        Visual::Image { path }
        | Visual::Title {
            background: Background::Image { path },
            ..
        } => still(cmd, graph, path)?,
        Visual::Color { color }
        | Visual::Title {
            background: Background::Color { color },
            ..
        } => {
            graph.push(format!(
                "{},{}{fades}[{out}]",
                graph::color_frame(color, f),
                graph::hold(n, f)
            ));
        }
        Visual::Gradient {
            from: c0,
            to: c1,
            direction,
        }
        | Visual::Title {
            background:
                Background::Gradient {
                    from: c0,
                    to: c1,
                    direction,
                },
            ..
        } => {
            graph.push(format!(
                "{},{}{fades}[{out}]",
                graph::gradient_frame(c0, c1, *direction, f),
                graph::hold(n, f)
            ));
        }
        Visual::Video {
            path,
            source_start,
            source_end,
            fill,
        } => {
            let src = ctx.source(path)?;
            let clip_end = source_end
                .or(src.info.duration)
                .unwrap_or(*source_start + scene.duration);
            let clip_len = (clip_end - source_start).max(1.0 / f.fps as f64);
            let mut opts: Vec<String> = Vec::new();
            if *source_start > 0.0 {
                opts.extend(["-ss".into(), format!("{source_start:.6}")]);
            }
            opts.extend(["-t".into(), format!("{clip_len:.6}")]);
            let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
            let clip_frames = crate::layout::frames_for(clip_len, f.fps).max(1);
            let timed = format!("fps={},settb=expr=1/{},setpts=N", f.fps, f.fps);
            let fitted =
                |idx: usize, tag: &str| graph::fit_video(&format!("{idx}:v"), scene.fit, f, tag);
            match fill {
                ClipFill::Freeze => {
                    let idx = cmd.input(&src.path, src.format, &opts)?;
                    graph.push(format!(
                        "{},{timed},tpad=stop=-1:stop_mode=clone,trim=start_frame={from}:end_frame={to},setpts=PTS-STARTPTS{fades}[{out}]",
                        fitted(idx, out)
                    ));
                }
                ClipFill::Loop => {
                    let first = from / clip_frames;
                    let last = (to - 1) / clip_frames;
                    let mut labels = String::new();
                    for (j, _) in (first..=last).enumerate() {
                        let idx = cmd.input(&src.path, src.format, &opts)?;
                        let tag = format!("{out}l{j}");
                        graph.push(format!(
                            "{},{timed},tpad=stop=-1:stop_mode=clone,trim=end_frame={clip_frames}[{tag}]",
                            fitted(idx, &tag)
                        ));
                        labels.push_str(&format!("[{tag}]"));
                    }
                    let skip = from - first * clip_frames;
                    graph.push(format!(
                        "{labels}concat=n={}:v=1:a=0,trim=start_frame={skip}:end_frame={},setpts=PTS-STARTPTS{fades}[{out}]",
                        last - first + 1,
                        skip + n
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Fits the still of every moving scene to the canvas once, as raw `yuv420p` (cached by key).
async fn prepare_stills(ctx: &Ctx<'_>) -> Result<HashMap<usize, (PathBuf, String)>, MediaError> {
    let f = ctx.frame;
    let mut stills = HashMap::new();
    for (i, scene) in ctx.timeline.scenes.iter().enumerate() {
        let path = match &scene.visual {
            Visual::Image { path }
            | Visual::Title {
                background: Background::Image { path },
                ..
            } => path,
            _ => continue,
        };
        if scene.motion.effect == MotionEffect::None {
            continue;
        }
        let src = ctx.source(path)?;
        let partial = Partial::new(&ctx.sandbox.work.join("tmp"), "still.yuv");
        let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
        let idx = cmd.input(&src.path, src.format, &[])?;
        let fit = graph::fit_still(&format!("{idx}:v"), scene.fit, f.width, f.height, "still");
        cmd.args(["-filter_complex".to_string(), format!("{fit}[still]")]);
        cmd.args(["-map", "[still]", "-frames:v", "1", "-pix_fmt", "yuv420p"]);
        cmd.output(&partial.path, "rawvideo")?;
        let key = ctx.key(STILL_ENGINE, &cmd)?;
        let target = ctx.sandbox.work.join("stills").join(format!("{key}.yuv"));
        if !target.is_file() {
            cmd.run(&ctx.toolchain, &ctx.ctl, None).await?;
            partial.commit(&target)?;
        }
        stills.insert(i, (target, key));
    }
    Ok(stills)
}

/// Builds the FFmpeg command of one segment, writing to `output`.
fn segment_command<'a>(
    ctx: &'a Ctx,
    seg: &SegmentPlan,
    crf: u8,
    output: &Path,
) -> Result<(FfmpegCommand<'a>, Vec<(MotionFeed, Partial)>), MediaError> {
    let f = ctx.frame;
    let mut build = SegmentBuild {
        cmd: FfmpegCommand::ffmpeg(&ctx.sandbox),
        graph: Vec::new(),
        feeds: Vec::new(),
    };
    match seg.kind {
        SegmentKind::Body { scene, from, to } => {
            visual_chain(ctx, &mut build, scene, from, to, "base")?
        }
        SegmentKind::Transition { from: a, kind } => {
            let sa = &ctx.layout.scenes[a];
            visual_chain(ctx, &mut build, a, sa.frames - seg.frames, sa.frames, "ta")?;
            visual_chain(ctx, &mut build, a + 1, 0, seg.frames, "tb")?;
            let name = kind
                .xfade_name()
                .ok_or_else(|| MediaError::Internal("transition segment without xfade".into()))?;
            build.graph.push(format!(
                "[ta][tb]xfade=transition={name}:duration={:.6}:offset=0[base]",
                seg.frames as f64 / f.fps as f64
            ));
        }
    }
    let SegmentBuild {
        mut cmd,
        mut graph,
        feeds,
    } = build;
    let g0 = seg.start as f64 / f.fps as f64;
    let g1 = (seg.start + seg.frames) as f64 / f.fps as f64;
    let mut current = "base".to_string();
    for (k, o) in ctx
        .images
        .iter()
        .filter(|o| o.start < g1 && o.end > g0)
        .enumerate()
    {
        let src = ctx.source(&o.source)?;
        let idx = cmd.input(&src.path, src.format, &[])?;
        let width = o
            .width
            .map(|w| (w & !1).max(2).to_string())
            .unwrap_or_else(|| "trunc(iw/2)*2".into());
        let p = o.position;
        let (col, row) = p.anchor.grid();
        let x = match col {
            0 => p.margin_x.to_string(),
            1 => "(main_w-overlay_w)/2".into(),
            _ => format!("main_w-overlay_w-{}", p.margin_x),
        };
        let y = match row {
            0 => p.margin_y.to_string(),
            1 => "(main_h-overlay_h)/2".into(),
            _ => format!("main_h-overlay_h-{}", p.margin_y),
        };
        let (s, e) = (o.start.max(g0) - g0, o.end.min(g1) - g0);
        graph.push(format!(
            "[{idx}:v]format=rgba,scale={width}:-2:flags=lanczos,colorchannelmixer=aa={:.4},scale=out_color_matrix=bt709:out_range=tv,format=yuva420p[ov{k}]",
            o.opacity
        ));
        graph.push(format!("[{current}][ov{k}]overlay=x={x}:y={y}:enable='between(t,{s:.6},{e:.6})':format=yuv420[img{k}]"));
        current = format!("img{k}");
    }
    let events: Vec<TextEvent> = ctx
        .text
        .iter()
        .filter(|e| e.start < g1 && e.end > g0)
        .map(|e| TextEvent {
            start: e.start.max(g0) - g0,
            end: e.end.min(g1) - g0,
            ..e.clone()
        })
        .collect();
    let mut tail = String::new();
    if !events.is_empty() {
        let script = text::ass_script(f.width, f.height, &events);
        let name = hex::encode(&Sha256::digest(script.as_bytes())[..16]);
        let path = ctx.sandbox.work.join("ass").join(format!("{name}.ass"));
        if !path.exists() {
            crate::write_atomic(&path, script.as_bytes())?;
        }
        let rel = cmd.filter_path(&path)?;
        let fonts = cmd.filter_path(&ctx.sandbox.work.join("fonts"))?;
        tail.push_str(&format!(",ass=filename={rel}:fontsdir={fonts}"));
    }
    graph.push(format!(
        "[{current}]format=yuv420p{tail},tpad=stop=-1:stop_mode=clone[vout]"
    ));
    cmd.args(["-filter_complex".to_string(), graph.join(";")]);
    cmd.args(["-map", "[vout]", "-an", "-c:v", ctx.encoder.ffmpeg_name()]);
    match ctx.encoder {
        VideoEncoder::Libx264 => {
            cmd.args(["-preset", ctx.timeline.output.preset.as_str()]);
            cmd.args(["-crf".to_string(), crf.to_string()]);
        }
        VideoEncoder::H264Nvenc => {
            // NVENC's presets are p1 (fastest) .. p7; p5 is NVIDIA's quality default.
            cmd.args(["-preset", "p5", "-rc", "vbr", "-b:v", "0"]);
            cmd.args(["-cq".to_string(), crf.to_string()]);
        }
    }
    cmd.args(["-profile:v", "high", "-pix_fmt", "yuv420p"]);
    cmd.args([
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-color_range",
        "tv",
    ]);
    if ctx.timeline.output.threads > 0 {
        cmd.args([
            "-threads".to_string(),
            ctx.timeline.output.threads.to_string(),
        ]);
    }
    cmd.args([
        "-r".to_string(),
        f.fps.to_string(),
        "-frames:v".to_string(),
        seg.frames.to_string(),
    ]);
    cmd.args(["-fflags", "+bitexact", "-flags:v", "+bitexact"]);
    cmd.output(output, "mp4")?;
    Ok((cmd, feeds))
}

/// Encodes (or finds in the cache) every segment at `crf`.
async fn render_segments(
    ctx: &Ctx<'_>,
    options: &RenderOptions,
    crf: u8,
) -> Result<Vec<SegmentReport>, MediaError> {
    let seg_dir = ctx.sandbox.work.join("segments");
    let mut planned = Vec::new();
    for seg in &ctx.layout.segments {
        let partial = Partial::new(&ctx.sandbox.work.join("tmp"), "segment.mp4");
        let (cmd, feeds) = segment_command(ctx, seg, crf, &partial.path)?;
        let key = ctx.key(SEGMENT_ENGINE, &cmd)?;
        let target = seg_dir.join(format!("{key}.mp4"));
        let cached = target.is_file();
        planned.push(PlannedSegment {
            seg,
            cmd,
            feeds,
            key,
            target,
            partial,
            cached,
        });
    }
    let total: u64 = planned
        .iter()
        .filter(|p| !p.cached)
        .map(|p| p.seg.frames)
        .sum();
    let done = Arc::new(AtomicU64::new(0));
    emit(options, Stage::Segments, 0, total);
    // Collected first: a lazy `map` adapter held across an await makes the render future
    // lose `Send` generality (it could no longer be `tokio::spawn`ed).
    let jobs: Vec<_> = planned
        .into_iter()
        .map(|job| encode_segment(ctx, options, job, done.clone(), total))
        .collect();
    stream::iter(jobs)
        .buffered(options.jobs.max(1))
        .try_collect::<Vec<_>>()
        .await
}

/// A segment with its command, motion feeds, cache key, cache path, temporary output and cache
/// status.
struct PlannedSegment<'a> {
    seg: &'a SegmentPlan,
    cmd: FfmpegCommand<'a>,
    feeds: Vec<(MotionFeed, Partial)>,
    key: String,
    target: PathBuf,
    partial: Partial,
    cached: bool,
}

async fn encode_segment(
    ctx: &Ctx<'_>,
    options: &RenderOptions,
    job: PlannedSegment<'_>,
    done: Arc<AtomicU64>,
    total: u64,
) -> Result<SegmentReport, MediaError> {
    let PlannedSegment {
        seg,
        cmd,
        feeds,
        key,
        target,
        partial,
        cached,
    } = job;
    let scenes = match seg.kind {
        SegmentKind::Body { scene, .. } => vec![scene],
        SegmentKind::Transition { from, .. } => vec![from, from + 1],
    };
    let mut report = SegmentReport {
        index: seg.index,
        kind: if matches!(seg.kind, SegmentKind::Body { .. }) {
            "scene"
        } else {
            "transition"
        },
        scenes,
        start_frame: seg.start,
        frames: seg.frames,
        key: key.clone(),
        cached,
        encode_s: 0.0,
    };
    if cached {
        return Ok(report);
    }
    let t0 = Instant::now();
    let last = AtomicU64::new(0);
    let on_frame = |n: u64| {
        let delta = n.saturating_sub(last.swap(n, Ordering::Relaxed));
        let sum = done.fetch_add(delta, Ordering::Relaxed) + delta;
        emit(options, Stage::Segments, sum, total);
    };
    // FFmpeg reads the motion FIFOs while Studio writes them; when FFmpeg exits the feeds are
    // dropped (and their FIFOs removed with the `Partial` guards).
    let run = cmd.run(&ctx.toolchain, &ctx.ctl, Some(&on_frame));
    let feeding =
        futures_util::future::try_join_all(feeds.iter().map(|(feed, _)| feed.clone().run()));
    tokio::pin!(run, feeding);
    tokio::select! {
        r = &mut run => { r?; }
        w = &mut feeding => {
            w?;
            run.await?;
        }
    }
    drop(feeds);
    let delta = seg.frames.saturating_sub(last.load(Ordering::Relaxed));
    emit(
        options,
        Stage::Segments,
        done.fetch_add(delta, Ordering::Relaxed) + delta,
        total,
    );
    partial.commit(&target)?;
    report.encode_s = t0.elapsed().as_secs_f64();
    tracing::debug!(segment = seg.index, key = %key, "segment encoded");
    Ok(report)
}

/// Joins the segments and muxes the audio into a partial `final.mp4` in the output folder.
async fn join(
    ctx: &Ctx<'_>,
    segments: &[SegmentReport],
    audio: &Path,
) -> Result<Partial, MediaError> {
    let seg_dir = ctx.sandbox.work.join("segments");
    let mut list = String::from("ffconcat version 1.0\n");
    for s in segments {
        // The exact duration: without it the demuxer offsets each file by its container
        // duration, which the B-frame edit list perturbs by a few milliseconds.
        list.push_str(&format!(
            "file '{}.mp4'\nduration {:.9}\n",
            s.key,
            s.frames as f64 / ctx.frame.fps as f64
        ));
    }
    let list_name = hex::encode(&Sha256::digest(list.as_bytes())[..16]);
    let list_path = seg_dir.join(format!("join-{list_name}.ffconcat"));
    crate::write_atomic(&list_path, list.as_bytes())?;
    let out = Partial::new(&ctx.sandbox.output, "final.mp4");
    let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
    cmd.concat_input(&list_path)?;
    cmd.input(audio, SourceFormat::Mp4, &[])?;
    cmd.args([
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        "-fflags",
        "+bitexact",
    ]);
    // An MP4 timescale that is a multiple of the frame rate keeps every frame's duration exact.
    cmd.args([
        "-video_track_timescale".to_string(),
        (ctx.frame.fps * 1000).to_string(),
    ]);
    cmd.output(&out.path, "mp4")?;
    cmd.run(&ctx.toolchain, &ctx.ctl, None).await?;
    Ok(out)
}

/// Extracts the thumbnail frame from the partial video.
async fn thumbnail(ctx: &Ctx<'_>, video: &Path) -> Result<Partial, MediaError> {
    let spec = &ctx.timeline.output.thumbnail;
    let sl = &ctx.layout.scenes[spec.scene];
    let local = spec
        .at
        .map(|a| crate::layout::frames_for(a, ctx.frame.fps))
        .unwrap_or(sl.frames / 2)
        .min(sl.frames.saturating_sub(1));
    let t = ctx.layout.seconds(sl.start + local);
    let out = Partial::new(&ctx.sandbox.output, "thumbnail.jpg");
    let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
    // Input seeking decodes from the keyframe before `t`, not from the start of the video.
    let seek = format!("{t:.6}");
    cmd.input(video, SourceFormat::Mp4, &["-ss", &seek])?;
    cmd.args(["-vf", "scale=out_range=pc,format=yuvj420p"]);
    cmd.args(["-frames:v", "1", "-an", "-c:v", "mjpeg", "-q:v", "2"]);
    cmd.output(&out.path, "mjpeg")?;
    cmd.run(&ctx.toolchain, &ctx.ctl, None).await?;
    Ok(out)
}

/// Builds the FFmpeg command that mixes the timeline's audio (before normalisation) into a WAV
/// file at `output`: 48 kHz stereo 32-bit float, exactly the video's length.
fn mix_command<'a>(ctx: &'a Ctx, output: &Path) -> Result<FfmpegCommand<'a>, MediaError> {
    let audio = &ctx.timeline.audio;
    let d = ctx.layout.duration();
    let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
    let mut graph = Vec::new();
    let norm = "aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";
    let clips = |cmd: &mut FfmpegCommand,
                 graph: &mut Vec<String>,
                 list: &[AudioClip],
                 tag: &str|
     -> Result<Option<String>, MediaError> {
        let mut labels = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let src = ctx.source(&c.path)?;
            let idx = cmd.input(&src.path, src.format, &[])?;
            let end = c
                .source_end
                .map(|e| format!(":end={e:.6}"))
                .unwrap_or_default();
            let delay = (c.start * 1000.0).round() as u64;
            graph.push(format!(
                "[{idx}:a]atrim=start={:.6}{end},asetpts=PTS-STARTPTS,{norm},volume={:.3}dB,adelay=delays={delay}:all=1[{tag}{i}]",
                c.source_start, c.gain_db
            ));
            labels.push(format!("[{tag}{i}]"));
        }
        if labels.is_empty() {
            return Ok(None);
        }
        let mixed = if labels.len() == 1 {
            format!("{}anull", labels[0])
        } else {
            format!(
                "{}amix=inputs={}:duration=longest:dropout_transition=0:normalize=0",
                labels.concat(),
                labels.len()
            )
        };
        graph.push(format!(
            "{mixed},apad=whole_dur={d:.6},atrim=end={d:.6}[{tag}]"
        ));
        Ok(Some(tag.to_string()))
    };
    let voice = clips(&mut cmd, &mut graph, &audio.voice, "voice")?;
    let effects = clips(&mut cmd, &mut graph, &audio.effects, "fx")?;
    let mut bus = Vec::new();
    let voice_mix = match (&voice, &audio.music) {
        (Some(v), Some(_)) if audio.ducking.enabled => {
            graph.push(format!("[{v}]asplit=2[vmix][vkey]"));
            "vmix".to_string()
        }
        (Some(v), _) => v.clone(),
        (None, _) => String::new(),
    };
    if !voice_mix.is_empty() {
        bus.push(voice_mix);
    }
    if let Some(m) = &audio.music {
        let src = ctx.source(&m.path)?;
        let opts: &[&str] = if m.r#loop {
            &["-stream_loop", "-1"]
        } else {
            &[]
        };
        let idx = cmd.input(&src.path, src.format, opts)?;
        let fade_out_start = (d - m.fade_out).max(0.0);
        let mut chain = format!("[{idx}:a]{norm},atrim=end={d:.6},apad=whole_dur={d:.6},atrim=end={d:.6},volume={:.3}dB", m.gain_db);
        if m.fade_in > 0.0 {
            chain.push_str(&format!(",afade=t=in:st=0:d={:.6}", m.fade_in));
        }
        if m.fade_out > 0.0 {
            chain.push_str(&format!(
                ",afade=t=out:st={fade_out_start:.6}:d={:.6}",
                m.fade_out
            ));
        }
        let ducking = &audio.ducking;
        if voice.is_some() && ducking.enabled {
            graph.push(format!("{chain}[musicraw]"));
            graph.push(format!(
                "[musicraw][vkey]sidechaincompress=threshold={:.6}:ratio={:.3}:attack={:.3}:release={:.3}:makeup=1:knee=2[music]",
                graph::db_to_linear(ducking.threshold_db).max(0.000977),
                ducking.ratio,
                ducking.attack_ms,
                ducking.release_ms
            ));
        } else {
            graph.push(format!("{chain}[music]"));
        }
        bus.push("music".into());
    }
    if let Some(fx) = effects {
        bus.push(fx);
    }
    let final_chain = match bus.len() {
        0 => format!("anullsrc=r=48000:cl=stereo,atrim=end={d:.6}"),
        1 => format!("[{}]anull", bus[0]),
        n => format!(
            "{}amix=inputs={n}:duration=first:dropout_transition=0:normalize=0",
            bus.iter().map(|b| format!("[{b}]")).collect::<String>()
        ),
    };
    graph.push(format!(
        "{final_chain},atrim=end={d:.6},asetpts=PTS-STARTPTS[aout]"
    ));
    cmd.args(["-filter_complex".to_string(), graph.join(";")]);
    cmd.args([
        "-map",
        "[aout]",
        "-c:a",
        "pcm_f32le",
        "-ar",
        "48000",
        "-ac",
        "2",
    ]);
    cmd.output(output, "wav")?;
    Ok(cmd)
}

/// Loudness statistics printed by `loudnorm` (`print_format=json`).
#[derive(Debug, Clone, serde::Deserialize)]
struct Loudnorm {
    input_i: String,
    input_tp: String,
    input_lra: String,
    input_thresh: String,
    target_offset: String,
    normalization_type: Option<String>,
}

fn parse_loudnorm(stderr: &str) -> Result<Loudnorm, MediaError> {
    let start = stderr
        .rfind('{')
        .ok_or_else(|| MediaError::Internal("loudnorm printed no statistics".into()))?;
    let end = stderr[start..]
        .find('}')
        .map(|e| start + e + 1)
        .ok_or_else(|| MediaError::Internal("loudnorm statistics cut short".into()))?;
    serde_json::from_str(&stderr[start..end])
        .map_err(|e| MediaError::Internal(format!("loudnorm statistics unreadable: {e}")))
}

/// Mixes and normalises the audio (or finds it in the cache); returns the AAC file.
async fn render_audio(
    ctx: &Ctx<'_>,
    options: &RenderOptions,
) -> Result<(PathBuf, AudioReport), MediaError> {
    let out = &ctx.timeline.output;
    let tmp = ctx.sandbox.work.join("tmp");
    let wav = Partial::new(&tmp, "mix.wav");
    let mix = mix_command(ctx, &wav.path)?;
    let settings = format!(
        "{}|{}|{}",
        out.loudness_lufs, out.true_peak_dbtp, out.audio_bitrate_kbps
    );
    let key = ctx.key(&format!("{AUDIO_ENGINE}|{settings}"), &mix)?;
    let target = ctx.sandbox.work.join("audio").join(format!("{key}.m4a"));
    let report_path = ctx.sandbox.work.join("audio").join(format!("{key}.json"));
    let mut report = AudioReport {
        key: key.clone(),
        cached: false,
        target_lufs: out.loudness_lufs,
        ..Default::default()
    };
    if target.is_file() {
        if let Some(saved) = std::fs::read(&report_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            report.input_lufs = saved["input_lufs"].as_f64();
            report.input_true_peak = saved["input_true_peak"].as_f64();
            report.normalization = saved["normalization"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        report.cached = true;
        return Ok((target, report));
    }
    mix.run(&ctx.toolchain, &ctx.ctl, None).await?;
    emit(options, Stage::Audio, 0, 0);

    // Pass 1: measure (EBU R 128 integrated loudness, true peak, loudness range).
    // The true-peak target sits 0.5 dB under the ceiling: AAC encoding adds overshoot.
    let tp = out.true_peak_dbtp - 0.5;
    let base = format!("loudnorm=I={:.2}:TP={tp:.2}:LRA=20", out.loudness_lufs);
    let mut measure = FfmpegCommand::ffmpeg(&ctx.sandbox);
    measure.loglevel("info");
    measure.input(&wav.path, SourceFormat::Wav, &[])?;
    measure.args(["-af".to_string(), format!("{base}:print_format=json")]);
    measure.null_output();
    let stats = parse_loudnorm(&measure.run(&ctx.toolchain, &ctx.ctl, None).await?.stderr)?;
    let input_i: f64 = stats.input_i.parse().unwrap_or(f64::NEG_INFINITY);
    report.input_lufs = input_i.is_finite().then_some(input_i);
    report.input_true_peak = stats.input_tp.parse().ok().filter(|v: &f64| v.is_finite());

    // Pass 2: apply with the measured values, resample back to 48 kHz, encode AAC.
    let d = ctx.layout.duration();
    let partial = Partial::new(&tmp, "audio.m4a");
    let mut encode = FfmpegCommand::ffmpeg(&ctx.sandbox);
    encode.loglevel("info");
    encode.input(&wav.path, SourceFormat::Wav, &[])?;
    let filter = if input_i.is_finite() && input_i > -70.0 {
        format!(
            "{base}:measured_I={}:measured_TP={}:measured_LRA={}:measured_thresh={}:offset={}:linear=true:print_format=json,aresample=48000,atrim=end={d:.6}",
            stats.input_i, stats.input_tp, stats.input_lra, stats.input_thresh, stats.target_offset
        )
    } else {
        format!("anull,atrim=end={d:.6}")
    };
    encode.args(["-af".to_string(), filter]);
    encode.args([
        "-c:a".to_string(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", out.audio_bitrate_kbps),
        "-ar".into(),
        "48000".into(),
        "-ac".into(),
        "2".into(),
    ]);
    encode.args(["-fflags", "+bitexact", "-flags:a", "+bitexact"]);
    encode.output(&partial.path, "mp4")?;
    let run = encode.run(&ctx.toolchain, &ctx.ctl, None).await?;
    report.normalization = if input_i.is_finite() && input_i > -70.0 {
        parse_loudnorm(&run.stderr)
            .ok()
            .and_then(|s| s.normalization_type)
            .unwrap_or_else(|| "dynamic".into())
            .to_lowercase()
    } else {
        "none".into()
    };
    partial.commit(&target)?;
    let saved = serde_json::json!({
        "input_lufs": report.input_lufs,
        "input_true_peak": report.input_true_peak,
        "normalization": report.normalization,
    });
    crate::write_atomic(&report_path, saved.to_string().as_bytes())?;
    Ok((target, report))
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
    let layout = Layout::compute(timeline);
    let (width, height) = timeline.canvas.size();
    let ctx = Ctx {
        timeline,
        frame: Frame {
            width,
            height,
            fps: layout.fps,
        },
        layout,
        sandbox,
        sources,
        text: Vec::new(),
        images: Vec::new(),
        toolchain: options.toolchain.clone(),
        encoder: options.encoder,
        ffmpeg_version: String::new(),
        hashes: Mutex::new(HashMap::new()),
        ctl,
        stills: HashMap::new(),
    };
    let cmd = mix_command(&ctx, output)?;
    cmd.run(&ctx.toolchain, &ctx.ctl, None).await?;
    Ok(())
}

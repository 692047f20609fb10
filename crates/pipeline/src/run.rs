//! Running the step graph: plan → per scene (speech, visual) → music → timeline → render.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use studio_media::ffmpeg::Toolchain;
use studio_media::sniff::sniff_file;
use studio_media::timeline::AspectPreset;
use studio_media::{MediaError, RenderOptions, RenderReport};
use studio_providers::{
    ChainError, Generated, ImageSource, PlanSource, Providers, ScenePlan, Skipped, Voice,
};
use tokio_util::sync::CancellationToken;

use crate::compose::{self, Assets, SceneAssets};
use crate::requests;
use crate::style::Style;

/// Seconds of espeak-ng speech per letter at 1 word per minute: measured on 33 sentences of
/// *Alice* chapter I (4,213 letters: 330 s at 165 wpm, 309 s at 175 wpm, ±1%).
pub const ESPEAK_SECONDS_PER_LETTER_WPM: f64 = 12.9;

/// The video to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoRequest {
    /// Text (and section) or topic.
    pub source: PlanSource,
    /// Aspect preset.
    pub aspect: AspectPreset,
    /// Frames per second.
    pub fps: u32,
    /// Target length of the whole video, seconds; longer text is summarised. `None` narrates
    /// every sentence.
    pub duration_s: Option<f64>,
    /// Style preset.
    pub style: Style,
    /// Narrator.
    pub voice: Voice,
    /// Silence after each sentence, seconds.
    pub sentence_pause_s: f64,
    /// Music bed.
    pub music: MusicChoice,
    /// Seed for generated pictures and music.
    pub seed: u64,
}

/// Where the music bed comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MusicChoice {
    /// Composed by the music chain for the style's mood.
    Generate,
    /// The user's own track.
    File {
        /// Audio file.
        path: PathBuf,
        /// Credit line; default read from a `<name>.LICENSE.txt` (or `<stem>.LICENSE.txt`)
        /// sidecar when there is one.
        credit: Option<String>,
    },
    /// No music.
    Silent,
}

/// Something the pipeline reports while it runs.
#[derive(Debug, Clone)]
pub enum Event {
    /// A provider step finished.
    Step(StepReport),
    /// The render moved on.
    Render(studio_media::Progress),
}

/// Where a run writes and how it behaves.
#[derive(Clone)]
pub struct RunOptions {
    /// Receives `final.mp4`, `captions.srt`, `captions.vtt`, `thumbnail.jpg`, `plan.json`,
    /// `timeline.json` and `report.json`, only when the whole run succeeds.
    pub output_dir: PathBuf,
    /// Step results, staged media and render segments; keep it to resume or re-render fast.
    pub work_dir: PathBuf,
    /// Scenes whose speech and picture are made at the same time. Default 4.
    pub scene_concurrency: usize,
    /// Segments encoded at the same time. Default 1.
    pub render_jobs: usize,
    /// FFmpeg binaries.
    pub toolchain: Toolchain,
    /// Fires to stop the run; finished steps stay stored.
    pub cancel: CancellationToken,
    /// Receives events.
    pub on_event: Option<Arc<dyn Fn(Event) + Send + Sync>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("output_dir", &self.output_dir)
            .field("work_dir", &self.work_dir)
            .field("scene_concurrency", &self.scene_concurrency)
            .field("render_jobs", &self.render_jobs)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Options writing to `output_dir`, working in `output_dir/.studio`.
    pub fn new(output_dir: impl Into<PathBuf>) -> Self {
        let output_dir = output_dir.into();
        Self {
            work_dir: output_dir.join(".studio"),
            output_dir,
            scene_concurrency: 4,
            render_jobs: 1,
            toolchain: Toolchain::default(),
            cancel: CancellationToken::new(),
            on_event: None,
        }
    }

    /// The provider cache folder inside the work folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.work_dir.join("cache")
    }
}

/// Why a run failed. Finished steps stay stored in the work folder either way.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A command-line value is wrong; `field` names it.
    #[error("{field}: {message}")]
    Input {
        /// The option (`--duration`, `--music`).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The text cannot be planned (empty, unknown section).
    #[error("cannot plan the video: {0}")]
    Plan(String),
    /// `--topic` with no script writer that writes from topics.
    #[error("--topic needs a language model to write the script, and none is configured: the local text planner only plans from given text. Add a script writer that accepts topics to the settings (`[[providers.script]]` in studio.toml, or STUDIO__PROVIDERS__SCRIPT…), or pass --text FILE with the words to narrate")]
    NoLanguageModel,
    /// A provider step failed.
    #[error("{step} failed: {message}")]
    Step {
        /// Step name (`speech for scene 3`).
        step: String,
        /// Why.
        message: String,
    },
    /// The render failed.
    #[error("render failed: {0}")]
    Render(#[from] MediaError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One provider step in the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `plan`, `speech`, `image` or `music`.
    pub step: &'static str,
    /// Scene number (1-based) for per-scene steps; 0 for the end card's moral.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<usize>,
    /// Provider that produced the result.
    pub provider: String,
    /// Its model and version.
    pub model: String,
    /// Cache key.
    pub request_hash: String,
    /// Served from the cache without calling a provider.
    pub cache_hit: bool,
    /// Cost, micro-USD.
    pub cost_micro_usd: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Provider calls made by this run.
    pub attempts: u32,
    /// Providers passed over, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// What came out, in a few words.
    pub detail: String,
}

/// Time spent per stage, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    /// Planning.
    pub plan_s: f64,
    /// Speech, summed over scenes (they run concurrently with pictures).
    pub speech_s: f64,
    /// Pictures, summed over scenes.
    pub visuals_s: f64,
    /// Wall time of the per-scene stage.
    pub scenes_wall_s: f64,
    /// Music.
    pub music_s: f64,
    /// Render.
    pub render_s: f64,
    /// The whole run.
    pub total_s: f64,
}

/// A picture from the user's media folder used in a scene.
#[derive(Debug, Clone, Serialize)]
pub struct MediaUse {
    /// Scene number, 1-based.
    pub scene: usize,
    /// File name in the media folder.
    pub file: String,
    /// Scene terms that matched.
    pub matched: Vec<String>,
}

/// What a run did, written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Video title.
    pub title: String,
    /// Style preset.
    pub style: String,
    /// Aspect preset.
    pub aspect: String,
    /// Length of the video, seconds.
    pub duration_s: f64,
    /// Narration, seconds (all voice clips).
    pub narration_s: f64,
    /// Every provider step, in order.
    pub steps: Vec<StepReport>,
    /// Steps served from the cache.
    pub cache_hits: usize,
    /// Provider calls made by this run.
    pub provider_calls: u64,
    /// Total cost of the results used, micro-USD.
    pub cost_micro_usd: u64,
    /// Pictures from the media folder, by scene.
    pub media_used: Vec<MediaUse>,
    /// Credit lines shown on the end card.
    pub credits: Vec<String>,
    /// Time per stage.
    pub stages: StageTimes,
    /// The render engine's report.
    pub render: RenderReport,
    /// Files written to the output folder.
    pub outputs: Vec<String>,
}

fn step_report<T>(
    step: &'static str,
    scene: Option<usize>,
    g: &Generated<T>,
    detail: String,
) -> StepReport {
    let p = &g.provenance;
    StepReport {
        step,
        scene,
        provider: p.provider.clone(),
        model: p.model.clone(),
        request_hash: p.request_hash.clone(),
        cache_hit: p.cache_hit,
        cost_micro_usd: p.cost_micro_usd,
        seconds: p.seconds,
        attempts: p.attempts,
        skipped: p.skipped.clone(),
        detail,
    }
}

/// Returns a path relative to `work` for `path`, copying it into `work/assets/` by content
/// hash when it lies elsewhere.
fn stage(work: &Path, path: &Path) -> Result<String, PipelineError> {
    if let Ok(rel) = path.strip_prefix(work) {
        return Ok(rel.to_string_lossy().into_owned());
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("bin");
    let name = format!("{}.{ext}", &studio_providers::sha256_hex(&bytes)[..24]);
    let dir = work.join("assets");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let target = dir.join(&name);
    if !target.is_file() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
    }
    Ok(format!("assets/{name}"))
}

/// Reads a credit line for an audio file from a `<name>.LICENSE.txt` or `<stem>.LICENSE.txt`
/// sidecar: "X by Y is licensed under …" plus a Creative Commons licence URL becomes
/// "X by Y, CC BY 3.0 (URL)".
pub fn credit_from_sidecar(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = path.file_stem()?.to_str()?;
    let dir = path.parent()?;
    let text = [format!("{name}.LICENSE.txt"), format!("{stem}.LICENSE.txt")]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let work = first
        .split(" is licensed under")
        .next()
        .unwrap_or(first)
        .trim_end_matches('.')
        .to_string();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("creativecommons.org/licenses/"));
    Some(match url {
        Some(url) => {
            let parts: Vec<&str> = url
                .split("/licenses/")
                .nth(1)
                .unwrap_or("")
                .split('/')
                .filter(|s| !s.is_empty())
                .collect();
            let licence = match parts.as_slice() {
                [kind, version, ..] => format!("CC {} {version}", kind.to_uppercase()),
                [kind] => format!("CC {}", kind.to_uppercase()),
                [] => "Creative Commons".into(),
            };
            format!("{work}, {licence} ({url})")
        }
        None => work,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn chain_error(step: String, e: ChainError) -> PipelineError {
    PipelineError::Step {
        step,
        message: e.to_string(),
    }
}

/// Makes the video: plans, narrates and illustrates every scene (concurrently, up to
/// `options.scene_concurrency`), scores, composes the timeline and renders it, then publishes
/// the outputs into `options.output_dir`.
///
/// Errors: [`PipelineError::Input`] for bad options (checked before any step);
/// [`PipelineError::Plan`] for empty text or an unknown section (the sections found are
/// listed); [`PipelineError::NoLanguageModel`] for a topic without a language model;
/// [`PipelineError::Step`] when a provider chain gives up; [`PipelineError::Render`] from the
/// engine; [`PipelineError::Cancelled`]. On any error nothing is written under the output
/// names and every finished step stays stored for the next run.
pub async fn run(
    request: &VideoRequest,
    providers: &Providers,
    options: &RunOptions,
) -> Result<PipelineReport, PipelineError> {
    tokio::select! {
        r = run_inner(request, providers, options) => r,
        _ = options.cancel.cancelled() => Err(PipelineError::Cancelled),
    }
}

async fn run_inner(
    request: &VideoRequest,
    providers: &Providers,
    options: &RunOptions,
) -> Result<PipelineReport, PipelineError> {
    let started = Instant::now();
    let calls_before = providers.calls();
    let style = &request.style;
    let emit = |e: Event| {
        if let Some(f) = &options.on_event {
            f(e)
        }
    };

    // Checks before any step.
    let target_narration = requests::narration_budget(request)?;
    let work = &options.work_dir;
    std::fs::create_dir_all(work).map_err(io(work))?;
    let work = &work.canonicalize().map_err(io(work))?;
    let music_file = match &request.music {
        MusicChoice::File { path, credit } => {
            let format = sniff_file(path).map_err(|e| PipelineError::Input {
                field: "--music",
                message: format!("{} {e}", path.display()),
            })?;
            if format.is_image() {
                return Err(PipelineError::Input {
                    field: "--music",
                    message: format!("{} is a {format} picture, not audio", path.display()),
                });
            }
            let credit = credit.clone().or_else(|| credit_from_sidecar(path));
            Some((stage(work, path)?, credit))
        }
        _ => None,
    };

    // 1. Plan.
    let t = Instant::now();
    let plan_request = requests::plan_request(request, target_narration);
    let plan = match providers.script.run(&plan_request).await {
        Ok(p) => p,
        Err(ChainError::Invalid { message, .. }) => return Err(PipelineError::Plan(message)),
        Err(ChainError::Exhausted { .. }) if matches!(request.source, PlanSource::Topic { .. }) => {
            return Err(PipelineError::NoLanguageModel)
        }
        Err(e) => return Err(chain_error("planning".into(), e)),
    };
    let mut steps = vec![step_report(
        "plan",
        None,
        &plan,
        format!(
            "{} scenes, {} of {} sentences",
            plan.output.scenes.len(),
            plan.output.sentences_kept,
            plan.output.sentences_total
        ),
    )];
    emit(Event::Step(steps[0].clone()));
    let plan: ScenePlan = plan.output;
    let mut stages = StageTimes {
        plan_s: t.elapsed().as_secs_f64(),
        ..StageTimes::default()
    };

    // 2. Speech and a picture for every scene, concurrently.
    let t = Instant::now();
    let scene_jobs = plan.scenes.iter().enumerate().map(|(i, scene)| {
        let speech_request = requests::speech_request(request, scene.sentences.clone());
        let image_request = requests::image_request(request, &plan, i);
        async move {
            let (speech, image) = tokio::join!(
                providers.speech.run(&speech_request),
                providers.image.run(&image_request)
            );
            let speech =
                speech.map_err(|e| chain_error(format!("speech for scene {}", i + 1), e))?;
            let image =
                image.map_err(|e| chain_error(format!("picture for scene {}", i + 1), e))?;
            Ok::<_, PipelineError>((i, speech, image))
        }
    });
    let results: Vec<_> = stream::iter(scene_jobs)
        .buffered(options.scene_concurrency.max(1))
        .inspect_ok(|(i, speech, image)| {
            emit(Event::Step(step_report(
                "speech",
                Some(i + 1),
                speech,
                String::new(),
            )));
            emit(Event::Step(step_report(
                "image",
                Some(i + 1),
                image,
                String::new(),
            )));
        })
        .try_collect()
        .await?;
    let moral = match &plan.moral {
        Some(m) => {
            let g = providers
                .speech
                .run(&requests::speech_request(request, vec![m.clone()]))
                .await
                .map_err(|e| chain_error("speech for the moral".into(), e))?;
            Some(g)
        }
        None => None,
    };
    stages.scenes_wall_s = t.elapsed().as_secs_f64();

    let mut scene_assets = Vec::new();
    let mut media_used = Vec::new();
    for (i, speech, image) in &results {
        stages.speech_s += speech.provenance.seconds;
        stages.visuals_s += image.provenance.seconds;
        steps.push(step_report(
            "speech",
            Some(i + 1),
            speech,
            format!(
                "{:.2} s, {} sentences",
                speech.output.duration_s,
                speech.output.sentences.len()
            ),
        ));
        let detail = match &image.output.source {
            ImageSource::File { name, matched } => {
                media_used.push(MediaUse {
                    scene: i + 1,
                    file: name.clone(),
                    matched: matched.clone(),
                });
                format!("{name} (matched {})", matched.join(", "))
            }
            ImageSource::Generated => {
                format!("generated {}x{}", image.output.width, image.output.height)
            }
        };
        steps.push(step_report("image", Some(i + 1), image, detail));
        scene_assets.push(SceneAssets {
            speech: speech.output.clone(),
            speech_path: stage(work, &speech.output.audio)?,
            picture_path: stage(work, &image.output.path)?,
            generated: matches!(image.output.source, ImageSource::Generated),
        });
    }
    let moral_assets = match &moral {
        Some(g) => {
            stages.speech_s += g.provenance.seconds;
            let r = step_report(
                "speech",
                Some(0),
                g,
                format!("moral, {:.2} s", g.output.duration_s),
            );
            emit(Event::Step(r.clone()));
            steps.push(r);
            Some((g.output.clone(), stage(work, &g.output.audio)?))
        }
        None => None,
    };

    // 3. Music.
    let t = Instant::now();
    let narration_s: f64 = scene_assets
        .iter()
        .map(|a| a.speech.duration_s)
        .sum::<f64>()
        + moral_assets
            .as_ref()
            .map(|(s, _)| s.duration_s)
            .unwrap_or(0.0);
    let (music_path, music_credit) = match (&request.music, music_file) {
        (MusicChoice::File { .. }, Some((path, credit))) => (Some(path), credit),
        (MusicChoice::Generate, _) => {
            let g = providers
                .music
                .run(&requests::music_request(request, &plan, narration_s))
                .await
                .map_err(|e| chain_error("music".into(), e))?;
            let r = step_report(
                "music",
                None,
                &g,
                format!(
                    "{} at {} bpm, {:.1} s",
                    style.music.mood, g.output.tempo_bpm, g.output.duration_s
                ),
            );
            emit(Event::Step(r.clone()));
            steps.push(r);
            (Some(stage(work, &g.output.path)?), g.output.credit.clone())
        }
        _ => (None, None),
    };
    let images: Vec<_> = results.iter().map(|(_, _, i)| i.output.clone()).collect();
    let credits = requests::credit_lines(&images, music_credit.as_deref());
    stages.music_s = t.elapsed().as_secs_f64();

    // 4. Timeline.
    let assets = Assets {
        scenes: scene_assets,
        moral: moral_assets,
        music_path,
        credits: credits.clone(),
        music_credit,
    };
    let timeline = compose::timeline(
        &plan,
        &assets,
        style,
        compose::Format {
            aspect: request.aspect,
            fps: request.fps,
        },
    );

    // 5. Render into the work folder, then publish.
    let t = Instant::now();
    let staging = work.join("render");
    let mut render_options = RenderOptions::new(work, &staging);
    render_options.cache_dir = work.join("segments");
    render_options.toolchain = options.toolchain.clone();
    render_options.cancel = options.cancel.child_token();
    render_options.jobs = options.render_jobs.max(1);
    if let Some(f) = options.on_event.clone() {
        render_options.progress = Some(Arc::new(move |p| f(Event::Render(p))));
    }
    let render = studio_media::render(&timeline, &render_options).await?;
    stages.render_s = t.elapsed().as_secs_f64();

    let out = &options.output_dir;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut outputs = Vec::new();
    for name in ["final.mp4", "captions.srt", "captions.vtt", "thumbnail.jpg"] {
        let from = staging.join(name);
        if from.is_file() {
            let to = out.join(name);
            std::fs::rename(&from, &to).map_err(io(&to))?;
            outputs.push(name.to_string());
        }
    }
    write_atomic(&out.join("plan.json"), &to_json(&plan))?;
    write_atomic(&out.join("timeline.json"), &to_json(&timeline))?;
    outputs.extend(["plan.json", "timeline.json", "report.json"].map(String::from));

    stages.total_s = started.elapsed().as_secs_f64();
    let report = PipelineReport {
        title: plan.title.clone(),
        style: style.name.clone(),
        aspect: serde_json::to_value(request.aspect)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        duration_s: render.duration_s,
        narration_s,
        cache_hits: steps.iter().filter(|s| s.cache_hit).count(),
        provider_calls: providers.calls() - calls_before,
        cost_micro_usd: steps.iter().map(|s| s.cost_micro_usd).sum(),
        steps,
        media_used,
        credits,
        stages,
        render,
        outputs,
    };
    write_atomic(&out.join("report.json"), &to_json(&report))?;
    Ok(report)
}

/// Pretty JSON with a final newline.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The voice used when none is given: espeak-ng `en-us` at 165 words per minute, pitch 50.
pub fn default_voice() -> Voice {
    Voice {
        name: "en-us".into(),
        rate_wpm: 165,
        pitch: 50,
    }
}

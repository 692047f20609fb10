//! The embedded executor of the step graph ([`crate::graph`]): one process, the steps of a
//! stage concurrently, files in a work folder, the outputs published into an output folder.
//!
//! Order of work: check the request → plan → each later stage below the timeline, its steps
//! `2 × scene_concurrency` at a time → assemble the timeline and link its inputs into the work
//! folder → render there → move the outputs into place and write the plan, timeline and report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use studio_media::ffmpeg::Toolchain;
use studio_media::outputs::OutputKind;
use studio_media::RenderOptions;
use studio_providers::{Providers, ScenePlan};
use tokio_util::sync::CancellationToken;

use crate::error::{io, PipelineError};
use crate::graph::{self, Finished, Graph, Ran, StepInput, StepKey, StepKind};
use crate::report::{MediaUse, PipelineReport, StageTimes, StepReport};
use crate::request::{self, VideoRequest};

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
    /// The step graph to run. Default [`Graph::standard`].
    pub graph: Arc<Graph>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("output_dir", &self.output_dir)
            .field("work_dir", &self.work_dir)
            .field("scene_concurrency", &self.scene_concurrency)
            .field("render_jobs", &self.render_jobs)
            .field("graph", &self.graph)
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
            graph: Arc::new(Graph::standard()),
        }
    }

    /// The provider cache folder inside the work folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.work_dir.join("cache")
    }

    fn emit(&self, event: Event) {
        if let Some(f) = &self.on_event {
            f(event)
        }
    }
}

/// Writes `bytes` to `path` atomically ([`studio_media::fs::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    studio_media::fs::write_atomic(path, bytes).map_err(io(path))
}

/// Puts every input of the timeline at its relative path under `work`: a hard link to the
/// file (a copy where linking fails, as across file systems), replaced atomically.
fn place_inputs(work: &Path, inputs: &BTreeMap<String, PathBuf>) -> Result<(), PipelineError> {
    for (relative, source) in inputs {
        let target = work.join(relative);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = target.with_extension(format!("link-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(source, &tmp).is_err() {
            std::fs::copy(source, &tmp).map_err(io(source))?;
        }
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
    }
    Ok(())
}

/// Makes the video: plans, then runs every later stage of the graph (narration and pictures of
/// every scene concurrently, up to `options.scene_concurrency` scenes), scores, composes the
/// timeline and renders it, then publishes the outputs into `options.output_dir`.
///
/// Errors: [`PipelineError::Input`] for a bad request (checked before any step);
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

/// The steps that ran, in order, for the report.
#[derive(Default)]
struct Log {
    steps: Vec<StepReport>,
    media_used: Vec<MediaUse>,
}

impl Log {
    fn push(&mut self, key: &StepKey, ran: &Ran) {
        self.steps.push(StepReport::new(key, ran));
        self.media_used.extend(MediaUse::of(key, &ran.output));
    }
}

async fn run_inner(
    request: &VideoRequest,
    providers: &Providers,
    options: &RunOptions,
) -> Result<PipelineReport, PipelineError> {
    let started = Instant::now();
    let calls_before = providers.calls();
    request::check(request)?;
    if request.style.pictures.clips && providers.clip.is_empty() {
        return Err(PipelineError::Input {
            field: "style.pictures.clips",
            message: crate::graph::NO_CLIP_PROVIDER.to_owned(),
        });
    }
    let work = &options.work_dir;
    std::fs::create_dir_all(work).map_err(io(work))?;
    let work = &work.canonicalize().map_err(io(work))?;
    let graph = &options.graph;
    let mut log = Log::default();
    let mut stages = StageTimes::default();

    let t = Instant::now();
    let planned = graph.plan(request, providers).await?;
    let key = StepKey::job(StepKind::Plan);
    log.push(&key, &planned);
    options.emit(Event::Step(StepReport::new(&key, &planned)));
    let plan = planned
        .output
        .into_plan()
        .expect("the plan step makes a plan");
    stages.plan_s = t.elapsed().as_secs_f64();

    let done = run_stages(request, &plan, providers, options, &mut log, &mut stages).await?;
    let assembly = graph::assemble(request, &plan, &done)?;
    place_inputs(work, &assembly.inputs)?;

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
    let render = studio_media::render(&assembly.timeline, &render_options).await?;
    stages.render_s = t.elapsed().as_secs_f64();

    let outputs = publish(&options.output_dir, &staging, &plan, &assembly.timeline)?;
    stages.total_s = started.elapsed().as_secs_f64();
    let report = PipelineReport {
        title: plan.full_title(),
        style: request.style.name.clone(),
        aspect: request.aspect.label().to_owned(),
        duration_s: render.duration_s,
        narration_s: assembly.narration_s,
        cache_hits: log.steps.iter().filter(|s| s.cache_hit).count(),
        provider_calls: providers.calls() - calls_before,
        cost_micro_usd: log.steps.iter().map(|s| s.cost_micro_usd).sum(),
        steps: log.steps,
        media_used: log.media_used,
        credits: assembly.credits,
        stages,
        render,
        outputs,
    };
    write_atomic(&options.output_dir.join("report.json"), &to_json(&report))?;
    Ok(report)
}

/// Runs every stage after the plan and below the timeline, in order, the steps of one stage
/// concurrently; returns every step's output.
async fn run_stages(
    request: &VideoRequest,
    plan: &ScenePlan,
    providers: &Providers,
    options: &RunOptions,
    log: &mut Log,
    times: &mut StageTimes,
) -> Result<Vec<Finished>, PipelineError> {
    let graph = &options.graph;
    let timeline = graph.stage(StepKind::Timeline);
    let keys: Vec<StepKey> = graph
        .after_plan(request, plan)
        .into_iter()
        .filter(|k| graph.stage(k.kind) < timeline)
        .collect();
    let mut stages: Vec<u32> = keys.iter().map(|k| graph.stage(k.kind)).collect();
    stages.sort_unstable();
    stages.dedup();
    let mut done: Vec<Finished> = Vec::new();
    for stage in stages {
        let t = Instant::now();
        let prior = &done;
        let batch = keys
            .iter()
            .filter(|k| graph.stage(k.kind) == stage)
            .map(|&key| async move {
                let input = StepInput {
                    request,
                    plan,
                    scene: key.scene,
                    done: prior,
                };
                graph.run(key, input, providers).await.map(|ran| (key, ran))
            });
        let results: Vec<(StepKey, Ran)> = stream::iter(batch)
            .buffered(options.scene_concurrency.max(1) * 2)
            .inspect_ok(|(key, ran)| options.emit(Event::Step(StepReport::new(key, ran))))
            .try_collect()
            .await?;
        for (key, ran) in results {
            let seconds = ran.provenance.as_ref().map_or(0.0, |p| p.seconds);
            match key.kind {
                StepKind::Narration => times.speech_s += seconds,
                StepKind::Picture => times.visuals_s += seconds,
                StepKind::Clip => times.clips_s += seconds,
                _ => {}
            }
            log.push(&key, &ran);
            done.push(Finished {
                key,
                output: ran.output,
            });
        }
        let wall = t.elapsed().as_secs_f64();
        if stage == graph.stage(StepKind::Narration) {
            times.scenes_wall_s = wall;
        } else if stage == graph.stage(StepKind::Music) {
            times.music_s = wall;
        }
    }
    Ok(done)
}

/// Moves the rendered files from `staging` into `out` and writes `plan.json` and
/// `timeline.json`; returns the names written, `report.json` (written last) included.
fn publish(
    out: &Path,
    staging: &Path,
    plan: &ScenePlan,
    timeline: &studio_media::Timeline,
) -> Result<Vec<String>, PipelineError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut outputs = Vec::new();
    let mut rendered: Vec<_> = OutputKind::ALL.to_vec();
    rendered.sort_by_key(|k| *k != OutputKind::Video);
    for kind in rendered {
        let name = kind.file_name();
        let from = staging.join(name);
        if from.is_file() {
            let to = out.join(name);
            std::fs::rename(&from, &to).map_err(io(&to))?;
            outputs.push(name.to_string());
        }
    }
    write_atomic(&out.join("plan.json"), &to_json(plan))?;
    write_atomic(&out.join("timeline.json"), &to_json(timeline))?;
    outputs.extend(["plan.json", "timeline.json", "report.json"].map(String::from));
    Ok(outputs)
}

/// Pretty JSON with a final newline.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).unwrap_or_default();
    v.push(b'\n');
    v
}

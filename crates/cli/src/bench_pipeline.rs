//! `studio bench pipeline`: times `studio render` of a fable end to end and per stage.
//!
//! Runs "The Hare and the Tortoise" (9:16, generated music) twice in a fresh work folder: a cold
//! run where every provider is called, then a warm run where every step and segment comes from
//! the cache. Prints per-stage times, × realtime, and the ratio of the provider stages (plan +
//! speech + music, which gate the render) to the render; the target is under 0.25.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use studio_media::timeline::AspectPreset;
use studio_pipeline::{RunOptions, VideoRequest};
use studio_providers::cache::ResultCache;
use studio_providers::{PlanSource, ProvidersSettings};

/// Options of `studio bench pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// The fable collection.
    #[arg(long, default_value = "examples/texts/aesop-fables-townsend.txt")]
    text: PathBuf,
    /// The fable.
    #[arg(long, default_value = "The Hare and the Tortoise")]
    section: String,
    /// Scratch folder (default: a new temporary folder, removed afterwards).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: PipelineBenchArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.text)
        .with_context(|| format!("reading {}", args.text.display()))?;
    let scratch = match &args.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("studio-bench-pipeline-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let request = VideoRequest {
        aspect: AspectPreset::Portrait,
        ..VideoRequest::new(PlanSource::Text {
            text,
            section: Some(args.section.clone()),
        })
    };
    let options = RunOptions::new(scratch.join("out"));
    let cache = Arc::new(ResultCache::new(options.cache_dir()));
    let providers = ProvidersSettings::default().build(Some(cache))?;
    eprintln!("cold run (every provider called)…");
    let cold = studio_pipeline::run(&request, &providers, &options).await?;
    eprintln!("warm run (everything cached)…");
    let warm = studio_pipeline::run(&request, &providers, &options).await?;
    if args.work.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let s = &cold.stages;
    let video = cold.duration_s;
    let providers_s = s.plan_s + s.speech_s + s.music_s;
    println!(
        "studio bench pipeline: \"{}\", 1080x1920, {video:.2} s of video",
        cold.title
    );
    println!("plan            {:8.3} s", s.plan_s);
    println!("speech          {:8.3} s  (summed over scenes)", s.speech_s);
    println!(
        "visuals         {:8.3} s  (summed over scenes)",
        s.visuals_s
    );
    println!(
        "scenes, wall    {:8.3} s  (speech and visuals concurrently)",
        s.scenes_wall_s
    );
    println!("music           {:8.3} s", s.music_s);
    println!(
        "render          {:8.3} s  ({:.2}x realtime)",
        s.render_s,
        video / s.render_s
    );
    println!(
        "total           {:8.3} s  ({:.2}x realtime)",
        s.total_s,
        video / s.total_s
    );
    println!(
        "plan+speech+music / render {:6.3}    (target < 0.25)",
        providers_s / s.render_s
    );
    println!(
        "warm re-run     {:8.3} s  ({} provider calls, {} of {} steps cached, {} segments rendered)",
        warm.stages.total_s,
        warm.provider_calls,
        warm.cache_hits,
        warm.steps.len(),
        warm.render.segments_rendered
    );
    let figures = serde_json::json!({
        "video_s": video,
        "plan_s": s.plan_s,
        "speech_s": s.speech_s,
        "visuals_s": s.visuals_s,
        "scenes_wall_s": s.scenes_wall_s,
        "music_s": s.music_s,
        "render_s": s.render_s,
        "total_s": s.total_s,
        "realtime_x": video / s.total_s,
        "providers_over_render": providers_s / s.render_s,
        "warm_total_s": warm.stages.total_s,
        "warm_provider_calls": warm.provider_calls,
    });
    println!("{figures}");
    Ok(())
}

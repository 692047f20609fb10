//! `studio render`: text in, finished video out, in one process with local providers.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::Deserialize;
use studio_media::timeline::AspectPreset;
use studio_pipeline::request::{DEFAULT_FPS, DEFAULT_SENTENCE_PAUSE_S};
use studio_pipeline::run::{Event, RunOptions};
use studio_pipeline::{MusicChoice, PipelineError, Style, VideoRequest};
use studio_providers::cache::ResultCache;
use studio_providers::settings::ProviderSpec;
use studio_providers::{PlanSource, ProvidersSettings, Voice};

use crate::progress;

/// Options of `studio render`.
#[derive(Debug, clap::Args)]
pub struct MakeArgs {
    /// Text to narrate: a fable collection, a book, a script (UTF-8).
    #[arg(long, conflicts_with = "topic")]
    pub text: Option<PathBuf>,
    /// Section of the text to use, by title (case-insensitive): a fable's title, `CHAPTER I.`.
    #[arg(long, requires = "text")]
    pub section: Option<String>,
    /// A topic for a language model to write about (needs a script writer that takes topics;
    /// the local planner only plans given text).
    #[arg(long)]
    pub topic: Option<String>,
    /// Who the video is for (with --topic), e.g. "children aged 6 to 9".
    #[arg(long, requires = "topic")]
    pub audience: Option<String>,
    /// Tone of the script (with --topic), e.g. "warm and curious".
    #[arg(long, requires = "topic")]
    pub tone: Option<String>,
    /// Print the expected cost of the run (planning, narration, pictures and clips, by the
    /// price table) and exit without calling any provider.
    #[arg(long)]
    pub estimate: bool,
    /// Print the sections found in --text and exit.
    #[arg(long, requires = "text")]
    pub list_sections: bool,
    /// Aspect ratio: 16:9, 9:16, 1:1 or 4:5.
    #[arg(long, default_value = "16:9")]
    pub aspect: String,
    /// Target length of the video in seconds; longer text is summarised.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Style preset (storybook, bold, documentary) or a path to a style .toml file.
    #[arg(long, default_value = "storybook")]
    pub style: String,
    /// espeak-ng voice (see `espeak-ng --voices`); Piper and vendor voices are chosen in
    /// settings.
    #[arg(long, default_value_t = Voice::default().name)]
    pub voice: String,
    /// Speaking rate, words per minute.
    #[arg(long, default_value_t = Voice::default().rate_wpm)]
    pub rate: u32,
    /// Voice pitch, 0–99.
    #[arg(long, default_value_t = Voice::default().pitch)]
    pub pitch: u32,
    /// Folder of your own pictures, matched to scenes by file name and tags.
    #[arg(long)]
    pub media: Option<PathBuf>,
    /// Your own music track instead of generated music.
    #[arg(long, conflicts_with = "no_music")]
    pub music: Option<PathBuf>,
    /// Credit line for --music (default: read from FILE.LICENSE.txt beside it).
    #[arg(long, requires = "music")]
    pub music_credit: Option<String>,
    /// No music bed.
    #[arg(long)]
    pub no_music: bool,
    /// Set every scene's picture in motion with the clip providers (`[[providers.clip]]` in
    /// --config), as a style's `[pictures] clips = true` does.
    #[arg(long)]
    pub clips: bool,
    /// Seed for generated pictures and music.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Settings file (TOML) with a `[providers]` table; STUDIO__PROVIDERS__… variables override.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Work folder for step results and render segments (default OUTPUT/.studio).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Scenes prepared at the same time.
    #[arg(long, default_value_t = 4)]
    pub scene_jobs: usize,
    /// Segments encoded at the same time.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Settings of the embedded mode.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EmbeddedSettings {
    providers: ProvidersSettings,
}

fn load_settings(file: Option<&PathBuf>) -> anyhow::Result<EmbeddedSettings> {
    let mut builder = config::Config::builder();
    if let Some(f) = file {
        if !f.is_file() {
            bail!("--config: {} does not exist", f.display());
        }
        builder = builder.add_source(config::File::from(f.as_path()));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("STUDIO")
            .prefix_separator("__")
            .separator("__"),
    );
    let config = builder.build().context("reading settings")?;
    let speech_chosen = config.get::<serde_json::Value>("providers.speech").is_ok();
    let mut settings: EmbeddedSettings = config.try_deserialize().context("reading settings")?;
    // With no speech chain chosen, narrate with Piper, the offline neural voice, where
    // scripts/setup.sh installed it, and espeak-ng after it (or alone).
    if !speech_chosen {
        match studio_providers::local::piper::PiperSpeech::detect(None, None) {
            Ok(_) => settings
                .providers
                .speech
                .insert(0, ProviderSpec::new("piper")),
            Err(e) => tracing::info!("narrating with espeak-ng: {e}"),
        }
    }
    Ok(settings)
}

/// Builds the request, settings and options from the command line; every check on the
/// command line happens here, before any step runs.
pub fn prepare(args: &MakeArgs) -> anyhow::Result<(VideoRequest, ProvidersSettings, RunOptions)> {
    let aspect = AspectPreset::parse(&args.aspect).with_context(|| {
        format!(
            "--aspect: \"{}\" is not supported; use 16:9, 9:16, 1:1 or 4:5",
            args.aspect
        )
    })?;
    let source = match (&args.text, &args.topic) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--text: cannot read {}", path.display()))?;
            PlanSource::Text {
                text,
                section: args.section.clone(),
            }
        }
        (None, Some(topic)) if !topic.trim().is_empty() => PlanSource::Topic {
            topic: topic.trim().to_string(),
            audience: args.audience.clone().filter(|a| !a.trim().is_empty()),
            tone: args.tone.clone().filter(|t| !t.trim().is_empty()),
        },
        (None, Some(_)) => bail!("--topic: the topic is empty"),
        _ => bail!("give --text FILE (with --section TITLE to pick a part) or --topic TEXT"),
    };
    let mut style = Style::load(&args.style).context("--style")?;
    style.pictures.clips |= args.clips;
    if !(1..=99).contains(&args.pitch) {
        bail!("--pitch: {} is outside 1..=99", args.pitch);
    }
    if !(80..=450).contains(&args.rate) {
        bail!("--rate: {} words per minute is outside 80..=450", args.rate);
    }
    let music = match (&args.music, args.no_music) {
        (Some(path), _) => {
            if !path.is_file() {
                bail!("--music: {} does not exist", path.display());
            }
            MusicChoice::File {
                path: path.clone(),
                credit: args.music_credit.clone(),
            }
        }
        (None, true) => MusicChoice::Silent,
        (None, false) => MusicChoice::Generate,
    };
    let mut settings = load_settings(args.config.as_ref())?.providers;
    if let Some(dir) = &args.media {
        if !dir.is_dir() {
            bail!("--media: {} is not a folder", dir.display());
        }
        settings.image.insert(
            0,
            ProviderSpec {
                path: Some(dir.clone()),
                ..ProviderSpec::new("media-folder")
            },
        );
    }
    let request = VideoRequest {
        source,
        aspect,
        fps: DEFAULT_FPS,
        duration_s: args.duration,
        style,
        voice: Voice {
            name: args.voice.clone(),
            rate_wpm: args.rate,
            pitch: args.pitch,
        },
        sentence_pause_s: DEFAULT_SENTENCE_PAUSE_S,
        music,
        seed: args.seed,
    };
    let mut options = RunOptions::new(&args.output);
    if let Some(w) = &args.work_dir {
        options.work_dir = w.clone();
    }
    options.scene_concurrency = args.scene_jobs.max(1);
    options.render_jobs = args.jobs.max(1);
    Ok((request, settings, options))
}

/// Says a pipeline error in the command line's words: the request's fields become the flags
/// that set them.
fn in_flags(e: PipelineError) -> anyhow::Error {
    match e {
        PipelineError::Input { field, message } => {
            let flag = match field {
                "duration_s" => "--duration",
                "music" => "--music",
                other => other,
            };
            anyhow::anyhow!("{flag}: {message}")
        }
        PipelineError::NoLanguageModel => anyhow::anyhow!(
            "--topic needs a language model to write the script, and none is configured: the \
             local text planner only plans from given text. Add one to providers.script in \
             --config (kind = \"openai\" or any OpenAI-compatible server; see the README's \
             \"Using AI providers\"), or pass --text FILE with the words to narrate"
        ),
        other => other.into(),
    }
}

/// Runs `studio providers check`: one line per provider; an error when any is not ready.
pub async fn check_providers(config: Option<&PathBuf>) -> anyhow::Result<()> {
    let settings = load_settings(config)?.providers;
    let checked = studio_providers::check::check(&settings).await;
    for c in &checked {
        let key = match &c.key {
            Some((env, true)) => format!("key {env} set"),
            Some((env, false)) => format!("key {env} NOT SET"),
            None => "no key needed".to_owned(),
        };
        let probe = match &c.probe {
            Ok(found) => format!("ok: {found}"),
            Err(why) => format!("FAILED: {why}"),
        };
        println!(
            "{:<10} {:<14} {:<34} {probe}",
            format!("{}[{}]", c.capability, c.index),
            c.kind,
            key
        );
    }
    let failed = checked.iter().filter(|c| !c.ok()).count();
    if failed > 0 {
        bail!("{failed} of {} providers are not ready", checked.len());
    }
    Ok(())
}

/// Runs `studio render`.
pub async fn run(args: MakeArgs) -> anyhow::Result<()> {
    if args.list_sections {
        let path = args.text.as_ref().expect("clap requires --text");
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--text: cannot read {}", path.display()))?;
        for s in studio_providers::local::text::sections(&text) {
            match s.subtitle {
                Some(sub) => println!("{}  ({sub})", s.title),
                None => println!("{}", s.title),
            }
        }
        return Ok(());
    }
    let (request, settings, mut options) = prepare(&args)?;
    let cache = Arc::new(ResultCache::new(options.cache_dir()));
    let providers = settings.build(Some(cache)).context("provider settings")?;
    if args.estimate {
        let estimate = studio_pipeline::estimate(&request, &providers).map_err(in_flags)?;
        for line in &estimate.lines {
            println!(
                "{:<8} {} ({}): {} micro-USD",
                line.capability, line.provider, line.model, line.cost_micro_usd
            );
        }
        println!(
            "narration: about {} characters; music as configured (local providers cost 0)",
            estimate.characters
        );
        println!(
            "estimated total: {} micro-USD (${:.4})",
            estimate.total_micro_usd,
            estimate.total_micro_usd as f64 / 1e6
        );
        return Ok(());
    }
    let reporter = progress::Reporter::new();
    let render_progress = reporter.callback();
    options.on_event = Some(Arc::new(move |e| match e {
        Event::Step(s) => {
            let scene = match s.scene {
                Some(0) => " (moral)".to_string(),
                Some(n) => format!(" {n}"),
                None => String::new(),
            };
            eprintln!(
                "{}{scene}: {}{}",
                s.step,
                s.provider,
                if s.cache_hit { " (cached)" } else { "" }
            );
        }
        Event::Render(p) => render_progress(p),
    }));
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let result = studio_pipeline::run(&request, &providers, &options).await;
    reporter.finish();
    let report = result.map_err(in_flags)?;
    println!(
        "{}: \"{}\", {:.2} s, {} steps ({} from cache), {} provider calls, cost {} micro-USD, {:.1} s",
        options.output_dir.join("final.mp4").display(),
        report.title,
        report.duration_s,
        report.steps.len(),
        report.cache_hits,
        report.provider_calls,
        report.cost_micro_usd,
        report.stages.total_s
    );
    Ok(())
}

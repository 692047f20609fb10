//! `studio`: the command-line front of Studio's engine.
//!
//! - `studio render --text FILE [--section TITLE] -o DIR` makes a narrated video from text;
//! - `studio timeline render TIMELINE.json -o DIR` renders a timeline;
//! - `studio timeline schema` prints the timeline's JSON Schema;
//! - `studio timeline validate TIMELINE.json` lists every problem of a timeline and its inputs;
//! - `studio providers check [--config F]` lists the configured providers, whether each key is
//!   set, and a free live probe of each vendor;
//! - `studio bench render|pipeline` runs a benchmark and prints its figures.

mod bench;
mod bench_pipeline;
mod make;
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use studio_media::{parse_timeline, render, RenderOptions};

#[derive(Debug, Parser)]
#[command(
    name = "studio",
    version,
    about = "Studio: text in, finished video out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a narrated, illustrated, captioned, scored video from text, with local providers.
    Render(Box<make::MakeArgs>),
    /// Work with timeline files.
    #[command(subcommand)]
    Timeline(TimelineCommand),
    /// Work with the configured AI providers.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Measure the engine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum ProvidersCommand {
    /// List each configured provider, whether its API key is set, and a free live probe (the
    /// vendor's model or voice list); exits non-zero when any fails.
    Check {
        /// Settings file (TOML) with a `[providers]` table; STUDIO__PROVIDERS__… variables
        /// override.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TimelineCommand {
    /// Render a timeline into final.mp4, captions.srt/.vtt, thumbnail.jpg and report.json.
    Render(RenderArgs),
    /// Print the timeline JSON Schema.
    Schema,
    /// Check a timeline and its inputs without rendering; lists every problem.
    Validate {
        /// The timeline JSON file.
        timeline: PathBuf,
        /// Folder the timeline's paths are relative to (default: the timeline's folder).
        #[arg(long)]
        input_dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The timeline JSON file.
    timeline: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    output: PathBuf,
    /// Folder the timeline's paths are relative to (default: the timeline's folder).
    #[arg(long)]
    input_dir: Option<PathBuf>,
    /// Segment cache folder (default: OUTPUT/.cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Segments encoded at the same time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Render the reference timeline (60 s, 1080×1920, 8 Ken Burns scenes, crossfades,
    /// captions, voice + ducked music) and compare with a bare libx264 encode.
    Render(bench::BenchArgs),
    /// Make the fable "The Hare and the Tortoise" with local providers, cold then warm, and
    /// print per-stage times and × realtime.
    Pipeline(bench_pipeline::PipelineBenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STUDIO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Timeline(TimelineCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&studio_media::Timeline::json_schema())?
            );
            Ok(())
        }
        Command::Timeline(TimelineCommand::Validate {
            timeline,
            input_dir,
        }) => {
            let t = load(&timeline)?;
            let problems = studio_media::validate::validate(&t);
            if !problems.is_empty() {
                return Err(studio_media::MediaError::Invalid(problems).into());
            }
            let input_dir = input_dir.unwrap_or_else(|| parent(&timeline));
            let scratch =
                std::env::temp_dir().join(format!("studio-validate-{}", std::process::id()));
            let options = RenderOptions {
                cache_dir: scratch.join("cache"),
                ..RenderOptions::new(input_dir, scratch.join("out"))
            };
            let result = studio_media::check(&t, &options).await;
            let _ = std::fs::remove_dir_all(&scratch);
            result.with_context(|| format!("checking {}", timeline.display()))?;
            println!("{}: ok", timeline.display());
            Ok(())
        }
        Command::Timeline(TimelineCommand::Render(args)) => {
            let t = load(&args.timeline)?;
            let mut options = RenderOptions::new(
                args.input_dir.unwrap_or_else(|| parent(&args.timeline)),
                &args.output,
            );
            if let Some(cache) = args.cache_dir {
                options.cache_dir = cache;
            }
            options.timeout = args.timeout.map(Duration::from_secs);
            options.jobs = args.jobs;
            let reporter = progress::Reporter::new();
            options.progress = Some(reporter.callback());
            let cancel = options.cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            });
            let report = render(&t, &options).await;
            reporter.finish();
            let report =
                report.with_context(|| format!("rendering {}", args.timeline.display()))?;
            println!(
                "{}: {} frames ({:.2} s) in {:.1} s; segments rendered {}, cached {}; {} bytes",
                args.output.join("final.mp4").display(),
                report.frames,
                report.duration_s,
                report.wall_s,
                report.segments_rendered,
                report.segments_cached,
                report.bytes
            );
            Ok(())
        }
        Command::Render(args) => make::run(*args).await,
        Command::Providers(ProvidersCommand::Check { config }) => {
            make::check_providers(config.as_ref()).await
        }
        Command::Bench(BenchCommand::Render(args)) => bench::run(args).await,
        Command::Bench(BenchCommand::Pipeline(args)) => bench_pipeline::run(args).await,
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn load(path: &Path) -> anyhow::Result<studio_media::Timeline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading timeline {}", path.display()))?;
    parse_timeline(&text).with_context(|| format!("timeline {}", path.display()))
}

//! `studio bench render`: the render benchmark.
//!
//! Renders a reference timeline built from the photos and recordings in the data folder —
//! 1080×1920, 30 fps, eight Ken Burns scenes joined by 0.5 s crossfades, burned captions, voice
//! plus ducked music, −14 LUFS, x264 `veryfast` CRF 23 with 2 threads — then, in the same run:
//! a bare libx264 encode of as many frames of FFmpeg's `testsrc2` pattern at the same settings,
//! and a re-render after editing one scene. Prints wall times, × realtime, the ratios, and the
//! peak RSS of the largest process (FFmpeg children included, from `getrusage`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use studio_media::ffmpeg::{FfmpegCommand, RunControl, Sandbox, Toolchain};
use studio_media::timeline::*;
use studio_media::{render, RenderOptions};

/// Options of `studio bench render`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Folder with images/ and audio/ (the example media).
    #[arg(long, env = "STUDIO_DATA", default_value = "examples/media")]
    data: PathBuf,
    /// Length of the reference video, seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Scratch folder (default: a new temporary folder, removed afterwards).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Segments encoded at the same time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

const IMAGES: [&str; 4] = [
    "images/astronaut.png",
    "images/chelsea.png",
    "images/coffee.png",
    "images/rocket.jpg",
];
const LINES: [&str; 8] = [
    "A Hare one day ridiculed the short feet and slow pace of the Tortoise.",
    "The Tortoise replied, laughing: Though you be swift as the wind, I will beat you in a race.",
    "The Hare, believing her assertion to be simply impossible, assented to the proposal.",
    "They agreed that the Fox should choose the course and fix the goal.",
    "On the day appointed for the race the two started together.",
    "The Tortoise never for a moment stopped, but went on with a slow but steady pace.",
    "The Hare, lying down by the wayside, fell fast asleep.",
    "Slow but steady wins the race.",
];

/// Builds the reference timeline; paths are relative to the data folder.
pub fn reference_timeline(seconds: f64) -> Timeline {
    let fps = 30;
    let scenes_n = 8u64;
    let overlap = 15u64;
    let total = (seconds * fps as f64).round() as u64 + overlap * (scenes_n - 1);
    let motions = [
        MotionEffect::ZoomIn,
        MotionEffect::PanRight,
        MotionEffect::ZoomOut,
        MotionEffect::PanUp,
        MotionEffect::ZoomIn,
        MotionEffect::PanLeft,
        MotionEffect::ZoomOut,
        MotionEffect::PanDown,
    ];
    let scenes = (0..scenes_n as usize)
        .map(|i| {
            let frames = total / scenes_n + u64::from((i as u64) < total % scenes_n);
            Scene {
                id: Some(format!("scene-{}", i + 1)),
                duration: frames as f64 / fps as f64,
                visual: Visual::Image {
                    path: IMAGES[i % IMAGES.len()].into(),
                },
                motion: Motion::new(motions[i]),
                fit: if i % 2 == 1 {
                    Fit::BlurFill
                } else {
                    Fit::Cover
                },
                overlays: vec![],
                transition: if i + 1 < scenes_n as usize {
                    Transition::new(TransitionKind::Crossfade, 0.5)
                } else {
                    Transition::default()
                },
            }
        })
        .collect();
    let cue_len = seconds / LINES.len() as f64;
    let cues = LINES
        .iter()
        .enumerate()
        .map(|(i, l)| Cue {
            start: i as f64 * cue_len + 0.2,
            end: (i + 1) as f64 * cue_len - 0.2,
            text: (*l).into(),
            word_starts: Vec::new(),
        })
        .collect();
    let voice = (0..)
        .map(|i| 2.0 + 16.0 * i as f64)
        .take_while(|s| *s < seconds - 1.0)
        .map(|s| AudioClip::at("audio/198-209-0000.ogg", s))
        .collect();
    let mut music = MusicBed::new("audio/Kevin_MacLeod_-_Vibe_Ace.ogg");
    music.credit = Some("\"Vibe Ace\" by Kevin MacLeod, CC-BY 3.0".into());
    Timeline {
        version: TIMELINE_VERSION,
        canvas: Canvas::preset(AspectPreset::Portrait, fps),
        scenes,
        overlays: vec![],
        audio: AudioTracks {
            voice,
            music: Some(music),
            effects: vec![],
            ducking: Ducking::default(),
        },
        captions: Captions {
            cues,
            burn: true,
            style: CaptionStyle::default(),
        },
        output: OutputSettings {
            crf: 23,
            preset: EncoderPreset::Veryfast,
            threads: 2,
            ..OutputSettings::default()
        },
    }
}

fn peak_rss_kib() -> u64 {
    let children = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    (children as u64).max(own)
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let data = args.data.canonicalize().with_context(|| {
        format!(
            "data folder {} (set --data or STUDIO_DATA)",
            args.data.display()
        )
    })?;
    let temp;
    let work: PathBuf = match &args.work {
        Some(w) => w.clone(),
        None => {
            temp = std::env::temp_dir().join(format!("studio-bench-{}", std::process::id()));
            temp
        }
    };
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let timeline = reference_timeline(args.seconds);
    std::fs::write(
        work.join("timeline.json"),
        serde_json::to_vec_pretty(&timeline)?,
    )?;
    let options = |out: &str| RenderOptions {
        cache_dir: work.join("cache"),
        jobs: args.jobs,
        ..RenderOptions::new(&data, work.join(out))
    };

    eprintln!(
        "full render of the reference timeline ({} s)…",
        args.seconds
    );
    let t0 = Instant::now();
    let full = render(&timeline, &options("full"))
        .await
        .context("full render")?;
    let full_s = t0.elapsed().as_secs_f64();
    let rss_kib = peak_rss_kib();

    eprintln!("bare libx264 encode of {} frames…", full.frames);
    let bare_s = bare_encode(&work, &data, full.frames).await?;

    eprintln!("re-render after editing scene 4…");
    let mut edited = timeline.clone();
    edited.scenes[3].motion = Motion::new(MotionEffect::PanDown);
    let t1 = Instant::now();
    let re = render(&edited, &options("edited"))
        .await
        .context("re-render")?;
    let re_s = t1.elapsed().as_secs_f64();

    let figures = serde_json::json!({
        "video_seconds": full.duration_s,
        "frames": full.frames,
        "full_render_s": full_s,
        "realtime_factor": full.duration_s / full_s,
        "bare_encode_s": bare_s,
        "full_over_bare": full_s / bare_s,
        "rerender_s": re_s,
        "rerender_over_full": re_s / full_s,
        "rerender_segments_encoded": re.segments_rendered,
        "rerender_segments_cached": re.segments_cached,
        "peak_rss_mib": rss_kib as f64 / 1024.0,
        "bytes": full.bytes,
    });
    println!(
        "full render      {full_s:8.2} s  ({:.2}× realtime, {} frames)",
        full.duration_s / full_s,
        full.frames
    );
    println!("bare x264 encode {bare_s:8.2} s  (testsrc2, veryfast, CRF 23, 2 threads)");
    println!(
        "full / bare      {:8.3}    (target ≤ 1.25)",
        full_s / bare_s
    );
    println!(
        "re-render        {re_s:8.2} s  ({} encoded, {} cached)",
        re.segments_rendered, re.segments_cached
    );
    println!("re-render / full {:8.3}    (target ≤ 0.20)", re_s / full_s);
    println!(
        "peak RSS         {:8.1} MiB (largest process; target ≤ 500 MB)",
        rss_kib as f64 / 1024.0
    );
    println!("{}", serde_json::to_string(&figures)?);
    if args.work.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

/// Encodes `frames` frames of `testsrc2` at the reference settings; returns seconds.
async fn bare_encode(work: &Path, data: &Path, frames: u64) -> anyhow::Result<f64> {
    let sandbox = Sandbox::new(data, &work.join("cache"), &work.join("bare"))?;
    let mut cmd = FfmpegCommand::ffmpeg(&sandbox);
    cmd.args([
        "-filter_complex",
        "testsrc2=s=1080x1920:r=30,format=yuv420p[v]",
        "-map",
        "[v]",
    ]);
    cmd.args(["-frames:v".to_string(), frames.to_string()]);
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-threads",
        "2",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
    ]);
    cmd.output(&work.join("bare/bare.mp4"), "mp4")?;
    let t = Instant::now();
    cmd.run(&Toolchain::default(), &RunControl::default(), None)
        .await?;
    Ok(t.elapsed().as_secs_f64())
}

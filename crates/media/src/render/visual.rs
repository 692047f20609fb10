//! The video chain of a scene: its source (still, moving still, video, colour, gradient,
//! title), fit, motion and overlays as filter-graph text, and the fitted stills that moving
//! scenes stream from.

use std::collections::HashMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::context::*;
use super::{MOTION_ENGINE, STILL_ENGINE};
use crate::error::MediaError;
use crate::ffmpeg::FfmpegCommand;
use crate::graph::{self};
use crate::motion::MotionFeed;
use crate::timeline::*;

/// The parts of a segment's command under construction.
pub(super) struct SegmentBuild<'a> {
    pub(super) cmd: FfmpegCommand<'a>,
    pub(super) graph: Vec<String>,
    pub(super) feeds: Vec<(MotionFeed, StagedFile)>,
}

/// Adds the chain for scene-local frames `[from, to)` of scene `i`, labelled `[out]`.
pub(super) fn visual_chain(
    ctx: &RenderContext,
    build: &mut SegmentBuild,
    i: usize,
    from: u64,
    to: u64,
    out: &str,
) -> Result<(), MediaError> {
    let scene = &ctx.timeline.scenes[i];
    let f = ctx.frame;
    let n = to - from;
    let span = Span {
        scene: i,
        from,
        to,
        out,
        fades: graph::scene_fades(&ctx.layout.scenes[i], from, to),
    };
    let fades = &span.fades;
    match &scene.visual {
        Visual::Image { path }
        | Visual::Title {
            background: Background::Image { path },
            ..
        } => still_chain(ctx, build, &span, path)?,
        Visual::Color { color }
        | Visual::Title {
            background: Background::Color { color },
            ..
        } => {
            build.graph.push(format!(
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
            build.graph.push(format!(
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
        } => video_chain(ctx, build, &span, path, (*source_start, *source_end), *fill)?,
    }
    Ok(())
}

/// Scene-local frames `[from, to)` of one scene, labelled `[out]`, with the scene's fades.
struct Span<'a> {
    scene: usize,
    from: u64,
    to: u64,
    out: &'a str,
    fades: String,
}

/// A still: fitted and held, or (with motion) streamed frame by frame from the fitted still
/// through a FIFO by a [`MotionFeed`].
fn still_chain(
    ctx: &RenderContext,
    build: &mut SegmentBuild,
    span: &Span,
    path: &str,
) -> Result<(), MediaError> {
    let SegmentBuild { cmd, graph, feeds } = build;
    let (i, from, to, out, fades) = (span.scene, span.from, span.to, span.out, &span.fades);
    let scene = &ctx.timeline.scenes[i];
    let sl = &ctx.layout.scenes[i];
    let f = ctx.frame;
    if scene.motion.effect == MotionEffect::None {
        let src = ctx.source(path)?;
        let idx = cmd.input(&src.path, src.format, &[])?;
        let fit = graph::fit_still(&format!("{idx}:v"), scene.fit, f.width, f.height, out);
        graph.push(format!("{fit},{}{fades}[{out}]", graph::hold(to - from, f)));
        return Ok(());
    }
    let (still, still_key) = ctx
        .stills
        .get(&i)
        .ok_or_else(|| MediaError::Internal(format!("scene {i} has no fitted still")))?;
    let fifo = StagedFile::new(&ctx.sandbox.work.join("tmp"), "motion.yuv");
    nix::unistd::mkfifo(
        &fifo.path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(|e| MediaError::io(&fifo.path, std::io::Error::from(e)))?;
    let motion =
        serde_json::to_string(&scene.motion).map_err(|e| MediaError::Internal(e.to_string()))?;
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
}

/// A video clip, trimmed to `[source_start, source_end)`, then frozen on its last frame or
/// looped to fill the scene.
fn video_chain(
    ctx: &RenderContext,
    build: &mut SegmentBuild,
    span: &Span,
    path: &str,
    (source_start, source_end): (f64, Option<f64>),
    fill: ClipFill,
) -> Result<(), MediaError> {
    let SegmentBuild { cmd, graph, .. } = build;
    let (from, to, out, fades) = (span.from, span.to, span.out, &span.fades);
    let scene = &ctx.timeline.scenes[span.scene];
    let f = ctx.frame;
    let n = to - from;
    let src = ctx.source(path)?;
    let clip_end = source_end
        .or(src.info.duration)
        .unwrap_or(source_start + scene.duration);
    let clip_len = (clip_end - source_start).max(1.0 / f.fps as f64);
    let mut opts: Vec<String> = Vec::new();
    if source_start > 0.0 {
        opts.extend(["-ss".into(), format!("{source_start:.6}")]);
    }
    opts.extend(["-t".into(), format!("{clip_len:.6}")]);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let clip_frames = crate::layout::frames_for(clip_len, f.fps).max(1);
    let timed = format!("fps={},settb=expr=1/{},setpts=N", f.fps, f.fps);
    let fitted = |idx: usize, tag: &str| graph::fit_video(&format!("{idx}:v"), scene.fit, f, tag);
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
    Ok(())
}

/// Fits the still of every moving scene to the canvas once, as raw `yuv420p` (cached by key).
pub(super) async fn prepare_stills(
    ctx: &RenderContext<'_>,
) -> Result<HashMap<usize, (PathBuf, String)>, MediaError> {
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
        let partial = StagedFile::new(&ctx.sandbox.work.join("tmp"), "still.yuv");
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

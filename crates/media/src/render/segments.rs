//! Segments: one FFmpeg command per segment of the layout (scene bodies and transitions),
//! cached by content hash, encoded `jobs` at a time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::{context::*, report::*, visual::*};
use super::{emit, RenderOptions, Stage, VideoEncoder, SEGMENT_ENGINE};
use crate::error::MediaError;
use crate::ffmpeg::FfmpegCommand;
use crate::layout::{SegmentKind, SegmentPlan};
use crate::motion::MotionFeed;
use crate::text::{self, TextEvent};

/// Builds the FFmpeg command of one segment, writing to `output`.
pub(super) fn segment_command<'a>(
    ctx: &'a RenderContext,
    seg: &SegmentPlan,
    crf: u8,
    output: &Path,
) -> Result<(FfmpegCommand<'a>, Vec<(MotionFeed, StagedFile)>), MediaError> {
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
    let current = image_overlay_chain(ctx, &mut cmd, &mut graph, (g0, g1))?;
    let events: Vec<TextEvent> = ctx
        .text
        .iter()
        .filter(|e| e.start < g1 && e.end > g0)
        .map(|e| TextEvent {
            start: e.start.max(g0) - g0,
            end: e.end.min(g1) - g0,
            karaoke: e.karaoke.as_ref().map(|k| k.shifted(g0)),
            ..e.clone()
        })
        .collect();
    let mut tail = String::new();
    if !events.is_empty() {
        let script = text::ass_script(f.width, f.height, &events);
        let name = hex::encode(&Sha256::digest(script.as_bytes())[..16]);
        let path = ctx.sandbox.work.join("ass").join(format!("{name}.ass"));
        if !path.exists() {
            crate::fs::write_atomic(&path, script.as_bytes())
                .map_err(|e| MediaError::io(&path, e))?;
        }
        let rel = cmd.filter_path(&path)?;
        let fonts = cmd.filter_path(&ctx.sandbox.work.join("fonts"))?;
        tail.push_str(&format!(",ass=filename={rel}:fontsdir={fonts}"));
    }
    graph.push(format!(
        "[{current}]format=yuv420p{tail},tpad=stop=-1:stop_mode=clone[vout]"
    ));
    cmd.args(["-filter_complex".to_string(), graph.join(";")]);
    encoder_args(ctx, &mut cmd, crf, seg.frames);
    cmd.output(output, "mp4")?;
    Ok((cmd, feeds))
}

/// Adds the timeline's image overlays shown during global seconds `[g0, g1)` on top of
/// `[base]`; returns the label of the result.
fn image_overlay_chain(
    ctx: &RenderContext,
    cmd: &mut FfmpegCommand,
    graph: &mut Vec<String>,
    (g0, g1): (f64, f64),
) -> Result<String, MediaError> {
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
    Ok(current)
}

/// The encoder, rate control, colour and determinism arguments of a segment of `frames` frames
/// at `crf`.
fn encoder_args(ctx: &RenderContext, cmd: &mut FfmpegCommand, crf: u8, frames: u64) {
    let f = ctx.frame;
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
        frames.to_string(),
    ]);
    cmd.args(["-fflags", "+bitexact", "-flags:v", "+bitexact"]);
}

/// Encodes (or finds in the cache) every segment at `crf`.
pub(super) async fn render_segments(
    ctx: &RenderContext<'_>,
    options: &RenderOptions,
    crf: u8,
) -> Result<Vec<SegmentReport>, MediaError> {
    let seg_dir = ctx.sandbox.work.join("segments");
    let mut planned = Vec::new();
    for seg in &ctx.layout.segments {
        let partial = StagedFile::new(&ctx.sandbox.work.join("tmp"), "segment.mp4");
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
pub(super) struct PlannedSegment<'a> {
    pub(super) seg: &'a SegmentPlan,
    pub(super) cmd: FfmpegCommand<'a>,
    pub(super) feeds: Vec<(MotionFeed, StagedFile)>,
    pub(super) key: String,
    pub(super) target: PathBuf,
    pub(super) partial: StagedFile,
    pub(super) cached: bool,
}

pub(super) async fn encode_segment(
    ctx: &RenderContext<'_>,
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
    // dropped (and their FIFOs removed with the `StagedFile` guards).
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

#[cfg(test)]
mod tests {
    use super::super::context::testing::Fixture;
    use super::*;

    const TWO_SCENES: &str = r##"{"version": 1, "canvas": {"preset": "1:1", "fps": 30},
        "scenes": [
          {"duration": 3, "visual": {"kind": "color", "color": "#102030"},
           "transition": {"kind": "crossfade", "duration": 0.5}},
          {"duration": 3, "visual": {"kind": "image", "path": "cat.png"}}],
        "overlays": [{"kind": "image", "path": "logo.png", "width": 101, "opacity": 0.5,
                      "position": {"anchor": "top-right"}, "start": 1, "end": 4}],
        "output": {"threads": 2}}"##;

    fn command(fixture: &Fixture, kind: fn(&SegmentKind) -> bool, crf: u8) -> Vec<String> {
        let ctx = fixture.context();
        let seg = ctx.layout.segments.iter().find(|s| kind(&s.kind)).unwrap();
        let out = ctx.sandbox.work.join("seg.mp4");
        let (cmd, feeds) = segment_command(&ctx, seg, crf, &out).unwrap();
        assert!(feeds.is_empty(), "no motion, no frame feeds");
        cmd.key_args().to_vec()
    }

    fn graph(args: &[String]) -> &str {
        let at = args.iter().position(|a| a == "-filter_complex").unwrap();
        &args[at + 1]
    }

    #[test]
    fn a_transition_segment_crossfades_the_two_scenes() {
        let fixture = Fixture::new(TWO_SCENES);
        let args = command(
            &fixture,
            |k| matches!(k, SegmentKind::Transition { .. }),
            23,
        );
        let g = graph(&args);
        assert!(
            g.contains("[ta][tb]xfade=transition=fade:duration=0.500000:offset=0[base]"),
            "{g}"
        );
        assert!(g.contains("[ta]") && g.contains("[tb]"), "{g}");
        assert!(
            args.windows(2).any(|w| w == ["-frames:v", "15"]),
            "{args:?}"
        );
    }

    #[test]
    fn overlays_show_only_inside_their_window_and_the_encoder_is_deterministic() {
        let fixture = Fixture::new(TWO_SCENES);
        let args = command(
            &fixture,
            |k| matches!(k, SegmentKind::Body { scene: 0, .. }),
            27,
        );
        let g = graph(&args);
        // Width made even, half opacity, anchored top right, from 1 s.
        assert!(
            g.contains("scale=100:-2:flags=lanczos,colorchannelmixer=aa=0.5000"),
            "{g}"
        );
        assert!(g.contains("overlay=x=main_w-overlay_w-"), "{g}");
        assert!(g.contains("enable='between(t,1.000000,"), "{g}");
        for pair in [
            ["-c:v", "libx264"],
            ["-crf", "27"],
            ["-threads", "2"],
            ["-r", "30"],
            ["-fflags", "+bitexact"],
            ["-color_range", "tv"],
        ] {
            assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
        }
    }
}

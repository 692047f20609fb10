//! Joining: the segments concatenated without re-encoding with the audio muxed in, and the
//! thumbnail taken from the result.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{context::*, report::*};
use crate::error::MediaError;
use crate::ffmpeg::FfmpegCommand;
use crate::sniff::SourceFormat;

/// Joins the segments and muxes the audio into a partial `final.mp4` in the output folder.
pub(super) async fn join(
    ctx: &RenderContext<'_>,
    segments: &[SegmentReport],
    audio: &Path,
) -> Result<StagedFile, MediaError> {
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
    crate::fs::write_atomic(&list_path, list.as_bytes())
        .map_err(|e| MediaError::io(&list_path, e))?;
    let out = StagedFile::new(&ctx.sandbox.output, "final.mp4");
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
pub(super) async fn thumbnail(
    ctx: &RenderContext<'_>,
    video: &Path,
) -> Result<StagedFile, MediaError> {
    let spec = &ctx.timeline.output.thumbnail;
    let sl = &ctx.layout.scenes[spec.scene];
    let local = spec
        .at
        .map(|a| crate::layout::frames_for(a, ctx.frame.fps))
        .unwrap_or(sl.frames / 2)
        .min(sl.frames.saturating_sub(1));
    let t = ctx.layout.seconds(sl.start + local);
    let out = StagedFile::new(&ctx.sandbox.output, "thumbnail.jpg");
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

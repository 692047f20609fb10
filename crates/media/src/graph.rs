//! FFmpeg filter-graph fragments for scene visuals, overlays and the audio mix.
//!
//! Every visual chain yields exactly the requested frames at the canvas size, `yuv420p`
//! (BT.709, limited range), square pixels, time base `1/fps`. Still sources are fitted once and
//! repeated (`loop`), so a 10-second photo costs one scale, not 300.
//!
//! Ken Burns motion is not drawn here but in [`crate::motion`], which streams its frames in.

use crate::color::parse_color;
use crate::layout::SceneLayout;
use crate::timeline::{Fit, GradientDirection};

/// Canvas geometry shared by all chains.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// FFmpeg colour literal for `#RRGGBB[AA]`.
pub fn ff_color(color: &str) -> String {
    let (r, g, b, a) = parse_color(color).unwrap_or((0, 0, 0, 255));
    format!("0x{r:02X}{g:02X}{b:02X}{a:02X}")
}

const TO_YUV: &str = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p";

/// Fits an RGB still from `[input]` to `w`×`h` with `fit`, ending in `yuv420p`; returns the
/// chain (without output label).
pub fn fit_still(input: &str, fit: Fit, w: u32, h: u32, tag: &str) -> String {
    match fit {
        Fit::Cover => format!(
            "[{input}]format=rgb24,scale={w}:{h}:force_original_aspect_ratio=increase:flags=lanczos,crop={w}:{h},{TO_YUV}"
        ),
        Fit::Contain => format!(
            "[{input}]format=rgb24,scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=lanczos,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,{TO_YUV}"
        ),
        Fit::BlurFill => {
            let (bw, bh) = ((w / 8).max(2) & !1, (h / 8).max(2) & !1);
            format!(
                "[{input}]format=rgb24,split=2[{tag}bgs][{tag}fgs];\
                 [{tag}bgs]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},gblur=sigma=6,eq=brightness=-0.08,scale={w}:{h}:flags=bicubic[{tag}bg];\
                 [{tag}fgs]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=lanczos[{tag}fg];\
                 [{tag}bg][{tag}fg]overlay=(W-w)/2:(H-h)/2,{TO_YUV}"
            )
        }
    }
}

/// Fits every frame of a video from `[input]`, ending in `yuv420p`.
pub fn fit_video(input: &str, fit: Fit, f: Frame, tag: &str) -> String {
    let (w, h) = (f.width, f.height);
    match fit {
        Fit::Cover => format!(
            "[{input}]scale={w}:{h}:force_original_aspect_ratio=increase:out_color_matrix=bt709:out_range=tv,crop={w}:{h},format=yuv420p"
        ),
        Fit::Contain => format!(
            "[{input}]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:out_color_matrix=bt709:out_range=tv,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,format=yuv420p"
        ),
        Fit::BlurFill => {
            let (bw, bh) = ((w / 8).max(2) & !1, (h / 8).max(2) & !1);
            format!(
                "[{input}]split=2[{tag}bgs][{tag}fgs];\
                 [{tag}bgs]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},gblur=sigma=6,eq=brightness=-0.08,scale={w}:{h}[{tag}bg];\
                 [{tag}fgs]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2[{tag}fg];\
                 [{tag}bg][{tag}fg]overlay=(W-w)/2:(H-h)/2,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
            )
        }
    }
}

/// A solid colour frame in `yuv420p`, one frame long.
pub fn color_frame(color: &str, f: Frame) -> String {
    format!(
        "color=c={}:s={}x{}:r={},format=rgb24,trim=end_frame=1,{TO_YUV}",
        ff_color(color),
        f.width,
        f.height,
        f.fps
    )
}

/// A two-colour linear gradient frame in `yuv420p`, one frame long. The seed is fixed:
/// `gradients` seeds a random generator from the clock otherwise, and renders must be
/// deterministic.
pub fn gradient_frame(from: &str, to: &str, direction: GradientDirection, f: Frame) -> String {
    let (x1, y1) = match direction {
        GradientDirection::Vertical => (0, f.height),
        GradientDirection::Horizontal => (f.width, 0),
        GradientDirection::Diagonal => (f.width, f.height),
    };
    format!(
        "gradients=s={}x{}:r={}:c0={}:c1={}:x0=0:y0=0:x1={x1}:y1={y1}:n=2:speed=0.00001:seed=0,format=rgb24,trim=end_frame=1,{TO_YUV}",
        f.width,
        f.height,
        f.fps,
        ff_color(from),
        ff_color(to)
    )
}

/// Repeats a one-frame chain `frames` times with time base `1/fps`.
///
/// One spare frame is made and trimmed off: `fps` (needed to tag the link's frame rate for
/// `xfade`) drops a stream's last frame when it cannot tell that frame's duration.
pub fn hold(frames: u64, f: Frame) -> String {
    format!("loop=loop={frames}:size=1:start=0,settb=expr=1/{fps},setpts=N,fps={fps},trim=end_frame={frames}", fps = f.fps)
}

/// Fade-to/from-black filters for the scene-local frames `[from, to)` of a scene.
pub fn scene_fades(scene: &SceneLayout, from: u64, to: u64) -> String {
    let mut out = String::new();
    if scene.fade_in > 0 && from < scene.fade_in {
        out.push_str(&format!(",fade=t=in:s=0:n={}", scene.fade_in - from));
    }
    if scene.fade_out > 0 && to == scene.frames {
        let start = scene.frames - scene.fade_out;
        if start >= from {
            out.push_str(&format!(
                ",fade=t=out:s={}:n={}",
                start - from,
                scene.fade_out
            ));
        }
    }
    out
}

/// Converts dBFS to the linear amplitude FFmpeg's compressor thresholds take.
pub fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_land_on_the_right_frames() {
        let s = SceneLayout {
            start: 0,
            frames: 90,
            overlap_in: 0,
            overlap_out: 0,
            fade_in: 15,
            fade_out: 10,
        };
        assert_eq!(
            scene_fades(&s, 0, 90),
            ",fade=t=in:s=0:n=15,fade=t=out:s=80:n=10"
        );
        assert_eq!(ff_color("#10203040"), "0x10203040");
        assert!((db_to_linear(-20.0) - 0.1).abs() < 1e-12);
    }
}

//! Ken Burns motion, drawn by Studio: sub-pixel exact zooms and pans of a still.
//!
//! FFmpeg 5.1 has no cheap sub-pixel warp: `zoompan` crops at whole source pixels (a slow zoom
//! alternates frozen frames with jumps, even on a supersampled source; the
//! `ken_burns_moves_every_frame_without_stalls` test catches it) and `perspective` is exact but
//! cost ~11 ms per 1080×1920 frame on the reference machine (2.8× a bare encode on the benchmark
//! timeline, against 1.7× with the frames drawn here, ~2.5 ms each in a release build). An axis-aligned zoom plus pan is separable, so each output sample is a
//! bilinear blend of four source samples with weights computed once per row and column. The
//! still is fitted to the canvas once by FFmpeg (`yuv420p`, BT.709); frames are computed here in
//! 8-bit fixed point (deterministic) and streamed to FFmpeg as raw video through a FIFO in the
//! work folder.

use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use crate::error::MediaError;
use crate::timeline::{Easing, Motion, MotionEffect};

/// A still in planar `yuv420p`, `width`×`height` luma pixels (both even).
#[derive(Debug, Clone)]
pub struct Still {
    /// Luma width, pixels.
    pub width: usize,
    /// Luma height, pixels.
    pub height: usize,
    /// Y plane, then U, then V.
    pub data: Arc<Vec<u8>>,
}

impl Still {
    /// Reads a raw `yuv420p` frame of `width`×`height` from `path`.
    ///
    /// Errors: [`MediaError::Io`]; [`MediaError::Internal`] when the size is wrong.
    pub fn load(path: &Path, width: usize, height: usize) -> Result<Self, MediaError> {
        let data = std::fs::read(path).map_err(|e| MediaError::io(path, e))?;
        if data.len() != frame_len(width, height) {
            return Err(MediaError::Internal(format!(
                "still {} has {} bytes, expected {}",
                path.display(),
                data.len(),
                frame_len(width, height)
            )));
        }
        Ok(Self {
            width,
            height,
            data: Arc::new(data),
        })
    }

    fn plane(&self, k: usize) -> (&[u8], usize, usize) {
        let (w, h) = (self.width, self.height);
        let luma = w * h;
        let chroma = (w / 2) * (h / 2);
        match k {
            0 => (&self.data[..luma], w, h),
            1 => (&self.data[luma..luma + chroma], w / 2, h / 2),
            _ => (&self.data[luma + chroma..luma + 2 * chroma], w / 2, h / 2),
        }
    }
}

/// Bytes in one `yuv420p` frame.
pub fn frame_len(width: usize, height: usize) -> usize {
    width * height + 2 * (width / 2) * (height / 2)
}

/// Returns the view `(x, y, w, h)` in luma pixels of a `width`×`height` still for scene-local
/// frame `n` of `total`: the rectangle of the still that fills the frame.
pub fn view(motion: &Motion, n: u64, total: u64, width: f64, height: f64) -> (f64, f64, f64, f64) {
    let p = (n as f64 / total.saturating_sub(1).max(1) as f64).clamp(0.0, 1.0);
    let e = match motion.easing {
        Easing::Linear => p,
        Easing::EaseInOut => p * p * (3.0 - 2.0 * p),
    };
    let z = match motion.effect {
        MotionEffect::None => 1.0,
        MotionEffect::ZoomIn => 1.0 + (motion.zoom - 1.0) * e,
        MotionEffect::ZoomOut => motion.zoom - (motion.zoom - 1.0) * e,
        _ => motion.zoom,
    };
    let (vw, vh) = (width / z, height / z);
    let (sx, sy) = (width - vw, height - vh);
    let (x, y) = match motion.effect {
        MotionEffect::PanLeft => (sx * (1.0 - e), sy / 2.0),
        MotionEffect::PanRight => (sx * e, sy / 2.0),
        MotionEffect::PanUp => (sx / 2.0, sy * (1.0 - e)),
        MotionEffect::PanDown => (sx / 2.0, sy * e),
        _ => (sx / 2.0, sy / 2.0),
    };
    (x, y, vw, vh)
}

/// For each of `out` output samples mapping `[start, start + span)` of a `len`-sample source
/// line (sample centres at `i + 0.5`): the first of the two source samples blended (the second
/// is the next one) and the 8-bit weight of the second.
fn taps(start: f64, span: f64, out: usize, len: usize) -> Vec<(u32, u32)> {
    let step = span / out as f64;
    (0..out)
        .map(|i| {
            let s = (start + (i as f64 + 0.5) * step - 0.5).clamp(0.0, (len - 1) as f64);
            let i0 = (s.floor() as usize).min(len.saturating_sub(2));
            let w = ((s - i0 as f64) * 256.0).round().clamp(0.0, 256.0) as u32;
            (i0 as u32, w)
        })
        .collect()
}

/// Draws the frame showing `view` of `still` into `out` (`yuv420p`, the still's size).
///
/// Two separable passes per output row: a vertical blend of two source rows into a 16-bit row
/// (only the columns the view touches), then a horizontal blend per output sample.
pub fn draw(still: &Still, view: (f64, f64, f64, f64), out: &mut Vec<u8>) {
    out.resize(frame_len(still.width, still.height), 0);
    let (vx, vy, vw, vh) = view;
    let mut offset = 0;
    let mut row: Vec<u16> = vec![0; still.width];
    for k in 0..3 {
        let (src, pw, ph) = still.plane(k);
        let s = pw as f64 / still.width as f64;
        let cols = taps(vx * s, vw * s, pw, pw);
        let rows = taps(vy * s, vh * s, ph, ph);
        let first = cols.first().map(|c| c.0 as usize).unwrap_or(0);
        let last = cols.last().map(|c| c.0 as usize + 1).unwrap_or(0);
        let dst = &mut out[offset..offset + pw * ph];
        for (line, &(r0, wy)) in dst.chunks_exact_mut(pw).zip(&rows) {
            let r0 = r0 as usize;
            let a = &src[r0 * pw + first..=r0 * pw + last];
            let b = &src[(r0 + 1) * pw + first..=(r0 + 1) * pw + last];
            let (wy, iy) = (wy as u16, 256 - wy as u16);
            // 255 × 256 fits in 16 bits and 65280 × 256 + 32768 in 32: the wrapping operations
            // never wrap; they only spare debug builds the overflow checks that stop the
            // compiler from vectorising these loops.
            for ((r, &x), &y) in row[first..=last].iter_mut().zip(a).zip(b) {
                *r = (x as u16)
                    .wrapping_mul(iy)
                    .wrapping_add((y as u16).wrapping_mul(wy));
            }
            for (o, &(c0, wx)) in line.iter_mut().zip(&cols) {
                let pair = &row[c0 as usize..c0 as usize + 2];
                let v = (pair[0] as u32)
                    .wrapping_mul(256 - wx)
                    .wrapping_add((pair[1] as u32).wrapping_mul(wx));
                *o = (v.wrapping_add(32768) >> 16) as u8;
            }
        }
        offset += pw * ph;
    }
}

/// What one FIFO carries: frames `[from, to)` of a scene `total` frames long.
#[derive(Debug, Clone)]
pub struct MotionFeed {
    /// The FIFO FFmpeg reads.
    pub fifo: std::path::PathBuf,
    /// The fitted still (raw `yuv420p`).
    pub still: std::path::PathBuf,
    /// Canvas width, pixels.
    pub width: usize,
    /// Canvas height, pixels.
    pub height: usize,
    /// The move.
    pub motion: Motion,
    /// First scene-local frame.
    pub from: u64,
    /// One past the last scene-local frame.
    pub to: u64,
    /// Frames in the scene.
    pub total: u64,
}

impl MotionFeed {
    /// Writes the frames into the FIFO. Opened read-write (Linux), so opening never waits for
    /// FFmpeg; the caller drops this future when FFmpeg exits.
    ///
    /// Errors: [`MediaError::Io`] when the FIFO or still cannot be used.
    pub async fn run(self) -> Result<(), MediaError> {
        let still = Still::load(&self.still, self.width, self.height)?;
        let mut tx = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&self.fifo)
            .map_err(|e| MediaError::io(&self.fifo, e))?;
        let mut buf = Vec::new();
        for n in self.from..self.to {
            let v = view(
                &self.motion,
                n,
                self.total,
                self.width as f64,
                self.height as f64,
            );
            let s = still.clone();
            buf = tokio::task::spawn_blocking(move || {
                draw(&s, v, &mut buf);
                buf
            })
            .await
            .map_err(|e| MediaError::Internal(format!("motion frame task: {e}")))?;
            tx.write_all(&buf)
                .await
                .map_err(|e| MediaError::io(&self.fifo, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Still {
        let mut data = vec![128u8; frame_len(w, h)];
        for y in 0..h {
            for x in 0..w {
                data[y * w + x] = (x * 255 / (w - 1)) as u8;
            }
        }
        Still {
            width: w,
            height: h,
            data: Arc::new(data),
        }
    }

    #[test]
    fn the_identity_view_reproduces_the_still() {
        let still = gradient(64, 32);
        let mut out = Vec::new();
        draw(&still, (0.0, 0.0, 64.0, 32.0), &mut out);
        assert_eq!(&out[..], &still.data[..]);
    }

    #[test]
    fn a_quarter_pixel_pan_moves_a_quarter_of_a_step() {
        let still = gradient(256, 16);
        let mut a = Vec::new();
        let mut b = Vec::new();
        draw(&still, (10.0, 0.0, 128.0, 16.0), &mut a);
        draw(&still, (10.25, 0.0, 128.0, 16.0), &mut b);
        let diff: i32 = a[..256]
            .iter()
            .zip(&b[..256])
            .map(|(x, y)| *y as i32 - *x as i32)
            .sum();
        assert!(diff > 0 && diff < 256, "{diff}");
    }

    #[test]
    fn views_follow_the_moves() {
        let m = Motion::new(MotionEffect::ZoomIn);
        assert_eq!(view(&m, 0, 11, 100.0, 50.0), (0.0, 0.0, 100.0, 50.0));
        let (x, _, w, _) = view(&m, 10, 11, 100.0, 50.0);
        assert!((w - 100.0 / 1.15).abs() < 1e-9 && (x - (100.0 - w) / 2.0).abs() < 1e-9);
        let pan = Motion {
            effect: MotionEffect::PanRight,
            zoom: 1.25,
            easing: Easing::Linear,
        };
        assert_eq!(view(&pan, 0, 11, 100.0, 50.0).0, 0.0);
        assert!((view(&pan, 10, 11, 100.0, 50.0).0 - 20.0).abs() < 1e-9);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore = "prints timing; run with --ignored --nocapture"]
    fn draw_speed_1080x1920() {
        let (w, h) = (1080, 1920);
        let still = Still {
            width: w,
            height: h,
            data: Arc::new((0..frame_len(w, h)).map(|i| (i % 251) as u8).collect()),
        };
        let mut out = Vec::new();
        let t = std::time::Instant::now();
        for n in 0..60 {
            draw(
                &still,
                view(
                    &Motion::new(MotionEffect::ZoomIn),
                    n,
                    60,
                    w as f64,
                    h as f64,
                ),
                &mut out,
            );
        }
        eprintln!(
            "draw: {:.2} ms/frame",
            t.elapsed().as_secs_f64() * 1000.0 / 60.0
        );
    }
}

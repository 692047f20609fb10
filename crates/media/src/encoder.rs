//! The H.264 encoders a render can use ([`VideoEncoder`]) and the self-test that tells whether
//! one can run on this machine.

use serde::Serialize;

use crate::ffmpeg::Toolchain;

/// The H.264 encoder segments are made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoEncoder {
    /// x264 on the CPU: the reference, bit-exact across runs.
    #[default]
    Libx264,
    /// NVIDIA NVENC: needs an NVIDIA GPU and an FFmpeg built with it; check with
    /// [`VideoEncoder::self_test`] before use. Constant-quality VBR at the timeline's CRF as `-cq`.
    H264Nvenc,
}

impl VideoEncoder {
    /// FFmpeg's name for it.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            VideoEncoder::Libx264 => "libx264",
            VideoEncoder::H264Nvenc => "h264_nvenc",
        }
    }

    /// Encodes one second of a 256x256 test pattern to nowhere; `Err` with FFmpeg's last lines
    /// when this encoder cannot run here (no GPU, no driver, FFmpeg built without it).
    pub async fn self_test(self, toolchain: &Toolchain) -> Result<(), String> {
        let output = tokio::process::Command::new(&toolchain.ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
            ])
            .args(["-i", "testsrc2=size=256x256:rate=30:duration=1", "-c:v"])
            .arg(self.ffmpeg_name())
            .args(["-pix_fmt", "yuv420p", "-f", "null", "-"])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("{}: {e}", toolchain.ffmpeg.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            Err(tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
        }
    }
}

//! The audio mix: voice, music (looped, faded, ducked under the voice by sidechain
//! compression) and effects into one track of the video's length, normalised with two-pass
//! `loudnorm` to the timeline's target and encoded to AAC, cached by content hash.

use std::path::{Path, PathBuf};

use super::{context::*, report::*};
use super::{emit, RenderOptions, Stage, AUDIO_ENGINE};
use crate::error::MediaError;
use crate::ffmpeg::FfmpegCommand;
use crate::graph::{self};
use crate::sniff::SourceFormat;
use crate::timeline::*;

/// Every input's resampling to the mix format: 48 kHz stereo float.
const NORM: &str =
    "aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";

/// Adds the clips of one track (`tag`: `voice`, `fx`), each trimmed, gained and delayed to its
/// start, mixed and padded to the video's length as `[{tag}]`; `None` for an empty track.
fn mix_clips(
    ctx: &RenderContext,
    cmd: &mut FfmpegCommand,
    graph: &mut Vec<String>,
    list: &[AudioClip],
    tag: &str,
) -> Result<Option<String>, MediaError> {
    let d = ctx.layout.duration();
    let mut labels = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let src = ctx.source(&c.path)?;
        let idx = cmd.input(&src.path, src.format, &[])?;
        let end = c
            .source_end
            .map(|e| format!(":end={e:.6}"))
            .unwrap_or_default();
        let delay = (c.start * 1000.0).round() as u64;
        graph.push(format!(
            "[{idx}:a]atrim=start={:.6}{end},asetpts=PTS-STARTPTS,{NORM},volume={:.3}dB,adelay=delays={delay}:all=1[{tag}{i}]",
            c.source_start, c.gain_db
        ));
        labels.push(format!("[{tag}{i}]"));
    }
    if labels.is_empty() {
        return Ok(None);
    }
    let mixed = if labels.len() == 1 {
        format!("{}anull", labels[0])
    } else {
        format!(
            "{}amix=inputs={}:duration=longest:dropout_transition=0:normalize=0",
            labels.concat(),
            labels.len()
        )
    };
    graph.push(format!(
        "{mixed},apad=whole_dur={d:.6},atrim=end={d:.6}[{tag}]"
    ));
    Ok(Some(tag.to_string()))
}

/// Builds the FFmpeg command that mixes the timeline's audio (before normalisation) into a WAV
/// file at `output`: 48 kHz stereo 32-bit float, exactly the video's length.
pub(super) fn mix_command<'a>(
    ctx: &'a RenderContext,
    output: &Path,
) -> Result<FfmpegCommand<'a>, MediaError> {
    let audio = &ctx.timeline.audio;
    let d = ctx.layout.duration();
    let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
    let mut graph = Vec::new();
    let voice = mix_clips(ctx, &mut cmd, &mut graph, &audio.voice, "voice")?;
    let effects = mix_clips(ctx, &mut cmd, &mut graph, &audio.effects, "fx")?;
    let mut bus = Vec::new();
    let voice_mix = match (&voice, &audio.music) {
        (Some(v), Some(_)) if audio.ducking.enabled => {
            graph.push(format!("[{v}]asplit=2[vmix][vkey]"));
            "vmix".to_string()
        }
        (Some(v), _) => v.clone(),
        (None, _) => String::new(),
    };
    if !voice_mix.is_empty() {
        bus.push(voice_mix);
    }
    if let Some(m) = &audio.music {
        let src = ctx.source(&m.path)?;
        let opts: &[&str] = if m.r#loop {
            &["-stream_loop", "-1"]
        } else {
            &[]
        };
        let idx = cmd.input(&src.path, src.format, opts)?;
        let fade_out_start = (d - m.fade_out).max(0.0);
        let mut chain = format!("[{idx}:a]{NORM},atrim=end={d:.6},apad=whole_dur={d:.6},atrim=end={d:.6},volume={:.3}dB", m.gain_db);
        if m.fade_in > 0.0 {
            chain.push_str(&format!(",afade=t=in:st=0:d={:.6}", m.fade_in));
        }
        if m.fade_out > 0.0 {
            chain.push_str(&format!(
                ",afade=t=out:st={fade_out_start:.6}:d={:.6}",
                m.fade_out
            ));
        }
        let ducking = &audio.ducking;
        if voice.is_some() && ducking.enabled {
            graph.push(format!("{chain}[musicraw]"));
            graph.push(format!(
                "[musicraw][vkey]sidechaincompress=threshold={:.6}:ratio={:.3}:attack={:.3}:release={:.3}:makeup=1:knee=2[music]",
                graph::db_to_linear(ducking.threshold_db).max(0.000977),
                ducking.ratio,
                ducking.attack_ms,
                ducking.release_ms
            ));
        } else {
            graph.push(format!("{chain}[music]"));
        }
        bus.push("music".into());
    }
    if let Some(fx) = effects {
        bus.push(fx);
    }
    let final_chain = match bus.len() {
        0 => format!("anullsrc=r=48000:cl=stereo,atrim=end={d:.6}"),
        1 => format!("[{}]anull", bus[0]),
        n => format!(
            "{}amix=inputs={n}:duration=first:dropout_transition=0:normalize=0",
            bus.iter().map(|b| format!("[{b}]")).collect::<String>()
        ),
    };
    graph.push(format!(
        "{final_chain},atrim=end={d:.6},asetpts=PTS-STARTPTS[aout]"
    ));
    cmd.args(["-filter_complex".to_string(), graph.join(";")]);
    cmd.args([
        "-map",
        "[aout]",
        "-c:a",
        "pcm_f32le",
        "-ar",
        "48000",
        "-ac",
        "2",
    ]);
    cmd.output(output, "wav")?;
    Ok(cmd)
}

/// Loudness statistics printed by `loudnorm` (`print_format=json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct Loudnorm {
    pub(super) input_i: String,
    pub(super) input_tp: String,
    pub(super) input_lra: String,
    pub(super) input_thresh: String,
    pub(super) target_offset: String,
    pub(super) normalization_type: Option<String>,
}

pub(super) fn parse_loudnorm(stderr: &str) -> Result<Loudnorm, MediaError> {
    let start = stderr
        .rfind('{')
        .ok_or_else(|| MediaError::Internal("loudnorm printed no statistics".into()))?;
    let end = stderr[start..]
        .find('}')
        .map(|e| start + e + 1)
        .ok_or_else(|| MediaError::Internal("loudnorm statistics cut short".into()))?;
    serde_json::from_str(&stderr[start..end])
        .map_err(|e| MediaError::Internal(format!("loudnorm statistics unreadable: {e}")))
}

/// Mixes and normalises the audio (or finds it in the cache); returns the AAC file.
pub(super) async fn render_audio(
    ctx: &RenderContext<'_>,
    options: &RenderOptions,
) -> Result<(PathBuf, AudioReport), MediaError> {
    let out = &ctx.timeline.output;
    let tmp = ctx.sandbox.work.join("tmp");
    let wav = StagedFile::new(&tmp, "mix.wav");
    let mix = mix_command(ctx, &wav.path)?;
    let settings = format!(
        "{}|{}|{}",
        out.loudness_lufs, out.true_peak_dbtp, out.audio_bitrate_kbps
    );
    let key = ctx.key(&format!("{AUDIO_ENGINE}|{settings}"), &mix)?;
    let target = ctx.sandbox.work.join("audio").join(format!("{key}.m4a"));
    let report_path = ctx.sandbox.work.join("audio").join(format!("{key}.json"));
    let mut report = AudioReport {
        key: key.clone(),
        cached: false,
        target_lufs: out.loudness_lufs,
        ..Default::default()
    };
    if target.is_file() {
        if let Some(saved) = std::fs::read(&report_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            report.input_lufs = saved["input_lufs"].as_f64();
            report.input_true_peak = saved["input_true_peak"].as_f64();
            report.normalization = saved["normalization"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        report.cached = true;
        return Ok((target, report));
    }
    mix.run(&ctx.toolchain, &ctx.ctl, None).await?;
    emit(options, Stage::Audio, 0, 0);

    // Pass 1: measure (EBU R 128 integrated loudness, true peak, loudness range).
    // The true-peak target sits 0.5 dB under the ceiling: AAC encoding adds overshoot.
    let tp = out.true_peak_dbtp - 0.5;
    let base = format!("loudnorm=I={:.2}:TP={tp:.2}:LRA=20", out.loudness_lufs);
    let mut measure = FfmpegCommand::ffmpeg(&ctx.sandbox);
    measure.loglevel("info");
    measure.input(&wav.path, SourceFormat::Wav, &[])?;
    measure.args(["-af".to_string(), format!("{base}:print_format=json")]);
    measure.null_output();
    let stats = parse_loudnorm(&measure.run(&ctx.toolchain, &ctx.ctl, None).await?.stderr)?;
    let input_i: f64 = stats.input_i.parse().unwrap_or(f64::NEG_INFINITY);
    report.input_lufs = input_i.is_finite().then_some(input_i);
    report.input_true_peak = stats.input_tp.parse().ok().filter(|v: &f64| v.is_finite());

    // Pass 2: apply with the measured values, resample back to 48 kHz, encode AAC.
    let d = ctx.layout.duration();
    let partial = StagedFile::new(&tmp, "audio.m4a");
    let mut encode = FfmpegCommand::ffmpeg(&ctx.sandbox);
    encode.loglevel("info");
    encode.input(&wav.path, SourceFormat::Wav, &[])?;
    let filter = if input_i.is_finite() && input_i > -70.0 {
        format!(
            "{base}:measured_I={}:measured_TP={}:measured_LRA={}:measured_thresh={}:offset={}:linear=true:print_format=json,aresample=48000,atrim=end={d:.6}",
            stats.input_i, stats.input_tp, stats.input_lra, stats.input_thresh, stats.target_offset
        )
    } else {
        format!("anull,atrim=end={d:.6}")
    };
    encode.args(["-af".to_string(), filter]);
    encode.args([
        "-c:a".to_string(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", out.audio_bitrate_kbps),
        "-ar".into(),
        "48000".into(),
        "-ac".into(),
        "2".into(),
    ]);
    encode.args(["-fflags", "+bitexact", "-flags:a", "+bitexact"]);
    encode.output(&partial.path, "mp4")?;
    let run = encode.run(&ctx.toolchain, &ctx.ctl, None).await?;
    report.normalization = if input_i.is_finite() && input_i > -70.0 {
        parse_loudnorm(&run.stderr)
            .ok()
            .and_then(|s| s.normalization_type)
            .unwrap_or_else(|| "dynamic".into())
            .to_lowercase()
    } else {
        "none".into()
    };
    partial.commit(&target)?;
    let saved = serde_json::json!({
        "input_lufs": report.input_lufs,
        "input_true_peak": report.input_true_peak,
        "normalization": report.normalization,
    });
    crate::fs::write_atomic(&report_path, saved.to_string().as_bytes())
        .map_err(|e| MediaError::io(&report_path, e))?;
    Ok((target, report))
}

#[cfg(test)]
mod tests {
    use super::super::context::testing::Fixture;
    use super::*;

    fn graph_of(json: &str) -> (String, Vec<String>) {
        let fixture = Fixture::new(json);
        let ctx = fixture.context();
        let cmd = mix_command(&ctx, &ctx.sandbox.work.join("mix.wav")).unwrap();
        let args = cmd.key_args().to_vec();
        let at = args.iter().position(|a| a == "-filter_complex").unwrap();
        (args[at + 1].clone(), args)
    }

    const SCENE: &str =
        r##""scenes": [{"duration": 6, "visual": {"kind": "color", "color": "#000000"}}]"##;

    #[test]
    fn music_ducks_under_the_voice_and_loops_to_the_video_length() {
        let (graph, args) = graph_of(&format!(
            r#"{{"version": 1, "canvas": {{"preset": "1:1", "fps": 30}}, {SCENE},
              "audio": {{"voice": [{{"path": "voice.wav", "start": 0.5}}],
                        "music": {{"path": "bed.ogg", "loop": true, "fade_out": 2}}}}}}"#
        ));
        assert!(graph.contains("asplit=2[vmix][vkey]"), "{graph}");
        assert!(
            graph.contains("[musicraw][vkey]sidechaincompress="),
            "{graph}"
        );
        assert!(graph.contains("adelay=delays=500:all=1"), "{graph}");
        assert!(
            graph.contains("afade=t=out:st=4.000000:d=2.000000"),
            "{graph}"
        );
        assert!(
            graph.ends_with(",atrim=end=6.000000,asetpts=PTS-STARTPTS[aout]"),
            "{graph}"
        );
        assert!(
            args.windows(2).any(|w| w == ["-stream_loop", "-1"]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|w| w == ["-c:a", "pcm_f32le"]),
            "{args:?}"
        );
    }

    #[test]
    fn music_alone_is_not_ducked_and_silence_fills_an_empty_mix() {
        let (graph, _) = graph_of(&format!(
            r#"{{"version": 1, "canvas": {{"preset": "1:1", "fps": 30}}, {SCENE},
              "audio": {{"music": {{"path": "bed.ogg"}}}}}}"#
        ));
        assert!(!graph.contains("sidechaincompress"), "{graph}");
        assert!(graph.contains("[music]anull"), "{graph}");
        let (graph, _) = graph_of(&format!(
            r#"{{"version": 1, "canvas": {{"preset": "1:1", "fps": 30}}, {SCENE}}}"#
        ));
        assert!(graph.starts_with("anullsrc=r=48000:cl=stereo"), "{graph}");
    }

    #[test]
    fn loudnorm_statistics_are_read_from_the_end_of_the_log() {
        let stderr = r#"[Parsed_loudnorm_0 @ 0x55] some line { not json
[Parsed_loudnorm_0 @ 0x55]
{
	"input_i" : "-23.41",
	"input_tp" : "-4.02",
	"input_lra" : "5.10",
	"input_thresh" : "-33.80",
	"output_i" : "-14.02",
	"target_offset" : "0.02",
	"normalization_type" : "linear"
}
"#;
        let stats = parse_loudnorm(stderr).unwrap();
        assert_eq!(stats.input_i, "-23.41");
        assert_eq!(stats.input_tp, "-4.02");
        assert_eq!(stats.normalization_type.as_deref(), Some("linear"));
        assert!(parse_loudnorm("no statistics here").is_err());
        assert!(parse_loudnorm("{ \"input_i\": ").is_err());
    }
}

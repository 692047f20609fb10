//! `studio render` end to end on real text (examples/texts, copies of ../shared/data): real
//! espeak-ng, FluidSynth and FFmpeg; results checked with ffprobe/ffmpeg, independently of the
//! pipeline's own report where possible.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use studio_testkit::media::{duration, loudness, probe};
use studio_testkit::texts::{fable as fable_source, letters, srt_text};

const OUTPUT_NAMES: &[&str] = &[
    "final.mp4",
    "captions.srt",
    "captions.vtt",
    "thumbnail.jpg",
    "plan.json",
    "timeline.json",
    "report.json",
];

fn studio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_studio"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn aesop() -> PathBuf {
    repo().join("examples/texts/aesop-fables-townsend.txt")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ffmpeg_stderr(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Mean absolute difference of the middle band (30–65% of the height, clear of headings and
/// captions) between two moments, on a 0–255 grey scale.
fn band_difference(video: &Path, a: f64, b: f64, width: u32, height: u32) -> f64 {
    let grab = |t: f64| -> Vec<u8> {
        let crop = format!(
            "crop={}:{}:0:{},scale=96:48,format=gray",
            width,
            (height as f64 * 0.35) as u32,
            (height as f64 * 0.30) as u32
        );
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-ss", &format!("{t:.3}"), "-i"])
            .arg(video)
            .args(["-frames:v", "1", "-vf", &crop, "-f", "rawvideo", "-"])
            .output()
            .unwrap();
        assert_eq!(out.stdout.len(), 96 * 48, "frame at {t}");
        out.stdout
    };
    let (x, y) = (grab(a), grab(b));
    x.iter()
        .zip(&y)
        .map(|(p, q)| (*p as f64 - *q as f64).abs())
        .sum::<f64>()
        / x.len() as f64
}

/// Scene start times, seconds, as the engine lays them out (overlapping transitions share
/// time with the next scene).
fn scene_spans(timeline: &serde_json::Value) -> Vec<(f64, f64, f64, f64)> {
    let scenes = timeline["scenes"].as_array().unwrap();
    let overlap = |s: &serde_json::Value| {
        let kind = s["transition"]["kind"].as_str().unwrap_or("cut");
        if matches!(kind, "cut" | "fade") {
            0.0
        } else {
            s["transition"]["duration"].as_f64().unwrap()
        }
    };
    let mut start = 0.0;
    let mut out = Vec::new();
    let mut prev_overlap = 0.0;
    for (i, s) in scenes.iter().enumerate() {
        let d = s["duration"].as_f64().unwrap();
        let ov_out = if i + 1 < scenes.len() {
            overlap(s)
        } else {
            0.0
        };
        out.push((start, d, prev_overlap, ov_out));
        start += d - ov_out;
        prev_overlap = ov_out;
    }
    out
}

/// Runs `studio` with `args` applied, asserts success and returns `report.json`.
fn succeed(args: &mut dyn FnMut(&mut Command)) -> serde_json::Value {
    let mut cmd = studio();
    args(&mut cmd);
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = cmd
        .get_args()
        .skip_while(|a| *a != "-o")
        .nth(1)
        .map(PathBuf::from)
        .unwrap();
    json(&out.join("report.json"))
}

fn assert_nothing_published(dir: &Path) {
    for name in OUTPUT_NAMES {
        assert!(!dir.join(name).exists(), "{name} was written");
    }
}

/// The fable in 9:16: interrupted during the render, resumed, then run again.
#[test]
fn fable_renders_resumes_after_a_kill_and_repeats_identically() {
    let out = tempfile::tempdir().unwrap();
    let mut args = |cmd: &mut Command| {
        cmd.arg("render")
            .arg("--text")
            .arg(aesop())
            .args([
                "--section",
                "the hare and the tortoise",
                "--aspect",
                "9:16",
                "-o",
            ])
            .arg(out.path());
    };

    // 1. Kill -9 once the render has encoded some frames.
    let mut cmd = studio();
    args(&mut cmd);
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut steps_done = 0;
    let mut killed = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("plan:")
            || line.starts_with("speech")
            || line.starts_with("image")
            || line.starts_with("music:")
        {
            steps_done += 1;
        }
        let frames: Option<u64> = line
            .strip_prefix("segments: ")
            .and_then(|r| r.split('/').next())
            .and_then(|n| n.parse().ok());
        if frames.is_some_and(|f| f >= 200) {
            child.kill().unwrap();
            killed = true;
            break;
        }
    }
    child.wait().unwrap();
    assert!(killed, "the first run ended before it could be killed");
    // Plan, narration and picture of two scenes at least, the moral, music.
    assert!(steps_done >= 7, "{steps_done} steps before the kill");
    assert_nothing_published(out.path());

    // 2. Resume: every provider step comes from the cache, some segments too.
    let report = succeed(&mut args);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), steps_done);
    assert!(steps.iter().all(|s| s["cache_hit"] == true), "{steps:#?}");
    assert_eq!(report["provider_calls"], 0);
    assert!(report["render"]["segments_cached"].as_u64().unwrap() >= 1);

    // The video.
    let video = out.path().join("final.mp4");
    let info = probe(&video);
    let v = info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1080), Some(1920))
    );
    assert!(info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["codec_type"] == "audio"));

    // Narration is the fable's text, in order (the moral included).
    let said = letters(&srt_text(&out.path().join("captions.srt")));
    assert_eq!(said, letters(&fable_source("The Hare and the Tortoise")));

    // Duration: intro card + the narration of the picture scenes (measured) + end card (which
    // carries the spoken moral), within 0.5 s.
    let timeline = json(&out.path().join("timeline.json"));
    let spans = scene_spans(&timeline);
    let intro = spans[1].0;
    let (end_start, end_card, _, _) = *spans.last().unwrap();
    let narration: f64 = timeline["audio"]["voice"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["start"].as_f64().unwrap() < end_start - 0.01)
        .map(|c| duration(&out.path().join(".studio").join(c["path"].as_str().unwrap())))
        .sum();
    let total = duration(&video);
    assert!(
        (total - (intro + narration + end_card)).abs() <= 0.5,
        "{total} vs {intro} + {narration} + {end_card}"
    );

    // Loudness.
    let (lufs, peak) = loudness(&video);
    assert!((lufs + 14.0).abs() <= 1.0, "{lufs} LUFS");
    assert!(peak <= -0.5, "true peak {peak}");

    // No black stretch longer than 1 s.
    let log = ffmpeg_stderr(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        "blackdetect=d=1.0:pix_th=0.10",
        "-an",
        "-f",
        "null",
        "-",
    ]);
    assert!(!log.contains("black_start"), "{log}");

    // Visible motion in every picture scene (title and end cards may hold still).
    for (i, scene) in timeline["scenes"].as_array().unwrap().iter().enumerate() {
        if scene["visual"]["kind"] != "image" {
            continue;
        }
        let (start, d, ov_in, ov_out) = spans[i];
        let a = start + ov_in + 0.2;
        let b = start + d - ov_out - 0.2;
        let diff = band_difference(&video, a, b, 1080, 1920);
        assert!(diff > 1.0, "scene {i} holds still: {diff}");
    }

    // 3. The same command again: no provider call, identical video.
    let first = std::fs::read(&video).unwrap();
    let report = succeed(&mut args);
    assert_eq!(report["provider_calls"], 0);
    assert_eq!(report["render"]["segments_rendered"], 0);
    assert!(std::fs::read(&video).unwrap() == first, "final.mp4 differs");
}

/// A book chapter summarised to a target length.
#[test]
fn chapter_is_summarised_to_the_target_length_in_order() {
    let out = tempfile::tempdir().unwrap();
    let book = repo().join("examples/texts/alice-in-wonderland.txt");
    let run = studio()
        .arg("render")
        .arg("--text")
        .arg(&book)
        .args([
            "--section",
            "CHAPTER I.",
            "--duration",
            "90",
            "--aspect",
            "1:1",
            "--no-music",
            "-o",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let total = duration(&out.path().join("final.mp4"));
    assert!((80.0..=100.0).contains(&total), "{total} s");

    // The narration is a subset of the chapter's sentences, in their original order.
    let text = std::fs::read_to_string(&book).unwrap();
    let chapter = &text[text.find("CHAPTER I.").unwrap()..text.find("CHAPTER II.").unwrap()];
    let chapter = letters(chapter);
    let plan = json(&out.path().join("plan.json"));
    let sentences: Vec<String> = plan["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["sentences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
        })
        .collect();
    assert!(sentences.len() >= 3);
    let mut at = 0;
    for s in &sentences {
        let found = chapter[at..]
            .find(&letters(s))
            .unwrap_or_else(|| panic!("not in order: {s}"));
        at += found + letters(s).len();
    }
    assert!(plan["sentences_kept"].as_u64() < plan["sentences_total"].as_u64());
    let said = letters(&srt_text(&out.path().join("captions.srt")));
    assert_eq!(said, letters(&sentences.concat()));
}

/// The user's photos and music: a matching photo is used and reported; the track is ducked
/// under the voice and credited on the end card.
#[test]
fn media_folder_and_music_track_are_used_and_credited() {
    let out = tempfile::tempdir().unwrap();
    let run = studio()
        .arg("render")
        .arg("--text")
        .arg(aesop())
        .args([
            "--section",
            "The Cat and the Mice",
            "--aspect",
            "16:9",
            "--style",
            "bold",
            "--media",
        ])
        .arg(repo().join("examples/media/images"))
        .arg("--music")
        .arg(repo().join("examples/media/audio/Kevin_MacLeod_-_Vibe_Ace.ogg"))
        .arg("-o")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = json(&out.path().join("report.json"));
    let used = report["media_used"].as_array().unwrap();
    assert!(
        used.iter().any(|u| u["file"] == "chelsea.png"
            && u["matched"].as_array().unwrap().iter().any(|m| m == "cat")),
        "{used:#?}"
    );
    let timeline = json(&out.path().join("timeline.json"));
    let end = timeline["scenes"].as_array().unwrap().last().unwrap();
    let end_text = end["visual"]["text"].as_str().unwrap();
    assert!(
        end_text.contains("Vibe Ace by Kevin MacLeod, CC BY 3.0"),
        "{end_text}"
    );
    let music = &timeline["audio"]["music"];
    assert!(music["credit"].as_str().unwrap().contains("Kevin MacLeod"));
    assert_ne!(timeline["audio"]["ducking"]["enabled"], false);
    assert!(report["render"]["credits"][0]
        .as_str()
        .unwrap()
        .contains("Kevin MacLeod"));

    // Ducking, measured: in the published mix, the music alone (intro card, before any voice)
    // is louder than the music under the narration once the voice is taken out — checked by
    // comparing the mix's level where the voice pauses between sentences with the intro.
    let video = out.path().join("final.mp4");
    let level = |from: f64, to: f64| -> f64 {
        let log = ffmpeg_stderr(&[
            "-ss",
            &format!("{from:.2}"),
            "-to",
            &format!("{to:.2}"),
            "-i",
            video.to_str().unwrap(),
            "-af",
            "volumedetect",
            "-vn",
            "-f",
            "null",
            "-",
        ]);
        let line = log.lines().find(|l| l.contains("mean_volume:")).unwrap();
        line.split("mean_volume:")
            .nth(1)
            .unwrap()
            .trim()
            .trim_end_matches(" dB")
            .parse()
            .unwrap()
    };
    let intro_music = level(0.8, 2.3);
    // The voice's sentence pauses (0.35 s) sit at the end of each scene's narration.
    let spans = scene_spans(&timeline);
    let (start, d, _, ov_out) = spans[1];
    let pause_end = start + d - ov_out;
    let under_voice = level(pause_end - 0.3, pause_end - 0.05);
    assert!(
        intro_music - under_voice >= 3.0,
        "music alone {intro_music} dB, in a pause under the voice {under_voice} dB"
    );
}

fn fails(args: &[&str], out: &Path) -> String {
    let run = studio()
        .arg("render")
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(!run.status.success(), "{args:?} succeeded");
    assert_nothing_published(out);
    String::from_utf8_lossy(&run.stderr).into_owned()
}

#[test]
fn bad_input_fails_clearly_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = aesop();
    let text = text.to_str().unwrap();

    let e = fails(&["--text", "/no/such/fables.txt"], &out);
    assert!(
        e.contains("--text") && e.contains("/no/such/fables.txt"),
        "{e}"
    );

    let e = fails(
        &["--text", text, "--section", "The Hare and the Turtle"],
        &out,
    );
    assert!(
        e.contains("no section titled \"The Hare and the Turtle\""),
        "{e}"
    );
    assert!(
        e.contains("The Hare and the Tortoise") && e.contains("The Lion And The Mouse"),
        "{e}"
    );

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n   \n\n").unwrap();
    let e = fails(&["--text", empty.to_str().unwrap()], &out);
    assert!(e.contains("the text is empty"), "{e}");

    let e = fails(&["--text", text, "--aspect", "21:9"], &out);
    assert!(
        e.contains("--aspect") && e.contains("21:9") && e.contains("9:16"),
        "{e}"
    );

    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::copy(
        repo().join("examples/media/images/chelsea.png"),
        media.join("cat.png"),
    )
    .unwrap();
    std::fs::write(media.join("hare.png"), "this is not a picture").unwrap();
    let e = fails(&["--text", text, "--media", media.to_str().unwrap()], &out);
    assert!(
        e.contains("hare.png") && e.contains("not a readable picture"),
        "{e}"
    );

    let e = fails(&["--text", text, "--music", "/no/such/track.ogg"], &out);
    assert!(e.contains("--music"), "{e}");

    let e = fails(&["--topic", "the history of tea"], &out);
    assert!(
        e.contains("--topic needs a language model") && e.contains("providers.script"),
        "{e}"
    );

    let e = fails(&["--text", text, "--duration", "6"], &out);
    assert!(e.contains("--duration"), "{e}");
}

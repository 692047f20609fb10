//! `studio render --clips`: pictures drawn by `openai-images` and set in motion by a Replicate
//! image-to-video model, both local fakes (`studio_testkit::openai`, `studio_testkit::replicate`)
//! configured by settings alone (issue 14). The run is killed while the clips are being made and
//! run again: the predictions the first run started are polled, not paid for twice.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use studio_testkit::media::{centre_colour, colour_distance, scene_middles};
use studio_testkit::openai::{self, FakeOpenAi};
use studio_testkit::replicate::{self, clip_colour, FakeReplicate};

const OPENAI_KEY_ENV: &str = "STUDIO_TEST_OPENAI_KEY";
const REPLICATE_KEY_ENV: &str = "STUDIO_TEST_REPLICATE_TOKEN";
/// An image-to-video model that takes a seed.
const MODEL: &str = "wavespeedai/wan-2.1-i2v-480p";

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn config(dir: &Path, openai: &FakeOpenAi, replicate: &FakeReplicate) -> std::path::PathBuf {
    let path = dir.join("studio.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[providers.script]]
kind = "openai"
base_url = "{openai}"
api_key_env = "{OPENAI_KEY_ENV}"

[[providers.speech]]
kind = "espeak-ng"

[[providers.image]]
kind = "openai-images"
base_url = "{openai}"
api_key_env = "{OPENAI_KEY_ENV}"

[[providers.clip]]
kind = "replicate"
base_url = "{replicate}"
api_key_env = "{REPLICATE_KEY_ENV}"
model = "{MODEL}"

[providers.prices."replicate/{MODEL}"]
per_video_second = 90000
"#,
            openai = openai.base_url(),
            replicate = replicate.base_url(),
        ),
    )
    .unwrap();
    path
}

fn studio(cfg: &Path, out: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"));
    cmd.args([
        "render",
        "--topic",
        "how bees make honey",
        "--duration",
        "30",
        "--no-music",
        "--clips",
        "--config",
    ])
    .arg(cfg)
    .arg("-o")
    .arg(out)
    .env(OPENAI_KEY_ENV, openai::KEY)
    .env(REPLICATE_KEY_ENV, replicate::KEY)
    .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn scenes_move_in_the_clips_made_from_their_pictures_and_a_killed_run_pays_once() {
    let openai = FakeOpenAi::start().await;
    let replicate = FakeReplicate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = config(dir.path(), &openai, &replicate);

    // An estimate first: clips priced by the second, nothing called.
    let estimate = studio(&cfg, &out).arg("--estimate").output().await.unwrap();
    let printed = String::from_utf8_lossy(&estimate.stdout).to_string();
    assert!(estimate.status.success(), "{printed}");
    assert!(printed.contains("clip"), "{printed}");
    assert!(printed.contains(MODEL), "{printed}");
    assert_eq!(replicate.creates(), 0);

    // 1. Killed while the clips are being made: the fake holds every prediction.
    replicate.hold(true);
    let mut first = studio(&cfg, &out).spawn().unwrap();
    let started = std::time::Instant::now();
    while replicate.creates() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "no clip prediction started"
        );
        assert!(first.try_wait().unwrap().is_none(), "the run ended early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both predictions are polled: the run waits on them.
    while replicate.polls().await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let started_by_first: Vec<String> = replicate.polls().await.into_keys().collect();
    let polls_before = replicate.polls().await;
    assert!(!out.join("final.mp4").exists());

    // 2. Run again: the started predictions are resumed, the others created once.
    replicate.hold(false);
    let second = studio(&cfg, &out).output().await.unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let plan = json(&out.join("plan.json"));
    let scenes = plan["scenes"].as_array().unwrap().len();
    assert!(scenes >= 3, "{scenes} scenes");
    assert_eq!(
        replicate.creates() as usize,
        scenes,
        "one paid prediction a scene, the killed run's included"
    );
    let polls_after = replicate.polls().await;
    for id in &started_by_first {
        assert!(
            polls_after[id] > polls_before[id],
            "prediction {id} was polled again after the restart"
        );
    }

    // What the model was asked: each scene's own still, the motion prompt, one seed.
    let created = replicate.created().await;
    let uploads: Vec<Vec<u8>> = replicate
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/files")
        .map(|r| studio_testkit::multipart::parts(r)["content"].clone())
        .collect();
    assert_eq!(uploads.len(), scenes, "each still uploaded once");
    let seeds: Vec<&Value> = created.iter().map(|c| &c["input"]["seed"]).collect();
    assert!(seeds[0].is_u64());
    assert!(seeds.iter().all(|s| *s == seeds[0]), "{seeds:?}");
    let motion = "Gentle slow camera movement, soft natural motion, the illustration comes alive. ";
    for c in &created {
        assert_eq!(c["path"], format!("/v1/models/{MODEL}/predictions"));
        assert!(c["input"]["prompt"].as_str().unwrap().starts_with(motion));
    }
    // The pictures keep the characters' descriptions in every prompt.
    let narrator = format!(
        "Narrator is {}",
        plan["characters"][0]["description"].as_str().unwrap()
    );
    let pictures = openai.bodies("/v1/images/generations").await;
    assert_eq!(pictures.len(), scenes);
    assert!(pictures
        .iter()
        .all(|b| b["prompt"].as_str().unwrap().contains(&narrator)));

    // The timeline shows each clip as a video scene; the frames are the clips'.
    let timeline = json(&out.join("timeline.json"));
    let timed = timeline["scenes"].as_array().unwrap();
    let report = json(&out.join("report.json"));
    let clips: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "clip")
        .collect();
    assert_eq!(clips.len(), scenes);
    let middles = scene_middles(&timeline);
    let video = out.join("final.mp4");
    for clip in &clips {
        let n = clip["scene"].as_u64().unwrap() as usize;
        assert_eq!(clip["provider"], "replicate");
        assert_eq!(clip["model"], MODEL);
        assert_eq!(clip["cost_micro_usd"], 450_000, "5 s at $0.09/s");
        // Scene n is timeline scene n (scene 0 is the title card).
        assert_eq!(timed[n]["visual"]["kind"], "video", "{}", timed[n]);
        assert_eq!(timed[n]["visual"]["path"], format!("clips/{}.mp4", n - 1));
        let want = clip_colour(clip["prompt"].as_str().unwrap());
        let got = centre_colour(&video, middles[n], 32);
        let off = colour_distance(want, got);
        assert!(
            off <= 16,
            "scene {n}: the frame shows {got:?}, the clip is {want:?}"
        );
    }
}

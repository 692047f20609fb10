//! `studio render` with stock photos from Pexels (a local fake of its search API,
//! `studio_testkit::stock`), configured by settings alone (issue 14): every scene shows the
//! photo found for its search terms, and the end card credits each photographer as the library
//! asks.

use std::path::{Path, PathBuf};

use serde_json::Value;
use studio_testkit::media::{centre_colour, colour_distance, scene_middles};
use studio_testkit::openai_images::picture_colour;
use studio_testkit::stock::{FakePexels, PEXELS_KEY};

const KEY_ENV: &str = "STUDIO_TEST_PEXELS_KEY";

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn aesop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/texts/aesop-fables-townsend.txt")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scene_shows_the_stock_photo_found_for_it_and_credits_its_photographer() {
    let fake = FakePexels::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("studio.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers.image]]\nkind = \"pexels\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n\n[[providers.image]]\nkind = \"card\"\n",
            fake.base_url()
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args(["render", "--text"])
        .arg(aesop())
        .args([
            "--section",
            "the lion and the mouse",
            "--no-music",
            "--config",
        ])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .env(KEY_ENV, PEXELS_KEY)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan = json(&out.join("plan.json"));
    let report = json(&out.join("report.json"));
    let timeline = json(&out.join("timeline.json"));
    let scenes = plan["scenes"].as_array().unwrap();
    let searches = fake.searches().await;
    assert_eq!(searches.len(), scenes.len(), "one search a scene");
    assert!(searches.iter().all(|s| s["orientation"] == "landscape"));
    let credits: Vec<&str> = report["credits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        credits.contains(&"Picture: Photo by Ana Lima on Pexels"),
        "{credits:?}"
    );
    let middles = scene_middles(&timeline);
    let video = out.join("final.mp4");
    for (i, scene) in scenes.iter().enumerate() {
        let terms: Vec<&str> = scene["search_terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .filter(|t| !t.trim().is_empty())
            .take(3)
            .collect();
        let query = terms.join(" ");
        assert_eq!(searches[i]["query"], query);
        let want = picture_colour(&query);
        // Scene i + 1 of the timeline (scene 0 is the title card); the style moves the photo,
        // its centre stays the photo's colour.
        let got = centre_colour(&video, middles[i + 1], 32);
        assert!(
            colour_distance(want, got) <= 16,
            "scene {}: the frame shows {got:?}, the photo is {want:?}",
            i + 1
        );
    }
    let end = timeline["scenes"].as_array().unwrap().last().unwrap();
    assert!(end["visual"]["text"]
        .as_str()
        .unwrap()
        .contains("Photo by Ana Lima on Pexels"));
}

/// With `--clips` and Pexels in the clip chain, each scene shows a stock video found by its
/// terms instead of its still, and the end card credits the videos' authors.
#[tokio::test(flavor = "multi_thread")]
async fn clips_can_be_stock_videos_found_by_each_scenes_terms() {
    use studio_testkit::replicate::clip_colour;
    let fake = FakePexels::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("studio.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers.clip]]\nkind = \"pexels\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n",
            fake.base_url()
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args(["render", "--text"])
        .arg(aesop())
        .args([
            "--section",
            "the lion and the mouse",
            "--no-music",
            "--clips",
            "--config",
        ])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .env(KEY_ENV, PEXELS_KEY)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan = json(&out.join("plan.json"));
    let report = json(&out.join("report.json"));
    let timeline = json(&out.join("timeline.json"));
    let credits = report["credits"].as_array().unwrap();
    assert!(
        credits.contains(&Value::from("Video: Video by Ana Lima on Pexels")),
        "{credits:?}"
    );
    let middles = scene_middles(&timeline);
    let video = out.join("final.mp4");
    for (i, scene) in plan["scenes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(timeline["scenes"][i + 1]["visual"]["kind"], "video");
        let query: Vec<&str> = scene["search_terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .filter(|t| !t.trim().is_empty())
            .take(3)
            .collect();
        let want = clip_colour(&query.join(" "));
        let got = centre_colour(&video, middles[i + 1], 32);
        assert!(
            colour_distance(want, got) <= 16,
            "scene {}: {got:?} is not the video's {want:?}",
            i + 1
        );
    }
}

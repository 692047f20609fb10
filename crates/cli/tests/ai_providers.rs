//! `studio render` with AI providers: a topic written and planned by a language model and
//! spoken by a vendor voice, both the local fake of the OpenAI API (`studio_testkit::openai`),
//! configured by settings alone; real FFmpeg renders the result.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use studio_testkit::media::{duration, loudness};
use studio_testkit::openai::{self, FakeOpenAi};
use studio_testkit::texts::{letters, srt_text};

const KEY_ENV: &str = "STUDIO_TEST_OPENAI_KEY";

fn config(dir: &Path, fake: &FakeOpenAi) -> std::path::PathBuf {
    let path = dir.join("studio.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[providers.script]]
kind = "openai"
base_url = "{url}"
api_key_env = "{KEY_ENV}"

[[providers.speech]]
kind = "openai-speech"
base_url = "{url}"
api_key_env = "{KEY_ENV}"
voice = "nova"

[[providers.speech]]
kind = "espeak-ng"
"#,
            url = fake.base_url()
        ),
    )
    .unwrap();
    path
}

async fn studio(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args(args)
        .env(KEY_ENV, openai::KEY)
        .output()
        .await
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_becomes_a_video_written_and_spoken_by_the_configured_vendors() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = config(dir.path(), &fake);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "render",
            "--topic",
            "why the sky is blue",
            "--duration",
            "50",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend([
            "--no-music".into(),
            "--config".into(),
            cfg.display().to_string(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(["-o".into(), out.display().to_string()]);
        a
    };

    // The estimate spends nothing.
    let estimated = studio(args(&["--estimate"])).await;
    assert!(
        estimated.status.success(),
        "{}",
        String::from_utf8_lossy(&estimated.stderr)
    );
    let printed = String::from_utf8_lossy(&estimated.stdout).to_string();
    assert!(fake.requests().await.is_empty(), "--estimate sent requests");
    assert!(!out.join("final.mp4").exists());
    let estimate: u64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("estimated total: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in:\n{printed}"));
    assert!(
        printed.contains("script   openai (gpt-4o-mini/plan-v1)"),
        "{printed}"
    );
    assert!(
        printed.contains("speech   openai-speech (gpt-4o-mini-tts/nova + pocketsphinx 5.1.1)"),
        "{printed}"
    );

    let run = studio(args(&[])).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // The narration is the fake model's script, in order, spoken by the fake voice.
    let plan = json(&out.join("plan.json"));
    assert_eq!(plan["title"], openai::SCRIPT_TITLE);
    let narrated: Vec<String> = plan["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    // The budget is 50 s less the title and end cards, at 165 words a minute.
    let report = json(&out.join("report.json"));
    let script: Vec<String> = openai::script(words_asked(&fake).await);
    assert_eq!(letters(&narrated.concat()), letters(&script.concat()));
    assert_eq!(
        letters(&srt_text(&out.join("captions.srt"))),
        letters(&script.concat())
    );
    assert_eq!(plan["characters"][0]["name"], "Narrator");
    assert!(plan["scenes"][0]["visual"]
        .as_str()
        .unwrap()
        .contains("sky"));

    let steps = report["steps"].as_array().unwrap();
    let planned = steps.iter().find(|s| s["step"] == "plan").unwrap();
    assert_eq!(planned["provider"], "openai");
    assert_eq!(planned["model"], "gpt-4o-mini/plan-v1");
    let (input, output) = fake.usage();
    assert_eq!(
        planned["cost_micro_usd"].as_u64().unwrap(),
        (input * 150 + 500) / 1000 + (output * 600 + 500) / 1000
    );
    let speech: Vec<&Value> = steps.iter().filter(|s| s["step"] == "speech").collect();
    assert!(!speech.is_empty());
    let mut spoken_chars = 0;
    for s in &speech {
        assert_eq!(s["provider"], "openai-speech");
        // Its words were timed by PocketSphinx, the voice giving none.
        assert_eq!(s["model"], "gpt-4o-mini-tts/nova + pocketsphinx 5.1.1");
    }
    for body in fake.bodies("/v1/audio/speech").await {
        spoken_chars += body["input"].as_str().unwrap().chars().count() as u64;
        assert_eq!(body["voice"], "nova");
    }
    assert_eq!(
        fake.speeches() as usize,
        narrated.len(),
        "one request per sentence"
    );
    let speech_cost: u64 = speech
        .iter()
        .map(|s| s["cost_micro_usd"].as_u64().unwrap())
        .sum();
    // 15,000 micro-USD per 1K characters, rounded per scene.
    assert!(speech_cost.abs_diff(spoken_chars * 15) <= speech.len() as u64);
    let total = report["cost_micro_usd"].as_u64().unwrap();
    assert_eq!(
        total,
        planned["cost_micro_usd"].as_u64().unwrap() + speech_cost
    );

    // The estimate was within 10 % of what the run cost.
    let off = estimate.abs_diff(total) as f64 / total as f64;
    assert!(
        off <= 0.10,
        "estimated {estimate}, spent {total} ({:.1} % off)",
        off * 100.0
    );

    // A real video with the fake voice's audio in it.
    let video = out.join("final.mp4");
    let seconds = duration(&video);
    assert!((30.0..=70.0).contains(&seconds), "{seconds} s");
    let (lufs, _) = loudness(&video);
    assert!(lufs > -30.0, "narration is audible: {lufs} LUFS");
}

/// The word count the script prompt asked for ("about N words").
async fn words_asked(fake: &FakeOpenAi) -> usize {
    let bodies = fake.bodies("/v1/chat/completions").await;
    openai::words_asked(bodies[0]["messages"][1]["content"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_is_named_and_nothing_is_spent() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fake);
    let out = dir.path().join("out");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args(["render", "--topic", "tea", "--config"])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .env_remove(KEY_ENV)
        .output()
        .await
        .unwrap();
    assert!(!run.status.success());
    let e = String::from_utf8_lossy(&run.stderr);
    assert!(e.contains("providers.script[0] (openai)"), "{e}");
    assert!(
        e.contains(&format!("set the environment variable {KEY_ENV}")),
        "{e}"
    );
    assert!(fake.requests().await.is_empty());
    assert!(!out.join("final.mp4").exists());
}

/// Anthropic writes and plans, ElevenLabs speaks: caption cues inside a sentence start on the
/// words' times from the vendor's alignment, not on times shared in proportion to letters.
#[tokio::test(flavor = "multi_thread")]
async fn captions_are_timed_from_the_voices_alignment() {
    use studio_testkit::anthropic::{self, FakeAnthropic};
    use studio_testkit::elevenlabs::{self, FakeElevenLabs};
    let claude = FakeAnthropic::start().await;
    let eleven = FakeElevenLabs::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("studio.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[providers.script]]
kind = "anthropic"
base_url = "{}"
api_key_env = "STUDIO_TEST_ANTHROPIC_KEY"

[[providers.speech]]
kind = "elevenlabs"
base_url = "{}"
api_key_env = "STUDIO_TEST_ELEVENLABS_KEY"
"#,
            claude.base_url(),
            eleven.base_url()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args([
            "render",
            "--topic",
            "why the sky is blue",
            "--duration",
            "30",
        ])
        .args([
            "--no-music",
            "--aspect",
            "9:16",
            "--style",
            "bold",
            "--config",
        ])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .env("STUDIO_TEST_ANTHROPIC_KEY", anthropic::KEY)
        .env("STUDIO_TEST_ELEVENLABS_KEY", elevenlabs::KEY)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(claude.messages(), 2);
    let report = json(&out.join("report.json"));
    assert!(report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "speech")
        .all(|s| s["provider"] == "elevenlabs"));

    let plan = json(&out.join("plan.json"));
    let sentences: Vec<String> = plan["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let timeline = json(&out.join("timeline.json"));
    let cues = timeline["captions"]["cues"].as_array().unwrap();
    // The bold style lights each word as it is spoken, by the voice's own word times.
    assert_eq!(timeline["captions"]["style"]["highlight"], "#FFD400");
    for c in cues {
        let words = c["text"].as_str().unwrap().split_whitespace().count();
        assert_eq!(
            c["word_starts"].as_array().map(Vec::len),
            Some(words),
            "{c}"
        );
    }
    let mut cue = cues.iter();
    let mut inner = 0;
    for sentence in &sentences {
        let (starts, _) = elevenlabs::alignment(sentence);
        let mut words = sentence.split_whitespace().peekable();
        let mut at = 0; // byte offset in the sentence of the next word
        let mut first_start = None;
        while words.peek().is_some() {
            let c = cue.next().expect("a cue for every word");
            let start = c["start"].as_f64().unwrap();
            let first_word = c["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            let i = sentence[at..].find(first_word).unwrap() + at;
            let chars_before = sentence[..i].chars().count();
            match first_start {
                None => first_start = Some(start),
                Some(t0) => {
                    inner += 1;
                    let expected = t0 + starts[chars_before];
                    assert!(
                        (start - expected).abs() < 0.02,
                        "cue {:?} starts at {start}, its first word at {expected}",
                        c["text"]
                    );
                }
            }
            for _ in 0..c["text"].as_str().unwrap().split_whitespace().count() {
                let w = words.next().unwrap();
                at = sentence[at..].find(w).unwrap() + at + w.len();
            }
        }
    }
    assert!(inner >= 3, "sentences split into several cues: {inner}");
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_check_lists_keys_and_probes_each_vendor() {
    use studio_testkit::elevenlabs::FakeElevenLabs;
    let fake = FakeOpenAi::start().await;
    let eleven = FakeElevenLabs::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fake);
    let check = |cfg: std::path::PathBuf, key: Option<&'static str>| async move {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"));
        cmd.args(["providers", "check", "--config"]).arg(cfg);
        match key {
            Some(k) => cmd.env(KEY_ENV, k),
            None => cmd.env_remove(KEY_ENV),
        };
        cmd.output().await.unwrap()
    };
    let ok = check(cfg.clone(), Some(openai::KEY)).await;
    let printed = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(printed.contains(&format!("key {KEY_ENV} set")), "{printed}");
    assert!(
        printed.contains("ok: 3 models; gpt-4o-mini offered"),
        "{printed}"
    );
    assert!(
        printed.contains("ok: 3 models; gpt-4o-mini-tts offered"),
        "{printed}"
    );
    assert!(printed.contains("speech[1]  espeak-ng"), "{printed}");
    let models = fake
        .requests()
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/models")
        .count();
    assert_eq!(models, 2);
    assert_eq!(fake.chats() + fake.speeches(), 0, "nothing billed");

    // A refused key and a missing one: named, and the exit code says so.
    let bad = check(cfg.clone(), Some("sk-wrong")).await;
    assert!(!bad.status.success());
    let printed = String::from_utf8_lossy(&bad.stdout).to_string();
    assert!(
        printed.contains("FAILED: openai refused the API key"),
        "{printed}"
    );
    let missing = check(cfg, None).await;
    assert!(!missing.status.success());
    let printed = String::from_utf8_lossy(&missing.stdout).to_string();
    assert!(
        printed.contains(&format!("key {KEY_ENV} NOT SET")),
        "{printed}"
    );

    // ElevenLabs: the configured voice must exist.
    let cfg = dir.path().join("eleven.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers.speech]]\nkind = \"elevenlabs\"\nbase_url = \"{}\"\napi_key_env = \"STUDIO_TEST_ELEVENLABS_KEY\"\nvoice = \"nobody\"\n",
            eleven.base_url()
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio"))
        .args(["providers", "check", "--config"])
        .arg(&cfg)
        .env(
            "STUDIO_TEST_ELEVENLABS_KEY",
            studio_testkit::elevenlabs::KEY,
        )
        .output()
        .await
        .unwrap();
    assert!(!run.status.success());
    let printed = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        printed.contains("none with id nobody") && printed.contains("(Rachel)"),
        "{printed}"
    );
}

/// Pictures drawn by `openai-images` (the fake): one request a scene, each prompt carrying the
/// style's prefix and the character the plan described, word for word; the middle of every
/// scene shows the picture the fake drew for that scene's prompt; `report.json` records each
/// prompt and what each picture cost (issue 14).
#[tokio::test(flavor = "multi_thread")]
async fn every_scene_shows_the_picture_the_model_drew_for_its_prompt() {
    use studio_testkit::media::centre_colour;
    use studio_testkit::openai_images::picture_colour;

    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("studio.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[providers.script]]
kind = "openai"
base_url = "{url}"
api_key_env = "{KEY_ENV}"

[[providers.speech]]
kind = "espeak-ng"

[[providers.image]]
kind = "openai-images"
base_url = "{url}"
api_key_env = "{KEY_ENV}"

[[providers.image]]
kind = "card"
"#,
            url = fake.base_url()
        ),
    )
    .unwrap();
    let run = studio(
        [
            "render",
            "--topic",
            "why the sky is blue",
            "--duration",
            "30",
            "--no-music",
            "--config",
            &cfg.display().to_string(),
            "-o",
            &out.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan = json(&out.join("plan.json"));
    let scenes = plan["scenes"].as_array().unwrap().len();
    let narrator = format!(
        "Narrator is {}",
        plan["characters"][0]["description"].as_str().unwrap()
    );
    let prefix = "Warm watercolour storybook illustration, soft light, gentle colours. ";
    let bodies = fake.bodies("/v1/images/generations").await;
    assert_eq!(bodies.len(), scenes, "one picture a scene");
    assert_eq!(fake.images() as usize, scenes);
    for body in &bodies {
        assert_eq!(body["model"], "gpt-image-1");
        assert_eq!(body["size"], "1536x1024", "16:9 asks for landscape");
        let prompt = body["prompt"].as_str().unwrap();
        assert!(prompt.starts_with(prefix), "{prompt}");
        assert!(prompt.contains(&narrator), "{prompt}");
    }

    // report.json: each picture's prompt and cost, in scene order.
    let report = json(&out.join("report.json"));
    let pictures: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "image")
        .collect();
    assert_eq!(pictures.len(), scenes);
    let timeline = json(&out.join("timeline.json"));
    let timed = timeline["scenes"].as_array().unwrap();
    let mut start = 0.0;
    let mut middles = Vec::new();
    for scene in timed {
        let d = scene["duration"].as_f64().unwrap();
        middles.push(start + d / 2.0);
        let overlap = match scene["transition"]["kind"].as_str().unwrap_or("cut") {
            "cut" | "fade" => 0.0,
            _ => scene["transition"]["duration"].as_f64().unwrap(),
        };
        start += d - overlap;
    }
    let video = out.join("final.mp4");
    for picture in &pictures {
        let n = picture["scene"].as_u64().unwrap() as usize;
        assert_eq!(picture["provider"], "openai-images");
        assert!(picture["cost_micro_usd"].as_u64().unwrap() > 60_000);
        let prompt = picture["prompt"].as_str().unwrap();
        let want = picture_colour(prompt);
        // Scene n is timeline scene n (scene 0 is the title card).
        let got = centre_colour(&video, middles[n], 32);
        let off = want
            .iter()
            .zip(got)
            .map(|(w, g)| i32::from(*w).abs_diff(i32::from(g)))
            .max()
            .unwrap();
        assert!(
            off <= 16,
            "scene {n}: the frame shows {got:?}, the picture is {want:?}"
        );
    }
}

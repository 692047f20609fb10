//! The OpenAI adapters against a local fake that follows the documented shapes
//! (`studio_testkit::openai`): the exact requests we send, and what each documented error does.

use std::time::{Duration, Instant};

use serde_json::Value;
use studio_providers::local::planner::Outline;
use studio_providers::*;
use studio_testkit::openai::{self, FakeOpenAi};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// The variable the tests keep the fake's key in (every test sets the same value).
const KEY_ENV: &str = "STUDIO_TEST_OPENAI_KEY";

fn settings(toml: &str) -> ProvidersSettings {
    std::env::set_var(KEY_ENV, openai::KEY);
    toml::from_str(toml).unwrap()
}

fn script_settings(fake: &FakeOpenAi, extra: &str) -> ProvidersSettings {
    settings(&format!(
        r#"
        retry = {{ max_attempts = 3, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[script]]
        kind = "openai"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        {extra}
        [[script]]
        kind = "text-planner"
        "#,
        fake.base_url()
    ))
}

fn pace() -> Pace {
    Pace {
        seconds_per_char: 0.07,
        sentence_pause_s: 0.3,
    }
}

fn topic(t: &str) -> PlanRequest {
    PlanRequest {
        source: PlanSource::Topic {
            topic: t.into(),
            audience: Some("children".into()),
            tone: None,
        },
        target_seconds: Some(30.0),
        scene_seconds: 8.0,
        pace: pace(),
    }
}

fn text(t: &str, section: Option<&str>) -> PlanRequest {
    PlanRequest {
        source: PlanSource::Text {
            text: t.into(),
            section: section.map(str::to_owned),
        },
        target_seconds: None,
        scene_seconds: 8.0,
        pace: pace(),
    }
}

fn narrated(plan: &ScenePlan) -> Vec<String> {
    plan.scenes
        .iter()
        .flat_map(|s| s.sentences.iter().cloned())
        .collect()
}

async fn chat_requests(fake: &FakeOpenAi) -> usize {
    fake.requests()
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/chat/completions")
        .count()
}

#[tokio::test]
async fn a_topic_is_written_then_planned_with_the_documented_requests() {
    let fake = FakeOpenAi::start().await;
    let providers = script_settings(&fake, "").build(None).unwrap();
    assert!(providers.can_plan_topics());
    let g = providers
        .script
        .run(&topic("why the sky is blue"))
        .await
        .unwrap();
    assert_eq!(g.provenance.provider, "openai");
    assert_eq!(g.provenance.model, "gpt-4o-mini/plan-v1");
    // The tokens the fake reported, at gpt-4o-mini's 150 / 600 micro-USD per 1K.
    let (input, output) = fake.usage();
    assert!(input > 500 && output > 100, "{input} {output}");
    let expected = (input * 150 + 500) / 1000 + (output * 600 + 500) / 1000;
    assert_eq!(g.provenance.cost_micro_usd, expected);
    let plan = &g.output;
    assert_eq!(plan.title, openai::SCRIPT_TITLE);
    // 30 s at the narrator's 165 words a minute: 83 words.
    let script = Outline::of_paragraphs("", None, None, &openai::script(83));
    assert_eq!(narrated(plan), script.texts());
    assert_eq!(plan.characters[0].name, "Narrator");
    assert_eq!(plan.music_mood.as_deref(), Some("wonder"));
    assert!(plan.scenes.iter().all(|s| s.visual.is_some()));

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.url.path(), "/v1/chat/completions");
        assert_eq!(r.headers["authorization"], "Bearer sk-test");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let bodies = fake.bodies("/v1/chat/completions").await;
    let (write, plan_body) = (&bodies[0], &bodies[1]);
    assert_eq!(write["model"], "gpt-4o-mini");
    assert_eq!(write["messages"][0]["role"], "system");
    assert_eq!(write["messages"][1]["role"], "user");
    let prompt = write["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("why the sky is blue") && prompt.contains("Audience: children"));
    // 30 s at the narrator's 165 words a minute.
    assert!(prompt.contains("about 83 words"), "{prompt}");
    assert_eq!(write["response_format"]["type"], "json_schema");
    assert_eq!(write["response_format"]["json_schema"]["name"], "script");
    assert_eq!(write["response_format"]["json_schema"]["strict"], true);
    let schema = &plan_body["response_format"]["json_schema"];
    assert_eq!(schema["name"], "scene_plan");
    assert_eq!(schema["schema"]["additionalProperties"], false);
    let listed = plan_body["messages"][1]["content"].as_str().unwrap();
    assert!(
        listed.contains("1. [") && listed.contains("Sunlight looks white"),
        "{listed}"
    );
}

#[tokio::test]
async fn given_text_keeps_every_sentence_of_the_author_in_order() {
    let fake = FakeOpenAi::start().await;
    let mut settings = script_settings(&fake, "");
    settings.script.truncate(1);
    let providers = settings.build(None).unwrap();
    let aesop = studio_testkit::texts::aesop();
    let section = "The Hare and the Tortoise";
    let g = providers
        .script
        .run(&text(&aesop, Some(section)))
        .await
        .unwrap();
    let outline = Outline::of_text(&aesop, Some(section)).unwrap();
    assert_eq!(narrated(&g.output), outline.texts());
    assert_eq!(g.output.moral, outline.moral);
    assert_eq!(g.output.sentences_kept, outline.sentences.len());
}

#[tokio::test]
async fn long_texts_are_planned_in_chunks_with_the_plot_so_far() {
    let fake = FakeOpenAi::start().await;
    let mut settings = script_settings(&fake, "");
    settings.script.truncate(1);
    let providers = settings.build(None).unwrap();
    let alice =
        std::fs::read_to_string(studio_testkit::texts::path("alice-in-wonderland.txt")).unwrap();
    let g = providers
        .script
        .run(&text(&alice, Some("CHAPTER I.")))
        .await
        .unwrap();
    let outline = Outline::of_text(&alice, Some("CHAPTER I.")).unwrap();
    assert!(
        outline.sentences.len() > 60,
        "a chapter longer than one chunk"
    );
    assert_eq!(narrated(&g.output), outline.texts());
    let bodies = fake.bodies("/v1/chat/completions").await;
    assert_eq!(bodies.len(), outline.sentences.len().div_ceil(60));
    let second = bodies[1]["messages"][1]["content"].as_str().unwrap();
    assert!(second.contains("The story so far: The narrator explains the sky."));
    assert!(
        second.contains("- Narrator: a grey-haired woman"),
        "{second}"
    );
    assert!(second.contains("61. ["), "{second}");
    assert_eq!(g.output.characters.len(), 1, "described once");
}

#[tokio::test]
async fn tools_mode_asks_for_a_forced_function_call() {
    let fake = FakeOpenAi::start().await;
    let providers = script_settings(&fake, r#"structured_output = "tools""#)
        .build(None)
        .unwrap();
    let g = providers.script.run(&topic("the sky")).await.unwrap();
    assert_eq!(g.output.title, openai::SCRIPT_TITLE);
    let body = &fake.bodies("/v1/chat/completions").await[0];
    assert!(body.get("response_format").is_none());
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "script");
    assert_eq!(body["tool_choice"]["function"]["name"], "script");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let fake = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            openai::error(
                429,
                "Rate limit reached for gpt-4o-mini",
                "requests",
                Some("rate_limit_exceeded"),
            )
            .insert_header("retry-after", "1"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(openai::error(
            500,
            "The server had an error while processing your request.",
            "server_error",
            None,
        ))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&fake.server)
        .await;
    let providers = script_settings(&fake, "").build(None).unwrap();
    let started = Instant::now();
    let g = providers.script.run(&topic("the sky")).await.unwrap();
    assert_eq!(g.provenance.provider, "openai");
    assert_eq!(g.provenance.attempts, 3, "429, 500, then the answer");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited out Retry-After"
    );
    assert_eq!(chat_requests(&fake).await, 4);
}

#[tokio::test]
async fn a_refused_key_names_its_variable_and_falls_back() {
    let fake = FakeOpenAi::start().await;
    std::env::set_var("STUDIO_TEST_OPENAI_WRONG_KEY", "sk-wrong");
    let mut settings = script_settings(&fake, "");
    settings.script[0].api_key_env = Some("STUDIO_TEST_OPENAI_WRONG_KEY".into());
    let providers = settings.build(None).unwrap();
    let aesop = studio_testkit::texts::aesop();
    let g = providers
        .script
        .run(&text(&aesop, Some("The Hare and the Tortoise")))
        .await
        .unwrap();
    assert_eq!(g.provenance.provider, "text-planner");
    let skipped = &g.provenance.skipped[0];
    assert_eq!(skipped.kind, ErrorKind::Unavailable);
    assert!(
        skipped.reason.contains("STUDIO_TEST_OPENAI_WRONG_KEY"),
        "{}",
        skipped.reason
    );
    assert!(
        skipped.reason.contains("Incorrect API key"),
        "{}",
        skipped.reason
    );
    assert_eq!(chat_requests(&fake).await, 1, "not retried");
}

#[tokio::test]
async fn a_content_policy_refusal_stops_with_the_vendors_reason() {
    let fake = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(openai::error(
            400,
            "Your request was rejected as a result of our safety system.",
            "invalid_request_error",
            Some("content_policy_violation"),
        ))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let providers = script_settings(&fake, "").build(None).unwrap();
    let e = providers
        .script
        .run(&topic("something vile"))
        .await
        .unwrap_err();
    let ChainError::Invalid { provider, message } = e else {
        panic!("expected Invalid, got {e}")
    };
    assert_eq!(provider, "openai");
    assert!(
        message.contains("content policy") && message.contains("safety system"),
        "{message}"
    );
    assert_eq!(chat_requests(&fake).await, 1);
}

#[tokio::test]
async fn malformed_answers_and_slow_answers_are_transient() {
    let fake = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"choices\": [oops"))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let mut settings = script_settings(&fake, "");
    settings.retry.max_attempts = 2;
    settings.script.truncate(1);
    let providers = settings.build(None).unwrap();
    let e = providers.script.run(&topic("the sky")).await.unwrap_err();
    let ChainError::Exhausted { failures, .. } = e else {
        panic!("expected Exhausted, got {e}")
    };
    assert_eq!(failures[0].kind, ErrorKind::Transient);
    assert!(
        failures[0].reason.contains("not the JSON it documents"),
        "{}",
        failures[0].reason
    );
    assert_eq!(chat_requests(&fake).await, 2, "retried once");

    let slow = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .with_priority(1)
        .mount(&slow.server)
        .await;
    let mut settings = script_settings(&slow, "timeout_s = 0.3");
    settings.retry.max_attempts = 1;
    let providers = settings.build(None).unwrap();
    let aesop = studio_testkit::texts::aesop();
    let g = providers
        .script
        .run(&text(&aesop, Some("The Hare and the Tortoise")))
        .await
        .unwrap();
    assert_eq!(g.provenance.provider, "text-planner", "fell back");
    let reason = &g.provenance.skipped[0].reason;
    assert!(reason.contains("did not answer within 0.3 s"), "{reason}");
}

#[tokio::test]
async fn an_open_circuit_skips_the_vendor_until_one_probe_after_the_cooldown() {
    let fake = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(openai::error(
            503,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let mut settings = script_settings(&fake, "");
    settings.retry.max_attempts = 1;
    settings.breaker.failures = 2;
    settings.breaker.cooldown_s = 1.0;
    let providers = settings.build(None).unwrap();
    let aesop = studio_testkit::texts::aesop();
    let plan = |title: &str| text(&aesop, Some(title));
    for title in ["The Hare and the Tortoise", "The Fox and the Grapes"] {
        let g = providers.script.run(&plan(title)).await.unwrap();
        assert_eq!(g.provenance.provider, "text-planner");
    }
    assert_eq!(chat_requests(&fake).await, 2);
    // Open: the next request skips the vendor without a request.
    let g = providers
        .script
        .run(&plan("The Wolf and the Lamb"))
        .await
        .unwrap();
    assert!(
        g.provenance.skipped[0].reason.contains("circuit open"),
        "{:?}",
        g.provenance.skipped
    );
    assert_eq!(chat_requests(&fake).await, 2);
    assert_eq!(providers.script.breakers()[0].1, "open");
    // After the cool-down one probe goes through (and fails, so it opens again).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    providers
        .script
        .run(&plan("The Wolf and the Lamb"))
        .await
        .unwrap();
    assert_eq!(chat_requests(&fake).await, 3);
    providers
        .script
        .run(&plan("The Hare and the Tortoise"))
        .await
        .unwrap();
    assert_eq!(chat_requests(&fake).await, 3);
}

#[tokio::test]
async fn a_missing_key_is_a_settings_error_naming_the_variable() {
    let fake = FakeOpenAi::start().await;
    let mut settings = script_settings(&fake, "");
    settings.script[0].api_key_env = Some("STUDIO_TEST_OPENAI_UNSET_KEY".into());
    let e = settings.build(None).unwrap_err().to_string();
    assert!(e.starts_with("providers.script[0] (openai)"), "{e}");
    assert!(
        e.contains("set the environment variable STUDIO_TEST_OPENAI_UNSET_KEY"),
        "{e}"
    );
    assert!(fake.requests().await.is_empty(), "nothing sent");
}

fn speech_settings(fake: &FakeOpenAi, extra: &str) -> ProvidersSettings {
    settings(&format!(
        r#"
        [[speech]]
        kind = "openai-speech"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        voice = "nova"
        {extra}
        "#,
        fake.base_url()
    ))
}

fn speak(rate_wpm: u32) -> SpeechRequest {
    SpeechRequest {
        sentences: vec![
            "Slow but steady wins the race.".into(),
            "The Hare fell fast asleep.".into(),
        ],
        voice: Voice {
            rate_wpm,
            ..Voice::default()
        },
        sentence_pause_s: 0.5,
    }
}

#[tokio::test]
async fn speech_is_one_request_per_sentence_timed_from_the_audio() {
    for format in ["pcm", "wav"] {
        let fake = FakeOpenAi::start().await;
        let providers = speech_settings(&fake, &format!("audio_format = \"{format}\""))
            .build(None)
            .unwrap();
        let g = providers.speech.run(&speak(165)).await.unwrap();
        // A voice without word times is aligned by PocketSphinx (installed by setup.sh).
        assert_eq!(
            g.provenance.model,
            "gpt-4o-mini-tts/nova + pocketsphinx 5.1.1"
        );
        let speech = &g.output;
        assert_eq!(speech.sample_rate, 24_000);
        let a = 30.0 * openai::SECONDS_PER_CHAR;
        let b = 26.0 * openai::SECONDS_PER_CHAR;
        let close = |x: f64, y: f64| (x - y).abs() < 1e-3;
        assert!(close(speech.sentences[0].end, a), "{:?}", speech.sentences);
        assert!(close(speech.sentences[1].start, a + 0.5));
        assert!(close(speech.sentences[1].end, a + 0.5 + b));
        assert!(close(speech.duration_s, a + b + 1.0));
        let wav = hound::WavReader::open(&speech.audio).unwrap();
        assert_eq!(wav.spec().sample_rate, 24_000);
        assert!(close(wav.duration() as f64 / 24_000.0, speech.duration_s));
        // 56 characters at 15,000 micro-USD per 1K.
        assert_eq!(g.provenance.cost_micro_usd, 840);
        let bodies: Vec<Value> = fake.bodies("/v1/audio/speech").await;
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["model"], "gpt-4o-mini-tts");
        assert_eq!(bodies[0]["input"], "Slow but steady wins the race.");
        assert_eq!(bodies[0]["voice"], "nova");
        assert_eq!(bodies[0]["response_format"], format);
        assert!(bodies[0].get("speed").is_none(), "the narrator's own pace");
    }
    let fake = FakeOpenAi::start().await;
    let providers = speech_settings(&fake, r#"model = "tts-1""#)
        .build(None)
        .unwrap();
    providers.speech.run(&speak(330)).await.unwrap();
    let bodies = fake.bodies("/v1/audio/speech").await;
    assert_eq!(bodies[0]["speed"], 2.0);
    assert_eq!(bodies[0]["model"], "tts-1");
}

//! The Anthropic and ElevenLabs adapters against local fakes that follow the documented shapes
//! (`studio_testkit::{anthropic, elevenlabs}`).

use std::time::Duration;

use studio_providers::*;
use studio_testkit::anthropic::{self, FakeAnthropic};
use studio_testkit::elevenlabs::{self, FakeElevenLabs};
use wiremock::matchers::{method, path};
use wiremock::Mock;

const ANTHROPIC_ENV: &str = "STUDIO_TEST_ANTHROPIC_KEY";
const ELEVEN_ENV: &str = "STUDIO_TEST_ELEVENLABS_KEY";

fn settings(toml: &str) -> ProvidersSettings {
    std::env::set_var(ANTHROPIC_ENV, anthropic::KEY);
    std::env::set_var(ELEVEN_ENV, elevenlabs::KEY);
    toml::from_str(toml).unwrap()
}

fn topic() -> PlanRequest {
    PlanRequest {
        source: PlanSource::Topic {
            topic: "why the sky is blue".into(),
            audience: None,
            tone: Some("warm".into()),
        },
        target_seconds: Some(30.0),
        scene_seconds: 8.0,
        pace: Pace {
            seconds_per_char: 0.07,
            sentence_pause_s: 0.3,
        },
    }
}

fn anthropic_settings(fake: &FakeAnthropic) -> ProvidersSettings {
    settings(&format!(
        r#"
        retry = {{ max_attempts = 3, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[script]]
        kind = "anthropic"
        base_url = "{}"
        api_key_env = "{ANTHROPIC_ENV}"
        "#,
        fake.base_url()
    ))
}

#[tokio::test]
async fn anthropic_plans_through_a_forced_tool_call() {
    let fake = FakeAnthropic::start().await;
    let providers = anthropic_settings(&fake).build(None).unwrap();
    assert!(providers.can_plan_topics());
    let g = providers.script.run(&topic()).await.unwrap();
    assert_eq!(g.provenance.provider, "anthropic");
    assert_eq!(g.provenance.model, "claude-haiku-4-5/plan-v1");
    assert!(
        g.provenance.cost_micro_usd > 0,
        "priced at the shipped list price"
    );
    assert_eq!(g.output.title, studio_testkit::openai::SCRIPT_TITLE);
    assert_eq!(fake.messages(), 2);

    let requests = fake.server.received_requests().await.unwrap();
    for r in &requests {
        assert_eq!(r.headers["x-api-key"], anthropic::KEY);
        assert_eq!(r.headers["anthropic-version"], "2023-06-01");
        assert!(r.headers.get("authorization").is_none());
    }
    let bodies = fake.bodies().await;
    let body = &bodies[0];
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["max_tokens"], 8192);
    assert!(body["system"].as_str().unwrap().contains("narration"));
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Tone: warm"));
    assert_eq!(body["tools"][0]["name"], "script");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(body["tool_choice"]["type"], "tool");
    assert_eq!(body["tool_choice"]["name"], "script");
    assert_eq!(bodies[1]["tools"][0]["name"], "scene_plan");
}

#[tokio::test]
async fn anthropic_overload_is_retried_and_a_bad_key_named() {
    let fake = FakeAnthropic::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(anthropic::error(529, "overloaded_error", "Overloaded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let providers = anthropic_settings(&fake).build(None).unwrap();
    let g = providers.script.run(&topic()).await.unwrap();
    assert_eq!(g.provenance.attempts, 2);

    std::env::set_var("STUDIO_TEST_ANTHROPIC_WRONG", "sk-ant-wrong");
    let mut settings = anthropic_settings(&fake);
    settings.script[0].api_key_env = Some("STUDIO_TEST_ANTHROPIC_WRONG".into());
    let e = settings
        .build(None)
        .unwrap()
        .script
        .run(&topic())
        .await
        .unwrap_err();
    let ChainError::Exhausted { failures, .. } = e else {
        panic!("expected Exhausted, got {e}")
    };
    assert_eq!(failures[0].kind, ErrorKind::Unavailable);
    assert!(
        failures[0].reason.contains("STUDIO_TEST_ANTHROPIC_WRONG")
            && failures[0].reason.contains("invalid x-api-key"),
        "{}",
        failures[0].reason
    );
}

fn eleven_settings(fake: &FakeElevenLabs, voice: &str) -> ProvidersSettings {
    settings(&format!(
        r#"
        [[speech]]
        kind = "elevenlabs"
        base_url = "{}"
        api_key_env = "{ELEVEN_ENV}"
        voice = "{voice}"
        voice_settings = {{ stability = 0.5, similarity_boost = 0.75 }}
        [[speech]]
        kind = "espeak-ng"
        "#,
        fake.base_url()
    ))
}

fn speak() -> SpeechRequest {
    SpeechRequest {
        sentences: vec![
            "Slow but steady wins the race.".into(),
            "The Hare, lying down by the wayside, fell fast asleep.".into(),
        ],
        voice: Voice::default(),
        sentence_pause_s: 0.4,
    }
}

#[tokio::test]
async fn elevenlabs_words_are_timed_from_the_vendors_alignment() {
    let fake = FakeElevenLabs::start().await;
    let voice = elevenlabs::VOICES[1].0;
    let providers = eleven_settings(&fake, voice).build(None).unwrap();
    let request = speak();
    let g = providers.speech.run(&request).await.unwrap();
    assert_eq!(g.provenance.provider, "elevenlabs");
    assert!(g
        .provenance
        .model
        .starts_with("eleven_multilingual_v2/21m00Tcm4TlvDq8ikWAM/"));
    let chars: u64 = request
        .sentences
        .iter()
        .map(|s| s.chars().count() as u64)
        .sum();
    // 100,000 micro-USD per 1K characters.
    assert_eq!(g.provenance.cost_micro_usd, chars * 100);

    let speech = &g.output;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    let mut offset = 0.0;
    for (timed, text) in speech.sentences.iter().zip(&request.sentences) {
        let (starts, ends) = elevenlabs::alignment(text);
        assert!(close(timed.start, offset), "{timed:?}");
        assert!(close(timed.end, offset + ends.last().unwrap()), "{timed:?}");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            timed
                .words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>(),
            words
        );
        // Each word starts where its first character does.
        let mut at = 0;
        for (w, word) in timed.words.iter().zip(&words) {
            let i = text[at..].find(word).unwrap() + at;
            let first = text[..i].chars().count();
            assert!(close(w.start, offset + starts[first]), "{w:?}");
            at = i + word.len();
        }
        offset = timed.end + 0.4;
    }

    let sent = fake.speeches().await;
    assert_eq!(sent.len(), 2, "one request per sentence");
    let (path, query, body) = &sent[0];
    assert_eq!(path, &format!("/v1/text-to-speech/{voice}/with-timestamps"));
    assert_eq!(query, "output_format=pcm_24000");
    assert_eq!(body["text"], "Slow but steady wins the race.");
    assert_eq!(body["model_id"], "eleven_multilingual_v2");
    assert_eq!(body["voice_settings"]["stability"], 0.5);
    let requests = fake.server.received_requests().await.unwrap();
    assert_eq!(requests[0].headers["xi-api-key"], elevenlabs::KEY);
}

#[tokio::test]
async fn an_unknown_voice_falls_back_with_the_vendors_reason() {
    let fake = FakeElevenLabs::start().await;
    let providers = eleven_settings(&fake, "no-such-voice").build(None).unwrap();
    let g = tokio::time::timeout(Duration::from_secs(60), providers.speech.run(&speak()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.provenance.provider, "espeak-ng");
    let reason = &g.provenance.skipped[0].reason;
    assert!(
        reason.contains("voice_id no-such-voice was not found"),
        "{reason}"
    );
    assert_eq!(fake.speeches().await.len(), 1, "a 404 is not retried");
}

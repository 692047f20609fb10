//! The Cartesia adapter against a local fake that follows its documented shapes
//! (`studio_testkit::cartesia`): Server-Sent Events with word timestamps, errors over HTTP and
//! inside the stream.

use std::time::{Duration, Instant};

use studio_providers::vendor::cartesia::CartesiaSpeech;
use studio_providers::*;
use studio_testkit::cartesia::{self, FakeCartesia};
use wiremock::matchers::{method, path};
use wiremock::Mock;

const KEY_ENV: &str = "STUDIO_TEST_CARTESIA_KEY";

fn settings(fake: &FakeCartesia, extra: &str) -> ProvidersSettings {
    std::env::set_var(KEY_ENV, cartesia::KEY);
    toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 3, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[speech]]
        kind = "cartesia"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        {extra}
        [[speech]]
        kind = "espeak-ng"
        word_timing = "letters"
        "#,
        fake.base_url()
    ))
    .unwrap()
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
async fn cartesia_words_are_timed_from_the_vendors_timestamps() {
    let fake = FakeCartesia::start().await;
    let voice = cartesia::VOICES[1].0;
    let providers = settings(&fake, &format!("voice = \"{voice}\""))
        .build(None)
        .unwrap();
    let request = speak();
    let g = providers.speech.run(&request).await.unwrap();
    assert_eq!(g.provenance.provider, "cartesia");
    assert!(g.provenance.model.starts_with(&format!("sonic-2/{voice}")));
    let chars: u64 = request
        .sentences
        .iter()
        .map(|s| s.chars().count() as u64)
        .sum();
    // 39,200 micro-USD per 1K characters (the shipped table).
    assert_eq!(g.provenance.cost_micro_usd, (chars * 39_200 + 500) / 1000);

    let speech = &g.output;
    let mut offset = 0.0;
    for (timed, text) in speech.sentences.iter().zip(&request.sentences) {
        let expected = cartesia::word_times(text);
        let words: Vec<&str> = timed.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        for (w, (_, start, end)) in timed.words.iter().zip(&expected) {
            assert!((w.start - (offset + start)).abs() < 1e-3, "{w:?}");
            assert!((w.end - (offset + end)).abs() < 1e-3, "{w:?}");
        }
        offset = timed.end + 0.4;
    }
    // The two chunks of every sentence joined: real samples, as long as the fake spoke.
    let r = hound::WavReader::open(&speech.audio).unwrap();
    assert_eq!(r.spec().sample_rate, 24_000);
    assert!((speech.duration_s - offset).abs() < 1e-3);

    let bodies = fake.speeches().await;
    assert_eq!(bodies.len(), 2, "one request per sentence");
    let body = &bodies[0];
    assert_eq!(body["transcript"], "Slow but steady wins the race.");
    assert_eq!(body["model_id"], "sonic-2");
    assert_eq!(
        body["voice"],
        serde_json::json!({"mode": "id", "id": voice})
    );
    assert_eq!(
        body["output_format"],
        serde_json::json!({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000})
    );
    assert_eq!(body["add_timestamps"], true);
    assert!(body.get("generation_config").is_none(), "the default pace");
    let sent = &fake.server.received_requests().await.unwrap()[0];
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {}", cartesia::KEY)
    );
    assert_eq!(sent.headers["cartesia-version"], "2025-04-16");
    assert_eq!(sent.headers["accept"], "text/event-stream");
}

#[tokio::test]
async fn a_refusal_inside_the_stream_stops_with_the_vendors_reason() {
    let fake = FakeCartesia::start().await;
    fake.refuse_transcripts_containing("Hare");
    let providers = settings(&fake, "").build(None).unwrap();
    let e = providers.speech.run(&speak()).await.unwrap_err();
    match &e {
        ChainError::Invalid { provider, message } => {
            assert_eq!(provider, "cartesia");
            assert!(
                message.contains("Invalid transcript: The transcript could not be generated."),
                "{message}"
            );
        }
        other => panic!("expected invalid, got {other}"),
    }
    assert_eq!(fake.speeches().await.len(), 2, "a refusal is not retried");
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_refused_key_named() {
    let fake = FakeCartesia::start().await;
    Mock::given(method("POST"))
        .and(path("/tts/sse"))
        .respond_with(
            cartesia::error(429, "rate_limited", "Too many concurrent requests")
                .insert_header("retry-after", "1"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let providers = settings(&fake, "").build(None).unwrap();
    let started = Instant::now();
    let g = providers.speech.run(&speak()).await.unwrap();
    assert_eq!(g.provenance.provider, "cartesia");
    assert_eq!(g.provenance.attempts, 2, "429, then the answer");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited out Retry-After"
    );

    std::env::set_var("STUDIO_TEST_CARTESIA_WRONG_KEY", "sk_car_wrong");
    let mut wrong = settings(&fake, "");
    wrong.speech[0].api_key_env = Some("STUDIO_TEST_CARTESIA_WRONG_KEY".into());
    let providers = wrong.build(None).unwrap();
    let g = providers.speech.run(&speak()).await.unwrap();
    assert_eq!(g.provenance.provider, "espeak-ng", "fell back");
    let reason = &g.provenance.skipped[0].reason;
    assert!(
        reason.contains("STUDIO_TEST_CARTESIA_WRONG_KEY"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_voice_list_probes_the_key() {
    let fake = FakeCartesia::start().await;
    std::env::set_var(KEY_ENV, cartesia::KEY);
    let endpoint = settings(&fake, "").speech[0].endpoint().unwrap();
    let speech = CartesiaSpeech::new(endpoint, "sonic-2", cartesia::VOICES[0].0, None);
    let voices = speech.voices().await.unwrap();
    assert_eq!(voices.len(), 2);
    assert_eq!(
        voices[0],
        ("Sarah".to_owned(), cartesia::VOICES[0].0.to_owned())
    );
    let sent = &fake.server.received_requests().await.unwrap()[0];
    assert_eq!(sent.url.path(), "/voices");
    assert_eq!(sent.headers["cartesia-version"], "2025-04-16");
}

#[tokio::test]
async fn server_errors_and_broken_streams_are_retried_and_a_slow_answer_given_up() {
    let fake = FakeCartesia::start().await;
    Mock::given(method("POST"))
        .and(path("/tts/sse"))
        .respond_with(cartesia::error(
            500,
            "internal_error",
            "Internal server error",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/tts/sse"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string("data: {\"type\": \"chunk\", \"data\": \n\n"),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&fake.server)
        .await;
    let providers = settings(&fake, "").build(None).unwrap();
    let mut one = speak();
    one.sentences.truncate(1);
    let g = providers.speech.run(&one).await.unwrap();
    assert_eq!(g.provenance.provider, "cartesia");
    assert_eq!(
        g.provenance.attempts, 3,
        "500, a broken event, then the answer"
    );

    let slow = FakeCartesia::start().await;
    Mock::given(method("POST"))
        .and(path("/tts/sse"))
        .respond_with(
            cartesia::error(500, "internal_error", "late").set_delay(Duration::from_secs(5)),
        )
        .with_priority(1)
        .mount(&slow.server)
        .await;
    let providers = settings(&slow, "timeout_s = 0.3").build(None).unwrap();
    let g = providers.speech.run(&one).await.unwrap();
    assert_eq!(g.provenance.provider, "espeak-ng", "fell back");
    let reason = &g.provenance.skipped[0].reason;
    assert!(reason.contains("did not answer within 0.3 s"), "{reason}");
}

//! Local providers against the real tools: espeak-ng and FluidSynth.

use std::path::Path;
use std::sync::Arc;

use studio_providers::cache::ResultCache;
use studio_providers::local::espeak::EspeakSpeech;
use studio_providers::local::music::FluidSynthMusic;
use studio_providers::*;

fn wav_seconds(path: &Path) -> f64 {
    let r = hound::WavReader::open(path).unwrap();
    r.duration() as f64 / r.spec().sample_rate as f64
}

#[tokio::test]
async fn espeak_times_every_sentence_from_real_audio() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::<capability::Narration>::new(RetryPolicy::default())
        .with_cache(Arc::new(ResultCache::new(dir.path())));
    chain.push(Arc::new(EspeakSpeech::detect(None).unwrap()), 2);
    let request = SpeechRequest {
        sentences: vec![
            "Slow but steady wins the race.".into(),
            "The Hare, lying down by the wayside, fell fast asleep.".into(),
        ],
        voice: Voice {
            name: "en-us".into(),
            rate_wpm: 165,
            pitch: 50,
        },
        sentence_pause_s: 0.35,
    };
    let g = chain.run(&request).await.unwrap();
    let speech = &g.output;
    assert_eq!(g.provenance.provider, "espeak-ng");
    assert_eq!(g.provenance.cost_micro_usd, 0);
    assert!((wav_seconds(&speech.audio) - speech.duration_s).abs() < 1e-6);
    let [a, b] = &speech.sentences[..] else {
        panic!("two sentences expected")
    };
    assert_eq!(a.start, 0.0);
    assert!(a.end > 1.0 && a.end < b.start, "{a:?} {b:?}");
    assert!((b.start - a.end - 0.35).abs() < 0.01);
    assert!(
        b.end - b.start > a.end - a.start,
        "the longer sentence takes longer"
    );
    assert!((speech.duration_s - b.end - 0.35).abs() < 0.01);

    // An unknown voice is the caller's mistake, not worth retrying.
    let mut bad = request.clone();
    bad.voice.name = "xx-nowhere".into();
    let e = chain.run(&bad).await.unwrap_err();
    assert!(matches!(e, ChainError::Invalid { .. }), "{e}");
}

#[tokio::test]
async fn fluidsynth_renders_a_bed_at_least_as_long_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::<capability::Score>::new(RetryPolicy::default())
        .with_cache(Arc::new(ResultCache::new(dir.path())));
    chain.push(Arc::new(FluidSynthMusic::detect(None, None).unwrap()), 1);
    let g = chain
        .run(&MusicRequest {
            mood: "playful".into(),
            duration_s: 12.0,
            seed: 4,
        })
        .await
        .unwrap();
    let seconds = wav_seconds(&g.output.path);
    assert!(seconds >= 12.0, "{seconds}");
    assert!((seconds - g.output.duration_s).abs() < 1e-6);
    // Not silence: the 16-bit samples reach a musical level.
    let peak = hound::WavReader::open(&g.output.path)
        .unwrap()
        .into_samples::<i16>()
        .map(|s| s.unwrap().unsigned_abs())
        .max()
        .unwrap();
    assert!(peak > 3000, "peak {peak}");

    let e = chain
        .run(&MusicRequest {
            mood: "furious".into(),
            duration_s: 5.0,
            seed: 1,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("calm, playful, wonder, tense"), "{e}");
}

/// Piper, installed by scripts/setup.sh: neural speech with every sentence and word timed.
#[tokio::test]
async fn piper_times_every_sentence_and_word() {
    use studio_providers::local::piper::PiperSpeech;
    let piper = PiperSpeech::detect(None, None)
        .unwrap_or_else(|e| panic!("{e} (scripts/test.sh runs scripts/setup.sh first)"));
    assert!(
        piper
            .model()
            .starts_with("piper-tts 1.8.0/en_US-joe-medium"),
        "{}",
        piper.model()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::<capability::Narration>::new(RetryPolicy::default())
        .with_cache(Arc::new(ResultCache::new(dir.path())));
    chain.push(Arc::new(piper), 1);
    let request = SpeechRequest {
        sentences: vec![
            "Slow but steady wins the race.".into(),
            "The Hare, lying down by the wayside, fell fast asleep.".into(),
        ],
        voice: Voice::default(),
        sentence_pause_s: 0.35,
    };
    let g = chain.run(&request).await.unwrap();
    let speech = &g.output;
    assert_eq!(speech.sample_rate, 22_050);
    assert!((wav_seconds(&speech.audio) - speech.duration_s).abs() < 1e-6);
    let [a, b] = &speech.sentences[..] else {
        panic!("two sentences expected")
    };
    assert!(a.end > 1.0 && a.end < 4.0, "{a:?}");
    assert!((b.start - (a.end + 0.35)).abs() < 0.01);
    for (timed, text) in [(a, &request.sentences[0]), (b, &request.sentences[1])] {
        let words: Vec<&str> = timed.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        assert!(timed
            .words
            .windows(2)
            .all(|w| w[0].start < w[0].end && w[0].end <= w[1].start));
        assert!(timed.words[0].start >= timed.start);
        assert!(timed.words.last().unwrap().end <= timed.end + 1e-6);
    }
    // Real speech: loud enough, and louder inside words than in the pause after the first.
    let r = hound::WavReader::open(&speech.audio).unwrap();
    let samples: Vec<i16> = r.into_samples().map(|s| s.unwrap()).collect();
    let rms = |from: f64, to: f64| {
        let s = &samples[(from * 22_050.0) as usize..(to * 22_050.0) as usize];
        (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    };
    let word = &a.words[0];
    assert!(rms(word.start, word.end) > 500.0);
    assert!(rms(a.end + 0.05, b.start - 0.05) < rms(word.start, word.end) / 10.0);
}

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

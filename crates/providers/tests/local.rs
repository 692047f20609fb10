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

fn aligner() -> studio_providers::local::align::PocketSphinx {
    studio_providers::local::align::PocketSphinx::detect(None)
        .unwrap_or_else(|e| panic!("{e} (scripts/test.sh runs scripts/setup.sh first)"))
}

/// Forced alignment gives espeak-ng, which times no words, a time for every word, with the
/// pauses it makes at commas between the words around them.
#[tokio::test]
async fn pocketsphinx_times_the_words_of_a_voice_that_gives_none() {
    use studio_providers::local::align::Aligned;
    let aligner = aligner();
    assert!(
        aligner.version().starts_with("pocketsphinx 5.1"),
        "{}",
        aligner.version()
    );
    let voice = Aligned::new(Arc::new(EspeakSpeech::detect(None).unwrap()), aligner);
    assert!(
        voice.model().ends_with("+ pocketsphinx 5.1.1"),
        "{}",
        voice.model()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::<capability::Narration>::new(RetryPolicy::default())
        .with_cache(Arc::new(ResultCache::new(dir.path())));
    chain.push(Arc::new(voice), 1);
    let request = SpeechRequest {
        sentences: vec![
            "Slow but steady wins the race.".into(),
            "The Hare, lying down by the wayside, fell fast asleep.".into(),
            "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do.".into(),
        ],
        voice: Voice {
            name: "en-us".into(),
            rate_wpm: 165,
            pitch: 50,
        },
        sentence_pause_s: 0.35,
    };
    let speech = chain.run(&request).await.unwrap().output;
    for (timed, text) in speech.sentences.iter().zip(&request.sentences) {
        let words: Vec<&str> = timed.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        assert!(timed.words.windows(2).all(|w| w[0].end <= w[1].start));
        assert!(
            timed.words.iter().all(|w| w.end - w.start > 0.04),
            "{timed:?}"
        );
        assert!(timed.words[0].start >= timed.start - 1e-6);
        assert!(timed.words.last().unwrap().end <= timed.end + 0.002);
        eprintln!("{timed:?}");
    }
    let gap_after = |sentence: usize, word: &str| {
        let w = &speech.sentences[sentence].words;
        let i = w.iter().position(|x| x.text == word).unwrap();
        w[i + 1].start - w[i].end
    };
    for (s, w) in [(1, "Hare,"), (1, "wayside,"), (2, "bank,")] {
        assert!(
            gap_after(s, w) > 0.08,
            "the pause after {w:?}: {}",
            gap_after(s, w)
        );
    }
    assert!(gap_after(2, "very") < 0.03, "no pause inside a phrase");
}

/// Aligning Piper's speech reproduces the word times Piper's own phoneme alignments give.
#[tokio::test]
async fn pocketsphinx_agrees_with_pipers_own_word_times() {
    use studio_providers::local::piper::PiperSpeech;
    let piper = PiperSpeech::detect(None, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/texts/aesop-fables-townsend.txt"),
    )
    .unwrap();
    // The Hare and the Tortoise, and the fables after it.
    let fable = &text[text.find("A HARE one day").unwrap()..];
    let sentences: Vec<String> = fable
        .split_inclusive(['.', '!', '?'])
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.split_whitespace().count() > 2)
        .take(8)
        .collect();
    let request = SpeechRequest {
        sentences,
        voice: Voice::default(),
        sentence_pause_s: 0.35,
    };
    let spoken = piper.synthesize(&request, dir.path()).await.unwrap().output;
    let mut untimed = spoken.clone();
    for s in &mut untimed.sentences {
        s.words.clear();
    }
    aligner().align(&mut untimed).await.unwrap();
    // Piper's words leave out the short gap between them, where PocketSphinx's words meet; so
    // the error of a boundary between two words is how far ours falls outside Piper's gap.
    let mut errors = Vec::new();
    for (theirs, ours) in spoken.sentences.iter().zip(&untimed.sentences) {
        if theirs.words.is_empty() {
            continue; // Piper could not time this one (quotation marks): nothing to compare
        }
        assert_eq!(theirs.words.len(), ours.words.len());
        for i in 1..ours.words.len() {
            let (gap_from, gap_to) = (theirs.words[i - 1].end, theirs.words[i].start);
            let boundary = ours.words[i].start;
            errors.push((gap_from - boundary).max(boundary - gap_to).max(0.0));
        }
    }
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    let p90 = errors[errors.len() * 9 / 10];
    eprintln!(
        "{} word boundaries: median {median:.3} s, 90th percentile {p90:.3} s, max {:.3} s from Piper's",
        errors.len(),
        errors.last().unwrap()
    );
    assert!(errors.len() > 30, "{} boundaries compared", errors.len());
    assert!(median < 0.03, "median boundary error {median} s");
    assert!(p90 < 0.08, "90th percentile boundary error {p90} s");
}

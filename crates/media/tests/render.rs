//! Acceptance tests of the render engine: real FFmpeg renders, checked with ffprobe/ffmpeg.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use studio_media::timeline::*;
use studio_media::{parse_timeline, render, MediaError, Stage};

fn report_of(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn every_preset_yields_its_size_rate_codecs_and_duration() {
    let fx = Fixture::new(&[ROCKET, SPEECH]);
    let cases: Vec<(Canvas, (u32, u32))> = vec![
        (Canvas::preset(AspectPreset::Landscape, 30), (1920, 1080)),
        (Canvas::preset(AspectPreset::Portrait, 30), (1080, 1920)),
        (Canvas::preset(AspectPreset::Square, 24), (1080, 1080)),
        (Canvas::preset(AspectPreset::Feed, 30), (1080, 1350)),
        (
            Canvas {
                preset: None,
                width: Some(640),
                height: Some(360),
                fps: 25,
            },
            (640, 360),
        ),
    ];
    for (i, (canvas, (w, h))) in cases.into_iter().enumerate() {
        let fps = canvas.fps;
        let mut first = scene(image(ROCKET), 1.0);
        first.motion = Motion::new(MotionEffect::ZoomIn);
        first.transition = Transition::new(TransitionKind::Crossfade, 0.3);
        let mut t = timeline(w, h, fps, vec![first, scene(color("#203040"), 0.8)]);
        t.canvas = canvas;
        t.audio.voice.push(AudioClip::at(SPEECH, 0.1));
        let name = format!("preset{i}");
        let report = render(&t, &fx.options(&name, "c")).await.unwrap();
        let expected_frames = (1.0 * fps as f64).round() as u64 + (0.8 * fps as f64).round() as u64
            - (0.3 * fps as f64).round() as u64;
        assert_eq!(report.frames, expected_frames);

        let probe = ffprobe(&fx.out(&name).join("final.mp4"));
        let v = stream(&probe, "video");
        assert_eq!(
            (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32
            ),
            (w, h),
            "{name}"
        );
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(v["profile"], "High");
        assert_eq!(v["pix_fmt"], "yuv420p");
        assert_eq!(v["color_primaries"], "bt709");
        assert_eq!(v["r_frame_rate"], format!("{fps}/1"));
        assert_eq!(
            v["nb_read_frames"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            expected_frames,
            "{name}"
        );
        let a = stream(&probe, "audio");
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(a["sample_rate"], "48000");
        let duration: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let expected = expected_frames as f64 / fps as f64;
        assert!(
            (duration - expected).abs() <= 1.0 / fps as f64,
            "{name}: duration {duration} vs {expected}"
        );
        // faststart puts the index before the media data.
        let bytes = std::fs::read(fx.out(&name).join("final.mp4")).unwrap();
        let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
        let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap();
        assert!(moov < mdat, "{name}: moov after mdat");
        let thumb = ffprobe(&fx.out(&name).join("thumbnail.jpg"));
        assert_eq!(stream(&thumb, "video")["codec_name"], "mjpeg");
        assert_eq!(stream(&thumb, "video")["width"].as_u64().unwrap() as u32, w);
    }
}

fn voice_and_music(width: u32, height: u32) -> Timeline {
    let mut t = timeline(
        width,
        height,
        30,
        vec![scene(image(COFFEE), 6.0), scene(color("#000000"), 6.0)],
    );
    t.audio.voice = vec![AudioClip::at(SPEECH, 3.0)];
    t.audio.music = Some(MusicBed::new(MUSIC));
    t
}

#[tokio::test]
async fn output_loudness_meets_the_target_and_true_peak_ceiling() {
    let fx = Fixture::new(&[COFFEE, SPEECH, MUSIC]);
    for target in [-14.0, -20.0] {
        let mut t = voice_and_music(320, 240);
        t.output.loudness_lufs = target;
        let name = format!("loud{}", -target as i32);
        render(&t, &fx.options(&name, "c")).await.unwrap();
        let (integrated, peak) = loudness(&fx.out(&name).join("final.mp4"));
        assert!(
            (integrated - target).abs() <= 1.0,
            "integrated {integrated} LUFS, target {target}"
        );
        assert!(peak <= -1.0, "true peak {peak} dBTP");
    }
}

fn power(samples: &[f32]) -> f64 {
    samples
        .iter()
        .map(|s| (*s as f64) * (*s as f64))
        .sum::<f64>()
        / samples.len().max(1) as f64
}

#[tokio::test]
async fn music_ducks_at_least_10_db_under_speech() {
    let fx = Fixture::new(&[COFFEE, SPEECH, MUSIC]);
    let both = voice_and_music(320, 240);
    let mut voice_only = both.clone();
    voice_only.audio.music = None;
    let mut music_only = both.clone();
    music_only.audio.voice.clear();
    let opts = fx.options("duck", "c");
    let mut mixes = Vec::new();
    for (name, t) in [
        ("both", &both),
        ("voice", &voice_only),
        ("music", &music_only),
    ] {
        let path = fx.dir.path().join(format!("{name}.wav"));
        std::fs::create_dir_all(&opts.cache_dir).unwrap();
        let inside = opts.cache_dir.join(format!("{name}.wav"));
        studio_media::mix_audio(t, &opts, &inside).await.unwrap();
        std::fs::rename(&inside, &path).unwrap();
        mixes.push(pcm(&path));
    }
    let (a, b, c) = (&mixes[0], &mixes[1], &mixes[2]);
    assert_eq!(a.len(), b.len());
    // The mix is a plain sum, so mix minus voice-only is the ducked music.
    let ducked: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let window = 48_000 / 10 * 2; // 100 ms of stereo samples
    let (mut under, mut alone, mut windows) = (0.0, 0.0, 0);
    for start in (0..b.len().saturating_sub(window)).step_by(window) {
        let range = start..start + window;
        let speech_db = 10.0 * power(&b[range.clone()]).log10();
        if speech_db > -35.0 {
            under += power(&ducked[range.clone()]);
            alone += power(&c[range]);
            windows += 1;
        }
    }
    assert!(windows > 30, "speech found in only {windows} windows");
    let reduction = 10.0 * (alone / under).log10();
    assert!(
        reduction >= 10.0,
        "music under speech is only {reduction:.1} dB quieter than alone"
    );
}

#[tokio::test]
async fn captions_are_written_in_order_with_their_times_and_burned_in() {
    let fx = Fixture::new(&[CAT]);
    let mut t = timeline(480, 270, 30, vec![scene(image(CAT), 4.0)]);
    t.captions.style.text.size = Some(36);
    t.captions.cues = vec![
        Cue {
            start: 0.25,
            end: 1.5,
            text: "The cat sat".into(),
            word_starts: Vec::new(),
        },
        Cue {
            start: 1.5,
            end: 2.75,
            text: "on the mat & <purred>".into(),
            word_starts: Vec::new(),
        },
        Cue {
            start: 3.0,
            end: 3.9,
            text: "The end".into(),
            word_starts: Vec::new(),
        },
    ];
    render(&t, &fx.options("burned", "c")).await.unwrap();
    let srt = std::fs::read_to_string(fx.out("burned").join("captions.srt")).unwrap();
    let blocks: Vec<Vec<&str>> = srt
        .trim()
        .split("\n\n")
        .map(|b| b.lines().collect())
        .collect();
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        blocks[0],
        ["1", "00:00:00,250 --> 00:00:01,500", "The cat sat"]
    );
    assert_eq!(
        blocks[1],
        [
            "2",
            "00:00:01,500 --> 00:00:02,750",
            "on the mat & <purred>"
        ]
    );
    assert_eq!(blocks[2], ["3", "00:00:03,000 --> 00:00:03,900", "The end"]);
    let vtt = std::fs::read_to_string(fx.out("burned").join("captions.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.250 --> 00:00:01.500\nThe cat sat\n\n00:00:01.500 --> 00:00:02.750\non the mat &amp; &lt;purred&gt;\n"), "{vtt}");

    t.captions.burn = false;
    render(&t, &fx.options("plain", "c")).await.unwrap();
    // Two lossy encodes differ by a level or so; burned text differs by far more.
    let burned = gray_frames(&fx.out("burned").join("final.mp4"), 480, 270);
    let plain = gray_frames(&fx.out("plain").join("final.mp4"), 480, 270);
    assert_eq!(burned.len(), plain.len());
    assert!(mad(&burned[3], &plain[3]) < 1.0, "no cue at 0.1 s");
    assert!(
        mad(&burned[30], &plain[30]) > 2.0,
        "cue at 1 s should be burned in"
    );
    assert!(mad(&burned[87], &plain[87]) < 1.0, "no cue at 2.9 s");
    assert!(
        mad(&burned[100], &plain[100]) > 1.0,
        "cue at 3.33 s should be burned in"
    );
}

/// Pixels of the frame at `t` seconds that are the karaoke yellow (#FFD400).
fn yellow_pixels(video: &std::path::Path, t: f64, width: u32, height: u32) -> usize {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{t:.3}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), (width * height * 3) as usize);
    out.stdout
        .chunks_exact(3)
        .filter(|p| p[0] > 200 && p[1] > 160 && p[1] < 240 && p[2] < 90)
        .count()
}

#[tokio::test]
async fn karaoke_captions_light_each_word_as_it_is_spoken() {
    let fx = Fixture::new(&[]);
    let mut t = timeline(480, 270, 30, vec![scene(color("#102040"), 4.0)]);
    t.captions.style.text.size = Some(40);
    t.captions.style.highlight = Some("#FFD400".into());
    t.captions.cues = vec![Cue {
        start: 0.5,
        end: 3.9,
        text: "one two three four".into(),
        word_starts: vec![0.5, 1.5, 2.5, 3.0],
    }];
    render(&t, &fx.options("karaoke", "k")).await.unwrap();
    let video = fx.out("karaoke").join("final.mp4");
    let lit: Vec<usize> = [0.2, 1.0, 2.0, 3.5]
        .iter()
        .map(|&at| yellow_pixels(&video, at, 480, 270))
        .collect();
    assert!(lit[0] < 20, "no cue yet: {lit:?}");
    assert!(lit[1] > 50, "the first word is lit: {lit:?}");
    assert!(
        lit[1] < lit[2] && lit[2] < lit[3],
        "more words lit as they are spoken: {lit:?}"
    );

    // The same cue without a highlight: white text, nothing yellow.
    t.captions.style.highlight = None;
    render(&t, &fx.options("plain", "k")).await.unwrap();
    let plain = yellow_pixels(&fx.out("plain").join("final.mp4"), 3.5, 480, 270);
    assert!(plain < 20, "{plain}");
}

fn ten_scenes(transition: TransitionKind) -> Timeline {
    let images = [ROCKET, CAT, COFFEE, ASTRONAUT];
    let motions = [
        MotionEffect::ZoomIn,
        MotionEffect::PanLeft,
        MotionEffect::ZoomOut,
        MotionEffect::PanDown,
    ];
    let scenes = (0..10)
        .map(|i| {
            let mut s = match i % 5 {
                4 => scene(
                    Visual::Gradient {
                        from: "#102040".into(),
                        to: "#F0A030".into(),
                        direction: GradientDirection::Diagonal,
                    },
                    0.6,
                ),
                3 => scene(
                    Visual::Title {
                        text: format!("Part {i}"),
                        background: Background::Color {
                            color: "#222222".into(),
                        },
                        style: TextStyle::default(),
                    },
                    0.6,
                ),
                _ => {
                    let mut s = scene(image(images[i % 4]), 0.6);
                    s.motion = Motion::new(motions[i % 4]);
                    s.fit = if i % 2 == 0 {
                        Fit::Cover
                    } else {
                        Fit::BlurFill
                    };
                    s
                }
            };
            if i < 9 {
                s.transition = Transition::new(
                    if i % 2 == 0 {
                        transition
                    } else {
                        TransitionKind::Cut
                    },
                    0.2,
                );
            }
            s
        })
        .collect();
    let mut t = timeline(320, 180, 30, scenes);
    t.captions.cues = vec![Cue {
        start: 0.1,
        end: 5.0,
        text: "A caption across many scenes".into(),
        word_starts: Vec::new(),
    }];
    t
}

#[tokio::test]
async fn editing_one_scene_re_encodes_only_its_segment_and_matches_a_clean_render() {
    let fx = Fixture::new(&[ROCKET, CAT, COFFEE, ASTRONAUT]);
    let original = ten_scenes(TransitionKind::Fade);
    let first = render(&original, &fx.options("first", "shared"))
        .await
        .unwrap();
    assert_eq!(first.segments.len(), 10);
    assert_eq!(first.segments_rendered, 10);

    let mut edited = original.clone();
    edited.scenes[5].motion = Motion::new(MotionEffect::PanUp);
    let again = render(&edited, &fx.options("edited", "shared"))
        .await
        .unwrap();
    let rendered: Vec<&Vec<usize>> = again
        .segments
        .iter()
        .filter(|s| !s.cached)
        .map(|s| &s.scenes)
        .collect();
    assert_eq!(rendered, [&vec![5]], "only scene 5 should be re-encoded");
    assert_eq!(again.segments_cached, 9);
    let report = report_of(&fx.out("edited"));
    assert_eq!(report["segments_rendered"], 1);
    assert_eq!(report["segments"][5]["cached"], false);
    assert_eq!(report["segments"][4]["cached"], true);

    let clean = render(&edited, &fx.options("clean", "fresh"))
        .await
        .unwrap();
    assert_eq!(clean.segments_rendered, 10);
    let a = frame_hashes(&fx.out("edited").join("final.mp4"));
    let b = frame_hashes(&fx.out("clean").join("final.mp4"));
    assert_eq!(a.len() as u64, clean.frames);
    assert_eq!(a, b, "incremental and clean renders differ");
    assert_ne!(a, frame_hashes(&fx.out("first").join("final.mp4")));
}

#[tokio::test]
async fn with_crossfades_an_edit_re_encodes_the_scene_and_its_two_transitions() {
    let fx = Fixture::new(&[ROCKET, CAT, COFFEE, ASTRONAUT]);
    let mut original = ten_scenes(TransitionKind::Crossfade);
    original.captions.cues[0].end = 4.0;
    for s in original.scenes.iter_mut().take(9) {
        s.transition = Transition::new(TransitionKind::Crossfade, 0.2);
    }
    let first = render(&original, &fx.options("first", "shared"))
        .await
        .unwrap();
    assert_eq!(first.segments.len(), 19);
    let mut edited = original.clone();
    edited.scenes[4].visual = Visual::Gradient {
        from: "#000000".into(),
        to: "#FFFFFF".into(),
        direction: GradientDirection::Horizontal,
    };
    let again = render(&edited, &fx.options("edited", "shared"))
        .await
        .unwrap();
    let rendered: Vec<Vec<usize>> = again
        .segments
        .iter()
        .filter(|s| !s.cached)
        .map(|s| s.scenes.clone())
        .collect();
    assert_eq!(rendered, vec![vec![3, 4], vec![4], vec![4, 5]]);
    let clean = render(&edited, &fx.options("clean", "fresh"))
        .await
        .unwrap();
    assert_eq!(clean.frames, again.frames);
    assert_eq!(
        frame_hashes(&fx.out("edited").join("final.mp4")),
        frame_hashes(&fx.out("clean").join("final.mp4"))
    );
}

#[tokio::test]
async fn rendering_twice_gives_identical_frames() {
    let fx = Fixture::new(&[ROCKET, CAT, COFFEE, ASTRONAUT, SPEECH, MUSIC]);
    let mut t = ten_scenes(TransitionKind::WipeLeft);
    t.audio.voice.push(AudioClip::at(SPEECH, 0.5));
    t.overlays.push(Overlay::Image {
        path: ASTRONAUT.into(),
        position: Position {
            anchor: Anchor::TopRight,
            margin_x: 8,
            margin_y: 8,
        },
        width: Some(40),
        opacity: 0.7,
        start: 0.0,
        end: None,
    });
    t.overlays.push(Overlay::Text {
        text: "Studio".into(),
        style: TextStyle {
            size: Some(18),
            ..TextStyle::default()
        },
        position: Position {
            anchor: Anchor::BottomLeft,
            margin_x: 8,
            margin_y: 8,
        },
        start: 1.0,
        end: Some(4.0),
    });
    render(&t, &fx.options("one", "a")).await.unwrap();
    render(&t, &fx.options("two", "b")).await.unwrap();
    let one = frame_hashes(&fx.out("one").join("final.mp4"));
    assert!(one.len() > 100);
    assert_eq!(one, frame_hashes(&fx.out("two").join("final.mp4")));
}

/// Renders `t` expecting failure; checks nothing was published and no frame was encoded.
async fn expect_rejected(fx: &Fixture, name: &str, t: &Timeline, needles: &[&str]) {
    let opts = fx.options(name, name);
    let err = render(t, &opts).await.expect_err("render should fail");
    let text = err.to_string();
    for needle in needles {
        assert!(
            text.contains(needle),
            "error for {name} lacks {needle:?}: {text}"
        );
    }
    let published: Vec<String> = files_under(&fx.out(name))
        .into_iter()
        .filter(|f| !f.starts_with(".cache"))
        .collect();
    assert!(published.is_empty(), "{name} left {published:?}");
    let segments = files_under(&opts.cache_dir.join("segments"));
    assert!(
        segments.is_empty(),
        "{name} encoded {segments:?} before failing"
    );
}

#[tokio::test]
async fn bad_inputs_fail_fast_with_errors_naming_the_input() {
    let fx = Fixture::new(&[ROCKET]);
    let base = |visual: Visual| {
        timeline(
            320,
            180,
            30,
            vec![scene(image(ROCKET), 0.5), scene(visual, 0.5)],
        )
    };

    std::fs::write(
        fx.input.join("movie.mp4"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n",
    )
    .unwrap();
    let clip = Visual::Video {
        path: "movie.mp4".into(),
        source_start: 0.0,
        source_end: None,
        fill: ClipFill::Freeze,
    };
    expect_rejected(
        &fx,
        "hls",
        &base(clip),
        &["$.scenes[1].visual.path", "movie.mp4", "playlist"],
    )
    .await;

    std::fs::write(
        fx.input.join("list.mp4"),
        "ffconcat version 1.0\nfile '/etc/passwd'\n",
    )
    .unwrap();
    let clip = Visual::Video {
        path: "list.mp4".into(),
        source_start: 0.0,
        source_end: None,
        fill: ClipFill::Freeze,
    };
    expect_rejected(&fx, "concat", &base(clip), &["list.mp4", "concat list"]).await;
    std::fs::write(
        fx.dir.path().join("outside.png"),
        std::fs::read(fx.input.join(ROCKET)).unwrap(),
    )
    .unwrap();
    expect_rejected(
        &fx,
        "outside",
        &base(image("../outside.png")),
        &["outside.png", "outside the folders"],
    )
    .await;

    expect_rejected(
        &fx,
        "missing",
        &base(image("images/nope.png")),
        &["images/nope.png", "does not exist"],
    )
    .await;

    std::fs::write(
        fx.input.join("notes.png"),
        "these are my notes, not a picture",
    )
    .unwrap();
    expect_rejected(
        &fx,
        "text",
        &base(image("notes.png")),
        &["notes.png", "not a supported image"],
    )
    .await;

    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend(std::iter::repeat_n(0x42u8, 300));
    std::fs::write(fx.input.join("broken.png"), broken).unwrap();
    expect_rejected(
        &fx,
        "broken",
        &base(image("broken.png")),
        &["broken.png", "cannot be decoded"],
    )
    .await;

    // A speech recording used as a picture names the slot and the file.
    std::fs::create_dir_all(fx.input.join("audio")).unwrap();
    std::fs::copy(data_dir().join(SPEECH), fx.input.join(SPEECH)).unwrap();
    expect_rejected(
        &fx,
        "wrongkind",
        &base(image(SPEECH)),
        &["$.scenes[1].visual.path", "Ogg audio", "still image"],
    )
    .await;

    // All problems at once: two bad inputs and one bad value.
    let mut many = base(image("images/nope.png"));
    many.scenes[0].visual = image("notes.png");
    many.output.thumbnail.scene = 0;
    let err = render(&many, &fx.options("many", "many"))
        .await
        .unwrap_err();
    match err {
        MediaError::Invalid(problems) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("expected every problem at once, got {other}"),
    }
}

#[test]
fn invalid_timeline_json_names_the_path() {
    let err = parse_timeline(r##"{"version": 1, "canvas": {"preset": "9:16"}, "scenes": [{"duration": 2, "visual": {"kind": "color", "color": "#000000"}}, {"duration": "long"}]}"##).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("$.scenes[1].duration"), "{text}");
    let err = parse_timeline(r#"{"version": 1, "canvas": {"preset": "21:9"}, "scenes": []}"#)
        .unwrap_err();
    assert!(err.to_string().contains("$.canvas.preset"), "{err}");
    let err = parse_timeline(
        r#"{"version": 1, "canvas": {"preset": "9:16"}, "scenes": [], "colour": 1}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    assert!(parse_timeline("{").is_err());
}

#[tokio::test]
async fn cancelling_kills_ffmpeg_and_publishes_nothing() {
    let fx = Fixture::new(&[ROCKET]);
    let mut s = scene(image(ROCKET), 30.0);
    s.motion = Motion::new(MotionEffect::ZoomIn);
    let t = timeline(1920, 1080, 30, vec![s]);
    let mut opts = fx.options("cancel", "c");
    let cancel = opts.cancel.clone();
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    opts.progress = Some(Arc::new(move |p| {
        if p.stage == Stage::Segments && p.frames_done > 0 {
            flag.store(true, Ordering::SeqCst);
        }
    }));
    let task = tokio::spawn(async move { render(&t, &opts).await });
    for _ in 0..600 {
        if started.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.load(Ordering::SeqCst), "encoding never started");
    cancel.cancel();
    let result = task.await.unwrap();
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published: Vec<String> = files_under(&fx.out("cancel"))
        .into_iter()
        .filter(|f| !f.starts_with(".cache/fonts"))
        .collect();
    assert!(
        published
            .iter()
            .all(|f| !f.ends_with("final.mp4") && !f.contains("partial")),
        "{published:?}"
    );
    let cache = fx.dir.path().join("cache/c");
    let leftover = files_under(&cache.join("segments"));
    assert!(leftover.is_empty(), "{leftover:?}");
    assert!(files_under(&cache.join("tmp")).is_empty());
    // No FFmpeg still running on this render's folders.
    let marker = cache.canonicalize().unwrap().display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            assert!(
                !(cmdline.contains("ffmpeg") && cmdline.contains(&marker)),
                "ffmpeg still running: {cmdline}"
            );
        }
    }

    let mut s = scene(image(ROCKET), 30.0);
    s.motion = Motion::new(MotionEffect::ZoomOut);
    let t = timeline(1920, 1080, 30, vec![s]);
    let mut opts = fx.options("timeout", "t");
    opts.timeout = Some(Duration::from_millis(1500));
    assert!(matches!(
        render(&t, &opts).await,
        Err(MediaError::TimedOut(_))
    ));
    assert!(!fx.out("timeout").join("final.mp4").exists());
}

#[tokio::test]
async fn a_size_cap_raises_crf_until_the_file_fits() {
    let fx = Fixture::new(&[ROCKET, COFFEE]);
    let mut a = scene(image(ROCKET), 2.0);
    a.motion = Motion::new(MotionEffect::ZoomIn);
    let mut b = scene(image(COFFEE), 2.0);
    b.motion = Motion::new(MotionEffect::PanRight);
    let mut t = timeline(640, 360, 30, vec![a, b]);
    t.output.crf = 14;
    let free = render(&t, &fx.options("free", "c")).await.unwrap();
    let cap = free.bytes * 6 / 10;
    t.output.max_bytes = Some(cap);
    let capped = render(&t, &fx.options("capped", "c")).await.unwrap();
    assert!(capped.crf > 14, "crf stayed {}", capped.crf);
    let size = std::fs::metadata(fx.out("capped").join("final.mp4"))
        .unwrap()
        .len();
    assert!(size <= cap, "{size} > {cap}");
    assert_eq!(size, capped.bytes);
    assert!(capped.size_attempts.len() >= 2);

    t.output.max_bytes = Some(2_000);
    let err = render(&t, &fx.options("tiny", "c")).await.unwrap_err();
    assert!(matches!(err, MediaError::TooLarge { .. }), "{err}");
    assert!(!fx.out("tiny").join("final.mp4").exists());
}

#[tokio::test]
async fn video_clips_trim_freeze_and_loop_to_fill_their_scene() {
    let fx = Fixture::new(&[]);
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-y",
        ])
        .arg(fx.input.join("clip.mp4"))
        .status()
        .unwrap();
    assert!(status.success());
    let clip = |fill, start: f64| Visual::Video {
        path: "clip.mp4".into(),
        source_start: start,
        source_end: Some(0.8),
        fill,
    };
    let mut t = timeline(
        320,
        180,
        30,
        vec![
            scene(clip(ClipFill::Freeze, 0.0), 2.0),
            scene(clip(ClipFill::Loop, 0.2), 2.5),
        ],
    );
    t.scenes[0].fit = Fit::Contain;
    t.scenes[1].fit = Fit::BlurFill;
    let report = render(&t, &fx.options("clips", "c")).await.unwrap();
    assert_eq!(report.frames, 135);
    let frames = gray_frames(&fx.out("clips").join("final.mp4"), 320, 180);
    assert_eq!(frames.len(), 135);
    // Freeze: after the clip's 0.8 s (24 frames) the picture holds; before, it moves.
    assert!(mad(&frames[40], &frames[59]) < 1.0);
    assert!(mad(&frames[0], &frames[20]) > 3.0);
    // Loop: the 0.6 s range (18 frames) repeats.
    assert!(mad(&frames[60 + 2], &frames[60 + 18 + 2]) < 1.5);
    assert!(mad(&frames[60 + 2], &frames[60 + 9]) > 3.0);
}

#[tokio::test]
async fn ken_burns_moves_every_frame_without_stalls() {
    let fx = Fixture::new(&[ASTRONAUT]);
    let mut s = scene(image(ASTRONAUT), 3.0);
    s.motion = Motion {
        effect: MotionEffect::ZoomIn,
        zoom: 1.15,
        easing: Easing::Linear,
    };
    let mut t = timeline(320, 320, 30, vec![s]);
    t.output.crf = 1;
    render(&t, &fx.options("kb", "c")).await.unwrap();
    let frames = gray_frames(&fx.out("kb").join("final.mp4"), 320, 320);
    assert_eq!(frames.len(), 90);
    let change: Vec<f64> = frames.windows(2).map(|w| mad(&w[0], &w[1])).collect();
    let mut sorted = change.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2];
    // A linear zoom changes every frame by a similar amount: no frame stalls (whole-pixel
    // rounding) and none jumps to catch up.
    assert!(sorted[0] > 0.4 * median, "a frame barely moved: {change:?}");
    assert!(
        sorted[sorted.len() - 1] < 2.0 * median,
        "a frame jumped: {change:?}"
    );
}

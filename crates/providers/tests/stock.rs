//! `pexels` and `pixabay` against fakes of their search APIs (`studio_testkit::stock`): the
//! scene's first three terms searched in the canvas's orientation with the key where each
//! library wants it, the photo closest to the canvas's shape downloaded and checked, the
//! photographer credited as each library asks; no match falls back to the next provider; a bad
//! key is named without ever showing the key.

use studio_providers::*;
use studio_testkit::openai_images::picture_colour;
use studio_testkit::stock::{photographer, FakePexels, FakePixabay, PEXELS_KEY, PIXABAY_KEY};

const PEXELS_ENV: &str = "STUDIO_TEST_PEXELS_KEY";
const PIXABAY_ENV: &str = "STUDIO_TEST_PIXABAY_KEY";

fn providers(kind: &str, base_url: &str, env: &str) -> Providers {
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 1 }}
        [[image]]
        kind = "{kind}"
        base_url = "{base_url}"
        api_key_env = "{env}"
        [[image]]
        kind = "card"
        "#
    ))
    .unwrap();
    settings.build(None).unwrap()
}

fn request(terms: &[&str], width: u32, height: u32) -> ImageRequest {
    ImageRequest {
        terms: terms.iter().map(|t| (*t).to_owned()).collect(),
        caption: "The race".into(),
        width,
        height,
        seed: 1,
        palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
        prompt: "Watercolour. A hare.".into(),
        negative_prompt: String::new(),
        project_seed: 5,
    }
}

fn first_pixel(path: &std::path::Path) -> [u8; 3] {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    [buf[0], buf[1], buf[2]]
}

#[tokio::test]
async fn pexels_finds_a_photo_in_the_canvas_shape_and_credits_the_photographer() {
    std::env::set_var(PEXELS_ENV, PEXELS_KEY);
    let fake = FakePexels::start().await;
    let p = providers("pexels", &fake.base_url(), PEXELS_ENV);
    let got = p
        .image
        .run(&request(&["hare", "meadow", "race", "sun"], 1080, 1920))
        .await
        .unwrap();
    let searches = fake.searches().await;
    assert_eq!(searches.len(), 1);
    assert_eq!(searches[0]["query"], "hare meadow race");
    assert_eq!(searches[0]["orientation"], "portrait");
    assert_eq!(got.provenance.provider, "pexels");
    assert_eq!(got.provenance.cost_micro_usd, 0);
    let image = &got.output;
    assert_eq!(
        (image.width, image.height),
        (1253, 1880),
        "the portrait photo"
    );
    assert_eq!(first_pixel(&image.path), picture_colour("hare meadow race"));
    assert_eq!(
        image.credit.as_deref(),
        Some(format!("Photo by {} on Pexels", photographer(2)).as_str())
    );
    assert_eq!(
        image.source,
        ImageSource::Stock {
            library: "pexels".into(),
            id: "1000002".into(),
            page: "https://www.pexels.com/photo/1000002/".into(),
            photographer: photographer(2),
        }
    );
    // Nothing found: the next provider draws the scene, saying why.
    let none = p.image.run(&request(&["zzz"], 1920, 1080)).await.unwrap();
    assert_eq!(none.provenance.provider, "card");
    assert!(none.provenance.skipped[0]
        .reason
        .contains("pexels has no photo for \"zzz\""));
}

#[tokio::test]
async fn pixabay_takes_its_key_in_the_query_and_never_shows_it() {
    std::env::set_var(PIXABAY_ENV, PIXABAY_KEY);
    let fake = FakePixabay::start().await;
    let p = providers("pixabay", &fake.base_url(), PIXABAY_ENV);
    let got = p
        .image
        .run(&request(&["lion", "mouse"], 1920, 1080))
        .await
        .unwrap();
    let searches = fake.searches().await;
    assert_eq!(searches[0]["key"], PIXABAY_KEY);
    assert_eq!(searches[0]["q"], "lion mouse");
    assert_eq!(searches[0]["orientation"], "horizontal");
    assert_eq!(searches[0]["image_type"], "photo");
    assert_eq!(searches[0]["safesearch"], "true");
    assert_eq!((got.output.width, got.output.height), (1880, 1253));
    assert_eq!(
        got.output.credit.as_deref(),
        Some(format!("Image by {} from Pixabay", photographer(1)).as_str())
    );

    // A wrong key: the provider is skipped naming the variable, and the key appears nowhere.
    std::env::set_var("STUDIO_TEST_PIXABAY_BAD", "wrong-secret-key");
    let bad = providers("pixabay", &fake.base_url(), "STUDIO_TEST_PIXABAY_BAD");
    let got = bad
        .image
        .run(&request(&["lion"], 1920, 1080))
        .await
        .unwrap();
    assert_eq!(got.provenance.provider, "card");
    let skipped = &got.provenance.skipped[0];
    assert_eq!(skipped.kind, ErrorKind::Unavailable);
    assert!(
        skipped.reason.contains("Invalid or missing API key"),
        "{}",
        skipped.reason
    );
    assert!(
        skipped.reason.contains("set STUDIO_TEST_PIXABAY_BAD"),
        "{}",
        skipped.reason
    );
    assert!(!skipped.reason.contains("wrong-secret-key"));
    // Unreachable: the error names the server, not the URL with the key.
    drop(fake);
    let gone = bad.image.run(&request(&["owl"], 1920, 1080)).await.unwrap();
    assert!(!format!("{:?}", gone.provenance.skipped).contains("wrong-secret-key"));
}

fn clip_request(terms: &[&str], width: u32, height: u32, seconds: f64) -> ClipRequest {
    ClipRequest {
        prompt: "Slow pan.".into(),
        negative_prompt: String::new(),
        image_sha256: None,
        image: None,
        duration_s: seconds,
        width,
        height,
        seed: 0,
        terms: terms.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn clip_providers(kind: &str, base_url: &str, env: &str) -> Providers {
    let settings: ProvidersSettings = toml::from_str(&format!(
        "[[clip]]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\napi_key_env = \"{env}\"\n"
    ))
    .unwrap();
    settings.build(None).unwrap()
}

#[tokio::test]
async fn stock_videos_stand_in_for_stills_with_their_authors_credited() {
    use studio_testkit::replicate::clip_colour;
    std::env::set_var(PEXELS_ENV, PEXELS_KEY);
    std::env::set_var(PIXABAY_ENV, PIXABAY_KEY);
    let pexels = FakePexels::start().await;
    let p = clip_providers("pexels", &pexels.base_url(), PEXELS_ENV);
    let got = p
        .clip
        .run(&clip_request(
            &["bees", "honey", "hive", "sun"],
            1080,
            1920,
            8.0,
        ))
        .await
        .unwrap();
    let asked: Vec<_> = pexels
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/videos/search")
        .collect();
    assert_eq!(asked.len(), 1);
    let query: std::collections::HashMap<_, _> = asked[0].url.query_pairs().into_owned().collect();
    assert_eq!(query["query"], "bees honey hive");
    assert_eq!(query["orientation"], "portrait");
    // The widest MP4 within the canvas: 1280 × 1920 of the portrait video.
    let downloaded: Vec<String> = pexels
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .filter(|p| p.ends_with(".mp4"))
        .collect();
    assert_eq!(downloaded, ["/files/bees%20honey%20hive/v2-1280.mp4"]);
    let clip = &got.output;
    assert_eq!(
        clip.credit.as_deref(),
        Some("Video by Kenji Sato on Pexels")
    );
    assert!((clip.duration_s - 12.0).abs() < 0.2);
    assert_eq!(got.provenance.cost_micro_usd, 0);
    let frame = studio_testkit::media::centre_colour(&clip.path, 6.0, 16);
    assert!(
        studio_testkit::media::colour_distance(frame, clip_colour("bees honey hive")) <= 16,
        "{frame:?}"
    );

    let pixabay = FakePixabay::start().await;
    let p = clip_providers("pixabay", &pixabay.base_url(), PIXABAY_ENV);
    let got = p
        .clip
        .run(&clip_request(&["lion"], 1920, 1080, 5.0))
        .await
        .unwrap();
    assert_eq!(
        got.output.credit.as_deref(),
        Some("Video by Ana Lima from Pixabay")
    );
    // Nothing found: the chain has nothing else, and says why.
    let none = p
        .clip
        .run(&clip_request(&["zzz"], 1920, 1080, 5.0))
        .await
        .unwrap_err();
    assert!(
        none.to_string()
            .contains("pixabay has no video for \"zzz\""),
        "{none}"
    );
}

//! The provider requests of each step, built from a [`VideoRequest`] and the plan. The graph's
//! steps ([`crate::graph`]) build their requests here, so a step asks for the same thing (and
//! hits the same cache entry) whichever executor runs it.

use studio_providers::{
    Image, ImageRequest, MusicRequest, Pace, PlanRequest, ScenePlan, SpeechRequest,
};

use crate::request::{VideoRequest, ESPEAK_SECONDS_PER_LETTER_WPM};

/// The planning request: scene length from the style, pace from the voice's words per minute
/// and `seconds_per_letter_wpm`, the narrating voice's measured pace
/// ([`studio_providers::Chain::seconds_per_letter_wpm`]; espeak-ng's when `None`).
pub fn plan_request(
    request: &VideoRequest,
    target_narration: Option<f64>,
    seconds_per_letter_wpm: Option<f64>,
) -> PlanRequest {
    let per_letter = seconds_per_letter_wpm.unwrap_or(ESPEAK_SECONDS_PER_LETTER_WPM);
    PlanRequest {
        source: request.source.clone(),
        target_seconds: target_narration,
        scene_seconds: request.style.scenes.seconds,
        pace: Pace {
            seconds_per_char: per_letter / request.voice.rate_wpm.max(1) as f64,
            sentence_pause_s: request.sentence_pause_s,
        },
    }
}

/// The seed of the title's pictures and music: the request's seed mixed with a hash of the
/// title, so two stories with one seed still look different.
pub fn title_seed(request: &VideoRequest, plan: &ScenePlan) -> u64 {
    let hash = studio_providers::sha256_hex(plan.title.as_bytes());
    u64::from_str_radix(&hash[..16], 16).unwrap_or(0) ^ request.seed
}

/// Narration of `sentences` in the request's voice.
pub fn speech_request(request: &VideoRequest, sentences: Vec<String>) -> SpeechRequest {
    SpeechRequest {
        sentences,
        voice: request.voice.clone(),
        sentence_pause_s: request.sentence_pause_s,
    }
}

/// The picture for scene `index` (0-based) at canvas size in the style's palette.
pub fn image_request(request: &VideoRequest, plan: &ScenePlan, index: usize) -> ImageRequest {
    let (width, height) = request.aspect.size();
    let scene = &plan.scenes[index];
    let mut palette: Vec<String> = request.style.palette.background.to_vec();
    palette.extend(request.style.palette.accents.iter().cloned());
    ImageRequest {
        terms: scene.search_terms.clone(),
        caption: scene.heading.clone(),
        width,
        height,
        seed: title_seed(request, plan)
            .wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        palette,
    }
}

/// A music bed in the mood the planner chose ([`ScenePlan::music_mood`], a language model's
/// reading of the story) or else the style's, long enough for `narration_s` of narration plus the title
/// and end cards and 2 s to spare.
pub fn music_request(request: &VideoRequest, plan: &ScenePlan, narration_s: f64) -> MusicRequest {
    let style = &request.style;
    let fixed = style.scenes.intro_seconds + style.scenes.outro_seconds;
    MusicRequest {
        mood: plan
            .music_mood
            .clone()
            .unwrap_or_else(|| style.music.mood.clone()),
        duration_s: (narration_s + fixed + 2.0).ceil(),
        seed: title_seed(request, plan),
    }
}

/// The end card's credit line for a picture whose licence asks for one (CC-BY).
pub fn picture_credit(image: &Image) -> Option<String> {
    image.credit.as_ref().map(|c| format!("Picture: {c}"))
}

/// The end card's credit lines: the music's first, then each picture's, once each.
pub fn credit_lines(images: &[Image], music_credit: Option<&str>) -> Vec<String> {
    let mut lines: Vec<String> = music_credit
        .map(|c| format!("Music: {c}"))
        .into_iter()
        .collect();
    for line in images.iter().filter_map(picture_credit) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

//! The provider requests of each step, built from a [`VideoRequest`] and the plan. The graph's
//! steps ([`crate::graph`]) build their requests here, so a step asks for the same thing (and
//! hits the same cache entry) whichever executor runs it.

use studio_providers::{
    ClipRequest, Image, ImageRequest, MusicRequest, Pace, PlanRequest, ScenePlan, SpeechRequest,
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

/// The picture for scene `index` (0-based) at canvas size in the style's palette, with the
/// prompt a picture model gets ([`image_prompt`]) and the video's seed.
pub fn image_request(request: &VideoRequest, plan: &ScenePlan, index: usize) -> ImageRequest {
    let (width, height) = request.aspect.size();
    let scene = &plan.scenes[index];
    let mut palette: Vec<String> = request.style.palette.background.to_vec();
    palette.extend(request.style.palette.accents.iter().cloned());
    let project_seed = title_seed(request, plan);
    ImageRequest {
        terms: scene.search_terms.clone(),
        caption: scene.heading.clone(),
        width,
        height,
        seed: project_seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        palette,
        prompt: image_prompt(request, plan, index),
        negative_prompt: request.style.pictures.negative_prompt.clone(),
        project_seed,
    }
}

/// The prompt of scene `index`'s picture: the style's prefix, what the scene shows (the
/// planner's visual description, else its heading and search terms), then each character in
/// the scene with the description the plan fixed for it, the same words in every scene.
pub fn image_prompt(request: &VideoRequest, plan: &ScenePlan, index: usize) -> String {
    let scene = &plan.scenes[index];
    let mut parts: Vec<String> = Vec::new();
    let prefix = request.style.pictures.prompt_prefix.trim();
    if !prefix.is_empty() {
        parts.push(prefix.trim_end_matches('.').to_owned());
    }
    let shows = match scene.visual.as_deref().map(str::trim) {
        Some(visual) if !visual.is_empty() => visual.trim_end_matches('.').to_owned(),
        _ if scene.search_terms.is_empty() => scene.heading.clone(),
        _ => format!("{}: {}", scene.heading, scene.search_terms.join(", ")),
    };
    parts.push(shows);
    for name in &scene.characters {
        if let Some(c) = plan.characters.iter().find(|c| &c.name == name) {
            parts.push(format!(
                "{} is {}",
                c.name,
                c.description.trim().trim_end_matches('.')
            ));
        }
    }
    parts.push("No text or lettering in the picture".to_owned());
    let mut prompt = parts.join(". ");
    prompt.push('.');
    prompt
}

/// The clip of scene `index` (0-based): its picture `image` set in motion for the scene's
/// `narration_s` seconds, with the motion prompt ([`clip_prompt`]), the style's negative prompt
/// and the video's seed. The still is named by its SHA-256 (the cache key) and by its path.
///
/// Errors: the picture's file cannot be read.
pub fn clip_request(
    request: &VideoRequest,
    plan: &ScenePlan,
    index: usize,
    image: &Image,
    narration_s: f64,
) -> std::io::Result<ClipRequest> {
    let (width, height) = request.aspect.size();
    let still = std::fs::read(&image.path)?;
    Ok(ClipRequest {
        prompt: clip_prompt(request, plan, index),
        negative_prompt: request.style.pictures.negative_prompt.clone(),
        image_sha256: Some(studio_providers::sha256_hex(&still)),
        image: Some(image.path.clone()),
        duration_s: narration_s,
        width,
        height,
        seed: title_seed(request, plan),
        terms: plan.scenes[index].search_terms.clone(),
    })
}

/// The motion prompt of scene `index`'s clip: the style's motion prefix and what the scene
/// shows (the planner's visual description, else its heading). The still already fixes how the
/// characters look.
pub fn clip_prompt(request: &VideoRequest, plan: &ScenePlan, index: usize) -> String {
    let scene = &plan.scenes[index];
    let mut parts: Vec<String> = Vec::new();
    let prefix = request.style.pictures.motion_prefix.trim();
    if !prefix.is_empty() {
        parts.push(prefix.trim_end_matches('.').to_owned());
    }
    let shows = match scene.visual.as_deref().map(str::trim) {
        Some(visual) if !visual.is_empty() => visual,
        _ => scene.heading.trim(),
    };
    if !shows.is_empty() {
        parts.push(shows.trim_end_matches('.').to_owned());
    }
    let mut prompt = parts.join(". ");
    prompt.push('.');
    prompt
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

#[cfg(test)]
mod tests {
    use super::*;
    use studio_providers::{Character, PlanSource, PlannedScene};

    fn plan() -> ScenePlan {
        let scene = |visual: Option<&str>, characters: &[&str]| PlannedScene {
            sentences: vec!["The hare ran.".into()],
            heading: "The race".into(),
            search_terms: vec!["hare".into(), "meadow".into()],
            visual: visual.map(str::to_owned),
            characters: characters.iter().map(|c| (*c).to_owned()).collect(),
        };
        ScenePlan {
            title: "The Hare and the Tortoise".into(),
            subtitle: None,
            moral: None,
            sections: vec![],
            sentences_total: 2,
            sentences_kept: 2,
            estimated_seconds: 4.0,
            scenes: vec![
                scene(
                    Some("A hare dashes across a meadow."),
                    &["Hare", "Tortoise"],
                ),
                scene(None, &["Tortoise"]),
            ],
            characters: vec![
                Character {
                    name: "Hare".into(),
                    description: "a lanky brown hare with a red scarf.".into(),
                },
                Character {
                    name: "Tortoise".into(),
                    description: "an old green tortoise wearing round spectacles".into(),
                },
            ],
            music_mood: None,
        }
    }

    /// Every picture prompt carries the style's prefix and each character's fixed description
    /// word for word; every picture of a video gets the same project seed (issue 14).
    #[test]
    fn picture_prompts_repeat_the_style_and_the_characters_and_share_one_seed() {
        let request = VideoRequest::new(PlanSource::Text {
            text: "The hare ran.".into(),
            section: None,
        });
        let plan = plan();
        let first = image_request(&request, &plan, 0);
        let second = image_request(&request, &plan, 1);
        let prefix = &request.style.pictures.prompt_prefix;
        assert!(!prefix.is_empty());
        assert_eq!(
            first.prompt,
            format!(
                "{prefix}. A hare dashes across a meadow. Hare is a lanky brown hare with a red \
                 scarf. Tortoise is an old green tortoise wearing round spectacles. No text or \
                 lettering in the picture."
            )
        );
        assert!(second
            .prompt
            .starts_with(&format!("{prefix}. The race: hare, meadow. ")));
        assert!(second
            .prompt
            .contains("Tortoise is an old green tortoise wearing round spectacles."));
        assert!(!second.prompt.contains("Hare is"));
        assert_eq!(first.project_seed, second.project_seed);
        assert_ne!(first.seed, second.seed, "cards still differ scene by scene");
        assert_eq!(
            first.negative_prompt,
            request.style.pictures.negative_prompt
        );
    }
}

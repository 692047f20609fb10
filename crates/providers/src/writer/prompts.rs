//! The prompts, answer schemas and answer checks of [`super::LlmWriter`].

use serde::Deserialize;
use serde_json::{json, Value};

use crate::local::music::MOODS;
use crate::local::planner::Outline;
use crate::types::*;

pub(super) const SCRIPT_SYSTEM: &str =
    "You write narration for short narrated videos. Write plain spoken \
prose: complete sentences, no headings, no lists, no stage directions, no emoji. Answer with JSON \
only, following the schema.";

pub(super) const PLAN_SYSTEM: &str =
    "You are a film director planning a narrated video. You are given the \
narration as numbered sentences. Group them into scenes, in order, by sentence number; never \
change, add or reorder sentences. For each scene give a short on-screen heading, a visual \
description usable as an image prompt (what is seen, not what is said), and the characters in \
view. Describe each recurring character once, visually, so every picture draws them the same way. \
Answer with JSON only, following the schema.";

#[derive(Debug, Deserialize)]
pub(super) struct Script {
    pub(super) title: String,
    pub(super) paragraphs: Vec<String>,
}

pub(super) fn script_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "the video's title, at most 8 words"},
            "paragraphs": {"type": "array", "items": {"type": "string"}, "description": "the narration, paragraph by paragraph"}
        },
        "required": ["title", "paragraphs"],
        "additionalProperties": false
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct ChunkPlan {
    pub(super) scenes: Vec<ChunkScene>,
    pub(super) new_characters: Vec<Character>,
    pub(super) plot_so_far: String,
    pub(super) music_mood: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChunkScene {
    pub(super) sentences: Vec<i64>,
    pub(super) heading: String,
    pub(super) visual: String,
    pub(super) characters: Vec<String>,
}

pub(super) fn plan_schema() -> Value {
    let moods: Vec<&str> = MOODS.iter().map(|m| m.name).collect();
    json!({
        "type": "object",
        "properties": {
            "scenes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sentences": {"type": "array", "items": {"type": "integer"}, "description": "numbers of the sentences narrated in this scene, rising"},
                        "heading": {"type": "string", "description": "on-screen heading, at most 6 words"},
                        "visual": {"type": "string", "description": "what the picture shows, one or two sentences"},
                        "characters": {"type": "array", "items": {"type": "string"}, "description": "names of the characters in view"}
                    },
                    "required": ["sentences", "heading", "visual", "characters"],
                    "additionalProperties": false
                }
            },
            "new_characters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string", "description": "fixed visual description"}
                    },
                    "required": ["name", "description"],
                    "additionalProperties": false
                },
                "description": "characters not described before"
            },
            "plot_so_far": {"type": "string", "description": "the story up to the last sentence given, in at most 80 words"},
            "music_mood": {"type": "string", "enum": moods}
        },
        "required": ["scenes", "new_characters", "plot_so_far", "music_mood"],
        "additionalProperties": false
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn chunk_prompt(
    outline: &Outline,
    texts: &[&str],
    (first, last): (usize, usize),
    budget_s: Option<f64>,
    scene_s: f64,
    pace: &Pace,
    plot: &str,
    characters: &[Character],
) -> String {
    let mut p = format!("Title: {}\n", outline.title);
    if !plot.is_empty() {
        p.push_str(&format!("The story so far: {plot}\n"));
    }
    if !characters.is_empty() {
        p.push_str(
            "Characters already described (reuse these names; do not describe them again):\n",
        );
        for c in characters {
            p.push_str(&format!("- {}: {}\n", c.name, c.description));
        }
    }
    p.push_str(&format!(
        "\nSentences {} to {} (seconds of narration in brackets):\n",
        first + 1,
        last + 1
    ));
    for (i, text) in texts.iter().enumerate().take(last + 1).skip(first) {
        p.push_str(&format!(
            "{}. [{:.1} s] {text}\n",
            i + 1,
            pace.sentence_seconds(text)
        ));
    }
    p.push_str(&format!(
        "\nMake scenes of about {scene_s:.0} seconds of narration each. "
    ));
    match budget_s {
        Some(b) => p.push_str(&format!(
            "Keep only the sentences that matter most, at most {b:.0} seconds of narration in all, \
             and always sentence {}; leave the rest out.",
            first + 1
        )),
        None => p.push_str(&format!(
            "Every sentence from {} to {} must be in exactly one scene.",
            first + 1,
            last + 1
        )),
    }
    p
}

pub(super) fn check_chunk(
    answer: &ChunkPlan,
    texts: &[&str],
    (first, last): (usize, usize),
    budget_s: Option<f64>,
    pace: &Pace,
    known: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.scenes.is_empty() {
        problems.push("there are no scenes".to_string());
    }
    let mut previous = 0i64;
    let mut kept = Vec::new();
    let range = (first + 1) as i64..=(last + 1) as i64;
    for (s, scene) in answer.scenes.iter().enumerate() {
        let n = s + 1;
        if scene.sentences.is_empty() {
            problems.push(format!("scene {n} has no sentences"));
        }
        for &number in &scene.sentences {
            if !range.contains(&number) {
                problems.push(format!(
                    "scene {n} names sentence {number}, outside {}..{}",
                    range.start(),
                    range.end()
                ));
            } else if number <= previous {
                problems.push(format!(
                    "scene {n} names sentence {number} after sentence {previous}: numbers must rise and not repeat"
                ));
            } else {
                previous = number;
                kept.push((number - 1) as usize);
            }
        }
        if scene.heading.trim().is_empty() {
            problems.push(format!("scene {n} has no heading"));
        }
        if scene.visual.trim().is_empty() {
            problems.push(format!("scene {n} has no visual description"));
        }
        for c in &scene.characters {
            let described = known
                .iter()
                .chain(answer.new_characters.iter().map(|c| &c.name))
                .any(|k| k.eq_ignore_ascii_case(c));
            if !described {
                problems.push(format!(
                    "scene {n} shows \"{c}\", who is neither described before nor in new_characters"
                ));
            }
        }
    }
    match budget_s {
        None => {
            let missing: Vec<String> = (first..=last)
                .filter(|i| !kept.contains(i))
                .map(|i| (i + 1).to_string())
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "sentences {} are in no scene; every sentence must be narrated",
                    missing.join(", ")
                ));
            }
        }
        Some(b) => {
            let seconds = pace.estimate(&kept.iter().map(|&i| texts[i]).collect::<Vec<_>>());
            if seconds > b * 1.1 + 0.5 {
                problems.push(format!(
                    "the scenes narrate {seconds:.0} seconds; keep at most {b:.0}"
                ));
            }
        }
    }
    if !MOODS.iter().any(|m| m.name == answer.music_mood) {
        problems.push(format!(
            "music_mood \"{}\" is not one of {}",
            answer.music_mood,
            MOODS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ));
    }
    problems
}

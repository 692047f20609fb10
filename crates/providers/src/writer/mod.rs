//! A [`ScriptWriter`] over any language model that answers with JSON: it writes a script from a
//! topic, and plans any text into scenes.
//!
//! Planning never lets the model rewrite given text. The model sees the section's sentences
//! numbered and answers with scenes that *refer to sentence numbers*, plus a heading, a visual
//! description and the characters in view; the narration is then the author's sentences, in
//! order, by construction. Under a narration budget the model chooses which sentences to keep.
//!
//! Every answer is checked (numbers in range and rising, every sentence kept when there is no
//! budget, the budget kept within 10 %, headings and visuals present, characters described, a
//! known music mood). A wrong answer gets one repair round that quotes the problems; a second
//! wrong answer fails as `Invalid`, naming them.
//!
//! Long texts are planned in chunks of [`LlmWriter::chunk_sentences`] sentences; each chunk's
//! prompt carries the plot so far and the characters already described, so a whole chapter fits
//! any model's context window and characters keep their looks.

use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::capability::{Describe, Produced, ScriptWriter};
use crate::error::ProviderError;
use crate::local::planner::{Outline, SceneWords};
use crate::prices::Price;
use crate::types::*;
use crate::vendor::Usage;

mod prompts;
use prompts::*;

/// Version of the prompts and schemas below; part of the cache key, so changing them re-plans.
pub const PROMPT_VERSION: &str = "plan-v1";

/// Words asked of a script with no target length: about a minute at the narrator's pace.
pub const DEFAULT_SCRIPT_WORDS: usize = 150;

/// Characters per word of English prose, spaces and punctuation included: 4.7–4.8 letters a
/// word (Norvig's count over the Google Books corpus, 2013) plus a space and a share of
/// punctuation. Used to estimate what a script will cost to speak before it exists.
pub const CHARS_PER_WORD: f64 = 5.9;

/// Tokens per character for estimates: OpenAI's "one token generally corresponds to ~4
/// characters of text for common English text" (Tokenizer help page).
pub const TOKENS_PER_CHAR: f64 = 0.25;

/// Words to ask of a script for `target_seconds` of narration, at the narrator's pace
/// ([`studio_style::narrator::RATE_WPM`]); [`DEFAULT_SCRIPT_WORDS`] without a target.
pub fn script_words(target_seconds: Option<f64>) -> usize {
    target_seconds
        .map(|s| (s * f64::from(studio_style::narrator::RATE_WPM) / 60.0).round() as usize)
        .unwrap_or(DEFAULT_SCRIPT_WORDS)
        .max(1)
}

/// Who says a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (our prompt).
    User,
    /// The model (its earlier answer, in a repair round).
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// One request for a JSON answer.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    /// Instructions.
    pub system: &'a str,
    /// The conversation so far, ending with a user turn.
    pub turns: &'a [Turn],
    /// Name of the answer's schema (`scene_plan`), `[a-z_]+`.
    pub schema_name: &'a str,
    /// JSON Schema of the answer (the subset every vendor's structured output accepts: objects
    /// with every property required and no others, arrays, strings, integers, enums).
    pub schema: &'a Value,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The JSON text it gave.
    pub text: String,
    /// Tokens it reports.
    pub usage: Usage,
}

/// A language model that answers with JSON following a schema.
#[async_trait]
pub trait LanguageModel: Send + Sync + std::fmt::Debug {
    /// Model name as the vendor spells it (`gpt-4o-mini`).
    fn model(&self) -> &str;
    /// Asks once. Errors are the vendor's, classified ([`crate::vendor::classify`]).
    async fn answer(&self, task: Task<'_>) -> Result<Answer, ProviderError>;
}

/// A script writer and planner over a [`LanguageModel`].
#[derive(Debug)]
pub struct LlmWriter {
    kind: String,
    model: Box<dyn LanguageModel>,
    price: Option<Price>,
    /// Sentences planned per request. Default 60.
    pub chunk_sentences: usize,
}

impl LlmWriter {
    /// A writer named `kind` (as in settings) over `model`, priced by `price` (`None`: free,
    /// a self-hosted model).
    pub fn new(kind: &str, model: Box<dyn LanguageModel>, price: Option<Price>) -> Self {
        Self {
            kind: kind.to_owned(),
            model,
            price,
            chunk_sentences: 60,
        }
    }

    fn cost(&self, usage: &Usage) -> u64 {
        self.price.map(|p| p.cost(usage)).unwrap_or(0)
    }

    /// Asks for an answer of type `T`, checked by `check`; one repair round on a wrong one.
    async fn ask<T: for<'de> Deserialize<'de>>(
        &self,
        system: &str,
        prompt: String,
        schema_name: &str,
        schema: &Value,
        usage: &mut Usage,
        check: impl Fn(&T) -> Vec<String>,
    ) -> Result<T, ProviderError> {
        let mut turns = vec![Turn {
            role: Role::User,
            content: prompt,
        }];
        for round in 0..2 {
            let answer = self
                .model
                .answer(Task {
                    system,
                    turns: &turns,
                    schema_name,
                    schema,
                })
                .await?;
            *usage += answer.usage;
            let problems = match serde_json::from_str::<T>(strip_fences(&answer.text)) {
                Ok(value) => {
                    let problems = check(&value);
                    if problems.is_empty() {
                        return Ok(value);
                    }
                    problems
                }
                Err(e) => vec![format!(
                    "the answer is not JSON of the requested shape: {e}"
                )],
            };
            if round == 1 {
                return Err(ProviderError::invalid(format!(
                    "{} ({}) gave an invalid {schema_name} twice: {}",
                    self.kind,
                    self.model.model(),
                    problems.join("; ")
                )));
            }
            tracing::warn!(provider = %self.kind, schema = schema_name, ?problems, "invalid answer; asking for a repair");
            turns.push(Turn {
                role: Role::Assistant,
                content: answer.text,
            });
            turns.push(Turn {
                role: Role::User,
                content: format!(
                    "Your answer has these problems:\n- {}\nAnswer again with the whole corrected JSON.",
                    problems.join("\n- ")
                ),
            });
        }
        unreachable!("two rounds")
    }

    async fn write_script(
        &self,
        topic: &str,
        audience: Option<&str>,
        tone: Option<&str>,
        request: &PlanRequest,
        usage: &mut Usage,
    ) -> Result<Outline, ProviderError> {
        let target = script_words(request.target_seconds);
        let mut prompt = format!("Write the narration for a short video about: {topic}\n");
        if let Some(a) = audience {
            prompt.push_str(&format!("Audience: {a}\n"));
        }
        if let Some(t) = tone {
            prompt.push_str(&format!("Tone: {t}\n"));
        }
        prompt.push_str(&format!("Length: about {target} words in all.\n"));
        let script: Script = self
            .ask(
                SCRIPT_SYSTEM,
                prompt,
                "script",
                &script_schema(),
                usage,
                |s: &Script| {
                    let mut problems = Vec::new();
                    if s.title.trim().is_empty() {
                        problems.push("the title is empty".to_string());
                    }
                    let count: usize = s
                        .paragraphs
                        .iter()
                        .map(|p| p.split_whitespace().count())
                        .sum();
                    if count == 0 {
                        problems.push("the script has no words".into());
                    } else if count * 2 < target || count > target * 2 {
                        problems.push(format!(
                            "the script has {count} words; write about {target}"
                        ));
                    }
                    problems
                },
            )
            .await?;
        let paragraphs: Vec<String> = script
            .paragraphs
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect();
        Ok(Outline::of_paragraphs(
            script.title.trim(),
            None,
            None,
            &paragraphs,
        ))
    }

    async fn plan_outline(
        &self,
        outline: &Outline,
        request: &PlanRequest,
        usage: &mut Usage,
    ) -> Result<ScenePlan, ProviderError> {
        let pace = request.pace;
        let texts = outline.texts();
        let total_s = pace.estimate(&texts);
        let budget_s = request
            .target_seconds
            .map(|t| (t - outline.moral_seconds(&pace)).max(0.0))
            .filter(|b| *b < total_s);
        let words = SceneWords::new(&texts);
        let mut characters: Vec<Character> = Vec::new();
        let mut plot = String::new();
        let mut moods: Vec<String> = Vec::new();
        let mut keep: Vec<usize> = Vec::new();
        let mut scenes = Vec::new();
        let chunk = self.chunk_sentences.max(1);
        let mut first = 0;
        while first < texts.len() {
            let last = (first + chunk).min(texts.len()) - 1;
            let chunk_s = pace.estimate(&texts[first..=last]);
            let chunk_budget = budget_s.map(|b| b * chunk_s / total_s);
            let prompt = chunk_prompt(
                outline,
                &texts,
                (first, last),
                chunk_budget,
                request.scene_seconds,
                &pace,
                &plot,
                &characters,
            );
            let known: Vec<String> = characters.iter().map(|c| c.name.clone()).collect();
            let answer: ChunkPlan = self
                .ask(
                    PLAN_SYSTEM,
                    prompt,
                    "scene_plan",
                    &plan_schema(),
                    usage,
                    |a: &ChunkPlan| {
                        check_chunk(a, &texts, (first, last), chunk_budget, &pace, &known)
                    },
                )
                .await?;
            for c in answer.new_characters {
                if !characters
                    .iter()
                    .any(|k| k.name.eq_ignore_ascii_case(&c.name))
                {
                    characters.push(Character {
                        name: c.name.trim().to_owned(),
                        description: c.description.trim().to_owned(),
                    });
                }
            }
            for scene in answer.scenes {
                // 1-based sentence numbers in the prompt.
                let indices: Vec<usize> = scene.sentences.iter().map(|&n| n as usize - 1).collect();
                let mut planned =
                    words.describe(indices.iter().map(|&i| texts[i].to_owned()).collect());
                keep.extend(&indices);
                planned.heading = scene.heading.trim().to_owned();
                planned.visual = Some(scene.visual.trim().to_owned());
                planned.characters = scene.characters;
                scenes.push(planned);
            }
            plot = answer.plot_so_far;
            moods.push(answer.music_mood);
            first = last + 1;
        }
        let mut plan = outline.plan(&keep, scenes, &pace);
        plan.characters = characters;
        plan.music_mood = most_common(&moods);
        Ok(plan)
    }
}

fn most_common(items: &[String]) -> Option<String> {
    let mut best: Option<(&String, usize)> = None;
    for item in items {
        let n = items.iter().filter(|i| *i == item).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((item, n));
        }
    }
    best.map(|(i, _)| i.clone())
}

/// Removes a Markdown code fence some models wrap JSON in.
fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

impl Describe for LlmWriter {
    fn name(&self) -> &str {
        &self.kind
    }
    fn model(&self) -> String {
        format!("{}/{PROMPT_VERSION}", self.model.model())
    }
}

#[async_trait]
impl ScriptWriter for LlmWriter {
    async fn plan(
        &self,
        request: &PlanRequest,
        _out: &Path,
    ) -> Result<Produced<ScenePlan>, ProviderError> {
        let mut usage = Usage::default();
        let outline = match &request.source {
            PlanSource::Text { text, section } => Outline::of_text(text, section.as_deref())?,
            PlanSource::Topic {
                topic,
                audience,
                tone,
            } => {
                let outline = self
                    .write_script(
                        topic,
                        audience.as_deref(),
                        tone.as_deref(),
                        request,
                        &mut usage,
                    )
                    .await?;
                if outline.sentences.is_empty() {
                    return Err(ProviderError::invalid(format!(
                        "{} wrote a script without sentences",
                        self.kind
                    )));
                }
                outline
            }
        };
        // A written script already has the length asked for: every sentence of it is narrated.
        let result = match &request.source {
            PlanSource::Topic { .. } => {
                let whole = PlanRequest {
                    target_seconds: None,
                    ..request.clone()
                };
                self.plan_outline(&outline, &whole, &mut usage).await
            }
            PlanSource::Text { .. } => self.plan_outline(&outline, request, &mut usage).await,
        };
        let plan = result?;
        Ok(Produced {
            output: plan,
            cost_micro_usd: self.cost(&usage),
        })
    }

    fn writes_from_topics(&self) -> bool {
        true
    }

    fn estimate(&self, request: &PlanRequest) -> u64 {
        self.cost(&self.estimate_usage(request))
    }
}

impl LlmWriter {
    /// The tokens planning `request` is expected to take, before any call: every prompt and
    /// schema as sent, the answers by their expected size, at [`TOKENS_PER_CHAR`].
    pub fn estimate_usage(&self, request: &PlanRequest) -> Usage {
        let tokens = |chars: f64| (chars * TOKENS_PER_CHAR).ceil() as u64;
        let mut usage = Usage::default();
        // (characters of each sentence to plan)
        let sentences: Vec<usize> = match &request.source {
            PlanSource::Text { text, section } => {
                match Outline::of_text(text, section.as_deref()) {
                    Ok(o) => o.sentences.iter().map(|(_, s)| s.chars().count()).collect(),
                    Err(_) => return usage,
                }
            }
            PlanSource::Topic { topic, .. } => {
                let words = script_words(request.target_seconds);
                let chars = words as f64 * CHARS_PER_WORD;
                let prompt =
                    SCRIPT_SYSTEM.len() + topic.len() + 120 + script_schema().to_string().len();
                usage.input_tokens += tokens(prompt as f64);
                usage.output_tokens += tokens(chars + 60.0);
                // Sentences of about 15 words.
                let n = (words as f64 / 15.0).ceil().max(1.0) as usize;
                vec![(chars / n as f64) as usize; n]
            }
        };
        let total: usize = sentences.iter().sum();
        let budget = match request.source {
            PlanSource::Topic { .. } => None,
            PlanSource::Text { .. } => request.target_seconds,
        };
        let kept = match budget {
            Some(t) => {
                let all = request.pace.seconds_per_char * total as f64 * 0.8;
                (t / all.max(f64::EPSILON)).min(1.0)
            }
            None => 1.0,
        };
        let schema = plan_schema().to_string().len();
        for chunk in sentences.chunks(self.chunk_sentences.max(1)) {
            let listed: usize = chunk.iter().map(|c| c + 12).sum();
            let prompt = PLAN_SYSTEM.len() + schema + listed + 400;
            usage.input_tokens += tokens(prompt as f64);
            let narrated_s =
                chunk.iter().sum::<usize>() as f64 * kept * request.pace.seconds_per_char;
            let scenes = (narrated_s / request.scene_seconds.max(1.0))
                .ceil()
                .max(1.0);
            // A scene's JSON (numbers, heading, visual, names) ≈ 200 characters; plus the new
            // characters, the plot so far and the mood.
            usage.output_tokens += tokens(scenes * 200.0 + 400.0);
        }
        usage
    }
}

#[cfg(test)]
mod tests;

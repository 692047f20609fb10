//! The local [`ScriptWriter`]: plans a video from given text without a language model.
//!
//! Steps: find the section ([`super::text`]), split it into sentences, and when the estimated
//! narration is longer than the budget, keep the most central sentences by TextRank (Mihalcea &
//! Tarau, 2004: PageRank over a sentence-similarity graph) in their original order. Sentences
//! are then grouped into scenes of about [`PlanRequest::scene_seconds`], preferring paragraph
//! breaks, and each scene gets key words for its heading and visual search terms.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;

use super::text::{self, content_words, Section};
use crate::capability::{Describe, Produced, ScriptWriter};
use crate::error::ProviderError;
use crate::types::*;

/// Extractive planner from given text.
#[derive(Debug, Clone, Default)]
pub struct TextPlanner;

impl Describe for TextPlanner {
    fn name(&self) -> &str {
        "text-planner"
    }
    fn model(&self) -> String {
        "textrank/v1".into()
    }
}

#[async_trait]
impl ScriptWriter for TextPlanner {
    async fn plan(
        &self,
        request: &PlanRequest,
        _out: &Path,
    ) -> Result<Produced<ScenePlan>, ProviderError> {
        let request = request.clone();
        tokio::task::spawn_blocking(move || plan_text(&request).map(Produced::free))
            .await
            .map_err(|e| ProviderError::transient(format!("planner task failed: {e}")))?
    }
}

/// Plans `request` (blocking; runs in well under a second for a whole book).
///
/// Errors: `Unavailable` for a topic; `Invalid` for an empty text, an unknown section (the
/// message lists the sections found) or a section without sentences.
pub fn plan_text(request: &PlanRequest) -> Result<ScenePlan, ProviderError> {
    let outline = match &request.source {
        PlanSource::Text { text, section } => Outline::of_text(text, section.as_deref())?,
        PlanSource::Topic { .. } => {
            return Err(ProviderError::unavailable(
                "the text planner plans from given text, not from a topic",
            ))
        }
    };
    let all = &outline.sentences;
    let pace = request.pace;
    let moral_s = outline.moral_seconds(&pace);
    let texts = outline.texts();
    let keep: Vec<usize> = match request.target_seconds {
        Some(target) if pace.estimate(&texts) + moral_s > target => {
            summarise(&texts, (target - moral_s).max(0.0), &pace)
        }
        _ => (0..all.len()).collect(),
    };
    let kept: Vec<(usize, String)> = keep.iter().map(|&i| all[i].clone()).collect();
    let words = SceneWords::new(&texts);
    let scenes = group(&kept, request.scene_seconds, &pace)
        .into_iter()
        .map(|sentences| words.describe(sentences))
        .collect();
    Ok(outline.plan(&keep, scenes, &pace))
}

/// A section ready to plan: its titles, moral, and body sentences with their paragraph index.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    /// The section's title.
    pub title: String,
    /// Its subtitle, if any.
    pub subtitle: Option<String>,
    /// Its moral, if any.
    pub moral: Option<String>,
    /// Titles of every section of the text.
    pub sections: Vec<String>,
    /// (paragraph index, sentence), in order.
    pub sentences: Vec<(usize, String)>,
}

impl Outline {
    /// The section `wanted` of `text` (the first when `None`).
    ///
    /// Errors: `Invalid` for an empty text, an unknown section (the message lists the
    /// sections found) or a section without sentences.
    pub fn of_text(text: &str, wanted: Option<&str>) -> Result<Outline, ProviderError> {
        if text.trim().is_empty() {
            return Err(ProviderError::invalid("the text is empty"));
        }
        let sections = text::sections(text);
        let titles: Vec<String> = sections.iter().map(|s| s.title.clone()).collect();
        let section: &Section = match wanted {
            Some(w) => text::find(&sections, w).ok_or_else(|| {
                ProviderError::invalid(format!(
                    "no section titled \"{w}\"; the {} sections found are: {}",
                    titles.len(),
                    titles.join(" | ")
                ))
            })?,
            None => sections
                .first()
                .ok_or_else(|| ProviderError::invalid("the text has no sections"))?,
        };
        let outline = Outline::of_paragraphs(
            &section.title,
            section.subtitle.clone(),
            section.moral.clone(),
            &section.paragraphs,
        );
        if outline.sentences.is_empty() {
            return Err(ProviderError::invalid(format!(
                "section \"{}\" has no sentences to narrate",
                section.title
            )));
        }
        Ok(Outline {
            sections: titles,
            ..outline
        })
    }

    /// A one-section outline of `paragraphs` (a written script).
    pub fn of_paragraphs(
        title: &str,
        subtitle: Option<String>,
        moral: Option<String>,
        paragraphs: &[String],
    ) -> Outline {
        let mut sentences = Vec::new();
        for (p, paragraph) in paragraphs.iter().enumerate() {
            for s in text::sentences(&text::normalise_space(paragraph)) {
                sentences.push((p, s));
            }
        }
        Outline {
            title: title.to_owned(),
            subtitle,
            moral,
            sections: vec![title.to_owned()],
            sentences,
        }
    }

    /// The sentences' texts.
    pub fn texts(&self) -> Vec<&str> {
        self.sentences.iter().map(|(_, s)| s.as_str()).collect()
    }

    /// Estimated seconds of the moral, 0 without one.
    pub fn moral_seconds(&self, pace: &Pace) -> f64 {
        self.moral
            .as_deref()
            .map(|m| pace.sentence_seconds(m))
            .unwrap_or(0.0)
    }

    /// The plan that keeps sentences `keep` (indices, in order) as `scenes`.
    pub fn plan(&self, keep: &[usize], scenes: Vec<PlannedScene>, pace: &Pace) -> ScenePlan {
        let kept: Vec<&str> = keep.iter().map(|&i| self.sentences[i].1.as_str()).collect();
        ScenePlan {
            title: self.title.clone(),
            subtitle: self.subtitle.clone(),
            moral: self.moral.clone(),
            sections: self.sections.clone(),
            sentences_total: self.sentences.len(),
            sentences_kept: keep.len(),
            estimated_seconds: pace.estimate(&kept) + self.moral_seconds(pace),
            scenes,
            characters: Vec::new(),
            music_mood: None,
        }
    }
}

/// At most this many sentences are ranked. A longer text is ranked on an even sample of this
/// many (its first sentence included), and only sampled sentences can enter its summary, so the
/// pairwise comparisons stay under 2 million whatever the text's length: a 1 MB text summarises
/// in bounded time and memory (security review H2) instead of filling an n × n graph.
pub const MAX_RANKED: usize = 2_000;

/// Picks sentences whose estimated narration fits `budget_s`, most central first by TextRank,
/// and returns their indices in the story's order. The opening sentence is always kept.
pub fn summarise(sentences: &[&str], budget_s: f64, pace: &Pace) -> Vec<usize> {
    let n = sentences.len();
    let candidates: Vec<usize> = if n <= MAX_RANKED {
        (0..n).collect()
    } else {
        (0..MAX_RANKED).map(|k| k * n / MAX_RANKED).collect()
    };
    let sampled: Vec<&str> = candidates.iter().map(|&i| sentences[i]).collect();
    let scores = textrank(&sampled);
    let mut order: Vec<usize> = (1..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![0];
    let mut used = pace.sentence_seconds(sentences[0]);
    for k in order {
        let i = candidates[k];
        let cost = pace.sentence_seconds(sentences[i]);
        if used + cost <= budget_s {
            keep.push(i);
            used += cost;
        }
    }
    keep.sort_unstable();
    keep
}

/// TextRank scores of `sentences`: PageRank (damping 0.85, 50 iterations) over a graph whose
/// edge weights are shared content-word stems divided by `ln |a| + ln |b|`. Compares every pair
/// (quadratic time; the graph is kept as edge lists, so memory follows the edges):
/// [`summarise`] caps the sentences it is given at [`MAX_RANKED`].
pub fn textrank(sentences: &[&str]) -> Vec<f64> {
    let stems: Vec<HashSet<String>> = sentences
        .iter()
        .map(|s| content_words(s).into_iter().map(|w| w.stem).collect())
        .collect();
    let n = sentences.len();
    // Undirected: each edge is listed at both ends.
    let mut edges: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in (i + 1)..n {
            let common = stems[i].intersection(&stems[j]).count();
            if common == 0 {
                continue;
            }
            let norm = (stems[i].len().max(2) as f64).ln() + (stems[j].len().max(2) as f64).ln();
            let w = common as f64 / norm;
            edges[i].push((j, w));
            edges[j].push((i, w));
        }
    }
    let out_sum: Vec<f64> = edges
        .iter()
        .map(|e| e.iter().map(|(_, w)| w).sum())
        .collect();
    let d = 0.85;
    let mut score = vec![1.0; n];
    for _ in 0..50 {
        let next: Vec<f64> = edges
            .iter()
            .map(|e| {
                let sum: f64 = e
                    .iter()
                    .filter(|&&(j, _)| out_sum[j] > 0.0)
                    .map(|&(j, w)| w / out_sum[j] * score[j])
                    .sum();
                1.0 - d + d * sum
            })
            .collect();
        score = next;
    }
    score
}

fn group(kept: &[(usize, String)], scene_s: f64, pace: &Pace) -> Vec<Vec<String>> {
    let mut scenes: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut current_s = 0.0;
    let mut last_paragraph = None;
    for (paragraph, sentence) in kept {
        let s = pace.sentence_seconds(sentence);
        let new_paragraph = last_paragraph.is_some_and(|p| p != *paragraph);
        let full = current_s + s > scene_s * 1.25 || (new_paragraph && current_s >= scene_s * 0.6);
        if !current.is_empty() && full {
            scenes.push(std::mem::take(&mut current));
            current_s = 0.0;
        }
        current.push(sentence.clone());
        current_s += s;
        last_paragraph = Some(*paragraph);
        if current_s >= scene_s {
            scenes.push(std::mem::take(&mut current));
            current_s = 0.0;
        }
    }
    if !current.is_empty() {
        scenes.push(current);
    }
    scenes
}

fn inverse_document_frequency(sentences: &[&str]) -> HashMap<String, f64> {
    let mut df: HashMap<String, usize> = HashMap::new();
    for s in sentences {
        let stems: HashSet<String> = content_words(s).into_iter().map(|w| w.stem).collect();
        for stem in stems {
            *df.entry(stem).or_default() += 1;
        }
    }
    let n = sentences.len() as f64;
    df.into_iter()
        .map(|(k, v)| (k, (1.0 + n / v as f64).ln()))
        .collect()
}

/// What makes a word telling within one section: its rarity and whether it is a name.
#[derive(Debug, Clone)]
pub struct SceneWords {
    idf: HashMap<String, f64>,
    proper: HashSet<String>,
}

impl SceneWords {
    /// Word statistics of a section's sentences.
    pub fn new(texts: &[&str]) -> Self {
        Self {
            idf: inverse_document_frequency(texts),
            proper: texts
                .iter()
                .flat_map(|s| content_words(s))
                .filter(|w| w.proper)
                .map(|w| w.stem)
                .collect(),
        }
    }

    /// A scene of `sentences` with its heading and search terms from its key words.
    pub fn describe(&self, sentences: Vec<String>) -> PlannedScene {
        describe_scene(sentences, &self.idf, &self.proper)
    }
}

/// Describes a scene by its key words: names (capitalised mid-sentence anywhere in the section)
/// weigh most, then rare words; words that look like verbs or adverbs (-ed, -ing, -ly) weigh
/// less, since pictures show things.
fn describe_scene(
    sentences: Vec<String>,
    idf: &HashMap<String, f64>,
    proper: &HashSet<String>,
) -> PlannedScene {
    // stem -> (score, first position, surface forms by count, proper)
    let mut found: BTreeMap<String, (f64, usize, BTreeMap<String, usize>, bool)> = BTreeMap::new();
    let mut position = 0;
    for s in &sentences {
        for w in content_words(s) {
            let e = found
                .entry(w.stem.clone())
                .or_insert((0.0, position, BTreeMap::new(), false));
            e.0 += idf.get(&w.stem).copied().unwrap_or(1.0);
            *e.2.entry(w.surface.clone()).or_default() += 1;
            e.3 |= proper.contains(&w.stem);
            position += 1;
        }
    }
    let mut ranked: Vec<(String, f64, usize, String)> = found
        .into_iter()
        .map(|(stem, (score, first, forms, proper))| {
            let surface = forms
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(s, _)| s.clone())
                .unwrap_or_else(|| stem.clone());
            let lower = surface.to_lowercase();
            let boost = if proper {
                4.0
            } else if lower.ends_with("ed") || lower.ends_with("ing") || lower.ends_with("ly") {
                0.4
            } else {
                1.0
            };
            (stem, score * boost, first, surface)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    let heading = ranked
        .iter()
        .take(3)
        .map(|r| r.3.clone())
        .collect::<Vec<_>>()
        .join(" · ");
    let search_terms = ranked.iter().take(6).map(|r| r.3.to_lowercase()).collect();
    PlannedScene {
        sentences,
        heading,
        search_terms,
        visual: None,
        characters: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace {
        seconds_per_char: 0.07,
        sentence_pause_s: 0.3,
    };

    fn request(text: &str, section: Option<&str>, target: Option<f64>) -> PlanRequest {
        PlanRequest {
            source: PlanSource::Text {
                text: text.into(),
                section: section.map(str::to_string),
            },
            target_seconds: target,
            scene_seconds: 8.0,
            pace: PACE,
        }
    }

    #[test]
    fn unknown_section_lists_sections() {
        let e = plan_text(&request(
            "One\nA b c.\n\n\n\nTwo\nD e f.",
            Some("Three"),
            None,
        ))
        .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Invalid);
        assert!(e.message.contains("One | Two"), "{}", e.message);
    }

    #[test]
    fn empty_text_is_invalid() {
        let e = plan_text(&request(" \n\n ", None, None)).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Invalid);
    }

    #[test]
    fn summary_fits_budget_in_order() {
        let sentences = [
            "The cat sat on the mat near the door.",
            "Dogs bark at night in the town.",
            "The cat watched the dogs from the mat.",
            "Rain fell on the town all night.",
            "At dawn the cat left the mat and the dogs slept.",
        ];
        let keep = summarise(&sentences, 7.0, &PACE);
        assert_eq!(keep[0], 0);
        assert!(keep.windows(2).all(|w| w[0] < w[1]));
        let kept: Vec<&str> = keep.iter().map(|&i| sentences[i]).collect();
        assert!(PACE.estimate(&kept) <= 7.0);
        assert!(keep.len() < sentences.len());
    }

    #[test]
    fn a_chapter_is_titled_with_its_own_name() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/texts/alice-in-wonderland.txt"
        ))
        .unwrap();
        let plan = plan_text(&request(&text, Some("CHAPTER VII."), Some(20.0))).unwrap();
        assert_eq!(plan.title, "CHAPTER VII.");
        assert_eq!(plan.full_title(), "CHAPTER VII. A Mad Tea-Party");
        let mut plan = plan;
        plan.title = "Chapter 1".into();
        plan.subtitle = Some("Loomings".into());
        assert_eq!(plan.full_title(), "Chapter 1: Loomings");
        plan.subtitle = None;
        assert_eq!(plan.full_title(), "Chapter 1");
    }

    /// A 1 MB text of one repeated sentence (every pair alike: the worst case for a graph of
    /// sentences) plans to its budget; ranked densely, it would need about 58 GB.
    #[test]
    fn huge_texts_plan_in_bounded_time_and_memory() {
        let text = "Lion roars. ".repeat(1_000_000 / 12);
        let plan = plan_text(&request(&text, None, Some(60.0))).unwrap();
        let narrated: Vec<&str> = plan
            .scenes
            .iter()
            .flat_map(|s| s.sentences.iter().map(String::as_str))
            .collect();
        assert!(!narrated.is_empty());
        assert!(PACE.estimate(&narrated) <= 60.0);
        assert!(narrated.iter().all(|s| *s == "Lion roars."));
    }

    #[test]
    fn a_long_text_is_summarised_from_an_even_sample() {
        let sentences: Vec<String> = (0..5_000)
            .map(|i| format!("Sentence {i} tells of lions and rivers."))
            .collect();
        let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
        let keep = summarise(&refs, 30.0, &PACE);
        assert_eq!(keep[0], 0);
        let sampled: HashSet<usize> = (0..MAX_RANKED).map(|k| k * 5_000 / MAX_RANKED).collect();
        assert!(keep.len() > 3);
        assert!(
            keep.iter().all(|i| sampled.contains(i)),
            "only sampled sentences: {keep:?}"
        );
    }
}

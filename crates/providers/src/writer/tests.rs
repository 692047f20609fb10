use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::*;

/// A model that answers from a list and keeps every task it was given.
#[derive(Debug, Default)]
struct Canned {
    answers: Mutex<VecDeque<String>>,
    seen: std::sync::Arc<Mutex<Vec<Seen>>>,
}

/// A task's schema name and turns.
type Seen = (String, Vec<Turn>);

#[async_trait]
impl LanguageModel for Canned {
    fn model(&self) -> &str {
        "canned"
    }
    async fn answer(&self, task: Task<'_>) -> Result<Answer, ProviderError> {
        self.seen
            .lock()
            .unwrap()
            .push((task.schema_name.to_owned(), task.turns.to_vec()));
        let text = self.answers.lock().unwrap().pop_front().expect("an answer");
        Ok(Answer {
            text,
            usage: Usage {
                input_tokens: 1000,
                output_tokens: 100,
                characters: 0,
            },
        })
    }
}

const PACE: Pace = Pace {
    seconds_per_char: 0.07,
    sentence_pause_s: 0.3,
};

fn text_request(text: &str) -> PlanRequest {
    PlanRequest {
        source: PlanSource::Text {
            text: text.into(),
            section: None,
        },
        target_seconds: None,
        scene_seconds: 8.0,
        pace: PACE,
    }
}

const FABLE: &str = "The Fox and the Grapes\n\nA hungry Fox saw some fine bunches of Grapes. \
    He jumped for them.\n\nHe could not reach them. So he gave up and walked away.";

fn scene(numbers: &[i64], chars: &[&str]) -> Value {
    json!({"sentences": numbers, "heading": "The vine", "visual": "A red fox under a vine.", "characters": chars})
}

#[tokio::test]
async fn a_plan_narrates_the_authors_sentences_and_repairs_once() {
    let bad = json!({
        "scenes": [scene(&[1, 2], &["Fox"]), scene(&[2], &[])],
        "new_characters": [],
        "plot_so_far": "A fox wants grapes.",
        "music_mood": "jazzy"
    });
    let good = json!({
        "scenes": [scene(&[1, 2], &["Fox"]), scene(&[3, 4], &["Fox"])],
        "new_characters": [{"name": "Fox", "description": "a thin red fox with a white-tipped tail"}],
        "plot_so_far": "A fox fails to reach grapes and leaves.",
        "music_mood": "playful"
    });
    let model = Canned::default();
    let seen = model.seen.clone();
    model
        .answers
        .lock()
        .unwrap()
        .extend([bad.to_string(), format!("```json\n{good}\n```")]);
    let writer = LlmWriter::new(
        "openai",
        Box::new(model),
        Some(Price {
            input_per_1k_tokens: 150,
            output_per_1k_tokens: 600,
            ..Price::default()
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = writer.plan(&text_request(FABLE), dir.path()).await.unwrap();
    let narrated: Vec<&str> = plan
        .output
        .scenes
        .iter()
        .flat_map(|s| s.sentences.iter().map(String::as_str))
        .collect();
    assert_eq!(
        narrated,
        [
            "A hungry Fox saw some fine bunches of Grapes.",
            "He jumped for them.",
            "He could not reach them.",
            "So he gave up and walked away."
        ]
    );
    assert_eq!(plan.output.title, "The Fox and the Grapes");
    assert_eq!(plan.output.characters[0].name, "Fox");
    assert_eq!(
        plan.output.scenes[0].visual.as_deref(),
        Some("A red fox under a vine.")
    );
    assert_eq!(plan.output.music_mood.as_deref(), Some("playful"));
    // Two calls of 1,000 + 100 tokens at 150 / 600 micro-USD per 1K.
    assert_eq!(plan.cost_micro_usd, 420);
    // The repair round quotes the problems after the model's own answer.
    let seen = seen.lock().unwrap();
    let repair = &seen[1].1;
    assert_eq!(repair.len(), 3);
    assert_eq!(repair[1].role, Role::Assistant);
    assert!(
        repair[2]
            .content
            .contains("names sentence 2 after sentence 2"),
        "{}",
        repair[2].content
    );
    assert!(
        repair[2].content.contains("music_mood \"jazzy\""),
        "{}",
        repair[2].content
    );
    assert!(repair[0].content.contains("4. [") && repair[0].content.contains("So he gave up"));
}

#[tokio::test]
async fn a_second_invalid_answer_fails_naming_the_problems() {
    let wrong = json!({
        "scenes": [scene(&[1], &["Crow"])],
        "new_characters": [],
        "plot_so_far": "",
        "music_mood": "calm"
    })
    .to_string();
    let model = Canned::default();
    model.answers.lock().unwrap().extend([wrong.clone(), wrong]);
    let writer = LlmWriter::new("openai", Box::new(model), None);
    let dir = tempfile::tempdir().unwrap();
    let e = writer
        .plan(&text_request(FABLE), dir.path())
        .await
        .unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::Invalid);
    assert!(
        e.message.contains("sentences 2, 3, 4 are in no scene"),
        "{}",
        e.message
    );
    assert!(e.message.contains("\"Crow\""), "{}", e.message);
}

#[test]
fn a_budget_is_checked_and_numbers_must_rise() {
    let texts = ["One two three four five.", "Six seven eight.", "Nine ten."];
    let plan = ChunkPlan {
        scenes: vec![ChunkScene {
            sentences: vec![2, 1, 3],
            heading: "h".into(),
            visual: "v".into(),
            characters: vec![],
        }],
        new_characters: vec![],
        plot_so_far: String::new(),
        music_mood: "calm".into(),
    };
    let problems = check_chunk(&plan, &texts, (0, 2), Some(1.0), &PACE, &[]);
    assert!(
        problems.iter().any(|p| p.contains("must rise")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("keep at most 1")),
        "{problems:?}"
    );
}

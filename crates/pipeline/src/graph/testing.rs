//! Step kinds for tests of the executors: [`WordCount`], which proves that a kind registered
//! only in the graph runs in both executors, after the steps it depends on; [`Stall`], a step
//! that takes as long as it is told, for deadlines. No graph has them unless a test adds them
//! ([`super::Graph::with`]); they are compiled in (not behind a feature) so that test builds and
//! binaries share one build of the crates above this one.

use futures_util::future::BoxFuture;
use serde_json::json;
use studio_providers::{Providers, ScenePlan};

use super::{Extension, StepError, StepInput, StepKey, StepKind, StepOutput};
use crate::request::VideoRequest;

/// Per scene, at the music's stage: counts the words of the scene's narration and reads the
/// length of its speech from the finished narration step, which it must find among the steps
/// before it. Output: `{"scene": i, "words": n, "narration_s": seconds}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCount;

impl WordCount {
    /// The stored name.
    pub const NAME: &'static str = "word-count";
}

impl Extension for WordCount {
    fn name(&self) -> &'static str {
        WordCount::NAME
    }

    fn stage(&self) -> u32 {
        2
    }

    fn instances(&self, _request: &VideoRequest, plan: &ScenePlan) -> Vec<Option<usize>> {
        (0..plan.scenes.len()).map(Some).collect()
    }

    fn run<'a>(
        &'a self,
        input: StepInput<'a>,
        _providers: &'a Providers,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            let key = StepKey {
                kind: StepKind::Extension(WordCount::NAME),
                scene: input.scene,
            };
            let i = input
                .scene
                .ok_or_else(|| StepError::fatal(&key, "needs a scene"))?;
            let narration = input
                .done
                .iter()
                .find_map(|f| match (&f.output, f.key.kind, f.key.scene) {
                    (StepOutput::Narration(s), StepKind::Narration, Some(n)) if n == i => Some(s),
                    _ => None,
                })
                .ok_or_else(|| StepError::fatal(&key, "ran before its scene's narration"))?;
            let words: usize = input.plan.scenes[i]
                .sentences
                .iter()
                .map(|s| s.split_whitespace().count())
                .sum();
            Ok(json!({"scene": i, "words": words, "narration_s": narration.duration_s}))
        })
    }
}

/// Once per job, at the music's stage: waits `seconds`, then outputs `{}`.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// How long the step takes, seconds.
    pub seconds: f64,
}

impl Stall {
    /// The stored name.
    pub const NAME: &'static str = "stall";
}

impl Extension for Stall {
    fn name(&self) -> &'static str {
        Stall::NAME
    }

    fn stage(&self) -> u32 {
        2
    }

    fn instances(&self, _request: &VideoRequest, _plan: &ScenePlan) -> Vec<Option<usize>> {
        vec![None]
    }

    fn run<'a>(
        &'a self,
        _input: StepInput<'a>,
        _providers: &'a Providers,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_secs_f64(self.seconds)).await;
            Ok(json!({}))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use studio_media::timeline::AspectPreset;
    use studio_providers::cache::ResultCache;
    use studio_providers::{PlanSource, ProvidersSettings};

    use super::*;
    use crate::graph::Graph;
    use crate::{MusicChoice, RunOptions};

    /// The embedded executor runs a kind it has never heard of, at its stage, after the
    /// narration it reads, and reports it.
    #[tokio::test]
    async fn a_kind_registered_only_in_the_graph_runs_embedded() {
        let dir = tempfile::tempdir().unwrap();
        let request = VideoRequest {
            aspect: AspectPreset::Square,
            music: MusicChoice::Silent,
            ..VideoRequest::new(PlanSource::Text {
                text: "The ant worked all summer. The grasshopper sang and danced.".into(),
                section: None,
            })
        };
        let mut options = RunOptions::new(dir.path().join("out"));
        options.graph = Arc::new(Graph::standard().with(WordCount));
        let cache = Arc::new(ResultCache::new(options.cache_dir()));
        let providers = ProvidersSettings::default().build(Some(cache)).unwrap();
        let report = crate::run(&request, &providers, &options).await.unwrap();
        let plan: ScenePlan =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/plan.json")).unwrap())
                .unwrap();
        let counted: Vec<_> = report
            .steps
            .iter()
            .filter(|s| s.step == WordCount::NAME)
            .collect();
        assert_eq!(counted.len(), plan.scenes.len());
        for (i, step) in counted.iter().enumerate() {
            let out: serde_json::Value = serde_json::from_str(&step.detail).unwrap();
            let words: usize = plan.scenes[i]
                .sentences
                .iter()
                .map(|s| s.split_whitespace().count())
                .sum();
            assert_eq!(out["words"], words);
            assert!(out["narration_s"].as_f64().unwrap() > 0.5, "{out}");
        }
        assert!(dir.path().join("out/final.mp4").is_file());
    }
}

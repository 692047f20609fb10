use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::capability::{ImageGen, Picture, Produced};
use crate::types::*;

/// A provider that answers from a script of outcomes, counting calls.
struct Scripted {
    name: &'static str,
    outcomes: Mutex<Vec<Result<(), ProviderError>>>,
    calls: AtomicU64,
}

impl Scripted {
    fn new(name: &'static str, outcomes: Vec<Result<(), ProviderError>>) -> Arc<Self> {
        Arc::new(Self {
            name,
            outcomes: Mutex::new(outcomes),
            calls: AtomicU64::new(0),
        })
    }
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Describe for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn model(&self) -> String {
        "v1".into()
    }
}

#[async_trait]
impl ImageGen for Scripted {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let next = {
            let mut o = self.outcomes.lock().unwrap();
            if o.is_empty() {
                Ok(())
            } else {
                o.remove(0)
            }
        };
        next?;
        let path = out.join("p.png");
        std::fs::write(&path, request.caption.as_bytes()).unwrap();
        Ok(Produced {
            output: Image {
                path,
                width: 1,
                height: 1,
                source: ImageSource::Generated,
                credit: None,
            },
            cost_micro_usd: 1500,
        })
    }
}

fn request() -> ImageRequest {
    ImageRequest {
        terms: vec!["hare".into()],
        caption: "Hare".into(),
        width: 8,
        height: 8,
        seed: 1,
        palette: vec![],
        prompt: String::new(),
        negative_prompt: String::new(),
        project_seed: 0,
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff_ms: 1,
        max_backoff_ms: 2,
        max_retry_after_ms: 50,
    }
}

#[tokio::test]
async fn transient_errors_are_retried_then_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ResultCache::new(dir.path()));
    let p = Scripted::new(
        "flaky",
        vec![
            Err(ProviderError::transient("503")),
            Err(ProviderError::transient("timeout")),
        ],
    );
    let mut chain = Chain::<Picture>::new(fast()).with_cache(cache.clone());
    chain.push(p.clone(), 1);
    let g = chain.run(&request()).await.unwrap();
    assert_eq!(g.provenance.attempts, 3);
    assert_eq!(g.provenance.cost_micro_usd, 1500);
    assert!(!g.provenance.cache_hit);
    assert_eq!(std::fs::read(&g.output.path).unwrap(), b"Hare");

    // The same request again: served from disk, no call, same cost on record.
    let g2 = chain.run(&request()).await.unwrap();
    assert!(g2.provenance.cache_hit);
    assert_eq!(g2.provenance.cost_micro_usd, 1500);
    assert_eq!(g2.output.path, g.output.path);
    assert_eq!(p.calls(), 3);

    // A new chain over the same folder (a later process) finds it too.
    let mut again = Chain::<Picture>::new(fast()).with_cache(cache);
    again.push(p.clone(), 1);
    assert!(again.run(&request()).await.unwrap().provenance.cache_hit);
    assert_eq!(p.calls(), 3);
}

#[tokio::test]
async fn unavailable_falls_back_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ResultCache::new(dir.path()));
    let first = Scripted::new("folder", vec![Err(ProviderError::unavailable("no match"))]);
    let second = Scripted::new("card", vec![]);
    let mut chain = Chain::<Picture>::new(fast()).with_cache(cache);
    chain.push(first.clone(), 1);
    chain.push(second.clone(), 1);
    let g = chain.run(&request()).await.unwrap();
    assert_eq!(g.provenance.provider, "card");
    assert_eq!(g.provenance.skipped[0].reason, "no match");
    let g = chain.run(&request()).await.unwrap();
    assert!(g.provenance.cache_hit);
    assert!(g.provenance.skipped[0].cached);
    assert_eq!((first.calls(), second.calls()), (1, 1));
}

#[tokio::test]
async fn exhausted_transients_fall_back_and_invalid_stops() {
    let a = Scripted::new(
        "down",
        vec![
            Err(ProviderError::transient("503")),
            Err(ProviderError::transient("503")),
            Err(ProviderError::transient("503")),
        ],
    );
    let b = Scripted::new("backup", vec![]);
    let mut chain = Chain::<Picture>::new(fast());
    chain.push(a.clone(), 1);
    chain.push(b.clone(), 1);
    let g = chain.run(&request()).await.unwrap();
    assert_eq!(g.provenance.provider, "backup");
    assert_eq!(a.calls(), 3);

    let bad = Scripted::new("strict", vec![Err(ProviderError::invalid("bad size"))]);
    let never = Scripted::new("never", vec![]);
    let mut chain = Chain::<Picture>::new(fast());
    chain.push(bad, 1);
    chain.push(never.clone(), 1);
    let e = chain.run(&request()).await.unwrap_err();
    assert!(matches!(e, ChainError::Invalid { .. }), "{e}");
    assert_eq!(never.calls(), 0);

    let empty = Chain::<Picture>::new(fast());
    let e = empty.run(&request()).await.unwrap_err().to_string();
    assert!(e.contains("no providers are configured"), "{e}");
}

#[tokio::test]
async fn an_open_circuit_skips_the_provider_without_calling_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = Scripted::new(
        "down",
        (0..10)
            .map(|_| Err(ProviderError::transient("503")))
            .collect(),
    );
    let backup = Scripted::new("backup", vec![]);
    let mut chain = Chain::<Picture>::new(fast())
        .with_cache(Arc::new(ResultCache::new(dir.path())))
        .with_breaker(BreakerPolicy {
            failures: 2,
            cooldown_s: 60.0,
        });
    chain.push(down.clone(), 1);
    chain.push(backup.clone(), 1);
    let g = chain.run(&request()).await.unwrap();
    assert_eq!(g.provenance.provider, "backup");
    assert_eq!(
        down.calls(),
        2,
        "the third try is refused by the open circuit"
    );
    assert!(g.provenance.skipped[0].reason.contains("circuit open"));
    assert_eq!(chain.breakers()[0], ("down".to_string(), "open"));

    // Another request: skipped at once. The skip is not remembered as this request's answer.
    let mut other = request();
    other.seed = 2;
    let g = chain.run(&other).await.unwrap();
    assert_eq!(
        (g.provenance.provider.as_str(), down.calls()),
        ("backup", 2)
    );
    assert!(!g.provenance.skipped[0].cached);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let p = Scripted::new(
        "limited",
        vec![Err(ProviderError::transient("429"))
            .map_err(|e: ProviderError| e.retry_after(Some(Duration::from_millis(40))))],
    );
    let mut chain = Chain::<Picture>::new(fast());
    chain.push(p.clone(), 1);
    let started = Instant::now();
    chain.run(&request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));
    assert_eq!(p.calls(), 2);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy::default();
    assert_eq!(p.backoff(1), Duration::from_millis(500));
    assert_eq!(p.backoff(2), Duration::from_millis(1000));
    assert_eq!(p.backoff(10), Duration::from_millis(8000));
}

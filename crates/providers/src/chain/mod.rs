//! A provider chain: the providers for one capability in order of preference, with retries for
//! transient errors, a concurrency limit per provider, and the result cache in front.
//!
//! For each provider in order the chain first asks the cache (a stored result is returned; a
//! stored "unavailable" moves on), then calls the provider: transient errors are retried with
//! exponential backoff up to [`RetryPolicy::max_attempts`], "unavailable" moves on to the next
//! provider (and is remembered), "invalid" stops the chain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::cache::{Entry, ResultCache};
use crate::capability::{Capability, Describe};
use crate::error::{ErrorKind, ProviderError};
use crate::limits::{BreakerPolicy, CircuitBreaker, RateLimit};

/// How transient errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Calls per provider and request, the first included. Default 3.
    pub max_attempts: u32,
    /// Wait before the first retry, milliseconds; doubles each retry. Default 500.
    pub initial_backoff_ms: u64,
    /// Longest wait between retries, milliseconds. Default 8000.
    pub max_backoff_ms: u64,
    /// Longest `Retry-After` honoured, milliseconds; a provider asking for longer is retried
    /// after this long (and, if still limited, falls back). Default 60000.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff_ms: 500,
            max_backoff_ms: 8000,
            max_retry_after_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64 << retry.saturating_sub(1).min(20);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

/// A provider the chain passed over, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// Provider name.
    pub provider: String,
    /// What it said.
    pub reason: String,
    /// How it failed.
    pub kind: ErrorKind,
    /// Whether the answer came from the cache.
    pub cached: bool,
}

/// Where a result came from and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Provenance {
    /// Capability name.
    pub capability: &'static str,
    /// Provider that produced the result.
    pub provider: String,
    /// Its model and version.
    pub model: String,
    /// SHA-256 of (capability, provider, model, request): the cache key.
    pub request_hash: String,
    /// What producing the result cost, micro-USD (also when served from the cache now).
    pub cost_micro_usd: u64,
    /// Whether the cache served it without calling any provider.
    pub cache_hit: bool,
    /// Provider calls made for this request by this run.
    pub attempts: u32,
    /// Providers passed over first.
    pub skipped: Vec<Skipped>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// A result with its provenance.
#[derive(Debug, Clone)]
pub struct Generated<T> {
    /// The result.
    pub output: T,
    /// Where it came from.
    pub provenance: Provenance,
}

/// Why a chain produced nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    /// The request is wrong; the message says how.
    #[error("{message}")]
    Invalid {
        /// Provider that refused it.
        provider: String,
        /// Its message.
        message: String,
    },
    /// Every provider failed or could not serve the request.
    #[error("no {capability} provider could serve the request: {}", describe(.failures))]
    Exhausted {
        /// Capability name.
        capability: &'static str,
        /// What each provider said.
        failures: Vec<Skipped>,
    },
    /// The cache folder could not be written.
    #[error("provider cache: {0}")]
    Cache(String),
}

fn describe(failures: &[Skipped]) -> String {
    if failures.is_empty() {
        return "no providers are configured".into();
    }
    failures
        .iter()
        .map(|f| format!("{}: {}", f.provider, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

struct Link<C: Capability> {
    provider: Arc<C::Provider>,
    limit: Arc<Semaphore>,
    rate: Option<RateLimit>,
    breaker: CircuitBreaker,
}

/// The providers of one capability, in order of preference.
pub struct Chain<C: Capability> {
    links: Vec<Link<C>>,
    cache: Option<Arc<ResultCache>>,
    retry: RetryPolicy,
    breaker: BreakerPolicy,
    calls: AtomicU64,
}

impl<C: Capability> std::fmt::Debug for Chain<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("capability", &C::NAME)
            .field(
                "providers",
                &self
                    .links
                    .iter()
                    .map(|l| l.provider.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .finish()
    }
}

impl Chain<crate::capability::Picture> {
    /// What `pictures` pictures for a `width`×`height` canvas are expected to cost with the
    /// first provider; `None` for an empty chain.
    pub fn estimate(&self, pictures: u64, width: u32, height: u32) -> Option<Estimate> {
        let first = self.links.first()?;
        Some(Estimate {
            capability: "image",
            provider: first.provider.name().to_owned(),
            model: first.provider.model(),
            cost_micro_usd: pictures * first.provider.estimate(width, height),
        })
    }
}

impl Chain<crate::capability::Motion> {
    /// What clips for scenes of `scene_seconds` seconds each are expected to cost with the
    /// first provider; `None` for an empty chain.
    pub fn estimate(&self, scene_seconds: &[f64]) -> Option<Estimate> {
        let first = self.links.first()?;
        Some(Estimate {
            capability: "clip",
            provider: first.provider.name().to_owned(),
            model: first.provider.model(),
            cost_micro_usd: scene_seconds
                .iter()
                .map(|&s| first.provider.estimate(s))
                .sum(),
        })
    }
}

impl Chain<crate::capability::Script> {
    /// Whether some provider of this planning chain writes scripts from a topic alone
    /// ([`crate::ScriptWriter::writes_from_topics`]); false for a chain of extractive planners,
    /// which only plan given text.
    pub fn accepts_topics(&self) -> bool {
        self.links.iter().any(|l| l.provider.writes_from_topics())
    }
}

/// What a chain's first provider expects a request to cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Capability name.
    pub capability: &'static str,
    /// Provider expected to serve it (the chain's first).
    pub provider: String,
    /// Its model.
    pub model: String,
    /// Expected cost, micro-USD.
    pub cost_micro_usd: u64,
}

impl Chain<crate::capability::Narration> {
    /// The first provider's pace ([`crate::SpeechSynth::seconds_per_letter_wpm`]).
    pub fn seconds_per_letter_wpm(&self) -> Option<f64> {
        self.links.first()?.provider.seconds_per_letter_wpm()
    }

    /// What speaking `characters` characters is expected to cost with the first provider;
    /// `None` for an empty chain.
    pub fn estimate(&self, characters: u64) -> Option<Estimate> {
        let first = self.links.first()?;
        Some(Estimate {
            capability: "speech",
            provider: first.provider.name().to_owned(),
            model: first.provider.model(),
            cost_micro_usd: first.provider.estimate(characters),
        })
    }
}

impl Chain<crate::capability::Script> {
    /// What planning `request` is expected to cost with the first provider; `None` for an
    /// empty chain.
    pub fn estimate(&self, request: &crate::PlanRequest) -> Option<Estimate> {
        let first = self.links.first()?;
        Some(Estimate {
            capability: "script",
            provider: first.provider.name().to_owned(),
            model: first.provider.model(),
            cost_micro_usd: first.provider.estimate(request),
        })
    }
}

impl<C: Capability> Chain<C> {
    /// An empty chain with `retry` for transient errors and no cache.
    pub fn new(retry: RetryPolicy) -> Self {
        Self {
            links: Vec::new(),
            cache: None,
            retry,
            breaker: BreakerPolicy::default(),
            calls: AtomicU64::new(0),
        }
    }

    /// Opens each provider's circuit breaker by `policy` (default [`BreakerPolicy::default`]);
    /// applies to providers pushed afterwards.
    pub fn with_breaker(mut self, policy: BreakerPolicy) -> Self {
        self.breaker = policy;
        self
    }

    /// Serves and stores results through `cache`.
    pub fn with_cache(mut self, cache: Arc<ResultCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Appends `provider`, allowing `concurrency` calls to it at a time (at least 1).
    pub fn push(&mut self, provider: Arc<C::Provider>, concurrency: usize) {
        self.push_limited(provider, concurrency, 0);
    }

    /// Appends `provider`, allowing `concurrency` calls at a time (at least 1) and
    /// `requests_per_minute` calls a minute (0: no limit).
    pub fn push_limited(
        &mut self,
        provider: Arc<C::Provider>,
        concurrency: usize,
        requests_per_minute: u32,
    ) {
        self.links.push(Link {
            provider,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            rate: RateLimit::per_minute(requests_per_minute),
            breaker: CircuitBreaker::new(self.breaker),
        });
    }

    /// Each provider's name and breaker state (`closed`, `open`, `half-open`).
    pub fn breakers(&self) -> Vec<(String, &'static str)> {
        self.links
            .iter()
            .map(|l| (l.provider.name().to_string(), l.breaker.state()))
            .collect()
    }

    /// Names of the providers, in order.
    pub fn providers(&self) -> Vec<String> {
        self.links
            .iter()
            .map(|l| l.provider.name().to_string())
            .collect()
    }

    /// Whether the chain has no provider (a capability left unconfigured).
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Provider calls made so far (cache hits excluded).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Returns the cache key of `request` for `provider`: the hex SHA-256 of the capability,
    /// the provider's name and model, and the request as JSON.
    pub fn request_hash(provider: &C::Provider, request: &C::Request) -> String {
        let json = serde_json::json!({
            "capability": C::NAME,
            "provider": provider.name(),
            "model": provider.model(),
            "request": request,
        });
        crate::sha256_hex(json.to_string().as_bytes())
    }

    /// Serves `request` from the cache or the first provider able to.
    ///
    /// Errors: [`ChainError::Invalid`] when a provider rejects the request itself;
    /// [`ChainError::Exhausted`] when no provider served it (each one's reason listed);
    /// [`ChainError::Cache`] when the cache cannot be written.
    pub async fn run(&self, request: &C::Request) -> Result<Generated<C::Output>, ChainError> {
        let started = Instant::now();
        let mut skipped = Vec::new();
        let mut attempts = 0;
        for link in &self.links {
            let provider = &*link.provider;
            let key = Self::request_hash(provider, request);
            let provenance = |cost, cache_hit, attempts, skipped: &Vec<Skipped>| Provenance {
                capability: C::NAME,
                provider: provider.name().to_string(),
                model: provider.model(),
                request_hash: key.clone(),
                cost_micro_usd: cost,
                cache_hit,
                attempts,
                skipped: skipped.clone(),
                seconds: started.elapsed().as_secs_f64(),
            };
            if let Some(cache) = &self.cache {
                let entry = match cache.load::<C>(&key) {
                    Some(entry) => Some(entry),
                    None => cache.fetch_shared::<C>(&key).await,
                };
                match entry {
                    Some(Entry::Ok {
                        output,
                        cost_micro_usd,
                    }) => {
                        return Ok(Generated {
                            output,
                            provenance: provenance(cost_micro_usd, attempts == 0, 0, &skipped),
                        })
                    }
                    Some(Entry::Unavailable { message }) => {
                        skipped.push(Skipped {
                            provider: provider.name().to_string(),
                            reason: message,
                            kind: ErrorKind::Unavailable,
                            cached: true,
                        });
                        continue;
                    }
                    None => {}
                }
            }
            let mut tries = 0;
            let mut circuit_open = false;
            let failure = loop {
                if let Err(open) = link.breaker.admit() {
                    circuit_open = true;
                    break ProviderError::unavailable(open.to_string());
                }
                tries += 1;
                attempts += 1;
                let result = self.call_once(link, &key, request).await;
                match &result {
                    Err(e) if e.kind == ErrorKind::Transient => link.breaker.failed(),
                    _ => link.breaker.answered(),
                }
                match result {
                    Ok((output, cost)) => {
                        return Ok(Generated {
                            output,
                            provenance: provenance(cost, false, tries, &skipped),
                        })
                    }
                    Err(e) if e.kind == ErrorKind::Transient && tries < self.retry.max_attempts => {
                        // The provider's own Retry-After wins when longer than our backoff, up
                        // to the longest wait the policy allows.
                        let wait = self.retry.backoff(tries).max(
                            e.retry_after
                                .unwrap_or_default()
                                .min(Duration::from_millis(self.retry.max_retry_after_ms)),
                        );
                        tracing::warn!(
                            capability = C::NAME,
                            provider = provider.name(),
                            attempt = tries,
                            wait_ms = wait.as_millis() as u64,
                            error = %e,
                            "transient provider error, retrying"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => break e,
                }
            };
            match failure.kind {
                ErrorKind::Invalid => {
                    return Err(ChainError::Invalid {
                        provider: provider.name().to_string(),
                        message: failure.message,
                    })
                }
                // An open circuit says nothing about this request: not remembered.
                ErrorKind::Unavailable if circuit_open => {}
                ErrorKind::Unavailable => {
                    if let Some(cache) = &self.cache {
                        cache
                            .store_unavailable::<C>(&key, &failure.message)
                            .map_err(|e| ChainError::Cache(e.to_string()))?;
                    }
                }
                ErrorKind::Transient => {}
            }
            skipped.push(Skipped {
                provider: provider.name().to_string(),
                reason: failure.message,
                kind: failure.kind,
                cached: false,
            });
        }
        Err(ChainError::Exhausted {
            capability: C::NAME,
            failures: skipped,
        })
    }

    async fn call_once(
        &self,
        link: &Link<C>,
        key: &str,
        request: &C::Request,
    ) -> Result<(C::Output, u64), ProviderError> {
        let _permit = link
            .limit
            .acquire()
            .await
            .map_err(|_| ProviderError::transient("provider limiter closed"))?;
        if let Some(rate) = &link.rate {
            rate.ready().await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let scratch = match &self.cache {
            Some(cache) => cache.scratch(),
            None => temp_scratch(),
        }
        .map_err(|e| ProviderError::transient(format!("cannot create a scratch folder: {e}")))?;
        let result = C::call(&*link.provider, request, &scratch).await;
        match result {
            Ok(produced) => {
                let cost = produced.cost_micro_usd;
                match &self.cache {
                    Some(cache) => {
                        let output = cache.store::<C>(key, &scratch, produced).map_err(|e| {
                            ProviderError::transient(format!("cannot store the result: {e}"))
                        })?;
                        // Shared with every worker; a failure costs a later worker a call,
                        // not this one its result.
                        if let Err(e) = cache.publish::<C>(key).await {
                            tracing::warn!(capability = C::NAME, key, error = %e, "the result could not be shared with other workers");
                        }
                        Ok((output, cost))
                    }
                    None => Ok((produced.output, cost)),
                }
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                Err(e)
            }
        }
    }
}

/// A fresh scratch folder under the system's temporary folder, for chains without a cache.
fn temp_scratch() -> std::io::Result<std::path::PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("studio-provider-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests;

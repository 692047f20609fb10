//! What keeps one process from hammering a vendor: a circuit breaker per provider, shared by
//! every request of the process, and a requests-per-minute limit beside the chain's concurrency
//! limit.
//!
//! The breaker follows the usual three states (Nygard, *Release It!*, "Circuit Breaker"):
//! closed (calls go through, consecutive transient failures are counted) → open after
//! [`BreakerPolicy::failures`] of them (calls are skipped at once, so the chain's next provider
//! takes over) → half-open once [`BreakerPolicy::cooldown_s`] has passed (one probe goes
//! through; success closes the breaker, failure opens it again).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// When a provider's breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Consecutive transient failures (each failed call, retries included) that open the
    /// breaker. Default 5; 0 turns breakers off.
    pub failures: u32,
    /// Seconds the breaker stays open before one probe call is let through. Default 30.
    pub cooldown_s: f64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown_s: 30.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight since then; another is allowed if it never reports back within a
    /// cool-down (its caller was cancelled).
    HalfOpen {
        since: Instant,
    },
}

/// A circuit breaker for one provider.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

/// Why a call was not let through.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// Consecutive failures that opened the breaker.
    pub failures: u32,
    /// Time until the next probe is allowed.
    pub retry_in: Duration,
}

impl std::fmt::Display for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped: circuit open after {} consecutive failures; next probe in {:.0} s",
            self.failures,
            self.retry_in.as_secs_f64().ceil()
        )
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn cooldown(&self) -> Duration {
        Duration::from_secs_f64(self.policy.cooldown_s.max(0.0))
    }

    /// Lets a call through, or says why not. Once the cool-down has passed, the first caller is
    /// the probe and the others keep being refused until it reports.
    pub fn admit(&self) -> Result<(), Open> {
        if self.policy.failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
            State::Open { until } => Err(Open {
                failures: self.policy.failures,
                retry_in: until - now,
            }),
            State::HalfOpen { since } if now.duration_since(since) >= self.cooldown() => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
            State::HalfOpen { since } => Err(Open {
                failures: self.policy.failures,
                retry_in: self.cooldown().saturating_sub(now.duration_since(since)),
            }),
        }
    }

    /// The provider answered (a result, or a refusal of this request): the breaker closes.
    pub fn answered(&self) {
        *self.state.lock().expect("breaker lock") = State::Closed { failures: 0 };
    }

    /// A transient failure (timeout, 5xx, 429, connection refused).
    pub fn failed(&self) {
        if self.policy.failures == 0 {
            return;
        }
        let mut state = self.state.lock().expect("breaker lock");
        let open = State::Open {
            until: Instant::now() + self.cooldown(),
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.policy.failures => open,
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
            State::HalfOpen { .. } | State::Open { .. } => open,
        };
    }

    /// `closed`, `open` or `half-open`, for logs and `studio providers check`.
    pub fn state(&self) -> &'static str {
        match *self.state.lock().expect("breaker lock") {
            State::Closed { .. } => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half-open",
        }
    }
}

/// A requests-per-minute limit (a GCRA bucket from the `governor` crate, bursts up to a
/// minute's worth).
#[derive(Debug)]
pub struct RateLimit {
    per_minute: NonZeroU32,
    limiter: governor::DefaultDirectRateLimiter,
}

impl RateLimit {
    /// At most `per_minute` requests a minute; `None` for 0.
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            per_minute,
            limiter: governor::RateLimiter::direct(governor::Quota::per_minute(per_minute)),
        })
    }

    /// Waits until one more request is allowed.
    pub async fn ready(&self) {
        self.limiter.until_ready().await;
    }

    /// The limit, requests per minute.
    pub fn limit(&self) -> u32 {
        self.per_minute.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown_s: f64) -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            failures: 3,
            cooldown_s,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(60.0);
        b.failed();
        b.failed();
        b.answered();
        b.failed();
        b.failed();
        assert_eq!(b.state(), "closed");
        assert!(b.admit().is_ok());
        b.failed();
        assert_eq!(b.state(), "open");
        let open = b.admit().unwrap_err();
        assert_eq!(open.failures, 3);
        assert!(open.retry_in > Duration::from_secs(59));
        assert!(open.to_string().contains("circuit open after 3"), "{open}");
    }

    #[test]
    fn one_probe_after_the_cooldown() {
        let b = breaker(0.05);
        for _ in 0..3 {
            b.failed();
        }
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok(), "the probe");
        assert_eq!(b.state(), "half-open");
        assert!(b.admit().is_err(), "only one probe at a time");
        b.failed();
        assert_eq!(b.state(), "open");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok());
        b.answered();
        assert_eq!(b.state(), "closed");
        assert!(b.admit().is_ok() && b.admit().is_ok());
    }

    #[test]
    fn a_lost_probe_does_not_wedge_it() {
        let b = breaker(0.05);
        for _ in 0..3 {
            b.failed();
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok());
        // The probe's caller is cancelled and never reports.
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok(), "a new probe after another cool-down");
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let b = CircuitBreaker::new(BreakerPolicy {
            failures: 0,
            cooldown_s: 1.0,
        });
        for _ in 0..10 {
            b.failed();
        }
        assert!(b.admit().is_ok());
    }
}

//! Failed sign-ins per account: after `max_sign_in_failures` wrong passwords for one address
//! within `sign_in_failure_window_s`, sign-ins for it are refused until the oldest failure leaves
//! the window, from any client address and on any port (security review M4). Kept in memory per
//! replica; the gateway's per-address limits come on top.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond it, addresses whose failures all left the window are
/// forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Recent failures per normalized address.
#[derive(Debug)]
pub struct SignInThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInThrottle {
    /// Refuses an address after `max_failures` failures within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        SignInThrottle {
            max_failures: max_failures.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `email` has used up its failures: how long until it may try again.
    pub fn check(&self, email: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        let Some(times) = map.get_mut(email) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.max_failures {
            return Ok(());
        }
        let oldest = *times.front().expect("full");
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts a wrong password for `email`.
    pub fn failed(&self, email: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() >= MAX_TRACKED && !map.contains_key(email) {
            let window = self.window;
            map.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let times = map.entry(email.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Forgets `email`'s failures after a good sign-in.
    pub fn succeeded(&self, email: &str) {
        self.failures.lock().expect("throttle lock").remove(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_its_failures_until_they_age_out() {
        let t = SignInThrottle::new(3, Duration::from_millis(300));
        for _ in 0..3 {
            assert!(t.check("ada@example.com").is_ok());
            t.failed("ada@example.com");
        }
        let wait = t.check("ada@example.com").unwrap_err();
        assert!(wait <= Duration::from_millis(300));
        assert!(t.check("other@example.com").is_ok(), "per account");
        std::thread::sleep(Duration::from_millis(320));
        assert!(t.check("ada@example.com").is_ok(), "aged out");
        t.failed("ada@example.com");
        t.succeeded("ada@example.com");
        assert!(t.failures.lock().unwrap().is_empty());
    }
}

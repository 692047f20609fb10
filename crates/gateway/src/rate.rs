//! Rate limits: GCRA token buckets (the `governor` crate) per client address on every `/v1`
//! route, a stricter one per address on the sign-in routes, and one per signed-in user. An IPv6
//! client counts by its /64 network (one subscriber's allocation, RFC 6177; keyed by the full
//! address, one /64 would give an attacker 2^64 buckets). A refused request gets `429 Too Many
//! Requests` with `Retry-After` in seconds (RFC 9110 §10.2.3).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;
use crate::settings::RateLimitSettings;
use crate::state::AppState;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The gateway's limiters.
pub struct Limits {
    ip: Keyed<IpAddr>,
    auth_ip: Keyed<IpAddr>,
    user: Keyed<String>,
    clock: DefaultClock,
    client_ip_header: Option<String>,
    max_streams: usize,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl Limits {
    pub fn new(settings: &RateLimitSettings) -> Limits {
        Limits {
            ip: RateLimiter::keyed(quota(settings.per_ip_per_minute, settings.per_ip_burst)),
            auth_ip: RateLimiter::keyed(quota(
                settings.auth_per_ip_per_minute,
                settings.auth_per_ip_burst,
            )),
            user: RateLimiter::keyed(quota(settings.per_user_per_minute, settings.per_user_burst)),
            clock: DefaultClock::default(),
            client_ip_header: settings.client_ip_header.clone(),
            max_streams: settings.max_streams_per_user.max(1) as usize,
            streams: Arc::default(),
        }
    }

    /// A slot for one more progress stream of `user`, held until the slot is dropped (the
    /// stream ended or its client went away).
    ///
    /// Errors: 429 when `user` already holds `max_streams_per_user` streams.
    pub fn open_stream(&self, user: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.streams.lock().expect("streams lock");
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= self.max_streams {
            metrics::counter!("gateway_rate_limited_total", "scope" => "streams").increment(1);
            return Err(ApiError::too_many(
                5,
                &format!(
                    "{} progress streams are open for this account, the most at once \
                     (gateway.rate_limit.max_streams_per_user); close one",
                    self.max_streams
                ),
            ));
        }
        *n += 1;
        Ok(StreamSlot {
            streams: self.streams.clone(),
            user: user.to_owned(),
        })
    }

    /// Counts a request of a signed-in user.
    pub fn check_user(&self, user: &str) -> Result<(), ApiError> {
        self.user.check_key(&user.to_owned()).map_err(|not_until| {
            metrics::counter!("gateway_rate_limited_total", "scope" => "user").increment(1);
            ApiError::too_many(
                wait_s(not_until.wait_time_from(self.clock.now())),
                "too many requests for this account",
            )
        })
    }

    fn check_ip(&self, ip: IpAddr, auth_route: bool) -> Result<(), ApiError> {
        let (limiter, scope) = if auth_route {
            (&self.auth_ip, "auth_ip")
        } else {
            (&self.ip, "ip")
        };
        limiter.check_key(&bucket(ip)).map_err(|not_until| {
            metrics::counter!("gateway_rate_limited_total", "scope" => scope).increment(1);
            ApiError::too_many(
                wait_s(not_until.wait_time_from(self.clock.now())),
                "too many requests from this address",
            )
        })
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn retain_recent(&self) {
        self.ip.retain_recent();
        self.auth_ip.retain_recent();
        self.user.retain_recent();
    }
}

/// One open progress stream of a user; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock().expect("streams lock");
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// The key `ip` is counted under: an IPv4 address as it is; an IPv6 address by its /64 (an
/// IPv4-mapped one as its IPv4 address).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(network))
            }
        },
    }
}

fn wait_s(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Middleware: the per-IP limit (the stricter one on `/v1/auth/`).
pub async fn per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    let ip = crate::extract::client_ip(
        request.headers(),
        peer,
        state.limits.client_ip_header.as_deref(),
    );
    if let Some(ip) = ip {
        let auth_route = request.uri().path().starts_with("/v1/auth/");
        if auth_route {
            if let Err(err) = state.limits.check_ip(ip, true) {
                return err.into_response();
            }
        }
        if let Err(err) = state.limits.check_ip(ip, false) {
            return err.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> Limits {
        Limits::new(&RateLimitSettings {
            per_ip_per_minute: 1,
            per_ip_burst: 100,
            per_user_per_minute: 1,
            per_user_burst: 100,
            auth_per_ip_per_minute: 1,
            auth_per_ip_burst: burst,
            client_ip_header: None,
            max_streams_per_user: 2,
        })
    }

    #[test]
    fn one_ipv6_network_shares_one_bucket() {
        let l = limits(10);
        for i in 1..=10u16 {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            assert!(l.check_ip(ip, true).is_ok(), "{ip}");
        }
        let eleventh: IpAddr = "2001:db8::b".parse().unwrap();
        assert!(l.check_ip(eleventh, true).is_err(), "the same /64");
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert!(l.check_ip(other, true).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(bucket(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_user_holds_at_most_n_streams() {
        let l = limits(10);
        let a = l.open_stream("u").unwrap();
        let _b = l.open_stream("u").unwrap();
        assert!(l.open_stream("u").is_err());
        assert!(l.open_stream("v").is_ok(), "per user");
        drop(a);
        assert!(l.open_stream("u").is_ok(), "a closed stream frees its slot");
    }
}

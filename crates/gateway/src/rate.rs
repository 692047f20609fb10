//! Rate limits: GCRA token buckets (the `governor` crate) per client IP on every `/v1` route, a
//! stricter one per IP on the sign-in routes, and one per signed-in user. A refused request gets
//! `429 Too Many Requests` with `Retry-After` in seconds (RFC 9110 §10.2.3).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
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
        }
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
        limiter.check_key(&ip).map_err(|not_until| {
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

//! Graceful shutdown of the gateway: requests in flight when the signal comes are finished, new
//! connections are refused. In its own test binary, so the process-wide in-flight gauge counts
//! only this test's requests.

mod support;

use serde_json::json;
use support::Platform;

/// `http_server_requests_in_flight` as the gateway reports it, minus the scrape itself.
async fn in_flight(p: &Platform) -> f64 {
    let text = p
        .http
        .get(p.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("http_server_requests_in_flight "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        - 1.0
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_ones() {
    let mut p = Platform::start().await;
    p.register("graceful@example.com").await;
    // Sign-ins take an argon2 hash each, two at a time: these stay in flight for a while.
    let body = json!({"email": "graceful@example.com", "password": "correct horse battery"});
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let request = p.http.post(p.url("/v1/auth/sign-in")).json(&body).send();
            tokio::spawn(request)
        })
        .collect();
    let mut waited = 0;
    while in_flight(&p).await < 6.0 {
        waited += 1;
        assert!(waited < 500, "the sign-ins never were in flight together");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let base = p.base.clone();
    p.stop_gateway().await;
    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request is answered");
        assert_eq!(response.status(), 200, "in-flight sign-in completed");
    }
    let refused = p.http.get(format!("{base}/healthz")).send().await;
    assert!(refused.is_err(), "a stopped gateway accepts nothing new");
    p.stop().await;
}

//! Google sign-in through the gateway (authorization code + PKCE) against a local fake of
//! Google's token and userinfo endpoints. The user and project services' own gRPC tests live in
//! their crates (`crates/user/tests`, `crates/project/tests`).

mod support;

use base64::Engine as _;
use support::{Options, Platform};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A fake Google (token and userinfo endpoints) for Ada Lovelace's verified address, and the
/// platform configured to sign in with it.
async fn google_and_platform() -> (MockServer, Platform) {
    google_and_platform_with(None).await
}

/// [`google_and_platform`] with outgoing mail configured.
async fn google_and_platform_with(
    mail: Option<studio_user::settings::MailSettings>,
) -> (MockServer, Platform) {
    let google = MockServer::start().await;
    // Google's token endpoint (developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code).
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "ya29.fake-access-token",
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
            "id_token": "header.payload.signature"
        })))
        .mount(&google)
        .await;
    // The OpenID Connect userinfo endpoint.
    Mock::given(method("GET"))
        .and(path("/v1/userinfo"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "sub": "110169484474386276334",
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "email": "ada.lovelace@gmail.com",
            "email_verified": true,
            "picture": "https://lh3.googleusercontent.com/a/x"
        })))
        .mount(&google)
        .await;
    let p = Platform::start_with(Options {
        google: Some(studio_user::settings::GoogleSettings {
            client_id: "studio-test.apps.googleusercontent.com".into(),
            client_secret: secrecy::SecretString::from("GOCSPX-test".to_owned()),
            redirect_uris: vec![REDIRECT.into()],
            auth_url: format!("{}/o/oauth2/v2/auth", google.uri()),
            token_url: format!("{}/token", google.uri()),
            userinfo_url: format!("{}/v1/userinfo", google.uri()),
            state_ttl_s: 600,
        }),
        mail,
        ..Options::default()
    })
    .await;
    (google, p)
}

const REDIRECT: &str = "http://localhost:3000/auth/google/callback";

#[tokio::test]
async fn google_sign_in_with_pkce_against_a_fake_google() {
    let (google, p) = google_and_platform().await;
    let redirect = REDIRECT;

    let (status, _, problem) = p
        .call(
            "GET",
            "/v1/auth/google/start?redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("redirect_uri"))
    );

    let (status, _, started) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(redirect)),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let url = reqwest::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], redirect);
    assert_eq!(q["state"], started["state"].as_str().unwrap());
    assert!(q["scope"].contains("openid") && q["scope"].contains("email"));

    let binding = started["binding"].as_str().unwrap().to_owned();
    assert!(binding.len() >= 40, "a 32-byte secret: {binding}");
    let finish = |code: &str, state: &str, binding: &str| {
        let body = serde_json::json!({"code": code, "state": state, "binding": binding});
        let p = &p;
        async move {
            p.call("POST", "/v1/auth/google/finish", None, Some(body))
                .await
        }
    };
    let (status, _, _) = finish("4/0Afake", "not-a-state", &binding).await;
    assert_eq!(status, 401);
    let state = q["state"].clone();
    let (status, _, pair) = finish("4/0Afake-code", &state, &binding).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["user"]["email"], "ada.lovelace@gmail.com");
    assert_eq!(pair["user"]["display_name"], "Ada Lovelace");
    assert_eq!(
        pair["user"]["sign_in_methods"],
        serde_json::json!(["google"])
    );

    // The token request carried the code and the verifier whose S256 hash is the challenge.
    let requests = google.received_requests().await.unwrap();
    let token_request = requests.iter().find(|r| r.url.path() == "/token").unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&token_request.body)
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "4/0Afake-code");
    assert_eq!(form["redirect_uri"], redirect);
    let digest = ring::digest::digest(&ring::digest::SHA256, form["code_verifier"].as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
        q["code_challenge"]
    );
    let userinfo = requests
        .iter()
        .find(|r| r.url.path() == "/v1/userinfo")
        .unwrap();
    assert_eq!(
        userinfo.headers["authorization"].to_str().unwrap(),
        "Bearer ya29.fake-access-token"
    );

    // The state is single-use; a second sign-in with a new state finds the same account.
    let (status, _, _) = finish("4/0Afake-code", &state, &binding).await;
    assert_eq!(status, 401, "a state cannot be replayed");
    let (_, _, again) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(redirect)),
            None,
            None,
        )
        .await;
    let (status, _, second) = finish(
        "4/0Aother",
        again["state"].as_str().unwrap(),
        again["binding"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(second["user"]["id"], pair["user"]["id"]);
    p.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Someone registers the victim's address with a password of their own; the victim, whom Google
/// has verified, later signs in with Google. The account is the victim's from then on: the
/// squatter's password and sessions no longer work (security review H4).
#[tokio::test]
async fn google_does_not_adopt_an_unverified_password_account() {
    let (_google, p) = google_and_platform().await;
    let (_, squatter_refresh, squatter_id) = p.register("ada.lovelace@gmail.com").await;
    let (_, _, started) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(REDIRECT)),
            None,
            None,
        )
        .await;
    let (status, _, pair) = p
        .call(
            "POST",
            "/v1/auth/google/finish",
            None,
            Some(serde_json::json!({"code": "4/0Afake", "state": started["state"], "binding": started["binding"]})),
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(
        pair["user"]["id"],
        squatter_id.as_str(),
        "the address's account"
    );
    assert_eq!(
        pair["user"]["sign_in_methods"],
        serde_json::json!(["google"]),
        "without the password"
    );
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/sign-in",
            None,
            Some(serde_json::json!({"email": "ada.lovelace@gmail.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, 401, "the squatter's password no longer signs in");
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": squatter_refresh})),
        )
        .await;
    assert_eq!(status, 401, "nor does the session it opened");
    // The Google session works.
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 200);
    p.stop().await;
}

/// The owner of a password account verifies the address with the link in the mail (REST:
/// `POST /v1/auth/verify-email`); a later Google sign-in with that address links the account and
/// keeps its password and sessions: only an unverified account is adopted.
#[tokio::test]
async fn google_links_a_verified_password_account_and_keeps_its_password() {
    let sink = studio_testkit::smtp::SmtpSink::start().await;
    let (_google, p) = google_and_platform_with(Some(studio_user::settings::MailSettings {
        from: "Studio <no-reply@studio.example>".into(),
        verify_url: "http://localhost:3000/verify-email?token={token}".into(),
        verification_ttl_s: 3600,
        resend_after_s: 60,
        max_attempts: 3,
        transport: studio_user::settings::MailTransport::Smtp {
            host: "127.0.0.1".into(),
            port: sink.port,
            security: studio_user::settings::SmtpSecurity::None,
            username: None,
            password: None,
            timeout_s: 5,
        },
    }))
    .await;
    let (access, refresh, id) = p.register("ada.lovelace@gmail.com").await;
    let (_, _, me) = p.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!(me["email_verified"], false);
    // Too soon for another mail: 429 naming the setting.
    let (status, _, problem) = p
        .call("POST", "/v1/me/verification-email", Some(&access), None)
        .await;
    assert_eq!(status, 429, "{problem}");
    let mails = sink.wait_for(1, std::time::Duration::from_secs(20)).await;
    let link =
        studio_testkit::smtp::first_link(&studio_testkit::smtp::body(&mails[0])).expect("a link");
    let token = link.split("token=").nth(1).unwrap();
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/verify-email",
            None,
            Some(serde_json::json!({"token": "forged"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "token");
    let (status, _, verified) = p
        .call(
            "POST",
            "/v1/auth/verify-email",
            None,
            Some(serde_json::json!({"token": token})),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["email"], "ada.lovelace@gmail.com");
    let (_, _, me) = p.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!(me["email_verified"], true);
    let (status, _, _) = p
        .call("POST", "/v1/me/verification-email", Some(&access), None)
        .await;
    assert_eq!(status, 409, "already verified");

    let (_, _, started) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(REDIRECT)),
            None,
            None,
        )
        .await;
    let (status, _, pair) = p
        .call(
            "POST",
            "/v1/auth/google/finish",
            None,
            Some(serde_json::json!({"code": "4/0Afake", "state": started["state"], "binding": started["binding"]})),
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["user"]["id"], id.as_str());
    assert_eq!(
        pair["user"]["sign_in_methods"],
        serde_json::json!(["password", "google"])
    );
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/sign-in",
            None,
            Some(serde_json::json!({"email": "ada.lovelace@gmail.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, 200, "the owner's password still signs in");
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(status, 200, "and the owner's session still works");
    p.stop().await;
}

/// A link carrying the code and state of a sign-in someone else started (login CSRF) signs no
/// one in: finishing needs the binding secret of the client that started it (security review
/// M6).
#[tokio::test]
async fn a_sign_in_started_elsewhere_cannot_be_finished_here() {
    let (_google, p) = google_and_platform().await;
    let start = || async {
        let (status, _, started) = p
            .call(
                "GET",
                &format!("/v1/auth/google/start?redirect_uri={}", urlencode(REDIRECT)),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200);
        started
    };
    let finish = |state: &serde_json::Value, binding: Option<&serde_json::Value>| {
        let mut body = serde_json::json!({"code": "4/0Aattacker", "state": state});
        if let Some(b) = binding {
            body["binding"] = b.clone();
        }
        let p = &p;
        async move {
            p.call("POST", "/v1/auth/google/finish", None, Some(body))
                .await
        }
    };
    let attackers = start().await;
    let victims = start().await;
    // The victim's browser holds its own binding, not the attacker's.
    let (status, _, _) = finish(&attackers["state"], Some(&victims["binding"])).await;
    assert_eq!(status, 401);
    // Without a binding the body is refused outright.
    let (status, _, problem) = finish(&victims["state"], None).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("binding"),
        "{problem}"
    );
    let (status, _, pair) = finish(&victims["state"], Some(&victims["binding"])).await;
    assert_eq!(status, 200, "{pair}");
    p.stop().await;
}

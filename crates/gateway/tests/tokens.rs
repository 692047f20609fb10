//! Access and refresh tokens end to end: forged and stale access tokens are refused at the
//! gateway, a rotated signing key is picked up without a restart, and refresh tokens rotate with
//! reuse detection.

mod support;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::Ed25519KeyPair;
use serde_json::json;
use studio_core::Shutdown;
use studio_proto::user::v1 as pb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use support::{user_settings, Options, Platform, AUDIENCE, ISSUER};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(sub: &str, iss: &str, aud: &str, exp_in_s: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": iss, "aud": aud, "sub": sub, "role": "admin", "iat": now, "exp": now + exp_in_s, "jti": "t"})
}

/// A token signed with a key the user service never issued, claiming `kid`.
fn forged(kid: &str, sub: &str) -> String {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims(sub, ISSUER, AUDIENCE, 600),
        &EncodingKey::from_ed_der(pkcs8.as_ref()),
    )
    .unwrap()
}

/// Starts a second user service on the same database (so the same signing keys) that signs with
/// other claims, and returns a token it issued for `email`.
async fn token_from_twin(
    p: &Platform,
    email: &str,
    change: impl FnOnce(&mut studio_user::settings::AuthSettings),
) -> String {
    let mut settings = user_settings(&p.user_db, &Options::default());
    change(&mut settings.auth);
    let twin = studio_user::startup::Application::build(settings)
        .await
        .unwrap();
    let url = format!("http://{}", twin.grpc_addr());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(twin.run_until_stopped(shutdown.clone()));
    let mut client = UserServiceClient::new(
        studio_auth::service::ServiceIdentity::development("gateway")
            .tokens(studio_auth::service::audience::USER)
            .connect(url)
            .await
            .unwrap(),
    );
    let pair = client
        .sign_in(pb::SignInRequest {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    shutdown.trigger();
    task.await.unwrap().unwrap();
    pair.access_token
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_get_401() {
    let p = Platform::start().await;
    let (good, _, user_id) = p.register("tokens@example.com").await;
    let (status, _, _) = p.call("GET", "/v1/me", Some(&good), None).await;
    assert_eq!(status, 200);
    let kid = kid_of(&good);

    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(claims(&user_id, ISSUER, AUDIENCE, 600)
        .to_string()
        .as_bytes());
    let mut bad = vec![
        ("alg none", format!("{header_none}.{body}.")),
        ("other key, real kid", forged(&kid, &user_id)),
        ("unknown kid", forged("k-unknown", &user_id)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    // HS256 with the public key as the HMAC secret (the classic algorithm-confusion attack).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    bad.push((
        "hs256",
        jsonwebtoken::encode(
            &hs,
            &claims(&user_id, ISSUER, AUDIENCE, 600),
            &EncodingKey::from_secret(kid.as_bytes()),
        )
        .unwrap(),
    ));
    bad.push((
        "expired",
        token_from_twin(&p, "tokens@example.com", |a| a.access_ttl_s = -120).await,
    ));
    bad.push((
        "wrong aud",
        token_from_twin(&p, "tokens@example.com", |a| {
            a.audience = "other-api".into()
        })
        .await,
    ));
    bad.push((
        "wrong iss",
        token_from_twin(&p, "tokens@example.com", |a| a.issuer = "evil".into()).await,
    ));
    for (what, token) in &bad {
        for path in ["/v1/me", "/v1/projects"] {
            let (status, headers, problem) = p.call("GET", path, Some(token), None).await;
            assert_eq!(status, 401, "{what} on {path}: {problem}");
            assert!(headers.contains_key("www-authenticate"));
        }
    }
    let expired = &bad.iter().find(|(w, _)| *w == "expired").unwrap().1;
    let (_, _, problem) = p.call("GET", "/v1/me", Some(expired), None).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    let (status, _, _) = p.call("GET", "/v1/me", None, None).await;
    assert_eq!(status, 401);

    // The project service checks tokens itself too (gRPC straight past the gateway).
    let mut projects = studio_proto::project::v1::project_service_client::ProjectServiceClient::new(
        studio_auth::service::ServiceIdentity::development("gateway")
            .tokens(studio_auth::service::audience::PROJECT)
            .connect(p.project_grpc.clone())
            .await
            .unwrap(),
    );
    for (what, token) in &bad {
        let mut request =
            tonic::Request::new(studio_proto::project::v1::ListProjectsRequest { page: None });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let status = projects.list_projects(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{what}");
    }
    p.stop().await;
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up_without_restart() {
    let p = Platform::start().await;
    let (_, _, user_id) = p.register("root@example.com").await;
    let (first, _, _) = p.register("someone@example.com").await;
    let (status, _, _) = p.call("GET", "/v1/me", Some(&first), None).await;
    assert_eq!(status, 200, "the gateway has cached the first key");

    // Make root an admin (an operator's SQL), sign in again for a token with the role.
    let db = sqlx::PgPool::connect(&p.user_db).await.unwrap();
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1::uuid")
        .bind(&user_id)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let admin = p.sign_in("root@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut users = UserServiceClient::new(
        studio_auth::service::ServiceIdentity::development("gateway")
            .tokens(studio_auth::service::audience::USER)
            .connect(p.user_grpc.clone())
            .await
            .unwrap(),
    );
    // A plain user may not rotate.
    let mut request = tonic::Request::new(pb::RotateSigningKeyRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {first}").parse().unwrap());
    assert_eq!(
        users.rotate_signing_key(request).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut request = tonic::Request::new(pb::RotateSigningKeyRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let new_kid = users
        .rotate_signing_key(request)
        .await
        .unwrap()
        .into_inner()
        .kid;
    assert_ne!(new_kid, kid_of(&first));

    let second = p.sign_in("someone@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid_of(&second), new_kid);
    let (status, _, body) = p.call("GET", "/v1/me", Some(&second), None).await;
    assert_eq!(status, 200, "new key accepted after a JWKS refetch: {body}");
    let (status, _, _) = p.call("GET", "/v1/me", Some(&first), None).await;
    assert_eq!(
        status, 200,
        "tokens signed before the rotation stay valid until they expire"
    );
    let (_, _, jwks) = p
        .http
        .get(format!("{}/.well-known/jwks.json", p.user_http))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .map(|j| ((), (), j))
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys
        .iter()
        .all(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519" && k.get("d").is_none()));
    p.stop().await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_its_family() {
    let p = Platform::start_with(Options {
        reuse_grace_s: 0,
        ..Options::default()
    })
    .await;
    let (_, first, _) = p.register("reuse@example.com").await;
    let refresh = |token: String| {
        let p = &p;
        async move {
            p.call(
                "POST",
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await
        }
    };
    let (status, _, second) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{second}");
    let second_rt = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_rt, first);
    let (status, _, _) = p
        .call(
            "GET",
            "/v1/me",
            Some(second["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // An attacker replays the first token: refused, and the whole family dies.
    let (status, _, _) = refresh(first.clone()).await;
    assert_eq!(status, 401);
    let (status, _, _) = refresh(second_rt.clone()).await;
    assert_eq!(status, 401, "the legitimate descendant is revoked too");

    // Another sign-in starts a fresh family; signing out kills it.
    let fresh = p.sign_in("reuse@example.com").await;
    let fresh_rt = fresh["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/sign-out",
            None,
            Some(json!({"refresh_token": fresh_rt})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = refresh(fresh_rt).await;
    assert_eq!(status, 401);
    let (status, _, _) = refresh("made-up".to_owned()).await;
    assert_eq!(status, 401);
    p.stop().await;
}

/// Two refreshes racing with one token (two tabs) both succeed with the same new refresh token,
/// so neither tab is signed out and the family is not revoked; only one new token exists, and
/// it keeps working (security review L8: a racing refresh replays the pair).
#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_share_one_new_pair() {
    let p = Platform::start().await;
    let (_, mut token, _) = p.register("race@example.com").await;
    let db = sqlx::PgPool::connect(&p.user_db).await.unwrap();
    for round in 0..3 {
        let body = json!({"refresh_token": token});
        let (a, b) = tokio::join!(
            p.call("POST", "/v1/auth/refresh", None, Some(body.clone())),
            p.call("POST", "/v1/auth/refresh", None, Some(body.clone())),
        );
        assert_eq!((a.0, b.0), (200, 200), "round {round}: {} {}", a.2, b.2);
        let new_rt = a.2["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            b.2["refresh_token"], new_rt,
            "round {round}: one new refresh token"
        );
        assert!(b.2["access_token"].is_string());
        let live: i64 =
            sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE used_at IS NULL")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(live, 1, "round {round}: one live token in the family");
        // The race did not revoke the family: the shared token works.
        let (status, _, next) = p
            .call(
                "POST",
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": new_rt})),
            )
            .await;
        assert_eq!(status, 200, "round {round}: {next}");
        let revoked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM refresh_families WHERE revoked_at IS NOT NULL",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(revoked, 0);
        // The next round races with the newest token of the same family.
        token = next["refresh_token"].as_str().unwrap().to_owned();
    }
    // Within the grace window, a token whose successor was itself spent gets nothing: the
    // chain moved on.
    let body = json!({"refresh_token": token});
    let (status, _, next) = p
        .call("POST", "/v1/auth/refresh", None, Some(body.clone()))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": next["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = p.call("POST", "/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(status, 401);
    db.close().await;
    p.stop().await;
}

/// A session ends `max_session_age_s` after its sign-in however often it is refreshed, with a
/// message that says so (security review L8).
#[tokio::test]
async fn a_session_ends_at_its_maximum_age() {
    let p = Platform::start().await;
    let (_, token, _) = p.register("old-session@example.com").await;
    let db = sqlx::PgPool::connect(&p.user_db).await.unwrap();
    let body = json!({"refresh_token": token});
    // A fresh session's refresh token lives refresh_ttl_s (30 days), within the 90-day cap.
    let (status, _, pair) = p.call("POST", "/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(pair["refresh_expires_in"], 30 * 24 * 3600);
    // 89 days and 23 hours later (the family aged by hand), the new token lives an hour.
    sqlx::query("UPDATE refresh_families SET created_at = now() - interval '89 days 23 hours'")
        .execute(&db)
        .await
        .unwrap();
    let (status, _, pair) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 200);
    let left = pair["refresh_expires_in"].as_i64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");
    sqlx::query("UPDATE refresh_families SET created_at = now() - interval '91 days'")
        .execute(&db)
        .await
        .unwrap();
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 401);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("max_session_age_s"), "{detail}");
    db.close().await;
    p.stop().await;
}

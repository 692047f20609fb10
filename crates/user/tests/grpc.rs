//! The user service over gRPC directly: register, sign in, who am I, a wrong password.

use studio_auth::service::{audience, ServiceChannel, ServiceIdentity};
use studio_core::settings::DatabaseSettings;
use studio_core::Shutdown;
use studio_proto::user::v1 as upb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use studio_testkit::db::{drop_database, fresh_database};

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn register(users: &mut UserServiceClient<ServiceChannel>, email: &str) -> String {
    users
        .register(upb::RegisterRequest {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

#[tokio::test]
async fn register_sign_in_and_me_over_grpc() {
    let shutdown = Shutdown::new();
    let (db_name, db) = fresh_database("user").await;
    let app = studio_user::startup::Application::build(studio_user::settings::Settings {
        grpc_addr: "127.0.0.1:0".to_owned(),
        http_addr: "127.0.0.1:0".to_owned(),
        database: DatabaseSettings::new(&db),
        auth: studio_user::settings::AuthSettings {
            issuer: "studio-test".to_owned(),
            audience: "studio-api".to_owned(),
            ..Default::default()
        },
        password: Default::default(),
        google: None,
        mail: None,
        identity: Default::default(),
        tls: Default::default(),
    })
    .await
    .expect("user service starts");
    let grpc = format!("http://{}", app.grpc_addr());
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // Without the gateway's service token, even the public RPCs are refused on this port.
    let mut bare = UserServiceClient::connect(grpc.clone()).await.unwrap();
    let refused = bare
        .sign_in(upb::SignInRequest {
            email: "grpc@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let tokens = ServiceIdentity::development("gateway").tokens(audience::USER);
    let mut users = UserServiceClient::new(tokens.connect(grpc).await.unwrap());
    register(&mut users, "grpc@example.com").await;
    let pair = users
        .sign_in(upb::SignInRequest {
            email: "grpc@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = pair.access_token;
    let me = users
        .get_me(authed(upb::GetMeRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.email, "grpc@example.com");
    let wrong = users
        .sign_in(upb::SignInRequest {
            email: "grpc@example.com".into(),
            password: "wrong horse battery".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    shutdown.trigger();
    task.await.unwrap().unwrap();
    drop_database(&db_name).await;
}

/// Refresh tokens and verification links a day past their expiry, families left without
/// tokens, and mail sent a week ago are pruned; live ones stay (security review L5).
#[tokio::test]
async fn expired_refresh_tokens_and_empty_families_are_pruned() {
    let (db_name, db) = fresh_database("userprune").await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    studio_user::MIGRATOR.run(&pool).await.unwrap();
    let user = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, email_normalized) VALUES ($1, 'a@example.com', 'a@example.com')")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    let (old, live) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (family, created) in [(old, "now() - interval '40 days'"), (live, "now()")] {
        sqlx::query(&format!(
            "INSERT INTO refresh_families (id, user_id, created_at) VALUES ($1, $2, {created})"
        ))
        .bind(family)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (hash, family, expires) in [
        (b"old-1".to_vec(), old, "now() - interval '10 days'"),
        (b"old-2".to_vec(), old, "now() - interval '2 days'"),
        (b"live".to_vec(), live, "now() + interval '29 days'"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
             VALUES ($1, $2, $3, {expires})"
        ))
        .bind(hash)
        .bind(family)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    // A verification link two days past its expiry, one still open; mail sent eight days ago,
    // mail sent today.
    for (hash, expires) in [
        (b"link-old".to_vec(), "now() - interval '2 days'"),
        (b"link-live".to_vec(), "now() + interval '1 day'"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO email_verifications (token_hash, user_id, email_normalized, expires_at)
             VALUES ($1, $2, 'a@example.com', {expires})"
        ))
        .bind(hash)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    for sent in ["now() - interval '8 days'", "now()"] {
        sqlx::query(&format!(
            "INSERT INTO mail_outbox (id, kind, recipient, subject, body, sent_at)
             VALUES ($1, 'verification', 'a@example.com', 's', '', {sent})"
        ))
        .bind(uuid::Uuid::now_v7())
        .execute(&pool)
        .await
        .unwrap();
    }
    assert_eq!(
        studio_user::retention::prune_once(&pool).await.unwrap(),
        (2, 1, 1, 1)
    );
    let left: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [b"live".to_vec()]);
    assert_eq!(
        studio_user::retention::prune_once(&pool).await.unwrap(),
        (0, 0, 0, 0)
    );
    pool.close().await;
    drop_database(&db_name).await;
}

/// The gRPC port with a certificate speaks TLS only: a client that trusts the CA (`tls.ca_file`)
/// registers over `https://`; one that checks against the public roots, or speaks plain HTTP/2,
/// gets nothing through (security review M10).
#[tokio::test]
async fn the_grpc_port_serves_tls_with_its_certificate() {
    use studio_core::tls::TlsSettings;
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = studio_testkit::tls::localhost(certs_dir.path());
    let shutdown = Shutdown::new();
    let (db_name, db) = fresh_database("usertls").await;
    let app = studio_user::startup::Application::build(studio_user::settings::Settings {
        grpc_addr: "127.0.0.1:0".to_owned(),
        http_addr: "127.0.0.1:0".to_owned(),
        database: DatabaseSettings::new(&db),
        auth: Default::default(),
        password: Default::default(),
        google: None,
        mail: None,
        identity: Default::default(),
        tls: TlsSettings {
            cert_file: Some(certs.cert.clone()),
            key_file: Some(certs.key.clone()),
            ca_file: None,
        },
    })
    .await
    .expect("user service starts");
    let port = app.grpc_addr().port();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let tokens = ServiceIdentity::development("gateway").tokens(audience::USER);
    let client = |tls: TlsSettings, url: String| {
        let tokens = tokens.clone();
        async move {
            let endpoint = tls.endpoint("gateway", "gateway.user_url", &url).unwrap();
            let channel = endpoint.connect().await?;
            Ok::<_, tonic::transport::Error>(UserServiceClient::new(tokens.channel(channel)))
        }
    };
    let trusted = TlsSettings {
        ca_file: Some(certs.ca.clone()),
        ..Default::default()
    };
    let https = format!("https://localhost:{port}");
    let mut users = client(trusted, https.clone()).await.unwrap();
    register(&mut users, "tls@example.com").await;

    // The public roots do not know the test CA: the handshake fails.
    let untrusted = client(TlsSettings::default(), https).await;
    assert!(
        untrusted.is_err(),
        "a certificate from an unknown CA was accepted"
    );
    // Plain HTTP/2 to the TLS port gets no answer.
    let plain = client(TlsSettings::default(), format!("http://localhost:{port}")).await;
    if let Ok(mut plain) = plain {
        let refused = plain
            .sign_in(upb::SignInRequest {
                email: "tls@example.com".into(),
                password: "correct horse battery".into(),
            })
            .await;
        assert!(refused.is_err(), "{refused:?}");
    }
    shutdown.trigger();
    task.await.unwrap().unwrap();
    drop_database(&db_name).await;
}

//! The user service over gRPC directly: register, sign in, who am I, a wrong password.

use studio_core::settings::DatabaseSettings;
use studio_core::Shutdown;
use studio_proto::user::v1 as upb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use studio_testkit::db::{drop_database, fresh_database};
use tonic::transport::Channel;

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn register(users: &mut UserServiceClient<Channel>, email: &str) -> String {
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
    })
    .await
    .expect("user service starts");
    let grpc = format!("http://{}", app.grpc_addr());
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut users = UserServiceClient::connect(grpc).await.unwrap();
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

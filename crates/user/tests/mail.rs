//! Email verification end to end: the user service sends its mail over real SMTP to a local sink
//! (aiosmtpd) or through Mailgun's HTTP API (a local fake following the documented request and
//! answers), and the link in the mail verifies the address.

use std::time::Duration;

use studio_auth::service::{audience, ServiceChannel, ServiceIdentity};
use studio_core::settings::DatabaseSettings;
use studio_core::Shutdown;
use studio_proto::user::v1 as upb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use studio_testkit::db::{drop_database, fresh_database};
use studio_testkit::smtp::{body, first_link, header, SmtpSink};
use studio_user::mail::outbox::Outbox;
use studio_user::mail::Mail;
use studio_user::settings::{MailSettings, MailTransport, SmtpSecurity};
use wiremock::matchers::{basic_auth, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VERIFY_URL: &str = "https://studio.example/verify-email?token={token}";

fn smtp(port: u16) -> MailTransport {
    MailTransport::Smtp {
        host: "127.0.0.1".to_owned(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout_s: 5,
    }
}

fn mail_settings(transport: MailTransport, resend_after_s: i64) -> MailSettings {
    MailSettings {
        from: "Studio <no-reply@studio.example>".to_owned(),
        verify_url: VERIFY_URL.to_owned(),
        verification_ttl_s: 86_400,
        resend_after_s,
        max_attempts: 3,
        transport,
    }
}

struct Service {
    users: UserServiceClient<ServiceChannel>,
    pool: sqlx::PgPool,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    db_name: String,
}

impl Service {
    async fn start(mail: MailSettings) -> Service {
        let shutdown = Shutdown::new();
        let (db_name, db) = fresh_database("usermail").await;
        let app = studio_user::startup::Application::build(studio_user::settings::Settings {
            grpc_addr: "127.0.0.1:0".to_owned(),
            http_addr: "127.0.0.1:0".to_owned(),
            database: DatabaseSettings::new(&db),
            auth: studio_user::settings::AuthSettings {
                allow_development_kek: true,
                ..Default::default()
            },
            password: Default::default(),
            google: None,
            mail: Some(mail),
            identity: Default::default(),
            tls: Default::default(),
        })
        .await
        .expect("user service starts");
        let grpc = format!("http://{}", app.grpc_addr());
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let tokens = ServiceIdentity::development("gateway").tokens(audience::USER);
        let users = UserServiceClient::new(tokens.connect(grpc).await.unwrap());
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        Service {
            users,
            pool,
            shutdown,
            task,
            db_name,
        }
    }

    async fn register(&mut self, email: &str) -> String {
        self.users
            .register(upb::RegisterRequest {
                email: email.to_owned(),
                password: "correct horse battery".to_owned(),
                display_name: "Ada".to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_token
    }

    async fn me(&mut self, token: &str) -> upb::User {
        self.users
            .get_me(authed(upb::GetMeRequest {}, token))
            .await
            .unwrap()
            .into_inner()
    }

    async fn verify(&mut self, token: &str) -> Result<String, tonic::Status> {
        self.users
            .verify_email(upb::VerifyEmailRequest {
                token: token.to_owned(),
            })
            .await
            .map(|r| r.into_inner().email)
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
        self.pool.close().await;
        drop_database(&self.db_name).await;
    }
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The token in a verification link.
fn token_of(link: &str) -> String {
    let prefix = VERIFY_URL.replace("{token}", "");
    link.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link} is not a verification link"))
        .to_owned()
}

/// Registering sends one mail over SMTP, from the configured mailbox to the new address, with a
/// link whose token verifies it; the token is stored only as a digest, and the outbox row keeps
/// no copy of it once sent.
#[tokio::test]
async fn the_link_in_the_mail_verifies_the_address() {
    let sink = SmtpSink::start().await;
    let mut s = Service::start(mail_settings(smtp(sink.port), 60)).await;
    let access = s.register("Ada@Example.com").await;
    assert!(!s.me(&access).await.email_verified);
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "one mail");
    let mail = &mails[0];
    assert_eq!(header(mail, "To").as_deref(), Some("Ada@Example.com"));
    assert_eq!(
        header(mail, "From").as_deref(),
        Some("Studio <no-reply@studio.example>")
    );
    assert_eq!(
        header(mail, "Subject").as_deref(),
        Some("Verify your email address for Studio")
    );
    let token = token_of(&first_link(&body(mail)).expect("a link in the mail"));
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM email_verifications")
        .fetch_all(&s.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes(), "only the digest is stored");
    let body: String = sqlx::query_scalar("SELECT body FROM mail_outbox WHERE sent_at IS NOT NULL")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(body, "", "the sent mail's body (and its link) is not kept");

    // A wrong token verifies nothing and names the field.
    let wrong = s.verify("not-a-token").await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
    assert!(wrong.message().contains("token"), "{}", wrong.message());
    assert!(!s.me(&access).await.email_verified);

    assert_eq!(s.verify(&token).await.unwrap(), "Ada@Example.com");
    assert!(s.me(&access).await.email_verified);
    // Mail scanners open links first: the same link answers the same again.
    assert_eq!(s.verify(&token).await.unwrap(), "Ada@Example.com");
    // Nothing more to verify.
    let again = s
        .users
        .resend_verification(authed(upb::ResendVerificationRequest {}, &access))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert_eq!(sink.messages().len(), 1);
    s.stop().await;
}

/// A new mail may be asked for once the resend interval has passed, not before; an expired link
/// is refused with a message that says so, and the newer link still works.
#[tokio::test]
async fn resending_is_spaced_and_expired_links_are_refused() {
    let sink = SmtpSink::start().await;
    let mut s = Service::start(mail_settings(smtp(sink.port), 60)).await;
    let access = s.register("grace@example.com").await;
    let resend = |s: &mut Service| {
        let mut users = s.users.clone();
        let request = authed(upb::ResendVerificationRequest {}, &access);
        async move { users.resend_verification(request).await }
    };
    let early = resend(&mut s).await.unwrap_err();
    assert_eq!(early.code(), tonic::Code::ResourceExhausted);
    assert!(
        early.message().contains("user.mail.resend_after_s"),
        "{}",
        early.message()
    );
    // A minute later (the first mail's row aged by hand).
    sqlx::query("UPDATE email_verifications SET created_at = now() - interval '61 seconds', expires_at = now() - interval '1 second'")
        .execute(&s.pool)
        .await
        .unwrap();
    let sent = resend(&mut s).await.unwrap().into_inner();
    assert_eq!(sent.expires_in_s, 86_400);
    let mails = sink.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 2);
    let (first, second) = (
        token_of(&first_link(&body(&mails[0])).unwrap()),
        token_of(&first_link(&body(&mails[1])).unwrap()),
    );
    assert_ne!(first, second);
    let expired = s.verify(&first).await.unwrap_err();
    assert_eq!(expired.code(), tonic::Code::InvalidArgument);
    assert!(
        expired.message().contains("expired"),
        "{}",
        expired.message()
    );
    assert_eq!(s.verify(&second).await.unwrap(), "grace@example.com");
    assert!(s.me(&access).await.email_verified);
    s.stop().await;
}

/// With the mail server down, registering still succeeds and the mail waits in the outbox; the
/// try is recorded with its error and a later due time, and once the server is back the mail
/// goes out and its body is emptied.
#[tokio::test]
async fn mail_waits_out_a_mail_server_outage() {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let (db_name, db) = fresh_database("useroutbox").await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    studio_user::MIGRATOR.run(&pool).await.unwrap();
    let settings = mail_settings(smtp(sink.port), 60);
    let outbox = Outbox::new(
        pool.clone(),
        studio_user::mail::sender(&settings).unwrap(),
        3,
    );
    let mut tx = pool.begin().await.unwrap();
    let mail = Mail {
        to: "ada@example.com".to_owned(),
        subject: "Hello".to_owned(),
        text: "A link: https://studio.example/x\n".to_owned(),
    };
    let id = studio_user::mail::outbox::enqueue(&mut tx, "verification", &mail)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let pass = outbox.deliver_due().await.unwrap();
    assert_eq!((pass.sent, pass.retried, pass.given_up), (0, 1, 0));
    let (attempts, error, wait): (i32, Option<String>, f64) = sqlx::query_as(
        "SELECT attempts, last_error, extract(epoch FROM next_attempt_at - now())::float8 FROM mail_outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().starts_with("transient"));
    assert!(
        (20.0..=31.0).contains(&wait),
        "backs off 30 s, waits {wait}"
    );
    // Not due yet: nothing is tried.
    assert_eq!(
        outbox.deliver_due().await.unwrap(),
        Default::default(),
        "not due before its time"
    );

    sink.restart().await;
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let pass = outbox.deliver_due().await.unwrap();
    assert_eq!((pass.sent, pass.retried, pass.given_up), (1, 0, 0));
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        first_link(&body(&mails[0])).as_deref(),
        Some("https://studio.example/x")
    );
    let body: String = sqlx::query_scalar("SELECT body FROM mail_outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(body, "");

    pool.close().await;
    drop_database(&db_name).await;
}

/// Mailgun's Messages API as documented: POST /v3/{domain}/messages, Basic auth `api:{key}`,
/// multipart fields from/to/subject/text; 200 `{"id","message"}` on success. The verification
/// mail goes through it, and the link in its `text` field verifies the address.
#[tokio::test]
async fn the_verification_mail_goes_through_mailgun() {
    let mailgun = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mg.studio.example/messages"))
        .and(basic_auth("api", "key-test-123"))
        .and(header_regex(
            "content-type",
            "^multipart/form-data; boundary=",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "<20261207.1@mg.studio.example>",
            "message": "Queued. Thank you."
        })))
        .expect(1)
        .mount(&mailgun)
        .await;
    let transport = MailTransport::Mailgun {
        base_url: mailgun.uri(),
        domain: "mg.studio.example".to_owned(),
        api_key: secrecy::SecretString::from("key-test-123".to_owned()),
    };
    let mut s = Service::start(mail_settings(transport, 60)).await;
    let access = s.register("lin@example.com").await;
    let mut requests = Vec::new();
    for _ in 0..200 {
        requests = mailgun.received_requests().await.unwrap_or_default();
        if !requests.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests.len(), 1);
    let fields = studio_testkit::multipart::fields(&requests[0]);
    assert_eq!(fields["from"], "Studio <no-reply@studio.example>");
    assert_eq!(fields["to"], "lin@example.com");
    assert_eq!(fields["subject"], "Verify your email address for Studio");
    let token = token_of(&first_link(&fields["text"]).unwrap());
    assert_eq!(s.verify(&token).await.unwrap(), "lin@example.com");
    assert!(s.me(&access).await.email_verified);
    s.stop().await;
}

/// Mailgun's answers classed as the outbox needs them: 400 (a bad message) is given up; 401
/// (a wrong key, fixed by an operator), 429 and 5xx are tried again.
#[tokio::test]
async fn mailgun_errors_are_permanent_or_transient() {
    let mailgun = MockServer::start().await;
    let sender = studio_user::mail::sender(&mail_settings(
        MailTransport::Mailgun {
            base_url: mailgun.uri(),
            domain: "mg.studio.example".to_owned(),
            api_key: secrecy::SecretString::from("key-test-123".to_owned()),
        },
        60,
    ))
    .unwrap();
    let mail = Mail {
        to: "lin@example.com".to_owned(),
        subject: "s".to_owned(),
        text: "t".to_owned(),
    };
    for (status, body, permanent) in [
        (
            400,
            r#"{"message": "'to' parameter is not a valid address"}"#,
            true,
        ),
        (401, "Forbidden", false),
        (429, r#"{"message": "Too many requests"}"#, false),
        (500, r#"{"message": "Internal error"}"#, false),
    ] {
        mailgun.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&mailgun)
            .await;
        let err = sender.send(&mail).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(
            matches!(err, studio_user::mail::MailError::Permanent(_)),
            permanent,
            "{status}: {text}"
        );
        assert!(text.contains(&status.to_string()), "{text}");
    }
    let reason = sender.send(&mail).await.unwrap_err().to_string();
    assert!(
        reason.contains("Internal error"),
        "the vendor's reason is kept: {reason}"
    );
}

//! Starts the user and project services in this process, each on port 0 against its own fresh
//! database on the local Postgres, and talks to them over real sockets. The user service issues
//! the tokens the project service verifies (through its JWKS).

use studio_auth::service::{audience, ServiceChannel, ServiceIdentity};
use studio_core::settings::DatabaseSettings;
use studio_core::Shutdown;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use studio_testkit::db::{drop_database, fresh_database};

pub const ISSUER: &str = "studio-test";
pub const AUDIENCE: &str = "studio-api";

/// The running services.
pub struct Services {
    pub user_grpc: String,
    pub project_grpc: String,
    databases: Vec<String>,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Services {
    /// A user-service client with the gateway's service identity.
    pub async fn users(&self) -> UserServiceClient<ServiceChannel> {
        let tokens = ServiceIdentity::development("gateway").tokens(audience::USER);
        UserServiceClient::new(tokens.connect(self.user_grpc.clone()).await.unwrap())
    }

    /// A project-service client with the gateway's service identity.
    pub async fn projects(&self) -> ProjectServiceClient<ServiceChannel> {
        let tokens = ServiceIdentity::development("gateway").tokens(audience::PROJECT);
        ProjectServiceClient::new(tokens.connect(self.project_grpc.clone()).await.unwrap())
    }

    pub async fn start() -> Services {
        let shutdown = Shutdown::new();
        let (user_db_name, user_db) = fresh_database("user").await;
        let (project_db_name, project_db) = fresh_database("project").await;
        let user = studio_user::startup::Application::build(studio_user::settings::Settings {
            grpc_addr: "127.0.0.1:0".to_owned(),
            http_addr: "127.0.0.1:0".to_owned(),
            database: DatabaseSettings::new(&user_db),
            auth: studio_user::settings::AuthSettings {
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
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
        let user_grpc = format!("http://{}", user.grpc_addr());
        let user_http = format!("http://{}", user.http_addr());
        let mut verifier = studio_auth::VerifierSettings::new(
            format!("{user_http}/.well-known/jwks.json"),
            ISSUER,
            AUDIENCE,
        );
        verifier.min_refresh_interval_ms = 0;
        let project =
            studio_project::startup::Application::build(studio_project::settings::Settings {
                grpc_addr: "127.0.0.1:0".to_owned(),
                http_addr: "127.0.0.1:0".to_owned(),
                database: DatabaseSettings::new(&project_db),
                auth: verifier,
                identity: Default::default(),
                limits: Default::default(),
                tls: Default::default(),
            })
            .await
            .expect("project service starts");
        let project_grpc = format!("http://{}", project.grpc_addr());
        let tasks = vec![
            tokio::spawn(user.run_until_stopped(shutdown.clone())),
            tokio::spawn(project.run_until_stopped(shutdown.clone())),
        ];
        Services {
            user_grpc,
            project_grpc,
            databases: vec![user_db_name, project_db_name],
            shutdown,
            tasks,
        }
    }

    /// Stops the services (gracefully) and drops their databases.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
        for name in &self.databases {
            drop_database(name).await;
        }
    }
}

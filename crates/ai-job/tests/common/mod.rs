//! What ai-job's graph tests share: a step worker and the outbox relay over a fresh database
//! (memory queue), with the providers and the object store a test gives.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use studio_ai_job::settings::WorkerSettings;
use studio_ai_job::steps::{PlanInput, StepContext};
use studio_ai_job::store::{JobStore, NewStep, Queues};
use studio_ai_job::worker::Worker;
use studio_ai_job::MIGRATOR;
use studio_core::id::{ProjectId, UserId};
use studio_core::Shutdown;
use studio_media::timeline::AspectPreset;
use studio_pipeline::graph::{Graph, StepKind};
use studio_pipeline::{MusicChoice, VideoRequest};
use studio_providers::cache::ResultCache;
use studio_providers::{PlanSource, Providers, ProvidersSettings};
use studio_queue::memory::MemoryQueue;
use studio_queue::{QueueSpec, WorkQueue};
use studio_storage::local::LocalStore;
use studio_storage::ObjectStore;
use studio_testkit::db::{drop_database, fresh_database};

pub fn fable_request() -> VideoRequest {
    VideoRequest {
        aspect: AspectPreset::Square,
        music: MusicChoice::Silent,
        ..VideoRequest::new(PlanSource::Text {
            text: "The ant worked all summer. The grasshopper sang and danced.".into(),
            section: None,
        })
    }
}

pub fn plan_step(input: PlanInput) -> NewStep {
    NewStep {
        kind: StepKind::Plan.name().into(),
        scene: None,
        stage: 0,
        max_attempts: 2,
        input: serde_json::to_value(input).unwrap(),
    }
}

/// A step worker and the relay over a fresh database, running `graph`.
pub struct Harness {
    name: String,
    pub pool: sqlx::PgPool,
    pub store: JobStore,
    shutdown: Shutdown,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    relay: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The local providers and a local object store.
    pub async fn start(graph: Graph, settings: WorkerSettings) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ResultCache::new(dir.path().join("cache")));
        let providers = Arc::new(ProvidersSettings::default().build(Some(cache)).unwrap());
        let storage = Arc::new(LocalStore::new(dir.path().join("objects")).unwrap());
        Harness::start_with(graph, settings, providers, storage, dir).await
    }

    /// `providers` and `storage`, scratch under `dir`.
    pub async fn start_with(
        graph: Graph,
        settings: WorkerSettings,
        providers: Arc<Providers>,
        storage: Arc<dyn ObjectStore>,
        dir: tempfile::TempDir,
    ) -> Harness {
        let (name, url) = fresh_database("aijobgraph").await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        let queues = Queues::prefixed("graph-test.");
        let store = JobStore {
            pool: pool.clone(),
            queues: queues.clone(),
        };
        let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::new());
        for q in [&queues.steps, &queues.render] {
            queue.declare(&QueueSpec::new(q.clone())).await.unwrap();
        }
        let settings = WorkerSettings {
            work_dir: dir.path().join("work"),
            ..settings
        };
        let worker = Worker {
            id: "graph-test".into(),
            context: StepContext {
                store: store.clone(),
                storage,
                providers,
                graph: Arc::new(graph),
                work_dir: settings.work_dir.clone(),
                max_attempts: 2,
            },
            queue: queue.clone(),
            settings,
        };
        let shutdown = Shutdown::new();
        let running = tokio::spawn(worker.run(shutdown.clone()));
        let relay = tokio::spawn(studio_ai_job::relay::run(
            store.clone(),
            queue.clone(),
            Duration::from_millis(50),
            shutdown.clone(),
        ));
        Harness {
            name,
            pool,
            store,
            shutdown,
            running,
            relay,
            _dir: dir,
        }
    }

    /// Starts a job planning a two-sentence fable, its request stored on the job.
    pub async fn job(&self) -> studio_ai_job::store::Job {
        self.job_for(&fable_request()).await
    }

    /// Starts a job making `request`, stored on the job.
    pub async fn job_for(&self, request: &VideoRequest) -> studio_ai_job::store::Job {
        let request = serde_json::to_value(request).unwrap();
        let (job, _) = self
            .store
            .create_job(
                UserId::new(),
                ProjectId::new(),
                "graph",
                Some(&request),
                &[plan_step(PlanInput::default())],
                100,
            )
            .await
            .unwrap();
        job
    }

    /// Starts the same job as a release before this one did: the request in the plan step's
    /// input, none on the job.
    pub async fn job_carrying_its_request(&self) -> studio_ai_job::store::Job {
        let input = PlanInput {
            request: Some(fable_request()),
        };
        let (job, _) = self
            .store
            .create_job(
                UserId::new(),
                ProjectId::new(),
                "carried",
                None,
                &[plan_step(input)],
                100,
            )
            .await
            .unwrap();
        job
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.running.await.unwrap().unwrap();
        self.relay.await.unwrap();
        self.pool.close().await;
        drop_database(&self.name).await;
    }
}

/// Waits until `job` has its render step (its provider stages done); panics if it ends first.
pub async fn until_render(store: &JobStore, job: &studio_ai_job::store::Job) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let steps = store.steps(job.id).await.unwrap();
        if steps.iter().any(|s| s.kind == StepKind::Render.name()) {
            return;
        }
        let j = store.job(job.id).await.unwrap();
        assert!(!j.state.is_final(), "the job ended: {}", j.error);
        assert!(tokio::time::Instant::now() < deadline, "{steps:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

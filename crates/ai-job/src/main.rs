//! `ai-job`: the job service binary (roles from `[ai_job] roles`: api, worker, or both).

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: studio_ai_job::settings::Settings =
        studio_core::settings::load("ai_job").context("loading [ai_job] settings")?;
    settings.telemetry = studio_core::settings::layered()?
        .get("telemetry")
        .unwrap_or_default();
    let telemetry = studio_telemetry::init("ai-job", &settings.telemetry)?;
    let app = studio_ai_job::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

//! `ai-job`: the job service binary (roles from `[ai_job] roles`: api, worker, or both).

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (settings, telemetry): (studio_ai_job::settings::Settings, _) =
        studio_core::settings::load_with("ai_job", "telemetry")
            .context("loading [ai_job] settings")?;
    let telemetry = studio_telemetry::init("ai-job", &telemetry)?;
    let app = studio_ai_job::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

//! `project`: the project service binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: studio_project::settings::Settings =
        studio_core::settings::load("project").context("loading [project] settings")?;
    settings.telemetry = studio_core::settings::layered()?
        .get("telemetry")
        .unwrap_or_default();
    let telemetry = studio_telemetry::init("project", &settings.telemetry)?;
    let app = studio_project::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

//! `project`: the project service binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (settings, telemetry): (studio_project::settings::Settings, _) =
        studio_core::settings::load_with("project", "telemetry")
            .context("loading [project] settings")?;
    let telemetry = studio_telemetry::init("project", &telemetry)?;
    let app = studio_project::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

//! `gateway`: the REST gateway binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: studio_gateway::settings::Settings =
        studio_core::settings::load("gateway").context("loading [gateway] settings")?;
    settings.telemetry = studio_core::settings::layered()?
        .get("telemetry")
        .unwrap_or_default();
    let telemetry = studio_telemetry::init("gateway", &settings.telemetry)?;
    let app = studio_gateway::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

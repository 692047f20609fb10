//! `gateway`: the REST gateway binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (settings, telemetry): (studio_gateway::settings::Settings, _) =
        studio_core::settings::load_with("gateway", "telemetry")
            .context("loading [gateway] settings")?;
    let telemetry = studio_telemetry::init("gateway", &telemetry)?;
    let app = studio_gateway::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

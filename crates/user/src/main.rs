//! `user`: the user service binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: studio_user::settings::Settings =
        studio_core::settings::load("user").context("loading [user] settings")?;
    settings.telemetry = studio_core::settings::layered()?
        .get("telemetry")
        .unwrap_or_default();
    let telemetry = studio_telemetry::init("user", &settings.telemetry)?;
    let app = studio_user::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

//! `user`: the user service binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (settings, telemetry): (studio_user::settings::Settings, _) =
        studio_core::settings::load_with("user", "telemetry").context("loading [user] settings")?;
    let telemetry = studio_telemetry::init("user", &telemetry)?;
    let app = studio_user::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

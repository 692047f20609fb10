//! `media-render`: the render worker binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: studio_media_render::settings::Settings =
        studio_core::settings::load("media_render").context("loading [media_render] settings")?;
    settings.telemetry = studio_core::settings::layered()?
        .get("telemetry")
        .unwrap_or_default();
    let telemetry = studio_telemetry::init("media-render", &settings.telemetry)?;
    let app = studio_media_render::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

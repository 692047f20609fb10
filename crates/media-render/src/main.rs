//! `media-render`: the render worker binary.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (settings, telemetry): (studio_media_render::settings::Settings, _) =
        studio_core::settings::load_with("media_render", "telemetry")
            .context("loading [media_render] settings")?;
    let telemetry = studio_telemetry::init("media-render", &telemetry)?;
    let app = studio_media_render::startup::Application::build(settings).await?;
    app.run_until_stopped(studio_core::Shutdown::on_signals())
        .await?;
    telemetry.shutdown();
    Ok(())
}

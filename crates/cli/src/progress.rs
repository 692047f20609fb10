//! Render progress on the terminal: a progress bar on a TTY, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use studio_media::{Progress, Stage};

/// Shows progress updates from a render.
#[derive(Debug, Clone)]
pub struct Reporter {
    bar: Option<ProgressBar>,
    last: Arc<Mutex<(Option<Stage>, u64)>>,
}

impl Reporter {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:10} [{bar:40}] {pos}/{len} frames {per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            last: Arc::new(Mutex::new((None, 0))),
        }
    }

    /// Returns the callback to hand to the renderer.
    pub fn callback(&self) -> Arc<dyn Fn(Progress) + Send + Sync> {
        let this = self.clone();
        Arc::new(move |p| this.show(p))
    }

    fn show(&self, p: Progress) {
        let stage = format!("{:?}", p.stage).to_lowercase();
        if let Some(bar) = &self.bar {
            bar.set_message(stage);
            bar.set_length(p.frames_total);
            bar.set_position(p.frames_done);
            return;
        }
        let mut last = self.last.lock().expect("progress lock");
        let percent = (p.frames_done * 100)
            .checked_div(p.frames_total)
            .unwrap_or(0);
        let decile = percent / 10;
        if last.0 != Some(p.stage) || (p.stage == Stage::Segments && decile > last.1) {
            if p.stage == Stage::Segments {
                eprintln!(
                    "{stage}: {}/{} frames ({percent}%)",
                    p.frames_done, p.frames_total
                );
            } else {
                eprintln!("{stage}");
            }
            *last = (Some(p.stage), decile);
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

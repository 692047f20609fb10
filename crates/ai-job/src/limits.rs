//! What one job, and one user, may ask of the platform, checked when a job starts and before any
//! step exists, so one request cannot take every worker (security review H2, H3).

use serde::Deserialize;
use studio_core::error::ErrorCode;
use studio_core::Error;
use studio_pipeline::VideoRequest;
use studio_providers::local::planner::Outline;
use studio_providers::PlanSource;

/// The `[ai_job.limits]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Jobs of one user queued or running at once; a start beyond it is refused until one
    /// ends or is cancelled. Default 3.
    pub max_active_jobs_per_user: u32,
    /// Longest video a job may make, seconds (its `duration_s`, or for the whole text its
    /// estimated narration). Default 3600.
    pub max_video_s: f64,
    /// Most scenes a job may make (its estimated narration over the style's scene length).
    /// Default 600 (an hour in scenes of 6 s).
    pub max_scenes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_active_jobs_per_user: 3,
            max_video_s: 3600.0,
            max_scenes: 600,
        }
    }
}

impl Limits {
    /// Refuses `request` when its video would be longer than `max_video_s` or have more than
    /// `max_scenes` scenes. The narration of a whole text is estimated at the voice's pace
    /// (`seconds_per_letter_wpm`, as the planner sizes scenes) in time linear in the text.
    ///
    /// Errors: `FailedPrecondition` naming `settings.duration_s` (a target over the limit) or
    /// `source_text` (a text too long to narrate whole), with the limit's setting and the fix.
    pub fn check(
        &self,
        request: &VideoRequest,
        seconds_per_letter_wpm: Option<f64>,
    ) -> Result<(), Error> {
        let refuse = |field: &str, message: String| {
            Err(Error::new(ErrorCode::FailedPrecondition, message).with_field(field))
        };
        let (seconds, field) = match (request.duration_s, &request.source) {
            (Some(d), _) => (d, "settings.duration_s"),
            (None, PlanSource::Text { text, section }) => {
                // A text whose section cannot be found fails in its plan step, with the
                // sections listed; nothing to size here.
                let Ok(outline) = Outline::of_text(text, section.as_deref()) else {
                    return Ok(());
                };
                let pace =
                    studio_pipeline::requests::plan_request(request, None, seconds_per_letter_wpm)
                        .pace;
                (pace.estimate(&outline.texts()), "source_text")
            }
            (None, PlanSource::Topic { .. }) => return Ok(()),
        };
        if seconds > self.max_video_s {
            let fix = if field == "settings.duration_s" {
                "ask for a shorter settings.duration_s"
            } else {
                "set settings.duration_s to summarise it, or narrate one section of it"
            };
            return refuse(
                field,
                format!(
                    "this job would make about {:.0} s of video; the limit is {:.0} s \
                     (ai_job.limits.max_video_s): {fix}",
                    seconds, self.max_video_s
                ),
            );
        }
        let scene_s = request.style.scenes.seconds.max(0.1);
        let scenes = (seconds / scene_s).ceil();
        if scenes > f64::from(self.max_scenes) {
            return refuse(
                field,
                format!(
                    "this job would make about {scenes:.0} scenes of {scene_s} s; the limit is \
                     {} (ai_job.limits.max_scenes): shorten the video, or use a style with \
                     longer scenes",
                    self.max_scenes
                ),
            );
        }
        Ok(())
    }
}

/// The refusal of a start beyond `limit` active jobs.
pub fn too_many_active(active: i64, limit: u32) -> Error {
    Error::new(
        ErrorCode::ResourceExhausted,
        format!(
            "you have {active} jobs queued or running; the limit is {limit} at once \
             (ai_job.limits.max_active_jobs_per_user): wait for one to finish, or cancel one"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use studio_pipeline::{MusicChoice, Style};
    use studio_providers::Voice;

    fn request(text: &str, duration_s: Option<f64>) -> VideoRequest {
        VideoRequest {
            source: PlanSource::Text {
                text: text.into(),
                section: None,
            },
            aspect: studio_media::timeline::AspectPreset::Landscape,
            fps: 30,
            duration_s,
            style: Style::load("storybook").unwrap(),
            voice: Voice::default(),
            sentence_pause_s: 0.35,
            music: MusicChoice::Silent,
            seed: 0,
        }
    }

    #[test]
    fn oversize_jobs_are_refused_naming_the_field_and_the_limit() {
        let limits = Limits::default();
        let fable = "Slow but steady wins the race. ".repeat(20);
        assert!(limits.check(&request(&fable, None), None).is_ok());
        assert!(limits.check(&request(&fable, Some(60.0)), None).is_ok());

        let e = limits
            .check(&request(&fable, Some(7200.0)), None)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings.duration_s"));
        assert!(e.message.contains("max_video_s"), "{}", e.message);

        // 1 MB narrated whole: about 20 hours.
        let book = "Lion roars. ".repeat(1_000_000 / 12);
        let e = limits.check(&request(&book, None), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::FailedPrecondition);
        assert_eq!(e.field.as_deref(), Some("source_text"));
        assert!(e.message.contains("max_video_s"), "{}", e.message);
        // Summarised to an hour it is fine.
        assert!(limits.check(&request(&book, Some(3600.0)), None).is_ok());

        // An hour in scenes of 2 s is 1,800 scenes.
        let mut fast = request(&book, Some(3600.0));
        fast.style.scenes.seconds = 2.0;
        let e = limits.check(&fast, None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings.duration_s"));
        assert!(
            e.message.contains("1800 scenes") && e.message.contains("max_scenes"),
            "{}",
            e.message
        );
    }
}

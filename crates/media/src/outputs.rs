//! The files a render writes, in one place: [`OutputKind`] names each one as the API says it
//! (`video`, `captions_srt`, …), the file it is written to and the content type it is served
//! with. The embedded run publishes them, media-render uploads them and ai-job presigns them, all
//! from this list.

/// One file a render produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// `final.mp4`: H.264 + AAC in MP4.
    Video,
    /// `captions.srt`: SubRip captions.
    CaptionsSrt,
    /// `captions.vtt`: WebVTT captions.
    CaptionsVtt,
    /// `thumbnail.jpg`: a JPEG still of the video.
    Thumbnail,
}

impl OutputKind {
    /// Every output, the video last (uploads that finish with the video let a reader take a
    /// present `final.mp4` as the sign of a whole set).
    pub const ALL: [OutputKind; 4] = [
        OutputKind::CaptionsSrt,
        OutputKind::CaptionsVtt,
        OutputKind::Thumbnail,
        OutputKind::Video,
    ];

    /// The name in the API (`GET /v1/jobs/{id}/outputs/{kind}`) and in render results.
    pub fn api_name(self) -> &'static str {
        match self {
            OutputKind::Video => "video",
            OutputKind::CaptionsSrt => "captions_srt",
            OutputKind::CaptionsVtt => "captions_vtt",
            OutputKind::Thumbnail => "thumbnail",
        }
    }

    /// The file the render writes it to.
    pub fn file_name(self) -> &'static str {
        match self {
            OutputKind::Video => "final.mp4",
            OutputKind::CaptionsSrt => "captions.srt",
            OutputKind::CaptionsVtt => "captions.vtt",
            OutputKind::Thumbnail => "thumbnail.jpg",
        }
    }

    /// The content type it is stored and served with.
    pub fn content_type(self) -> &'static str {
        content_type(self.file_name())
    }

    /// The output with API name `name`; `None` for anything else.
    pub fn parse(name: &str) -> Option<OutputKind> {
        OutputKind::ALL.into_iter().find(|k| k.api_name() == name)
    }

    /// The API names of every output, comma-separated, for error messages.
    pub fn api_names() -> String {
        OutputKind::ALL.map(OutputKind::api_name).join(", ")
    }
}

/// The content type of a file by its extension (case-insensitive): the media Studio reads and
/// writes, `application/octet-stream` for anything else.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "wav" => "audio/wav",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "mp4" => "video/mp4",
        "json" => "application/json",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_round_trips_its_api_name_and_has_a_media_type() {
        for kind in OutputKind::ALL {
            assert_eq!(OutputKind::parse(kind.api_name()), Some(kind));
            assert_ne!(kind.content_type(), "application/octet-stream", "{kind:?}");
        }
        assert_eq!(OutputKind::parse("final.mp4"), None);
        assert_eq!(OutputKind::ALL.last(), Some(&OutputKind::Video));
        assert_eq!(content_type("Picture.JPG"), "image/jpeg");
        assert_eq!(
            OutputKind::api_names(),
            "captions_srt, captions_vtt, thumbnail, video"
        );
    }
}

//! Content sniffing: what a file really is, from its first bytes, whatever its name says.
//!
//! The FFmpeg builder forces the demuxer this module picks, so FFmpeg never guesses a format
//! from a name or from content (which is how a playlist named `.mp4` would otherwise be opened
//! as HLS and fetch other files).

use std::fmt;
use std::io::Read;
use std::path::Path;

/// A container or image format Studio accepts as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// WebP image.
    Webp,
    /// Windows bitmap.
    Bmp,
    /// Ogg (Vorbis/Opus audio).
    Ogg,
    /// RIFF WAVE audio.
    Wav,
    /// FLAC audio.
    Flac,
    /// MPEG audio layer III.
    Mp3,
    /// ISO base media (MP4, MOV, M4A).
    Mp4,
    /// Matroska or WebM.
    Matroska,
}

impl SourceFormat {
    /// Returns the FFmpeg demuxer that reads this format.
    pub fn demuxer(self) -> &'static str {
        match self {
            SourceFormat::Png => "png_pipe",
            SourceFormat::Jpeg => "jpeg_pipe",
            SourceFormat::Webp => "webp_pipe",
            SourceFormat::Bmp => "bmp_pipe",
            SourceFormat::Ogg => "ogg",
            SourceFormat::Wav => "wav",
            SourceFormat::Flac => "flac",
            SourceFormat::Mp3 => "mp3",
            SourceFormat::Mp4 => "mov",
            SourceFormat::Matroska => "matroska",
        }
    }

    /// True for still-image formats.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            SourceFormat::Png | SourceFormat::Jpeg | SourceFormat::Webp | SourceFormat::Bmp
        )
    }

    /// True for formats that can carry video.
    pub fn can_hold_video(self) -> bool {
        matches!(self, SourceFormat::Mp4 | SourceFormat::Matroska)
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SourceFormat::Png => "PNG image",
            SourceFormat::Jpeg => "JPEG image",
            SourceFormat::Webp => "WebP image",
            SourceFormat::Bmp => "BMP image",
            SourceFormat::Ogg => "Ogg audio",
            SourceFormat::Wav => "WAV audio",
            SourceFormat::Flac => "FLAC audio",
            SourceFormat::Mp3 => "MP3 audio",
            SourceFormat::Mp4 => "MP4/MOV",
            SourceFormat::Matroska => "Matroska/WebM",
        };
        f.write_str(name)
    }
}

/// Why a file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    /// The file could not be read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
    /// Zero bytes.
    #[error("is empty")]
    Empty,
    /// An HLS/M3U playlist, which would make FFmpeg open the files or URLs it lists.
    #[error("is an HLS/M3U playlist, not a media file (playlists are refused because they reference other files)")]
    Playlist,
    /// An FFmpeg concat list.
    #[error("is an FFmpeg concat list, not a media file (lists are refused because they reference other files)")]
    ConcatList,
    /// Anything else.
    #[error("is not a supported image, audio or video file (starts with {0}); use PNG, JPEG, WebP, BMP, WAV, FLAC, Ogg, MP3, MP4/MOV or Matroska/WebM")]
    Unknown(String),
}

/// Returns the format of `bytes`, the first bytes of a file (at least 16 for a reliable answer).
pub fn sniff_bytes(bytes: &[u8]) -> Result<SourceFormat, SniffError> {
    if bytes.is_empty() {
        return Err(SniffError::Empty);
    }
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("#EXTM3U") || trimmed.starts_with("#EXT-X-") {
        return Err(SniffError::Playlist);
    }
    if trimmed.starts_with("ffconcat") {
        return Err(SniffError::ConcatList);
    }
    let format = if starts(b"\x89PNG\r\n\x1a\n") {
        SourceFormat::Png
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        SourceFormat::Jpeg
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        SourceFormat::Webp
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        SourceFormat::Wav
    } else if starts(b"BM") && bytes.len() >= 14 {
        SourceFormat::Bmp
    } else if starts(b"OggS") {
        SourceFormat::Ogg
    } else if starts(b"fLaC") {
        SourceFormat::Flac
    } else if starts(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        SourceFormat::Mp3
    } else if matches!(
        bytes.get(4..8),
        Some(b"ftyp") | Some(b"moov") | Some(b"mdat") | Some(b"wide") | Some(b"free")
    ) {
        SourceFormat::Mp4
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        SourceFormat::Matroska
    } else {
        let head: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(SniffError::Unknown(head));
    };
    Ok(format)
}

/// Reads the start of `path` and returns its format.
pub fn sniff_file(path: &Path) -> Result<SourceFormat, SniffError> {
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    sniff_bytes(&head[..filled])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_formats_by_content() {
        assert_eq!(
            sniff_bytes(b"\x89PNG\r\n\x1a\n....").unwrap(),
            SourceFormat::Png
        );
        assert_eq!(
            sniff_bytes(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap(),
            SourceFormat::Jpeg
        );
        assert_eq!(
            sniff_bytes(b"\0\0\0\x20ftypisom").unwrap(),
            SourceFormat::Mp4
        );
        assert_eq!(sniff_bytes(b"OggS\0\x02").unwrap(), SourceFormat::Ogg);
        assert_eq!(
            sniff_bytes(b"RIFF\0\0\0\0WAVEfmt ").unwrap(),
            SourceFormat::Wav
        );
    }

    #[test]
    fn refuses_playlists_lists_and_text() {
        assert!(matches!(
            sniff_bytes(b"#EXTM3U\n#EXT-X-VERSION:3\n"),
            Err(SniffError::Playlist)
        ));
        assert!(matches!(
            sniff_bytes(b"\xef\xbb\xbf#EXTM3U\n"),
            Err(SniffError::Playlist)
        ));
        assert!(matches!(
            sniff_bytes(b"ffconcat version 1.0\nfile '/etc/passwd'\n"),
            Err(SniffError::ConcatList)
        ));
        assert!(matches!(
            sniff_bytes(b"hello, I am not an image"),
            Err(SniffError::Unknown(_))
        ));
        assert!(matches!(sniff_bytes(b""), Err(SniffError::Empty)));
    }
}

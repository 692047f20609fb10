//! What a picture vendor sent, checked before anything uses it: the bytes must be a PNG, JPEG or
//! WebP picture (sniffed, never trusted from a header or a file name), whole (a PNG decodes to
//! its last row; a JPEG ends with its end-of-image marker; a WebP holds the bytes its RIFF header
//! announces), and at most [`MAX_SIDE_PX`] on a side and [`MAX_PIXELS`] in all, read from the
//! header before anything decodes it (a 50,000 × 50,000 header is refused without a byte of
//! pixels being decoded). Vendor URLs are fetched here, never handed to FFmpeg.

use studio_media::probe::{MAX_PIXELS, MAX_SIDE_PX};
use studio_media::sniff::{sniff_bytes, SourceFormat};

use crate::error::ProviderError;

/// A checked picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub format: SourceFormat,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

impl Checked {
    /// The file extension for the format.
    pub fn extension(&self) -> &'static str {
        match self.format {
            SourceFormat::Jpeg => "jpg",
            SourceFormat::Webp => "webp",
            _ => "png",
        }
    }
}

/// Checks `bytes` from `vendor` (see the module docs). The request was fine; the answer was
/// not, so the chain goes on to its next provider and nothing is drawn from these bytes.
///
/// Errors, each naming the vendor and what is wrong: `Transient` for HTML, JSON or other bytes
/// instead of a picture and for a truncated one (a proxy's error page, a cut transfer: worth
/// another try); `Unavailable` for a picture over the size limits (the same request would draw
/// it again: skipped without paying for another).
pub fn check(vendor: &str, bytes: &[u8]) -> Result<Checked, ProviderError> {
    let refuse = |what: String| ProviderError::transient(format!("{vendor} sent {what}"));
    let format = match sniff_bytes(bytes) {
        Ok(f @ (SourceFormat::Png | SourceFormat::Jpeg | SourceFormat::Webp)) => f,
        Ok(other) => return Err(refuse(format!("{other:?} data, not a picture"))),
        Err(_) => {
            return Err(refuse(not_media(
                bytes,
                "a picture",
                "a PNG, JPEG or WebP picture",
            )))
        }
    };
    let (width, height) = dimensions(format, bytes)
        .ok_or_else(|| refuse(format!("a {format:?} picture whose header cannot be read")))?;
    let pixels = u64::from(width) * u64::from(height);
    if width == 0
        || height == 0
        || width > MAX_SIDE_PX
        || height > MAX_SIDE_PX
        || pixels > MAX_PIXELS
    {
        return Err(ProviderError::unavailable(format!(
            "{vendor} sent a {width}×{height} picture; at most {MAX_SIDE_PX} pixels on a side and {} megapixels are accepted",
            MAX_PIXELS / 1_000_000
        )));
    }
    whole(format, bytes)
        .map_err(|why| refuse(format!("a truncated or damaged {format:?} picture ({why})")))?;
    Ok(Checked {
        format,
        width,
        height,
    })
}

/// Width and height of about one megapixel (1024²) in the shape of a `width`×`height` canvas,
/// multiples of 64 from 256 to 2048: the sizes diffusion models (SDXL, FLUX) are trained at.
pub fn megapixel_size(width: u32, height: u32) -> (u32, u32) {
    let ratio = f64::from(width.max(1)) / f64::from(height.max(1));
    let h = (1_048_576.0 / ratio).sqrt();
    let w = h * ratio;
    let snap = |v: f64| ((v / 64.0).round() as u32).clamp(4, 32) * 64;
    (snap(w), snap(h))
}

/// What `bytes` that are not media are, for messages: "an HTML page instead of `thing`",
/// "JSON instead of `thing`", or "N bytes that are not `kinds`".
pub fn not_media(bytes: &[u8], thing: &str, kinds: &str) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_lowercase();
    if head.contains("<html") || head.contains("<!doctype") {
        format!("an HTML page instead of {thing}")
    } else if head.trim_start().starts_with('{') {
        format!("JSON instead of {thing}")
    } else {
        format!("{} bytes that are not {kinds}", bytes.len())
    }
}

/// Width and height from the header.
fn dimensions(format: SourceFormat, b: &[u8]) -> Option<(u32, u32)> {
    let be32 = |i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let le24 = |i: usize| {
        let s = b.get(i..i + 3)?;
        Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
    };
    match format {
        // The IHDR chunk comes first (PNG spec §5.3, §11.2.2).
        SourceFormat::Png if b.get(12..16) == Some(b"IHDR") => Some((be32(16)?, be32(20)?)),
        SourceFormat::Jpeg => {
            // The first start-of-frame marker (ITU T.81 §B.2.2).
            let mut i = 2;
            while i + 9 < b.len() {
                if b[i] != 0xFF {
                    i += 1;
                    continue;
                }
                let marker = b[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                    let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
                    let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
                    return Some((u32::from(w), u32::from(h)));
                }
                i += 2 + len;
            }
            None
        }
        // RIFF, the first chunk VP8X/VP8L/VP8 (Google's WebP container specification).
        SourceFormat::Webp => match b.get(12..16)? {
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            b"VP8L" => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            b"VP8 " => {
                let w = u16::from_le_bytes(b.get(26..28)?.try_into().ok()?) & 0x3FFF;
                let h = u16::from_le_bytes(b.get(28..30)?.try_into().ok()?) & 0x3FFF;
                Some((u32::from(w), u32::from(h)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether the picture is whole (see the module docs).
fn whole(format: SourceFormat, b: &[u8]) -> Result<(), String> {
    match format {
        SourceFormat::Png => {
            let decoder = png::Decoder::new(std::io::Cursor::new(b));
            let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
            let mut row = vec![0u8; reader.output_buffer_size()];
            reader.next_frame(&mut row).map_err(|e| e.to_string())?;
            Ok(())
        }
        SourceFormat::Jpeg => {
            let tail = &b[b.len().saturating_sub(1024)..];
            if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
                Ok(())
            } else {
                Err("no end-of-image marker".to_owned())
            }
        }
        SourceFormat::Webp => {
            let announced = u32::from_le_bytes(b[4..8].try_into().map_err(|_| "short header")?);
            if (announced as usize).saturating_add(8) <= b.len() {
                Ok(())
            } else {
                Err(format!("{} of {} bytes", b.len(), u64::from(announced) + 8))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// A real PNG of `w`×`h` grey pixels.
    pub fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, w, h);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer
                .write_image_data(&vec![128u8; (w * h) as usize])
                .unwrap();
            writer.finish().unwrap();
        }
        out
    }

    #[test]
    fn a_whole_png_passes_with_its_size() {
        let checked = check("fake", &png(64, 36)).unwrap();
        assert_eq!((checked.width, checked.height), (64, 36));
        assert_eq!(checked.extension(), "png");
    }

    #[test]
    fn html_truncated_files_and_huge_headers_are_refused_by_name() {
        let html = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>";
        let e = check("openai-images", html).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(
            e.message.contains("openai-images sent an HTML page"),
            "{}",
            e.message
        );

        let whole = png(64, 36);
        let e = check("fake", &whole[..whole.len() - 20]).unwrap_err();
        assert!(e.message.contains("truncated"), "{}", e.message);

        // A 50,000 × 50,000 header over a few bytes of data: refused from the header alone.
        let mut huge = png(8, 8);
        huge[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let e = check("fake", &huge).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("50000×50000"), "{}", e.message);

        let e = check("fake", br#"{"error": "busy"}"#).unwrap_err();
        assert!(e.message.contains("JSON"), "{}", e.message);
        let jpeg_cut = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
            0xFF, 0xC0, 0, 11, 8, 0, 36, 0, 64, 1, 1, 0x11, 0,
        ];
        let e = check("fake", &jpeg_cut).unwrap_err();
        assert!(e.message.contains("end-of-image"), "{}", e.message);
    }
}

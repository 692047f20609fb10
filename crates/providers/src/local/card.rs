//! The procedural [`ImageGen`]: an illustration card drawn from the style's palette — a
//! diagonal gradient with soft, overlapping discs — deterministic by seed, so a scene without a
//! matching picture still has something that moves under Ken Burns.

use std::io::BufWriter;
use std::path::Path;

use async_trait::async_trait;

use crate::capability::{Describe, ImageGen, Produced};
use crate::error::ProviderError;
use crate::types::*;

/// Procedural cards.
#[derive(Debug, Clone, Default)]
pub struct CardImages;

impl Describe for CardImages {
    fn name(&self) -> &str {
        "card"
    }
    fn model(&self) -> String {
        "card/v1".into()
    }
}

/// SplitMix64 (Steele, Lea & Flood, 2014): a small, well-mixed deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Parses `#RRGGBB` into linear-ish 0..1 floats (sRGB values, blended as-is).
fn rgb(hex: &str) -> Result<[f64; 3], ProviderError> {
    let h = hex.trim_start_matches('#');
    if h.len() != 6 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ProviderError::invalid(format!(
            "palette colour \"{hex}\" is not #RRGGBB"
        )));
    }
    let v = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap() as f64 / 255.0;
    Ok([v(0), v(2), v(4)])
}

/// Draws a card of `width`×`height` pixels (RGB, row-major).
pub fn draw(request: &ImageRequest) -> Result<Vec<u8>, ProviderError> {
    let (w, h) = (request.width as usize, request.height as usize);
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(ProviderError::invalid(format!(
            "card size {w}x{h} is outside 1..=8192 pixels"
        )));
    }
    let palette = request
        .palette
        .iter()
        .map(|c| rgb(c))
        .collect::<Result<Vec<_>, _>>()?;
    if palette.len() < 3 {
        return Err(ProviderError::invalid(
            "a card palette needs at least 3 colours (two background, one accent)",
        ));
    }
    let mut rng = SplitMix64::new(request.seed);
    let (a, b) = (palette[0], palette[1]);
    let accents = &palette[2..];
    let mut img = vec![0f32; w * h * 3];
    let diag = (w * w + h * h) as f64;
    let flip = rng.unit() < 0.5;
    for y in 0..h {
        for x in 0..w {
            let xx = if flip { w - 1 - x } else { x };
            let t = ((xx * w + y * h) as f64 / diag).clamp(0.0, 1.0);
            let i = (y * w + x) * 3;
            for c in 0..3 {
                img[i + c] = (a[c] + (b[c] - a[c]) * t) as f32;
            }
        }
    }
    let short = w.min(h) as f64;
    let discs = 10 + (rng.next_u64() % 8) as usize;
    for _ in 0..discs {
        let cx = rng.unit() * w as f64;
        let cy = rng.unit() * h as f64;
        let r = short * (0.06 + 0.28 * rng.unit());
        let alpha = 0.18 + 0.37 * rng.unit();
        let colour = accents[(rng.next_u64() % accents.len() as u64) as usize];
        let soft = 0.35 * r;
        let (x0, x1) = ((cx - r).max(0.0) as usize, ((cx + r) as usize + 1).min(w));
        let (y0, y1) = ((cy - r).max(0.0) as usize, ((cy + r) as usize + 1).min(h));
        for y in y0..y1 {
            for x in x0..x1 {
                let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                if d >= r {
                    continue;
                }
                let edge = ((r - d) / soft).min(1.0);
                let k = (alpha * edge * edge * (3.0 - 2.0 * edge)) as f32;
                let i = (y * w + x) * 3;
                for c in 0..3 {
                    img[i + c] += (colour[c] as f32 - img[i + c]) * k;
                }
            }
        }
    }
    Ok(img
        .into_iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect())
}

#[async_trait]
impl ImageGen for CardImages {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let request = request.clone();
        let target = out.join("card.png");
        tokio::task::spawn_blocking(move || {
            let pixels = draw(&request)?;
            let file = std::fs::File::create(&target)
                .map_err(|e| ProviderError::io("creating", &target, e))?;
            let mut encoder =
                png::Encoder::new(BufWriter::new(file), request.width, request.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder
                .write_header()
                .map_err(|e| ProviderError::transient(format!("writing card: {e}")))?;
            writer
                .write_image_data(&pixels)
                .map_err(|e| ProviderError::transient(format!("writing card: {e}")))?;
            writer
                .finish()
                .map_err(|e| ProviderError::transient(format!("writing card: {e}")))?;
            Ok(Produced::free(Image {
                path: target,
                width: request.width,
                height: request.height,
                source: ImageSource::Generated,
                credit: None,
            }))
        })
        .await
        .map_err(|e| ProviderError::transient(format!("card task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(seed: u64) -> ImageRequest {
        ImageRequest {
            terms: vec!["hare".into()],
            caption: "Hare".into(),
            width: 64,
            height: 48,
            seed,
            palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
            prompt: String::new(),
            negative_prompt: String::new(),
            project_seed: 0,
        }
    }

    #[test]
    fn same_seed_same_card_other_seed_other_card() {
        let a = draw(&request(7)).unwrap();
        assert_eq!(a.len(), 64 * 48 * 3);
        assert_eq!(a, draw(&request(7)).unwrap());
        assert_ne!(a, draw(&request(8)).unwrap());
    }

    #[test]
    fn bad_palette_is_invalid() {
        let mut r = request(1);
        r.palette[2] = "gold".into();
        assert_eq!(draw(&r).unwrap_err().kind, crate::ErrorKind::Invalid);
    }
}

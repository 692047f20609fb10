//! The media-folder [`ImageGen`]: picks a picture from the user's own folder by matching a
//! scene's search terms against file names and tags.
//!
//! Tags for `photo.jpg` come from its name (`red-fox_snow.jpg` → red, fox, snow), from a sidecar
//! `photo.jpg.tags` or `photo.jpg.txt`, and from a line naming the file in a folder index
//! (`LICENSES.txt`, `CREDITS.txt`, `README.txt`, `README.md`). A sidecar or index line that
//! mentions a CC-BY licence becomes the picture's credit line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use studio_media::sniff::sniff_file;

use super::text::{is_stopword, stem};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::ProviderError;
use crate::types::*;

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp"];
const INDEX_FILES: &[&str] = &["LICENSES.txt", "CREDITS.txt", "README.txt", "README.md"];

/// One picture in the folder.
#[derive(Debug, Clone)]
pub struct MediaFile {
    /// Path relative to the folder.
    pub name: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Stems from the file name.
    pub name_stems: BTreeSet<String>,
    /// Stems from sidecars and index lines.
    pub tag_stems: BTreeSet<String>,
    /// Credit line (CC-BY), if any.
    pub credit: Option<String>,
}

/// A user's media folder, indexed.
#[derive(Debug, Clone)]
pub struct MediaFolder {
    root: PathBuf,
    files: Vec<MediaFile>,
    digest: String,
}

fn stems_of(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Split camelCase and any non-letter.
    let mut spaced = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase();
        spaced.push(if c.is_alphanumeric() { c } else { ' ' });
    }
    for w in spaced.split_whitespace() {
        let w = w.to_lowercase();
        if w.chars().count() >= 3 && !is_stopword(&w) && !w.chars().all(|c| c.is_ascii_digit()) {
            out.insert(stem(&w));
        }
    }
    out
}

fn credit_from(line: &str) -> Option<String> {
    let upper = line.to_uppercase();
    (upper.contains("CC-BY") || upper.contains("CC BY") || upper.contains("ATTRIBUTION"))
        .then(|| super::text::normalise_space(line))
}

/// Reads width and height from a PNG or JPEG header; `None` for other formats.
fn dimensions(path: &Path) -> std::io::Result<Option<(u32, u32)>> {
    let bytes = std::fs::read(path)?;
    if bytes.starts_with(b"\x89PNG") {
        if bytes.len() < 24 {
            return Ok(None);
        }
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        return Ok(Some((w, h)));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 < bytes.len() {
            if bytes[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = bytes[i + 1];
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
                let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
                return Ok(Some((w, h)));
            }
            i += 2 + len;
        }
        return Ok(None);
    }
    Ok(Some((0, 0)))
}

impl MediaFolder {
    /// Indexes the pictures directly inside `root`.
    ///
    /// Errors: `Invalid` when the folder cannot be read, or when a file with a picture's
    /// extension is not a readable picture (text named `.png`, a truncated header), naming it.
    pub fn open(root: &Path) -> Result<Self, ProviderError> {
        let entries = std::fs::read_dir(root).map_err(|e| {
            ProviderError::invalid(format!(
                "media folder {} cannot be read: {e}",
                root.display()
            ))
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut index_lines = Vec::new();
        for index in INDEX_FILES {
            if let Ok(text) = std::fs::read_to_string(root.join(index)) {
                index_lines.extend(text.lines().map(str::to_string));
            }
        }
        let mut files = Vec::new();
        let mut digest_input = String::new();
        for name in &names {
            let ext = Path::new(name)
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_lowercase)
                .unwrap_or_default();
            if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                continue;
            }
            let path = root.join(name);
            let unreadable = |problem: String| {
                ProviderError::invalid(format!(
                    "media file {} is not a readable picture: {problem}; remove it from the folder or replace it",
                    path.display()
                ))
            };
            let format = sniff_file(&path).map_err(|e| unreadable(e.to_string()))?;
            if !format.is_image() {
                return Err(unreadable(format!("it holds {format} data")));
            }
            let (width, height) = dimensions(&path)
                .map_err(|e| unreadable(e.to_string()))?
                .ok_or_else(|| unreadable("its header is truncated or damaged".into()))?;
            if width == 0 && height == 0 && matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
                return Err(unreadable("its header is truncated or damaged".into()));
            }
            let stem_name = Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name);
            let name_stems = stems_of(stem_name);
            let mut tag_stems = BTreeSet::new();
            let mut credit = None;
            for sidecar in [format!("{name}.tags"), format!("{name}.txt")] {
                if let Ok(text) = std::fs::read_to_string(root.join(&sidecar)) {
                    tag_stems.extend(stems_of(&text));
                    credit = credit.or_else(|| text.lines().find_map(credit_from));
                    digest_input.push_str(&text);
                }
            }
            for line in index_lines.iter().filter(|l| l.contains(name.as_str())) {
                let rest = line.replace(name.as_str(), " ");
                tag_stems.extend(stems_of(&rest));
                credit = credit.or_else(|| credit_from(rest.trim()));
                digest_input.push_str(line);
            }
            let meta = std::fs::metadata(&path).map_err(|e| unreadable(e.to_string()))?;
            digest_input.push_str(&format!("{name}\0{}\0{width}x{height}\n", meta.len()));
            files.push(MediaFile {
                name: name.clone(),
                path,
                width,
                height,
                name_stems,
                tag_stems,
                credit,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            digest: crate::sha256_hex(digest_input.as_bytes())[..16].to_string(),
            files,
        })
    }

    /// The pictures found.
    pub fn files(&self) -> &[MediaFile] {
        &self.files
    }

    /// Returns the best match for `terms` (most telling first) and the terms that matched, or
    /// `None`. A term in the file name counts twice a term in its tags; earlier terms count
    /// more; ties go to a seeded choice, so different scenes spread over equal matches.
    pub fn best(&self, terms: &[String], seed: u64) -> Option<(&MediaFile, Vec<String>)> {
        let mut best: Option<(f64, u64, &MediaFile, Vec<String>)> = None;
        for file in &self.files {
            let mut score = 0.0;
            let mut matched = Vec::new();
            for (rank, term) in terms.iter().enumerate() {
                let s = stem(term);
                let weight = 1.0 / (1.0 + rank as f64 * 0.25);
                if file.name_stems.contains(&s) {
                    score += 2.0 * weight;
                } else if file.tag_stems.contains(&s) {
                    score += weight;
                } else {
                    continue;
                }
                matched.push(term.clone());
            }
            if score <= 0.0 {
                continue;
            }
            let tie = fnv(seed, &file.name);
            let better = match &best {
                None => true,
                Some((b, t, _, _)) => score > *b || (score == *b && tie < *t),
            };
            if better {
                best = Some((score, tie, file, matched));
            }
        }
        best.map(|(_, _, f, m)| (f, m))
    }
}

fn fnv(seed: u64, s: &str) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl Describe for MediaFolder {
    fn name(&self) -> &str {
        "media-folder"
    }
    fn model(&self) -> String {
        format!("media-folder/v1 {}", self.digest)
    }
}

#[async_trait]
impl ImageGen for MediaFolder {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let Some((file, matched)) = self.best(&request.terms, request.seed) else {
            return Err(ProviderError::unavailable(format!(
                "no picture in {} matches {}",
                self.root.display(),
                request.terms.join(", ")
            )));
        };
        let path = out.join(&file.name);
        std::fs::copy(&file.path, &path)
            .map_err(|e| ProviderError::io("copying", &file.path, e))?;
        Ok(Produced::free(Image {
            path,
            width: file.width,
            height: file.height,
            source: ImageSource::File {
                name: file.name.clone(),
                matched,
            },
            credit: file.credit.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_names_and_index_lines() {
        let dir = tempfile::tempdir().unwrap();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc3\0\0\x01\x2c\x08\x02\0\0\0";
        std::fs::write(dir.path().join("chelsea.png"), png).unwrap();
        std::fs::write(dir.path().join("red-fox.png"), png).unwrap();
        std::fs::write(
            dir.path().join("LICENSES.txt"),
            "chelsea.png    Chelsea the cat. CC0.\nred-fox.png  A fox, CC-BY 4.0 by Someone\n",
        )
        .unwrap();
        let folder = MediaFolder::open(dir.path()).unwrap();
        assert_eq!(folder.files().len(), 2);
        let (f, m) = folder.best(&["cats".into(), "mice".into()], 1).unwrap();
        assert_eq!(f.name, "chelsea.png");
        assert_eq!(m, vec!["cats"]);
        assert_eq!((f.width, f.height), (451, 300));
        assert_eq!(f.credit, None);
        let (f, _) = folder.best(&["fox".into()], 1).unwrap();
        assert_eq!(f.credit.as_deref(), Some("A fox, CC-BY 4.0 by Someone"));
        assert!(folder.best(&["tortoise".into()], 1).is_none());
    }

    #[test]
    fn unreadable_picture_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.png"), "not a picture").unwrap();
        let e = MediaFolder::open(dir.path()).unwrap_err();
        assert!(e.message.contains("broken.png"), "{}", e.message);
        assert_eq!(e.kind, crate::ErrorKind::Invalid);
    }
}

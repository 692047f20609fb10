//! The example texts (`examples/texts`, public domain; see `LICENSES.txt` there) and the ways
//! tests compare narrated words with them.

use std::path::{Path, PathBuf};

/// `examples/texts/{name}`.
pub fn path(name: &str) -> PathBuf {
    crate::repo().join("examples/texts").join(name)
}

/// Aesop's Fables (Townsend's translation), with Unix line ends.
pub fn aesop() -> String {
    let path = path("aesop-fables-townsend.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\r\n", "\n")
}

/// A fable's text as in the book: the lines after its title, up to the run of blank lines that
/// ends it (read without the planner's own parser).
pub fn fable(title: &str) -> String {
    let text = aesop();
    let start = text
        .find(&format!("\n{title}\n"))
        .unwrap_or_else(|| panic!("no fable {title:?}"))
        + title.len()
        + 2;
    let rest = &text[start..];
    rest[..rest.find("\n\n\n").unwrap_or(rest.len())].to_owned()
}

/// Lowercase letters and digits only: for comparing words "modulo whitespace and punctuation".
pub fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The text of an SRT file's cues, joined with spaces (numbers and timings left out).
pub fn srt_text(path: &Path) -> String {
    let srt = std::fs::read_to_string(path).unwrap();
    srt.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("-->") && l.parse::<u32>().is_err())
        .collect::<Vec<_>>()
        .join(" ")
}

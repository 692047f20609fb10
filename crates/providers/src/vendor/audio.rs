//! Audio shared by the vendor voices: 16-bit PCM and WAV as vendors send them, and
//! [`Joined`], which strings per-sentence clips into one narration with its timings.

use crate::types::{Speech, TimedText, TimedWord};

/// Little-endian 16-bit samples from `bytes` (a trailing odd byte is dropped).
pub fn pcm16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Reads a 16-bit PCM WAV as mono samples (channels averaged). Tolerates what streaming servers
/// write: a `data` size of 0 or 0xFFFFFFFF, meaning "to the end".
pub fn parse_wav(bytes: &[u8]) -> Result<(u32, Vec<i16>), String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = at + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("truncated fmt chunk".into());
            }
            let u16_at = |i: usize| u16::from_le_bytes([bytes[body + i], bytes[body + i + 1]]);
            let rate = u32::from_le_bytes([
                bytes[body + 4],
                bytes[body + 5],
                bytes[body + 6],
                bytes[body + 7],
            ]);
            format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or("data before fmt")?;
            if !(tag == 1 || tag == 0xFFFE) || bits != 16 || channels == 0 {
                return Err(format!(
                    "WAV format {tag} with {bits}-bit samples; 16-bit PCM is needed"
                ));
            }
            let end = if size == 0 || size == u32::MAX as usize || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let all = pcm16(&bytes[body..end]);
            let mono = all
                .chunks_exact(channels as usize)
                .map(|frame| {
                    (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / i32::from(channels)) as i16
                })
                .collect();
            return Ok((rate, mono));
        }
        at = body + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// Sentences spoken one by one, joined with a pause after each, with their times.
#[derive(Debug, Default)]
pub struct Joined {
    /// Sample rate, Hz (the first sentence's).
    pub sample_rate: u32,
    /// Mono samples so far.
    pub samples: Vec<i16>,
    /// Each sentence's time.
    pub sentences: Vec<TimedText>,
}

impl Joined {
    /// Appends one sentence's audio and `pause_s` of silence.
    ///
    /// Errors: a sample rate other than the earlier sentences'.
    pub fn push(
        &mut self,
        text: &str,
        rate: u32,
        samples: &[i16],
        pause_s: f64,
    ) -> Result<(), String> {
        if self.sample_rate == 0 {
            self.sample_rate = rate;
        } else if rate != self.sample_rate {
            return Err(format!(
                "sentences came at {} Hz and {rate} Hz",
                self.sample_rate
            ));
        }
        let start = self.samples.len();
        self.samples.extend_from_slice(samples);
        let end = self.samples.len();
        let pause = (pause_s.max(0.0) * f64::from(rate)).round() as usize;
        self.samples.resize(end + pause, 0);
        self.sentences.push(TimedText {
            text: text.to_owned(),
            start: start as f64 / f64::from(rate),
            end: end as f64 / f64::from(rate),
            words: Vec::new(),
        });
        Ok(())
    }

    /// Gives the last sentence pushed its words, timed from the start of that sentence's audio.
    pub fn time_words(&mut self, words: Vec<TimedWord>) {
        if let Some(last) = self.sentences.last_mut() {
            let offset = last.start;
            last.words = words
                .into_iter()
                .map(|w| TimedWord {
                    start: offset + w.start,
                    end: offset + w.end,
                    ..w
                })
                .collect();
        }
    }

    /// The joined speech, its audio written to `audio`.
    pub fn speech(self, audio: std::path::PathBuf) -> Speech {
        Speech {
            audio,
            sample_rate: self.sample_rate,
            duration_s: self.samples.len() as f64 / f64::from(self.sample_rate.max(1)),
            sentences: self.sentences,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_wav_without_sizes_reads_to_the_end() {
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
        wav.extend_from_slice(&2u16.to_le_bytes()); // stereo
        wav.extend_from_slice(&24_000u32.to_le_bytes());
        wav.extend_from_slice(&96_000u32.to_le_bytes());
        wav.extend_from_slice(&4u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data\xff\xff\xff\xff");
        for s in [100i16, 300, -50, -150] {
            wav.extend_from_slice(&s.to_le_bytes());
        }
        assert_eq!(parse_wav(&wav).unwrap(), (24_000, vec![200, -100]));
        assert!(parse_wav(b"ID3 mp3 bytes").is_err());
    }
}

//! The local [`MusicGen`]: a MIDI arrangement composed for a mood (chords, bass, simple drums)
//! and rendered to audio by FluidSynth with a General MIDI soundfont (Debian's
//! `fluid-soundfont-gm`, FluidR3_GM).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use super::card::SplitMix64;
use crate::capability::{Describe, MusicGen, Produced};
use crate::error::ProviderError;
use crate::types::*;

/// Ticks per quarter note in the written MIDI file.
const TPQ: u32 = 480;
const DRUMS: u8 = 9;

/// How a mood sounds.
#[derive(Debug, Clone, Copy)]
pub struct MoodSpec {
    /// Mood name.
    pub name: &'static str,
    /// Tempo, beats per minute.
    pub tempo_bpm: u32,
    /// MIDI note of the key's tonic (60 = middle C).
    pub tonic: u8,
    /// Minor key.
    pub minor: bool,
    /// Scale degrees (0-based) of the chord roots, one chord per bar.
    pub progression: &'static [u8],
    /// General MIDI program of the chord pad.
    pub pad: u8,
    /// General MIDI program of the arpeggio.
    pub keys: u8,
    /// General MIDI program of the bass.
    pub bass: u8,
    /// Drum density, 0 (none) to 2 (kick, snare, eighth hats).
    pub drums: u8,
    /// Note velocity scale, 0..1.
    pub energy: f64,
}

/// Moods the composer knows.
pub const MOODS: &[MoodSpec] = &[
    MoodSpec {
        name: "calm",
        tempo_bpm: 72,
        tonic: 60,
        minor: false,
        progression: &[0, 5, 3, 4],
        pad: 89,
        keys: 0,
        bass: 32,
        drums: 0,
        energy: 0.55,
    },
    MoodSpec {
        name: "playful",
        tempo_bpm: 112,
        tonic: 67,
        minor: false,
        progression: &[0, 3, 4, 0, 5, 3, 4, 4],
        pad: 48,
        keys: 11,
        bass: 32,
        drums: 2,
        energy: 0.75,
    },
    MoodSpec {
        name: "wonder",
        tempo_bpm: 84,
        tonic: 62,
        minor: false,
        progression: &[0, 4, 5, 3],
        pad: 91,
        keys: 8,
        bass: 33,
        drums: 1,
        energy: 0.6,
    },
    MoodSpec {
        name: "tense",
        tempo_bpm: 96,
        tonic: 57,
        minor: true,
        progression: &[0, 5, 2, 6],
        pad: 49,
        keys: 45,
        bass: 38,
        drums: 1,
        energy: 0.7,
    },
];

/// Returns the mood called `name` (case-insensitive).
pub fn mood(name: &str) -> Option<&'static MoodSpec> {
    MOODS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}

const MAJOR: [u8; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [u8; 7] = [0, 2, 3, 5, 7, 8, 10];

fn scale_note(spec: &MoodSpec, degree: u8, octave_shift: i8) -> u8 {
    let scale = if spec.minor { MINOR } else { MAJOR };
    let d = degree as usize;
    let note =
        spec.tonic as i32 + scale[d % 7] as i32 + 12 * (d / 7) as i32 + 12 * octave_shift as i32;
    note.clamp(0, 127) as u8
}

/// A triad on `root` (scale degrees root, third, fifth), as MIDI notes.
fn triad(spec: &MoodSpec, root: u8, octave_shift: i8) -> [u8; 3] {
    [
        scale_note(spec, root, octave_shift),
        scale_note(spec, root + 2, octave_shift),
        scale_note(spec, root + 4, octave_shift),
    ]
}

struct Track {
    events: Vec<(u32, TrackEventKind<'static>)>,
}

impl Track {
    fn new(channel: u8, program: Option<u8>) -> Self {
        let mut events = Vec::new();
        if let Some(p) = program {
            events.push((
                0,
                TrackEventKind::Midi {
                    channel: u4::new(channel),
                    message: MidiMessage::ProgramChange {
                        program: u7::new(p),
                    },
                },
            ));
        }
        Self { events }
    }

    fn note(&mut self, channel: u8, key: u8, at: u32, len: u32, velocity: f64) {
        let vel = (velocity * 127.0).round().clamp(1.0, 127.0) as u8;
        self.events.push((
            at,
            TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::NoteOn {
                    key: u7::new(key),
                    vel: u7::new(vel),
                },
            },
        ));
        self.events.push((
            at + len,
            TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::NoteOff {
                    key: u7::new(key),
                    vel: u7::new(0),
                },
            },
        ));
    }

    fn finish(mut self) -> Vec<TrackEvent<'static>> {
        // Note-offs before note-ons at the same tick.
        self.events.sort_by_key(|(t, k)| {
            let on = matches!(
                k,
                TrackEventKind::Midi {
                    message: MidiMessage::NoteOn { .. },
                    ..
                }
            );
            (*t, on)
        });
        let mut last = 0;
        let mut out: Vec<TrackEvent> = self
            .events
            .into_iter()
            .map(|(t, kind)| {
                let delta = t - last;
                last = t;
                TrackEvent {
                    delta: u28::new(delta),
                    kind,
                }
            })
            .collect();
        out.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        });
        out
    }
}

/// Composes a piece in `spec`'s mood lasting at least `seconds`, varied by `seed`; returns the
/// Standard MIDI File bytes and the piece's length in seconds (the final chord's ring included).
pub fn compose(spec: &MoodSpec, seconds: f64, seed: u64) -> (Vec<u8>, f64) {
    let mut rng = SplitMix64::new(seed);
    let bar = 4 * TPQ;
    let bar_s = 4.0 * 60.0 / spec.tempo_bpm as f64;
    let bars = ((seconds / bar_s).ceil() as u32).max(2) + 1;
    let pattern = rng.next_u64() % 3;
    let mut pad = Track::new(0, Some(spec.pad));
    let mut keys = Track::new(1, Some(spec.keys));
    let mut bass = Track::new(2, Some(spec.bass));
    let mut drums = Track::new(DRUMS, None);
    let e = spec.energy;
    for b in 0..bars {
        let last = b + 1 == bars;
        let root = if last {
            0
        } else {
            spec.progression[b as usize % spec.progression.len()]
        };
        let at = b * bar;
        let chord = triad(spec, root, 0);
        for &n in &chord {
            pad.note(0, n, at, if last { 2 * bar } else { bar }, 0.45 * e);
        }
        if !last {
            // Arpeggio in eighths, one of three shapes chosen by seed.
            let up = triad(spec, root, 1);
            let shape: [usize; 8] = match pattern {
                0 => [0, 1, 2, 1, 0, 1, 2, 1],
                1 => [0, 2, 1, 2, 0, 2, 1, 2],
                _ => [0, 1, 2, 0, 1, 2, 1, 0],
            };
            for (i, &k) in shape.iter().enumerate() {
                let accent = if i % 4 == 0 { 1.0 } else { 0.8 };
                let jitter = 0.9 + 0.1 * rng.unit();
                keys.note(
                    1,
                    up[k],
                    at + i as u32 * TPQ / 2,
                    TPQ / 2,
                    0.5 * e * accent * jitter,
                );
            }
        }
        let low = scale_note(spec, root, -2);
        bass.note(2, low, at, TPQ * 2 - 20, 0.7 * e);
        if !last {
            bass.note(2, low, at + 2 * TPQ, TPQ - 20, 0.6 * e);
            bass.note(
                2,
                scale_note(spec, root + 4, -2),
                at + 3 * TPQ,
                TPQ - 20,
                0.55 * e,
            );
        }
        if spec.drums > 0 && !last {
            for beat in 0..4u32 {
                let t = at + beat * TPQ;
                if beat % 2 == 0 {
                    drums.note(DRUMS, 36, t, TPQ / 4, 0.7 * e);
                } else if spec.drums > 1 || b % 2 == 1 {
                    drums.note(DRUMS, 38, t, TPQ / 4, 0.55 * e);
                }
                if spec.drums > 1 {
                    drums.note(DRUMS, 42, t, TPQ / 8, 0.4 * e);
                    drums.note(DRUMS, 42, t + TPQ / 2, TPQ / 8, 0.3 * e);
                } else {
                    drums.note(DRUMS, 42, t, TPQ / 8, 0.3 * e);
                }
            }
        } else if spec.drums > 0 {
            drums.note(DRUMS, 49, at, TPQ, 0.5 * e);
        }
    }
    let mut tempo = Track::new(0, None);
    tempo.events.push((
        0,
        TrackEventKind::Meta(MetaMessage::Tempo(u24::new(60_000_000 / spec.tempo_bpm))),
    ));
    tempo.events.push((
        0,
        TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
    ));
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(TPQ as u16))),
        tracks: vec![
            tempo.finish(),
            pad.finish(),
            keys.finish(),
            bass.finish(),
            drums.finish(),
        ],
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .expect("writing MIDI to memory cannot fail");
    (bytes, bars as f64 * bar_s + bar_s)
}

/// FluidSynth music.
#[derive(Debug, Clone)]
pub struct FluidSynthMusic {
    binary: PathBuf,
    soundfont: PathBuf,
    version: String,
}

/// Where Debian's `fluid-soundfont-gm` installs its soundfont.
pub const DEBIAN_SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

impl FluidSynthMusic {
    /// Music through `fluidsynth` (or `binary`) with `soundfont` (default [`DEBIAN_SOUNDFONT`]).
    ///
    /// Errors: `Unavailable` when FluidSynth or the soundfont is missing, saying what to install.
    pub fn detect(
        binary: Option<PathBuf>,
        soundfont: Option<PathBuf>,
    ) -> Result<Self, ProviderError> {
        let binary = binary.unwrap_or_else(|| PathBuf::from("fluidsynth"));
        let soundfont = soundfont.unwrap_or_else(|| PathBuf::from(DEBIAN_SOUNDFONT));
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(|e| {
                ProviderError::unavailable(format!(
                    "fluidsynth cannot be run ({}: {e}); install it with `apt-get install fluidsynth`",
                    binary.display()
                ))
            })?;
        if !soundfont.is_file() {
            return Err(ProviderError::unavailable(format!(
                "soundfont {} is missing; install it with `apt-get install fluid-soundfont-gm`",
                soundfont.display()
            )));
        }
        // "FluidSynth runtime version 2.3.1"
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("FluidSynth runtime version "))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        Ok(Self {
            binary,
            soundfont,
            version,
        })
    }
}

impl Describe for FluidSynthMusic {
    fn name(&self) -> &str {
        "fluidsynth"
    }
    fn model(&self) -> String {
        format!(
            "composer/v1 fluidsynth {} {}",
            self.version,
            self.soundfont
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
        )
    }
}

#[async_trait]
impl MusicGen for FluidSynthMusic {
    async fn music(
        &self,
        request: &MusicRequest,
        out: &Path,
    ) -> Result<Produced<Music>, ProviderError> {
        let spec = mood(&request.mood).ok_or_else(|| {
            ProviderError::invalid(format!(
                "unknown music mood \"{}\"; known moods: {}",
                request.mood,
                MOODS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !(request.duration_s.is_finite()
            && request.duration_s > 0.0
            && request.duration_s <= 3600.0)
        {
            return Err(ProviderError::invalid(format!(
                "music length {} s is outside 0–3600 s",
                request.duration_s
            )));
        }
        let (midi, _) = compose(spec, request.duration_s, request.seed);
        let mid = out.join("score.mid");
        std::fs::write(&mid, midi).map_err(|e| ProviderError::io("writing", &mid, e))?;
        let wav = out.join("music.wav");
        let result = tokio::process::Command::new(&self.binary)
            .args([
                "-n", "-i", "-q", "-g", "0.6", "-r", "48000", "-T", "wav", "-O", "s16", "-F",
            ])
            .arg(&wav)
            .arg(&self.soundfont)
            .arg(&mid)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| ProviderError::transient(format!("fluidsynth: {e}")))?;
        if !result.status.success() {
            return Err(ProviderError::transient(format!(
                "fluidsynth failed ({}): {}",
                result.status,
                String::from_utf8_lossy(&result.stderr).trim()
            )));
        }
        let reader = hound::WavReader::open(&wav).map_err(|e| {
            ProviderError::transient(format!("fluidsynth wrote no readable WAV: {e}"))
        })?;
        let spec_wav = reader.spec();
        let duration_s = reader.duration() as f64 / spec_wav.sample_rate as f64;
        Ok(Produced::free(Music {
            path: wav,
            duration_s,
            tempo_bpm: spec.tempo_bpm,
            credit: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_is_long_enough_and_parses() {
        for m in MOODS {
            let (bytes, seconds) = compose(m, 30.0, 3);
            assert!(seconds >= 30.0, "{} {seconds}", m.name);
            let smf = Smf::parse(&bytes).unwrap();
            assert_eq!(smf.tracks.len(), 5);
            let notes = smf.tracks[1..]
                .iter()
                .flatten()
                .filter(|e| {
                    matches!(
                        e.kind,
                        TrackEventKind::Midi {
                            message: MidiMessage::NoteOn { .. },
                            ..
                        }
                    )
                })
                .count();
            assert!(notes > 20);
        }
        assert_eq!(compose(&MOODS[1], 20.0, 5).0, compose(&MOODS[1], 20.0, 5).0);
    }
}

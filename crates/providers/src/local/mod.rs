//! Providers that need no key and no network.
//!
//! - [`planner::TextPlanner`] ([`crate::ScriptWriter`]): extractive planning from given text;
//! - [`espeak::EspeakSpeech`] ([`crate::SpeechSynth`]): espeak-ng, per sentence; [`piper::PiperSpeech`]:
//!   Piper, a neural voice; [`align::Aligned`]: word times by PocketSphinx forced alignment;
//! - [`media::MediaFolder`] ([`crate::ImageGen`]): the user's own pictures, matched by terms;
//! - [`card::CardImages`] ([`crate::ImageGen`]): procedural cards in the style's palette;
//! - [`music::FluidSynthMusic`] ([`crate::MusicGen`]): MIDI composed for a mood, rendered with
//!   FluidSynth.

pub mod align;
pub mod bridge;
pub mod card;
pub mod espeak;
pub mod media;
pub mod music;
pub mod piper;
pub mod planner;
pub mod text;

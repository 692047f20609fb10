//! `studio-testkit`: the fixtures several crates' tests share, so none keeps its own copy.
//! Depends on no Studio crate, so any crate may use it as a dev-dependency without a cycle.
//!
//! - [`db`]: fresh databases on the local Postgres, dropped afterwards;
//! - [`s3`]: an S3 endpoint over a folder (s3s-fs), counting completed uploads per key;
//! - [`rabbit`]: a private RabbitMQ node for tests that stop or restart the broker;
//! - [`moto`]: moto's SQS server;
//! - [`openai`], [`anthropic`], [`elevenlabs`], [`cartesia`]: fakes of those vendors' APIs on local ports,
//!   following their documented shapes;
//! - [`stability`], [`replicate`]: fakes of Stability AI's Stable Image API and Replicate's
//!   predictions; [`multipart`]: form bodies;
//! - [`proxy`]: a TCP proxy a test can cut, for outages of Postgres or any TCP service;
//! - [`media`]: ffprobe, frame hashes, loudness and PCM read back with FFmpeg, independently of
//!   the engine;
//! - [`smtp`]: a local SMTP sink (aiosmtpd) storing what it receives;
//! - [`tls`]: a CA and a `localhost` certificate for TLS tests (openssl);
//! - [`texts`]: the example texts in `examples/texts` and ways to compare narrated words.
#![allow(missing_debug_implementations)]

pub mod anthropic;
pub mod cartesia;
pub mod comfyui;
pub mod db;
pub mod elevenlabs;
pub mod luma;
pub mod media;
pub mod moto;
pub mod multipart;
pub mod openai;
pub mod openai_images;
pub mod proxy;
pub mod rabbit;
pub mod replicate;
pub mod runway;
pub mod s3;
pub mod smtp;
pub mod stability;
pub mod stock;
pub mod texts;
pub mod tls;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's root folder.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

//! A local SMTP sink ([`SmtpSink`]: aiosmtpd from PyPI, its `Mailbox` handler) that stores every
//! message it accepts in a maildir, for tests of mail delivery over real SMTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `python3 -m aiosmtpd` on a free port, storing messages in a temporary maildir; stopped on
/// drop.
pub struct SmtpSink {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl SmtpSink {
    /// Starts the sink on a free port and waits until it accepts connections.
    pub async fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let mut sink = SmtpSink {
            child: None,
            dir,
            port,
        };
        sink.spawn().await;
        sink
    }

    async fn spawn(&mut self) {
        let maildir = self.dir.path().join("mail");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/test.sh does)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {}", self.port);
    }

    /// Stops the sink: connections are refused until [`SmtpSink::restart`]. Messages stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the sink again on the same port and maildir.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join("new")
    }

    /// Every message received so far, raw (RFC 5322 with CRLF or LF line ends), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(self.maildir())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap(), e.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.iter().map(|(_, path)| read(path)).collect::<Vec<_>>()
    }

    /// Waits up to `timeout` until at least `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}

/// The value of the first header `name` of a raw message (case-insensitive, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let end = [message.find("\r\n\r\n"), message.find("\n\n")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(message.len());
    let head = &message[..end];
    let mut value: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            return value;
        }
        if let Some((key, rest)) = line.split_once(':') {
            if key.eq_ignore_ascii_case(name) {
                value = Some(rest.trim().to_owned());
            }
        }
    }
    value
}

/// The body of a raw single-part message, decoded as its `Content-Transfer-Encoding` says
/// (`7bit`/`8bit` as they are, `quoted-printable` per RFC 2045 §6.7, `base64`).
pub fn body(message: &str) -> String {
    let (end, gap) = [
        message.find("\r\n\r\n").map(|i| (i, 4)),
        message.find("\n\n").map(|i| (i, 2)),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or((message.len(), 0));
    let raw = &message[(end + gap).min(message.len())..];
    match header(message, "Content-Transfer-Encoding")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("quoted-printable") => quoted_printable(raw),
        Some("base64") => {
            use base64::Engine as _;
            let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("a base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => raw.to_owned(),
    }
}

fn quoted_printable(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2; // a soft line break
                continue;
            }
            if let Some(hex) = raw.get(i + 1..i + 3) {
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first `http://` or `https://` link in a plain text.
pub fn first_link(message: &str) -> Option<String> {
    let start = message
        .find("http://")
        .or_else(|| message.find("https://"))?;
    let link: String = message[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(link)
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

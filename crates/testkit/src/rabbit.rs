//! A private RabbitMQ node ([`RabbitNode`]): its own name, ports and data folder, so a test can
//! stop and restart a broker without touching the shared one on 5672.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether an AMQP 0-9-1 broker answers on `port`: it replies to the protocol header with a
/// `connection.start` method frame (frame type 1), as the AMQP 0-9-1 specification (§4.2.2)
/// has it, which RabbitMQ sends only once it accepts connections.
async fn amqp_ready(port: u16) -> bool {
    let Ok(mut socket) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if socket.write_all(b"AMQP\x00\x00\x09\x01").await.is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), socket.read_exact(&mut first)).await,
        Ok(Ok(_)) if first[0] == 1
    )
}

/// A private RabbitMQ node (its own name, ports and data folder; never the shared broker on
/// 5672), for tests that stop or restart the broker. Stopped, and its folder removed, on drop.
pub struct RabbitNode {
    dir: tempfile::TempDir,
    name: String,
    pub port: u16,
    dist_port: u16,
    /// The AMQPS port and the CA that signed its certificate (PEM), for [`RabbitNode::with_tls`].
    pub tls: Option<(u16, PathBuf)>,
}

/// Debian's wrappers switch to the rabbitmq user; the scripts behind them run as us.
fn rabbit_script(name: &str) -> PathBuf {
    let direct = PathBuf::from("/usr/lib/rabbitmq/bin").join(name);
    if direct.exists() {
        direct
    } else {
        PathBuf::from(name)
    }
}

impl RabbitNode {
    pub fn new() -> RabbitNode {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].").unwrap();
        let port = crate::free_port();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.default = {port}\nloopback_users = none\n"),
        )
        .unwrap();
        RabbitNode {
            name: format!(
                "studio-test-{}-{}@localhost",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            port,
            dist_port: crate::free_port(),
            dir,
            tls: None,
        }
    }

    /// A node that also listens for AMQPS, with a certificate for `localhost` signed by a CA
    /// made for it ([`crate::tls::localhost`]).
    pub fn with_tls() -> RabbitNode {
        let mut node = RabbitNode::new();
        let d = node.dir.path().to_path_buf();
        let certs = crate::tls::localhost(&d);
        let tls_port = crate::free_port();
        let conf = d.join("rabbitmq.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "listeners.ssl.default = {tls_port}\nssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\nssl_options.keyfile = {key}\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
            ca = certs.ca.display(),
            cert = certs.cert.display(),
            key = certs.key.display(),
        ));
        std::fs::write(conf, text).unwrap();
        node.tls = Some((tls_port, certs.ca));
        node
    }

    fn command(&self, program: &str) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(rabbit_script(program));
        c.env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", d.join("plugins"));
        c
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node and waits until it accepts AMQP connections.
    pub async fn start(&self) {
        let status = self
            .command("rabbitmq-server")
            .arg("-detached")
            .status()
            .unwrap();
        assert!(status.success(), "rabbitmq-server -detached failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if amqp_ready(self.port).await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "private RabbitMQ node did not start; see {:?}",
                self.dir.path().join("log")
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops the node (and waits until it has).
    pub fn stop(&self) {
        let _ = self
            .command("rabbitmqctl")
            .args(["-n", &self.name, "stop"])
            .output();
    }
}

impl Default for RabbitNode {
    fn default() -> Self {
        RabbitNode::new()
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
    }
}

//! A TCP proxy on a loopback port that a test can cut: every open connection is dropped and new
//! ones are closed at once until it is restored, as a database failover or a network partition
//! looks to a client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to one upstream address.
pub struct TcpProxy {
    /// The loopback port clients connect to.
    pub port: u16,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    /// Connections dropped by cuts and refused while cut.
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *watching.borrow() {
                    counted.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let mut watching = watching.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watching.wait_for(|cut| *cut) => {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        TcpProxy {
            port,
            cut,
            dropped,
            task,
        }
    }

    /// Drops every open connection and closes new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Connections dropped or refused by cuts so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_cut_drops_connections_until_restored() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = TcpProxy::start(upstream).await;
        let addr = format!("127.0.0.1:{}", proxy.port);
        let mut open = TcpStream::connect(&addr).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        proxy.cut();
        // The open connection ends, and a new one is closed at once.
        let n = open.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
        let mut refused = TcpStream::connect(&addr).await.unwrap();
        assert_eq!(refused.read(&mut buf).await.unwrap_or(0), 0);
        assert!(proxy.dropped() >= 2);
        proxy.restore();
        let mut again = TcpStream::connect(&addr).await.unwrap();
        again.write_all(b"pong").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
}

//! A throttling TCP proxy: a slow link between a watcher and the operator, for the scale bench
//! (issue #15: a watcher behind 50 Mbit/s must keep up and never call an honest chain byzantine).
//!
//! Every byte is forwarded unchanged, in both directions; each direction is one shared link of
//! `bytes_per_sec` for all the proxy's connections together (as one access line is), paced in
//! chunks of at most 16 KiB, so a transfer of `n` bytes takes at least `n / bytes_per_sec`.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};

/// The largest chunk sent in one go: 16 KiB is 2.6 ms at 50 Mbit/s, fine-grained pacing.
const CHUNK: usize = 16 * 1024;

/// One direction of the link: when it is free again.
#[derive(Debug)]
struct Link {
    bytes_per_sec: f64,
    free_at: Mutex<Instant>,
}

impl Link {
    /// Reserves the link for `n` bytes; returns when their transmission ends.
    fn reserve(&self, n: usize) -> Instant {
        let now = Instant::now();
        let mut free_at = self.free_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = (*free_at).max(now);
        #[allow(clippy::cast_precision_loss)]
        let end = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
        *free_at = end;
        end
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct ThrottledProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ThrottledProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`, at most
    /// `bits_per_sec` each way.
    pub async fn start(upstream: SocketAddr, bits_per_sec: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        #[allow(clippy::cast_precision_loss)]
        let bytes_per_sec = bits_per_sec as f64 / 8.0;
        let up = Arc::new(Link { bytes_per_sec, free_at: Mutex::new(Instant::now()) });
        let down = Arc::new(Link { bytes_per_sec, free_at: Mutex::new(Instant::now()) });
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let (up, down) = (up.clone(), down.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    // Either side closing ends both directions.
                    tokio::select! {
                        () = pipe(cr, sw, &up) => {}
                        () = pipe(sr, cw, &down) => {}
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ThrottledProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: &Link,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tokio::time::sleep_until(link.reserve(n)).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_transfer_takes_at_least_its_size_over_the_rate() {
        // An upstream that sends 1 MiB and closes.
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            s.write_all(&vec![7u8; 1 << 20]).await.unwrap();
            s.shutdown().await.unwrap();
        });
        // 16 Mbit/s = 2 MiB/s (in 10^6 bits): 1 MiB takes >= 0.52 s.
        let proxy = ThrottledProxy::start(up_addr, 16_000_000).await.unwrap();
        let start = std::time::Instant::now();
        let mut c = TcpStream::connect(proxy.addr).await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        let took = start.elapsed();
        assert_eq!(got.len(), 1 << 20);
        assert!(got.iter().all(|b| *b == 7));
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

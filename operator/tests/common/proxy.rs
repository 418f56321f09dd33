//! A TCP proxy in front of PostgreSQL for the HA audit tests (`audit21*.rs`): it can swallow
//! every byte (a partition, a hung pooler, a stopped database VM) and then close what it carried.

// Test set-up: a failing socket call is a broken test machine.
#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

/// A TCP proxy to PostgreSQL that can be made a black hole (bytes accepted, never delivered:
/// a network partition, a hung NAT/pgbouncer, a stopped VM of the database) and then severed.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    pub(crate) blackhole: Arc<AtomicBool>,
    streams: Arc<parking_lot::Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub(crate) fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blackhole = Arc::new(AtomicBool::new(false));
        let streams: Arc<parking_lot::Mutex<Vec<TcpStream>>> = Arc::default();
        let (bh, ss) = (blackhole.clone(), streams.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                ss.lock().push(client.try_clone().unwrap());
                ss.lock().push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let bh = bh.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if bh.load(Ordering::SeqCst) {
                                continue; // swallowed
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { port, blackhole, streams }
    }

    /// Lets traffic through again and closes every connection made so far: what the silent
    /// database still holds fails, so no thread stays stuck after the test.
    pub(crate) fn heal(&self) {
        self.blackhole.store(false, Ordering::SeqCst);
        self.sever();
    }

    /// Closes every connection made through the proxy so far.
    pub(crate) fn sever(&self) {
        for s in self.streams.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

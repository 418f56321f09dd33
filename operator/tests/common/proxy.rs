//! A TCP proxy in front of PostgreSQL for the HA audit tests (`audit21*.rs`): it can swallow
//! every byte (a partition, a hung pooler, a stopped database VM) and then close what it carried,
//! and it can single out the store's connections from the lease's (told apart by the
//! `application_name` in their startup message) to cut or silence those alone.

// Test set-up: a failing socket call is a broken test machine.
#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
};

/// A connection's kind as learnt from its startup message.
const UNKNOWN: u8 = 0;
/// The store's (`application_name` `plasma-operator`, or the probe's `plasma-operator-probe`).
const STORE: u8 = 1;
/// The lease's (`plasma-operator-lease`).
const LEASE: u8 = 2;

/// Each connection side's stream with its connection's kind (shared by both sides).
type Tagged = Arc<parking_lot::Mutex<Vec<(Arc<AtomicU8>, TcpStream)>>>;

/// A TCP proxy to PostgreSQL that can be made a black hole (bytes accepted, never delivered:
/// a network partition, a hung NAT/pgbouncer, a stopped VM of the database) and then severed;
/// or that does either to the store's connections only while the lease's go on.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    /// Every connection's bytes swallowed.
    pub(crate) blackhole: Arc<AtomicBool>,
    /// The store's bytes swallowed (a black hole for its connections only).
    pub(crate) swallow_store: Arc<AtomicBool>,
    /// The store's connections closed as soon as they carry a byte (see [`Self::cut_store`]).
    cut_store: Arc<AtomicBool>,
    streams: Tagged,
}

impl Proxy {
    pub(crate) fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            blackhole: Arc::default(),
            swallow_store: Arc::default(),
            cut_store: Arc::default(),
            streams: Arc::default(),
        };
        let (all, sw, cut, ss) = (
            proxy.blackhole.clone(),
            proxy.swallow_store.clone(),
            proxy.cut_store.clone(),
            proxy.streams.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let kind = Arc::new(AtomicU8::new(UNKNOWN));
                ss.lock().push((kind.clone(), client.try_clone().unwrap()));
                ss.lock().push((kind.clone(), server.try_clone().unwrap()));
                for (upstream, mut from, mut to) in [
                    (true, client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (false, server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let (all, sw, cut, kind) = (all.clone(), sw.clone(), cut.clone(), kind.clone());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if upstream && kind.load(Ordering::SeqCst) == UNKNOWN {
                                let chunk = &buf[..n];
                                let has = |needle: &[u8]| {
                                    chunk.windows(needle.len()).any(|w| w == needle)
                                };
                                if has(b"plasma-operator-lease") {
                                    kind.store(LEASE, Ordering::SeqCst);
                                } else if has(b"plasma-operator") {
                                    kind.store(STORE, Ordering::SeqCst);
                                }
                            }
                            let store = kind.load(Ordering::SeqCst) == STORE;
                            if cut.load(Ordering::SeqCst) && store {
                                break;
                            }
                            if all.load(Ordering::SeqCst) || (sw.load(Ordering::SeqCst) && store) {
                                continue; // swallowed
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        proxy
    }

    /// Lets traffic through again and closes every connection made so far: what the silent
    /// database still holds fails, so no thread stays stuck after the test.
    pub(crate) fn heal(&self) {
        self.blackhole.store(false, Ordering::SeqCst);
        self.swallow_store.store(false, Ordering::SeqCst);
        self.sever();
    }

    /// Closes every connection made through the proxy so far.
    pub(crate) fn sever(&self) {
        for (_, s) in self.streams.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// With `true`, severs the store's connections and closes its new ones at their first
    /// bytes, while the lease's go on; `false` lets new ones through again.
    pub(crate) fn cut_store(&self, cut: bool) {
        self.cut_store.store(cut, Ordering::SeqCst);
        if cut {
            for (kind, s) in self.streams.lock().iter() {
                if kind.load(Ordering::SeqCst) == STORE {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

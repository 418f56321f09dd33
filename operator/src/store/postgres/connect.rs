//! A connection set-up with a deadline (audit A21c-5), for the store's pool threads and for the
//! election's lease and probe connections (`crate::leader`).
//!
//! # Why
//! `postgres::Config::connect_timeout` bounds only the TCP connect. Everything after it — the
//! `SSLRequest` and the TLS handshake, the start-up message, authentication, and the session
//! set-up statements we run — waits on the socket with no limit, and the socket's own limits
//! (`tcp_user_timeout`, keepalives) never fire while the peer's kernel acknowledges. So an
//! endpoint that accepts a connection and then says nothing — a hung pooler or TLS-terminating
//! proxy, a pooler waiting for a server connection, a server stuck in authentication behind a
//! hung LDAP/RADIUS, a database VM frozen after its kernel accepted — held the connecting thread
//! for ever: a store pool thread never came back (every later call queued behind it and timed
//! out unrun; `PgStore::drop` joined it and hung), and a standby's election thread never elected
//! again, so the pair silently lost its failover.
//!
//! # How
//! The synchronous client gives no handle to cancel a connect in progress (its socket is inside
//! it), so the whole set-up — connect and session statements — runs on a short-lived thread of
//! its own, and the caller waits for its answer only until the deadline: the configuration's
//! `connect_timeout` per host it names (10 s for the store, one lease for the election). Past
//! it the caller gets [`ConnectError::Stuck`] naming the (redacted) URL and goes on (a pool
//! thread takes its next job; the election tries again); the attempt is **abandoned** to its
//! thread, which ends by itself once the peer answers or closes — a connection it then makes is
//! dropped unused.
//!
//! # Why a cap
//! An endpoint that stays silent makes every attempt leave a thread behind. Left unbounded, a
//! pooler hung for an hour would accumulate thousands of threads (memory, file descriptors) on a
//! process that can do nothing useful with the database meanwhile. So each [`Budget`] keeps a
//! count of its abandoned threads still running, and once [`Budget::cap`] are, new attempts are
//! refused at once with a clear error ([`Stuck::TooMany`]) until some end: the database is
//! unreachable either way, and the log says why and what to look at. The store's pool and the
//! election have budgets of their own, so a store whose many pool threads keep reconnecting
//! into a silent endpoint can never use up the election's share: a standby still elects as soon
//! as the database answers again. (The check is made before an attempt starts, so callers racing
//! past it may exceed the cap by at most their own number — the pool's size plus one.)
//!
//! The same bounded run ([`run_bounded`]) also bounds a standby's whole election attempt in
//! `crate::leader`: a query on a connection whose peer went silent after connecting is no more
//! cancellable than a connect.

use super::describe;
use super::tls::MakeRustls;
use ::postgres::{Client, Config};
use std::sync::{
    Arc,
    atomic::{AtomicU8, AtomicUsize, Ordering},
    mpsc,
};
use std::time::Duration;
use tracing::{debug, warn};

/// How many abandoned threads a [`Budget`] lets run before it refuses new attempts.
pub(crate) const ABANDONED_CAP: usize = 16;

/// The deadline of a connect whose configuration sets no `connect_timeout`.
const DEFAULT_WITHIN: Duration = Duration::from_secs(10);

/// The store's connections (all its pool threads, in every store this process opens).
pub(crate) static STORE: Budget = Budget::new("store connect", ABANDONED_CAP);

/// The election's lease and probe connections, and a standby's election attempts.
pub(crate) static ELECTION: Budget = Budget::new("lease database", ABANDONED_CAP);

/// A process-wide count of abandoned threads of one kind, and how many may run at once.
#[derive(Debug)]
pub(crate) struct Budget {
    what: &'static str,
    cap: usize,
    abandoned: AtomicUsize,
}

impl Budget {
    pub(crate) const fn new(what: &'static str, cap: usize) -> Self {
        Self { what, cap, abandoned: AtomicUsize::new(0) }
    }

    /// Abandoned threads of this budget still running.
    pub(crate) fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// Why a bounded run gave no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stuck {
    /// No answer before the deadline: the attempt was abandoned to its thread.
    #[error(
        "no answer within {0:?}: the server, or a pooler or proxy on its path, accepted the \
         connection and went silent; gave up on it (its thread ends when the peer answers or \
         closes)"
    )]
    TimedOut(Duration),
    /// Too many earlier attempts are still stuck: refused without trying.
    #[error(
        "refused without trying: {abandoned} earlier {what} attempts are still stuck on silent \
         connections (at most {cap} are left running; each ends when its peer answers or \
         closes). Look for a hung pooler or proxy on the database's path; restarting it, or \
         this process, frees them"
    )]
    TooMany {
        /// The budget's name.
        what: &'static str,
        /// Abandoned threads still running.
        abandoned: usize,
        /// The budget's cap.
        cap: usize,
    },
    /// No thread could be started.
    #[error("could not start a thread: {0}")]
    Thread(String),
    /// The attempt's thread ended without an answer.
    #[error("the attempt's thread panicked")]
    Panicked,
}

/// Why a bounded connect failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The server refused, or the connection failed (TLS, authentication, a set-up statement).
    #[error("connecting to {url}: {}", describe(.error))]
    Postgres {
        /// The URL without its password.
        url: String,
        /// The client's error (its text never carries the configuration).
        error: ::postgres::Error,
    },
    /// No answer in time, or too many earlier attempts stuck.
    #[error("connecting to {url}: {stuck}")]
    Stuck {
        /// The URL without its password.
        url: String,
        /// What happened.
        stuck: Stuck,
    },
}

/// How long a connect made with `config` may take in all: its `connect_timeout` per host it
/// names (the client tries them in turn, each TCP connect bounded by that timeout, so a
/// failover list whose first host is down still reaches the second).
pub(crate) fn deadline(config: &Config) -> Duration {
    let per_host = config.get_connect_timeout().copied().unwrap_or(DEFAULT_WITHIN);
    let hosts = u32::try_from(config.get_hosts().len().max(1)).unwrap_or(u32::MAX);
    per_host.saturating_mul(hosts)
}

/// Connects with `config` and runs `setup` on the new session, all within [`deadline`], on a
/// thread of `budget` (see the module's doc). `url` is the redacted URL, for the error.
pub(crate) fn connect(
    config: &Config,
    tls: &MakeRustls,
    url: &str,
    budget: &'static Budget,
    setup: impl FnOnce(&mut Client) -> Result<(), ::postgres::Error> + Send + 'static,
) -> Result<Client, ConnectError> {
    let within = deadline(config);
    let (config, tls) = (config.clone(), tls.clone());
    let answer = run_bounded(budget, "pg-connect", within, move || {
        let mut client = config.connect(tls)?;
        setup(&mut client)?;
        Ok::<_, ::postgres::Error>(client)
    });
    match answer {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(ConnectError::Postgres { url: url.to_owned(), error }),
        Err(stuck) => {
            if matches!(stuck, Stuck::TimedOut(_)) {
                warn!(target: "operator::store", url, ?within, abandoned = budget.abandoned(), cap = budget.cap, what = budget.what, "a connection was accepted but not answered in time: attempt abandoned (A21c-5)");
            }
            Err(ConnectError::Stuck { url: url.to_owned(), stuck })
        }
    }
}

/// An attempt's progress, shared by its thread and its waiter: whichever moves it from
/// `RUNNING` first decides who counts the thread down.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Runs `f` on a thread named `name` and waits for its answer at most `within`. Past that the
/// thread is abandoned (counted in `budget` until it ends) and [`Stuck::TimedOut`] returned;
/// with `budget` full, nothing is started ([`Stuck::TooMany`]).
pub(crate) fn run_bounded<T: Send + 'static>(
    budget: &'static Budget,
    name: &str,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let abandoned = budget.abandoned();
    if abandoned >= budget.cap {
        return Err(Stuck::TooMany { what: budget.what, abandoned, cap: budget.cap });
    }
    let state = Arc::new(AtomicU8::new(RUNNING));
    // Room for the one answer: the thread never blocks on sending it, even once nobody waits.
    let (tx, rx) = mpsc::sync_channel(1);
    let finish = Finish { state: Arc::clone(&state), budget };
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // Dropped when the thread ends, a panic included: counts an abandoned thread down.
            let _finish = finish;
            let _ = tx.send(f());
        })
        .map_err(|e| Stuck::Thread(e.to_string()))?;
    match rx.recv_timeout(within) {
        Ok(answer) => Ok(answer),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Stuck::Panicked),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before it is marked, so the thread (which counts down only once it finds
            // the mark) never takes the count below zero.
            budget.abandoned.fetch_add(1, Ordering::SeqCst);
            if state
                .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                // It finished meanwhile (and so will not count itself down).
                budget.abandoned.fetch_sub(1, Ordering::SeqCst);
            }
            // An answer that arrived in the meantime is still used.
            match rx.try_recv() {
                Ok(answer) => Ok(answer),
                Err(_) => Err(Stuck::TimedOut(within)),
            }
        }
    }
}

/// The thread's side of [`run_bounded`]'s hand-over.
struct Finish {
    state: Arc<AtomicU8>,
    budget: &'static Budget,
}

impl Drop for Finish {
    fn drop(&mut self) {
        if self.state.compare_exchange(RUNNING, DONE, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            let left = self.budget.abandoned.fetch_sub(1, Ordering::SeqCst) - 1;
            debug!(target: "operator::store", what = self.budget.what, left, "an abandoned attempt ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    /// The error of a connect that must fail.
    fn failed(attempt: Result<Client, ConnectError>) -> ConnectError {
        match attempt {
            Ok(_) => panic!("connected to a silent or closed endpoint"),
            Err(e) => e,
        }
    }

    fn leaked(cap: usize) -> &'static Budget {
        Box::leak(Box::new(Budget::new("test", cap)))
    }

    fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "{what} not within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A listener that accepts connections and never answers; they stay open until `close`.
    struct Silent {
        port: u16,
        held: Arc<parking_lot::Mutex<Vec<TcpStream>>>,
    }

    impl Silent {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let held: Arc<parking_lot::Mutex<Vec<TcpStream>>> = Arc::default();
            let keep = Arc::clone(&held);
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    keep.lock().push(stream);
                }
            });
            Self { port, held }
        }

        fn close(&self) {
            for s in self.held.lock().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn config(port: u16, within: Duration) -> (Config, MakeRustls) {
        let url = format!("postgres://plasma:hunter2@127.0.0.1:{port}/plasma?sslmode=disable");
        let super::super::tls::PgConnect { mut config, tls, .. } =
            super::super::tls::parse(&url).unwrap();
        config.connect_timeout(within);
        (config, tls)
    }

    #[test]
    fn a_connect_accepted_and_never_answered_gives_up_at_its_deadline_and_ends_when_closed() {
        let silent = Silent::start();
        let budget = leaked(4);
        let within = Duration::from_millis(300);
        let (config, tls) = config(silent.port, within);
        let url = format!("postgres://plasma@127.0.0.1:{}/plasma", silent.port);
        let started = Instant::now();
        let err = failed(connect(&config, &tls, &url, budget, |_| Ok(())));
        let took = started.elapsed();
        assert!(took >= within && took < within * 5, "{took:?}");
        let text = err.to_string();
        assert!(matches!(err, ConnectError::Stuck { stuck: Stuck::TimedOut(_), .. }), "{text}");
        assert!(text.contains(&url) && !text.contains("hunter2"), "{text}");
        assert_eq!(budget.abandoned(), 1, "the stuck thread is counted");
        // The peer closes: the thread ends and is counted down.
        silent.close();
        wait_until(Duration::from_secs(5), "the abandoned thread ending", || {
            budget.abandoned() == 0
        });
    }

    #[test]
    fn past_the_cap_attempts_are_refused_at_once_until_the_stuck_ones_end() {
        let silent = Silent::start();
        let budget = leaked(2);
        let within = Duration::from_millis(100);
        let (config, tls) = config(silent.port, within);
        for _ in 0..2 {
            let err = failed(connect(&config, &tls, "db", budget, |_| Ok(())));
            assert!(matches!(err, ConnectError::Stuck { stuck: Stuck::TimedOut(_), .. }), "{err}");
        }
        assert_eq!(budget.abandoned(), 2);
        let started = Instant::now();
        let err = failed(connect(&config, &tls, "db", budget, |_| Ok(())));
        assert!(started.elapsed() < within, "refused without waiting");
        assert!(
            matches!(
                err,
                ConnectError::Stuck { stuck: Stuck::TooMany { abandoned: 2, cap: 2, .. }, .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("still stuck"), "{err}");
        silent.close();
        wait_until(Duration::from_secs(5), "the stuck threads ending", || budget.abandoned() == 0);
        // Room again: a new attempt is made (and is stuck in turn, the listener being silent).
        let err = failed(connect(&config, &tls, "db", budget, |_| Ok(())));
        assert!(matches!(err, ConnectError::Stuck { stuck: Stuck::TimedOut(_), .. }), "{err}");
        silent.close();
    }

    #[test]
    fn a_bounded_run_returns_its_answer_and_counts_nothing() {
        let budget = leaked(1);
        assert_eq!(run_bounded(budget, "t", Duration::from_secs(5), || 7).unwrap(), 7);
        assert_eq!(budget.abandoned(), 0);
        let (go, wait) = mpsc::channel::<()>();
        let err = run_bounded(budget, "t", Duration::from_millis(50), move || wait.recv().is_ok())
            .unwrap_err();
        assert!(matches!(err, Stuck::TimedOut(_)), "{err}");
        assert_eq!(budget.abandoned(), 1);
        go.send(()).unwrap();
        wait_until(Duration::from_secs(5), "the thread ending", || budget.abandoned() == 0);
        assert!(matches!(
            run_bounded(budget, "t", Duration::from_secs(5), || -> u8 { panic!("boom") }),
            Err(Stuck::Panicked)
        ));
        assert_eq!(budget.abandoned(), 0);
    }

    #[test]
    fn a_refused_connection_is_the_servers_error_with_the_url() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (config, tls) = config(port, Duration::from_secs(5));
        let err =
            failed(connect(&config, &tls, "postgres://plasma@x/plasma", leaked(1), |_| Ok(())));
        assert!(matches!(err, ConnectError::Postgres { .. }), "{err}");
        assert!(err.to_string().starts_with("connecting to postgres://plasma@x/plasma: "), "{err}");
    }
}

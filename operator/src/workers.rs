//! A fixed set of worker threads that take runs of work from two lanes, each first come, first
//! served.
//!
//! Submission's step 1 (decode and signature recovery, OP-1) is most of the operator's CPU. Each
//! group used to fan out over threads of its own, so two groups in flight shared the cores
//! evenly, finished their recovery together and then waited on their writes together, leaving
//! the cores idle meanwhile. Here a group's runs join one queue behind those of the groups before
//! it: the oldest group gets every core, finishes first and writes while the next one recovers.
//! The threads live as long as the pool, so no group pays for spawning (a stack mapped, guarded
//! and faulted in) either.
//!
//! The price is head-of-line waiting, which two lanes bound. A group of at most
//! [`SHORT_GROUP`] transactions (a wallet's payment, the single submissions of a quiet
//! moment) queues its runs in the short lane, which the workers serve first: it waits only for
//! the runs already being worked on (a run is at most [`RUN_MAX`] transactions: ~5 ms), not
//! for every large group queued before it. Larger
//! groups (`api.max_batch` is 1,000 by default: ~20 ms of recovery on two cores; a group of
//! single submissions under load, up to 4,096) queue in the long lane, first come first served.
//! So that small requests cannot starve the large ones, a worker takes a long-lane run after
//! at most [`SHORT_STREAK`] short-lane runs in a row while one waits.

use parking_lot::{Condvar, Mutex};
use std::{
    collections::VecDeque,
    sync::{Arc, mpsc},
};

type Job = Box<dyn FnOnce() + Send>;

/// Groups of at most this many transactions take the short lane (about 5 ms of recovery on
/// two cores).
pub(crate) const SHORT_GROUP: usize = 256;

/// The longest run a caller should queue: about 5 ms of recovery on one core, the most a
/// short-lane job waits for a long-lane one already being worked on.
pub(crate) const RUN_MAX: usize = 128;

/// Short-lane runs a worker takes in a row while a long-lane run waits.
const SHORT_STREAK: u32 = 8;

/// Which queue a group's runs join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Served first (bounded by [`SHORT_STREAK`]).
    Short,
    /// First come, first served behind the short lane.
    Long,
}

impl Lane {
    /// The lane of a group of `len` items.
    pub(crate) const fn of(len: usize) -> Self {
        if len <= SHORT_GROUP { Self::Short } else { Self::Long }
    }
}

/// The two queues and what the workers need to choose between them.
#[derive(Default)]
struct Queues {
    short: VecDeque<Job>,
    long: VecDeque<Job>,
    /// Short-lane runs taken in a row while the long lane was not empty.
    streak: u32,
    /// Workers running; none left means callers do the work themselves.
    alive: usize,
    /// The pool was dropped: workers end once the queues are empty.
    closed: bool,
}

impl Queues {
    /// The next job: the short lane's oldest, unless it has had its streak and a long-lane job
    /// waits.
    fn next(&mut self) -> Option<Job> {
        let long_first =
            self.short.is_empty() || (self.streak >= SHORT_STREAK && !self.long.is_empty());
        if long_first {
            self.streak = 0;
            self.long.pop_front().or_else(|| self.short.pop_front())
        } else {
            if !self.long.is_empty() {
                self.streak += 1;
            }
            self.short.pop_front()
        }
    }
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

/// Worker threads sharing two queues of jobs (see the module's text).
pub(crate) struct Workers {
    shared: Arc<Shared>,
    threads: usize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("threads", &self.threads).finish_non_exhaustive()
    }
}

impl Workers {
    /// `threads` workers named `name` (at least one). They end once the pool is dropped and the
    /// jobs queued before are done.
    pub(crate) fn new(name: &str, threads: usize) -> Self {
        let shared = Arc::new(Shared { queues: Mutex::default(), ready: Condvar::new() });
        let threads = threads.max(1);
        for i in 0..threads {
            let worker = shared.clone();
            shared.queues.lock().alive += 1;
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&worker));
            if let Err(e) = spawned {
                shared.queues.lock().alive -= 1;
                tracing::warn!(target: "operator::workers", error = %e, "a worker thread could not be started");
            }
        }
        Self { shared, threads }
    }

    /// Jobs waiting in the short and the long lane.
    #[cfg(test)]
    fn queued(&self) -> (usize, usize) {
        let queues = self.shared.queues.lock();
        (queues.short.len(), queues.long.len())
    }

    /// How many workers the pool has.
    pub(crate) const fn threads(&self) -> usize {
        self.threads
    }

    /// `f` over `items` in runs of `run` items, each run a job in `lane`, the results in
    /// order. If any run's result is lost (no worker left, a panic), `f` runs over all the
    /// items on the calling thread instead: the results are always `f`'s, in order.
    pub(crate) fn map_runs<T, R, F>(
        &self,
        items: &Arc<Vec<T>>,
        run: usize,
        lane: Lane,
        f: &Arc<F>,
    ) -> Vec<R>
    where
        T: Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(&[T]) -> Vec<R> + Send + Sync + 'static,
    {
        let run = run.max(1);
        let (done, results) = mpsc::channel::<(usize, Vec<R>)>();
        let mut queued = 0;
        {
            let mut queues = self.shared.queues.lock();
            if queues.alive > 0 {
                for (i, start) in (0..items.len()).step_by(run).enumerate() {
                    let (items, f, done) = (items.clone(), f.clone(), done.clone());
                    let job: Job = Box::new(move || {
                        let end = (start + run).min(items.len());
                        let _ = done.send((i, f(&items[start..end])));
                    });
                    match lane {
                        Lane::Short => queues.short.push_back(job),
                        Lane::Long => queues.long.push_back(job),
                    }
                    queued += 1;
                }
            }
        }
        self.shared.ready.notify_all();
        drop(done);
        let mut parts: Vec<Option<Vec<R>>> = (0..queued).map(|_| None).collect();
        // Ends once every queued job has sent its part or been dropped.
        for (i, part) in results {
            parts[i] = Some(part);
        }
        if queued == items.len().div_ceil(run) && parts.iter().all(Option::is_some) {
            parts.into_iter().flatten().flatten().collect()
        } else {
            f(items)
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.queues.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// A worker's loop: the next job of the two lanes, until the pool is dropped and both are empty.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queues = shared.queues.lock();
            loop {
                if let Some(job) = queues.next() {
                    break job;
                }
                if queues.closed {
                    queues.alive -= 1;
                    return;
                }
                shared.ready.wait(&mut queues);
            }
        };
        // A job that panics loses only its own result (its caller redoes the work on its own
        // thread), not the worker.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results come back in order whatever the run length (one item, uneven, longer than all);
    /// many callers at once each get their own; a run that panics is redone on the caller's
    /// thread and the workers live on.
    #[test]
    fn runs_come_back_in_order_and_a_panic_is_redone_by_the_caller() {
        let pool = Arc::new(Workers::new("test-worker", 2));
        let items = Arc::new((0..1000u64).collect::<Vec<_>>());
        let square = Arc::new(|xs: &[u64]| xs.iter().map(|x| x * x).collect::<Vec<_>>());
        let want: Vec<u64> = items.iter().map(|x| x * x).collect();
        for run in [1, 7, 16, 999, 1000, 5000] {
            assert_eq!(pool.map_runs(&items, run, Lane::Long, &square), want, "run {run}");
        }
        assert!(pool.map_runs(&Arc::new(Vec::<u64>::new()), 4, Lane::Short, &square).is_empty());
        let callers: Vec<_> = (0..4u64)
            .map(|c| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let items = Arc::new((0..500).map(|x| x + c * 1000).collect::<Vec<u64>>());
                    let add = Arc::new(move |xs: &[u64]| xs.iter().map(|x| x + c).collect());
                    let got: Vec<u64> = pool.map_runs(&items, 13, Lane::of(c as usize * 200), &add);
                    assert_eq!(got, items.iter().map(|x| x + c).collect::<Vec<_>>());
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        // A run holding 42 panics on a worker: the caller redoes all the runs on its own thread
        // and gets every result; afterwards both workers still serve.
        let panicky = Arc::new(|xs: &[u64]| {
            let on_worker =
                std::thread::current().name().is_some_and(|n| n.starts_with("test-worker-"));
            assert!(!(on_worker && xs.contains(&42)), "42 on a worker");
            xs.to_vec()
        });
        let items = Arc::new((0..100u64).collect::<Vec<_>>());
        assert_eq!(pool.map_runs(&items, 3, Lane::Short, &panicky), *items);
        assert_eq!(pool.map_runs(&Arc::new((0..1000u64).collect()), 16, Lane::Long, &square), want);
    }

    /// With the one worker busy, three long-lane runs queued and then twenty short-lane ones:
    /// the short ones go first, eight in a row at most while a long one waits, and every long
    /// run is served. Groups up to `SHORT_GROUP` take the short lane.
    #[test]
    fn short_runs_pass_long_ones_but_never_starve_them() {
        assert_eq!(
            (Lane::of(1), Lane::of(SHORT_GROUP), Lane::of(SHORT_GROUP + 1)),
            (Lane::Short, Lane::Short, Lane::Long)
        );
        let pool = Arc::new(Workers::new("lane-worker", 1));
        let order = Arc::new(Mutex::new(String::new()));
        let (started, on_start) = mpsc::channel::<()>();
        let (open, gate) = mpsc::channel::<()>();
        let (started, gate) = (Mutex::new(started), Mutex::new(gate));
        let blocker = Arc::new(move |xs: &[u64]| {
            started.lock().send(()).unwrap();
            gate.lock().recv().unwrap();
            xs.to_vec()
        });
        let tagged = |tag: char| {
            let order = order.clone();
            Arc::new(move |xs: &[u64]| {
                order.lock().push(tag);
                xs.to_vec()
            })
        };
        let (long, short) = (tagged('L'), tagged('S'));
        std::thread::scope(|s| {
            let p = pool.clone();
            s.spawn(move || p.map_runs(&Arc::new(vec![0]), 1, Lane::Short, &blocker));
            on_start.recv().unwrap();
            let p = pool.clone();
            s.spawn(move || p.map_runs(&Arc::new((0..3).collect()), 1, Lane::Long, &long));
            while pool.queued() != (0, 3) {
                std::thread::yield_now();
            }
            let p = pool.clone();
            s.spawn(move || p.map_runs(&Arc::new((0..20).collect()), 1, Lane::Short, &short));
            while pool.queued() != (20, 3) {
                std::thread::yield_now();
            }
            open.send(()).unwrap();
        });
        assert_eq!(*order.lock(), format!("{0}L{0}L{1}L", "S".repeat(8), "S".repeat(4)));
        assert_eq!(pool.queued(), (0, 0));
    }
}

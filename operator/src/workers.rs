//! A fixed set of worker threads that take runs of work first come, first served.
//!
//! Submission's step 1 (decode and signature recovery, OP-1) is most of the operator's CPU. Each
//! group used to fan out over threads of its own, so two groups in flight shared the cores
//! evenly, finished their recovery together and then waited on their writes together, leaving
//! the cores idle meanwhile. Here a group's runs join one queue behind those of the groups before
//! it: the oldest group gets every core, finishes first and writes while the next one recovers.
//! The threads live as long as the pool, so no group pays for spawning (a stack mapped, guarded
//! and faulted in) either.
//!
//! The price is head-of-line waiting: a group starts recovering once the runs queued before it
//! are taken. What bounds it is the size of a request (`api.max_batch`, 1,000 by default: ~20
//! ms of recovery on two cores) and of a group of single submissions (4,096); a small request
//! behind one large batch waits about that long, where sharing the cores it would have taken
//! about twice its own time at once.

use parking_lot::Mutex;
use std::sync::{Arc, mpsc};

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads sharing one queue of jobs, taken in the order they were queued.
#[derive(Debug)]
pub(crate) struct Workers {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl Workers {
    /// `threads` workers named `name` (at least one). They end once the pool is dropped and the
    /// jobs queued before are done.
    pub(crate) fn new(name: &str, threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = threads.max(1);
        for i in 0..threads {
            let queue = queue.clone();
            let spawned =
                std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                    loop {
                        // One worker waits on the queue at a time; the others wait for the lock.
                        let job = queue.lock().recv();
                        let Ok(job) = job else { return };
                        // A job that panics loses only its own result (its caller redoes the work
                        // on its own thread), not the worker.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(target: "operator::workers", error = %e, "a worker thread could not be started");
            }
        }
        Self { jobs, threads }
    }

    /// How many workers the pool has.
    pub(crate) const fn threads(&self) -> usize {
        self.threads
    }

    /// `f` over `items` in runs of `run` items, each run a job on the shared queue, the results
    /// in order. If any run's result is lost (no worker left, a panic), `f` runs over all the
    /// items on the calling thread instead: the results are always `f`'s, in order.
    pub(crate) fn map_runs<T, R, F>(&self, items: &Arc<Vec<T>>, run: usize, f: &Arc<F>) -> Vec<R>
    where
        T: Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(&[T]) -> Vec<R> + Send + Sync + 'static,
    {
        let run = run.max(1);
        let (done, results) = mpsc::channel::<(usize, Vec<R>)>();
        let mut queued = 0;
        for (i, start) in (0..items.len()).step_by(run).enumerate() {
            let (items, f, done) = (items.clone(), f.clone(), done.clone());
            let job: Job = Box::new(move || {
                let end = (start + run).min(items.len());
                let _ = done.send((i, f(&items[start..end])));
            });
            if self.jobs.send(job).is_err() {
                break;
            }
            queued += 1;
        }
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
            assert_eq!(pool.map_runs(&items, run, &square), want, "run {run}");
        }
        assert!(pool.map_runs(&Arc::new(Vec::<u64>::new()), 4, &square).is_empty());
        let callers: Vec<_> = (0..4u64)
            .map(|c| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let items = Arc::new((0..500).map(|x| x + c * 1000).collect::<Vec<u64>>());
                    let add = Arc::new(move |xs: &[u64]| xs.iter().map(|x| x + c).collect());
                    let got: Vec<u64> = pool.map_runs(&items, 13, &add);
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
        assert_eq!(pool.map_runs(&items, 3, &panicky), *items);
        assert_eq!(pool.map_runs(&Arc::new((0..1000u64).collect()), 16, &square), want);
    }
}

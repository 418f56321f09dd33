//! Submission writes merged (step 3 of OP-1): what queues behind one write goes in the next.
//!
//! Each group of submitted transactions is made durable before it is acknowledged: one write
//! transaction and one fsync. Up to four groups are in `Chain::submit` at once (two of single
//! submissions, two batches: see `api`), and the store runs one write transaction at a time, so
//! their writes queued in the store one behind another, each paying a whole fsync: a wallet's
//! one-tx request could wait for three fsyncs before its own. Here a group that finds a write in
//! flight waits for it, then the first of the waiting groups to wake writes the rows of all of
//! them in one transaction: whatever queued during one fsync is made durable by the next.
//!
//! *Why this keeps every promise of OP-1:* a caller returns only after the write holding its
//! rows returned, with that write's outcome: `Ok` means its rows are durable, an error that
//! nothing of the write was (a write transaction is all or nothing). Rows of different groups
//! never touch the same key: each group's rows are keyed by the `seq` numbers it reserved under
//! the state lock, and a group removes only rows it wrote in an earlier, finished write. So
//! merging changes no row's final value, only how many fsyncs carry them. A write that fails
//! fails every group in it; each gives back its own reservations (liveness, never safety), and
//! a refusal by the fence stays `Fenced` for every one of them (they answer `NotLeader`).

use crate::store::{Batch, StoreError};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;

/// The queue of groups waiting to be written, and the outcomes not yet collected.
#[derive(Default)]
struct Queue {
    /// A write is in flight.
    writing: bool,
    /// Groups waiting for the next write, in arrival order.
    waiting: Vec<(u64, Batch)>,
    /// Outcomes of finished writes, by ticket, until their caller takes them.
    done: HashMap<u64, Result<(), StoreError>>,
    /// The next ticket.
    next: u64,
}

/// Writes queued batches together: see the module's documentation.
#[derive(Default)]
pub(crate) struct MergedWrites {
    queue: Mutex<Queue>,
    finished: Condvar,
}

impl std::fmt::Debug for MergedWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queue = self.queue.lock();
        f.debug_struct("MergedWrites")
            .field("writing", &queue.writing)
            .field("waiting", &queue.waiting.len())
            .finish_non_exhaustive()
    }
}

impl MergedWrites {
    /// Writes `batch` with `write`, in one call of `write` together with the batches other
    /// threads hand in while an earlier write is in flight. Returns once a call holding
    /// `batch`'s rows returned, with its outcome.
    pub(crate) fn write<F>(&self, batch: Batch, write: F) -> Result<(), StoreError>
    where
        F: Fn(&Batch) -> Result<(), StoreError>,
    {
        let mut queue = self.queue.lock();
        let ticket = queue.next;
        queue.next += 1;
        queue.waiting.push((ticket, batch));
        loop {
            if let Some(outcome) = queue.done.remove(&ticket) {
                return outcome;
            }
            if queue.writing {
                self.finished.wait(&mut queue);
                continue;
            }
            // No write in flight: this thread writes everything waiting, its own batch among it.
            queue.writing = true;
            let group = std::mem::take(&mut queue.waiting);
            drop(queue);
            let others = group.iter().map(|(t, _)| *t).filter(|t| *t != ticket).collect();
            let mut finish = Finish { commit: self, others, outcome: None };
            let merged = merge(group);
            // A panicking store fails the write like any other fault: every group in it, this
            // thread's among them, gives back its reservations and answers `StorageFailure`
            // instead of unwinding through `Chain::submit` with its inputs still taken.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&merged)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Corrupt {
                        what: "mempool write",
                        reason: "the store's write panicked".into(),
                    })
                });
            drop(merged);
            finish.outcome = Some(copy(&outcome));
            drop(finish);
            return outcome;
        }
    }
}

/// Records a write's outcome for the other groups in it and lets the next write start; on
/// unwind (nothing but the merge itself is left to panic), a failure, so that none of them
/// waits for ever.
struct Finish<'a> {
    commit: &'a MergedWrites,
    /// The tickets of the groups written, but the writer's own.
    others: Vec<u64>,
    outcome: Option<Result<(), StoreError>>,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| {
            Err(StoreError::Corrupt {
                what: "mempool write",
                reason: "the writing thread panicked".into(),
            })
        });
        let mut queue = self.commit.queue.lock();
        for t in &self.others {
            queue.done.insert(*t, copy(&outcome));
        }
        queue.writing = false;
        drop(queue);
        self.commit.finished.notify_all();
    }
}

/// One batch of the rows of `group`, in arrival order.
fn merge(group: Vec<(u64, Batch)>) -> Batch {
    let mut iter = group.into_iter().map(|(_, b)| b);
    let mut merged = iter.next().unwrap_or_default();
    for b in iter {
        let Batch {
            spent,
            created,
            blocks,
            block_infos,
            txs,
            mempool_add,
            mempool_remove,
            meta,
            exiting,
        } = b;
        merged.spent.extend(spent);
        merged.created.extend(created);
        merged.blocks.extend(blocks);
        merged.block_infos.extend(block_infos);
        merged.txs.extend(txs);
        merged.mempool_add.extend(mempool_add);
        merged.mempool_remove.extend(mempool_remove);
        merged.meta.extend(meta);
        debug_assert!(exiting.is_none(), "submission writes never carry the exiting outputs");
        merged.exiting = merged.exiting.or(exiting);
    }
    merged
}

/// A write's outcome for another group in the same write: a refusal by the fence stays one
/// (`NotLeader`); any other error becomes a storage failure carrying its message.
fn copy(outcome: &Result<(), StoreError>) -> Result<(), StoreError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(StoreError::Fenced { ours, current }) => {
            Err(StoreError::Fenced { ours: *ours, current: *current })
        }
        Err(other) => Err(StoreError::Corrupt { what: "mempool write", reason: other.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    };

    fn rows(seqs: &[u64]) -> Batch {
        Batch {
            mempool_add: seqs.iter().map(|s| (*s, vec![*s as u8])).collect(),
            ..Batch::default()
        }
    }

    /// Groups arriving while a write is held are written together in the next one, each
    /// returning only after that write, with its outcome; nothing is lost or written twice.
    #[test]
    fn groups_arriving_during_a_write_share_the_next_one() {
        let commit = Arc::new(MergedWrites::default());
        let written = Arc::new(Mutex::new(Vec::<Vec<u64>>::new()));
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let write = {
            let written = written.clone();
            move |b: &Batch| {
                let first = written.lock().is_empty();
                written.lock().push(b.mempool_add.iter().map(|(s, _)| *s).collect());
                if first {
                    entered_tx.send(()).unwrap();
                    released.lock().recv().unwrap();
                }
                Ok(())
            }
        };
        let write = Arc::new(write);
        std::thread::scope(|s| {
            let first = {
                let (c, w) = (commit.clone(), write.clone());
                s.spawn(move || c.write(rows(&[0]), |b| w(b)))
            };
            entered.recv().unwrap();
            let waiters: Vec<_> = (1..=5u64)
                .map(|i| {
                    let (c, w) = (commit.clone(), write.clone());
                    s.spawn(move || c.write(rows(&[i * 10, i * 10 + 1]), |b| w(b)))
                })
                .collect();
            // All five are queued before the first write is released.
            while commit.queue.lock().waiting.len() < 5 {
                std::thread::yield_now();
            }
            assert!(waiters.iter().all(|w| !w.is_finished()), "none returns before its write");
            release.send(()).unwrap();
            first.join().unwrap().unwrap();
            for w in waiters {
                w.join().unwrap().unwrap();
            }
        });
        let written = written.lock();
        assert_eq!(
            written.len(),
            2,
            "one write for the first group, one for the five: {written:?}"
        );
        let mut second = written[1].clone();
        second.sort_unstable();
        assert_eq!(second, vec![10, 11, 20, 21, 30, 31, 40, 41, 50, 51]);
        assert!(commit.queue.lock().done.is_empty(), "every outcome collected");
    }

    /// A failed write fails every group in it, a fenced one as fenced for each; a panicking
    /// store fails every group of its write, the writing thread's too, instead of leaving them
    /// waiting or unwinding; the writes after either are unaffected.
    #[test]
    fn a_failure_reaches_every_group_of_its_write_and_no_other() {
        let commit = Arc::new(MergedWrites::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        // Writes 0 and 2 are held (the next groups queue behind them), 1 is fenced, 3 panics.
        let write = {
            let calls = calls.clone();
            Arc::new(move |_: &Batch| match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 2 => {
                    entered_tx.send(()).unwrap();
                    released.lock().recv().unwrap();
                    Ok(())
                }
                1 => Err(StoreError::Fenced { ours: Some(1), current: Some(2) }),
                3 => panic!("injected"),
                _ => Ok(()),
            })
        };
        // One held write, then `queued` groups behind it; their outcomes.
        let round = |queued: u64| {
            std::thread::scope(|s| {
                let first = {
                    let (c, w) = (commit.clone(), write.clone());
                    s.spawn(move || c.write(rows(&[0]), |b| w(b)))
                };
                entered.recv().unwrap();
                let behind: Vec<_> = (1..=queued)
                    .map(|i| {
                        let (c, w) = (commit.clone(), write.clone());
                        s.spawn(move || {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                c.write(rows(&[i]), |b| w(b))
                            }))
                        })
                    })
                    .collect();
                while commit.queue.lock().waiting.len() < queued as usize {
                    std::thread::yield_now();
                }
                release.send(()).unwrap();
                first.join().unwrap().unwrap();
                behind.into_iter().map(|b| b.join().unwrap()).collect::<Vec<_>>()
            })
        };
        let fenced = round(3);
        for outcome in &fenced {
            match outcome {
                Ok(Err(StoreError::Fenced { ours: Some(1), current: Some(2) })) => {}
                other => panic!("expected fenced, got {other:?}"),
            }
        }
        let after_panic = round(3);
        // Nobody unwound: the three groups of the panicking write, the writer's among them,
        // were told their write failed.
        let unwound = after_panic.iter().filter(|o| o.is_err()).count();
        let failed = after_panic
            .iter()
            .filter(|o| matches!(o, Ok(Err(StoreError::Corrupt { reason, .. })) if reason.contains("panicked")))
            .count();
        assert_eq!((unwound, failed), (0, 3), "{after_panic:?}");
        assert!(!commit.queue.lock().writing, "the queue is free after a panic");
        commit.write(rows(&[8]), |b| write(b)).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert!(commit.queue.lock().done.is_empty(), "every outcome collected, none left behind");
    }
}

//! Audit of issue 19's submit path (the state lock no longer held across the mempool write):
//! conflicting spends from many threads racing block production, exits arriving while a spend
//! is being persisted, the mempool cap with reservations in flight, and restarts.
//!
//! Chain-level, on a real store, no L1: `Chain::submit`, `produce_block` and
//! `apply_exit_events` are called from threads the way the API, the block loop and the exit
//! follower call them.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_operator::{Chain, Store, SubmitError, TxStatus};
use plasma_spec::{
    ExitEvent, SignedTransaction, Signer, Transaction, UtxoPos,
    test_utils::{domain, key, pay_eth, pos},
};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, Ordering},
    },
};

const FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

/// A chain on a fresh store in `dir` with one 100-wei deposit per owner in `owners`, as deposit
/// blocks 1, 2, ... (deposit `i` belongs to `owners[i - 1]`).
fn chain(dir: &tempfile::TempDir, owners: &[&Signer], max_mempool: usize) -> Chain {
    let store = Store::open(&dir.path().join("operator.redb")).unwrap();
    let chain = Chain::open(store, domain(), FEE_RECIPIENT, max_mempool).unwrap();
    for (i, owner) in owners.iter().enumerate() {
        credit(&chain, i as u64 + 1, owner);
    }
    chain
}

fn credit(chain: &Chain, blknum: u64, owner: &Signer) {
    let tx = Transaction::deposit(owner.address(), Address::ZERO, U256::from(100));
    assert!(chain.credit_deposit(blknum, &tx.encode(), 1_700_000_000).unwrap());
}

/// xorshift64*: reproducible from the seed printed on failure (no dev-dependency needed).
struct Rng(u64);
impl Rng {
    fn from_env() -> Self {
        let seed =
            std::env::var("AUDIT19_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("AUDIT19_SEED={seed}");
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// Every payment of every stored child block from `1000` up to the chain's next block, with its
/// inputs (the fee transaction has none).
fn included_inputs(chain: &Chain) -> Vec<(B256, Vec<UtxoPos>)> {
    let mut out = Vec::new();
    let next = chain.status().next_child_block;
    let mut b = 1000;
    while b < next {
        let record = chain.block(b).unwrap().unwrap();
        for raw in &record.txs {
            let signed = SignedTransaction::decode(raw).unwrap();
            out.push((
                signed.transaction.hash(),
                signed.transaction.input_positions().unwrap_or_default(),
            ));
        }
        b += 1000;
    }
    out
}

/// Many threads submit, in random groups, conflicting spends of the same deposits (each
/// thread its own spend of every deposit, plus one spend shared by all threads: the same
/// transaction sent several times at once), while another thread produces blocks. Exactly one
/// spend per input is acknowledged, every acknowledged spend is in a block, no block spends an
/// input twice, and no transaction is acknowledged twice.
#[test]
fn conflicting_spends_from_many_threads_one_acknowledged_per_input() {
    const DEPOSITS: u64 = 160;
    const THREADS: u64 = 6;
    let owners: Vec<Signer> = (1..=4).map(key).collect();
    let deposit_owner: Vec<&Signer> = (0..DEPOSITS).map(|i| &owners[(i % 4) as usize]).collect();
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(chain(&dir, &deposit_owner, 1_000_000));
    let mut rng = Rng::from_env();
    let d = domain();
    // Thread t spends deposit i to (owner, 100 - t - 1): a distinct transaction per thread; the
    // shared spend (amount 50) is the same bytes in every thread.
    let spend = |i: u64, amount: u64| {
        let owner = deposit_owner[i as usize];
        pay_eth(&d, &[pos(i + 1, 0, 0)], &[(owner.address(), amount)], &[owner])
    };
    let plans: Vec<Vec<Vec<Vec<u8>>>> = (0..THREADS)
        .map(|t| {
            let mut txs: Vec<Vec<u8>> = (0..DEPOSITS)
                .flat_map(|i| [spend(i, 99 - t).encode(), spend(i, 50).encode()])
                .collect();
            rng.shuffle(&mut txs);
            // Random group sizes, some above the 64 where recovery fans out.
            let mut groups = Vec::new();
            while !txs.is_empty() {
                let n = (1 + rng.below(130) as usize).min(txs.len());
                groups.push(txs.drain(..n).collect());
            }
            groups
        })
        .collect();
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (chain, start, done) = (chain.clone(), start.clone(), done.clone());
        let max = 1 + rng.below(40) as usize;
        std::thread::spawn(move || {
            start.wait();
            let mut blocks = 0;
            while !done.load(Ordering::Acquire) {
                if chain.produce_block(max).unwrap().is_some() {
                    blocks += 1;
                }
            }
            blocks
        })
    };
    let submitters: Vec<_> = plans
        .into_iter()
        .map(|groups| {
            let (chain, start) = (chain.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut answers = Vec::new();
                for g in groups {
                    let results = chain.submit(&g);
                    assert_eq!(results.len(), g.len(), "one result per transaction");
                    answers.extend(g.into_iter().zip(results));
                }
                answers
            })
        })
        .collect();
    let answers: Vec<(Vec<u8>, Result<B256, SubmitError>)> =
        submitters.into_iter().flat_map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    let blocks = producer.join().unwrap();
    while chain.produce_block(1000).unwrap().is_some() {}
    eprintln!("{blocks} blocks produced while submitting");

    let mut acked: HashMap<UtxoPos, Vec<B256>> = HashMap::new();
    for (raw, result) in &answers {
        let signed = SignedTransaction::decode(raw).unwrap();
        match result {
            Ok(hash) => {
                assert_eq!(*hash, signed.transaction.hash());
                acked
                    .entry(signed.transaction.input_positions().unwrap()[0])
                    .or_default()
                    .push(*hash);
            }
            Err(e) => assert!(
                matches!(
                    e,
                    SubmitError::MempoolConflict { .. }
                        | SubmitError::AlreadyKnown(_)
                        | SubmitError::InFlight(_)
                        | SubmitError::Ledger(_)
                ),
                "unexpected refusal {e}"
            ),
        }
    }
    for i in 0..DEPOSITS {
        let input = pos(i + 1, 0, 0);
        let got = acked.get(&input).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "input {input}: acknowledged {got:?}");
        match chain.tx_status(&got[0]).unwrap() {
            Some(TxStatus::Included { .. }) => {}
            other => panic!("acknowledged {} for {input} is {other:?}, not in a block", got[0]),
        }
    }
    let mut spent = HashSet::new();
    let mut seen = HashSet::new();
    for (hash, inputs) in included_inputs(&chain) {
        if inputs.is_empty() {
            continue; // a fee transaction: two blocks collecting the same fees make the same one
        }
        assert!(seen.insert(hash), "{hash} included twice");
        for input in inputs {
            assert!(spent.insert(input), "{input} spent twice by the chain's blocks");
        }
    }
    assert_eq!(spent.len() as u64, DEPOSITS);
    assert_eq!(chain.mempool_len(), 0);
}

/// The mempool cap holds with reservations in flight: threads submitting distinct valid spends
/// at once never get more acknowledged than `max_mempool`, and what is acknowledged is pending.
#[test]
fn the_mempool_cap_holds_with_concurrent_groups() {
    const DEPOSITS: u64 = 200;
    const CAP: usize = 37;
    let owner = key(7);
    let owners: Vec<&Signer> = (0..DEPOSITS).map(|_| &owner).collect();
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(chain(&dir, &owners, CAP));
    let d = domain();
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (chain, start) = (chain.clone(), start.clone());
            let txs: Vec<Vec<u8>> = (0..DEPOSITS / 4)
                .map(|i| {
                    let dep = t * (DEPOSITS / 4) + i + 1;
                    pay_eth(&d, &[pos(dep, 0, 0)], &[(owner.address(), 90)], &[&owner]).encode()
                })
                .collect();
            std::thread::spawn(move || {
                start.wait();
                txs.chunks(7).flat_map(|g| chain.submit(g)).collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, CAP, "acknowledged {ok} with a cap of {CAP}");
    assert_eq!(chain.mempool_len(), CAP);
    assert!(
        results.iter().all(|r| matches!(r, Ok(_) | Err(SubmitError::MempoolFull(CAP)))),
        "only MempoolFull refusals"
    );
}

/// OP-7 and `apply_exit_events`' contract ("pending transactions that spend an output now
/// exiting are dropped from the mempool in the same write"): once the exit event is applied, no
/// pending transaction spends the exiting output, and none is acknowledged afterwards.
///
/// The race: a spend reserved (step 2 of `Chain::submit`) whose write is in flight is not in
/// `mempool`, so the exit event's drop does not see it; step 4 then publishes it and answers
/// `Ok` — a payment acknowledged, and listed as pending, after the operator applied the exit
/// that makes it impossible. The window is found, not slept for: a probe (a spend of the same
/// output signed by the wrong key, refused `MempoolConflict` exactly while the output is taken)
/// tells when the honest spend is reserved, and the exit is applied at that moment if the spend
/// is not yet pending.
#[test]
fn an_exit_applied_while_a_spend_is_persisted_leaves_no_pending_spend() {
    const ROUNDS: u64 = 40;
    let alice = key(1);
    let mallory = key(2);
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(chain(&dir, &[], 1_000_000));
    let d = domain();
    let mut raced = 0;
    let mut violations = Vec::new();
    for round in 0..ROUNDS {
        let dep = round + 1;
        credit(&chain, dep, &alice);
        let input = pos(dep, 0, 0);
        let honest = pay_eth(&d, &[input], &[(alice.address(), 99)], &[&alice]);
        let hash = honest.transaction.hash();
        // Refused by the ledger (wrong signer) unless the input is taken: never reserves.
        let probe = pay_eth(&d, &[input], &[(mallory.address(), 99)], &[&mallory]).encode();
        let start = Arc::new(Barrier::new(2));
        let submitter = {
            let (chain, start, raw) = (chain.clone(), start.clone(), honest.encode());
            std::thread::spawn(move || {
                start.wait();
                chain.submit(&[raw]).pop().unwrap()
            })
        };
        start.wait();
        let mut applied_in_window = false;
        loop {
            let r = chain.submit(std::slice::from_ref(&probe)).pop().unwrap();
            if matches!(r, Err(SubmitError::MempoolConflict { .. })) {
                // Taken: reserved (write in flight) or already pending.
                applied_in_window = chain.tx_status(&hash).unwrap().is_none();
                break;
            }
            assert!(matches!(r, Err(SubmitError::Ledger(_))), "probe: {r:?}");
            if submitter.is_finished() {
                break;
            }
        }
        chain
            .apply_exit_events(
                &[(ExitEvent::StandardExitStarted { pos: input }, 1_700_000_100)],
                dep,
            )
            .unwrap();
        let result = submitter.join().unwrap();
        raced += usize::from(applied_in_window);
        let status = chain.tx_status(&hash).unwrap();
        assert!(chain.exiting_since(input).is_some());
        if result.is_ok() && status == Some(TxStatus::Pending) {
            violations.push(format!(
                "round {round}: {hash} spends exiting {input}, answered Ok and left pending"
            ));
        }
    }
    eprintln!("{raced}/{ROUNDS} rounds applied the exit during the write");
    // The pending entries are dropped only at the next block (not an inclusion: OP-7 holds
    // there); what is wrong is the acknowledgement and the pending entry after the event.
    while chain.produce_block(1000).unwrap().is_some() {}
    assert!(
        included_inputs(&chain).iter().all(|(_, inputs)| inputs.is_empty()),
        "no block spends an exiting output"
    );
    assert!(violations.is_empty(), "{} violation(s):\n{}", violations.len(), violations.join("\n"));
}

/// Acknowledged data survives a restart: every transaction answered `Ok` by concurrent groups
/// is pending after the chain is reopened from its store, its input still taken, and the next
/// block includes exactly those.
#[test]
fn acknowledged_spends_survive_a_restart() {
    const DEPOSITS: u64 = 120;
    let owner = key(3);
    let owners: Vec<&Signer> = (0..DEPOSITS).map(|_| &owner).collect();
    let dir = tempfile::tempdir().unwrap();
    let d = domain();
    let acked: Vec<B256> = {
        let chain = Arc::new(chain(&dir, &owners, 1_000_000));
        let handles: Vec<_> = (0..3u64)
            .map(|t| {
                let chain = chain.clone();
                let txs: Vec<Vec<u8>> = (0..DEPOSITS)
                    .filter(|i| i % 3 == t)
                    .map(|i| {
                        pay_eth(&d, &[pos(i + 1, 0, 0)], &[(owner.address(), 80)], &[&owner])
                            .encode()
                    })
                    .collect();
                std::thread::spawn(move || {
                    txs.chunks(11).flat_map(|g| chain.submit(g)).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.into_iter().map(Result::unwrap).collect()
    };
    let store = Store::open(&dir.path().join("operator.redb")).unwrap();
    let chain = Chain::open(store, domain(), FEE_RECIPIENT, 1_000_000).unwrap();
    assert_eq!(chain.mempool_len(), acked.len());
    for h in &acked {
        assert_eq!(chain.tx_status(h).unwrap(), Some(TxStatus::Pending));
    }
    let again = pay_eth(&d, &[pos(1, 0, 0)], &[(owner.address(), 1)], &[&owner]).encode();
    assert!(matches!(
        chain.submit(&[again]).pop().unwrap(),
        Err(SubmitError::MempoolConflict { .. })
    ));
    // New acceptances after the restart get sequence numbers of their own: nothing overwrites
    // a stored entry (a fresh deposit, spent now, is included with the reloaded ones).
    credit(&chain, DEPOSITS + 1, &owner);
    let fresh = pay_eth(&d, &[pos(DEPOSITS + 1, 0, 0)], &[(owner.address(), 5)], &[&owner]);
    chain.submit(&[fresh.encode()]).pop().unwrap().unwrap();
    while chain.produce_block(1000).unwrap().is_some() {}
    let included: HashSet<B256> = included_inputs(&chain).into_iter().map(|(h, _)| h).collect();
    for h in acked.iter().chain([&fresh.transaction.hash()]) {
        assert!(included.contains(h), "{h} acknowledged, lost");
    }
}

/// LEDGER-7 / `Chain::submit`'s own rule ("accepting would acknowledge payments that can never
/// be included"): once the operator halted, nothing more is acknowledged.
///
/// The halt is read once, before recovery; a group whose write is in flight when the halt is
/// stored is still published and answered `Ok` after it — a payment acknowledged by a chain
/// that will never produce another block. The window is found with the same probe as above.
#[test]
#[ignore = "audit19 F2 fixed (submit re-reads the halt in step 4); the test still races: a group published between its window probe and the halt is acknowledged before the halt, which is allowed"]
fn a_halt_stored_while_a_spend_is_persisted_acknowledges_nothing_after_it() {
    const ROUNDS: u64 = 20;
    let alice = key(1);
    let mallory = key(2);
    let d = domain();
    let mut raced = 0;
    let mut violations = Vec::new();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let chain = Arc::new(chain(&dir, &[&alice], 1_000_000));
        let input = pos(1, 0, 0);
        let honest = pay_eth(&d, &[input], &[(alice.address(), 99)], &[&alice]);
        let hash = honest.transaction.hash();
        let probe = pay_eth(&d, &[input], &[(mallory.address(), 99)], &[&mallory]).encode();
        let start = Arc::new(Barrier::new(2));
        let submitter = {
            let (chain, start, raw) = (chain.clone(), start.clone(), honest.encode());
            std::thread::spawn(move || {
                start.wait();
                chain.submit(&[raw]).pop().unwrap()
            })
        };
        start.wait();
        let mut in_window = false;
        loop {
            let r = chain.submit(std::slice::from_ref(&probe)).pop().unwrap();
            if matches!(r, Err(SubmitError::MempoolConflict { .. })) {
                in_window = chain.tx_status(&hash).unwrap().is_none();
                break;
            }
            if submitter.is_finished() {
                break;
            }
        }
        if !in_window {
            submitter.join().unwrap().unwrap();
            continue;
        }
        raced += 1;
        chain
            .halt(plasma_operator::Halt::DepositVanished { blknum: 1, credited: B256::ZERO })
            .unwrap();
        let result = submitter.join().unwrap();
        if result.is_ok() {
            violations.push(format!("round {round}: {hash} acknowledged after the halt"));
        }
        assert!(chain.produce_block(1000).unwrap().is_none(), "halted: no block");
    }
    eprintln!("{raced}/{ROUNDS} rounds halted during the write");
    assert!(violations.is_empty(), "{} violation(s):\n{}", violations.len(), violations.join("\n"));
}

//! Adversarial review of the submission path (OP-1): `Chain::submit` (recover on the shared
//! workers, reserve, step 2b), the binary batch body and the batch and single routes.
//!
//! - Chain level (no L1): a batch answers every transaction as if it had been submitted alone in
//!   that order (OP-1 *Bulk submission*), compared with a second chain fed one by one: random
//!   mixes of payments, double spends, bad and foreign-domain signatures, unknown, exiting and
//!   overflowing inputs, replays of pending and included transactions and malformed bytes, in
//!   chunks of every size around the recovery run (16/17).
//! - HTTP (anvil): the batch route against the single route on two operators reading the same
//!   deposits; framing and body refusals that change nothing; conflicting spends sent at once
//!   through both routes; how many costly refusal messages a batch can buy.
//!

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_operator::{
    Chain, Node, Store, SubmitError, TxStatus,
    ingest::{BATCH_MEDIA_TYPE, FrameError, decode_batch, encode_batch},
};
use plasma_spec::{
    ExitEvent, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    test_utils::{domain, key, pos},
};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

#[allow(dead_code)] // the helpers this test does not call
mod common;
use common::{
    Api,
    devnet::{self, Chain as Devnet, devnet_config},
};

const FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("INGEST_ADV_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("INGEST_ADV_SEED={seed}");
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn b256(&mut self) -> B256 {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        B256::from(b)
    }
}

/// The keys and domains a mix is signed with.
struct Kit {
    /// The chain's signing domain.
    d: SigningDomain,
    /// Another chain id, same verifying contract: a wallet signing for the wrong chain.
    other: SigningDomain,
    /// Everyone who owns outputs.
    owners: Vec<Signer>,
    /// Owns nothing.
    mallory: Signer,
}

impl Kit {
    fn owner(&self, who: Address) -> &Signer {
        self.owners.iter().find(|s| s.address() == who).unwrap()
    }
    fn signed(d: &SigningDomain, tx: &Transaction, keys: &[&Signer]) -> Vec<u8> {
        let sigs = keys.iter().map(|k| k.sign_tx(d, tx)).collect();
        SignedTransaction::new(tx.clone(), sigs).encode()
    }
    /// A payment of `inputs` (their outputs given) to random owners, fee 0 or 1, metadata random
    /// (so every built payment is a distinct transaction). An input sum that overflows pays 1.
    fn payment(&self, rng: &mut Rng, inputs: &[(UtxoPos, Output)]) -> Transaction {
        let total = inputs.iter().try_fold(U256::ZERO, |s, (_, o)| s.checked_add(o.amount));
        let outputs = match total {
            None => vec![Output::new(self.owners[0].address(), Address::ZERO, U256::from(1))],
            Some(total) => {
                let fee = U256::from(rng.below(2)).min(total - U256::from(1));
                let left = total - fee;
                let k = (1 + rng.below(3)).min(usize::try_from(left).unwrap_or(3));
                let part = left / U256::from(k);
                (0..k)
                    .map(|i| {
                        let amount =
                            if i + 1 == k { left - part * U256::from(k - 1) } else { part };
                        let to = self.owners[rng.below(self.owners.len())].address();
                        Output::new(to, Address::ZERO, amount)
                    })
                    .collect()
            }
        };
        let positions: Vec<UtxoPos> = inputs.iter().map(|(p, _)| *p).collect();
        Transaction::payment(&positions, outputs, rng.b256())
    }

    /// `n` submissions: payments (most of them valid if alone), double spends within the mix,
    /// wrong signers, foreign-domain signatures, unusable signatures, unknown inputs, overflowing
    /// outputs, value created, spends of exiting outputs, replays of `history`, copies within the
    /// mix, malformed bytes and non-payments. `next_block` is the child block the pending
    /// transactions will be in (a spend of one of their outputs names an unknown output).
    fn mix(
        &self,
        rng: &mut Rng,
        utxos: &[(UtxoPos, Output)],
        exiting: &[(UtxoPos, Output)],
        history: &[Vec<u8>],
        next_block: u64,
        n: usize,
    ) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut spent: Vec<Vec<(UtxoPos, Output)>> = Vec::new();
        let d = &self.d;
        while out.len() < n {
            let one = |rng: &mut Rng| utxos[rng.below(utxos.len())].clone();
            let raw = match rng.below(20) {
                0..=6 if !utxos.is_empty() => {
                    let mut inputs = vec![one(rng)];
                    if rng.below(3) == 0 {
                        let second = one(rng);
                        if second.0 != inputs[0].0 {
                            inputs.push(second);
                        }
                    }
                    let tx = self.payment(rng, &inputs);
                    let keys: Vec<&Signer> =
                        inputs.iter().map(|(_, o)| self.owner(o.owner)).collect();
                    spent.push(inputs);
                    Self::signed(d, &tx, &keys)
                }
                7 if !spent.is_empty() => {
                    let inputs = spent[rng.below(spent.len())].clone();
                    let tx = self.payment(rng, &inputs);
                    let keys: Vec<&Signer> =
                        inputs.iter().map(|(_, o)| self.owner(o.owner)).collect();
                    Self::signed(d, &tx, &keys)
                }
                8 if !utxos.is_empty() => {
                    let input = one(rng);
                    let tx = self.payment(rng, std::slice::from_ref(&input));
                    Self::signed(d, &tx, &[&self.mallory])
                }
                9 if !utxos.is_empty() => {
                    let input = one(rng);
                    let tx = self.payment(rng, std::slice::from_ref(&input));
                    Self::signed(&self.other, &tx, &[self.owner(input.1.owner)])
                }
                10 if !utxos.is_empty() => {
                    let input = one(rng);
                    let tx = self.payment(rng, std::slice::from_ref(&input));
                    let owner = self.owner(input.1.owner);
                    let sigs = match rng.below(4) {
                        0 => vec![Bytes::from(vec![0u8; 65])],
                        1 => vec![],
                        2 => vec![owner.sign_tx(d, &tx), owner.sign_tx(d, &tx)],
                        _ => {
                            let mut s = owner.sign_tx(d, &tx).to_vec();
                            s[64] = 29; // v out of range
                            vec![Bytes::from(s)]
                        }
                    };
                    SignedTransaction::new(tx, sigs).encode()
                }
                11 => {
                    let owner = &self.owners[rng.below(self.owners.len())];
                    let unknown = (pos(900_000 + 1000 * rng.below(50) as u64, 0, 0), {
                        Output::new(owner.address(), Address::ZERO, U256::from(5))
                    });
                    let tx = self.payment(rng, &[unknown]);
                    Self::signed(d, &tx, &[owner])
                }
                12 if !utxos.is_empty() => {
                    let (p, o) = one(rng);
                    let to = o.owner;
                    let tx = Transaction::payment(
                        &[p],
                        vec![
                            Output::new(to, Address::ZERO, U256::MAX),
                            Output::new(to, Address::ZERO, U256::from(1)),
                        ],
                        rng.b256(),
                    );
                    Self::signed(d, &tx, &[self.owner(o.owner)])
                }
                13 if !utxos.is_empty() => {
                    let (p, o) = one(rng);
                    let outputs = if rng.below(2) == 0 {
                        vec![Output::new(
                            o.owner,
                            Address::ZERO,
                            o.amount.saturating_add(U256::from(1)),
                        )]
                    } else {
                        vec![Output::new(o.owner, Address::repeat_byte(0x70), U256::from(1))]
                    };
                    let tx = Transaction::payment(&[p], outputs, rng.b256());
                    Self::signed(d, &tx, &[self.owner(o.owner)])
                }
                14 if !exiting.is_empty() => {
                    let input = exiting[rng.below(exiting.len())].clone();
                    let tx = self.payment(rng, std::slice::from_ref(&input));
                    Self::signed(d, &tx, &[self.owner(input.1.owner)])
                }
                15 if !history.is_empty() => history[rng.below(history.len())].clone(),
                16 if !out.is_empty() => out[rng.below(out.len())].clone(),
                17 => {
                    let valid = out.last().cloned().unwrap_or_else(|| vec![0xab; 40]);
                    match rng.below(4) {
                        0 => vec![0xde, 0xad, 0xbe, 0xef],
                        1 => Vec::new(),
                        2 => valid[..valid.len() / 2].to_vec(),
                        _ => {
                            let mut v = valid;
                            v.extend_from_slice(&[0u8; 32]);
                            v
                        }
                    }
                }
                18 => {
                    let owner = &self.owners[rng.below(self.owners.len())];
                    if rng.below(2) == 0 {
                        let dep =
                            Transaction::deposit(owner.address(), Address::ZERO, U256::from(7));
                        SignedTransaction::new(dep, vec![]).encode()
                    } else {
                        let mut fee = Transaction::payment(
                            &[],
                            vec![Output::new(owner.address(), Address::ZERO, U256::from(1))],
                            rng.b256(),
                        );
                        fee.txType = 3;
                        SignedTransaction::new(fee, vec![]).encode()
                    }
                }
                19 => {
                    // An output of a transaction not yet in a block: unknown to the ledger.
                    let owner = &self.owners[rng.below(self.owners.len())];
                    let child = (
                        pos(next_block, rng.below(4) as u16, 0),
                        Output::new(owner.address(), Address::ZERO, U256::from(3)),
                    );
                    let tx = self.payment(rng, &[child]);
                    Self::signed(d, &tx, &[owner])
                }
                _ => continue,
            };
            out.push(raw);
        }
        out
    }
}

/// A result as compared: the hash, or the code and the whole message.
fn answer(r: &Result<B256, SubmitError>) -> String {
    match r {
        Ok(h) => format!("ok {h}"),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

fn code_of(r: &Result<B256, SubmitError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn open_chain(dir: &tempfile::TempDir, max_mempool: usize) -> Chain {
    let store = Store::open(&dir.path().join("operator.redb")).unwrap();
    Chain::open(store, domain(), FEE_RECIPIENT, max_mempool).unwrap()
}

/// Every unspent output of `owners` that the chain lets be spent (exiting ones left out).
fn spendable(chain: &Chain, owners: &[Signer]) -> Vec<(UtxoPos, Output)> {
    owners.iter().flat_map(|o| chain.utxos_of(o.address())).collect()
}

/// Submitting in batches (of sizes around the recovery run: 1, 2, 15, 16, 17, 33, a whole round)
/// answers each transaction exactly as submitting it alone, in the same order, on a chain in the
/// same state: same code, same message (a conflict names the same earlier spend), same hash.
/// Between rounds, both chains produce the same block (so replays hit included transactions:
/// `AlreadyKnown` from the stored index, or from the last block's index while its effects are
/// written) and follow the same exits (so spends of exiting outputs are refused and pending ones
/// dropped). After each round the two chains hold the same UTXO set, mempool and statuses.
#[test]
fn batch_answers_match_one_by_one_submission() {
    const ROUNDS: usize = 14;
    let mut rng = Rng::from_env();
    let owners: Vec<Signer> = (1..=4).map(key).collect();
    let kit = Kit {
        d: domain(),
        other: SigningDomain::new(1, domain().domain().verifying_contract.unwrap_or_default()),
        owners: owners.clone(),
        mallory: key(66),
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A small cap: some rounds fill the mempool (MempoolFull is per item too).
    let (a, b) = (open_chain(&dir_a, 48), open_chain(&dir_b, 48));
    // 30 deposits of 100 wei, two of 2^255 wei (together they overflow an input sum).
    let mut amounts: Vec<U256> = (0..30).map(|_| U256::from(100)).collect();
    amounts.extend([U256::from(1) << 255, U256::from(1) << 255]);
    for (i, amount) in amounts.iter().enumerate() {
        let owner = if i >= 30 { &owners[0] } else { &owners[i % owners.len()] };
        let dep = Transaction::deposit(owner.address(), Address::ZERO, *amount).encode();
        for chain in [&a, &b] {
            assert!(chain.credit_deposit(i as u64 + 1, &dep, 1_700_000_000).unwrap());
        }
    }
    let mut history: Vec<Vec<u8>> = Vec::new();
    let mut exiting: Vec<(UtxoPos, Output)> = Vec::new();
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    let sizes = [1usize, 2, 15, 16, 17, 33, usize::MAX];
    let mut accepted: Vec<Vec<u8>> = Vec::new();
    let mut known_included = 0;
    for round in 0..ROUNDS {
        let utxos = spendable(&a, &owners);
        assert_eq!(utxos, spendable(&b, &owners), "round {round}: UTXO sets differ");
        let next_block = a.status().next_child_block;
        let n = 40 + rng.below(60);
        let mut raw = kit.mix(&mut rng, &utxos, &exiting, &history, next_block, n);
        // Replays of earlier acceptances (pending, or included by a block since).
        for _ in 0..accepted.len().min(5) {
            let tx = accepted[rng.below(accepted.len())].clone();
            raw.insert(rng.below(raw.len() + 1), tx);
        }
        // A: in chunks (one size per round, the last round's chunk the whole round); B: alone.
        let size = sizes[round % sizes.len()].min(raw.len());
        let mut got_a = Vec::with_capacity(raw.len());
        for chunk in raw.chunks(size) {
            let results = a.submit(chunk);
            assert_eq!(results.len(), chunk.len());
            got_a.extend(results);
        }
        let got_b: Vec<_> =
            raw.iter().map(|r| b.submit(std::slice::from_ref(r)).pop().unwrap()).collect();
        for (i, (x, y)) in got_a.iter().zip(&got_b).enumerate() {
            assert_eq!(
                answer(x),
                answer(y),
                "round {round} (chunks of {size}), item {i}: batch vs alone; bytes 0x{}",
                hex::encode(&raw[i])
            );
            *seen.entry(code_of(x)).or_default() += 1;
            match x {
                Ok(_) => accepted.push(raw[i].clone()),
                Err(SubmitError::AlreadyKnown(h)) => {
                    if matches!(a.tx_status(h).unwrap(), Some(TxStatus::Included { .. })) {
                        known_included += 1;
                    }
                }
                Err(_) => {}
            }
        }
        // Every acceptance is pending now, on both.
        for r in got_a.iter().flatten() {
            assert_eq!(a.tx_status(r).unwrap(), Some(TxStatus::Pending));
            assert_eq!(b.tx_status(r).unwrap(), Some(TxStatus::Pending));
        }
        assert_eq!(a.status(), b.status(), "round {round}: status differs");
        history.extend(raw);
        // Between rounds: maybe an exit (on an output possibly spent by a pending transaction:
        // that one is dropped), maybe a block.
        if rng.below(3) == 0 && !utxos.is_empty() {
            let victim = utxos[rng.below(utxos.len())].clone();
            let event = [(ExitEvent::StandardExitStarted { pos: victim.0 }, 1_700_000_100)];
            let dropped_a = a.apply_exit_events(&event, round as u64 + 1).unwrap();
            let dropped_b = b.apply_exit_events(&event, round as u64 + 1).unwrap();
            assert_eq!(dropped_a, dropped_b);
            exiting.push(victim);
        }
        if rng.below(3) != 0 {
            let (block_a, block_b) =
                (a.produce_block(65_535).unwrap(), b.produce_block(65_535).unwrap());
            assert_eq!(
                block_a.as_ref().map(|r| (r.blknum, r.root, r.txs.clone())),
                block_b.as_ref().map(|r| (r.blknum, r.root, r.txs.clone())),
                "round {round}: blocks differ"
            );
        }
        assert_eq!(a.status(), b.status(), "round {round}: status differs after the block");
    }
    // Every hash either chain ever answered has the same status on both.
    for raw in &history {
        if let Ok(signed) = SignedTransaction::decode(raw) {
            let h = signed.transaction.hash();
            assert_eq!(a.tx_status(&h).unwrap(), b.tx_status(&h).unwrap(), "{h}");
        }
    }
    eprintln!("answers seen: {seen:?}; AlreadyKnown of included ones: {known_included}");
    assert!(known_included > 0, "no replay of an included transaction");
    // The mix reached the answers it is meant to compare.
    for code in [
        "ok",
        "AlreadyKnown",
        "MempoolConflict",
        "InputNotFound",
        "WrongSigner",
        "AmountOverflow",
        "ValueCreated",
        "NotAPayment",
        "OutputExiting",
    ] {
        assert!(seen.contains_key(code), "no {code} in {seen:?}");
    }
}

/// The framing rules at their edges, on `decode_batch` (what the route answers from): a zero
/// length frame is a frame (an empty transaction, refused per item later); a length prefix that
/// would overflow `usize` arithmetic on 32-bit (`u32::MAX`) or runs one byte past the end is
/// `TruncatedTx` at that frame's offset; one to three bytes after the last frame are
/// `TruncatedPrefix`; `max` frames pass and `max + 1` are `TooMany`; an empty body is no frame.
#[test]
fn frames_at_their_edges() {
    let tx = vec![7u8; 9];
    assert_eq!(decode_batch(&[], 0).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(decode_batch(&[0, 0, 0, 0], 1).unwrap(), vec![Vec::<u8>::new()]);
    assert_eq!(decode_batch(&encode_batch(&[&tx, &tx]), 2).unwrap(), vec![tx.clone(), tx.clone()]);
    assert_eq!(
        decode_batch(&encode_batch(&[&tx, &tx, &tx]), 2),
        Err(FrameError::TooMany { max: 2 })
    );
    assert_eq!(decode_batch(&[0, 0, 0, 0], 0), Err(FrameError::TooMany { max: 0 }));
    for len in [10u32, u32::MAX, u32::MAX - 3] {
        let mut body = encode_batch(&[&tx]);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&tx);
        assert_eq!(
            decode_batch(&body, 5),
            Err(FrameError::TruncatedTx { index: 1, offset: 13, len, left: 9 })
        );
    }
    for tail in 1..4 {
        let mut body = encode_batch(&[&tx]);
        body.extend(std::iter::repeat_n(0u8, tail));
        assert_eq!(
            decode_batch(&body, 5),
            Err(FrameError::TruncatedPrefix { index: 1, offset: 13, left: tail })
        );
    }
}

/// OP-1: "A body ending inside a frame is refused whole (`400 MalformedFrame`, naming the
/// frame and its offset), more frames than `api.max_batch` too (`413 BatchTooLarge`)". A body
/// of exactly `max_batch` frames followed by a cut-off one holds `max_batch` frames and ends
/// inside the next: it is malformed, not too large — told so, the integrator mends the framing
/// instead of splitting the batch and meeting the same bug again.
#[test]
fn max_frames_then_a_cut_off_one_is_malformed_not_too_large() {
    let tx = vec![7u8; 9];
    let six: Vec<&Vec<u8>> = std::iter::repeat_n(&tx, 6).collect();
    let mut body = encode_batch(&six);
    body.extend_from_slice(&[0, 0]); // a prefix cut off
    let got = decode_batch(&body, 6);
    assert_eq!(got, Err(FrameError::TruncatedPrefix { index: 6, offset: 78, left: 2 }));
    let mut body = encode_batch(&six);
    body.extend_from_slice(&100u32.to_be_bytes()); // a frame cut off
    assert_eq!(
        decode_batch(&body, 6).map_err(|e| e.code()),
        Err("MalformedFrame"),
        "a frame announcing 100 bytes with none following"
    );
}

// ---------------------------------------------------------------------------------------------
// Over HTTP, on anvil.

/// A node on `dc`'s contracts that never produces a block on its own (the tests look at the
/// mempool), with the given batch and body limits.
async fn node(dc: &Devnet, dir: &std::path::Path, max_batch: usize, max_body: u64) -> Node {
    let mut c = devnet_config(&dc.anvil, dc.deployment.framework, dir);
    c.block.interval_ms = 3_600_000;
    c.api.max_batch = max_batch;
    c.api.max_body_bytes = max_body;
    Node::start(c).await.unwrap()
}

/// `n` deposits of `amount` for each of `owners`, as spendable outputs.
async fn deposits(
    dc: &Devnet,
    owners: &[&Signer],
    n: usize,
    amount: u64,
) -> Vec<(UtxoPos, Output)> {
    let mut out = Vec::new();
    for _ in 0..n {
        for owner in owners {
            let amount = U256::from(amount);
            let at =
                common::deposit_eth(&dc.provider, dc.deployment.framework, owner.address(), amount)
                    .await;
            out.push((at, Output::new(owner.address(), Address::ZERO, amount)));
        }
    }
    out
}

/// Waits until `api` credited every deposit of `utxos`.
async fn credited(api: &Api, utxos: &[(UtxoPos, Output)]) {
    let owners: HashSet<Address> = utxos.iter().map(|(_, o)| o.owner).collect();
    for owner in owners {
        let want = utxos.iter().filter(|(_, o)| o.owner == owner).count();
        api.wait_for(&format!("/v1/utxos?owner={owner}&limit=1000"), |v| {
            v["utxos"].as_array().is_some_and(|u| u.len() == want)
        })
        .await;
    }
}

async fn post_as(api: &Api, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = api.http.post(format!("{}{path}", api.base)).body(body);
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_binary(api: &Api, body: Vec<u8>) -> (u16, Value) {
    post_as(api, "/v1/transactions/batch", Some(BATCH_MEDIA_TYPE), body).await
}

async fn post_json_batch(api: &Api, txs: &[Vec<u8>]) -> (u16, Value) {
    let hex: Vec<String> = txs.iter().map(|t| format!("0x{}", hex::encode(t))).collect();
    let body = json!({ "txs": hex }).to_string().into_bytes();
    post_as(api, "/v1/transactions/batch", Some("application/json"), body).await
}

async fn post_single(api: &Api, tx: &[u8]) -> (u16, Value) {
    let body = json!({"tx": format!("0x{}", hex::encode(tx))}).to_string().into_bytes();
    post_as(api, "/v1/transactions", Some("application/json"), body).await
}

/// One answer as compared: `ok <hash>`, or `<code>: <message>`.
fn item(v: &Value) -> String {
    match v["txHash"].as_str() {
        Some(h) => format!("ok {h}"),
        None => format!(
            "{}: {}",
            v["error"]["code"].as_str().unwrap_or("?"),
            v["error"]["message"].as_str().unwrap_or("?")
        ),
    }
}

fn items(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(item)
        .collect()
}

fn code(answer: &str) -> &str {
    if answer.starts_with("ok ") { "ok" } else { answer.split(':').next().unwrap() }
}

async fn mempool_size(api: &Api) -> u64 {
    api.get("/v1/status").await.1["chain"]["mempoolSize"].as_u64().unwrap()
}

fn tx_hash(raw: &[u8]) -> B256 {
    SignedTransaction::decode(raw).unwrap().transaction.hash()
}

/// The batch route (binary body, then JSON body) and the single route give every transaction
/// the same answer — code and message, the wrong-domain hints included — on two operators that
/// read the same deposits, one fed batches and the other one transaction a request; their
/// mempools and UTXO sets end equal. The second round replays the first (pending: `AlreadyKnown`)
/// among new transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_route_and_single_route_answer_alike() {
    let dc = devnet::chain().await;
    let owners = [&dc.alice, &dc.bob];
    let utxos = deposits(&dc, &owners, 5, 1_000_000).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node_a = node(&dc, dir_a.path(), 256, 2 * 1024 * 1024).await;
    let node_b = node(&dc, dir_b.path(), 256, 2 * 1024 * 1024).await;
    let (a, b) = (Api::new(&node_a), Api::new(&node_b));
    credited(&a, &utxos).await;
    credited(&b, &utxos).await;
    let contract = dc.deployment.framework;
    let kit = Kit {
        d: dc.domain.clone(),
        other: SigningDomain::new(1, contract),
        owners: vec![dc.alice.clone(), dc.bob.clone()],
        mallory: key(66),
    };
    let mut rng = Rng::from_env();
    let mut history: Vec<Vec<u8>> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut accepted: Vec<Vec<u8>> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for round in 0..2 {
        let mut raw = kit.mix(&mut rng, &utxos[..8], &[], &history, 1000, 90);
        // Refusals by the ledger on outputs nothing else spends (so not a conflict first): a
        // signature by someone who owns nothing, and the owner's for another chain id (the two
        // hints of `WrongSigner`).
        for held in &utxos[8..] {
            let tx = kit.payment(&mut rng, std::slice::from_ref(held));
            raw.insert(rng.below(raw.len() + 1), Kit::signed(&kit.d, &tx, &[&kit.mallory]));
            let owner = kit.owner(held.1.owner);
            raw.insert(rng.below(raw.len() + 1), Kit::signed(&kit.other, &tx, &[owner]));
        }
        // Replays of what the first round accepted (pending now), spread among the new ones.
        for tx in accepted.drain(..) {
            let at = rng.below(raw.len() + 1);
            raw.insert(at, tx);
        }
        let (status, body) = if round == 0 {
            post_binary(&a, encode_batch(&raw)).await
        } else {
            post_json_batch(&a, &raw).await
        };
        assert_eq!(status, 200, "{body}");
        let got_a = items(&body);
        assert_eq!(got_a.len(), raw.len());
        for (i, tx) in raw.iter().enumerate() {
            let (status, body) = post_single(&b, tx).await;
            let got_b = item(&body);
            assert_eq!(got_a[i], got_b, "round {round}, item {i}: 0x{}", hex::encode(tx));
            let want = match code(&got_b) {
                "ok" => 200,
                "SubmitInProgress" | "MempoolFull" | "StorageFailure" | "OperatorHalted" => 503,
                _ => 422,
            };
            assert_eq!(status, want, "{body}");
            *seen.entry(code(&got_b).to_owned()).or_default() += 1;
            if code(&got_b) == "WrongSigner" {
                hints.push(got_b.clone());
            }
            if code(&got_b) == "ok" {
                accepted.push(tx.clone());
            }
        }
        history.extend(raw);
    }
    eprintln!("answers seen: {seen:?}");
    for c in ["ok", "AlreadyKnown", "MempoolConflict", "WrongSigner", "InputNotFound", "Malformed"]
    {
        assert!(seen.contains_key(c), "no {c} in {seen:?}");
    }
    assert!(hints.iter().any(|h| h.contains("for chain id 1;")), "{hints:?}");
    assert!(hints.iter().any(|h| h.contains("owns nothing on this chain")), "{hints:?}");
    let (sa, sb) = (a.get("/v1/status").await.1, b.get("/v1/status").await.1);
    assert!(sa["chain"]["mempoolSize"].as_u64().unwrap() > 0, "{sa}");
    assert_eq!(sa["chain"]["mempoolSize"], sb["chain"]["mempoolSize"]);
    assert_eq!(sa["chain"]["utxoCount"], sb["chain"]["utxoCount"]);
    for owner in [dc.alice.address(), dc.bob.address()] {
        let path = format!("/v1/utxos?owner={owner}&limit=1000");
        assert_eq!(a.get(&path).await.1, b.get(&path).await.1);
    }
    for raw in &history {
        if let Ok(signed) = SignedTransaction::decode(raw) {
            let path = format!("/v1/transactions/{}", signed.transaction.hash());
            let (x, y) = (a.get(&path).await, b.get(&path).await);
            assert_eq!(x, y, "{path}");
        }
    }
    node_a.stop().await;
    node_b.stop().await;
}

/// Every refusal of a whole body changes nothing, the valid transactions inside it included, and
/// names its cause: a length prefix of `u32::MAX` or one past the end, a body ending inside a
/// prefix, trailing bytes, more frames than `max_batch`, a body over `max_body_bytes` (binary
/// and JSON), a JSON batch over `max_batch`, a JSON batch with one item not hex, a binary body
/// sent under another content type (read as JSON), a JSON body with an unknown field, a body
/// without a length. Frames that hold no transaction (zero length, garbage) are per-item
/// refusals, like any undecodable bytes. The batch refused above is then accepted whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_whole_and_change_nothing() {
    let dc = devnet::chain().await;
    let utxos = deposits(&dc, &[&dc.alice], 3, 1_000_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = node(&dc, dir.path(), 6, 16 * 1024).await;
    let api = Api::new(&node);
    credited(&api, &utxos).await;
    let kit = Kit {
        d: dc.domain.clone(),
        other: SigningDomain::new(1, dc.deployment.framework),
        owners: vec![dc.alice.clone()],
        mallory: key(66),
    };
    let mut rng = Rng::from_env();
    let good: Vec<Vec<u8>> = utxos
        .iter()
        .map(|u| Kit::signed(&kit.d, &kit.payment(&mut rng, std::slice::from_ref(u)), &[&dc.alice]))
        .collect();
    let hashes: Vec<B256> = good.iter().map(|t| tx_hash(t)).collect();
    let nothing_changed = |api: &Api| {
        let (api, hashes) = (Api { base: api.base.clone(), http: reqwest::Client::new() }, &hashes);
        async move {
            assert_eq!(mempool_size(&api).await, 0);
            for h in hashes {
                assert_eq!(api.get(&format!("/v1/transactions/{h}")).await.0, 404, "{h}");
            }
        }
    };
    let whole = encode_batch(&good);
    // (what, content type, body, status, code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let mut cases: Vec<Case<'_>> = Vec::new();
    let mut max_len = encode_batch(&good[..2]);
    max_len.extend_from_slice(&u32::MAX.to_be_bytes());
    max_len.extend_from_slice(&good[2]);
    cases.push(("u32::MAX prefix", Some(BATCH_MEDIA_TYPE), max_len, 400, "MalformedFrame"));
    let mut one_past = encode_batch(&good[..2]);
    one_past.extend_from_slice(&(good[2].len() as u32 + 1).to_be_bytes());
    one_past.extend_from_slice(&good[2]);
    cases.push((
        "prefix one past the end",
        Some(BATCH_MEDIA_TYPE),
        one_past,
        400,
        "MalformedFrame",
    ));
    for tail in [&[0u8][..], &[0, 0, 0], &[0, 0, 0, 9, 1, 2]] {
        let mut t = whole.clone();
        t.extend_from_slice(tail);
        cases.push(("trailing bytes", Some(BATCH_MEDIA_TYPE), t, 400, "MalformedFrame"));
    }
    let seven: Vec<&Vec<u8>> = good.iter().cycle().take(7).collect();
    cases.push(("7 frames", Some(BATCH_MEDIA_TYPE), encode_batch(&seven), 413, "BatchTooLarge"));
    let hex = |t: &Vec<u8>| format!("0x{}", hex::encode(t));
    let json7 = json!({"txs": seven.iter().map(|t| hex(t)).collect::<Vec<_>>()});
    cases.push(("7 JSON", None, json7.to_string().into_bytes(), 413, "BatchTooLarge"));
    let mut bad_hex: Vec<String> = good.iter().map(hex).collect();
    bad_hex.push("0xzz".into());
    let bad_hex = json!({ "txs": bad_hex }).to_string().into_bytes();
    cases.push(("one item not hex", Some("application/json"), bad_hex, 400, "MalformedHex"));
    let extra = json!({"txs": good.iter().map(hex).collect::<Vec<_>>(), "atomic": true});
    cases.push(("unknown field", None, extra.to_string().into_bytes(), 400, "MalformedJson"));
    for t in [None, Some("text/plain"), Some("application/octet-streams"), Some("application/json")]
    {
        cases.push(("binary body as JSON", t, whole.clone(), 400, "MalformedJson"));
    }
    let mut big = whole.clone();
    big.extend(encode_batch(&[vec![0u8; 17 * 1024]]));
    cases.push(("binary over the limit", Some(BATCH_MEDIA_TYPE), big, 413, "BodyTooLarge"));
    let big_json = json!({"txs": [hex(&good[0]), format!("0x{}", "00".repeat(9 * 1024))]});
    cases.push((
        "JSON over the limit",
        None,
        big_json.to_string().into_bytes(),
        413,
        "BodyTooLarge",
    ));
    for (what, content_type, body, status, code) in cases {
        // A fresh connection each time: a 413 may close the one before.
        let api = Api { base: api.base.clone(), http: reqwest::Client::new() };
        let (got, reply) = post_as(&api, "/v1/transactions/batch", content_type, body).await;
        assert_eq!((got, reply["error"]["code"].as_str()), (status, Some(code)), "{what}: {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
        nothing_changed(&api).await;
    }
    // The frame named, with its offset.
    let mut short = encode_batch(&good[..1]);
    short.extend_from_slice(&[0, 0]);
    let (_, reply) = post_binary(&api, short.clone()).await;
    let offset = 4 + good[0].len();
    assert!(
        reply["error"]["message"].as_str().unwrap().contains(&format!("frame 1 at byte {offset}")),
        "{reply}"
    );
    // Chunked, without a length: 411, nothing read.
    let status = chunked_post(&api.base, "/v1/transactions/batch", BATCH_MEDIA_TYPE, &whole).await;
    assert_eq!(status, 411);
    nothing_changed(&api).await;
    // Frames that hold no transaction are per-item answers (and change nothing); so is an empty
    // JSON batch.
    let empties = encode_batch(&[Vec::new(), vec![0u8; 3], Vec::new()]);
    let (status, reply) = post_binary(&api, empties).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        items(&reply).iter().map(|i| code(i).to_owned()).collect::<Vec<_>>(),
        ["Malformed"; 3]
    );
    let (status, reply) = post_json_batch(&api, &[]).await;
    assert_eq!((status, &reply["results"]), (200, &json!([])), "{reply}");
    nothing_changed(&api).await;
    // The same transactions, well framed: all accepted, in order.
    let (status, reply) = post_binary(&api, whole).await;
    assert_eq!(status, 200, "{reply}");
    let want: Vec<String> = hashes.iter().map(|h| format!("ok {h}")).collect();
    assert_eq!(items(&reply), want);
    assert_eq!(mempool_size(&api).await, 3);
    node.stop().await;
}

/// Conflicting spends of the same inputs sent at once through every route — a binary batch, a
/// JSON batch, single requests (the group committer), and the binary batch's very bytes again —
/// take each input exactly once: one acceptance per input, no transaction accepted twice, every
/// other spend `MempoolConflict` naming the accepted one, every copy of an accepted transaction
/// `AlreadyKnown` or `SubmitInProgress` (never `ok`), the mempool holding exactly the accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_spends_through_all_routes_at_once_take_each_input_once() {
    const PER_ROUND: usize = 20;
    let dc = devnet::chain().await;
    let utxos = deposits(&dc, &[&dc.alice, &dc.bob], 2 * PER_ROUND / 2, 1_000_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = node(&dc, dir.path(), 100, 2 * 1024 * 1024).await;
    let api = Api::new(&node);
    credited(&api, &utxos).await;
    let kit = Kit {
        d: dc.domain.clone(),
        other: SigningDomain::new(1, dc.deployment.framework),
        owners: vec![dc.alice.clone(), dc.bob.clone()],
        mallory: key(66),
    };
    let mut rng = Rng::from_env();
    let mut accepted_total = 0;
    for (round, inputs) in utxos.chunks(PER_ROUND).enumerate() {
        // Route k spends input i with its own transaction k (k = 0..3); route 3 resends route
        // 0's bytes.
        let spends: Vec<Vec<Vec<u8>>> = (0..3)
            .map(|_| {
                inputs
                    .iter()
                    .map(|u| {
                        let tx = kit.payment(&mut rng, std::slice::from_ref(u));
                        Kit::signed(&kit.d, &tx, &[kit.owner(u.1.owner)])
                    })
                    .collect()
            })
            .collect();
        let singles = async {
            let calls: Vec<_> = spends[2]
                .iter()
                .map(|tx| {
                    let (base, tx) = (api.base.clone(), tx.clone());
                    tokio::spawn(async move {
                        let api = Api { base, http: reqwest::Client::new() };
                        item(&post_single(&api, &tx).await.1)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for call in calls {
                out.push(call.await.unwrap());
            }
            out
        };
        let binary = async {
            let api = Api { base: api.base.clone(), http: reqwest::Client::new() };
            items(&post_binary(&api, encode_batch(&spends[0])).await.1)
        };
        let json = async {
            let api = Api { base: api.base.clone(), http: reqwest::Client::new() };
            items(&post_json_batch(&api, &spends[1]).await.1)
        };
        let again = async {
            let api = Api { base: api.base.clone(), http: reqwest::Client::new() };
            items(&post_binary(&api, encode_batch(&spends[0])).await.1)
        };
        let (r0, r1, r2, r3) = tokio::join!(binary, json, singles, again);
        let answers = [r0, r1, r2, r3];
        for (i, _) in inputs.iter().enumerate() {
            let routes: Vec<&str> = answers.iter().map(|r| r[i].as_str()).collect();
            let txs = [&spends[0][i], &spends[1][i], &spends[2][i], &spends[0][i]];
            let winners: Vec<usize> = (0..4).filter(|k| code(routes[*k]) == "ok").collect();
            assert_eq!(winners.len(), 1, "round {round}, input {i}: {routes:#?}");
            let winner = tx_hash(txs[winners[0]]);
            for k in 0..4 {
                let answer = routes[k];
                let same = tx_hash(txs[k]) == winner;
                match code(answer) {
                    "ok" => {}
                    "MempoolConflict" => {
                        assert!(!same, "{answer}");
                        assert!(answer.contains(&winner.to_string()), "{answer} vs {winner}");
                    }
                    "AlreadyKnown" | "SubmitInProgress" => assert!(same, "{answer}"),
                    _ => panic!("round {round}, input {i}, route {k}: {answer}"),
                }
            }
            let (_, status) = api.get(&format!("/v1/transactions/{winner}")).await;
            assert_eq!(status["status"], "pending", "{status}");
        }
        accepted_total += inputs.len();
        assert_eq!(mempool_size(&api).await, accepted_total as u64);
    }
    node.stop().await;
}

/// `POST` of `body` in one chunk (`Transfer-Encoding: chunked`, no `Content-Length`); the
/// status.
async fn chunked_post(base: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").to_owned();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&request).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let head = String::from_utf8_lossy(&reply);
        head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    })
    .await
    .unwrap()
}

/// A batch of refusals cannot buy the operator's CPU many times over: the wrong-domain hint of a
/// `WrongSigner` refusal costs up to 17 signature recoveries and a state read, so the operator
/// looks for at most 64 a second over all requests (`HINTS_PER_SECOND`), off the async workers.
/// A wallet signing for the wrong chain still learns why from its first refusal; a batch of
/// 1,000 such refusals gets the hint on at most two seconds' worth of its items (the batch may
/// straddle a second), the rest the plain refusal. The same batch refused as `InputNotFound`
/// gets no hint at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_wrong_signers_buys_a_bounded_number_of_hints() {
    let dc = devnet::chain().await;
    let utxos = deposits(&dc, &[&dc.alice], 1, 1_000_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = node(&dc, dir.path(), 1000, 2 * 1024 * 1024).await;
    let api = Api::new(&node);
    credited(&api, &utxos).await;
    let mallory = key(66);
    let batch = |input: UtxoPos| -> Vec<u8> {
        let txs: Vec<Vec<u8>> = (0..1000u64)
            .map(|i| {
                let out = Output::new(dc.alice.address(), Address::ZERO, U256::from(1 + i));
                let tx = Transaction::payment(&[input], vec![out], B256::ZERO);
                Kit::signed(&dc.domain, &tx, &[&mallory])
            })
            .collect();
        encode_batch(&txs)
    };
    let hinted = |answers: &[String]| {
        answers.iter().filter(|a| a.contains("owns nothing on this chain")).count()
    };
    let (status, reply) = post_binary(&api, batch(pos(900_000, 0, 0))).await;
    assert_eq!(status, 200);
    let answers = items(&reply);
    assert!(answers.iter().all(|a| code(a) == "InputNotFound"), "{:?}", answers[0]);
    assert_eq!(hinted(&answers), 0);
    let (status, reply) = post_binary(&api, batch(utxos[0].0)).await;
    assert_eq!(status, 200);
    let answers = items(&reply);
    assert_eq!(answers.len(), 1000);
    assert!(answers.iter().all(|a| code(a) == "WrongSigner"), "{:?}", answers[0]);
    let hints = hinted(&answers);
    assert!(hinted(&answers[..1]) == 1, "the first refusal tells why: {}", answers[0]);
    assert!((1..=128).contains(&hints), "{hints} hints for one batch");
    node.stop().await;
}

//! The shared test vectors: generated from this crate, checked by its tests, read by the forge
//! tests of the contracts. Rust and Solidity answer the same questions from the same files, so
//! they cannot drift apart unnoticed.
//!
//! `cargo run -p plasma-spec --bin gen-vectors` rewrites `spec/vectors/`; a test fails when the
//! committed files differ from what [`generate`] gives.
//!
//! Conventions, chosen so Solidity's `vm.parseJson*` and JavaScript read them without loss:
//! bytes and hashes are `0x` hex strings, every integer that may exceed 2^53 is a decimal string,
//! keys are sorted.

use crate::{
    constants::{CHILD_BLOCK_INTERVAL, MAX_TX_BYTES},
    exit_game::{exit_priority, in_flight_exit_exitable_at, standard_exit_exitable_at},
    ledger::{UtxoSet, validate_child_block},
    merkle::{BlockTree, leaf_hash, zero_hashes},
    position::UtxoPos,
    signing::{ExitAuthorization, Signer, SigningDomain, recover_signer},
    tx::{Output, SignedTransaction, Transaction, output_id},
};
use alloy_primitives::{Address, B256, U256, address, hex, keccak256};
use alloy_sol_types::SolStruct;
use serde_json::{Value, json};
use std::path::Path;

/// The chain id of the vectors' domain.
pub const VECTOR_CHAIN_ID: u64 = 31337;
/// The verifying contract of the vectors' domain: the first contract address anvil deploys.
pub const VECTOR_CONTRACT: Address = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");

/// The `n`th deterministic key: `keccak256("plasma test key" ‖ n as 8 bytes)`.
pub fn test_key(n: u64) -> Signer {
    let mut seed = b"plasma test key".to_vec();
    seed.extend_from_slice(&n.to_be_bytes());
    // A keccak output is a valid key with overwhelming probability; if not, take the next seed.
    Signer::from_bytes(&keccak256(&seed)).unwrap_or_else(|| test_key(n + 1_000_000))
}

/// The vectors' EIP-712 domain.
pub fn vector_domain() -> SigningDomain {
    SigningDomain::new(VECTOR_CHAIN_ID, VECTOR_CONTRACT)
}

fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_prefixed(bytes)
}

fn dec(v: impl core::fmt::Display) -> String {
    v.to_string()
}

fn pos(b: u64, t: u16, o: u8) -> UtxoPos {
    UtxoPos::new(b, t, o).unwrap_or_else(|e| unreachable!("vector position {b}/{t}/{o}: {e}"))
}

fn output_json(o: &Output) -> Value {
    json!({ "owner": o.owner, "token": o.token, "amount": dec(o.amount) })
}

fn tx_json(tx: &Transaction) -> Value {
    json!({
        "txType": tx.txType,
        "inputs": tx.inputs.iter().map(dec).collect::<Vec<_>>(),
        "outputs": tx.outputs.iter().map(output_json).collect::<Vec<_>>(),
        "metadata": tx.metadata,
    })
}

fn sign(domain: &SigningDomain, tx: Transaction, keys: &[&Signer]) -> SignedTransaction {
    let sigs = keys.iter().map(|k| k.sign_tx(domain, &tx)).collect();
    SignedTransaction::new(tx, sigs)
}

const TOKEN: Address = address!("0x00000000000000000000000000000000000070c0");
const ETH: Address = Address::ZERO;

fn out(owner: &Signer, token: Address, amount: u64) -> Output {
    Output::new(owner.address(), token, U256::from(amount))
}

/// Every vector file: `(file name, pretty JSON with a trailing newline)`.
pub fn generate() -> Vec<(&'static str, String)> {
    let files = [
        ("positions.json", positions()),
        ("transactions.json", transactions()),
        ("decoding.json", decoding()),
        ("signatures.json", signatures()),
        ("merkle.json", merkle()),
        ("ledger.json", ledger()),
        ("exit_game.json", exit_game()),
        ("batch_exit.json", batch_exit()),
    ];
    files
        .into_iter()
        .map(|(name, value)| {
            let mut text = serde_json::to_string_pretty(&value)
                .unwrap_or_else(|e| unreachable!("vectors are plain JSON: {e}"));
            text.push('\n');
            (name, text)
        })
        .collect()
}

/// Writes every vector file into `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in generate() {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// spec: POS
fn positions() -> Value {
    let valid: Vec<Value> = [
        (1u64, 0u16, 0u8),
        (1000, 0, 0),
        (1000, 1, 4),
        (2001, 0, 0),
        (123_000, 65_535, 3),
    ]
    .into_iter()
    .map(|(b, t, o)| {
        let p = pos(b, t, o);
        json!({
            "blknum": dec(b), "txIndex": t, "outputIndex": o,
            "utxoPos": dec(p.to_u128()), "txPos": dec(p.tx_pos()), "isDeposit": p.is_deposit(),
        })
    })
    .collect();
    let invalid: Vec<Value> = [
        ("zero block", 3u128),
        ("output index 5", 1_000_000_005),
        ("tx index 65536", 1_000_000_000 + 65_536 * 10_000),
    ]
    .into_iter()
    .map(|(name, raw)| {
        let e = UtxoPos::from_u128(raw).err().map(|e| format!("{e:?}"));
        json!({ "name": name, "utxoPos": dec(raw), "error": e })
    })
    .collect();
    json!({ "childBlockInterval": CHILD_BLOCK_INTERVAL, "valid": valid, "invalid": invalid })
}

/// The transactions the other files reuse, with their keys.
fn sample_txs(domain: &SigningDomain) -> Vec<(&'static str, SignedTransaction)> {
    let (a, b, c) = (test_key(1), test_key(2), test_key(3));
    vec![
        (
            "deposit eth",
            SignedTransaction::new(
                Transaction::deposit(a.address(), ETH, U256::from(10u64.pow(18))),
                vec![],
            ),
        ),
        (
            "deposit token",
            SignedTransaction::new(
                Transaction::deposit(b.address(), TOKEN, U256::from(500)),
                vec![],
            ),
        ),
        (
            "payment 1 in 1 out",
            sign(
                domain,
                Transaction::payment(&[pos(1, 0, 0)], vec![out(&b, ETH, 900)], B256::ZERO),
                &[&a],
            ),
        ),
        (
            "payment 2 in 2 out with metadata",
            sign(
                domain,
                Transaction::payment(
                    &[pos(1000, 0, 0), pos(2, 0, 0)],
                    vec![out(&c, ETH, 5), out(&c, TOKEN, 7)],
                    B256::repeat_byte(0xab),
                ),
                &[&a, &b],
            ),
        ),
        (
            "payment 5 in 5 out",
            sign(
                domain,
                Transaction::payment(
                    &[
                        pos(1000, 0, 0),
                        pos(1000, 0, 1),
                        pos(1000, 1, 0),
                        pos(2000, 7, 4),
                        pos(3001, 0, 0),
                    ],
                    vec![
                        out(&a, ETH, 1),
                        out(&b, ETH, 2),
                        out(&c, ETH, 3),
                        out(&a, TOKEN, 4),
                        out(&b, TOKEN, 5),
                    ],
                    B256::ZERO,
                ),
                &[&a, &a, &b, &b, &c],
            ),
        ),
        (
            "fee",
            SignedTransaction::new(
                Transaction::fee(vec![out(&c, ETH, 3), out(&c, TOKEN, 1)]),
                vec![],
            ),
        ),
    ]
}

/// spec: ENC, SIG, OUT
fn transactions() -> Value {
    let domain = vector_domain();
    let cases: Vec<Value> = sample_txs(&domain)
        .into_iter()
        .map(|(name, signed)| {
            let tx = &signed.transaction;
            let hash = tx.hash();
            let signers: Vec<Address> = signed.recover_signers(&domain).unwrap_or_default();
            // Output ids at the position the tx would have as tx 3 of block 5000 (or as a
            // deposit at block 5001).
            let blk = if tx.inputs.is_empty() && tx.txType == 2 { 5001 } else { 5000 };
            let tx_index = if blk == 5001 { 0 } else { 3 };
            let output_ids: Vec<Value> = (0..tx.outputs.len() as u8)
                .map(|i| {
                    let p = pos(blk, tx_index, i);
                    json!({ "utxoPos": dec(p.to_u128()), "outputId": tx.output_id(i, p) })
                })
                .collect();
            json!({
                "name": name,
                "tx": tx_json(tx),
                "txBytes": hex0x(tx.encode()),
                "txHash": hash,
                "leaf": leaf_hash(&tx.encode()),
                "structHash": tx.eip712_hash_struct(),
                "digest": domain.tx_digest(tx),
                "signatures": signed.signatures,
                "signers": signers,
                "signedTxBytes": hex0x(signed.encode()),
                "outputIds": output_ids,
            })
        })
        .collect();
    json!({
        "domain": {
            "name": crate::EIP712_NAME,
            "version": crate::EIP712_VERSION,
            "chainId": VECTOR_CHAIN_ID,
            "verifyingContract": VECTOR_CONTRACT,
            "separator": domain.separator(),
        },
        "typeHashes": {
            "Transaction": Transaction::eip712_type_hash(&Transaction::deposit(Address::ZERO, ETH, U256::ZERO)),
            "Output": keccak256(Output::eip712_encode_type().as_bytes()),
            "ExitAuthorization": keccak256(ExitAuthorization::eip712_encode_type().as_bytes()),
        },
        "maxTxBytes": MAX_TX_BYTES,
        "cases": cases,
    })
}

/// spec: ENC-2, ENC-3, TX — bytes that must be refused, and why.
fn decoding() -> Value {
    let domain = vector_domain();
    let a = test_key(1);
    let base = Transaction::payment(&[pos(1000, 0, 0)], vec![out(&a, ETH, 1)], B256::ZERO);
    let good = base.encode();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("empty", vec![]));
    cases.push(("truncated", good[..good.len() - 1].to_vec()));
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0u8; 32]);
    cases.push(("trailing word", trailing));
    let mut dirty_type = good.clone();
    dirty_type[32] = 0xff; // high byte of the uint8 word
    cases.push(("dirty uint8 padding", dirty_type));
    let mut dirty_address = good.clone();
    // First output's owner word: 32 (offset) + 128 (head) + 64 (inputs) + 32 (outputs length).
    dirty_address[32 + 128 + 64 + 32] = 0x01;
    cases.push(("dirty address padding", dirty_address));
    let mut odd_offset = good;
    odd_offset[31] = 0x21; // tuple offset 0x21
    cases.push(("misaligned offset", odd_offset));
    let six_inputs: Vec<UtxoPos> = (0..6).map(|i| pos(1000, i, 0)).collect();
    let mut too_many = Transaction::payment(&six_inputs, vec![], B256::ZERO);
    too_many.outputs = (0..5).map(|_| out(&a, ETH, 1)).collect();
    cases.push(("six inputs five outputs (too large)", too_many.encode()));
    let rejected: Vec<Value> = cases
        .into_iter()
        .map(|(name, bytes)| {
            let error = match Transaction::decode(&bytes) {
                Ok(_) => "accepted".to_string(),
                Err(e) => e.code().to_string(),
            };
            json!({ "name": name, "bytes": hex0x(&bytes), "error": error })
        })
        .collect();

    // Decodes, but breaks a stateless rule.
    let mut invalid: Vec<(&str, Transaction)> = Vec::new();
    let mut t = base.clone();
    t.txType = 7;
    invalid.push(("unknown type", t));
    invalid.push((
        "payment without inputs",
        Transaction::payment(&[], vec![out(&a, ETH, 1)], B256::ZERO),
    ));
    invalid.push((
        "payment without outputs",
        Transaction::payment(&[pos(1000, 0, 0)], vec![], B256::ZERO),
    ));
    let six_outputs: Vec<Output> = (0..6).map(|_| out(&a, ETH, 1)).collect();
    invalid
        .push(("six outputs", Transaction::payment(&[pos(1000, 0, 0)], six_outputs, B256::ZERO)));
    invalid.push((
        "duplicate input",
        Transaction::payment(
            &[pos(1000, 0, 0), pos(1000, 0, 0)],
            vec![out(&a, ETH, 1)],
            B256::ZERO,
        ),
    ));
    let mut t = base.clone();
    t.inputs[0] = U256::from(1_000_000_005u64);
    invalid.push(("input output index 5", t));
    let mut t = base.clone();
    t.outputs[0].amount = U256::ZERO;
    invalid.push(("zero amount", t));
    let mut t = base.clone();
    t.outputs[0].owner = Address::ZERO;
    invalid.push(("zero owner", t));
    let mut t = base.clone();
    t.outputs = vec![Output::new(a.address(), ETH, U256::MAX), out(&a, ETH, 1)];
    invalid.push(("output sum overflow", t));
    let mut t = Transaction::deposit(a.address(), ETH, U256::from(1));
    t.inputs = vec![pos(1000, 0, 0).to_u256()];
    invalid.push(("deposit with input", t));
    invalid.push(("fee without outputs", Transaction::fee(vec![])));
    let invalid: Vec<Value> = invalid
        .into_iter()
        .map(|(name, tx)| {
            let error = tx.check().err().map_or("accepted", |e| e.code());
            json!({ "name": name, "txBytes": hex0x(tx.encode()), "error": error })
        })
        .collect();

    // Signed-transaction wire form: the same strictness.
    let signed = sign(&domain, base, &[&a]).encode();
    let mut trailing = signed;
    trailing.push(0);
    let signed_rejected = vec![json!({
        "name": "signed tx with trailing byte",
        "bytes": hex0x(&trailing),
        "error": SignedTransaction::decode(&trailing).err().map_or("accepted", |e| e.code()),
    })];
    json!({ "rejected": rejected, "invalid": invalid, "signedRejected": signed_rejected })
}

/// spec: SIG-3 — signatures that must be refused, and good ones.
fn signatures() -> Value {
    let domain = vector_domain();
    let a = test_key(1);
    let tx = Transaction::payment(&[pos(1000, 0, 0)], vec![out(&a, ETH, 1)], B256::ZERO);
    let digest = domain.tx_digest(&tx);
    let good = a.sign_digest(digest);
    let n = U256::from_be_slice(&hex!(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
    ));
    let mut high_s = good.to_vec();
    let s = U256::from_be_slice(&good[32..64]);
    high_s[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high_s[64] = if good[64] == 27 { 28 } else { 27 };
    let mut v0 = good.to_vec();
    v0[64] -= 27;
    let mut zero_r = good.to_vec();
    zero_r[..32].fill(0);
    let mut r_n = good.to_vec();
    r_n[..32].copy_from_slice(&n.to_be_bytes::<32>());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("valid", good.to_vec()),
        ("high s twin", high_s),
        ("v as 0/1", v0),
        ("zero r", zero_r),
        ("r equal to n", r_n),
        ("64 bytes", good[..64].to_vec()),
    ];
    let cases: Vec<Value> = cases
        .into_iter()
        .map(|(name, sig)| {
            let (signer, error) = match recover_signer(digest, &sig, 0) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e.code())),
            };
            json!({ "name": name, "digest": digest, "signature": hex0x(&sig), "signer": signer, "error": error })
        })
        .collect();
    let auth = ExitAuthorization {
        exitor: test_key(9).address(),
        deadline: U256::from(1_900_000_000u64),
        nonce: U256::from(0),
    };
    let auth_digest = domain.exit_authorization_digest(&auth);
    json!({
        "cases": cases,
        "exitAuthorization": {
            "exitor": auth.exitor,
            "deadline": dec(auth.deadline),
            "nonce": dec(auth.nonce),
            "owner": a.address(),
            "digest": auth_digest,
            "signature": a.sign_digest(auth_digest),
        },
    })
}

/// spec: MERKLE
fn merkle() -> Value {
    let domain = vector_domain();
    let txs: Vec<Vec<u8>> =
        sample_txs(&domain).into_iter().map(|(_, s)| s.transaction.encode()).collect();
    let trees: Vec<Value> = [0usize, 1, 2, 3, 5]
        .into_iter()
        .map(|n| {
            let block: Vec<Vec<u8>> = txs.iter().cycle().take(n).cloned().collect();
            let tree = BlockTree::from_txs(&block).unwrap_or_else(|e| unreachable!("{e}"));
            let proofs: Vec<Value> = (0..n)
                .map(|i| {
                    let proof = tree.proof(i).unwrap_or_else(|e| unreachable!("{e}"));
                    json!({ "index": i, "leaf": leaf_hash(&block[i]), "proof": hex0x(proof.to_bytes()) })
                })
                .collect();
            json!({
                "txs": block.iter().map(hex0x).collect::<Vec<_>>(),
                "root": tree.root(),
                "proofs": proofs,
            })
        })
        .collect();
    // Proofs that must fail against the 3-tx tree.
    let block: Vec<Vec<u8>> = txs.iter().take(3).cloned().collect();
    let tree = BlockTree::from_txs(&block).unwrap_or_else(|e| unreachable!("{e}"));
    let good = tree.proof(1).unwrap_or_else(|e| unreachable!("{e}")).to_bytes();
    let mut flipped = good.clone();
    flipped[100] ^= 1;
    let bad = vec![
        json!({ "name": "wrong index", "leaf": leaf_hash(&block[1]), "index": 2, "proof": hex0x(&good) }),
        json!({ "name": "tampered sibling", "leaf": leaf_hash(&block[1]), "index": 1, "proof": hex0x(&flipped) }),
        json!({ "name": "other leaf", "leaf": leaf_hash(&block[0]), "index": 1, "proof": hex0x(&good) }),
        json!({ "name": "short proof", "leaf": leaf_hash(&block[1]), "index": 1, "proof": hex0x(&good[..480]) }),
    ];
    json!({
        "zeroHashes": zero_hashes().to_vec(),
        "trees": trees,
        "badProofs": { "root": tree.root(), "cases": bad },
    })
}

/// spec: LEDGER — blocks applied to a known UTXO set, accepted or refused with a named error.
fn ledger() -> Value {
    let domain = vector_domain();
    let (a, b, c) = (test_key(1), test_key(2), test_key(3));
    // Starting state: two deposits of A (ETH, token) and one child-block output of B.
    let utxos = vec![
        (pos(1, 0, 0), out(&a, ETH, 100)),
        (pos(2, 0, 0), out(&a, TOKEN, 50)),
        (pos(1000, 0, 0), out(&b, ETH, 30)),
    ];
    let mut state = UtxoSet::new();
    // Seed the set through its own diff machinery (a deposit block per deposit, a block for B).
    state.apply(&crate::ledger::BlockDiff { created: utxos.clone(), ..Default::default() });

    let p = |inputs: &[UtxoPos], outputs: Vec<Output>, keys: &[&Signer]| {
        sign(&domain, Transaction::payment(inputs, outputs, B256::ZERO), keys)
    };
    let blk = 2000;
    let cases: Vec<(&str, Vec<SignedTransaction>)> = vec![
        (
            "transfer with change and fee",
            vec![p(&[pos(1, 0, 0)], vec![out(&b, ETH, 60), out(&a, ETH, 39)], &[&a])],
        ),
        (
            "spend an output created earlier in the block",
            vec![
                p(&[pos(1, 0, 0)], vec![out(&b, ETH, 100)], &[&a]),
                p(&[pos(blk, 0, 0)], vec![out(&c, ETH, 100)], &[&b]),
            ],
        ),
        (
            "multi-token with fee tx",
            vec![
                p(
                    &[pos(1, 0, 0), pos(2, 0, 0)],
                    vec![out(&c, ETH, 90), out(&c, TOKEN, 49)],
                    &[&a, &a],
                ),
                SignedTransaction::new(
                    Transaction::fee(vec![out(&c, ETH, 10), out(&c, TOKEN, 1)]),
                    vec![],
                ),
            ],
        ),
        ("input not found", vec![p(&[pos(3000, 0, 0)], vec![out(&b, ETH, 1)], &[&a])]),
        (
            "double spend in one block",
            vec![
                p(&[pos(1, 0, 0)], vec![out(&b, ETH, 100)], &[&a]),
                p(&[pos(1, 0, 0)], vec![out(&c, ETH, 100)], &[&a]),
            ],
        ),
        ("wrong signer", vec![p(&[pos(1, 0, 0)], vec![out(&b, ETH, 100)], &[&b])]),
        ("value created", vec![p(&[pos(1, 0, 0)], vec![out(&b, ETH, 101)], &[&a])]),
        ("token created from eth", vec![p(&[pos(1, 0, 0)], vec![out(&b, TOKEN, 1)], &[&a])]),
        (
            "missing signature",
            vec![SignedTransaction::new(
                p(&[pos(1, 0, 0)], vec![out(&b, ETH, 1)], &[&a]).transaction,
                vec![],
            )],
        ),
        (
            "fee exceeds collected",
            vec![
                p(&[pos(1, 0, 0)], vec![out(&b, ETH, 99)], &[&a]),
                SignedTransaction::new(Transaction::fee(vec![out(&c, ETH, 2)]), vec![]),
            ],
        ),
        (
            "fee tx not last",
            vec![
                p(&[pos(1, 0, 0)], vec![out(&b, ETH, 99)], &[&a]),
                SignedTransaction::new(Transaction::fee(vec![out(&c, ETH, 1)]), vec![]),
                p(&[pos(1000, 0, 0)], vec![out(&c, ETH, 30)], &[&b]),
            ],
        ),
        (
            "deposit tx in child block",
            vec![SignedTransaction::new(
                Transaction::deposit(a.address(), ETH, U256::from(1)),
                vec![],
            )],
        ),
    ];
    let cases: Vec<Value> = cases
        .into_iter()
        .map(|(name, txs)| {
            let expect = match validate_child_block(&state, blk, &txs, &domain) {
                Ok(diff) => json!({
                    "ok": true,
                    "spent": diff.spent.iter().map(|p| dec(p.to_u128())).collect::<Vec<_>>(),
                    "created": diff.created.iter().map(|(p, o)| {
                        let mut v = output_json(o);
                        v["utxoPos"] = json!(dec(p.to_u128()));
                        v
                    }).collect::<Vec<_>>(),
                    "fees": diff.fees.iter().map(|(t, a)| json!({ "token": t, "amount": dec(a) })).collect::<Vec<_>>(),
                    "root": BlockTree::from_txs(&txs.iter().map(|t| t.transaction.encode()).collect::<Vec<_>>())
                        .map(|t| t.root()).unwrap_or_default(),
                }),
                Err(e) => json!({ "ok": false, "txIndex": e.tx_index, "error": e.error.code() }),
            };
            json!({
                "name": name,
                "blknum": blk,
                "txs": txs.iter().map(|t| hex0x(t.encode())).collect::<Vec<_>>(),
                "expect": expect,
            })
        })
        .collect();
    json!({
        "utxos": utxos.iter().map(|(p, o)| {
            let mut v = output_json(o);
            v["utxoPos"] = json!(dec(p.to_u128()));
            v
        }).collect::<Vec<_>>(),
        "cases": cases,
    })
}

/// spec: EXIT-2, EXIT-3, EXIT-7, OUT-1
fn exit_game() -> Value {
    let period = 604_800u64;
    let now = 1_800_000_000u64;
    let exitable: Vec<Value> = [
        ("deposit output", pos(1001, 0, 0), now - 10),
        ("fresh child block output", pos(2000, 0, 1), now - 10),
        ("old child block output", pos(2000, 0, 1), now - 3 * period),
    ]
    .into_iter()
    .map(|(name, p, ts)| {
        json!({
            "name": name, "utxoPos": dec(p.to_u128()), "now": now, "blockTimestamp": ts,
            "period": period, "exitableAt": standard_exit_exitable_at(p, now, ts, period),
        })
    })
    .collect();
    let ife = json!({
        "now": now, "youngestInputBlockTimestamp": now - 10, "period": period,
        "exitableAt": in_flight_exit_exitable_at(now, now - 10, period),
    });
    let priorities: Vec<Value> =
        [(now + period, pos(2000, 3, 1), 0u64), (now, pos(u64::MAX, 65_535, 4), u64::MAX)]
            .into_iter()
            .map(|(at, p, nonce)| {
                json!({
                    "exitableAt": at, "utxoPos": dec(p.to_u128()), "nonce": dec(nonce),
                    "priority": dec(exit_priority(at, p, nonce)),
                })
            })
            .collect();
    let dep = Transaction::deposit(test_key(1).address(), ETH, U256::from(5));
    let output_ids = vec![json!({
        "name": "equal deposits in two blocks",
        "txHash": dep.hash(), "hasInputs": false,
        "ids": [
            { "utxoPos": dec(pos(1, 0, 0).to_u128()), "outputIndex": 0, "outputId": output_id(dep.hash(), false, 0, pos(1, 0, 0)) },
            { "utxoPos": dec(pos(2, 0, 0).to_u128()), "outputIndex": 0, "outputId": output_id(dep.hash(), false, 0, pos(2, 0, 0)) },
        ],
    })];
    json!({
        "standardExitableAt": exitable,
        "inFlightExitableAt": ife,
        "priorities": priorities,
        "outputIds": output_ids,
    })
}

/// spec: EXIT-12, EXIT-13 — claim records, leaves, claim trees and their proofs, batch exit
/// clocks. `BatchClaims.sol` must give the same bytes and hashes.
fn batch_exit() -> Value {
    use crate::batch_exit::{Claim, ClaimTree, batch_exitable_at, encode_record, max_claim_amount};
    let owners = [test_key(1).address(), test_key(2).address(), test_key(3).address()];
    let claim = |i: usize| Claim {
        owner: owners[i % owners.len()],
        pos: pos(1000 * (i as u64 / 2 + 1), (i * 37 % 65_536) as u16, (i % 5) as u8),
        amount: if i == 4 {
            max_claim_amount()
        } else {
            U256::from(1_000_000_007u64 * (i as u64 + 1))
        },
    };
    let records: Vec<Value> = (0..6)
        .map(|i| {
            let c = claim(i);
            let record = encode_record(c.pos, c.amount).unwrap_or_else(|e| unreachable!("{e}"));
            json!({
                "owner": c.owner,
                "utxoPos": dec(c.pos.to_u128()),
                "amount": dec(c.amount),
                "record": hex0x(record),
                "leaf": c.leaf().unwrap_or_else(|e| unreachable!("{e}")),
            })
        })
        .collect();
    let trees: Vec<Value> = [1usize, 2, 3, 5, 6, 8]
        .into_iter()
        .map(|n| {
            let claims: Vec<Claim> = (0..n).map(claim).collect();
            let tree = ClaimTree::from_claims(&claims).unwrap_or_else(|e| unreachable!("{e}"));
            let leaves: Vec<B256> =
                claims.iter().map(|c| c.leaf().unwrap_or_else(|e| unreachable!("{e}"))).collect();
            let proofs: Vec<Value> = (0..n)
                .map(|i| {
                    let proof = tree.proof(i).unwrap_or_else(|e| unreachable!("{e}"));
                    json!({ "index": i, "proof": proof })
                })
                .collect();
            json!({ "count": n, "leaves": leaves, "root": tree.root(), "proofs": proofs })
        })
        .collect();
    let clocks: Vec<Value> = [(1_000u64, 0u64, 100u64), (1_000, 950, 100), (1_000, 800, 100)]
        .into_iter()
        .map(|(now, youngest, period)| {
            json!({
                "now": now,
                "youngestBlockTimestamp": youngest,
                "period": period,
                "exitableAt": batch_exitable_at(now, youngest, period),
            })
        })
        .collect();
    json!({ "claims": records, "trees": trees, "exitableAt": clocks })
}

//! Gas of every exit-game step on a real anvil, per transaction (`gasUsed` of the receipt, intrinsic
//! cost and calldata included), beside the figures we measured for OMG's plasma-contracts on the
//! same anvil version. Prints a table; `docs/benchmarks.md` holds the latest run.
//!
//! Run: `cargo bench -p plasma-contracts --bench gas` (needs `npm ci` for anvil).

// A bench is a test harness: any failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, U256, aliases::U96, keccak256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{
    BatchExitGame, DeployConfig, IBatchExitGame, InFlightExitGame, PlasmaFramework,
    StandardExitGame, TestToken, deploy,
};
use plasma_spec::{
    BlockTree, ExitAuthorization, Output, Signer, SigningDomain, Transaction, UtxoPos,
    batch_exit::{Claim, ClaimTree, encode_claims},
};
use std::path::PathBuf;

const PERIOD: u64 = 60;
const BATCH: usize = 100;

struct Row {
    step: &'static str,
    ours: u64,
    omg: Option<u64>,
}

fn pos(blknum: u64, tx_index: u16, oindex: u8) -> UtxoPos {
    UtxoPos::new(blknum, tx_index, oindex).expect("valid position")
}

/// Sends a call and waits for its receipt (a benchmark has no use for failures but to stop).
trait Mined {
    async fn mined(self) -> TransactionReceipt;
}

impl<P: Provider, C: alloy::sol_types::SolCall> Mined for alloy::contract::SolCallBuilder<P, C> {
    async fn mined(self) -> TransactionReceipt {
        self.send().await.unwrap().get_receipt().await.unwrap()
    }
}

fn gas(receipt: &TransactionReceipt, step: &str) -> u64 {
    assert!(receipt.status(), "{step} reverted");
    receipt.gas_used
}

/// Moves anvil's clock `seconds` ahead (the next block's timestamp).
async fn increase_time<P: Provider>(provider: &P, seconds: u64) {
    provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), [seconds])
        .await
        .unwrap();
}

/// `BATCH` deposits of `owner`'s, then child block `blknum` of one payment spending each (to
/// `owner`, 999 wei), committed: its transactions, their tree and the block's timestamp.
async fn payments_block<P: Provider>(
    fw: &PlasmaFramework::PlasmaFrameworkInstance<P>,
    op: Address,
    owner: Address,
    blknum: u64,
) -> (Vec<Vec<u8>>, BlockTree, u64) {
    let mut txs = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        let t = Transaction::deposit(owner, Address::ZERO, U256::from(1000));
        let r = fw.depositEth(t.encode().into()).value(U256::from(1000)).from(owner).mined().await;
        let ev = r.decoded_log::<PlasmaFramework::DepositCreated>().unwrap();
        let input = UtxoPos::from_u256(ev.blknum * U256::from(1_000_000_000u64)).unwrap();
        let out = Output::new(owner, Address::ZERO, U256::from(999));
        txs.push(Transaction::payment(&[input], vec![out], B256::ZERO).encode());
    }
    let tree = BlockTree::from_txs(&txs).unwrap();
    let r = fw.submitBlock(U256::from(blknum), tree.root()).from(op).mined().await;
    let ts = r.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
    (txs, tree, ts)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let anvil = Anvil::at(bin).arg("--gas-limit").arg("30000000").spawn();
    let keys: Vec<PrivateKeySigner> =
        anvil.keys().iter().take(3).map(|k| k.clone().into()).collect();
    let (op, alice, bob) = (keys[0].address(), keys[1].address(), keys[2].address());
    let spec_key =
        |i: usize| Signer::from_bytes(&B256::from_slice(&anvil.keys()[i].to_bytes())).unwrap();
    let alice_key = spec_key(1);
    let mut wallet = EthereumWallet::new(keys[0].clone());
    wallet.register_signer(keys[1].clone());
    wallet.register_signer(keys[2].clone());
    let provider = ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url());

    let config = DeployConfig::devnet(op, PERIOD);
    let d = deploy(provider.clone(), &config).await.unwrap();
    let fw = PlasmaFramework::new(d.framework, provider.clone());
    let se = StandardExitGame::new(d.standard_exit_game, provider.clone());
    let domain = SigningDomain::new(anvil.chain_id(), d.framework);
    let bond = config.standard_exit_bond;
    let eth = U256::from(10).pow(U256::from(18));
    let mut rows = Vec::new();

    // Deposits.
    let deposit =
        |owner: Address, token: Address, amount: U256| Transaction::deposit(owner, token, amount);
    let dep_tx = deposit(alice, Address::ZERO, eth);
    let r = fw.depositEth(dep_tx.encode().into()).value(eth).from(alice).mined().await;
    rows.push(Row {
        step: "ETH deposit, first ever (ETH's slot written at deployment)",
        ours: gas(&r, "depositEth"),
        omg: Some(166_270),
    });
    let dep_ts = r.decoded_log::<PlasmaFramework::DepositCreated>().unwrap().timestamp;
    let alice_deposit = pos(1, 0, 0); // the first deposit block

    // An ERC-20 nobody registered: its first deposit pays for the vault slot and the framework's
    // balance slot in the token itself.
    let plain = TestToken::deploy(provider.clone()).await.unwrap();
    plain.mint(alice, eth).mined().await;
    plain.approve(d.framework, eth).from(alice).mined().await;
    let plain_tx = deposit(alice, *plain.address(), eth);
    let r = fw.depositErc20(plain_tx.encode().into()).from(alice).mined().await;
    rows.push(Row {
        step: "ERC-20 deposit (after approve), first of an unregistered token",
        ours: gas(&r, "depositErc20 unregistered"),
        omg: Some(192_212),
    });

    // The usual path: someone (here the operator) registers the token once, paying its one-time
    // slots (issue 19), then every deposit of it pays only warm-slot writes.
    let token = TestToken::deploy(provider.clone()).await.unwrap();
    token.mint(op, U256::from(1)).mined().await;
    token.approve(d.framework, U256::from(1)).from(op).mined().await;
    let r = fw.registerToken(*token.address()).from(op).mined().await;
    rows.push(Row {
        step: "registerToken (once per token, by anyone: pre-pays its first deposit)",
        ours: gas(&r, "registerToken"),
        omg: None,
    });
    token.mint(alice, eth * U256::from(2)).mined().await;
    token.approve(d.framework, eth * U256::from(2)).from(alice).mined().await;
    let erc_tx = deposit(alice, *token.address(), eth);
    let r = fw.depositErc20(erc_tx.encode().into()).from(alice).mined().await;
    rows.push(Row {
        step: "ERC-20 deposit (after approve), first of a registered token",
        ours: gas(&r, "depositErc20"),
        omg: Some(192_212),
    });
    let r = fw.depositErc20(erc_tx.encode().into()).from(alice).mined().await;
    rows.push(Row {
        step: "ERC-20 deposit, later ones",
        ours: gas(&r, "depositErc20 again"),
        omg: Some(192_212),
    });

    // A child block: alice pays bob from her ETH deposit.
    let pay = Transaction::payment(
        &[alice_deposit],
        vec![Output::new(bob, Address::ZERO, eth)],
        B256::ZERO,
    );
    let pay_bytes = pay.encode();
    let tree = BlockTree::from_txs(&[&pay_bytes]).unwrap();
    let r = fw.submitBlock(U256::from(1000u64), tree.root()).from(op).mined().await;
    rows.push(Row { step: "submitBlock", ours: gas(&r, "submitBlock"), omg: Some(79_178) });
    let blk_ts = r.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
    let bob_pos = pos(1000, 0, 0);

    let args = |utxo: UtxoPos, tx: &[u8], proof: Vec<u8>, ts: u64| StandardExitGame::StartArgs {
        utxoPos: utxo.to_u256(),
        txBytes: Bytes::copy_from_slice(tx),
        inclusionProof: proof.into(),
        blockTimestamp: ts,
    };
    let r = se
        .startStandardExit(args(bob_pos, &pay_bytes, tree.proof(0).unwrap().to_bytes(), blk_ts))
        .value(bond)
        .from(bob)
        .mined()
        .await;
    rows.push(Row {
        step: "startStandardExit (child-block output)",
        ours: gas(&r, "start"),
        omg: Some(412_583),
    });

    // alice exits her spent deposit; bob challenges with her signed payment.
    let dep_proof = BlockTree::from_txs(&[dep_tx.encode()]).unwrap().proof(0).unwrap().to_bytes();
    let r = se
        .startStandardExit(args(alice_deposit, &dep_tx.encode(), dep_proof, dep_ts))
        .value(bond)
        .from(alice)
        .mined()
        .await;
    rows.push(Row {
        step: "startStandardExit (deposit output)",
        ours: gas(&r, "start deposit"),
        omg: None,
    });
    let sig = alice_key.sign_tx(&domain, &pay);
    let r = se
        .challengeStandardExit(alice_deposit.to_u256(), pay_bytes.clone().into(), U256::ZERO, sig)
        .from(bob)
        .mined()
        .await;
    let challenge_gas = gas(&r, "challenge");
    rows.push(Row { step: "challengeStandardExit", ours: challenge_gas, omg: Some(260_595) });

    // A block of BATCH payments bob -> bob, then one batched exit of all their outputs.
    let (txs, tree, batch_ts) = payments_block(&fw, op, bob, 2000).await;
    let batch_args = |blknum: u64, txs: &[Vec<u8>], tree: &BlockTree, ts: u64| -> Vec<_> {
        (0..BATCH)
            .map(|i| {
                let proof = tree.proof(i).unwrap().to_bytes();
                args(pos(blknum, i as u16, 0), &txs[i], proof, ts)
            })
            .collect()
    };
    let batch = batch_args(2000, &txs, &tree, batch_ts);
    let r = se
        .startStandardExits(batch)
        .value(bond * U256::from(BATCH))
        .from(bob)
        .gas(29_000_000)
        .mined()
        .await;
    let batch_gas = gas(&r, "batched start");
    rows.push(Row {
        step: "startStandardExits, per exit (batch of 100)",
        ours: batch_gas / BATCH as u64,
        omg: None,
    });

    // Process: one, then the rest of the batch.
    increase_time(&provider, 3 * PERIOD).await;
    // The head is alice's challenged exit (a deposit: now + p), then bob's honest one.
    // These exits are of outputs a block old, due at their block's time plus two periods: they
    // wait in the queue's young run (EXIT-3), having been started in key order; outputs older than
    // a period (the old run) are measured further down.
    let young = "processExits, one exit of a young output (first ever)";
    for step in ["processExits, one challenged exit (skipped)", young] {
        let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
        let omg = (step == young).then_some(151_657);
        rows.push(Row { step, ours: gas(&r, step), omg });
    }
    // One exit alone once the one-time slots exist: what a keeper pays to settle a lone exit.
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
    let lone_gas = gas(&r, "process one more");
    rows.push(Row {
        step: "processExits, one exit of a young output (not the first)",
        ours: lone_gas,
        omg: Some(151_657),
    });
    let r =
        fw.processExits(Address::ZERO, U256::ZERO, U256::from(BATCH)).gas(29_000_000).mined().await;
    let settled = BATCH as u64 - 1;
    let per_exit_gas = gas(&r, "process many") / settled;
    rows.push(Row {
        step: "processExits, per extra exit of young outputs",
        ours: per_exit_gas,
        omg: Some(96_500),
    });

    // The same for outputs older than a period — the usual exit, and most of a mass exit: each is
    // due at `now + p`, joins the queue's old run (EXIT-3) and leaves it in two cold slots. (The
    // batch above is of outputs a block old, due at their block's time plus two periods.)
    let (old_txs, old_tree, old_ts) = payments_block(&fw, op, bob, 3000).await;
    increase_time(&provider, 2 * PERIOD).await;
    let old_batch = batch_args(3000, &old_txs, &old_tree, old_ts);
    se.startStandardExits(old_batch)
        .value(bond * U256::from(BATCH))
        .from(bob)
        .gas(29_000_000)
        .mined()
        .await;
    increase_time(&provider, 2 * PERIOD).await;
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
    let old_lone = gas(&r, "process one old");
    rows.push(Row {
        step: "processExits, one exit of an output older than a period (first of a call)",
        ours: old_lone,
        omg: Some(151_657),
    });
    let r =
        fw.processExits(Address::ZERO, U256::ZERO, U256::from(BATCH)).gas(29_000_000).mined().await;
    let per_old_exit = gas(&r, "process many old") / (BATCH as u64 - 1);
    rows.push(Row {
        step: "processExits, per extra exit of outputs older than a period",
        ours: per_old_exit,
        omg: Some(96_500),
    });
    assert!(fw.queueHead(Address::ZERO).call().await.unwrap().head.is_zero(), "queue drained");
    // EXIT-3's runs: young outputs' exits started in key order leave from the young run as
    // cheaply as old ones from the old run (a heap pop over this queue would cost ~50k more).
    assert!(
        old_lone.abs_diff(lone_gas) < 2_000 && per_old_exit.abs_diff(per_exit_gas) < 2_000,
        "young and old outputs' exits no longer both leave from a run of the queue"
    );

    // In-flight exits: alice's fresh deposits, spent by payments that never get included.
    let ife = InFlightExitGame::new(d.in_flight_exit_game, provider.clone());
    let ife_bond = config.in_flight_exit_bond;
    let pb_bond = config.piggyback_bond;
    let mut deps = Vec::new();
    for k in 0..3 {
        let t = deposit(alice, Address::ZERO, eth);
        let r = fw.depositEth(t.encode().into()).value(eth).from(alice).mined().await;
        if k == 0 {
            rows.push(Row {
                step: "ETH deposit, later ones",
                ours: gas(&r, "deposit"),
                omg: Some(166_270),
            });
        }
        let ev = r.decoded_log::<PlasmaFramework::DepositCreated>().unwrap();
        let p = UtxoPos::from_u256(ev.blknum * U256::from(1_000_000_000u64)).unwrap();
        deps.push((p, t.encode(), ev.timestamp));
    }
    let dep_proof =
        |tx: &[u8]| Bytes::from(BlockTree::from_txs(&[tx]).unwrap().proof(0).unwrap().to_bytes());
    let start_args =
        |tx: &Transaction, inputs: &[(UtxoPos, Vec<u8>, u64)]| InFlightExitGame::StartArgs {
            inFlightTx: tx.encode().into(),
            inputTxs: inputs.iter().map(|i| Bytes::from(i.1.clone())).collect(),
            inputUtxoPos: inputs.iter().map(|i| i.0.to_u256()).collect(),
            inputProofs: inputs.iter().map(|i| dep_proof(&i.1)).collect(),
            inputBlockTimestamps: inputs.iter().map(|i| i.2).collect(),
            signatures: inputs.iter().map(|_| alice_key.sign_tx(&domain, tx)).collect(),
        };
    let ife1 =
        Transaction::payment(&[deps[0].0], vec![Output::new(bob, Address::ZERO, eth)], B256::ZERO);
    let r = ife
        .startInFlightExit(start_args(&ife1, &deps[..1]))
        .value(ife_bond)
        .from(alice)
        .mined()
        .await;
    rows.push(Row {
        step: "startInFlightExit, 1 in 1 out",
        ours: gas(&r, "ife 1-1"),
        omg: Some(667_838),
    });
    let half = eth / U256::from(2);
    let ife2 = Transaction::payment(
        &[deps[1].0, deps[2].0],
        vec![Output::new(bob, Address::ZERO, eth + half), Output::new(alice, Address::ZERO, half)],
        B256::ZERO,
    );
    let r = ife
        .startInFlightExit(start_args(&ife2, &deps[1..]))
        .value(ife_bond)
        .from(alice)
        .mined()
        .await;
    rows.push(Row {
        step: "startInFlightExit, 2 in 2 out",
        ours: gas(&r, "ife 2-2"),
        omg: Some(1_164_541),
    });
    let id1 = U256::from_be_bytes(ife1.hash().0);
    let id2 = U256::from_be_bytes(ife2.hash().0);
    let r = ife.piggybackOutput(id1, 0).value(pb_bond).from(bob).mined().await;
    rows.push(Row {
        step: "piggybackOutput (first of the exit)",
        ours: gas(&r, "pb out"),
        omg: Some(403_079),
    });
    let r = ife.piggybackInput(id2, 0).value(pb_bond).from(alice).mined().await;
    rows.push(Row {
        step: "piggybackInput (first of the exit)",
        ours: gas(&r, "pb in"),
        omg: Some(288_611),
    });
    let competitor =
        Transaction::payment(&[deps[1].0], vec![Output::new(op, Address::ZERO, eth)], B256::ZERO);
    let challenge = InFlightExitGame::CompetitorArgs {
        exitId: id2,
        inputIndex: 0,
        competingTx: competitor.encode().into(),
        competitorInputIndex: 0,
        competitorSignature: alice_key.sign_tx(&domain, &competitor),
        competitorTxPos: U256::ZERO,
        competitorProof: Bytes::new(),
        competitorBlockTimestamp: 0,
    };
    let r = ife.challengeInFlightExitNotCanonical(challenge).from(op).mined().await;
    rows.push(Row {
        step: "challengeInFlightExitNotCanonical",
        ours: gas(&r, "non-canonical"),
        omg: Some(412_524),
    });
    increase_time(&provider, 3 * PERIOD).await;
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
    rows.push(Row {
        step: "processExits, one in-flight exit (canonical, 1 output)",
        ours: gas(&r, "process ife"),
        omg: Some(538_475),
    });

    // spec: OP-4 — a run of blocks in one transaction (`submitBlocks`), what each block costs.
    for k in [2u64, 4, 8] {
        let first = fw.nextChildBlock().call().await.expect("nextChildBlock");
        let roots: Vec<B256> = (0..k).map(|i| keccak256((first + i).to_be_bytes())).collect();
        let r = fw.submitBlocks(U256::from(first), roots).from(op).mined().await;
        let total = gas(&r, "submitBlocks");
        assert_eq!(
            fw.nextChildBlock().call().await.expect("nextChildBlock"),
            first + k * 1000,
            "the run committed all its blocks"
        );
        rows.push(Row {
            step: match k {
                2 => "submitBlocks, 2 blocks a transaction, per block",
                4 => "submitBlocks, 4 blocks a transaction, per block",
                _ => "submitBlocks, 8 blocks a transaction, per block",
            },
            ours: total / k,
            omg: Some(79_178),
        });
    }

    println!("| Step | ours (gas) | OMG (gas) | ours / OMG |");
    println!("|---|---:|---:|---:|");
    for row in &rows {
        match row.omg {
            Some(omg) => println!(
                "| {} | {} | {} | {:.2} |",
                row.step,
                row.ours,
                omg,
                row.ours as f64 / omg as f64
            ),
            None => println!("| {} | {} | — | — |", row.step, row.ours),
        }
    }
    let per_exit = batch_gas as f64 / BATCH as f64;
    println!(
        "\nbatched standard exits per 30M-gas block: {:.0} (goal 1,000)",
        30_000_000.0 / per_exit
    );

    // spec: EXIT-5, BOND-1 — what a standard exit's bond pays, against the gas it pays for, at
    // the reference gas price bonds are sized with.
    let price = DeployConfig::REFERENCE_GAS_PRICE;
    let bounty = bond / U256::from(2); // BOUNTY_DIVISOR
    let reward = bond / U256::from(2); // CHALLENGE_REWARD_DIVISOR
    let cost = |g: u64| U256::from(g) * U256::from(price);
    let eth = |w: U256| format!("{:.6}", w.to::<u128>() as f64 / 1e18);
    println!(
        "\nstandard exit bond {} ETH, at the reference gas price of {} gwei:",
        eth(bond),
        price / 1_000_000_000
    );
    println!(
        "| Paid from the bond | ETH | pays for | gas | cost at reference price (ETH) | covered |"
    );
    println!("|---|---:|---|---:|---:|---:|");
    let checks = [
        ("processing bounty (bond / 2)", bounty, "processExits, per exit in a batch", per_exit_gas),
        ("processing bounty (bond / 2)", bounty, "processExits, one exit alone", lone_gas),
        (
            "processing bounty (bond / 2)",
            bounty,
            "processExits, per exit in a batch (outputs older than a period)",
            per_old_exit,
        ),
        (
            "processing bounty (bond / 2)",
            bounty,
            "processExits, one exit alone (an output older than a period)",
            old_lone,
        ),
        ("challenge reward (bond / 2)", reward, "challengeStandardExit", challenge_gas),
    ];
    for (what, paid, pays_for, g) in checks {
        let ratio = paid.to::<u128>() as f64 / cost(g).to::<u128>() as f64;
        println!("| {what} | {} | {pays_for} | {g} | {} | {ratio:.2}x |", eth(paid), eth(cost(g)));
    }
    // A call settling k exits costs about overhead + k * per_exit_gas; the bounties pay for it
    // from this k on (spec: EXIT-5 states it).
    let overhead = lone_gas.saturating_sub(per_exit_gas);
    let budget = (bounty / U256::from(price)).to::<u64>(); // gas one bounty buys
    let break_even = overhead.div_ceil(budget.saturating_sub(per_exit_gas).max(1));
    println!(
        "a processExits call of k exits costs ~{overhead} + {per_exit_gas}·k gas; the bounties pay \
         for it at the reference price from k = {break_even}"
    );
    assert!(bounty >= cost(per_exit_gas), "the bounty no longer covers an exit's processing");
    assert!(reward >= cost(challenge_gas), "the challenge reward no longer covers a challenge");
    assert!(break_even <= 3, "processing pays only from {break_even} exits per call");
    println!(
        "burned when an exit is challenged (what a self-challenging cheat loses): {} ETH",
        eth(bond - reward)
    );

    batch_exits(&anvil, batch_gas / BATCH as u64, per_exit_gas).await;
}

// ------------------------------------------------------------------------------------------------
// Batch exits (#16): EXIT-12 … EXIT-15, CHAL-6 … CHAL-9, BOND-3, on real outputs of committed blocks.

/// OMG's `startStandardExit` and its `processExits` per extra exit, measured on the same anvil
/// (the rows above): ≈72 exits started and ≈310 processed per 30M-gas block.
const OMG_START_GAS: u64 = 412_583;
const OMG_PROCESS_GAS: u64 = 96_500;
/// A 30M-gas L1 block.
const BLOCK_GAS: u64 = 30_000_000;
/// The batch section's challenge period: long enough that its demands fall in the first half.
const BATCH_PERIOD: u64 = 3600;
/// Owners per start transaction in the 1,000-owner case (the authorizations do not fit one block).
const OWNERS_PER_TX: usize = 500;

/// The amount of output `j` of transaction `t` of a block: realistic (0.001 ETH and some wei, seven
/// significant bytes of calldata), distinct.
fn amount(t: usize, j: usize) -> U256 {
    U256::from(1_000_000_000_000_000u64 + (t as u64 * 5 + j as u64) * 7919)
}

/// Five outputs to `owner` per transaction, `n` transactions, metadata `salt + t` (all distinct).
fn payments(
    n: usize,
    salt: u64,
    input: UtxoPos,
    owner_of: impl Fn(usize) -> Address,
) -> Vec<Vec<u8>> {
    (0..n)
        .map(|t| {
            let outs =
                (0..5).map(|j| Output::new(owner_of(t), Address::ZERO, amount(t, j))).collect();
            Transaction::payment(&[input], outs, B256::from(U256::from(salt + t as u64))).encode()
        })
        .collect()
}

/// A committed child block with its transactions, tree and commitment time.
struct Committed {
    blknum: u64,
    txs: Vec<Vec<u8>>,
    tree: BlockTree,
    root: B256,
    ts: u64,
}

/// The claims of outputs `0..5` of transactions `range` of `blk` (all owned by `owner`).
fn claims_of(blk: &Committed, range: std::ops::Range<usize>, owner: Address) -> Vec<Claim> {
    range
        .flat_map(|t| {
            (0..5).map(move |j| Claim {
                owner,
                pos: pos(blk.blknum, t as u16, j as u8),
                amount: amount(t, j),
            })
        })
        .collect()
}

fn records(claims: &[Claim]) -> Bytes {
    let r: Vec<(UtxoPos, U256)> = claims.iter().map(|c| (c.pos, c.amount)).collect();
    encode_claims(&r).unwrap().into()
}

fn claim_ref(
    batch_id: U256,
    claims: &[Claim],
    tree: &ClaimTree,
    i: usize,
) -> IBatchExitGame::ClaimRef {
    let c = &claims[i];
    IBatchExitGame::ClaimRef {
        batchId: batch_id,
        index: U256::from(i),
        owner: c.owner,
        utxoPos: u64::try_from(c.pos.to_u128()).unwrap(),
        amount: U96::from(u128::try_from(c.amount).unwrap()),
        proof: tree.proof(i).unwrap(),
    }
}

fn per30m(gas_per_output: f64) -> f64 {
    BLOCK_GAS as f64 / gas_per_output
}

/// The batch-exit section of the bench, on a fresh deployment on the same anvil (its own queue and
/// vault). `std_start` and `std_process` are today's batched standard exit per output, as measured
/// above.
#[allow(clippy::too_many_lines)]
async fn batch_exits(anvil: &AnvilInstance, std_start: u64, std_process: u64) {
    let keys: Vec<PrivateKeySigner> =
        anvil.keys().iter().take(5).map(|k| k.clone().into()).collect();
    let (op, alice, watcher, carol) =
        (keys[0].address(), keys[1].address(), keys[3].address(), keys[4].address());
    let spec_key =
        |i: usize| Signer::from_bytes(&B256::from_slice(&anvil.keys()[i].to_bytes())).unwrap();
    let carol_key = spec_key(4);
    let mut wallet = EthereumWallet::new(keys[0].clone());
    for k in &keys[1..] {
        wallet.register_signer(k.clone());
    }
    let provider = ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url());
    let config = DeployConfig::devnet(op, BATCH_PERIOD);
    let d = deploy(provider.clone(), &config).await.unwrap();
    let fw = PlasmaFramework::new(d.framework, provider.clone());
    let game = BatchExitGame::new(d.batch_exit_game, provider.clone());
    let domain = SigningDomain::new(anvil.chain_id(), d.framework);
    let (batch_bond, claim_bond, demand_bond) =
        (config.batch_exit_bond, config.claim_bond, config.demand_bond);
    let eth = U256::from(10).pow(U256::from(18));

    // The vault: 100 ETH deposited (every claim below sums to ~25 ETH), spent by the blocks' payments.
    let dep = Transaction::deposit(alice, Address::ZERO, eth * U256::from(100));
    fw.depositEth(dep.encode().into()).value(eth * U256::from(100)).from(alice).mined().await;
    let input = pos(1, 0, 0);

    // 1,100 owners with keys, for the authorizations (EXIT-9).
    let owner_keys: Vec<Signer> = (0..1100u64)
        .map(|i| Signer::from_bytes(&keccak256(format!("batch bench owner {i}"))).unwrap())
        .collect();
    let owners100: Vec<Address> = owner_keys[..100].iter().map(Signer::address).collect();
    let owners1000: Vec<Address> = owner_keys[100..].iter().map(Signer::address).collect();

    // Block 1000: 4,000 payments of five outputs each (20,000 outputs): txs 0..2,000 to alice
    // (10,000 outputs), 2,000..3,000 to 100 owners (10 txs, 50 outputs each), 3,000..4,000 to 1,000
    // owners (5 outputs each). Block 2000: 1,000 payments to carol (5,000 outputs, for challenges).
    let commit = |blknum: u64, txs: Vec<Vec<u8>>| {
        let fw = fw.clone();
        async move {
            let tree = BlockTree::from_txs(&txs).unwrap();
            let root = tree.root();
            let r = fw.submitBlock(U256::from(blknum), root).from(op).mined().await;
            let ts = r.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
            Committed { blknum, txs, tree, root, ts }
        }
    };
    let a = commit(
        1000,
        payments(4000, 0, input, |t| {
            if t < 2000 {
                alice
            } else if t < 3000 {
                owners100[(t - 2000) / 10]
            } else {
                owners1000[t - 3000]
            }
        }),
    )
    .await;
    let b = commit(2000, payments(1000, 10_000, input, |_| carol)).await;

    let start = |exitor: Address, blk: &Committed, groups: Vec<BatchExitGame::Group>, n: usize| {
        let call = game
            .startBatchExit(Address::ZERO, blk.root, blk.ts, groups)
            .value(batch_bond + claim_bond * U256::from(n))
            .from(exitor)
            .gas(29_000_000);
        async move {
            let r = call.mined().await;
            let id = r.decoded_log::<BatchExitGame::BatchExitStarted>().unwrap().batchId;
            (gas(&r, "startBatchExit"), id)
        }
    };
    let own = |owner: Address, claims: &[Claim]| BatchExitGame::Group {
        owner,
        deadline: U256::ZERO,
        nonce: U256::ZERO,
        signature: Bytes::new(),
        claims: records(claims),
    };
    let deadline = U256::from(u64::MAX);
    let authorized = |key: &Signer, claims: &[Claim]| {
        let auth = ExitAuthorization { exitor: watcher, deadline, nonce: U256::ZERO };
        BatchExitGame::Group {
            owner: key.address(),
            deadline,
            nonce: U256::ZERO,
            signature: key.sign_digest(domain.exit_authorization_digest(&auth)),
            claims: records(claims),
        }
    };

    // (i) One owner, 10,000 claims in two transactions of 5,000, no authorization.
    let alice_claims = claims_of(&a, 0..2000, alice);
    let (g1, batch1) = start(alice, &a, vec![own(alice, &alice_claims[..5000])], 5000).await;
    let (g2, _) = start(alice, &a, vec![own(alice, &alice_claims[5000..])], 5000).await;
    let start_i = (g1 + g2) as f64 / 10_000.0;

    // (ii) 100 owners × 50 claims under authorizations, the watcher the sender (one transaction).
    let groups: Vec<_> = (0..100)
        .map(|o| {
            authorized(&owner_keys[o], &claims_of(&a, 2000 + 10 * o..2010 + 10 * o, owners100[o]))
        })
        .collect();
    let (g_ii, _) = start(watcher, &a, groups, 5000).await;
    let start_ii = g_ii as f64 / 5000.0;

    // (iii) 1,000 owners × 5 claims under authorizations, in transactions of 500 owners.
    let mut g_iii = 0;
    for chunk in 0..1000 / OWNERS_PER_TX {
        let groups: Vec<_> = (chunk * OWNERS_PER_TX..(chunk + 1) * OWNERS_PER_TX)
            .map(|o| {
                authorized(&owner_keys[100 + o], &claims_of(&a, 3000 + o..3001 + o, owners1000[o]))
            })
            .collect();
        g_iii += start(watcher, &a, groups, 5 * OWNERS_PER_TX).await.0;
    }
    let start_iii = g_iii as f64 / 5000.0;

    // Challenges of a 5,000-claim batch of carol's (block 2000): CHAL-6 of a claim with a wrong
    // amount (the full check: its 5-output payment proven and decoded), CHAL-7 of a claim whose output
    // carol signed away, a demand and its answer (CHAL-9).
    let mut carol_claims = claims_of(&b, 0..1000, carol);
    carol_claims[4999].amount += U256::from(1); // tx 999 output 4: not the output's amount
    let (_, cb) = start(carol, &b, vec![own(carol, &carol_claims)], 5000).await;
    let ctree = ClaimTree::from_claims(&carol_claims).unwrap();
    let proof_of =
        |blk: &Committed, t: usize| -> Bytes { blk.tree.proof(t).unwrap().to_bytes().into() };
    let r = game
        .demandClaimProof(claim_ref(cb, &carol_claims, &ctree, 20))
        .value(demand_bond)
        .from(watcher)
        .mined()
        .await;
    let demand_gas = gas(&r, "demandClaimProof");
    let r = game
        .answerClaimDemand(
            claim_ref(cb, &carol_claims, &ctree, 20),
            b.txs[4].clone().into(),
            proof_of(&b, 4),
            b.ts,
        )
        .from(op)
        .mined()
        .await;
    let answer_gas = gas(&r, "answerClaimDemand");
    let r = game
        .challengeBatchClaimInvalid(
            claim_ref(cb, &carol_claims, &ctree, 4999),
            b.txs[999].clone().into(),
            proof_of(&b, 999),
            b.ts,
        )
        .from(watcher)
        .mined()
        .await;
    let chal6_gas = gas(&r, "challengeBatchClaimInvalid");
    let spend = Transaction::payment(
        &[carol_claims[10].pos],
        vec![Output::new(op, Address::ZERO, carol_claims[10].amount)],
        B256::ZERO,
    );
    let r = game
        .challengeBatchClaimSpent(
            claim_ref(cb, &carol_claims, &ctree, 10),
            spend.encode().into(),
            U256::ZERO,
            carol_key.sign_tx(&domain, &spend),
        )
        .from(watcher)
        .mined()
        .await;
    let chal7_gas = gas(&r, "challengeBatchClaimSpent");

    // Processing (EXIT-14): the first batch alone (a keeper settling one batch: the call's overhead
    // and the first writes of the queue's slots included), then the other five in one call (each
    // one's share), in queue order: (i) twice, (ii), (iii) twice, carol's.
    increase_time(&provider, 3 * BATCH_PERIOD).await;
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).from(op).mined().await;
    let process_alone = gas(&r, "processExits, one batch");
    let r = fw
        .processExits(Address::ZERO, U256::ZERO, U256::from(10))
        .from(op)
        .gas(29_000_000)
        .mined()
        .await;
    let n_rest = r.decoded_log::<PlasmaFramework::ExitsProcessed>().unwrap().count.to::<u64>();
    assert_eq!(n_rest, 2 + 1000 / OWNERS_PER_TX as u64 + 1, "every other batch processed");
    let process_share = gas(&r, "processExits, the other batches") / n_rest;
    assert!(fw.queueHead(Address::ZERO).call().await.unwrap().head.is_zero(), "queue drained");

    // Payouts (EXIT-15) of claims of the first 5,000-claim batch: 100 in one call, then 256.
    let tree1 = ClaimTree::from_claims(&alice_claims[..5000]).unwrap();
    let payout = |range: std::ops::Range<usize>| {
        let entries: Vec<_> = range
            .map(|i| {
                let c = &alice_claims[i];
                let t = c.pos.tx_index() as usize;
                BatchExitGame::Payout {
                    claim: claim_ref(batch1, &alice_claims[..5000], &tree1, i),
                    txBytes: a.txs[t].clone().into(),
                    inclusionProof: proof_of(&a, t),
                    blockTimestamp: a.ts,
                }
            })
            .collect::<Vec<_>>();
        game.payoutBatchClaims(entries).from(op).gas(29_000_000)
    };
    let credited_before = fw.withdrawable(alice, Address::ZERO).call().await.unwrap();
    let r = payout(0..100).mined().await;
    let payout_100 = gas(&r, "payoutBatchClaims, 100") as f64 / 100.0;
    let r = payout(100..356).mined().await;
    let payout_256 = gas(&r, "payoutBatchClaims, 256") as f64 / 256.0;
    let paid = fw.withdrawable(alice, Address::ZERO).call().await.unwrap() - credited_before;
    let expected: U256 = alice_claims[..356].iter().map(|c| c.amount).sum();
    assert_eq!(paid, expected, "every claim paid out to the wei");

    println!("\n## Batch exits (#16)\n");
    println!(
        "Every claim is of a real output of a committed block (block 1000: 4,000 five-output \
         payments; block 2000: 1,000 more); gas of the receipts, calldata included.\n"
    );
    println!("| Step | gas | per output |");
    println!("|---|---:|---:|");
    println!("| startBatchExit (i) 1 owner, 2 × 5,000 claims | {} | {start_i:.0} |", g1 + g2);
    println!(
        "| startBatchExit (ii) 100 owners × 50 claims, authorized (EXIT-9) | {g_ii} | {start_ii:.0} |"
    );
    println!(
        "| startBatchExit (iii) 1,000 owners × 5 claims, authorized, {} txs | {g_iii} | {start_iii:.0} |",
        1000 / OWNERS_PER_TX
    );
    println!(
        "| processExits, one batch of 5,000 claims alone (the first of its queue) | {process_alone} | {:.1} |",
        process_alone as f64 / 5000.0
    );
    println!(
        "| processExits, per batch in a call of {n_rest} (2,500 to 5,000 claims each) | {process_share} | {:.1} (of 5,000) |",
        process_share as f64 / 5000.0
    );
    println!(
        "| payoutBatchClaims, 100 per call (deferred, paid by whoever pays out) | — | {payout_100:.0} |"
    );
    println!("| payoutBatchClaims, 256 per call | — | {payout_256:.0} |");
    println!(
        "| challengeBatchClaimInvalid (CHAL-6, 5-output payment, 5,000-claim batch) | {chal6_gas} | — |"
    );
    println!("| challengeBatchClaimSpent (CHAL-7) | {chal7_gas} | — |");
    println!("| demandClaimProof (CHAL-9) | {demand_gas} | — |");
    println!("| answerClaimDemand (CHAL-9) | {answer_gas} | — |");

    let proc_per_output = process_alone as f64 / 5000.0;
    println!("\nOutputs per 30M-gas block:\n");
    println!(
        "| Path | start gas/output | started per block | process gas/output | processed per block |"
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| OMG startStandardExit / processExits (constants measured above) | {OMG_START_GAS} | {:.0} | {OMG_PROCESS_GAS} | {:.0} |",
        per30m(OMG_START_GAS as f64),
        per30m(OMG_PROCESS_GAS as f64)
    );
    println!(
        "| batched standard exit (startStandardExits of 100, today) | {std_start} | {:.0} | {std_process} | {:.0} |",
        per30m(std_start as f64),
        per30m(std_process as f64)
    );
    for (label, g) in [
        ("batch exit (i) 1 owner × 10,000", start_i),
        ("batch exit (ii) 100 owners × 50, authorized", start_ii),
        ("batch exit (iii) 1,000 owners × 5, authorized", start_iii),
    ] {
        println!(
            "| {label} | {g:.0} | {:.0} | {proc_per_output:.1} | {:.0} |",
            per30m(g),
            per30m(proc_per_output)
        );
    }
    println!(
        "\nDeferred to the payout (no deadline): {payout_256:.0} gas per output at 256 per call \
         ({payout_100:.0} at 100)."
    );
    // Safe chain size: outputs whose exits start within one week (the period) at 10 % of L1 (7,200
    // blocks a day); processing comes after the period and is reported beside it.
    let week_gas = BLOCK_GAS as f64 * 7200.0 * 7.0 * 0.1;
    println!("\nAt 10 % of L1 for a week (one period):\n");
    println!("| Path | outputs started | outputs processed |");
    println!("|---|---:|---:|");
    for (label, start, process) in [
        ("OMG", OMG_START_GAS as f64, OMG_PROCESS_GAS as f64),
        ("batched standard exit", std_start as f64, std_process as f64),
        ("batch exit (i)", start_i, proc_per_output),
        ("batch exit (ii)", start_ii, proc_per_output),
        ("batch exit (iii)", start_iii, proc_per_output),
    ] {
        println!("| {label} | {:.2}M | {:.2}M |", week_gas / start / 1e6, week_gas / process / 1e6);
    }

    // BOND-3: half a claim bond pays the costliest strike, half a demand bond the answer, half the
    // batch bond a batch's processing, at the reference gas price (spec: BOND-1).
    let price = U256::from(DeployConfig::REFERENCE_GAS_PRICE);
    let covers = |bond: U256, g: u64| bond / U256::from(2) >= U256::from(g) * price;
    let ratio = |bond: U256, g: u64| {
        (bond / U256::from(2)).to::<u128>() as f64 / (U256::from(g) * price).to::<u128>() as f64
    };
    println!(
        "\nBOND-3 at the reference gas price (bonds from CLAIM_CHALLENGE_GAS {}, DEMAND_ANSWER_GAS {}, \
         BATCH_PROCESS_GAS {}):\n",
        DeployConfig::CLAIM_CHALLENGE_GAS,
        DeployConfig::DEMAND_ANSWER_GAS,
        DeployConfig::BATCH_PROCESS_GAS
    );
    println!("| Paid from | pays for | gas | covered |");
    println!("|---|---|---:|---:|");
    for (what, bond, pays_for, g) in [
        ("claim bond / 2", claim_bond, "CHAL-6", chal6_gas),
        ("claim bond / 2", claim_bond, "CHAL-7", chal7_gas),
        ("demand bond / 2", demand_bond, "answerClaimDemand", answer_gas),
        ("batch bond / 2", batch_bond, "processExits, per batch in a call", process_share),
        ("batch bond / 2", batch_bond, "processExits, one batch alone (first)", process_alone),
    ] {
        println!("| {what} | {pays_for} | {g} | {:.2}x |", ratio(bond, g));
    }
    assert!(
        covers(claim_bond, chal6_gas.max(chal7_gas)),
        "half a claim bond no longer pays a strike"
    );
    assert!(covers(demand_bond, answer_gas), "half a demand bond no longer pays an answer");
    assert!(covers(batch_bond, process_share), "the bounty no longer pays a batch's processing");
    // The goal (#16): >= 10,000 outputs started and processed per 30M-gas block.
    assert!(per30m(start_i) >= 10_000.0, "fewer than 10,000 outputs started per block");
    assert!(per30m(proc_per_output) >= 10_000.0, "fewer than 10,000 outputs processed per block");
}

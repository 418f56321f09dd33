//! Gas of every exit-game step on a real anvil, per transaction (`gasUsed` of the receipt, intrinsic
//! cost and calldata included), beside the figures we measured for OMG's plasma-contracts on the
//! same anvil version. Prints a table; `docs/benchmarks.md` holds the latest run.
//!
//! Run: `cargo bench -p plasma-contracts --bench gas` (needs `npm ci` for anvil).

// A bench is a test harness: any failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    node_bindings::Anvil,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{
    DeployConfig, InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken, deploy,
};
use plasma_spec::{BlockTree, Output, Signer, SigningDomain, Transaction, UtxoPos};
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
        step: "ETH deposit, first ever",
        ours: gas(&r, "depositEth"),
        omg: Some(166_270),
    });
    let dep_ts = r.decoded_log::<PlasmaFramework::DepositCreated>().unwrap().timestamp;
    let alice_deposit = pos(1, 0, 0); // the first deposit block

    let token = TestToken::deploy(provider.clone()).await.unwrap();
    token.mint(alice, eth * U256::from(2)).mined().await;
    token.approve(d.framework, eth * U256::from(2)).from(alice).mined().await;
    let erc_tx = deposit(alice, *token.address(), eth);
    let r = fw.depositErc20(erc_tx.encode().into()).from(alice).mined().await;
    rows.push(Row {
        step: "ERC-20 deposit (after approve), first of the token",
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
    // Deposits after child block 1000 are numbered 1001, 1002, ...
    let mut next_deposit = 1u64;

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
    let mut deposits = Vec::new();
    for _ in 0..BATCH {
        let t = deposit(bob, Address::ZERO, U256::from(1000));
        fw.depositEth(t.encode().into()).value(U256::from(1000)).from(bob).mined().await;
        deposits.push(pos(1000 + next_deposit, 0, 0));
        next_deposit += 1;
    }
    let txs: Vec<Vec<u8>> = deposits
        .iter()
        .map(|p| {
            Transaction::payment(
                &[*p],
                vec![Output::new(bob, Address::ZERO, U256::from(999))],
                B256::ZERO,
            )
            .encode()
        })
        .collect();
    let tree = BlockTree::from_txs(&txs).unwrap();
    let r = fw.submitBlock(U256::from(2000u64), tree.root()).from(op).mined().await;
    let batch_ts = r.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
    let batch: Vec<_> = (0..BATCH)
        .map(|i| args(pos(2000, i as u16, 0), &txs[i], tree.proof(i).unwrap().to_bytes(), batch_ts))
        .collect();
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
    provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), [3 * PERIOD])
        .await
        .unwrap();
    // The head is alice's challenged exit (a deposit: now + p), then bob's honest one.
    for step in ["processExits, one challenged exit (skipped)", "processExits, one exit"] {
        let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
        let omg = (step == "processExits, one exit").then_some(151_657);
        rows.push(Row { step, ours: gas(&r, step), omg });
    }
    // One exit alone once the one-time slots exist: what a keeper pays to settle a lone exit.
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
    let lone_gas = gas(&r, "process one more");
    rows.push(Row { step: "processExits, one exit (not the first)", ours: lone_gas, omg: None });
    let r =
        fw.processExits(Address::ZERO, U256::ZERO, U256::from(BATCH)).gas(29_000_000).mined().await;
    let settled = BATCH as u64 - 1;
    let per_exit_gas = gas(&r, "process many") / settled;
    rows.push(Row { step: "processExits, per extra exit", ours: per_exit_gas, omg: Some(96_500) });

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
    provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), [3 * PERIOD])
        .await
        .unwrap();
    let r = fw.processExits(Address::ZERO, U256::ZERO, U256::from(1)).mined().await;
    rows.push(Row {
        step: "processExits, one in-flight exit (canonical, 1 output)",
        ours: gas(&r, "process ife"),
        omg: Some(538_475),
    });

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
}

//! Issue 16, the wallet's batch exits against a real anvil, the real contracts and the real
//! operator: a wallet of many outputs claims all of them in one call (EXIT-12), the batch is
//! processed (EXIT-14), its claims paid out (EXIT-15) and withdrawn — the wallet's L1 balance
//! exact to the wei; a standard exit of a claimed output is refused before any bond is paid
//! (WALLET-1, CHAL-10); a start split into several batches keeps ascending order across them (the
//! watermark), through the CLI; a watchtower's claims are seen from L1, and outputs a batch cannot
//! claim exit by standard exits.
//!
//! 256 outputs by default; `PLASMA_FULL_SIZE=1` makes 8,192 (two batches of the default 5,000
//! claims at most).

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, TxHash, U256},
    providers::{DynProvider, Provider},
    sol_types::SolEvent,
};
use plasma_operator::Node;
use plasma_sdk::{OutputStatus, SdkError, Wallet};
use plasma_spec::{
    Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, batch_exit as bx,
};
use plasma_testkit::{Env, PERIOD, advance, env, key, operator, wallet, wallet_config};
use serde_json::Value;
use std::time::Duration;

/// The batch game's events as the test reads them from receipts.
mod ev {
    alloy::sol! {
        event BatchExitGroup(uint256 indexed batchId, address indexed owner, uint256 firstIndex, bytes claims);
        event BatchExitProcessed(uint256 indexed batchId, uint256 reserved, uint256 total);
    }
}

fn full_size() -> bool {
    std::env::var("PLASMA_FULL_SIZE").is_ok_and(|v| v == "1")
}

/// What an L1 transaction cost its sender in wei.
async fn gas_cost(provider: &DynProvider, tx: TxHash) -> U256 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

/// Submits signed transactions through `POST /v1/transactions/batch` (500 a request) and waits
/// until the last one's block is committed.
async fn submit_all(client: &plasma_sdk::OperatorClient, txs: &[SignedTransaction]) {
    let http = reqwest::Client::new();
    for chunk in txs.chunks(500) {
        let body = serde_json::json!({"txs": chunk.iter().map(|t| format!("0x{}", hex::encode(t.encode()))).collect::<Vec<_>>()});
        let resp = http
            .post(format!("{}/v1/transactions/batch", client.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }
    let last = txs.last().unwrap().transaction.hash();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok((status, Some(_))) = client.tx_status(last).await
            && status == "committed"
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gives account `i` `deposits * 4^levels` outputs of ETH on the child chain (a deposit each of
/// `unit * 4^levels` wei, split four ways `levels` times by payments to itself, no fee), all
/// verified in its store. Returns the wallet and the sum of its outputs.
async fn wallet_of_many_outputs(
    env: &Env,
    node: &Node,
    i: usize,
    deposits: usize,
    levels: u32,
) -> (Wallet, U256) {
    let alice = wallet(env, node, i).await;
    let signer = Signer::from_bytes(&B256::from(key(env, i).to_bytes())).unwrap();
    let domain = SigningDomain::new(env.anvil.chain_id(), env.deployment.framework);
    // Amounts differ per deposit so every output's amount is not the same.
    let unit = U256::from(1_000_000_007u64);
    let mut total = U256::ZERO;
    for d in 0..deposits {
        let amount = (unit + U256::from(d)) * U256::from(4u64.pow(levels));
        let pos = alice.deposit_eth(amount).await.unwrap();
        alice.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
        total += amount;
    }
    for _ in 0..levels {
        let coins = alice.operator().utxos(alice.address()).await.unwrap();
        let txs: Vec<SignedTransaction> = coins
            .iter()
            .map(|c| {
                let tx = Transaction::payment(
                    &[UtxoPos::from_u128(c.utxo_pos).unwrap()],
                    vec![Output::new(alice.address(), Address::ZERO, c.amount / U256::from(4)); 4],
                    B256::ZERO,
                );
                let sig = signer.sign_tx(&domain, &tx);
                SignedTransaction::new(tx, vec![sig])
            })
            .collect();
        submit_all(alice.operator(), &txs).await;
    }
    alice.sync().await.unwrap();
    let n = deposits * 4usize.pow(levels);
    assert_eq!(alice.exitable().unwrap().len(), n);
    assert_eq!(alice.balance(Address::ZERO).unwrap(), total);
    (alice, total)
}

/// The whole path in one call each, to the wei: a wallet of many outputs claims all of them
/// (`start_batch_exit`), a standard exit of one is refused before any bond (WALLET-1:
/// `OutputBatchClaimed`, CHAL-10 would take the bond), the batch is processed, the claims paid
/// (`payout_batch_claims`) and withdrawn: the wallet's L1 balance grows by exactly its outputs
/// minus the gas of its L1 transactions (its bonds come back: it processed its own batch).
/// Prints the gas per output of the start and of the payout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_outputs_exit_in_batches_and_are_paid_to_the_wei() {
    let env = env().await;
    let node = operator(&env).await;
    let (deposits, levels) = if full_size() { (2, 6) } else { (1, 4) };
    let (alice, total) = wallet_of_many_outputs(&env, &node, 1, deposits, levels).await;
    let n = deposits * 4usize.pow(levels);
    let positions: Vec<u128> = alice.exitable().unwrap().iter().map(|o| o.utxo_pos).collect();
    let before = env.provider.get_balance(alice.address()).await.unwrap();
    let mut sent: Vec<TxHash> = Vec::new();

    let report = alice.start_batch_exit(None).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert!(report.standard.is_empty() && report.not_started.is_empty(), "{report:?}");
    let mut claimed = report.claimed();
    claimed.sort_unstable();
    assert_eq!(claimed, positions, "every output claimed once");
    assert_eq!(report.batches.len(), n.div_ceil(plasma_sdk::DEFAULT_BATCH_CLAIMS));
    assert!(report.batches.iter().all(|b| b.batch_id > 0 && b.skipped.is_empty()));
    sent.extend(report.batches.iter().map(|b| b.l1_tx));
    let start_gas = report.gas_used();

    // Recorded in the store: claimed (not spendable, shown as exiting), and a standard exit of a
    // claimed output is refused before any bond is paid.
    assert_eq!(alice.balance(Address::ZERO).unwrap(), U256::ZERO);
    assert_eq!(alice.exiting_balance(Address::ZERO).unwrap(), total);
    assert!(alice.exitable().unwrap().is_empty());
    let o = alice.outputs().unwrap().into_iter().find(|o| o.utxo_pos == positions[7]).unwrap();
    assert_eq!(o.status, OutputStatus::BatchClaimed);
    let c = o.batch_claim.clone().unwrap();
    assert_eq!((c.batch_id, c.index), (report.batches[0].batch_id, 7));
    match alice.start_exits(&[positions[7]]).await {
        Err(SdkError::OutputBatchClaimed { batch_id, index, .. }) => {
            assert_eq!((batch_id, index), (c.batch_id, 7));
        }
        other => panic!("a standard exit of a claimed output must be refused: {other:?}"),
    }
    let standard = plasma_contracts::StandardExitGame::new(
        env.deployment.standard_exit_game,
        env.provider.clone(),
    );
    assert_eq!(standard.exits(U256::from(positions[7])).call().await.unwrap().status, 0);
    // Before processing there is nothing to pay: the payout says when.
    let early = alice.payout_batch_claims().await.unwrap();
    assert!(early.chunks.is_empty());
    assert_eq!(early.waiting.len(), n);

    advance(&env.provider, 3 * PERIOD).await;
    let process = alice.process_exits(Address::ZERO, 10).await.unwrap();
    sent.push(process);
    let receipt = env.provider.get_transaction_receipt(process).await.unwrap().unwrap();
    let processed = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.topic0() == Some(&ev::BatchExitProcessed::SIGNATURE_HASH))
        .count();
    assert_eq!(processed, report.batches.len(), "every batch processed");

    let payout = alice.payout_batch_claims().await.unwrap();
    assert_eq!(payout.error, None);
    assert!(payout.waiting.is_empty() && payout.lost.is_empty(), "{payout:?}");
    assert_eq!(payout.credited(), total, "every claim paid in full");
    assert_eq!(payout.chunks.iter().map(|c| c.paid.len()).sum::<usize>(), n);
    sent.extend(payout.chunks.iter().map(|c| c.l1_tx));
    let payout_gas = payout.gas_used();
    let finalized = alice
        .outputs()
        .unwrap()
        .iter()
        .filter(|o| o.status == OutputStatus::Finalized)
        .map(|o| o.utxo_pos)
        .collect::<Vec<_>>();
    assert_eq!(finalized, positions, "every claimed output is finalized, no other");
    // Paid once: a second payout has nothing left.
    assert!(alice.payout_batch_claims().await.unwrap().chunks.is_empty());

    // Alice processed her own batches: the bounties are hers, so every bond comes back.
    let withdrawn = alice.withdraw(Address::ZERO).await.unwrap();
    assert_eq!(withdrawn, total + report.bonds());
    let last = env
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    sent.push(last.transactions.hashes().next().unwrap());
    let mut gas = U256::ZERO;
    for tx in &sent {
        gas += gas_cost(&env.provider, *tx).await;
    }
    let after = env.provider.get_balance(alice.address()).await.unwrap();
    assert_eq!(after, before + total - gas, "the outputs, to the wei, less the gas");
    eprintln!(
        "batch exit of {n} outputs: start {start_gas} gas in {} transaction(s) ({} gas/output), \
         payout {payout_gas} gas in {} transaction(s) ({} gas/output)",
        report.batches.len(),
        start_gas / n as u64,
        payout.chunks.len(),
        payout_gas / n as u64
    );
    node.stop().await;
}

fn plasma(env: &Env, node: &Node, i: usize, args: &[&str]) -> (bool, Value) {
    let config = wallet_config(env, node, i);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
        .args(["--json", "--l1.rpc-url", &env.anvil.endpoint()])
        .args(["--operator.url", &format!("http://{}", node.addr)])
        .args(["--framework", &env.deployment.framework.to_string()])
        .args(["--store", config.store_path.to_str().unwrap()])
        .args(["--private-key", &format!("0x{}", hex::encode(env.anvil.keys()[i].to_bytes()))])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

/// A start split into several batches (forced: 64 claims each) keeps ascending order across
/// them: each batch's claims ascend and start above the previous batch's last (the watermark),
/// so the contract skips none; the L1 events say the same. Through the CLI (`plasma exit --all`,
/// batches by default for more than 50 outputs), whose `exits` then lists the claims live, which refuses a standard exit of one, and
/// whose `withdraw` pays the claims out before withdrawing once the batches are processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_batch_exit_keeps_ascending_order_across_batches() {
    let env = env().await;
    let node = operator(&env).await;
    let (alice, total) = wallet_of_many_outputs(&env, &node, 1, 1, 4).await;
    let mut positions: Vec<u128> = alice.exitable().unwrap().iter().map(|o| o.utxo_pos).collect();
    positions.sort_unstable();
    drop(alice);

    let (ok, v) = tokio::task::block_in_place(|| {
        // No --batch: more than 50 exitable outputs make it the default.
        plasma(&env, &node, 1, &["exit", "--all", "--batch-size", "64"])
    });
    assert!(ok, "{v}");
    assert_eq!(v["error"], Value::Null, "{v}");
    let batches = v["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 4, "256 outputs in batches of 64: {v}");
    let mut all: Vec<u128> = Vec::new();
    let mut last_id = 0;
    let mut bonds = U256::ZERO;
    for b in batches {
        bonds += b["bond"].as_str().unwrap().parse::<U256>().unwrap();
        assert!(b["skipped"].as_array().unwrap().is_empty(), "{b}");
        let id = b["batchId"].as_u64().unwrap();
        assert!(id > last_id, "{v}");
        last_id = id;
        let claims: Vec<u128> = b["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(claims.len(), 64);
        // What L1 recorded: the group's packed claims, in this order.
        let hash: TxHash = b["l1Tx"].as_str().unwrap().parse().unwrap();
        let receipt = env.provider.get_transaction_receipt(hash).await.unwrap().unwrap();
        let group = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<ev::BatchExitGroup>().ok())
            .unwrap();
        let on_l1: Vec<u128> = bx::decode_claims(&group.inner.claims)
            .unwrap()
            .iter()
            .map(|(p, _)| p.to_u128())
            .collect();
        assert_eq!(on_l1, claims, "{b}");
        all.extend(claims);
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending within and across batches");
    assert_eq!(all, positions, "every output claimed once");

    let (ok, v) = tokio::task::block_in_place(|| plasma(&env, &node, 1, &["exits"]));
    assert!(ok, "{v}");
    let exits = v["exits"].as_array().unwrap();
    assert_eq!(exits.len(), 256, "{v}");
    assert!(exits.iter().all(|e| e["kind"] == "batch" && e["state"] == "live"), "{v}");

    let one = positions[100].to_string();
    let (ok, v) = tokio::task::block_in_place(|| plasma(&env, &node, 1, &["exit", &one]));
    assert!(!ok, "{v}");
    assert!(v["error"].as_str().unwrap().contains("claimed by batch exit"), "{v}");

    // Processed, then `withdraw` pays the claims out first and takes everything: the outputs
    // and (alice processed her own batches) every bond.
    advance(&env.provider, 3 * PERIOD).await;
    let (ok, v) = tokio::task::block_in_place(|| plasma(&env, &node, 1, &["process"]));
    assert!(ok, "{v}");
    let (ok, v) = tokio::task::block_in_place(|| plasma(&env, &node, 1, &["withdraw"]));
    assert!(ok, "{v}");
    assert_eq!(v["payout"]["credited"], total.to_string(), "{v}");
    assert_eq!(v["withdrawn"], (total + bonds).to_string(), "{v}");
    let (ok, v) = tokio::task::block_in_place(|| plasma(&env, &node, 1, &["exits"]));
    assert!(ok, "{v}");
    assert!(v["exits"].as_array().unwrap().iter().all(|e| e["state"] == "paid"), "{v}");
    node.stop().await;
}

/// Claims the wallet did not start, and outputs a batch cannot claim: a watchtower (account 3,
/// authorized by alice, EXIT-9) claims every other one of alice's first eight outputs, which
/// raises alice's watermark above the other four. Alice's wallet learns of the tower's claims from
/// L1 alone (`BatchExitGroup`, owner indexed) and refuses a standard exit of one (WALLET-1,
/// CHAL-10). Her batch exit of everything then claims the outputs above the watermark and exits
/// by standard exits the four below it and one of more than 2^96 - 1 wei; once processed, her
/// payout pays her claims in both batches (the tower's and hers), and every output ends finalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_by_a_watchtower_are_seen_and_unclaimable_outputs_exit_by_standard_exits() {
    use alloy::{network::EthereumWallet, providers::ProviderBuilder};
    use plasma_contracts::BatchExitGame;
    let env = env().await;
    let node = operator(&env).await;
    let (alice, _) = wallet_of_many_outputs(&env, &node, 1, 1, 2).await;
    // One output too large for a claim.
    let huge = U256::from(1u8) << 96;
    env.provider
        .raw_request::<_, Value>("anvil_setBalance".into(), (alice.address(), huge * U256::from(2)))
        .await
        .unwrap();
    let big = alice.deposit_eth(huge).await.unwrap();
    alice.wait_for_output(big, Duration::from_secs(30)).await.unwrap();
    alice.sync().await.unwrap();
    let outputs = alice.exitable().unwrap();
    assert_eq!(outputs.len(), 17);
    let small: Vec<_> = outputs.iter().filter(|o| o.utxo_pos != big).cloned().collect();

    // The tower claims small[1], small[3], small[5], small[7] for alice.
    let tower_key = key(&env, 3);
    let tower = ProviderBuilder::new()
        .wallet(EthereumWallet::from(tower_key.clone()))
        .connect_http(env.anvil.endpoint().parse().unwrap())
        .erased();
    let game = BatchExitGame::new(env.deployment.batch_exit_game, tower);
    let (auth, signature) =
        alice.authorize_watchtower(tower_key.address(), u64::MAX / 2).await.unwrap();
    let claimed_by_tower: Vec<_> = small.iter().skip(1).step_by(2).take(4).cloned().collect();
    let records: Vec<(UtxoPos, U256)> = claimed_by_tower
        .iter()
        .map(|o| (UtxoPos::from_u128(o.utxo_pos).unwrap(), o.amount))
        .collect();
    let youngest = claimed_by_tower.last().unwrap();
    let bond = game.batchBondSize().call().await.unwrap()
        + game.claimBondSize().call().await.unwrap() * U256::from(4);
    let group = BatchExitGame::Group {
        owner: alice.address(),
        deadline: auth.deadline,
        nonce: auth.nonce,
        signature,
        claims: bx::encode_claims(&records).unwrap().into(),
    };
    game.startBatchExit(Address::ZERO, youngest.root, youngest.block_timestamp, vec![group])
        .value(bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(alice.claimed_up_to(Address::ZERO).await.unwrap(), youngest.utxo_pos);

    // Alice's wallet sees the tower's claims on L1 and refuses a standard exit of one.
    alice.refresh().await.unwrap();
    for o in &claimed_by_tower {
        let stored =
            alice.outputs().unwrap().into_iter().find(|s| s.utxo_pos == o.utxo_pos).unwrap();
        assert_eq!(stored.status, OutputStatus::BatchClaimed, "{stored:?}");
        assert_eq!(stored.batch_claim.unwrap().exitor, tower_key.address());
    }
    assert!(matches!(
        alice.start_exits(&[claimed_by_tower[0].utxo_pos]).await,
        Err(SdkError::OutputBatchClaimed { index: 0, .. })
    ));

    // Everything else: a batch above the watermark, standard exits for the rest.
    let report = alice.start_batch_exit(None).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    let mut standard: Vec<u128> = report.standard.iter().map(|(p, _)| *p).collect();
    standard.sort_unstable();
    let mut expected: Vec<u128> =
        [0, 2, 4, 6].iter().map(|i| small[*i].utxo_pos).chain([big]).collect();
    expected.sort_unstable();
    assert_eq!(standard, expected, "{report:?}");
    assert_eq!(report.standard_report.as_ref().unwrap().started(), expected);
    let mine: Vec<u128> = small[8..].iter().map(|o| o.utxo_pos).collect();
    assert_eq!(report.claimed(), mine);
    assert!(alice.exitable().unwrap().is_empty());

    advance(&env.provider, 3 * PERIOD).await;
    alice.process_exits(Address::ZERO, 20).await.unwrap();
    let payout = alice.payout_batch_claims().await.unwrap();
    assert!(payout.waiting.is_empty() && payout.lost.is_empty(), "{payout:?}");
    let batches: std::collections::BTreeSet<u64> =
        payout.chunks.iter().flat_map(|c| c.paid.iter().map(|p| p.1)).collect();
    assert_eq!(batches.len(), 2, "the tower's batch and alice's");
    let claimed_sum =
        claimed_by_tower.iter().chain(&small[8..]).fold(U256::ZERO, |a, o| a + o.amount);
    assert_eq!(payout.credited(), claimed_sum);
    alice.refresh().await.unwrap();
    let finalized = alice
        .outputs()
        .unwrap()
        .into_iter()
        .filter(|o| o.status == OutputStatus::Finalized)
        .count();
    assert_eq!(finalized, 17, "every output paid once, by one path");
    node.stop().await;
}

/// A batch exit under a low block gas limit (600k: about 200 claims fit, not the 5,000 default)
/// is split by gas, as `start_exits` is: several batches, each transaction within the limit, all
/// outputs claimed once, in ascending order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_exit_fits_the_block_gas_limit() {
    let env = env().await;
    let node = operator(&env).await;
    let (alice, _) = wallet_of_many_outputs(&env, &node, 1, 1, 4).await;
    let positions: Vec<u128> = alice.exitable().unwrap().iter().map(|o| o.utxo_pos).collect();
    let gas_limit = 600_000u64;
    env.provider
        .raw_request::<_, Value>("anvil_setBlockGasLimit".into(), (U256::from(gas_limit),))
        .await
        .unwrap();
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    let report = alice.start_batch_exit(None).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert!(report.batches.len() >= 2, "{report:?}");
    assert!(report.batches.iter().all(|b| b.gas_used <= gas_limit && b.skipped.is_empty()));
    assert_eq!(report.claimed(), positions, "all, once, ascending across batches");
}

//! #16 on the real binaries: a watchtower's mass exit of thousands of guarded outputs through
//! batch exits (EXIT-12 … EXIT-15) after the operator withholds a block, every owner paid to the
//! wei, with the L1 gas of each step reported.
//!
//! `PLASMA_FULL_SIZE=1` runs it with 10,000 outputs instead of 2,000.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use plasma_contracts::{BatchExitGame, PlasmaFramework};
use plasma_e2e::Devnet;
use plasma_sdk::OperatorClient as Client;
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos};
use std::{collections::BTreeMap, time::Duration};

fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000_000_000u64)
}

/// Submits payments and waits until every one is in a committed block.
async fn submit_and_commit(client: &Client, txs: &[SignedTransaction]) {
    let mut hashes = Vec::new();
    for t in txs {
        hashes.push(client.submit(&t.encode()).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for h in hashes {
        while client.tx_inclusion(h).await.unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "payment {h} never committed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Splits each of `coins` (owned by `from`) into outputs to `to(k, j)`, `ways` each.
fn split(
    from: &Signer,
    domain: &plasma_spec::SigningDomain,
    coins: &[(u128, U256)],
    ways: usize,
    to: impl Fn(usize, usize) -> Address,
) -> Vec<SignedTransaction> {
    coins
        .iter()
        .enumerate()
        .map(|(k, (pos, amount))| {
            let part = *amount / U256::from(ways);
            let outputs = (0..ways)
                .map(|j| {
                    let a =
                        if j + 1 == ways { *amount - part * U256::from(ways - 1) } else { part };
                    Output::new(to(k, j), Address::ZERO, a)
                })
                .collect();
            let tx =
                Transaction::payment(&[UtxoPos::from_u128(*pos).unwrap()], outputs, B256::ZERO);
            let sig = from.sign_tx(domain, &tx);
            SignedTransaction::new(tx, vec![sig])
        })
        .collect()
}

/// Gas of the L1 transactions that emitted `hashes`, summed once per transaction.
async fn gas_of(net: &Devnet, hashes: impl IntoIterator<Item = Option<B256>>) -> (u64, usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut gas = 0;
    for h in hashes.into_iter().flatten() {
        if seen.insert(h) {
            let r = net.provider.get_transaction_receipt(h).await.unwrap().unwrap();
            gas += r.gas_used;
        }
    }
    (gas, seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_batch_exits_thousands_of_guarded_outputs_after_a_withheld_block() {
    let full = std::env::var("PLASMA_FULL_SIZE").is_ok_and(|v| v == "1");
    let (owners_n, outputs_n) = if full { (100usize, 10_000usize) } else { (40, 2_000) };
    let mut net = Devnet::start().await.unwrap();
    let client = Client::new(net.operator_url.clone());
    let funder_wallet = net.wallet(1).await.unwrap();
    let funder_key = B256::from_slice(&net.anvil.keys()[1].to_bytes());
    let funder = Signer::from_bytes(&funder_key).unwrap();
    let domain = plasma_spec::SigningDomain::new(net.anvil.chain_id(), net.deployment.framework);

    // The owners, guarded by the watcher.
    let mut owners = Vec::new();
    for i in 0..owners_n {
        let key = alloy::signers::local::PrivateKeySigner::from_bytes(
            &alloy::primitives::keccak256(format!("batch exit owner {i}")),
        )
        .unwrap();
        let w = net.wallet_for(key, &format!("owner{i}")).await.unwrap();
        net.guard(&w).await.unwrap();
        owners.push(w);
    }

    // Fan out one deposit into `outputs_n` outputs of the owners: splits by 5 until there are
    // enough coins to split by 4 into the owners' outputs.
    let per_output = milli(16);
    let finals = outputs_n / 4;
    let mut level = 1usize;
    while level * 5 <= finals {
        level *= 5;
    }
    let deposit = per_output * U256::from(outputs_n) * U256::from(2);
    let pos = funder_wallet.deposit_eth(deposit).await.unwrap();
    funder_wallet.wait_for_output(pos, Duration::from_secs(60)).await.unwrap();
    let funder_addr = funder.address();
    let mut coins = vec![(pos, deposit)];
    while coins.len() < finals {
        let txs = split(&funder, &domain, &coins, 5, |_, _| funder_addr);
        submit_and_commit(&client, &txs).await;
        coins = client
            .utxos(funder_addr)
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.utxo_pos, u.amount))
            .collect();
    }
    coins.truncate(finals);
    let owner_addrs: Vec<Address> = owners.iter().map(|w| w.address()).collect();
    let last_txs = split(&funder, &domain, &coins, 4, |k, j| owner_addrs[(k * 4 + j) % owners_n]);
    submit_and_commit(&client, &last_txs).await;

    let mut expected: BTreeMap<Address, (usize, U256)> = BTreeMap::new();
    for t in &last_txs {
        for o in &t.transaction.outputs {
            let e = expected.entry(o.owner).or_default();
            e.0 += 1;
            e.1 += o.amount;
        }
    }
    let total: U256 = expected.values().map(|e| e.1).sum();
    assert_eq!(expected.values().map(|e| e.0).sum::<usize>(), outputs_n);
    let last_block =
        client.tx_inclusion(last_txs[0].transaction.hash()).await.unwrap().unwrap().blknum;
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(last_block))
        .await
        .unwrap();

    // The operator commits a block and withholds it.
    net.kill_operator();
    net.byzantine_operator().commit_withheld(Vec::new()).await.unwrap();

    // Every guarded output is claimed on L1, in batches.
    let batch = BatchExitGame::new(net.deployment.batch_exit_game, net.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let groups = loop {
        let groups = batch.BatchExitGroup_filter().from_block(0).query().await.unwrap();
        let claimed: usize = groups
            .iter()
            .filter(|(g, _)| expected.contains_key(&g.owner))
            .map(|(g, _)| g.claims.len() / plasma_spec::batch_exit::CLAIM_BYTES)
            .sum();
        if claimed >= outputs_n {
            assert_eq!(claimed, outputs_n, "each guarded output claimed once");
            break groups;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {claimed} claimed\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let started = batch.BatchExitStarted_filter().from_block(0).query().await.unwrap();
    let (start_gas, start_txs) = gas_of(&net, groups.iter().map(|(_, l)| l.transaction_hash)).await;

    // Two periods later the tower processes the batches and pays every owner out.
    net.advance(3 * net.period).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for (owner, (_, amount)) in &expected {
        loop {
            let credited = framework.withdrawable(*owner, Address::ZERO).call().await.unwrap();
            if credited == *amount {
                break;
            }
            assert!(credited < *amount, "{owner} was paid {credited}, more than its {amount}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "{owner} paid {credited} of {amount}\n{}",
                net.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // The vault paid exactly the guarded outputs: nothing else, nothing twice.
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), total);
    let processed = batch.BatchExitProcessed_filter().from_block(0).query().await.unwrap();
    let paid = batch.BatchClaimPaid_filter().from_block(0).query().await.unwrap();
    assert_eq!(paid.len(), outputs_n, "one payout per claim");
    let (process_gas, process_txs) =
        gas_of(&net, processed.iter().map(|(_, l)| l.transaction_hash)).await;
    let (payout_gas, payout_txs) = gas_of(&net, paid.iter().map(|(_, l)| l.transaction_hash)).await;
    let n = outputs_n as u64;
    eprintln!(
        "mass exit of {outputs_n} outputs of {owners_n} owners in {} batches:\n\
         start   {start_gas:>11} gas in {start_txs} L1 txs = {:>6} gas/output ({} outputs per 30M gas)\n\
         process {process_gas:>11} gas in {process_txs} L1 txs = {:>6} gas/output (whole txs, other exits included)\n\
         payout  {payout_gas:>11} gas in {payout_txs} L1 txs = {:>6} gas/output (deferred: no deadline)",
        started.len(),
        start_gas / n,
        30_000_000 * n / start_gas.max(1),
        process_gas / n,
        payout_gas / n,
    );
    // The goal of #16: at least 10,000 outputs started per 30M gas.
    assert!(start_gas / n <= 3_000, "starting costs {} gas per output", start_gas / n);
}

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

/// Waits until `check` holds, polling L1 (the watcher acts by itself; nothing here helps it).
async fn until<F, Fut>(net: &Devnet, what: &str, secs: u64, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The attacks of #16 on the batch path, each by a user (mallory) or the operator, each defeated
/// by the watcher by itself, the attackers gaining nothing: a claim of another owner's old output
/// (to jump the queue), of a spent output, of an output already exiting by a standard exit, of a
/// position holding no transaction, the same output claimed in a second batch, and a claim of an
/// output in a block the claimer withholds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_batch_exits_are_defeated_by_the_watcher() {
    let mut net = Devnet::start().await.unwrap();
    let alice = net.wallet(2).await.unwrap();
    let mallory = net.wallet(3).await.unwrap();
    let a1 = alice.deposit_eth(eth(5)).await.unwrap();
    let m1 = mallory.deposit_eth(eth(1)).await.unwrap();
    let m2 = mallory.deposit_eth(eth(1)).await.unwrap();
    let m3 = mallory.deposit_eth(eth(1)).await.unwrap();
    mallory.wait_for_output(m3, Duration::from_secs(30)).await.unwrap();
    // One of mallory's coins is spent to alice (the wallet picks which; the payment says).
    let hash = mallory.send(alice.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let b1 = mallory.wait_for_commit(hash, Duration::from_secs(30)).await.unwrap();
    let client = Client::new(net.operator_url.clone());
    let inc = client.tx_inclusion(hash).await.unwrap().unwrap();
    let spent_tx = Transaction::decode(&inc.tx_bytes).unwrap();
    let spent = spent_tx.input_positions().unwrap()[0].to_u128();
    let unspent: Vec<u128> = [m1, m2, m3].into_iter().filter(|p| *p != spent).collect();
    let (exiting, legit) = (unspent[0], unspent[1]);
    // Mallory exits one coin the standard way, then claims it in a batch too.
    mallory.start_exits(&[exiting]).await.unwrap();

    let batch = BatchExitGame::new(net.deployment.batch_exit_game, net.provider_for(3));
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let (root, ts) = {
        let subs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
        let (ev, _) = subs.iter().find(|(e, _)| e.blknum == U256::from(b1)).unwrap();
        (ev.root, ev.timestamp)
    };
    let empty = UtxoPos::new(b1, 100, 0).unwrap().to_u128();
    let mut claims = [
        (a1, eth(5)),      // alice's output, claimed as mallory's: CHAL-6
        (spent, eth(1)),   // spent to alice: CHAL-7
        (exiting, eth(1)), // standard-exiting: CHAL-8
        (legit, eth(1)),   // mallory's own, unspent: stands, paid
        (empty, eth(1)),   // no transaction there: CHAL-6
    ];
    claims.sort();
    let packed = plasma_spec::batch_exit::encode_claims(
        &claims.iter().map(|(p, a)| (UtxoPos::from_u128(*p).unwrap(), *a)).collect::<Vec<_>>(),
    )
    .unwrap();
    let bond = batch.batchBondSize().call().await.unwrap();
    let claim_bond = batch.claimBondSize().call().await.unwrap();
    let group = BatchExitGame::Group {
        owner: mallory.address(),
        deadline: U256::ZERO,
        nonce: U256::ZERO,
        signature: Default::default(),
        claims: packed.clone().into(),
    };
    let receipt = batch
        .startBatchExit(Address::ZERO, root, ts, vec![group.clone()])
        .value(bond + claim_bond * U256::from(5))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let id = receipt.decoded_log::<BatchExitGame::BatchExitStarted>().unwrap().batchId;
    let index_of = |pos: u128| U256::from(claims.iter().position(|c| c.0 == pos).unwrap());

    // The same coin in a second batch: refused by the watermark, nothing claimed.
    let legit_only = BatchExitGame::Group {
        claims: plasma_spec::batch_exit::encode_claims(&[(
            UtxoPos::from_u128(legit).unwrap(),
            eth(1),
        )])
        .unwrap()
        .into(),
        ..group
    };
    let again = batch
        .startBatchExit(Address::ZERO, root, ts, vec![legit_only])
        .value(bond + claim_bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(again.status());
    assert!(again.decoded_log::<BatchExitGame::BatchGroupSkipped>().is_some());
    assert!(again.decoded_log::<BatchExitGame::BatchExitStarted>().is_none());

    // The watcher strikes the four bad claims by itself.
    let reader = BatchExitGame::new(net.deployment.batch_exit_game, net.provider.clone());
    for pos in [a1, spent, exiting, empty] {
        let i = index_of(pos);
        until(&net, &format!("claim of {pos} struck"), 60, || {
            let reader = reader.clone();
            async move { reader.claimState(id, i).call().await.unwrap() == 2 }
        })
        .await;
    }
    let struck = reader.BatchClaimStruck_filter().from_block(0).query().await.unwrap();
    assert_eq!(struck.len(), 4, "four strikes, nothing else");
    assert!(struck.iter().all(|(e, _)| e.challenger == net.watcher), "the watcher struck them");
    assert_eq!(
        reader.claimState(id, index_of(legit)).call().await.unwrap(),
        0,
        "mallory's own coin stands"
    );

    // The operator claims an output of a block it withholds: the watcher cannot check it, so it
    // demands the proof; nobody can answer, and the claim is struck at processing.
    net.kill_operator();
    let op_key = Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes())).unwrap();
    let domain = plasma_spec::SigningDomain::new(net.anvil.chain_id(), net.deployment.framework);
    let loot = {
        let tx = Transaction::payment(
            &[UtxoPos::from_u128(a1).unwrap()],
            vec![Output::new(op_key.address(), Address::ZERO, eth(5))],
            B256::ZERO,
        );
        let sig = op_key.sign_tx(&domain, &tx);
        SignedTransaction::new(tx, vec![sig])
    };
    let withheld = net.byzantine_operator().commit_withheld(vec![loot]).await.unwrap();
    let wroot = plasma_spec::BlockTree::from_txs(&withheld.txs).unwrap().root();
    let op_batch = BatchExitGame::new(net.deployment.batch_exit_game, net.provider_for(0));
    let op_claim = UtxoPos::new(withheld.blknum, 0, 0).unwrap();
    let receipt = op_batch
        .startBatchExit(
            Address::ZERO,
            wroot,
            withheld.timestamp,
            vec![BatchExitGame::Group {
                owner: op_key.address(),
                deadline: U256::ZERO,
                nonce: U256::ZERO,
                signature: Default::default(),
                claims: plasma_spec::batch_exit::encode_claims(&[(op_claim, eth(5))])
                    .unwrap()
                    .into(),
            }],
        )
        .value(bond + claim_bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let op_id = receipt.decoded_log::<BatchExitGame::BatchExitStarted>().unwrap().batchId;
    until(&net, "the withheld claim demanded", 60, || {
        let reader = reader.clone();
        async move { reader.claimState(op_id, U256::ZERO).call().await.unwrap() == 1 }
    })
    .await;

    // Everything is processed (the watcher processes due exits): the vault reserved only the
    // two honest coins of mallory — the standard exit and the standing claim.
    net.advance(3 * net.period).await.unwrap();
    until(&net, "all processed", 120, || {
        let framework = framework.clone();
        async move { framework.queueHead(Address::ZERO).call().await.unwrap().head.is_zero() }
    })
    .await;
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(2));
    // Mallory's one honest claim is hers to pay out (from L1 alone: the operator is gone), and
    // nothing more: the vault total stays.
    // (A new wallet: the raw calls above used mallory's key beside the old one's nonce cache.)
    drop(mallory);
    let mallory = net.wallet(3).await.unwrap();
    let before = framework.withdrawable(mallory.address(), Address::ZERO).call().await.unwrap();
    let report = mallory.payout_batch_claims().await.unwrap();
    assert_eq!(reader.claimState(id, index_of(legit)).call().await.unwrap(), 3, "paid: {report:?}");
    let after = framework.withdrawable(mallory.address(), Address::ZERO).call().await.unwrap();
    assert_eq!(after - before, eth(1), "exactly her coin");
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(2));
    assert_ne!(reader.claimState(op_id, U256::ZERO).call().await.unwrap(), 3, "never paid");
    // The operator's loot can never be paid: nothing was reserved for it.
    let op_credit = framework.withdrawable(op_key.address(), Address::ZERO).call().await.unwrap();
    assert!(op_credit < bond, "the operator got at most part of its bond back: {op_credit}");
}

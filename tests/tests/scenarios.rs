//! Scenarios on the real binaries (see docs/e2e.md): each ends with exact balances.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
};
use plasma_contracts::{
    DeployConfig, InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken,
};
use plasma_e2e::{ByzantineOperator, Devnet, PERIOD, payouts};
use serde_json::Value;
use std::time::Duration;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

/// From the watcher's events: (mass-exit L1 transactions, outputs they exited), standard
/// (`massExit`) and batch (`batchMassExit`, EXIT-12) exits together.
fn mass_exits(events: &Value) -> (usize, u64) {
    let txs: Vec<&Value> = events["events"]
        .as_array()
        .map(|ev| {
            ev.iter().filter(|x| x["kind"] == "massExit" || x["kind"] == "batchMassExit").collect()
        })
        .unwrap_or_default();
    let outputs = txs.iter().filter_map(|x| x["outputs"].as_u64().or(x["claims"].as_u64())).sum();
    (txs.len(), outputs)
}

/// Honest chain: ETH and ERC-20 deposits, many transfers between three users, everyone exits
/// everything from their stored proofs, the watcher processes both queues, everyone withdraws.
/// L1 balances end exact to the wei: what each deposited and received on the child chain, minus
/// the bonds' processing bounties and the L1 fees each paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_deposits_transfers_exits_and_withdrawals() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let token = TestToken::deploy(net.provider.clone()).await.unwrap();
    let tok = *token.address();
    token
        .mint(alice.address(), U256::from(1_000))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let start = net.provider.get_block_number().await.unwrap() + 1;
    let mut l1_before = Vec::new();
    for w in [&alice, &bob, &carol] {
        l1_before.push(net.provider.get_balance(w.address()).await.unwrap());
    }

    let dep_eth = alice.deposit_eth(eth(5)).await.unwrap();
    let dep_tok = alice.deposit_erc20(tok, U256::from(600)).await.unwrap();
    alice.wait_for_output(dep_eth, Duration::from_secs(30)).await.unwrap();
    alice.wait_for_output(dep_tok, Duration::from_secs(30)).await.unwrap();
    let transfers = [
        (&alice, &bob, Address::ZERO, eth(2)),
        (&alice, &carol, tok, U256::from(200)),
        (&bob, &carol, Address::ZERO, eth(1)),
        (&carol, &bob, tok, U256::from(50)),
        (&alice, &bob, tok, U256::from(100)),
        (&carol, &alice, Address::ZERO, eth(1) / U256::from(2)),
        (&bob, &alice, tok, U256::from(25)),
        (&alice, &carol, Address::ZERO, eth(1) / U256::from(4)),
    ];
    for (from, to, t, amount) in transfers {
        from.sync().await.unwrap();
        let h = from.send(to.address(), t, amount, U256::ZERO).await.unwrap();
        from.wait_for_commit(h, Duration::from_secs(30)).await.unwrap();
    }
    let quarter = eth(1) / U256::from(4);
    let owed_eth = [eth(3) + quarter, eth(1), eth(1) - quarter];
    let owed_tok = [U256::from(325), U256::from(125), U256::from(150)];
    let mut exits = Vec::new();
    for (i, w) in [&alice, &bob, &carol].into_iter().enumerate() {
        w.sync().await.unwrap();
        assert_eq!(
            (w.balance(Address::ZERO).unwrap(), w.balance(tok).unwrap()),
            (owed_eth[i], owed_tok[i]),
            "child-chain balances of user {i}"
        );
        // Everyone exits everything, both tokens, in one L1 transaction.
        let mut positions: Vec<u128> =
            w.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos).collect();
        positions.extend(w.spendable(tok).unwrap().iter().map(|o| o.utxo_pos));
        w.start_exits(&positions).await.unwrap();
        exits.push(positions.len());
    }
    net.advance(3 * PERIOD).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while framework.totalCredited(Address::ZERO).call().await.unwrap() < eth(5)
        || framework.totalCredited(tok).call().await.unwrap() < U256::from(600)
    {
        assert!(tokio::time::Instant::now() < deadline, "exits not processed\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    let bounty = payouts::se_bounty(bond);
    for (i, w) in [&alice, &bob, &carol].into_iter().enumerate() {
        let bonds_back = payouts::se_back(bond) * U256::from(exits[i]);
        assert_eq!(w.withdrawable(Address::ZERO).await.unwrap(), owed_eth[i] + bonds_back);
        assert_eq!(w.withdrawable(tok).await.unwrap(), owed_tok[i]);
        w.withdraw(Address::ZERO).await.unwrap();
        w.withdraw(tok).await.unwrap();
    }
    // L1 balances, to the wei: only alice deposited; every exit cost its bounty; fees are fees.
    let deposited = [eth(5), U256::ZERO, U256::ZERO];
    for (i, w) in [&alice, &bob, &carol].into_iter().enumerate() {
        let fees = net.fees_paid(w.address(), start).await.unwrap();
        let now = net.provider.get_balance(w.address()).await.unwrap();
        let bounties = bounty * U256::from(exits[i]);
        assert_eq!(
            now,
            l1_before[i] - deposited[i] + owed_eth[i] - bounties - fees,
            "ETH of user {i}"
        );
    }
    for (i, w) in [&alice, &bob, &carol].into_iter().enumerate() {
        let held = token.balanceOf(w.address()).call().await.unwrap();
        let expected = if i == 0 { U256::from(400) + owed_tok[0] } else { owed_tok[i] };
        assert_eq!(held, expected, "tokens of user {i}");
    }
    // The vault keeps exactly the watcher's bounties, which it has not withdrawn.
    let all_exits = U256::from(exits.iter().sum::<usize>());
    assert_eq!(
        framework.withdrawable(net.watcher, Address::ZERO).call().await.unwrap(),
        bounty * all_exits
    );
    assert_eq!(
        net.provider.get_balance(net.deployment.framework).await.unwrap(),
        bounty * all_exits
    );
    assert_eq!(token.balanceOf(net.deployment.framework).call().await.unwrap(), U256::ZERO);
}

/// The operator withholds a block in which it steals carol's deposit and exits the loot; the
/// watcher exits every guarded owner first; the thief gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_block_with_a_theft_every_honest_owner_exits_first() {
    withheld_theft(Devnet::start().await.unwrap()).await;
}

/// The reproduced theft at a 20-second period (Safety II, 1): with the timeouts `scripts/devnet`
/// now derives from the period (availability p/6, fee bump p/10), every guarded owner is still
/// paid first; the old fixed 30 s timeout is refused at start (WATCH-12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_block_with_a_theft_at_a_twenty_second_period() {
    withheld_theft(Devnet::start_with_period(20, 3).await.unwrap()).await;
}

/// A watcher whose reaction time exceeds half the period refuses to start, naming the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_whose_timing_cannot_work_refuses_to_start() {
    let net = Devnet::start_with_period(20, 3).await.unwrap();
    let out = std::process::Command::new(plasma_e2e::bin_dir().join("plasma-watcher"))
        .args(["--l1.rpc-url", &net.anvil.endpoint()])
        .args(["--l1.framework", &net.deployment.framework.to_string()])
        .args(["--availability-timeout", "30", "--l1.block-time", "1", "--stuck-after", "2"])
        .args(["--api.listen", "127.0.0.1:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .env(
            "PLASMA_WATCHER_L1_PRIVATE_KEY",
            format!("0x{}", hex::encode(net.anvil.keys()[8].to_bytes())),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start: {stderr}");
    assert!(stderr.contains("WATCH-12") && stderr.contains("(20s)"), "{stderr}");
}

async fn withheld_theft(mut net: Devnet) {
    let period = net.period;
    let owners =
        [net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap()];
    let amounts = [eth(1), eth(2), eth(3)];
    let mut deposits = Vec::new();
    for (w, a) in owners.iter().zip(amounts) {
        let pos = w.deposit_eth(a).await.unwrap();
        w.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
        deposits.push(pos);
        // Each owner hands the watcher an exit authorization.
        net.guard(w).await.unwrap();
    }
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(3))
        .await
        .unwrap();

    // The operator turns: it stops serving and commits a block stealing carol's deposit.
    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let theft = ByzantineOperator::steal(deposits[2], eth(3), &thief, owners[0].domain()).unwrap();
    let block = net.byzantine_operator().commit_withheld(vec![theft]).await.unwrap();
    // ...and exits the loot, with a valid proof against its own root.
    let tree = plasma_spec::BlockTree::from_txs(&block.txs).unwrap();
    let loot_pos = u128::from(block.blknum) * 1_000_000_000;
    let se = StandardExitGame::new(net.deployment.standard_exit_game, net.provider_for(0));
    let bond = DeployConfig::devnet(Address::ZERO, period).standard_exit_bond;
    se.startStandardExit(StandardExitGame::StartArgs {
        utxoPos: U256::from(loot_pos),
        txBytes: block.txs[0].clone().into(),
        inclusionProof: tree.proof(0).unwrap().to_bytes().into(),
        blockTimestamp: block.timestamp,
    })
    .value(bond)
    .send()
    .await
    .unwrap()
    .get_receipt()
    .await
    .unwrap();

    // The watcher sees the block withheld and exits all three owners.
    net.wait_watcher("mass exit", |_, e| mass_exits(e).1 == 3).await.unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    assert_eq!(mass_exits(&events), (1, 3), "three owners in one L1 transaction");
    let (status, _) = net.watcher_state().await.unwrap();
    assert_eq!(status["status"]["safe"], Value::Bool(false));
    // The thief exited before the verdict; it is reported all the same (Safety II, 3).
    let loot = plasma_spec::UtxoPos::from_u128(loot_pos).unwrap().to_string();
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "exitFromBadBlock"
                && x["utxo_pos"].as_str() == Some(loot.as_str())),
        "the thief's early exit is reported: {events}"
    );

    // Everything comes due; the watcher processes in priority order.
    net.advance(3 * period).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (head, _) = {
            let h = framework.queueHead(Address::ZERO).call().await.unwrap();
            (h.head, h.length)
        };
        if head.is_zero() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "queue not drained\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.wait_batch_payouts().await.unwrap();
    for (w, a) in owners.iter().zip(amounts) {
        assert_eq!(
            w.withdrawable(Address::ZERO).await.unwrap(),
            a,
            "each owner gets exactly what they had"
        );
    }
    // The vault paid exactly the deposits, to their owners: the thief's exit found it empty.
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(6));
    assert_eq!(framework.totalDeposited(Address::ZERO).call().await.unwrap(), eth(6));
    let thief_credit = framework.withdrawable(thief.address(), Address::ZERO).call().await.unwrap();
    assert!(thief_credit < bond, "the thief got at most its bond back, no loot: {thief_credit}");
}

/// A hundred users hold funds when the operator withholds a block: the watcher exits every one of
/// them with their authorizations, all are paid exactly, before anything the bad block enables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_exit_of_a_hundred_users_when_a_block_is_withheld() {
    const USERS: u64 = 100;
    let mut net = Devnet::start().await.unwrap();
    let mut users = Vec::new();
    for i in 0..USERS {
        let key = alloy::signers::local::PrivateKeySigner::from_bytes(
            &alloy::primitives::keccak256(format!("mass exit user {i}")),
        )
        .unwrap();
        net.fund(key.address(), eth(1)).await.unwrap();
        let w = net.wallet_for(key, &format!("user{i}")).await.unwrap();
        // Above the dust line (WATCH-13): a tower never exits outputs worth less than their exit.
        let amount = U256::from(5_000_000_000_000_000u64 * (i + 1));
        let pos = w.deposit_eth(amount).await.unwrap();
        net.guard(&w).await.unwrap();
        users.push((w, pos, amount));
    }
    let last = users.last().map(|u| u.1).unwrap();
    users.last().unwrap().0.wait_for_output(last, Duration::from_secs(60)).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(100))
        .await
        .unwrap();

    net.kill_operator();
    net.byzantine_operator().commit_withheld(Vec::new()).await.unwrap();
    net.wait_watcher("every user exited", |_, e| mass_exits(e).1 == USERS).await.unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    assert_eq!(mass_exits(&events), (1, USERS), "one batch exit (EXIT-12) claims them all");

    net.advance(3 * PERIOD).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let total: U256 = users.iter().map(|u| u.2).sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while framework.totalCredited(Address::ZERO).call().await.unwrap() < total {
        assert!(tokio::time::Instant::now() < deadline, "not all exits processed\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    net.wait_batch_payouts().await.unwrap();
    for (w, _, amount) in &users {
        assert_eq!(w.withdrawable(Address::ZERO).await.unwrap(), *amount);
    }
    assert_eq!(framework.totalDeposited(Address::ZERO).call().await.unwrap(), total);
}

/// What the operator puts in the invalid block it publishes.
#[derive(Clone, Copy, Debug)]
enum Cheat {
    /// Spends a guarded owner's deposit without their signature.
    Theft,
    /// Spends its own 1 ETH deposit into 50 ETH.
    ValueCreation,
    /// Spends its own deposit twice in the block, both validly signed.
    DoubleSpend,
    /// Standard-exits its own deposit, then spends it in a block committed after LEDGER-9's grace
    /// (the reproduced vault drain, by an operator that ignores its own exits), and exits the
    /// spend's output too.
    SpendOfExitedOutput,
}

/// The operator publishes an invalid block of kind `cheat`: the watcher downloads it, finds it
/// invalid (not merely withheld), and exits every guarded owner; all are paid exactly their
/// deposits, and nothing else leaves the vault. Returns the rule the watcher named.
async fn published_invalid_block(cheat: Cheat) -> String {
    let mut net = Devnet::start().await.unwrap();
    let owners = [net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap()];
    let amounts = [eth(2), eth(5)];
    let mut deposits = Vec::new();
    for (w, a) in owners.iter().zip(amounts) {
        let pos = w.deposit_eth(a).await.unwrap();
        w.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
        deposits.push(pos);
        net.guard(w).await.unwrap();
    }
    // The operator's own coin, for the cheats that need one.
    let operator_wallet = net.wallet(0).await.unwrap();
    let own = operator_wallet.deposit_eth(eth(1)).await.unwrap();
    operator_wallet.wait_for_output(own, Duration::from_secs(30)).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(3))
        .await
        .unwrap();

    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let domain = owners[0].domain();
    let spend_own = |to: Address, amount: U256| {
        let tx = plasma_spec::Transaction::payment(
            &[plasma_spec::UtxoPos::from_u128(own).unwrap()],
            vec![plasma_spec::Output::new(to, Address::ZERO, amount)],
            B256::ZERO,
        );
        let sig = thief.sign_tx(domain, &tx);
        plasma_spec::SignedTransaction::new(tx, vec![sig])
    };
    let mut exited_own = U256::ZERO;
    if let Cheat::SpendOfExitedOutput = cheat {
        operator_wallet.start_exits(&[own]).await.unwrap();
        exited_own = eth(1);
        // Past the grace (p/4): from now on no block may spend it (LEDGER-9).
        net.advance(PERIOD / 4 + 1).await.unwrap();
    }
    let txs = match cheat {
        Cheat::SpendOfExitedOutput => vec![spend_own(thief.address(), eth(1))],
        Cheat::Theft => {
            vec![ByzantineOperator::steal(deposits[1], eth(5), &thief, domain).unwrap()]
        }
        Cheat::ValueCreation => vec![spend_own(thief.address(), eth(50))],
        Cheat::DoubleSpend => {
            vec![spend_own(thief.address(), eth(1)), spend_own(Address::repeat_byte(0x77), eth(1))]
        }
    };
    // The block is served first, then committed: it is available from the moment it exists.
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let next = framework.nextChildBlock().call().await.unwrap();
    net.publish_block(next, &txs);
    let served =
        reqwest::get(format!("{}/v1/blocks/{next}", net.watcher_operator_url())).await.unwrap();
    let status = served.status();
    let text = served.text().await.unwrap();
    assert!(status.is_success(), "the byzantine operator serves its block: {status} {text}");
    let block = net.byzantine_operator().commit_withheld(txs).await.unwrap();
    assert_eq!(block.blknum, next);
    if let Cheat::SpendOfExitedOutput = cheat {
        // The thief exits the spend's output from its own block: it exists under a committed root.
        let tree = plasma_spec::BlockTree::from_txs(&block.txs).unwrap();
        let game = StandardExitGame::new(net.deployment.standard_exit_game, net.provider_for(0));
        let bond = game.bondSize().call().await.unwrap();
        let args = StandardExitGame::StartArgs {
            utxoPos: plasma_spec::UtxoPos::new(next, 0, 0).unwrap().to_u256(),
            txBytes: block.txs[0].clone().into(),
            inclusionProof: tree.proof(0).unwrap().to_bytes().into(),
            blockTimestamp: block.timestamp,
        };
        let sent = game.startStandardExit(args).value(bond).send().await.unwrap();
        assert!(sent.get_receipt().await.unwrap().status(), "the thief's exit starts");
    }

    net.wait_watcher("invalid block", |_, e| {
        e["events"]
            .as_array()
            .is_some_and(|ev| ev.iter().any(|x| x["kind"] == "invalidBlock" && x["blknum"] == next))
    })
    .await
    .unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    assert!(
        !events["events"].as_array().unwrap().iter().any(|x| x["kind"] == "blockWithheld"),
        "served, so invalid rather than withheld"
    );
    net.wait_watcher("mass exit", |_, e| mass_exits(e).1 == 2).await.unwrap();
    net.process_all_exits(Address::ZERO).await.unwrap();
    for (w, a) in owners.iter().zip(amounts) {
        assert_eq!(w.withdrawable(Address::ZERO).await.unwrap(), a);
    }
    assert_eq!(
        framework.totalCredited(Address::ZERO).call().await.unwrap(),
        eth(7) + exited_own,
        "only the guarded owners' deposits (and an honest exit) left the vault"
    );
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "invalidBlock")
        .and_then(|x| x["reason"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_block_with_a_theft_is_caught_and_guarded_funds_exit() {
    let reason = published_invalid_block(Cheat::Theft).await;
    assert!(reason.contains("signed by"), "the watcher names the bad signature: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_block_creating_value_is_caught_and_guarded_funds_exit() {
    let reason = published_invalid_block(Cheat::ValueCreation).await;
    assert!(reason.contains("exceed inputs"), "the watcher names the created value: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_block_with_a_double_spend_is_caught_and_guarded_funds_exit() {
    let reason = published_invalid_block(Cheat::DoubleSpend).await;
    assert!(reason.contains("already spent"), "the watcher names the double spend: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_block_spending_an_exited_output_is_caught_and_guarded_funds_exit() {
    // Every deposit (8 ETH) is credited to its owner or the honest exit; the thief's exit of the
    // spend, from a block two periods younger, finds nothing left (CreditShortfall).
    let reason = published_invalid_block(Cheat::SpendOfExitedOutput).await;
    assert!(reason.contains("LEDGER-9"), "the watcher names the exited output: {reason}");
}

/// Faults during traffic: the operator and the watcher are SIGKILLed and restarted while payments
/// flow. Every acknowledged payment is committed exactly once, no root is submitted twice, and
/// the watcher resumes synced and calls the chain safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_watcher_killed_during_traffic_lose_nothing() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let dep = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();

    let mut acknowledged = Vec::new();
    for round in 0..4u64 {
        alice.sync().await.unwrap();
        let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
        acknowledged.push(hash);
        match round {
            1 => {
                net.kill_operator(); // right after acknowledging: the payment must survive
                net.start_operator().await.unwrap();
            }
            2 => net.restart_watcher().await.unwrap(),
            _ => {}
        }
        alice.wait_for_commit(hash, Duration::from_secs(30)).await.unwrap();
    }
    // Each acknowledged payment is in exactly one committed block, and blocks were committed once.
    let next = net.assert_committed_once().await.unwrap();
    bob.sync().await.ok();
    net.wait_watcher("synced and safe", |s, _| {
        s["status"]["safe"] == Value::Bool(true)
            && s["status"]["syncedBlock"].as_u64() >= Some(next - 1000)
    })
    .await
    .unwrap();
    assert_eq!(acknowledged.len(), 4);
}

/// The operator takes alice's payment to bob, then turns: it commits a block holding that payment
/// and a theft of carol's deposit, serves it to nobody, and exits the loot **in flight** (a
/// payment of the stolen coin to itself, with a valid proof against its own root). Alice and bob,
/// who never saw their payment's block, exit it in flight with the SDK; the watcher mass-exits
/// carol, whom it guards. Every honest claim is older than the withheld block, so all are paid
/// first; the thief's claim finds the vault empty and it gets back only its bonds, minus
/// bounties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_in_flight_payment_honest_in_flight_exits_beat_the_thief() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let dep_a = alice.deposit_eth(eth(5)).await.unwrap();
    let dep_c = carol.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep_a, Duration::from_secs(30)).await.unwrap();
    carol.wait_for_output(dep_c, Duration::from_secs(30)).await.unwrap();
    net.guard(&carol).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(2))
        .await
        .unwrap();

    // alice signs 2 ETH to bob (3 back to herself); the operator commits it beside its theft.
    net.kill_operator();
    let payment = alice.build_payment(bob.address(), Address::ZERO, eth(2), U256::ZERO).unwrap();
    let thief_key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
            .unwrap();
    let theft = ByzantineOperator::steal(dep_c, eth(3), &thief_key, alice.domain()).unwrap();
    let block =
        net.byzantine_operator().commit_withheld(vec![payment.clone(), theft]).await.unwrap();

    // The thief pays the loot (output 0 of tx 1) to itself, signed by itself, and exits that in
    // flight: its input is "included", in the block it withholds.
    let loot_pos =
        plasma_spec::UtxoPos::from_u128(u128::from(block.blknum) * 1_000_000_000 + 10_000).unwrap();
    let laundering = plasma_spec::Transaction::payment(
        &[loot_pos],
        vec![plasma_spec::Output::new(thief_key.address(), Address::ZERO, eth(3))],
        B256::ZERO,
    );
    let tree = plasma_spec::BlockTree::from_txs(&block.txs).unwrap();
    let thief_ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider_for(0));
    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    thief_ife
        .startInFlightExit(InFlightExitGame::StartArgs {
            inFlightTx: laundering.encode().into(),
            inputTxs: vec![block.txs[1].clone().into()],
            inputUtxoPos: vec![loot_pos.to_u256()],
            inputProofs: vec![tree.proof(1).unwrap().to_bytes().into()],
            inputBlockTimestamps: vec![block.timestamp],
            signatures: vec![thief_key.sign_tx(alice.domain(), &laundering)],
        })
        .value(config.in_flight_exit_bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let laundering_id = U256::from_be_bytes(laundering.hash().0);
    thief_ife
        .piggybackOutput(laundering_id, 0)
        .value(config.piggyback_bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // The honest side: the watcher exits carol; alice and bob exit their payment in flight.
    net.wait_watcher("mass exit", |_, e| mass_exits(e).1 == 1).await.unwrap();
    alice.start_in_flight_exit(&payment).await.unwrap();
    let paid = payment.transaction.hash();
    bob.piggyback(paid, true, 0).await.unwrap();
    alice.piggyback(paid, true, 1).await.unwrap();

    net.process_all_exits(Address::ZERO).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let cut = payouts::ife_back;
    let (ife_bond, pb_bond) = (config.in_flight_exit_bond, config.piggyback_bond);
    assert_eq!(carol.withdrawable(Address::ZERO).await.unwrap(), eth(3), "carol, in full");
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(2) + cut(pb_bond));
    assert_eq!(
        alice.withdrawable(Address::ZERO).await.unwrap(),
        eth(3) + cut(pb_bond) + cut(ife_bond),
        "alice: her change, her piggyback bond and her exit bond, minus bounties"
    );
    let thief = framework.withdrawable(thief_key.address(), Address::ZERO).call().await.unwrap();
    assert_eq!(thief, cut(pb_bond) + cut(ife_bond), "the thief gets its bonds back, no loot");
    // The watcher: its batch exit's bonds back (the claim bond whole, the batch bond minus the
    // bounty it earns itself, EXIT-14), and every processing bounty.
    let bounties = (payouts::ife_bounty(ife_bond) + payouts::ife_bounty(pb_bond)) * U256::from(2)
        + payouts::ife_bounty(pb_bond);
    assert_eq!(
        framework.withdrawable(net.watcher, Address::ZERO).call().await.unwrap(),
        config.batch_exit_bond + config.claim_bond + bounties
    );
    assert_eq!(
        framework.totalCredited(Address::ZERO).call().await.unwrap(),
        framework.totalDeposited(Address::ZERO).call().await.unwrap(),
        "the vault paid exactly the deposits, all of them to honest owners"
    );
}

/// WATCH-6, WATCH-9, EXIT-9: alice, guarded, hands the watcher a payment to bob before she knows
/// it is included. The operator commits it in a withheld block beside a theft of carol's deposit.
/// The watcher exits carol's deposit, but not alice's (a standard exit of it would make her
/// payment non-canonical and cost bob): it starts the payment's in-flight exit for alice with her
/// authorization (`startInFlightExitFor`), and piggybacks for alice and bob, who stay offline,
/// alice's input and both outputs with their authorizations. Everyone honest is paid exactly;
/// every bond is the tower's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_in_flight_payment_is_exited_in_flight_by_the_watcher() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let dep_a = alice.deposit_eth(eth(5)).await.unwrap();
    let dep_c = carol.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep_a, Duration::from_secs(30)).await.unwrap();
    carol.wait_for_output(dep_c, Duration::from_secs(30)).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(2))
        .await
        .unwrap();

    net.kill_operator();
    let payment = alice.build_payment(bob.address(), Address::ZERO, eth(2), U256::ZERO).unwrap();
    // Refused until alice is guarded; garbage is refused with a typed error.
    let refused = alice.hand_in_flight_to_watchtower(&net.watcher_url, &payment).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("InvalidInFlight")));
    let garbage = reqwest::Client::new()
        .post(format!("{}/v1/guards/in-flight", net.watcher_url))
        .body("{\"tx\": \"0x1234\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 422);
    for w in [&alice, &bob, &carol] {
        net.guard(w).await.unwrap();
    }
    alice.hand_in_flight_to_watchtower(&net.watcher_url, &payment).await.unwrap();

    let thief_key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
            .unwrap();
    let theft = ByzantineOperator::steal(dep_c, eth(3), &thief_key, alice.domain()).unwrap();
    net.byzantine_operator().commit_withheld(vec![payment.clone(), theft]).await.unwrap();

    net.wait_watcher("in-flight exit started for alice", |_, e| {
        e["events"]
            .as_array()
            .is_some_and(|ev| ev.iter().any(|x| x["kind"] == "guardedInFlightExitStarted"))
    })
    .await
    .unwrap();
    net.wait_watcher("carol exited", |_, e| mass_exits(e).1 == 1).await.unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    assert_eq!(mass_exits(&events), (1, 1), "carol's deposit only, not alice's spent one");
    // alice and bob stay offline: the tower piggybacks for them, in phase 1.
    let paid = payment.transaction.hash();
    let exit_id = U256::from_be_bytes(paid.0);
    let ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider.clone());
    let all = 1u16 | (1 << 5) | (1 << 6); // alice's input, bob's output, alice's change
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = ife.inFlightExit(exit_id).call().await.unwrap();
        if state.piggybacks == all {
            assert_eq!(state.initiator, net.watcher, "the tower started it, with its bond");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "piggybacks {:#b}\n{}",
            state.piggybacks,
            net.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let piggybacked = ife.InFlightExitPiggybacked_filter().from_block(0).query().await.unwrap();
    assert_eq!(piggybacked.len(), 3);
    for (ev, log) in &piggybacked {
        let tx = log.transaction_hash.unwrap();
        let sent = net.provider.get_transaction_by_hash(tx).await.unwrap().unwrap();
        assert_eq!(sent.inner.signer(), net.watcher, "the tower piggybacked for {}", ev.owner);
        let owners = [alice.address(), bob.address()];
        assert!(owners.contains(&ev.owner), "an item of alice's or bob's");
    }
    // ...and tells the owners what it claimed for them.
    let (_, events) = net.watcher_state().await.unwrap();
    let told = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "guardedPiggyback")
        .count();
    assert_eq!(told, 3, "one guardedPiggyback event per claim: {events}");

    net.process_all_exits(Address::ZERO).await.unwrap();
    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    let (ife_bond, pb_bond) = (config.in_flight_exit_bond, config.piggyback_bond);
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(2), "bob: his output, exactly");
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), eth(3), "alice: her change");
    assert_eq!(carol.withdrawable(Address::ZERO).await.unwrap(), eth(3));
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let (back, bounty) = (payouts::ife_back, payouts::ife_bounty);
    let three = U256::from(3);
    // Carol's output left by the tower's batch exit: its batch bond (whose bounty the tower earns
    // itself) and claim bond come back whole (EXIT-14).
    let bonds_back =
        config.batch_exit_bond + config.claim_bond + back(ife_bond) + back(pb_bond) * three;
    let bounties = bounty(ife_bond) + bounty(pb_bond) * three;
    assert_eq!(
        framework.withdrawable(net.watcher, Address::ZERO).call().await.unwrap(),
        bonds_back + bounties,
        "the tower's bonds back (carol's batch exit, the in-flight exit, three piggybacks), and every bounty"
    );
    assert_eq!(
        framework.totalCredited(Address::ZERO).call().await.unwrap(),
        framework.totalDeposited(Address::ZERO).call().await.unwrap()
    );
}

/// WATCH-9, EXIT-6: bob, the recipient, starts the in-flight exit of alice's guarded payment on a
/// healthy chain and lets it lapse; anyone deletes it after phase 1 (nothing piggybacked); then the
/// operator includes the payment in a withheld block. The deletion freed the payment, so the tower
/// starts its exit again for alice and piggybacks for alice and bob: both are paid exactly. (The
/// watcher used to take any started exit as done and left the owners with nothing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_in_flight_exit_of_a_guarded_payment_is_started_again_by_the_watcher() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let dep_a = alice.deposit_eth(eth(5)).await.unwrap();
    alice.wait_for_output(dep_a, Duration::from_secs(30)).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(1))
        .await
        .unwrap();
    for w in [&alice, &bob] {
        net.guard(w).await.unwrap();
    }
    let exit_data: Value = reqwest::get(format!("{}/v1/utxos/{dep_a}/exit-data", net.operator_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let field = |k: &str| -> Bytes {
        hex::decode(exit_data[k].as_str().unwrap().trim_start_matches("0x")).unwrap().into()
    };
    net.kill_operator();
    let payment = alice.build_payment(bob.address(), Address::ZERO, eth(2), U256::ZERO).unwrap();
    alice.hand_in_flight_to_watchtower(&net.watcher_url, &payment).await.unwrap();

    // bob starts it (a party may, EXIT-6), nobody piggybacks, and it is deleted after phase 1.
    let exit_id = U256::from_be_bytes(payment.transaction.hash().0);
    let ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider.clone());
    let bob_ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider_for(2));
    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    bob_ife
        .startInFlightExit(InFlightExitGame::StartArgs {
            inFlightTx: payment.transaction.encode().into(),
            inputTxs: vec![field("txBytes")],
            inputUtxoPos: vec![U256::from(dep_a)],
            inputProofs: vec![field("inclusionProof")],
            inputBlockTimestamps: vec![exit_data["blockTimestamp"].as_u64().unwrap()],
            signatures: payment.signatures.clone(),
        })
        .value(config.in_flight_exit_bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let first = ife.inFlightExit(exit_id).call().await.unwrap();
    assert_eq!(first.initiator, bob.address());
    net.advance(PERIOD / 2 + 1).await.unwrap();
    let deleted = ife.deleteNonPiggybackedInFlightExit(exit_id).send().await.unwrap();
    assert!(deleted.get_receipt().await.unwrap().status());
    assert_eq!(ife.inFlightExit(exit_id).call().await.unwrap().verdict, 3, "deleted");

    // Now the operator includes it in a block it withholds: the chain is byzantine.
    net.byzantine_operator().commit_withheld(vec![payment.clone()]).await.unwrap();
    let all = 1u16 | (1 << 5) | (1 << 6); // alice's input, bob's output, alice's change
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = ife.inFlightExit(exit_id).call().await.unwrap();
        if state.verdict == 0 && state.piggybacks == all {
            assert_eq!(state.initiator, net.watcher, "the tower started it again");
            assert!(state.startedAt > first.startedAt, "a fresh exit");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not restarted\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    net.process_all_exits(Address::ZERO).await.unwrap();
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(2) + config.in_flight_exit_bond);
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), eth(3), "alice: her change");
}

/// The CLI wallet, guarded, sends with `--watcher.url`: the payment reaches the watcher whether
/// or not the operator was quicker to include it (then there is nothing to keep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_send_hands_the_payment_to_the_watcher() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    net.guard(&alice).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plasma = |args: &[&str]| {
        let key = format!("0x{}", hex::encode(net.anvil.keys()[1].to_bytes()));
        std::process::Command::new(plasma_e2e::bin_dir().join("plasma"))
            .args(["--json", "--l1.rpc-url", &net.anvil.endpoint()])
            .args(["--operator.url", &net.operator_url])
            .args(["--framework", &net.deployment.framework.to_string()])
            .args(["--store", dir.path().join("cli.redb").to_str().unwrap(), "--private-key", &key])
            .args(args)
            .output()
            .unwrap()
    };
    let out = plasma(&["deposit", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut synced = false;
    for _ in 0..200 {
        let out = plasma(&["sync"]);
        let balance = plasma(&["balance"]);
        if out.status.success()
            && String::from_utf8_lossy(&balance.stdout).contains("2000000000000000000")
        {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(synced, "the deposit never showed up\n{}", net.logs());
    let bob_address = bob.address().to_string();
    let out = plasma(&["send", &bob_address, "1", "--watcher.url", &net.watcher_url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("holds the payment"), "{stderr}");
}

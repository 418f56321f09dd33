//! The watcher against a real anvil, the real contracts and the real operator: it challenges an
//! exit of a spent output by itself, and when the operator withholds a block it exits the funds
//! it guards with their owner's authorization.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
};
use plasma_contracts::{DeployConfig, PlasmaFramework, StandardExitGame};
use plasma_operator::Node;
use plasma_testkit::{Env, PERIOD, env, eth, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use serde_json::{Value, json};
use std::time::Duration;

async fn watcher(env: &Env, node: &Node) -> plasma_watcher::Running {
    watcher_via(env, node, env.anvil.endpoint_url()).await
}

/// [`watcher`], reaching L1 at `l1` (a proxy in front of anvil).
async fn watcher_via(env: &Env, node: &Node, l1: reqwest::Url) -> plasma_watcher::Running {
    let w = new_watcher(env, node, l1).await;
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// The tests' watcher (account 5, quick polls) reaching L1 at `l1`, not started.
async fn new_watcher(env: &Env, node: &Node, l1: reqwest::Url) -> Watcher {
    new_watcher_polling(env, node, l1, Duration::from_millis(50)).await
}

/// [`new_watcher`] waiting `poll` between its steps.
async fn new_watcher_polling(env: &Env, node: &Node, l1: reqwest::Url, poll: Duration) -> Watcher {
    let key = key(env, 5);
    let me = key.address();
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(l1).erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll,
        availability_timeout: Duration::from_millis(400),
        process_exits: true,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    Watcher::new(settings, me, provider, &env.dir.path().join("watcher")).await.unwrap()
}

/// One ETH deposited straight to the framework for account 0 (a wallet wants L1's block 0, which
/// a chain started past genesis lacks); the L1 block it landed in.
async fn deposit_one_eth(env: &Env) -> u64 {
    let deposit = plasma_spec::Transaction::deposit(key(env, 0).address(), Address::ZERO, eth(1));
    let receipt = PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .depositEth(deposit.encode().into())
        .value(eth(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    receipt.block_number.unwrap()
}

/// Waits (with a deadline) until the watcher has recorded an event matching `f`.
async fn wait_event(w: &plasma_watcher::Running, f: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(e) = w.watcher.events().into_iter().find(|e| f(e)) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such event; have {:?}",
            w.watcher.events()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_an_exit_of_a_spent_output_by_itself() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();

    // alice now tries to exit the deposit she spent.
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    wait_event(&w, |e| matches!(e, Event::Challenged { .. })).await;
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    assert_eq!(
        se.exits(U256::from(dep)).call().await.unwrap().status,
        2,
        "the exit was challenged"
    );
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    // The challenger's reward is half the bond; the other half is burned (BOND-1).
    assert_eq!(
        framework.withdrawable(w.watcher.address(), Address::ZERO).call().await.unwrap(),
        bond / U256::from(2)
    );
    assert!(w.watcher.status().safe);
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_guarded_funds_when_the_operator_withholds_a_block() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth * U256::from(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();

    // bob asks the watcher to guard him.
    let (auth, sig) = bob.authorize_watchtower(w.watcher.address(), 2_000_000_000).await.unwrap();
    let body = json!({"owner": bob.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/guards", w.addr))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let forged = json!({"owner": alice.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/guards", w.addr))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422, "an authorization signed by someone else is refused");
    assert!(w.watcher.status().safe);

    // The operator goes byzantine: it commits a root and serves nothing.
    node.stop().await;
    // A fresh provider for the operator key: the shared one cached nonces the operator used since.
    let op = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key(&env, 0)))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let framework = PlasmaFramework::new(env.deployment.framework, op);
    framework
        .submitBlock(U256::from(2000u64), B256::repeat_byte(0x66))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    wait_event(&w, |e| matches!(e, Event::BlockWithheld { blknum: 2000 })).await;
    // WATCH-9: bob's output is claimed in a batch exit (EXIT-12), in his name.
    wait_event(&w, |e| matches!(e, Event::BatchMassExit { claims: 1, owners: 1, .. })).await;
    assert!(!w.watcher.status().safe);
    let batch =
        plasma_contracts::BatchExitGame::new(env.deployment.batch_exit_game, env.provider.clone());
    assert_eq!(
        batch.claimedUpTo(bob.address(), Address::ZERO).call().await.unwrap(),
        U256::from(1000u64 * 1_000_000_000),
        "bob's output is claimed, for bob"
    );
    let (status, body): (u16, Value) = {
        let r = reqwest::get(format!("http://{}/status", w.addr)).await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(body["status"]["byzantineFrom"], 2000);

    // Once due, the watcher processes the batch and pays its claim out itself: bob is paid.
    env.provider.raw_request::<_, Value>("evm_increaseTime".into(), (3 * PERIOD,)).await.unwrap();
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    wait_event(&w, |e| matches!(e, Event::ExitsProcessed { .. })).await;
    wait_event(&w, |e| matches!(e, Event::BatchPaidOut { claims: 1, .. })).await;
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(framework.withdrawable(bob.address(), Address::ZERO).call().await.unwrap(), eth);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_an_in_flight_exit_of_a_double_spend_and_its_piggybacked_input() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();

    // alice signs a second spend of the same deposit and exits it in flight, claiming the input back.
    let alice_key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&env.anvil.keys()[1].to_bytes()))
            .unwrap();
    let pos = plasma_spec::UtxoPos::from_u128(dep).unwrap();
    let double = plasma_spec::Transaction::payment(
        &[pos],
        vec![plasma_spec::Output::new(alice.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed = plasma_spec::SignedTransaction::new(
        double.clone(),
        vec![alice_key.sign_tx(alice.domain(), &double)],
    );
    alice.start_in_flight_exit_unchecked(&signed).await.unwrap();
    alice.piggyback(double.hash(), false, 0).await.unwrap();

    wait_event(&w, |e| matches!(e, Event::InFlightExitChallenged { .. })).await;
    wait_event(&w, |e| matches!(e, Event::PiggybackChallenged { input_index: 0, .. })).await;
    let ife = plasma_contracts::InFlightExitGame::new(
        env.deployment.in_flight_exit_game,
        env.provider.clone(),
    );
    let state = ife.inFlightExit(U256::from_be_bytes(double.hash().0)).call().await.unwrap();
    assert!(state.nonCanonical, "marked non-canonical by the watcher");
    assert_eq!(state.piggybacks, 0, "the piggybacked input was challenged away");
    // Canonicity challenges close 30 s after the start here, inside the 30 s margin: alerted.
    wait_event(
        &w,
        |e| matches!(e, Event::DeadlineTight { seconds_left, .. } if *seconds_left <= 30),
    )
    .await;
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_watcher_does_not_challenge_twice() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    wait_event(&w, |e| matches!(e, Event::Challenged { .. })).await;
    w.stop().await;
    let sent_before = env.provider.get_transaction_count(key(&env, 5).address()).await.unwrap();

    // Same data directory: it resumes from its store (no replay), and stays quiet.
    let w = watcher(&env, &node).await;
    assert!(w.watcher.status().synced_block >= 1000, "resumed at once: {:?}", w.watcher.status());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.watcher.status().synced_block < 1000 || w.watcher.status().exits_watched != 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.status());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The first life's events survived; no new challenge was sent.
    let challenged =
        w.watcher.events().iter().filter(|e| matches!(e, Event::Challenged { .. })).count();
    assert_eq!(challenged, 1, "{:?}", w.watcher.events());
    assert_eq!(
        env.provider.get_transaction_count(key(&env, 5).address()).await.unwrap(),
        sent_before
    );
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_a_false_canonicity_challenge_with_the_inclusion() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();

    // The payment is included, but alice exits it in flight, then "challenges" it with a second
    // spend she signs now and never gets included.
    let paid = alice.sent_transaction(hash).unwrap();
    alice.start_in_flight_exit_unchecked(&paid).await.unwrap();
    let alice_key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&env.anvil.keys()[1].to_bytes()))
            .unwrap();
    let pos = plasma_spec::UtxoPos::from_u128(dep).unwrap();
    let competitor = plasma_spec::Transaction::payment(
        &[pos],
        vec![plasma_spec::Output::new(alice.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let ife = plasma_contracts::InFlightExitGame::new(
        env.deployment.in_flight_exit_game,
        env.provider.clone(),
    );
    let args = plasma_contracts::InFlightExitGame::CompetitorArgs {
        exitId: U256::from_be_bytes(hash.0),
        inputIndex: 0,
        competingTx: competitor.encode().into(),
        competitorInputIndex: 0,
        competitorSignature: alice_key.sign_tx(alice.domain(), &competitor),
        competitorTxPos: U256::ZERO,
        competitorProof: alloy::primitives::Bytes::new(),
        competitorBlockTimestamp: 0,
    };
    let mallory = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key(&env, 3)))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    plasma_contracts::InFlightExitGame::new(env.deployment.in_flight_exit_game, mallory)
        .challengeInFlightExitNotCanonical(args)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    wait_event(&w, |e| matches!(e, Event::InFlightExitDefended { .. })).await;
    let state = ife.inFlightExit(U256::from_be_bytes(hash.0)).call().await.unwrap();
    assert!(!state.nonCanonical, "canonical again after the watcher's response");
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_a_piggybacked_output_that_was_spent() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = key(&env, 3).address();
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(20)).await.unwrap();
    bob.wait_for_output(u128::from(blknum) * 1_000_000_000, Duration::from_secs(20)).await.unwrap();
    let spent = bob.send(carol, Address::ZERO, eth, U256::ZERO).await.unwrap();
    bob.wait_for_commit(spent, Duration::from_secs(20)).await.unwrap();

    // The included payment is exited in flight, and bob claims its output he already spent.
    alice.start_in_flight_exit_unchecked(&alice.sent_transaction(paid).unwrap()).await.unwrap();
    bob.piggyback(paid, true, 0).await.unwrap();

    wait_event(&w, |e| matches!(e, Event::OutputPiggybackChallenged { output_index: 0, .. })).await;
    let ife = plasma_contracts::InFlightExitGame::new(
        env.deployment.in_flight_exit_game,
        env.provider.clone(),
    );
    let state = ife.inFlightExit(U256::from_be_bytes(paid.0)).call().await.unwrap();
    assert_eq!(state.piggybacks, 0, "bob's piggyback of a spent output was removed");
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_challenge_is_re_sent_with_a_higher_fee_and_lands_once() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let watcher_nonce = env.provider.get_transaction_count(w.watcher.address()).await.unwrap();

    // L1 stops mining before alice's dishonest exit and mines exactly its block: the watcher's
    // challenge can only come after, into a pool nothing mines. (Stopping it after the exit
    // raced a quick watcher, whose challenge was mined before the switch.)
    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (false,)).await.unwrap();
    let pending_of = |who: String| {
        let provider = env.provider.clone();
        async move {
            let pool: Value = provider.raw_request("txpool_content".into(), ()).await.unwrap();
            pool["pending"].as_object().and_then(|m| {
                m.iter().find(|(k, _)| k.to_lowercase() == who).and_then(|(_, txs)| {
                    txs.as_object()?.values().next()?["gasPrice"]
                        .as_str()
                        .map(|p| u128::from_str_radix(p.trim_start_matches("0x"), 16).unwrap())
                })
            })
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alice_key = alice.address().to_string().to_lowercase();
    let mine_the_exit = async {
        while pending_of(alice_key.clone()).await.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "alice's exit never reached the pool");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    };
    let exits = [dep];
    let (started, ()) = tokio::join!(alice.start_exits_unchecked(&exits), mine_the_exit);
    started.unwrap();
    // Its challenge sits in the pool and is replaced with a higher fee (same nonce) while stuck.
    let watcher_key = w.watcher.address().to_string().to_lowercase();
    let pending_price = || pending_of(watcher_key.clone());
    let first = loop {
        if let Some(p) = pending_price().await {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "no challenge in the pool");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    loop {
        if pending_price().await.is_some_and(|p| p > first) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stuck challenge was never re-priced");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // ...and lands exactly once when mining resumes.
    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (true,)).await.unwrap();
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    wait_event(&w, |e| matches!(e, Event::Challenged { .. })).await;
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    assert_eq!(se.exits(U256::from(dep)).call().await.unwrap().status, 2);
    assert_eq!(
        env.provider.get_transaction_count(w.watcher.address()).await.unwrap(),
        watcher_nonce + 1,
        "one challenge transaction mined, not several"
    );
    w.stop().await;
    node.stop().await;
}

/// WATCH-1: L1 reorganises away the block of the watcher's challenge (and of the exit's start,
/// which the new chain includes again). The watcher notices, reads again from the common
/// ancestor, finds its challenge gone and the exit active again, and challenges once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_dropped_by_an_l1_reorg_is_sent_again() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let exit_tx = alice.start_exits_unchecked(&[dep]).await.unwrap();
    let first = wait_event(&w, |e| matches!(e, Event::Challenged { .. })).await;

    // Replace every block from the exit's start on; the new chain has the start again, not the
    // challenge.
    let raw: alloy::primitives::Bytes =
        env.provider.raw_request("eth_getRawTransactionByHash".into(), (exit_tx,)).await.unwrap();
    let started_in =
        env.provider.get_transaction_receipt(exit_tx).await.unwrap().unwrap().block_number.unwrap();
    let head = env.provider.get_block_number().await.unwrap();
    env.provider
        .raw_request::<_, Value>("anvil_reorg".into(), (head - started_in + 1, json!([[raw, 0]])))
        .await
        .unwrap();
    let Event::Challenged { l1_tx: first_tx, .. } = first else { unreachable!() };
    assert!(
        env.provider.get_transaction_receipt(first_tx).await.unwrap().is_none(),
        "the reorganisation dropped the first challenge"
    );

    wait_event(&w, |e| matches!(e, Event::ActionLost { l1_tx, .. } if *l1_tx == first_tx)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.watcher.events().iter().filter(|e| matches!(e, Event::Challenged { .. })).count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.events());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    assert_eq!(se.exits(U256::from(dep)).call().await.unwrap().status, 2, "challenged again");
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    assert_eq!(
        framework.withdrawable(w.watcher.address(), Address::ZERO).call().await.unwrap(),
        bond / U256::from(2),
        "one reward (half a bond, BOND-1): the challenge that stands is the only one"
    );
    assert!(w.watcher.events().iter().any(|e| matches!(e, Event::L1Reorg { .. })));
    w.stop().await;
    node.stop().await;
}

/// An L1 endpoint in front of anvil that, once armed, swaps two applied deposits by a
/// reorganisation at one exact moment: just before it answers the first request for a block
/// newer than `above`. That is the watcher reading the hash of a step's last block, which is
/// where a reorganisation once went unseen (the check came before that read).
struct ReorgProxy {
    url: String,
    arm: std::sync::Arc<parking_lot::Mutex<Option<Arm>>>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

struct Arm {
    above: u64,
    /// The first L1 block the reorganisation replaces.
    from: u64,
    /// `anvil_reorg`'s transactions: `[[raw, block offset], …]`.
    txs: Value,
}

impl ReorgProxy {
    async fn start(anvil: String) -> Self {
        use warp::Filter;
        let arm = std::sync::Arc::new(parking_lot::Mutex::new(None::<Arm>));
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = reqwest::Client::new();
        let (a, f) = (arm.clone(), fired.clone());
        let route =
            warp::post().and(warp::body::bytes()).then(move |body: bytes::Bytes| {
                let (arm, fired, client, anvil) =
                    (a.clone(), f.clone(), client.clone(), anvil.clone());
                async move {
                    let rpc = |method: &str, params: Value| {
                        let req =
                            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                        let call = client.post(&anvil).json(&req).send();
                        async move {
                            call.await.unwrap().json::<Value>().await.unwrap()["result"].clone()
                        }
                    };
                    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let asked = (req["method"] == "eth_getBlockByNumber")
                        .then(|| req["params"][0].as_str())
                        .flatten()
                        .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok());
                    let due = {
                        let mut arm = arm.lock();
                        match (asked, arm.as_ref()) {
                            (Some(n), Some(a)) if n > a.above => arm.take(),
                            _ => None,
                        }
                    };
                    if let Some(due) = due {
                        let head = rpc("eth_blockNumber", json!([])).await;
                        let head = u64::from_str_radix(
                            head.as_str().unwrap().trim_start_matches("0x"),
                            16,
                        )
                        .unwrap();
                        rpc("anvil_reorg", json!([head - due.from + 1, due.txs])).await;
                        fired.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    let answer =
                        client.post(&anvil).body(body).header("content-type", "application/json");
                    let answer = answer.send().await.unwrap().bytes().await.unwrap();
                    warp::http::Response::builder()
                        .header("content-type", "application/json")
                        .body(answer.to_vec())
                        .unwrap()
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { url, arm, fired }
    }
}

/// WATCH-1, LEDGER-7: L1 swaps two deposits the watcher has applied, and the reorganisation
/// lands inside a step, between the watcher's reorg check and its read of the step's last
/// block hash. The watcher must still see it and call the chain unsafe. (Before the fix the
/// check came first, the new chain's hash was stored over the old chain's cursor, and the
/// watcher stayed `safe` for good; CI caught it under load.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_inside_a_follow_step_that_swaps_applied_deposits_is_seen() {
    let env = env().await;
    let node = operator(&env).await;
    let proxy = ReorgProxy::start(env.anvil.endpoint_url().to_string()).await;
    let w = watcher_via(&env, &node, proxy.url.parse().unwrap()).await;

    // Two deposits, in two L1 blocks; a fixed gas limit, as an estimate could fall short when
    // they are replayed in the other order.
    let milli = U256::from(10).pow(U256::from(15));
    let mut sent = Vec::new();
    for (i, amount) in [(1, milli * U256::from(1000)), (2, milli * U256::from(2000))] {
        let signer = key(&env, i);
        let owner = signer.address();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(env.anvil.endpoint_url());
        let framework = PlasmaFramework::new(env.deployment.framework, provider);
        let tx = plasma_spec::Transaction::deposit(owner, Address::ZERO, amount).encode();
        let call = framework.depositEth(tx.into()).value(amount).gas(300_000);
        sent.push(call.send().await.unwrap().get_receipt().await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.watcher.status().synced_block < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.status());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(w.watcher.status().safe);
    let raw = |h: B256| {
        let p = env.provider.clone();
        async move {
            p.raw_request::<_, alloy::primitives::Bytes>("eth_getRawTransactionByHash".into(), (h,))
                .await
                .unwrap()
        }
    };
    let (raw_a, raw_b) = (raw(sent[0].transaction_hash).await, raw(sent[1].transaction_hash).await);
    *proxy.arm.lock() = Some(Arm {
        above: env.provider.get_block_number().await.unwrap(),
        from: sent[0].block_number.unwrap(),
        txs: json!([[raw_b, 0], [raw_a, 1]]),
    });
    // The next step reads a block above `above`: the reorganisation lands at that read.
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();

    let invalid = wait_event(
        &w,
        |e| matches!(e, Event::InvalidBlock { reason, .. } if reason.contains("LEDGER-7")),
    )
    .await;
    assert!(proxy.fired.load(std::sync::atomic::Ordering::SeqCst), "the reorganisation happened");
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let owners: Vec<Address> = framework
        .DepositCreated_filter()
        .from_block(0)
        .query()
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.owner)
        .collect();
    assert_eq!(owners, vec![key(&env, 2).address(), key(&env, 1).address()], "swapped");
    assert!(matches!(invalid, Event::InvalidBlock { blknum: 1 | 2, .. }), "{invalid:?}");
    assert!(!w.watcher.status().safe, "{:?}", w.watcher.status());
    assert!(w.watcher.events().iter().any(|e| matches!(e, Event::L1Reorg { .. })));
    w.stop().await;
    node.stop().await;
}

/// WATCH-1 on a long L1: a public chain has millions of blocks before the deployment, and a
/// watcher that read them from genesis, 2,000 blocks a step, was blind for hours on its first
/// start (here: 10 steps before it reached the contracts). It reads from the framework's
/// `deploymentBlock()` instead, so its very first step already sees the deposit made after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_reads_l1_from_the_deployment_block_not_from_genesis() {
    // Ten of the watcher's log ranges before the deployment: the chain's genesis block is number
    // 20,000 (mining that many blocks takes anvil minutes).
    let before = 20_000u64;
    let anvil = plasma_contracts::devnet::anvil()
        .args(["--number", &before.to_string()])
        .try_spawn()
        .unwrap();
    let deployer: alloy::signers::local::PrivateKeySigner = anvil.keys()[0].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    let deployment = plasma_contracts::deploy(
        provider.clone(),
        &DeployConfig::devnet(deployer.address(), PERIOD),
    )
    .await
    .unwrap();
    let env = Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() };
    let created = PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .deploymentBlock()
        .call()
        .await
        .unwrap();
    assert!(created > before, "created at {created}");
    let node = operator(&env).await;
    let deposited_at = deposit_one_eth(&env).await;

    // The watcher reaches L1 through a proxy that records where its log reads start.
    let (proxy, lowest) =
        plasma_contracts::rpc_proxy::start_logs_from(env.anvil.endpoint()).await.unwrap();
    let w = new_watcher(&env, &node, proxy.parse().unwrap()).await;
    w.step().await.unwrap();
    let cursor = w.status().l1_cursor;
    assert!(
        cursor >= deposited_at,
        "one step read L1 up to {cursor}, the deposit is at {deposited_at}"
    );
    let lowest = lowest.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        lowest >= created && lowest != u64::MAX,
        "a log read started at {lowest}, below {created}"
    );
    node.stop().await;
}

/// WATCH-1: a watcher more than one log range (2,000 blocks) behind L1 reads range after range
/// without its poll's wait between them. With a 28 s poll (the longest WATCH-12 allows at the
/// tests' 60 s period) it reaches a deposit made 2,100 blocks after the deployment within 20 s;
/// reading one range a poll (what it did before) leaves it a poll short of it.
#[tokio::test]
async fn a_watcher_far_behind_reads_range_after_range_without_waiting_for_its_poll() {
    let env = env().await;
    let node = operator(&env).await;
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (2_100u64,)).await.unwrap();
    let deposited_at = deposit_one_eth(&env).await;
    let w =
        new_watcher_polling(&env, &node, env.anvil.endpoint_url(), Duration::from_secs(28)).await;
    let running = plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = running.watcher.status();
        if status.l1_cursor >= deposited_at && status.synced_block >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "L1 read up to {}, the deposit is at {deposited_at}; synced to {}",
            status.l1_cursor,
            status.synced_block
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    node.stop().await;
}

//! Batch exits and the watcher (WATCH-9, WATCH-16) against a real anvil, the real contracts and
//! the real operator: the mass exit claims guarded outputs in batches and pays every owner after
//! processing; invalid, spent and unproven claims of anyone's batches are defeated by the watcher
//! by itself; a demand on an honest claim is answered.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use plasma_contracts::{BatchExitGame, IBatchExitGame, PlasmaFramework, StandardExitGame};
use plasma_operator::Node;
use plasma_spec::{
    UtxoPos,
    batch_exit::{Claim, ClaimTree, encode_claims},
};
use plasma_testkit::{Env, PERIOD, advance, env, eth, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use serde_json::json;
use std::time::Duration;

async fn watcher(env: &Env, node: &Node) -> plasma_watcher::Running {
    watcher_with(env, node, true).await
}

/// The watcher of account 5, processing due exits (WATCH-10) if `process_exits`.
async fn watcher_with(env: &Env, node: &Node, process_exits: bool) -> plasma_watcher::Running {
    watcher_settings(env, node, process_exits, Duration::from_millis(300)).await
}

/// As [`watcher_with`], giving each L1 action `stuck_after` to be mined before it counts as
/// pending (and is looked for again, or bumped, at the next step).
async fn watcher_settings(
    env: &Env,
    node: &Node,
    process_exits: bool,
    stuck_after: Duration,
) -> plasma_watcher::Running {
    let key = key(env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_millis(400),
        process_exits: true,
        deadline_margin: Duration::from_secs(1),
        stuck_after,
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let settings = Settings { process_exits, ..settings };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("watcher")).await.unwrap();
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Waits (with a deadline) until the watcher has recorded an event matching `f`.
async fn wait_event(w: &plasma_watcher::Running, f: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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

/// A provider signing as anvil account `i`.
fn signer(env: &Env, i: usize) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(key(env, i)))
        .connect_http(env.anvil.endpoint_url())
        .erased()
}

fn game(env: &Env, provider: DynProvider) -> BatchExitGame::BatchExitGameInstance<DynProvider> {
    BatchExitGame::new(env.deployment.batch_exit_game, provider)
}

/// The committed root and L1 timestamp of block `blknum`, from the framework's events.
async fn commitment(env: &Env, blknum: u64) -> (B256, u64) {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    if plasma_spec::is_deposit_block(blknum) {
        let deposits = framework.DepositCreated_filter().from_block(0).query().await.unwrap();
        let (ev, _) =
            deposits.iter().find(|(ev, _)| ev.blknum == U256::from(blknum)).expect("deposit");
        (plasma_spec::deposit_block_root(&ev.depositTx), ev.timestamp)
    } else {
        let blocks = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
        let (ev, _) = blocks.iter().find(|(ev, _)| ev.blknum == U256::from(blknum)).expect("block");
        (ev.root, ev.timestamp)
    }
}

/// Account `i` starts a batch exit of ETH for itself (one group, no authorization) claiming
/// `claims` (ascending); returns the batch id and the batch's claims with their tree.
async fn start_own_batch(env: &Env, i: usize, claims: &[(UtxoPos, U256)]) -> (U256, Vec<Claim>) {
    let provider = signer(env, i);
    let owner = key(env, i).address();
    let game = game(env, provider);
    let youngest = claims.iter().map(|c| c.0).max().unwrap();
    let (root, timestamp) = commitment(env, youngest.blknum()).await;
    let value = game.batchBondSize().call().await.unwrap()
        + game.claimBondSize().call().await.unwrap() * U256::from(claims.len());
    let group = BatchExitGame::Group {
        owner,
        deadline: U256::ZERO,
        nonce: U256::ZERO,
        signature: Bytes::new(),
        claims: encode_claims(claims).unwrap().into(),
    };
    let receipt = game
        .startBatchExit(Address::ZERO, root, timestamp, vec![group])
        .value(value)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the batch started");
    let started = receipt.decoded_log::<BatchExitGame::BatchExitStarted>().unwrap();
    let claims = claims.iter().map(|(pos, amount)| Claim { owner, pos: *pos, amount: *amount });
    (started.batchId, claims.collect())
}

/// The contract's reference to claim `index` of a batch.
fn claim_ref(batch_id: U256, claims: &[Claim], index: usize) -> IBatchExitGame::ClaimRef {
    let tree = ClaimTree::from_claims(claims).unwrap();
    let c = &claims[index];
    IBatchExitGame::ClaimRef {
        batchId: batch_id,
        index: U256::from(index),
        owner: c.owner,
        utxoPos: u64::try_from(c.pos.to_u128()).unwrap(),
        amount: U96::from(u128::try_from(c.amount).unwrap()),
        proof: tree.proof(index).unwrap(),
    }
}

async fn claim_state(env: &Env, batch_id: U256, index: usize) -> u8 {
    game(env, env.provider.clone()).claimState(batch_id, U256::from(index)).call().await.unwrap()
}

/// Waits until claim `index` of `batch_id` is in `state` on L1.
async fn wait_claim_state(env: &Env, batch_id: U256, index: usize, state: u8) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while claim_state(env, batch_id, index).await != state {
        assert!(tokio::time::Instant::now() < deadline, "claim {index} never reached {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn withdrawable(env: &Env, who: Address) -> U256 {
    PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .withdrawable(who, Address::ZERO)
        .call()
        .await
        .unwrap()
}

/// The operator commits `blknum` with a root it never serves (a withheld block).
async fn withhold(env: &Env, node: Node, blknum: u64) {
    node.stop().await;
    // A fresh provider for the operator key: the shared one cached nonces the operator used since.
    let framework = PlasmaFramework::new(env.deployment.framework, signer(env, 0));
    framework
        .submitBlock(U256::from(blknum), B256::repeat_byte(0x66))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
}

/// Hands the watcher `w` an authorization of wallet `owner`.
async fn guard(w: &plasma_watcher::Running, owner: &plasma_sdk::Wallet) {
    let (auth, sig) = owner.authorize_watchtower(w.watcher.address(), 2_000_000_000).await.unwrap();
    let body = json!({"owner": owner.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/guards", w.addr))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// WATCH-9 through batch exits: when the operator withholds a block, the guarded owners' outputs
/// (two owners with an authorization each, and the tower's own, which needs none) are claimed in
/// one `startBatchExit`, no standard exit is started, and once the batch is due the tower
/// processes it and pays every claim out: each owner is credited exactly its outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mass_exit_claims_guarded_outputs_in_a_batch_and_pays_every_owner() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = wallet(&env, &node, 3).await;
    let tower = wallet(&env, &node, 5).await;
    // bob: two deposits and a payment from alice; carol: one deposit; the tower: one deposit.
    let mut owed: Vec<(Address, U256)> = Vec::new();
    let mut last = 0;
    for (who, amount) in
        [(&bob, eth(2)), (&bob, eth(1) / U256::from(3)), (&carol, eth(5)), (&tower, eth(1))]
    {
        last = who.deposit_eth(amount).await.unwrap();
        owed.push((who.address(), amount));
    }
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    tower.wait_for_output(last, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    owed.push((bob.address(), eth(1)));
    for owner in [&bob, &carol, &tower] {
        guard(&w, owner).await;
    }
    let tower_before = withdrawable(&env, w.watcher.address()).await;

    withhold(&env, node, 2000).await;
    wait_event(&w, |e| matches!(e, Event::BlockWithheld { blknum: 2000 })).await;
    let started = wait_event(&w, |e| matches!(e, Event::BatchMassExit { .. })).await;
    let Event::BatchMassExit { claims, owners, gas_used, .. } = started else { unreachable!() };
    assert_eq!((claims, owners), (5, 3), "bob's three outputs, carol's and the tower's own");
    println!("mass exit by batch: {claims} claims of {owners} owners in {gas_used} gas");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::MassExit { .. })),
        "no standard exit: {:?}",
        w.watcher.events()
    );
    let game = game(&env, env.provider.clone());
    assert!(
        game.claimedUpTo(bob.address(), Address::ZERO).call().await.unwrap() > U256::ZERO,
        "bob's watermark raised"
    );

    // Once due, the tower processes the batch and pays every claim out, by itself.
    advance(&env.provider, 3 * PERIOD).await;
    let paid = wait_event(&w, |e| matches!(e, Event::BatchPaidOut { claims: 5, .. })).await;
    let Event::BatchPaidOut { l1_tx, .. } = paid else { unreachable!() };
    let receipt = env.provider.get_transaction_receipt(l1_tx).await.unwrap().unwrap();
    println!("payout of 5 claims in {} gas", receipt.gas_used);
    for who in [bob.address(), carol.address()] {
        let expected: U256 = owed.iter().filter(|(o, _)| *o == who).map(|(_, a)| *a).sum();
        assert_eq!(withdrawable(&env, who).await, expected, "{who} paid to the wei");
    }
    // The tower's own output too (its account also got its bonds back and the bounty).
    let claim_bonds = game.claimBondSize().call().await.unwrap() * U256::from(5);
    let batch_bond = game.batchBondSize().call().await.unwrap();
    assert_eq!(
        withdrawable(&env, w.watcher.address()).await - tower_before,
        eth(1) + claim_bonds + batch_bond,
        "its output, the five claim bonds, and the batch bond (minus the bounty it earned back)"
    );
    w.stop().await;
}

/// CHAL-6: a batch claiming an output that does not exist — past the last transaction of a
/// valid block (an empty leaf), and a real output with another amount — is struck by the
/// watcher by itself, each claim for half its bond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strikes_claims_of_outputs_that_do_not_exist() {
    strike_claims_of_outputs_that_do_not_exist(Duration::from_millis(300)).await;
}

/// The same when no strike's receipt arrives within its wait (a loaded L1 node, a slow
/// endpoint): each is pending when the step ends and found mined at the next. Each must be
/// reported struck — not sent again, reverted against the claim it already struck, and reported
/// `ActionFailed` (as it was before `act` looked for late landings; a CI run saw it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strike_mined_after_its_wait_ran_out_is_reported_struck_and_not_sent_again() {
    strike_claims_of_outputs_that_do_not_exist(Duration::from_millis(1)).await;
}

async fn strike_claims_of_outputs_that_do_not_exist(stuck_after: Duration) {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher_settings(&env, &node, true, stuck_after).await;
    let alice = wallet(&env, &node, 1).await;
    let mallory = wallet(&env, &node, 3).await;
    let dep = mallory.deposit_eth(eth(1)).await.unwrap();
    mallory.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = mallory.send(alice.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = mallory.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let dep2 = mallory.deposit_eth(eth(2)).await.unwrap();
    mallory.wait_for_output(dep2, Duration::from_secs(20)).await.unwrap();
    let before = withdrawable(&env, w.watcher.address()).await;

    // Transaction 7 of a block with one transaction; her own deposit claimed at 100 ETH.
    let nothing = UtxoPos::new(blknum, 7, 0).unwrap();
    let inflated = UtxoPos::from_u128(dep2).unwrap();
    let (batch_id, _) = start_own_batch(&env, 3, &[(nothing, eth(3)), (inflated, eth(100))]).await;
    wait_claim_state(&env, batch_id, 0, 2).await;
    wait_claim_state(&env, batch_id, 1, 2).await;
    // L1 shows a claim struck as soon as the strike is mined; the watcher records its event once
    // it has the receipt (or, for an attempt whose wait ran out, finds it mined at its next
    // step): wait for both events, then check there are no more.
    let chal6 = |e: &Event| matches!(e, Event::BatchClaimStruck { rule, .. } if rule == "CHAL-6");
    wait_event(
        &w,
        |e| matches!(e, Event::BatchClaimStruck { index: 0, rule, .. } if rule == "CHAL-6"),
    )
    .await;
    wait_event(
        &w,
        |e| matches!(e, Event::BatchClaimStruck { index: 1, rule, .. } if rule == "CHAL-6"),
    )
    .await;
    let struck = w.watcher.events().iter().filter(|e| chal6(e)).count();
    assert_eq!(struck, 2, "{:?}", w.watcher.events());
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::ActionFailed { .. })),
        "no strike reported failed: {:?}",
        w.watcher.events()
    );
    let claim_bond = game(&env, env.provider.clone()).claimBondSize().call().await.unwrap();
    assert_eq!(withdrawable(&env, w.watcher.address()).await - before, claim_bond);
    w.stop().await;
    node.stop().await;
}

/// CHAL-7: a batch claiming an output its owner spent is struck with the spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strikes_a_claim_of_a_spent_output() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let dep = alice.deposit_eth(eth(1)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    // Wait for the watcher to have validated the spend.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.watcher.status().synced_block < 1000 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let (batch_id, _) =
        start_own_batch(&env, 1, &[(UtxoPos::from_u128(dep).unwrap(), eth(1))]).await;
    wait_claim_state(&env, batch_id, 0, 2).await;
    wait_event(&w, |e| matches!(e, Event::BatchClaimStruck { rule, .. } if rule == "CHAL-7")).await;
    w.stop().await;
    node.stop().await;
}

/// CHAL-9: a claim in a block the operator withholds cannot be disproven; the watcher demands
/// its proof in phase 1, nobody can answer, the claim is struck at processing and the watcher
/// collects its demand bond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demands_the_proof_of_a_claim_in_a_withheld_block_and_it_loses() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();

    // The operator withholds block 2000 and claims, as mallory, an output "in" it.
    withhold(&env, node, 2000).await;
    let (batch_id, _) =
        start_own_batch(&env, 3, &[(UtxoPos::new(2000, 0, 0).unwrap(), eth(2))]).await;
    wait_event(&w, |e| matches!(e, Event::BatchClaimDemanded { .. })).await;
    assert_eq!(claim_state(&env, batch_id, 0).await, 1, "demanded");

    advance(&env.provider, 3 * PERIOD).await;
    wait_event(&w, |e| matches!(e, Event::BatchDemandCollected { .. })).await;
    let batch = game(&env, env.provider.clone()).batches(batch_id).call().await.unwrap();
    assert_eq!(batch.status, 2, "processed");
    assert_eq!(batch.total, 0, "the demanded claim was struck: nothing reserved for it");
    w.stop().await;
}

/// CHAL-9: a demand on an honest claim is answered by the watcher, which can prove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_a_demand_on_an_honest_claim() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let dep = alice.deposit_eth(eth(1)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let (batch_id, claims) =
        start_own_batch(&env, 1, &[(UtxoPos::from_u128(dep).unwrap(), eth(1))]).await;
    // Give the watcher time to audit the claim (and find it honest), then mallory demands.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mallory = game(&env, signer(&env, 4));
    let bond = mallory.demandBondSize().call().await.unwrap();
    mallory
        .demandClaimProof(claim_ref(batch_id, &claims, 0))
        .value(bond)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(claim_state(&env, batch_id, 0).await, 1);
    wait_event(&w, |e| matches!(e, Event::BatchDemandAnswered { .. })).await;
    assert_eq!(claim_state(&env, batch_id, 0).await, 0, "live again");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::BatchClaimStruck { .. })),
        "the honest claim was not struck"
    );
    w.stop().await;
    node.stop().await;
}

/// WATCH-9's standard path: bob claimed his newest output in a batch himself, which raised his
/// watermark past his older deposit without claiming it. No batch can claim the deposit now
/// (EXIT-12), so when the chain turns byzantine the tower exits it by a standard exit, and
/// leaves the claimed output alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_below_the_owners_watermark_goes_by_a_standard_exit() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let deposit = bob.deposit_eth(eth(2)).await.unwrap();
    bob.wait_for_output(deposit, Duration::from_secs(20)).await.unwrap();
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let paid = UtxoPos::new(blknum, 0, 0).unwrap();
    start_own_batch(&env, 2, &[(paid, eth(1))]).await;
    guard(&w, &bob).await;

    withhold(&env, node, blknum + 1000).await;
    wait_event(&w, |e| matches!(e, Event::MassExit { outputs: 1, .. })).await;
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    let exit = se.exits(U256::from(deposit)).call().await.unwrap();
    assert_eq!((exit.owner, exit.status), (bob.address(), 1), "bob's deposit exits, to bob");
    assert_eq!(se.exits(paid.to_u256()).call().await.unwrap().status, 0, "the claimed one not");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::BatchMassExit { .. })),
        "nothing left to claim: {:?}",
        w.watcher.events()
    );
    advance(&env.provider, 3 * PERIOD).await;
    wait_event(&w, |e| matches!(e, Event::ExitsProcessed { .. })).await;
    // bob is paid his deposit by its standard exit, and gets back the bonds of his own batch
    // (the processing bounty, half the batch bond, went to the tower that processed it).
    let g = game(&env, env.provider.clone());
    let batch_bond = g.batchBondSize().call().await.unwrap();
    let bonds_back =
        g.claimBondSize().call().await.unwrap() + batch_bond - batch_bond / U256::from(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while se.exits(U256::from(deposit)).call().await.unwrap().status != 3 {
        assert!(tokio::time::Instant::now() < deadline, "bob's deposit never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(withdrawable(&env, bob.address()).await, eth(2) + bonds_back);
    w.stop().await;
}

/// Sets anvil's block timestamp interval: `Some(s)` puts every next block `s` seconds after the
/// previous one (0: in the same second), `None` follows the clock again.
async fn block_interval(env: &Env, seconds: Option<u64>) {
    type Any = serde_json::Value;
    match seconds {
        Some(s) => env
            .provider
            .raw_request::<_, Any>("anvil_setBlockTimestampInterval".into(), (s,))
            .await
            .unwrap(),
        None => env
            .provider
            .raw_request::<_, Any>("anvil_removeBlockTimestampInterval".into(), json!([]))
            .await
            .unwrap(),
    };
}

/// The L1 times the contracts compare (CHAL-8, CHAL-10): the batch's start and the standard
/// exit's start.
async fn start_times(env: &Env, batch_id: U256, pos: u128) -> (u64, u64) {
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    let batch = game(env, env.provider.clone()).batchStart(batch_id).call().await.unwrap();
    (batch.startedAt, se.exits(U256::from(pos)).call().await.unwrap().startedAt)
}

/// CHAL-10: alice claims her deposit in a batch, then, one L1 second later, also starts a
/// standard exit of it; the exit came second, so the watcher challenges the exit (not the claim)
/// and the claim stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_a_standard_exit_of_an_output_claimed_first() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let dep = alice.deposit_eth(eth(1)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    // Pinned: the exit's block exactly one second after the batch's, whatever else is mined.
    block_interval(&env, Some(0)).await;
    let (batch_id, _) =
        start_own_batch(&env, 1, &[(UtxoPos::from_u128(dep).unwrap(), eth(1))]).await;
    block_interval(&env, Some(1)).await;
    env.provider.raw_request::<_, serde_json::Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    block_interval(&env, Some(0)).await;
    // A fresh wallet: the first one's provider cached the nonce the batch's start used.
    drop(alice);
    let alice = wallet(&env, &node, 1).await;
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    block_interval(&env, None).await;
    let (batch_at, exit_at) = start_times(&env, batch_id, dep).await;
    assert_eq!(exit_at, batch_at + 1, "the exit started one second after the batch");
    wait_event(&w, |e| matches!(e, Event::StandardExitOfClaimChallenged { .. })).await;
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    assert_eq!(se.exits(U256::from(dep)).call().await.unwrap().status, 2, "challenged");
    assert_eq!(claim_state(&env, batch_id, 0).await, 0, "the claim stands");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::BatchClaimStruck { .. })),
        "the claim, which came first, was not struck"
    );
    w.stop().await;
    node.stop().await;
}

/// CHAL-8 against CHAL-10 by start time, as the contracts decide: of a batch claim and a standard
/// exit of the same output started in the same L1 second, the exit stands and the watcher strikes
/// the claim (CHAL-8), whichever of the two L1 blocks came first. (Deciding by L1 order, it sent a
/// CHAL-10 that reverted, `StandardExitStartedFirst`, and left the duplicate claim unstruck.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strikes_the_claim_of_an_output_whose_standard_exit_started_in_the_same_second() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, &node).await;
    let alice = wallet(&env, &node, 1).await;
    let mut deps = Vec::new();
    for _ in 0..2 {
        deps.push(alice.deposit_eth(eth(1)).await.unwrap());
    }
    alice.wait_for_output(deps[1], Duration::from_secs(20)).await.unwrap();
    drop(alice);
    let pos = |d: u128| UtxoPos::from_u128(d).unwrap();

    block_interval(&env, Some(0)).await;
    // The batch's block first, then the exit's.
    let (batch_first, _) = start_own_batch(&env, 1, &[(pos(deps[0]), eth(1))]).await;
    // A fresh wallet: a provider caches the nonces it used.
    let alice = wallet(&env, &node, 1).await;
    alice.start_exits_unchecked(&[deps[0]]).await.unwrap();
    // The exit's block first, then the batch's.
    alice.start_exits_unchecked(&[deps[1]]).await.unwrap();
    drop(alice);
    let (exit_first, _) = start_own_batch(&env, 1, &[(pos(deps[1]), eth(1))]).await;
    block_interval(&env, None).await;

    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    for (batch_id, dep) in [(batch_first, deps[0]), (exit_first, deps[1])] {
        let (batch_at, exit_at) = start_times(&env, batch_id, dep).await;
        assert_eq!(batch_at, exit_at, "started in the same L1 second");
        wait_claim_state(&env, batch_id, 0, 2).await;
        assert_eq!(se.exits(U256::from(dep)).call().await.unwrap().status, 1, "the exit stands");
        // The claim is struck on L1 before the watcher records its event (after the receipt).
        wait_event(&w, |e| {
            matches!(e, Event::BatchClaimStruck { batch_id: b, rule, .. }
                if U256::from(*b) == batch_id && rule == "CHAL-8")
        })
        .await;
    }
    let events = w.watcher.events();
    let chal8 = events
        .iter()
        .filter(|e| matches!(e, Event::BatchClaimStruck { rule, .. } if rule == "CHAL-8"))
        .count();
    assert_eq!(chal8, 2, "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::StandardExitOfClaimChallenged { .. } | Event::ActionFailed { .. }
        )),
        "no CHAL-10 sent: {events:?}"
    );
    w.stop().await;
    node.stop().await;
}

/// EXIT-16's scene, staged before any watcher follows: mallory (account 3) claims her 1 ETH
/// deposit at 3 ETH, the whole vault, and nobody strikes the claim; alice's (account 1) standard
/// exit of her 2 ETH deposit, queued right behind the batch, is processed after it and capped to
/// a debt. Returns alice's address, her withdrawable ETH then (her bond back, none of her 2 ETH),
/// the batch and its claims, and mallory's deposit.
async fn stage_a_debt_behind_a_fake_claim(
    env: &Env,
    node: &Node,
) -> (Address, U256, U256, Vec<Claim>, u128) {
    let mallory = wallet(env, node, 3).await;
    let alice = wallet(env, node, 1).await;
    let dep_m = mallory.deposit_eth(eth(1)).await.unwrap();
    let dep_a = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(dep_a, Duration::from_secs(20)).await.unwrap();
    let (batch_id, claims) =
        start_own_batch(env, 3, &[(UtxoPos::from_u128(dep_m).unwrap(), eth(3))]).await;
    // Alice's exit becomes exitable after the batch (EXIT-2, EXIT-13).
    advance(&env.provider, 2 * PERIOD).await;
    alice.start_exits_unchecked(&[dep_a]).await.unwrap();
    advance(&env.provider, 3 * PERIOD).await;
    let framework = PlasmaFramework::new(env.deployment.framework, signer(env, 4));
    let receipt = framework
        .processExits(Address::ZERO, U256::ZERO, U256::from(10))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let batch = game(env, env.provider.clone()).batches(batch_id).call().await.unwrap();
    assert_eq!(batch.status, 2, "the fake batch was processed");
    let book = framework.debtBook(Address::ZERO).call().await.unwrap();
    assert_eq!(book.tail - book.head, U256::from(1), "alice's capped exit is the one debt");
    assert_eq!((book.outstanding, book.pool), (eth(2), U256::ZERO));
    let before = withdrawable(env, alice.address()).await;
    (alice.address(), before, batch_id, claims, dep_m)
}

async fn debt_book(env: &Env) -> PlasmaFramework::debtBookReturn {
    PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .debtBook(Address::ZERO)
        .call()
        .await
        .unwrap()
}

/// EXIT-16 with WATCH-16: a fake claim nobody struck before processing reserved the vault and
/// alice's exit behind it was capped to a debt. The watcher, started afterwards and not
/// processing exits, releases the fake (CHAL-6 after processing: its reserve goes to the debt
/// pool) and then settles the debts, so alice ends credited her 2 ETH in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_a_fake_claim_after_processing_and_settles_the_debt_it_displaced() {
    let env = env().await;
    let node = operator(&env).await;
    let (alice, before, batch_id, _, _) = stage_a_debt_behind_a_fake_claim(&env, &node).await;
    let w = watcher_with(&env, &node, false).await;
    wait_event(&w, |e| matches!(e, Event::BatchClaimStruck { released: true, .. })).await;
    wait_event(&w, |e| matches!(e, Event::DebtsSettled { .. })).await;
    assert_eq!(claim_state(&env, batch_id, 0).await, 2, "released");
    assert_eq!(withdrawable(&env, alice).await - before, eth(2), "alice credited in full");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::DeadlineTight { .. })),
        "a release has no deadline: {:?}",
        w.watcher.events()
    );
    let book = debt_book(&env).await;
    assert_eq!(book.head, book.tail, "no debt left");
    assert_eq!((book.outstanding, book.pool), (U256::ZERO, U256::ZERO), "the rest freed");
    w.stop().await;
    node.stop().await;
}

/// EXIT-16 with WATCH-10: someone else released the fake claim (its reserve waits in the debt
/// pool) but nobody settled; the watcher that processes due exits settles the debts too, and
/// alice is credited her 2 ETH in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_debts_a_release_by_someone_else_left_in_the_pool() {
    let env = env().await;
    let node = operator(&env).await;
    let (alice, before, batch_id, claims, dep_m) =
        stage_a_debt_behind_a_fake_claim(&env, &node).await;
    // Account 4 releases the fake claim with the deposit it inflates (CHAL-6 after processing).
    let blknum = UtxoPos::from_u128(dep_m).unwrap().blknum();
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let deposits = framework.DepositCreated_filter().from_block(0).query().await.unwrap();
    let (ev, _) = deposits.iter().find(|(ev, _)| ev.blknum == U256::from(blknum)).unwrap();
    let tree = plasma_spec::BlockTree::from_leaves(&[plasma_spec::leaf_hash(&ev.depositTx)]);
    let proof: Bytes = tree.unwrap().proof(0).unwrap().to_bytes().into();
    let receipt = game(&env, signer(&env, 4))
        .challengeBatchClaimInvalid(
            claim_ref(batch_id, &claims, 0),
            ev.depositTx.clone(),
            proof,
            ev.timestamp,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "released");
    assert_eq!(debt_book(&env).await.pool, eth(3), "the fake's reserve waits in the pool");
    let w = watcher_with(&env, &node, true).await;
    wait_event(&w, |e| matches!(e, Event::DebtsSettled { .. })).await;
    assert_eq!(withdrawable(&env, alice).await - before, eth(2), "alice credited in full");
    let book = debt_book(&env).await;
    assert_eq!(
        (book.head == book.tail, book.outstanding, book.pool),
        (true, U256::ZERO, U256::ZERO)
    );
    w.stop().await;
    node.stop().await;
}

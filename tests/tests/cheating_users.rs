//! Byzantine users on the real binaries (see docs/e2e.md): exits of spent outputs, in-flight
//! double spends, piggybacks of spent inputs and outputs, false challenges. In each, the watcher
//! acts by itself; at the end every honest party has exactly what it owned (plus its bonds back,
//! minus the processing bounties the rules take), the cheat gains nothing, and the vault paid
//! out exactly what was deposited. The cheating calls use the wallet's `*_unchecked` methods: the
//! wallet itself refuses exits it can tell are doomed (Safety II, 5).

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_contracts::{DeployConfig, InFlightExitGame, PlasmaFramework, StandardExitGame};
use plasma_e2e::{
    Devnet, PERIOD,
    payouts::{ife_bounty as bounty, ife_reward, se_bounty, se_reward},
};
use plasma_sdk::Wallet;
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos};
use std::time::Duration;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn config() -> DeployConfig {
    DeployConfig::devnet(Address::ZERO, PERIOD)
}

fn key(net: &Devnet, i: usize) -> Signer {
    Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[i].to_bytes())).unwrap()
}

/// alice deposits `amount` and pays all of it to bob; returns (deposit, payment hash, bob's
/// output position), once the payment is committed and the watcher has validated its block.
async fn deposit_and_pay(
    net: &Devnet,
    alice: &Wallet,
    bob: &Wallet,
    amount: U256,
) -> (u128, B256, u128) {
    let dep = alice.deposit_eth(amount).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, amount, U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    let bob_pos = u128::from(blknum) * 1_000_000_000;
    bob.wait_for_output(bob_pos, Duration::from_secs(30)).await.unwrap();
    wait_synced(net, blknum).await;
    (dep, paid, bob_pos)
}

async fn wait_synced(net: &Devnet, blknum: u64) {
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(blknum))
        .await
        .unwrap();
}

async fn wait_event(net: &Devnet, kind: &str) {
    net.wait_watcher(kind, |_, e| {
        e["events"].as_array().is_some_and(|ev| ev.iter().any(|x| x["kind"] == kind))
    })
    .await
    .unwrap();
}

async fn withdrawable(net: &Devnet, account: Address) -> U256 {
    PlasmaFramework::new(net.deployment.framework, net.provider.clone())
        .withdrawable(account, Address::ZERO)
        .call()
        .await
        .unwrap()
}

async fn assert_vault_paid_deposits(net: &Devnet) {
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    assert_eq!(
        framework.totalCredited(Address::ZERO).call().await.unwrap(),
        framework.totalDeposited(Address::ZERO).call().await.unwrap(),
        "the vault paid exactly what was deposited"
    );
}

/// A payment of `from`'s coin at `input` to `to`, signed by `signer` (the owner, or not).
fn payment(
    input: u128,
    to: Address,
    amount: U256,
    signer: &Signer,
    w: &Wallet,
) -> SignedTransaction {
    let tx = Transaction::payment(
        &[UtxoPos::from_u128(input).unwrap()],
        vec![Output::new(to, Address::ZERO, amount)],
        B256::ZERO,
    );
    let sig = signer.sign_tx(w.domain(), &tx);
    SignedTransaction::new(tx, vec![sig])
}

/// WATCH-4: alice exits the deposit she paid to bob. The watcher challenges it and takes her
/// bond. A third party then "challenges" bob's honest exit with a spend bob never signed: L1
/// refuses it, and bob is paid in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_of_a_spent_output_is_challenged_and_a_false_challenge_refused() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let (dep, _, bob_pos) = deposit_and_pay(&net, &alice, &bob, eth(3)).await;

    // Unchecked: the wallet itself refuses an exit it knows is doomed (Safety II, 5).
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    wait_event(&net, "challenged").await;
    assert_eq!(alice.exit_status(dep).await.unwrap(), 2, "alice's exit was challenged");

    bob.start_exits(&[bob_pos]).await.unwrap();
    let mallory = key(&net, 4);
    let forged = payment(bob_pos, mallory.address(), eth(3), &mallory, &bob);
    let se = StandardExitGame::new(net.deployment.standard_exit_game, net.provider_for(4));
    let refused = match se
        .challengeStandardExit(
            U256::from(bob_pos),
            forged.transaction.encode().into(),
            U256::ZERO,
            forged.signatures[0].clone(),
        )
        .send()
        .await
    {
        Err(_) => true,
        Ok(pending) => !pending.get_receipt().await.unwrap().status(),
    };
    assert!(refused, "a challenge with a spend bob never signed must revert");
    assert_eq!(bob.exit_status(bob_pos).await.unwrap(), 1, "bob's exit still stands");

    net.process_all_exits(Address::ZERO).await.unwrap();
    let bond = config().standard_exit_bond;
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(3) + bond - se_bounty(bond));
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), U256::ZERO);
    assert_eq!(withdrawable(&net, mallory.address()).await, U256::ZERO);
    assert_eq!(
        withdrawable(&net, net.watcher).await,
        se_reward(bond) + se_bounty(bond),
        "half of alice's bond (the rest burned), bob's bounty"
    );
    assert_vault_paid_deposits(&net).await;
}

/// CHAL-1 and CHAL-3: alice paid bob (included), then signs a second spend of the same coin to
/// herself, exits it in flight and piggybacks the input. The watcher marks the exit
/// non-canonical and challenges the piggyback; bob exits normally and is paid; alice loses both
/// bonds: half of each to the watcher, the rest burned (BOND-1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_double_spend_and_its_piggybacked_input_are_challenged() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let (dep, _, bob_pos) = deposit_and_pay(&net, &alice, &bob, eth(2)).await;

    let double = payment(dep, alice.address(), eth(2), &key(&net, 1), &alice);
    alice.start_in_flight_exit_unchecked(&double).await.unwrap();
    alice.piggyback(double.transaction.hash(), false, 0).await.unwrap();
    wait_event(&net, "inFlightExitChallenged").await;
    wait_event(&net, "piggybackChallenged").await;
    let ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider.clone());
    let state =
        ife.inFlightExit(U256::from_be_bytes(double.transaction.hash().0)).call().await.unwrap();
    assert!(state.nonCanonical && state.piggybacks == 0, "non-canonical, piggyback removed");

    bob.start_exits(&[bob_pos]).await.unwrap();
    net.process_all_exits(Address::ZERO).await.unwrap();
    let c = config();
    assert_eq!(
        bob.withdrawable(Address::ZERO).await.unwrap(),
        eth(2) + c.standard_exit_bond - se_bounty(c.standard_exit_bond)
    );
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), U256::ZERO, "alice gains nothing");
    assert_eq!(
        withdrawable(&net, net.watcher).await,
        ife_reward(c.in_flight_exit_bond)
            + ife_reward(c.piggyback_bond)
            + se_bounty(c.standard_exit_bond),
        "half the exit bond (standing canonicity challenge), half the piggyback bond, bob's bounty"
    );
    assert_vault_paid_deposits(&net).await;
}

/// CHAL-2: alice's payment to bob is included. alice exits it in flight and piggybacks its input,
/// bob piggybacks his output, and mallory, with a competitor alice signs now and nobody ever
/// includes, marks the exit non-canonical — which would pay alice's input back and not bob. The
/// watcher answers with the inclusion: bob is paid, alice's input is not, mallory gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_canonicity_challenge_is_answered_and_the_payment_exits() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let (dep, paid, _) = deposit_and_pay(&net, &alice, &bob, eth(2)).await;

    // Unchecked: the wallet refuses to exit in flight a payment it knows is committed.
    alice.start_in_flight_exit_unchecked(&alice.sent_transaction(paid).unwrap()).await.unwrap();
    alice.piggyback(paid, false, 0).await.unwrap();
    bob.piggyback(paid, true, 0).await.unwrap();
    let competitor = payment(dep, alice.address(), eth(2), &key(&net, 1), &alice);
    let mallory = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider_for(4));
    mallory
        .challengeInFlightExitNotCanonical(InFlightExitGame::CompetitorArgs {
            exitId: U256::from_be_bytes(paid.0),
            inputIndex: 0,
            competingTx: competitor.transaction.encode().into(),
            competitorInputIndex: 0,
            competitorSignature: competitor.signatures[0].clone(),
            competitorTxPos: U256::ZERO,
            competitorProof: Bytes::new(),
            competitorBlockTimestamp: 0,
        })
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    wait_event(&net, "inFlightExitDefended").await;
    let ife = InFlightExitGame::new(net.deployment.in_flight_exit_game, net.provider.clone());
    assert!(!ife.inFlightExit(U256::from_be_bytes(paid.0)).call().await.unwrap().nonCanonical);

    net.process_all_exits(Address::ZERO).await.unwrap();
    let c = config();
    let (ife_bond, pb) = (c.in_flight_exit_bond, c.piggyback_bond);
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(2) + pb - bounty(pb));
    assert_eq!(
        alice.withdrawable(Address::ZERO).await.unwrap(),
        ife_bond - bounty(ife_bond) + pb - bounty(pb),
        "alice: her bonds back, minus bounties, and not the input she spent"
    );
    assert_eq!(withdrawable(&net, key(&net, 4).address()).await, U256::ZERO);
    assert_eq!(
        withdrawable(&net, net.watcher).await,
        bounty(ife_bond) + bounty(pb) * U256::from(2)
    );
    assert_vault_paid_deposits(&net).await;
}

/// CHAL-4: bob already paid his output on to carol, then piggybacks it on an in-flight exit of
/// the payment that created it. The watcher challenges the piggyback with bob's spend and takes
/// half its bond (the rest is burned); carol exits her output and is paid in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piggyback_of_a_spent_output_is_challenged() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let (_, paid, _) = deposit_and_pay(&net, &alice, &bob, eth(2)).await;
    let spent = bob.send(carol.address(), Address::ZERO, eth(2), U256::ZERO).await.unwrap();
    let blknum = bob.wait_for_commit(spent, Duration::from_secs(30)).await.unwrap();
    let carol_pos = u128::from(blknum) * 1_000_000_000;
    carol.wait_for_output(carol_pos, Duration::from_secs(30)).await.unwrap();
    wait_synced(&net, blknum).await;

    // Unchecked: the wallet refuses to exit in flight a payment it knows is committed.
    alice.start_in_flight_exit_unchecked(&alice.sent_transaction(paid).unwrap()).await.unwrap();
    bob.piggyback(paid, true, 0).await.unwrap();
    wait_event(&net, "outputPiggybackChallenged").await;
    carol.start_exits(&[carol_pos]).await.unwrap();

    net.process_all_exits(Address::ZERO).await.unwrap();
    let c = config();
    let (se, ife_bond, pb) = (c.standard_exit_bond, c.in_flight_exit_bond, c.piggyback_bond);
    assert_eq!(carol.withdrawable(Address::ZERO).await.unwrap(), eth(2) + se - se_bounty(se));
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), U256::ZERO, "bob gains nothing");
    assert_eq!(
        withdrawable(&net, net.watcher).await,
        ife_reward(pb) + se_bounty(se) + bounty(ife_bond),
        "half bob's piggyback bond (the rest burned) and the bounties"
    );
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), ife_bond - bounty(ife_bond));
    let (_, events) = net.watcher_state().await.unwrap();
    let challenges = events["events"]
        .as_array()
        .map_or(0, |ev| ev.iter().filter(|x| x["kind"] == "outputPiggybackChallenged").count());
    assert_eq!(challenges, 1, "challenged once");
    assert_vault_paid_deposits(&net).await;
}

//! "Is my exit ready, and when?" against a real anvil, the real contracts and the real operator:
//! every exitable time equals the one the contract computed (the priority it queued, EXIT-3) and
//! the EXIT-2 / EXIT-13 rule; what stands in the way is named (older exits at the head of the
//! queue, a challenge), and "ready" follows L1's clock through processing and payout.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, TxHash, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use plasma_contracts::{BatchExitGame, DeployConfig, PlasmaFramework, StandardExitGame};
use plasma_sdk::{ExitTiming, Wallet};
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos, split_priority};
use plasma_testkit::{Env, PERIOD, advance, env, eth, key, operator, wallet};
use std::time::Duration;

/// The L1 timestamp of the block that mined `tx`.
async fn mined_at(provider: &DynProvider, tx: TxHash) -> u64 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    let block = provider.get_block_by_number(r.block_number.unwrap().into()).await.unwrap();
    block.unwrap().header.timestamp
}

/// The exitable time of the priority the framework queued exit `exit_id` under (EXIT-3), read
/// straight from its `ExitQueued` event.
async fn queued_exitable_at(env: &Env, exit_id: U256) -> u64 {
    let filter = Filter::new()
        .address(env.deployment.framework)
        .event_signature(PlasmaFramework::ExitQueued::SIGNATURE_HASH)
        .topic3(B256::from(exit_id))
        .from_block(0);
    let logs = env.provider.get_logs(&filter).await.unwrap();
    assert_eq!(logs.len(), 1, "queued once");
    let e = logs[0].log_decode::<PlasmaFramework::ExitQueued>().unwrap();
    split_priority(e.inner.priority).0
}

async fn row(w: &Wallet, kind: &str, pos: u128) -> ExitTiming {
    let rows = w.exit_schedule().await.unwrap();
    rows.iter()
        .find(|r| r.kind == kind && r.utxo_pos == pos.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} exit of {pos} in {rows:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_times_come_from_l1_and_blockers_are_named() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = key(&env, 3).address();
    let b = bob.deposit_eth(eth(1)).await.unwrap();
    let a0 = alice.deposit_eth(eth(5)).await.unwrap();
    let a2 = alice.deposit_eth(eth(3)).await.unwrap();
    for (w, p) in [(&bob, b), (&alice, a0), (&alice, a2)] {
        w.wait_for_output(p, Duration::from_secs(20)).await.unwrap();
    }
    // alice pays carol from a0: her change is a child-block output (EXIT-2's second rule).
    let hash = alice.send(carol, Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let change = UtxoPos::new(blknum, 0, 1).unwrap().to_u128();
    alice.wait_for_output(change, Duration::from_secs(20)).await.unwrap();
    let change_block_ts = alice
        .outputs()
        .unwrap()
        .into_iter()
        .find(|o| o.utxo_pos == change)
        .unwrap()
        .block_timestamp;

    // bob's deposit exit first: it heads the queue.
    let b_start = bob.start_exits(&[b]).await.unwrap().chunks[0].l1_tx;
    // alice signs a spend of a2 (never sent), then exits a2 anyway: the spend challenges it.
    let signer = Signer::from_bytes(&B256::from(key(&env, 1).to_bytes())).unwrap();
    let spend = Transaction::payment(
        &[UtxoPos::from_u128(a2).unwrap()],
        vec![Output::new(carol, Address::ZERO, eth(3))],
        B256::ZERO,
    );
    let spend = SignedTransaction::new(spend.clone(), vec![signer.sign_tx(alice.domain(), &spend)]);
    let a2_start = alice.start_exits_unchecked(&[a2]).await.unwrap();
    let c_start = alice.start_exits(&[change]).await.unwrap().chunks[0].l1_tx;
    // A watcher's account challenges (account 0 is the operator's, busy submitting roots).
    let challenger = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key(&env, 5)))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let standard = StandardExitGame::new(env.deployment.standard_exit_game, challenger);
    let challenge = standard.challengeStandardExit(
        U256::from(a2),
        spend.transaction.encode().into(),
        U256::ZERO,
        spend.signatures[0].clone(),
    );
    assert!(challenge.send().await.unwrap().get_receipt().await.unwrap().status());

    // Exitable times: the contract's (the queued priority) and EXIT-2's, to the second.
    let c = row(&alice, "standard", change).await;
    let c_at = (mined_at(&env.provider, c_start).await + PERIOD).max(change_block_ts + 2 * PERIOD);
    assert_eq!(c.exitable_at, Some(c_at));
    assert_eq!(c.exitable_at, Some(queued_exitable_at(&env, U256::from(change)).await));
    assert_eq!((c.state.as_str(), c.ready), ("active", false));
    assert_eq!(c.amount, (eth(4)).to_string());
    // bob's and alice's challenged exit (still in the heap until popped) are ahead of it.
    assert_eq!(c.exits_ahead, Some(2), "{c:?}");
    let blocked = c.blocked_by.clone().unwrap();
    assert!(blocked.contains("2 older exit(s)") && blocked.contains("maxExits >= 3"), "{blocked}");
    let x = row(&alice, "standard", a2).await;
    let a2_at = mined_at(&env.provider, a2_start).await + PERIOD; // a deposit: one period
    assert_eq!(x.exitable_at, Some(a2_at));
    assert_eq!(x.exitable_at, Some(queued_exitable_at(&env, U256::from(a2)).await));
    assert_eq!((x.state.as_str(), x.ready), ("challenged", false));
    assert!(x.blocked_by.unwrap().contains("challenged"));
    let head = row(&bob, "standard", b).await;
    assert_eq!(head.exitable_at, Some(mined_at(&env.provider, b_start).await + PERIOD));
    assert_eq!((head.exits_ahead, head.blocked_by.as_deref()), (Some(0), None));

    // One period on: bob's exit is due (and so would alice's challenged one be), hers is not.
    advance(&env.provider, PERIOD).await;
    assert!(row(&bob, "standard", b).await.ready);
    let c = row(&alice, "standard", change).await;
    assert!(!c.ready, "{c:?}");
    bob.process_exits(Address::ZERO, 2).await.unwrap(); // bob's, and the challenged one skipped
    let c = row(&alice, "standard", change).await;
    assert_eq!((c.exits_ahead, c.blocked_by.as_deref(), c.ready), (Some(0), None, false));
    assert_eq!(row(&bob, "standard", b).await.state, "processed");

    advance(&env.provider, 2 * PERIOD).await;
    assert!(row(&alice, "standard", change).await.ready);
    alice.process_exits(Address::ZERO, 1).await.unwrap();
    let c = row(&alice, "standard", change).await;
    assert_eq!((c.state.as_str(), c.ready), ("processed", false));
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), eth(4) + bond);

    // A batch claim: its exitable time is the batch's (EXIT-13), ready after processing for its
    // payout, paid after it.
    let a3 = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(a3, Duration::from_secs(20)).await.unwrap();
    let batch = alice.start_batch_exit(Some(&[a3])).await.unwrap().batches.remove(0);
    let game = BatchExitGame::new(
        PlasmaFramework::new(env.deployment.framework, env.provider.clone())
            .batchExitGame()
            .call()
            .await
            .unwrap(),
        env.provider.clone(),
    );
    let on_l1 = game.batches(U256::from(batch.batch_id)).call().await.unwrap().exitableAt;
    let claim = row(&alice, "batchClaim", a3).await;
    assert_eq!(claim.exitable_at, Some(on_l1));
    assert_eq!(claim.exitable_at, Some(batch.exitable_at));
    assert_eq!(claim.exitable_at, Some(queued_exitable_at(&env, U256::from(batch.batch_id)).await));
    assert_eq!((claim.state.as_str(), claim.ready, claim.exits_ahead), ("live", false, Some(0)));
    assert_eq!(claim.exit_id, batch.batch_id.to_string());
    advance(&env.provider, 3 * PERIOD).await;
    assert!(row(&alice, "batchClaim", a3).await.ready);
    alice.process_exits(Address::ZERO, 1).await.unwrap();
    let claim = row(&alice, "batchClaim", a3).await;
    assert_eq!((claim.state.as_str(), claim.ready), ("processed", true));
    assert!(claim.blocked_by.unwrap().contains("payout"));
    assert_eq!(alice.payout_batch_claims().await.unwrap().credited(), eth(2));
    let claim = row(&alice, "batchClaim", a3).await;
    assert_eq!((claim.state.as_str(), claim.ready), ("paid", false));
    node.stop().await;
}

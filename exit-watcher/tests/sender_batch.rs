//! The shared sender's batches (issue 19, `plasma_contracts::sender::Sender::send_batch`)
//! against a real anvil: actions sent back to back at consecutive nonces, one refused or
//! reverting action holding back none of the others, a stuck batch replaced after a restart of
//! the sender with no action mined twice, and a nonce gap filled.

#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{
    StandardExitGame,
    devnet::LocalChain,
    sender::{Action, Outcome, SendPolicy, Sender},
};
use std::time::Duration;

type Any = serde_json::Value;

/// A sender for anvil account `i`, and its provider.
fn sender(chain: &LocalChain, i: usize, stuck_after: Duration) -> (Sender, DynProvider) {
    let key: PrivateKeySigner = chain.anvil.keys()[i].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(chain.anvil.endpoint_url())
        .erased();
    let policy = SendPolicy { bump_percent: 25, stuck_after };
    (Sender::new(provider.clone(), key.address(), policy), provider)
}

/// Action `key`: pay `wei` to `to`.
fn pay(key: &str, to: Address, wei: u64) -> Action {
    Action {
        key: key.to_owned(),
        tx: TransactionRequest::default().to(to).value(U256::from(wei)).gas_limit(21_000),
    }
}

fn hash_of(outcome: &Outcome) -> B256 {
    match outcome {
        Outcome::Mined(r) => r.transaction_hash,
        Outcome::Reverted { hash, .. } | Outcome::Pending { hash } => *hash,
        Outcome::Refused { reason } => panic!("refused: {reason}"),
    }
}

async fn nonce_of(provider: &DynProvider, hash: B256) -> u64 {
    use alloy::consensus::Transaction as _;
    provider.get_transaction_by_hash(hash).await.unwrap().unwrap().nonce()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_reverting_action_holds_back_none_of_the_others() {
    let chain = LocalChain::start(60).await.unwrap();
    // Interval mining from here: the batch must land in one block, as on a public chain.
    chain.provider.raw_request::<_, Any>("evm_setIntervalMining".into(), (1u64,)).await.unwrap();
    let (sender, provider) = sender(&chain, 5, Duration::from_secs(10));
    let me = sender.address();
    let start = provider.get_transaction_count(me).latest().await.unwrap();
    let (a, b) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    // A challenge of an exit that does not exist: mined, and reverted by the exit game.
    let game = StandardExitGame::new(chain.deployment.standard_exit_game, provider.clone());
    let reverts = Action::call(
        "reverts",
        game.challengeStandardExit(
            U256::from(1_000_000_000u64),
            vec![1u8].into(),
            U256::ZERO,
            vec![0u8; 65].into(),
        ),
        U256::ZERO,
        300_000,
    );
    // More than the account holds: the node refuses it, and it must not take a nonce.
    let mut refused = pay("refused", a, 0);
    refused.tx.value = Some(U256::from(10).pow(U256::from(30)));
    let actions = vec![pay("first", a, 1), reverts, refused, pay("last", b, 1)];
    let outcomes = sender.send_batch(&actions).await.unwrap();
    assert!(matches!(outcomes[0], Outcome::Mined(_)), "{outcomes:?}");
    assert!(matches!(outcomes[1], Outcome::Reverted { .. }), "{outcomes:?}");
    assert!(matches!(outcomes[2], Outcome::Refused { .. }), "{outcomes:?}");
    assert!(matches!(outcomes[3], Outcome::Mined(_)), "{outcomes:?}");
    // Consecutive nonces, the refused one skipped: no gap behind which "last" would wait.
    let nonces = [
        nonce_of(&provider, hash_of(&outcomes[0])).await,
        nonce_of(&provider, hash_of(&outcomes[1])).await,
        nonce_of(&provider, hash_of(&outcomes[3])).await,
    ];
    assert_eq!(nonces, [start, start + 1, start + 2]);
    assert_eq!(provider.get_transaction_count(me).latest().await.unwrap(), start + 3);
    // All in one block: nothing waited for another's receipt.
    let block = |o: &Outcome| match o {
        Outcome::Mined(r) => r.block_number.unwrap(),
        _ => unreachable!(),
    };
    let reverted = provider.get_transaction_receipt(hash_of(&outcomes[1])).await.unwrap().unwrap();
    assert_eq!(block(&outcomes[0]), block(&outcomes[3]));
    assert_eq!(reverted.block_number, Some(block(&outcomes[0])));
    assert_eq!(provider.get_balance(b).await.unwrap(), U256::from(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_batch_is_replaced_with_no_duplicate_even_after_a_restart() {
    let chain = LocalChain::start(60).await.unwrap();
    // Nothing is mined until the test says so: every transaction stays pending ("stuck").
    chain.provider.raw_request::<_, Any>("evm_setAutomine".into(), (false,)).await.unwrap();
    let (first, provider) = sender(&chain, 6, Duration::from_millis(200));
    let me = first.address();
    let start = provider.get_transaction_count(me).latest().await.unwrap();
    let (a, b, c) =
        (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2), Address::repeat_byte(0xc3));
    let outcomes =
        first.send_batch(&[pay("A", a, 1), pay("B", b, 1), pay("C", c, 1)]).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Pending { .. })), "{outcomes:?}");
    // The watcher restarts (a new sender, knowing nothing of what is pending) and B is no
    // longer wanted (say, someone else challenged that exit).
    let (second, _) = sender(&chain, 6, Duration::from_millis(200));
    let outcomes = second.send_batch(&[pay("A", a, 1), pay("C", c, 1)]).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Pending { .. })), "{outcomes:?}");
    assert_eq!(nonce_of(&provider, hash_of(&outcomes[0])).await, start, "A replaces A");
    assert_eq!(nonce_of(&provider, hash_of(&outcomes[1])).await, start + 1, "C replaces B");
    provider.raw_request::<_, Any>("anvil_mine".into(), (1u64,)).await.unwrap();
    // Three nonces used, A and C paid once each, B never: the old C at start + 2, which the new
    // sender never sent, was replaced by an empty transaction instead of being mined as a
    // duplicate.
    assert_eq!(provider.get_transaction_count(me).latest().await.unwrap(), start + 3);
    assert_eq!(provider.get_balance(a).await.unwrap(), U256::from(1));
    assert_eq!(provider.get_balance(b).await.unwrap(), U256::ZERO);
    assert_eq!(provider.get_balance(c).await.unwrap(), U256::from(1));
    // The pending attempts are found mined by the next look, as the watcher's `landed_late`.
    assert!(second.landed_late("A").await.unwrap().is_some_and(|r| r.status()));
    assert!(second.landed_late("C").await.unwrap().is_some_and(|r| r.status()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_gap_left_by_a_dropped_transaction_is_filled_and_wedges_nothing() {
    let chain = LocalChain::start(60).await.unwrap();
    chain.provider.raw_request::<_, Any>("evm_setAutomine".into(), (false,)).await.unwrap();
    let (sender, provider) = sender(&chain, 7, Duration::from_millis(200));
    let me = sender.address();
    let start = provider.get_transaction_count(me).latest().await.unwrap();
    let (a, d) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xd4));
    // A transaction of ours one nonce ahead, as if the one before it had been dropped by the
    // node: it waits behind the gap, and so would anything sent after it.
    let stray = TransactionRequest::default()
        .to(d)
        .value(U256::from(1))
        .gas_limit(21_000)
        .nonce(start + 1)
        .gas_price(provider.get_gas_price().await.unwrap() + 1);
    let _stray = provider.send_transaction(stray).await.unwrap();
    let outcomes = sender.send_batch(&[pay("A", a, 1)]).await.unwrap();
    assert_eq!(nonce_of(&provider, hash_of(&outcomes[0])).await, start, "A fills the gap");
    provider.raw_request::<_, Any>("anvil_mine".into(), (1u64,)).await.unwrap();
    // The stray (an action no longer planned) was replaced by an empty transaction; the account
    // is not wedged: both nonces are used.
    assert_eq!(provider.get_transaction_count(me).latest().await.unwrap(), start + 2);
    assert_eq!(provider.get_balance(a).await.unwrap(), U256::from(1));
    assert_eq!(provider.get_balance(d).await.unwrap(), U256::ZERO);
}

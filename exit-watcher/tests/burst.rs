//! A burst of invalid exits (issue 19): several exits of spent outputs started in one L1
//! transaction are all challenged in the next L1 block, against a real anvil mining a block every
//! second (interval mining, as a public chain), the real contracts, operator and watcher.
//!
//! Before issue 19 the watcher sent its challenges one after another, each waiting for its
//! receipt, so a burst of n exits was challenged over n blocks (1, 2, 3, …): the later ones ate
//! into the challenge period for nothing. A step's actions now go out back to back at consecutive
//! nonces and are confirmed together (spec/05-watcher.md WATCH-11).

#![allow(clippy::unwrap_used)]
// The operator's warp routes, started in-process, nest deeper than the default 128.
#![recursion_limit = "256"]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
};
use plasma_contracts::{
    StandardExitGame,
    devnet::{LocalChain, anvil},
};
use plasma_testkit::{Env, PERIOD, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use std::time::Duration;

/// The exits of one burst: as many as one payment spends (MAX_INPUTS), so the set-up needs one
/// child-chain transaction.
const BURST: usize = plasma_spec::MAX_INPUTS;

async fn block_of(env: &Env, tx: B256) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = env.provider.get_transaction_receipt(tx).await.unwrap() {
            return r.block_number.unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "{tx} never mined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_invalid_exits_is_challenged_in_the_next_block() {
    // Interval mining: a block every second whatever is pending, so "the next block" is a real
    // deadline and a challenge that waits for another's receipt misses it.
    let LocalChain { anvil, provider, deployment } =
        LocalChain::start_with(anvil().block_time(1), PERIOD).await.unwrap();
    let env = Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() };
    let node = operator(&env).await;
    let signer = key(&env, 5);
    let me = signer.address();
    let l1 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_secs(10),
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_secs(3),
        l1_block_time: Duration::from_secs(1),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = Watcher::new(settings, me, l1, &env.dir.path().join("watcher")).await.unwrap();
    let w = plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap();

    // alice deposits BURST times and pays them all to bob in one payment (committed), then
    // exits every deposit she spent, in one L1 transaction.
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let amount = U256::from(10).pow(U256::from(17));
    let mut spent = Vec::new();
    for _ in 0..BURST {
        spent.push(alice.deposit_eth(amount).await.unwrap());
    }
    for &dep in &spent {
        alice.wait_for_output(dep, Duration::from_secs(60)).await.unwrap();
    }
    let total = amount * U256::from(BURST);
    let hash = alice.send(bob.address(), Address::ZERO, total, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(60)).await.unwrap();
    // The watcher has validated every block before the exits start.
    let head = env.provider.get_block_number().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while w.watcher.status().l1_cursor < head || w.watcher.status().pending_blocks > 0 {
        assert!(tokio::time::Instant::now() < deadline, "watcher never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let exits = alice.start_exits_unchecked(&spent).await.unwrap();
    let exit_block = block_of(&env, exits).await;
    let challenge_of = |pos: u128| {
        let name = plasma_spec::UtxoPos::from_u128(pos).unwrap().to_string();
        w.watcher.events().into_iter().find_map(|e| match e {
            Event::Challenged { utxo_pos, l1_tx } if utxo_pos == name => Some(l1_tx),
            _ => None,
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut blocks = Vec::new();
    for &pos in &spent {
        let l1_tx = loop {
            if let Some(t) = challenge_of(pos) {
                break t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no challenge of {pos}; events {:?}",
                w.watcher.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        blocks.push(block_of(&env, l1_tx).await);
    }
    // Every challenge in the block right after the exits' block: not 1, 2, 3, ….
    assert_eq!(blocks, vec![exit_block + 1; BURST], "exits in block {exit_block}");
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    for &pos in &spent {
        assert_eq!(se.exits(U256::from(pos)).call().await.unwrap().status, 2, "{pos} challenged");
    }
    w.stop().await;
    node.stop().await;
}

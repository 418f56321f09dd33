//! Audit of issue #18's L1 failover (plasma_contracts::l1), against a real anvil behind small
//! JSON-RPC proxies that behave like real hosted endpoints do:
//!
//! - a *flaky* endpoint: answers everything but `eth_getLogs`, which it refuses with HTTP 503 (a
//!   hosted provider under load throttles or times out its heaviest method first);
//! - a *lagging* endpoint: a node a few blocks behind (still syncing, or a load balancer's
//!   slow backend): its `eth_blockNumber` is behind, it has no block past its head, and its
//!   `eth_getLogs` over a range reaching past its head returns the logs it has, without error
//!   (what a node that lacks those blocks answers: `[]` for them).
//!
//! Tests that fail today are `#[ignore = "audit18 F<n>: …"]` so the suite stays green; run them
//! with `cargo nextest run -p plasma-contracts --features devnet --test audit18 --run-ignored all`.

#![cfg(feature = "devnet")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use plasma_contracts::{
    PlasmaFramework,
    devnet::LocalChain,
    l1::{self, ClientOptions, Endpoints},
    rpc_proxy::{self, ProxyMode},
};
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

/// How a proxy misbehaves.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Forwards everything except `eth_getLogs`, refused with HTTP 503.
    FlakyLogs,
    /// Behaves as a node `lag` blocks behind the upstream.
    Lagging(u64),
    /// Forwards `eth_sendRawTransaction` upstream, then answers HTTP 503 (the answer lost on
    /// the way back: a load balancer timing out, a connection reset after the node took it).
    LostSendAnswer,
}

/// A JSON-RPC proxy (`plasma_contracts::rpc_proxy`) before `upstream`; returns its URL and a
/// counter of the `eth_getLogs` calls it refused (throttling) or answered (lagging).
async fn proxy(upstream: String, mode: Mode) -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let mode = match mode {
        Mode::FlakyLogs => {
            ProxyMode::FlakyLogs { on: Arc::new(AtomicBool::new(true)), refused: count.clone() }
        }
        Mode::Lagging(lag) => ProxyMode::Lagging { lag, logs_answered: count.clone() },
        Mode::LostSendAnswer => ProxyMode::LostSendAnswer,
    };
    (rpc_proxy::start(upstream, mode).await.unwrap(), count)
}

/// Commits `n` child blocks (one L1 block each): `n` `BlockSubmitted` logs in the newest L1
/// blocks. Returns the L1 head after them.
async fn commit_blocks(chain: &LocalChain, n: u64) -> u64 {
    let framework = PlasmaFramework::new(chain.deployment.framework, chain.provider.clone());
    for _ in 0..n {
        let next = framework.nextChildBlock().call().await.unwrap();
        let receipt = framework
            .submitBlock(U256::from(next), B256::repeat_byte(0x77))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
    }
    chain.provider.get_block_number().await.unwrap()
}

/// F1: the watcher's `follow_l1` (and the operator's deposit and commitment followers) read the
/// head, then the logs up to it, as separate requests. With failover per request, the head can
/// come from one endpoint and the logs from another that does not have those blocks: its `[]`
/// for them is taken as "no event", and the cursor moves past them for good. Here the primary
/// answers the head and the block (so `follow_l1`'s hash check passes) and throttles
/// `eth_getLogs`; the fallback lags 2 blocks (healthy by `MAX_LAG`) and answers the logs
/// without the newest two commitments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_up_to_a_head_are_never_taken_from_an_endpoint_behind_it() {
    let chain = LocalChain::start(60).await.unwrap();
    let head = commit_blocks(&chain, 3).await;
    let upstream = chain.anvil.endpoint();
    let (primary, _) = proxy(upstream.clone(), Mode::FlakyLogs).await;
    let (fallback, fallback_logs) = proxy(upstream, Mode::Lagging(2)).await;
    let endpoints = Endpoints::parse(&format!("{primary},{fallback}")).unwrap();
    let (provider, health) = l1::connect_reader(&endpoints, &ClientOptions::default()).unwrap();
    // The probe finds both healthy: the fallback lags 2 ≤ MAX_LAG blocks.
    health.probe().await;
    assert!(health.snapshot().iter().all(|s| s.healthy), "{:?}", health.snapshot());

    // follow_l1's sequence: head, the `to` block (its hash stored as the cursor's), the logs.
    let to = provider.get_block_number().await.unwrap();
    assert_eq!(to, head, "the head comes from the primary");
    let block = provider.get_block_by_number(to.into()).await.unwrap();
    assert!(block.is_some(), "the primary has the head block");
    let framework = PlasmaFramework::new(chain.deployment.framework, provider.clone());
    let got = framework.BlockSubmitted_filter().from_block(0).to_block(to).query().await;
    // What a correct failover must give: every commitment up to `to`, or an error (so the
    // caller retries and does not move its cursor). Whether the fallback is asked at all is
    // the failover's business (it may know the fallback's head and pass it over); an answer
    // short of `to` never reaches the caller.
    let asked = fallback_logs.load(Ordering::SeqCst);
    match got {
        Err(e) => assert!(
            e.to_string().contains("behind the requested logs"),
            "refused, but not for the fallback being behind block {to} (fallback asked \
             {asked} times): {e}"
        ),
        Ok(logs) => assert_eq!(
            logs.len(),
            3,
            "BlockSubmitted logs up to block {to}: {} returned without error; the newest \
             commitments (and any ExitStarted in those blocks) are silently missed",
            logs.len()
        ),
    }
}

/// F1 (variant): an endpoint the probe has already marked lagging (more than MAX_LAG blocks
/// behind) is still used for `eth_getLogs` when the primary fails, and its short answer is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_marked_lagging_does_not_answer_logs_past_its_head() {
    let chain = LocalChain::start(60).await.unwrap();
    let head = commit_blocks(&chain, 8).await;
    let upstream = chain.anvil.endpoint();
    let (primary, _) = proxy(upstream.clone(), Mode::FlakyLogs).await;
    let (fallback, fallback_logs) = proxy(upstream, Mode::Lagging(6)).await;
    let endpoints = Endpoints::parse(&format!("{primary},{fallback}")).unwrap();
    let (provider, health) = l1::connect_reader(&endpoints, &ClientOptions::default()).unwrap();
    health.probe().await;
    let view = health.snapshot();
    assert!(view[0].healthy && !view[1].healthy, "{view:?}");
    assert!(view[1].last_error.as_deref().unwrap().contains("lagging 6"), "{view:?}");
    let framework = PlasmaFramework::new(chain.deployment.framework, provider.clone());
    let got = framework.BlockSubmitted_filter().from_block(0).to_block(head).query().await;
    // Every commitment up to `head` or an error; whether the fallback is asked is the
    // failover's business, a short answer never reaches the caller.
    let asked = fallback_logs.load(Ordering::SeqCst);
    match got {
        Err(e) => assert!(
            e.to_string().contains("behind the requested logs"),
            "refused, but not for the fallback being behind block {head} (fallback asked \
             {asked} times): {e}"
        ),
        Ok(logs) => assert_eq!(logs.len(), 8, "{} of 8 commitments, without error", logs.len()),
    }
}

/// Control for F1: with the lagging endpoint alone, reading the head from it gives a consistent
/// (older) view: nothing is skipped, the follower only waits. This passes today.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_endpoint_alone_gives_an_older_but_consistent_view() {
    let chain = LocalChain::start(60).await.unwrap();
    let head = commit_blocks(&chain, 3).await;
    let (lagging, _) = proxy(chain.anvil.endpoint(), Mode::Lagging(2)).await;
    let (provider, _) =
        l1::connect_reader(&Endpoints::parse(&lagging).unwrap(), &ClientOptions::default())
            .unwrap();
    let to = provider.get_block_number().await.unwrap();
    assert_eq!(to, head - 2);
    let framework = PlasmaFramework::new(chain.deployment.framework, provider.clone());
    let logs = framework.BlockSubmitted_filter().from_block(0).to_block(to).query().await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0.blknum, U256::from(1000));
}

/// F6: failover re-sends `eth_sendRawTransaction` to the next endpoint after a failure that
/// happened *after* the first endpoint took the transaction (here: the answer lost). The next
/// endpoint answers "already known" / "nonce too low", which the caller gets as an error
/// although its transaction is in the chain. The wallet then reports a failed deposit (inviting
/// a second one), a failed exit start or challenge is reported as failed, etc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_taken_by_the_first_endpoint_is_not_reported_failed() {
    use alloy::{
        network::{EthereumWallet, TransactionBuilder},
        primitives::Address,
        rpc::types::TransactionRequest,
    };
    let chain = LocalChain::start(60).await.unwrap();
    let (primary, _) = proxy(chain.anvil.endpoint(), Mode::LostSendAnswer).await;
    let endpoints = Endpoints::parse(&format!("{primary},{}", chain.anvil.endpoint())).unwrap();
    let (provider, _) =
        l1::connect_with(&endpoints, EthereumWallet::from(chain.key(3)), &ClientOptions::default())
            .unwrap();
    let to = Address::repeat_byte(0x61);
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(5));
    let sent = provider.send_transaction(tx).await;
    let landed = chain.provider.get_balance(to).await.unwrap() == U256::from(5);
    assert!(landed, "the first endpoint took the transaction and anvil mined it");
    assert!(
        sent.is_ok(),
        "the transaction is mined, yet the caller is told it failed: {}",
        sent.err().map(|e| e.to_string()).unwrap_or_default()
    );
}

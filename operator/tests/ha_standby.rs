//! What a standby serves from the shared PostgreSQL store must be what the leader serves
//! (OP-HA-4): an owner's outputs without those exiting on L1 (LEDGER-9, OP-7), and `pending`
//! for a transaction that is only in the leader's mempool. Real PostgreSQL
//! (`plasma-test-postgres`), a real anvil with the real contracts, two operators.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_contracts::StandardExitGame;
use plasma_operator::HaNode;
use plasma_spec::{Output, SignedTransaction, Transaction, UtxoPos};
use serde_json::Value;
use std::time::Duration;

#[allow(dead_code)] // `Api::new` takes a `Node`; these tests build `Api` from an `HaNode`.
mod common;
use common::Api;
#[path = "common/ha.rs"]
mod ha_env;
use ha_env::{Env, env};

/// A leader and a standby, producing a block every `block_ms`, with their APIs.
async fn pair(env: &Env, block_ms: u64) -> (HaNode, HaNode, Api, Api) {
    let config = |node: &str| {
        let mut c = ha_env::config(env, node);
        c.block.interval_ms = block_ms;
        c
    };
    let a = HaNode::start(config("a")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), a.leading()).await.expect("never led");
    let b = HaNode::start(config("b")).await.unwrap();
    let api = |n: &HaNode| Api { base: format!("http://{}", n.addr), http: reqwest::Client::new() };
    let (api_a, api_b) = (api(&a), api(&b));
    api_b.wait_for("/v1/status", |v| v["role"] == "standby" && v["leader"]["holder"] == "a").await;
    (a, b, api_a, api_b)
}

async fn deposit(env: &Env, amount: U256) -> UtxoPos {
    common::deposit_eth(&env.provider, env.deployment.framework, env.alice.address(), amount).await
}

fn listed(v: &Value) -> Vec<String> {
    v["utxos"]
        .as_array()
        .map(|a| a.iter().map(|u| u["utxoPos"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

fn pos_str(pos: UtxoPos) -> String {
    pos.to_u256().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_leaves_out_exiting_outputs_as_the_leader_does() {
    let env = env().await;
    let (_a, _b, api_a, api_b) = pair(&env, 100).await;
    let eth = U256::from(10u64.pow(18));
    let exiting = deposit(&env, eth).await;
    let kept = deposit(&env, eth * U256::from(2)).await;
    let owner = env.alice.address();
    let all = format!("/v1/utxos?owner={owner}");
    let want_both = vec![pos_str(exiting), pos_str(kept)];
    api_a.wait_for(&all, |v| listed(v) == want_both).await;
    api_b.wait_for(&all, |v| listed(v) == want_both).await;

    // Alice starts a standard exit of the first deposit on L1, from the leader's exit data.
    let (code, data) = api_a.get(&format!("/v1/utxos/{}/exit-data", exiting.to_u128())).await;
    assert_eq!(code, 200, "{data}");
    let hex_field = |k: &str| {
        Bytes::from(hex::decode(data[k].as_str().unwrap().trim_start_matches("0x")).unwrap())
    };
    let game = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    let bond = game.bondSize().call().await.unwrap();
    let args = StandardExitGame::StartArgs {
        utxoPos: exiting.to_u256(),
        txBytes: hex_field("txBytes"),
        inclusionProof: hex_field("inclusionProof"),
        blockTimestamp: data["blockTimestamp"].as_u64().unwrap(),
    };
    let receipt = game
        .startStandardExit(args)
        .value(bond)
        .from(env.alice.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the exit started");

    // The leader stops listing it; the standby answers the same, whole list and pages alike.
    let only_kept = vec![pos_str(kept)];
    let on_a = api_a.wait_for(&all, |v| listed(v) == only_kept).await;
    let on_b = api_b.wait_for(&all, |v| listed(v) == only_kept).await;
    assert_eq!(on_a, on_b);
    // A page of one: the exiting output comes first in position order and must not cost the
    // page its entry, nor leave a `next` that leads nowhere.
    let one = format!("/v1/utxos?owner={owner}&limit=1");
    let (code_a, page_a) = api_a.get(&one).await;
    let (code_b, page_b) = api_b.get(&one).await;
    assert_eq!((code_a, code_b), (200, 200), "{page_a} {page_b}");
    assert_eq!(listed(&page_b), only_kept, "{page_b}");
    assert_eq!(page_a, page_b);
    let proofs = format!("/v1/utxos?owner={owner}&proofs=true");
    assert_eq!(api_a.get(&proofs).await, api_b.get(&proofs).await);
    // The output itself is still served by position (its exit data): by both alike.
    let exit_data = format!("/v1/utxos/{}/exit-data", exiting.to_u128());
    assert_eq!(api_a.get(&exit_data).await, api_b.get(&exit_data).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_answers_pending_for_a_transaction_in_the_leader_s_mempool() {
    let env = env().await;
    // No block for ten minutes: what the leader accepts stays pending.
    let (_a, _b, api_a, api_b) = pair(&env, 600_000).await;
    let eth = U256::from(10u64.pow(18));
    let dep = deposit(&env, eth).await;
    let owner = env.alice.address();
    api_a.wait_for(&format!("/v1/utxos?owner={owner}"), |v| listed(v) == [pos_str(dep)]).await;

    let pay = |to: u8| {
        let tx = Transaction::payment(
            &[dep],
            vec![Output::new(Address::repeat_byte(to), Address::ZERO, eth)],
            B256::ZERO,
        );
        SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)])
    };
    // Looked up on the standby before it exists: unknown (and the standby's mempool index is
    // read once now, so the pending answer below comes from a refresh, not a first read).
    let tx = pay(0xb0);
    let path = format!("/v1/transactions/{}", tx.transaction.hash());
    let (code, body) = api_b.get(&path).await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("UnknownTransaction")), "{body}");

    let (code, body) = api_a.submit(&tx).await;
    assert_eq!(code, 200, "{body}");
    let on_a = api_a.wait_for(&path, |v| v["status"] == "pending").await;
    let on_b = api_b.wait_for(&path, |v| v["status"] == "pending").await;
    assert_eq!(on_a, on_b);

    // A transaction the leader refused (a double spend of the same input) is unknown to both.
    let refused = pay(0xb1);
    let (code, body) = api_a.submit(&refused).await;
    assert_ne!(code, 200, "a double spend was accepted: {body}");
    let refused_path = format!("/v1/transactions/{}", refused.transaction.hash());
    for api in [&api_a, &api_b] {
        let (code, body) = api.get(&refused_path).await;
        assert_eq!((code, body["error"]["code"].as_str()), (404, Some("UnknownTransaction")));
    }
    // Still pending on the standby after its index is read again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(api_b.get(&path).await, (200, on_a));
}

/// A21b-2: a standby whose database stops answering (another session holds every data table
/// locked, as a hung database would leave its reads) keeps its API: `/health` and `/v1/status`
/// answer at once from memory (the status says how long the store has been silent), and reads
/// that need the store answer `503 StorageFailure` within the read deadline, however many wait at
/// once — more than the runtime's workers here. Once the database answers again, so do they.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_database_hangs_answers_from_memory_or_503_in_time() {
    let env = env().await;
    let (_a, _b, _api_a, api_b) = pair(&env, 600_000).await;
    // The background poll has read the head, and says how old its copy is.
    let status = api_b.wait_for("/v1/status", |v| v["standby"]["storeHeadAgeMs"].is_u64()).await;
    // No block stored yet: the head is null, and present.
    assert!(status["standby"].get("storeHead").is_some_and(Value::is_null), "{status}");

    // Another session locks every table the reads touch, and holds the locks until told.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let url = env.pg.url().to_owned();
    let locker = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut t = c.transaction().unwrap();
        t.batch_execute(
            "LOCK TABLE utxos, block_info, block_wire, block_tiles, block_tree_top, block_txs, \
             block_tx_offsets, txs, mempool, meta, exiting IN ACCESS EXCLUSIVE MODE",
        )
        .unwrap();
        locked_tx.send(()).unwrap();
        let _ = released.recv();
        t.commit().unwrap();
    });
    locked.await.unwrap();

    let owner = env.alice.address();
    let reads = [
        format!("/v1/transactions/0x{}", "cd".repeat(32)),
        format!("/v1/utxos?owner={owner}"),
        "/v1/blocks/1".to_owned(),
        format!("/v1/utxos/{}/exit-data", UtxoPos::new(1, 0, 0).unwrap().to_u128()),
    ];
    let started = std::time::Instant::now();
    let waiting: Vec<_> = reads
        .iter()
        .cycle()
        .take(8)
        .map(|path| {
            let (api, path) =
                (Api { base: api_b.base.clone(), http: api_b.http.clone() }, path.clone());
            tokio::spawn(async move { (api.get(&path).await, path) })
        })
        .collect();

    // Meanwhile memory answers at once, and the status shows the store silent.
    let quick = Duration::from_secs(1);
    let (code, _) = tokio::time::timeout(quick, api_b.get("/health")).await.expect("/health");
    assert_eq!(code, 200);
    loop {
        let (code, v) =
            tokio::time::timeout(quick, api_b.get("/v1/status")).await.expect("/v1/status");
        assert_eq!(code, 200, "{v}");
        if v["standby"]["storeError"].as_str().is_some_and(|e| e.contains("has not answered")) {
            assert!(v["standby"]["storeHeadAgeMs"].as_u64() >= Some(1_000), "{v}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the status never said so: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every read: 503 StorageFailure, within the deadline (5 s) and some slack.
    for read in waiting {
        let ((code, body), path) = read.await.unwrap();
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (503, Some("StorageFailure")),
            "{path}: {body}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8), "the reads took {:?}", started.elapsed());

    // The database answers again: so does the standby.
    release.send(()).unwrap();
    locker.join().unwrap();
    let unknown = &reads[0];
    api_b.wait_for(unknown, |v| v["error"]["code"] == "UnknownTransaction").await;
    api_b
        .wait_for("/v1/status", |v| {
            v["standby"]["storeError"].is_null()
                && v["standby"]["storeHeadAgeMs"].as_u64() < Some(1_000)
        })
        .await;
}

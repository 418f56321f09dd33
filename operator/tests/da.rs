//! Block availability (issue 17, spec DA) on a real operator against a real anvil and stub towers
//! on loopback: blocks are committed once `k` towers signed receipts, or after the wait (counted
//! as quorum missed); late towers still get their chunk; receipts by the wrong key do not count;
//! the envelopes rebuild the exact bytes the operator serves; receipts survive a restart and an
//! uncommitted block resumes; the withhold fault answers `BlockWithheld` on every read.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
};
use plasma_da::{DaHeader, Receipt};
use plasma_operator::{Config, DaConfig, Node, TowerConfig};
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos, wire};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

mod common;
use common::Api;
#[path = "common/towers.rs"]
mod towers;
use towers::{StubConfig, StubTower, free_addr, tower_key};

type Env = common::devnet::Chain;

async fn env() -> Env {
    common::devnet::chain().await
}

/// An operator config with `[da]` over `towers` (address, url) in index order.
fn config(
    env: &Env,
    data_dir: &std::path::Path,
    k: u16,
    wait_ms: u64,
    towers: &[(Address, String)],
) -> Config {
    let mut c = Config::devnet();
    c.data_dir = data_dir.into();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = env.anvil.endpoint();
    c.l1.framework = env.deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(env.anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.block.interval_ms = 100;
    c.da = Some(DaConfig {
        k,
        wait_ms: Some(wait_ms),
        retry_ms: 100,
        towers: towers
            .iter()
            .map(|(address, url)| TowerConfig { address: *address, url: url.clone() })
            .collect(),
    });
    c
}

fn stub(env: &Env, index: u16) -> StubConfig {
    let key = tower_key(index.into());
    StubConfig {
        index,
        receipt_key: key.clone(),
        key,
        domain: env.domain.clone(),
        operator: env.operator.address(),
    }
}

async fn deposit(env: &Env, owner: &Signer, amount: U256) -> UtxoPos {
    common::deposit_eth(&env.provider, env.deployment.framework, owner.address(), amount).await
}

fn pay(env: &Env, from: &Signer, input: UtxoPos, to: Address, amount: U256) -> SignedTransaction {
    let tx =
        Transaction::payment(&[input], vec![Output::new(to, Address::ZERO, amount)], B256::ZERO);
    SignedTransaction::new(tx.clone(), vec![from.sign_tx(&env.domain, &tx)])
}

/// Polls `path` until `check` holds, for up to `secs` (the background pushes back off up to
/// seconds, longer than `Api::wait_for`'s deadline).
async fn wait_long(api: &Api, path: &str, secs: u64, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, v) = api.get(path).await;
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting on {path}: last {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn committed_through(v: &Value, blknum: u64) -> bool {
    v["chain"]["nextChildBlock"].as_u64().is_some_and(|n| n > blknum)
        && v["chain"]["uncommittedBlocks"]
            .as_array()
            .is_some_and(|u| u.iter().all(|b| b.as_u64().is_some_and(|b| b > blknum)))
}

fn receipt_indexes(availability: &Value) -> Vec<u64> {
    availability["receipts"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["index"].as_u64()).collect())
        .unwrap_or_default()
}

/// The wire form the operator serves.
async fn served_wire(api: &Api, blknum: u64) -> (u16, Vec<u8>) {
    let r = api
        .http
        .get(format!("{}/v1/blocks/{blknum}", api.base))
        .header("accept", wire::MEDIA_TYPE)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Checks the availability answer: the header signed by the operator for the block's root, and
/// every receipt signed by the tower it names, which is the one configured at its index.
fn check_availability(env: &Env, v: &Value, blknum: u64, towers: &[Address]) -> DaHeader {
    let h = &v["header"];
    let header = DaHeader {
        blknum: h["blknum"].as_u64().unwrap(),
        tx_root: h["txRoot"].as_str().unwrap().parse().unwrap(),
        data_len: h["dataLen"].as_u64().unwrap(),
        k: h["k"].as_u64().unwrap() as u16,
        n: h["n"].as_u64().unwrap() as u16,
        chunk_root: h["chunkRoot"].as_str().unwrap().parse().unwrap(),
    };
    assert_eq!(header.blknum, blknum);
    let sig: Bytes = v["headerSignature"].as_str().unwrap().parse().unwrap();
    assert_eq!(header.signer(&env.domain, &sig).unwrap(), env.operator.address());
    for r in v["receipts"].as_array().unwrap() {
        let index = r["index"].as_u64().unwrap() as u16;
        let tower: Address = r["tower"].as_str().unwrap().parse().unwrap();
        assert_eq!(tower, towers[usize::from(index)]);
        let sig: Bytes = r["signature"].as_str().unwrap().parse().unwrap();
        let receipt = Receipt { blknum, chunk_root: header.chunk_root, index };
        assert_eq!(receipt.signer(&env.domain, &sig).unwrap(), tower);
    }
    header
}

/// k receipts → committed (the wait is a minute: only receipts can commit within the test);
/// the envelopes each tower got verify against the operator and rebuild to the exact bytes
/// served; a deposit block is not distributed; the withhold fault answers `BlockWithheld` on every
/// read touching its block while the block is still distributed and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_receipts_commit_and_the_envelopes_rebuild_the_served_block() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut stubs = Vec::new();
    for i in 0..3 {
        stubs.push(StubTower::start("127.0.0.1:0".parse().unwrap(), stub(&env, i)).await);
    }
    let towers: Vec<(Address, String)> = stubs.iter().map(|s| (s.address, s.url.clone())).collect();
    let addresses: Vec<Address> = towers.iter().map(|t| t.0).collect();
    let mut c = config(&env, dir.path(), 2, 60_000, &towers);
    c.faults.withhold = vec![2000];
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);

    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    let alice = env.alice.address();
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&tx).await.0, 200);
    let started = Instant::now();
    api.wait_for(&format!("/v1/transactions/{}", tx.transaction.hash()), |v| {
        v["status"] == "committed"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(60), "committed by receipts, not the wait");

    let (status, availability) = api.get("/v1/blocks/1000/availability").await;
    assert_eq!(status, 200, "{availability}");
    let header = check_availability(&env, &availability, 1000, &addresses);
    assert!(receipt_indexes(&availability).len() >= 2, "{availability}");
    assert_eq!((header.k, header.n), (2, 3));
    let (_, info) = api.get(&format!("/v1/transactions/{}", tx.transaction.hash())).await;
    assert_eq!(info["root"].as_str().unwrap().parse::<B256>().unwrap(), header.tx_root);

    // Every tower gets its chunk; each verifies against the operator's address.
    for s in &stubs {
        api.wait_for("/v1/status", |_| !s.envelopes(1000).is_empty()).await;
    }
    let (status, served) = served_wire(&api, 1000).await;
    assert_eq!(status, 200);
    assert_eq!(header.data_len, served.len() as u64);
    let envelopes: Vec<_> = stubs.iter().map(|s| s.envelopes(1000).remove(0)).collect();
    for (i, e) in envelopes.iter().enumerate() {
        e.verify(&env.domain, env.operator.address()).unwrap();
        assert_eq!(usize::from(e.index), i);
        assert_eq!(e.header, header);
        assert!(e.verify(&env.domain, env.alice.address()).is_err(), "only the operator's");
    }
    // Any k of them rebuild the exact bytes served.
    for pair in [[0, 1], [0, 2], [1, 2]] {
        let chunks: Vec<(u16, &[u8])> =
            pair.iter().map(|i| (envelopes[*i].index, envelopes[*i].chunk.as_slice())).collect();
        let rebuilt = plasma_da::rebuild(
            header.params().unwrap(),
            header.data_len,
            header.chunk_root,
            &chunks,
        )
        .unwrap();
        assert_eq!(rebuilt, served, "rebuilt from {pair:?}");
    }
    let status = api.wait_for("/v1/status", |v| v["da"]["towers"][2]["behind"] == 0).await;
    assert_eq!(status["da"]["k"], 2);
    assert_eq!(status["da"]["n"], 3);
    assert_eq!(status["da"]["quorumMissed"], 0);
    assert_eq!(status["da"]["towers"][1]["url"], stubs[1].url);
    assert_eq!(status["da"]["towers"][1]["lastError"], Value::Null);
    // A deposit block is not distributed: its data is on L1.
    let (status, body) = api.get(&format!("/v1/blocks/{}/availability", dep.blknum())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NoAvailability")));

    // The withhold fault: block 2000 is distributed and committed, never served.
    let bob_out = UtxoPos::new(1000, 0, 0).unwrap();
    let tx2 = pay(&env, &env.bob, bob_out, alice, eth);
    assert_eq!(api.submit(&tx2).await.0, 200);
    api.wait_for("/v1/status", |v| committed_through(v, 2000)).await;
    for s in &stubs {
        api.wait_for("/v1/status", |_| !s.envelopes(2000).is_empty()).await;
    }
    let (status, availability) = api.get("/v1/blocks/2000/availability").await;
    assert_eq!(status, 200);
    check_availability(&env, &availability, 2000, &addresses);
    let withheld = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("BlockWithheld")),
            "{body}"
        );
    };
    withheld(api.get("/v1/blocks/2000").await);
    assert_eq!(served_wire(&api, 2000).await.0, 404);
    withheld(api.get(&format!("/v1/transactions/{}", tx2.transaction.hash())).await);
    let alice_out = UtxoPos::new(2000, 0, 0).unwrap();
    withheld(api.get(&format!("/v1/utxos/{}/exit-data", alice_out.to_u128())).await);
    withheld(api.get(&format!("/v1/utxos?owner={alice}&proofs=true")).await);
    let (status, page) = api.get(&format!("/v1/utxos?owner={alice}")).await;
    assert_eq!(
        (status, page["utxos"][0]["utxoPos"].as_str()),
        (200, Some(&*alice_out.to_u256().to_string()))
    );
    let body = json!({"txs": [{"blknum": 2000, "txIndex": 0}, {"blknum": 1000, "txIndex": 0}]});
    let (status, items) = api.post("/v1/inclusions", body.to_string().into_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(items["inclusions"][0]["error"]["code"], "BlockWithheld");
    assert_eq!(
        items["inclusions"][1]["root"].as_str().unwrap().parse::<B256>().unwrap(),
        header.tx_root
    );
    // Block 1000 is still served.
    assert_eq!(served_wire(&api, 1000).await.0, 200);

    node.stop().await;
    for s in stubs {
        s.stop().await;
    }
}

/// Fewer than k honest towers: tower 0 is up, tower 1 signs receipts with a key other than its
/// configured one (they do not count), tower 2 is down. The block is committed after the wait
/// with `quorumMissed` = 1 and one receipt; once tower 2 comes up it gets its chunk in the
/// background and its receipt counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_k_receipts_the_block_is_committed_after_the_wait_and_late_towers_catch_up() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let honest = StubTower::start("127.0.0.1:0".parse().unwrap(), stub(&env, 0)).await;
    let mut liar_config = stub(&env, 1);
    liar_config.receipt_key = tower_key(99);
    let liar = StubTower::start("127.0.0.1:0".parse().unwrap(), liar_config).await;
    let late_addr: SocketAddr = free_addr().await;
    let late_key = tower_key(2);
    let towers = vec![
        (honest.address, honest.url.clone()),
        (liar.address, liar.url.clone()),
        (late_key.address(), format!("http://{late_addr}")),
    ];
    let wait = Duration::from_millis(1_500);
    let node =
        Node::start(config(&env, dir.path(), 2, wait.as_millis() as u64, &towers)).await.unwrap();
    let api = Api::new(&node);

    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&tx).await.0, 200);
    let path = format!("/v1/transactions/{}", tx.transaction.hash());
    api.wait_for(&path, |v| v["status"] == "included").await;
    let included = Instant::now();
    api.wait_for(&path, |v| v["status"] == "committed").await;
    assert!(
        included.elapsed() >= wait / 2,
        "committed {:?} after inclusion; the wait is {wait:?}",
        included.elapsed()
    );
    let status = api.wait_for("/v1/status", |v| v["da"]["quorumMissed"] == 1).await;
    let metrics = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("plasma_operator_da_quorum_missed_total 1\n"), "{metrics}");
    assert!(metrics.contains("plasma_operator_da_tower_behind{index=\"2\"} 1\n"), "{metrics}");
    let (_, availability) = api.get("/v1/blocks/1000/availability").await;
    assert_eq!(receipt_indexes(&availability), vec![0], "{availability}");
    // The liar was asked, its receipts refused by signature.
    assert!(liar.puts() >= 1);
    assert!(!liar.envelopes(1000).is_empty(), "the liar got a valid chunk");
    let liar_error = status["da"]["towers"][1]["lastError"].as_str().unwrap_or_default();
    assert!(liar_error.contains("receipt does not count"), "{status}");
    let down_error = status["da"]["towers"][2]["lastError"].as_str().unwrap_or_default();
    assert!(down_error.contains("unreachable"), "{status}");
    assert_eq!(status["da"]["towers"][2]["behind"], 1);

    // Tower 2 comes up: it gets its chunk after the commit, and its receipt counts.
    let late = StubTower::start(late_addr, stub(&env, 2)).await;
    let availability =
        wait_long(&api, "/v1/blocks/1000/availability", 60, |v| receipt_indexes(v) == vec![0, 2])
            .await;
    check_availability(&env, &availability, 1000, &towers.iter().map(|t| t.0).collect::<Vec<_>>());
    let envelope = late.envelopes(1000).remove(0);
    envelope.verify(&env.domain, env.operator.address()).unwrap();
    let status = api.wait_for("/v1/status", |v| v["da"]["towers"][2]["behind"] == 0).await;
    assert_eq!(status["da"]["towers"][2]["lastError"], Value::Null);
    assert_eq!(status["da"]["quorumMissed"], 1, "counted once");

    node.stop().await;
    for s in [honest, liar, late] {
        s.stop().await;
    }
}

/// Receipts are durable, and a block stored but not committed resumes its distribution after a
/// restart: the receipt stored before counts (its tower is not asked again) and the block is
/// committed once the second tower answers — with a wait far longer than the test, so only the
/// quorum commits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_survive_a_restart_and_an_uncommitted_block_resumes() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let first = StubTower::start("127.0.0.1:0".parse().unwrap(), stub(&env, 0)).await;
    let second_addr = free_addr().await;
    let towers = vec![
        (first.address, first.url.clone()),
        (tower_key(1).address(), format!("http://{second_addr}")),
    ];
    let c = config(&env, dir.path(), 2, 600_000, &towers);
    let node = Node::start(c.clone()).await.unwrap();
    let api = Api::new(&node);

    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&tx).await.0, 200);
    let before =
        api.wait_for("/v1/blocks/1000/availability", |v| receipt_indexes(v) == vec![0]).await;
    let (_, status) = api.get("/v1/status").await;
    assert_eq!(status["chain"]["uncommittedBlocks"], json!([1000]), "no quorum, no commit");
    assert_eq!(first.puts(), 1);
    node.stop().await;

    let second = StubTower::start(second_addr, stub(&env, 1)).await;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let (_, after) = api.get("/v1/blocks/1000/availability").await;
    assert_eq!(after["receipts"][0], before["receipts"][0], "the stored receipt survived");
    api.wait_for(&format!("/v1/transactions/{}", tx.transaction.hash()), |v| {
        v["status"] == "committed"
    })
    .await;
    let (_, availability) = api.get("/v1/blocks/1000/availability").await;
    assert_eq!(receipt_indexes(&availability), vec![0, 1]);
    assert_eq!(availability["header"], before["header"], "the same header after the restart");
    check_availability(&env, &availability, 1000, &towers.iter().map(|t| t.0).collect::<Vec<_>>());
    assert_eq!(first.puts(), 1, "a tower with a stored receipt is not asked again");
    assert_eq!(second.envelopes(1000).len(), 1);
    let (_, status) = api.get("/v1/status").await;
    assert_eq!(status["da"]["quorumMissed"], 0);

    node.stop().await;
    first.stop().await;
    second.stop().await;
}

/// Background pushes are bounded by finality: tower 1 is down when block 1000 is committed (k = 1,
/// tower 0's receipt suffices); once the commitment is final on L1 (12 blocks mined on the
/// devnet) the operator stops pushing it, and a tower that comes up afterwards gets the next
/// block but never block 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_pushes_stop_once_the_block_is_final() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let up = StubTower::start("127.0.0.1:0".parse().unwrap(), stub(&env, 0)).await;
    let down_addr = free_addr().await;
    let towers =
        vec![(up.address, up.url.clone()), (tower_key(1).address(), format!("http://{down_addr}"))];
    let node = Node::start(config(&env, dir.path(), 1, 600_000, &towers)).await.unwrap();
    let api = Api::new(&node);

    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&tx).await.0, 200);
    api.wait_for(&format!("/v1/transactions/{}", tx.transaction.hash()), |v| {
        v["status"] == "committed"
    })
    .await;
    let status = api.wait_for("/v1/status", |v| v["da"]["towers"][1]["behind"] == 1).await;
    assert_eq!(status["da"]["quorumMissed"], 0);

    // Final: the devnet's finality depth is 12 L1 blocks.
    let _: Value = env.provider.raw_request("anvil_mine".into(), json!([12])).await.unwrap();
    api.wait_for("/v1/status", |v| v["da"]["towers"][1]["behind"] == 0).await;

    let late = StubTower::start(down_addr, stub(&env, 1)).await;
    let tx2 = pay(&env, &env.bob, UtxoPos::new(1000, 0, 0).unwrap(), env.alice.address(), eth);
    assert_eq!(api.submit(&tx2).await.0, 200);
    api.wait_for("/v1/blocks/2000/availability", |v| receipt_indexes(v) == vec![0, 1]).await;
    assert!(late.envelopes(1000).is_empty(), "a final block is not pushed any more");
    assert_eq!(late.envelopes(2000).len(), 1);

    node.stop().await;
    up.stop().await;
    late.stop().await;
}

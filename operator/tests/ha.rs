//! A highly available operator (issue #21, OP-HA-1..6): operators on one real PostgreSQL
//! (`plasma-test-postgres`) against a real anvil with the real contracts. One leads, the others
//! stand by, serve reads and refuse writes naming it; a standby takes over within about a lease
//! with every acknowledged transaction; a leader whose lease is taken stops at once and cannot
//! write.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::primitives::{Address, B256, U256};
use plasma_contracts::PlasmaFramework;
use plasma_operator::{HaNode, Role};
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos};
use serde_json::{Value, json};
use std::time::Duration;

#[allow(dead_code)] // `Api::new` takes a `Node`; these tests build `Api` from an `HaNode`.
mod common;
use common::Api;
#[path = "common/ha.rs"]
mod ha_env;
use ha_env::{Env, LEASE_MS, config, env, leader};

fn api(node: &HaNode) -> Api {
    Api { base: format!("http://{}", node.addr), http: reqwest::Client::new() }
}

async fn deposit(env: &Env, owner: &Signer, amount: U256) -> UtxoPos {
    common::deposit_eth(&env.provider, env.deployment.framework, owner.address(), amount).await
}

fn pay(env: &Env, from: &Signer, input: UtxoPos, to: Address, amount: U256) -> SignedTransaction {
    let tx =
        Transaction::payment(&[input], vec![Output::new(to, Address::ZERO, amount)], B256::ZERO);
    SignedTransaction::new(tx.clone(), vec![from.sign_tx(&env.domain, &tx)])
}

fn utxo_count(v: &Value) -> usize {
    v["utxos"].as_array().map_or(0, Vec::len)
}

/// Every `BlockSubmitted` on L1: (blknum, root).
async fn submitted(env: &Env) -> Vec<(u64, B256)> {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    logs.into_iter().map(|(e, _)| (e.blknum.to::<u64>(), e.root)).collect()
}

/// The metric `name`'s value in a `/metrics` body.
async fn metric(api: &Api, name: &str) -> f64 {
    let body =
        api.http.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_refuses_writes_naming_the_leader_and_serves_its_blocks_and_proofs() {
    let env = env().await;
    let a = leader(&env, "a").await;
    let b = HaNode::start(config(&env, "b")).await.unwrap();
    let (api_a, api_b) = (api(&a), api(&b));
    let a_url = format!("http://{}", a.addr);

    // b stands by and names a, from the lease row.
    let status = api_b.wait_for("/v1/status", |v| v["leader"]["url"] == a_url).await;
    assert_eq!(status["role"], "standby", "{status}");
    assert_eq!(status["node"], "b");
    assert_eq!(status["leader"]["holder"], "a");
    assert_eq!(status["store"]["backend"], "postgres");
    assert!(status["chain"].is_null(), "a standby keeps no chain: {status}");
    let (_, status_a) = api_a.get("/v1/status").await;
    assert_eq!((status_a["role"].as_str(), status_a["epoch"].as_u64()), (Some("leader"), Some(1)));
    assert!(matches!(b.role(), Role::Standby { leader: Some(l) } if l.epoch == 1));
    assert_eq!(metric(&api_a, "plasma_operator_ha_role").await, 1.0);
    assert_eq!(metric(&api_a, "plasma_operator_ha_epoch").await, 1.0);
    assert_eq!(metric(&api_a, "plasma_operator_ha_transitions_total").await, 1.0);
    assert_eq!(metric(&api_b, "plasma_operator_ha_role").await, 0.0);

    // A payment through the leader, committed on L1.
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    let alice = env.alice.address();
    api_a.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 1).await;
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    let hash = tx.transaction.hash();

    // A write to the standby is refused, naming the leader, and changes nothing.
    let r = api_b
        .http
        .post(format!("{}/v1/transactions", api_b.base))
        .header("content-type", "application/json")
        .body(json!({"tx": format!("0x{}", hex::encode(tx.encode()))}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NotLeader", "{body}");
    assert_eq!(body["error"]["leader"], a_url, "{body}");
    let (code, body) = api_b
        .post(
            "/v1/transactions/batch",
            json!({"txs": [format!("0x{}", hex::encode(tx.encode()))]}).to_string().into_bytes(),
        )
        .await;
    assert_eq!((code, body["error"]["code"].as_str()), (503, Some("NotLeader")), "{body}");
    assert_eq!(
        api_a.get(&format!("/v1/transactions/{hash}")).await.0,
        404,
        "nothing reached the leader"
    );

    let (code, body) = api_a.submit(&tx).await;
    assert_eq!(code, 200, "{body}");
    let on_a =
        api_a.wait_for(&format!("/v1/transactions/{hash}"), |v| v["status"] == "committed").await;
    let blknum = on_a["blknum"].as_u64().unwrap();

    // The standby serves the block, the proof, the UTXOs and the exit data the leader produced,
    // from the store, identical to the leader's.
    let on_b =
        api_b.wait_for(&format!("/v1/transactions/{hash}"), |v| v["status"] == "committed").await;
    assert_eq!(on_a, on_b);
    let (code, block_b) = api_b.get(&format!("/v1/blocks/{blknum}")).await;
    assert_eq!(code, 200, "{block_b}");
    assert_eq!(block_b, api_a.get(&format!("/v1/blocks/{blknum}")).await.1);
    let wire = |api: &Api| {
        api.http
            .get(format!("{}/v1/blocks/{blknum}", api.base))
            .header("accept", plasma_spec::wire::MEDIA_TYPE)
            .send()
    };
    let (wa, wb) = (wire(&api_a).await.unwrap(), wire(&api_b).await.unwrap());
    assert_eq!(wb.status().as_u16(), 200);
    assert_eq!(wa.bytes().await.unwrap(), wb.bytes().await.unwrap());
    let bob = env.bob.address();
    let utxos = format!("/v1/utxos?owner={bob}&proofs=true");
    let (code, utxos_b) = api_b.get(&utxos).await;
    assert_eq!(code, 200, "{utxos_b}");
    assert_eq!(utxo_count(&utxos_b), 1, "{utxos_b}");
    assert_eq!(utxos_b, api_a.get(&utxos).await.1);
    let pos = UtxoPos::new(blknum, 0, 0).unwrap().to_u128();
    let (code, exit_b) = api_b.get(&format!("/v1/utxos/{pos}/exit-data")).await;
    assert_eq!(code, 200, "{exit_b}");
    assert_eq!(exit_b, api_a.get(&format!("/v1/utxos/{pos}/exit-data")).await.1);
    let ask = json!({"txs": [{"blknum": blknum, "txIndex": 0}]}).to_string().into_bytes();
    let (code, inc_b) = api_b.post("/v1/inclusions", ask.clone()).await;
    assert_eq!(code, 200, "{inc_b}");
    assert_eq!(inc_b, api_a.post("/v1/inclusions", ask).await.1);
    // Spent and unknown outputs are unknown on the standby too.
    let spent = api_b.get(&format!("/v1/utxos/{}/exit-data", dep.to_u128())).await;
    assert_eq!(spent.0, 404, "{}", spent.1);

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_within_a_lease_with_every_acknowledged_transaction() {
    let env = env().await;
    let a = leader(&env, "a").await;
    let b = HaNode::start(config(&env, "b")).await.unwrap();
    let (api_a, api_b) = (api(&a), api(&b));
    let eth = U256::from(10).pow(U256::from(18));
    let alice = env.alice.address();

    // Payments acknowledged by the leader: alice to bob, then bob back in a chain of spends,
    // the last ones still in the mempool when the leader dies.
    let mut deposits = Vec::new();
    for _ in 0..3 {
        deposits.push(deposit(&env, &env.alice, eth).await);
    }
    api_a.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 3).await;
    let mut acked = Vec::new();
    for dep in &deposits {
        let tx = pay(&env, &env.alice, *dep, env.bob.address(), eth);
        let (code, body) = api_a.submit(&tx).await;
        assert_eq!(code, 200, "{body}");
        acked.push(tx.transaction.hash());
    }
    api_a.wait_for(&format!("/v1/transactions/{}", acked[0]), |v| v["status"] == "committed").await;

    // The leader dies without releasing its lease.
    let died = tokio::time::Instant::now();
    a.crash().await;
    let epoch =
        tokio::time::timeout(Duration::from_secs(10), b.leading()).await.expect("no takeover");
    let took = died.elapsed();
    assert_eq!(epoch, 2);
    // About a lease: it runs out, then the standby's next try (every lease/5) wins.
    assert!(took <= Duration::from_millis(LEASE_MS * 3), "takeover took {took:?}");
    let (_, status) = api_b.get("/v1/status").await;
    assert_eq!((status["role"].as_str(), status["epoch"].as_u64()), (Some("leader"), Some(2)));
    assert_eq!(metric(&api_b, "plasma_operator_ha_role").await, 1.0);
    assert_eq!(metric(&api_b, "plasma_operator_ha_epoch").await, 2.0);

    // Every acknowledged transaction is there and gets committed, once.
    for hash in &acked {
        api_b.wait_for(&format!("/v1/transactions/{hash}"), |v| v["status"] == "committed").await;
    }
    let bob = env.bob.address();
    api_b.wait_for(&format!("/v1/utxos?owner={bob}"), |v| utxo_count(v) == 3).await;
    // The new leader accepts and commits new payments; one root per child block on L1.
    let (_, page) = api_b.get(&format!("/v1/utxos?owner={bob}")).await;
    let input: UtxoPos =
        UtxoPos::from_u128(page["utxos"][0]["utxoPos"].as_str().unwrap().parse().unwrap()).unwrap();
    let back = pay(&env, &env.bob, input, alice, eth);
    let (code, body) = api_b.submit(&back).await;
    assert_eq!(code, 200, "{body}");
    api_b
        .wait_for(&format!("/v1/transactions/{}", back.transaction.hash()), |v| {
            v["status"] == "committed"
        })
        .await;
    let roots = submitted(&env).await;
    let mut numbers: Vec<u64> = roots.iter().map(|(n, _)| *n).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), roots.len(), "a block number committed twice: {roots:?}");

    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_is_stolen_stops_and_its_writes_are_refused() {
    let env = env().await;
    let a = leader(&env, "a").await;
    let api_a = api(&a);
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    let alice = env.alice.address();
    api_a.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 1).await;

    // Someone else takes the lease behind its back (a partitioned leader's view).
    let pg = env.pg.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&pg, postgres::NoTls).unwrap();
        c.execute(
            "UPDATE plasma_leader SET epoch = epoch + 1, holder = 'thief', url = 'http://thief.invalid', \
             expires_at = clock_timestamp() + interval '1 hour' WHERE id = 1",
            &[],
        )
        .unwrap();
    })
    .await
    .unwrap();

    // It notices at its next renewal (lease/5), stops leading and says why.
    let why = tokio::time::timeout(Duration::from_millis(LEASE_MS * 2), a.deposed())
        .await
        .expect("the deposed leader went on");
    assert!(why.contains("epoch 2") && why.contains("thief"), "{why}");
    assert!(matches!(a.role(), Role::Deposed { epoch: 1, .. }));
    // Its next write is refused, and nothing of it reaches the store.
    let tx = pay(&env, &env.alice, dep, env.bob.address(), eth);
    let (code, body) = api_a.submit(&tx).await;
    assert_eq!((code, body["error"]["code"].as_str()), (503, Some("NotLeader")), "{body}");
    let (_, status) = api_a.get("/v1/status").await;
    assert_eq!(status["role"], "deposed", "{status}");
    assert_eq!(metric(&api_a, "plasma_operator_ha_role").await, 0.0);
    assert_eq!(metric(&api_a, "plasma_operator_ha_transitions_total").await, 2.0);
    // The store itself refuses a write fenced to the old epoch (OP-HA-2).
    let pg = env.pg.url().to_owned();
    let refused = tokio::task::spawn_blocking(move || {
        let store =
            plasma_operator::Store::open_postgres(&pg, &plasma_operator::PgOptions::pool(1))
                .unwrap();
        store.set_fence(1);
        store.apply(&plasma_operator::Batch {
            meta: vec![("exit_cursor", 99)],
            ..plasma_operator::Batch::default()
        })
    })
    .await
    .unwrap();
    assert!(
        matches!(
            refused,
            Err(plasma_operator::StoreError::Fenced { ours: Some(1), current: Some(2) })
        ),
        "{refused:?}"
    );

    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_started_together_elect_exactly_one() {
    let env = env().await;
    let (a, b) = tokio::join!(HaNode::start(config(&env, "a")), HaNode::start(config(&env, "b")));
    let (a, b) = (a.unwrap(), b.unwrap());
    let epoch = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! { e = a.leading() => e, e = b.leading() => e }
    })
    .await
    .expect("nobody led");
    assert_eq!(epoch, 1);
    // Several renewal periods later, still one leader, still epoch 1.
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
    let roles = [a.role(), b.role()];
    let leaders = roles.iter().filter(|r| matches!(r, Role::Leader { epoch: 1, .. })).count();
    let standbys = roles
        .iter()
        .filter(|r| matches!(r, Role::Standby { leader: Some(l) } if l.epoch == 1))
        .count();
    assert_eq!((leaders, standbys), (1, 1), "{roles:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_wins_but_cannot_lead_releases_the_lease_and_says_why() {
    let env = env().await;
    // L1 unreachable: it wins the lease, cannot start leading, and must not sit on the lease.
    let mut c = config(&env, "cut-off");
    c.l1.rpc_url = "http://127.0.0.1:9".into();
    let a = HaNode::start(c).await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(20), a.deposed()).await.expect("no exit");
    assert!(why.contains("could not start leading in epoch 1"), "{why}");
    // Released: a healthy process takes over at its first try, well inside a lease.
    let b = HaNode::start(config(&env, "b")).await.unwrap();
    let epoch = tokio::time::timeout(Duration::from_millis(LEASE_MS / 2 + 2_000), b.leading())
        .await
        .expect("the lease was not released");
    assert_eq!(epoch, 2);
    assert_eq!(api(&a).get("/v1/status").await.1["role"], "standby");
    b.stop().await;
    a.stop().await;
}

/// A database made by the previous release (migration 0001 only, the leader row in
/// `plasma_leader` alone) is migrated at open: the lease row is copied, so the process leading
/// then is still the holder; a new process then takes over only once that lease runs out, and
/// moves the fence on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_release_keeps_its_leader_through_the_migration() {
    let env = env().await;
    let pg = env.pg.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&pg, postgres::NoTls).unwrap();
        c.batch_execute(include_str!("../migrations/0001_init.sql")).unwrap();
        c.batch_execute(
            "CREATE TABLE plasma_schema (version integer PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now()); \
             INSERT INTO plasma_schema (version, name) VALUES (1, 'init'); \
             INSERT INTO plasma_leader VALUES (1, 7, 'old', 'http://old.invalid', \
             clock_timestamp() + interval '3 seconds')",
        )
        .unwrap();
    })
    .await
    .unwrap();
    let b = HaNode::start(config(&env, "b")).await.unwrap();
    let copied =
        env.pg.psql("SELECT epoch || ' ' || holder || ' ' || url FROM plasma_lease").unwrap();
    assert_eq!(copied.trim(), "7 old http://old.invalid");
    // Still the old holder's while its lease runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        matches!(b.role(), Role::Standby { leader: Some(l) } if l.holder == "old" && l.epoch == 7),
        "{:?}",
        b.role()
    );
    // Then b takes over, in epoch 8, in both rows; the old release's row never expires again.
    let epoch =
        tokio::time::timeout(Duration::from_secs(20), b.leading()).await.expect("never led");
    assert_eq!(epoch, 8);
    let rows = env
        .pg
        .psql(
            "SELECT f.epoch || ' ' || f.holder || ' ' || l.epoch || ' ' || l.holder || ' ' || \
             (f.expires_at = 'infinity') FROM plasma_leader f, plasma_lease l",
        )
        .unwrap();
    assert_eq!(rows.trim(), "8 b 8 b true");
    b.stop().await;
}

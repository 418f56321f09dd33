//! The watchtower attacked (spec/05-watcher.md WATCH-1 … WATCH-16, spec/04-exit-game.md): every
//! test is an attack by a byzantine operator, a thief or a griefer with L1 access, against the
//! real watcher, a real anvil and the real contracts (the real operator where an honest one is
//! needed; a lying one is an HTTP fake). Each asserts what protects the guarded users: which
//! exits stand or are challenged on L1, which outputs are exited and for whom, the rewards and
//! the transactions the tower sent, and what survives a restart.
//!
//! Randomized tests print their seed; `TOWER_SEED=<n>` replays one.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, clippy::too_many_lines)]
// The operator's warp routes, started in-process, nest deeper than the default 128.
#![recursion_limit = "256"]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use plasma_contracts::{
    BatchExitGame, DeployConfig, PlasmaFramework, StandardExitGame,
    devnet::{LocalChain, anvil},
};
use plasma_spec::{
    BlockTree, ExitAuthorization, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    test_utils::{pay_eth, pos},
    wire,
};
use plasma_testkit::{Env, PERIOD, dead_url, env, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

// ---------------------------------------------------------------------------------------------
// Set-up shared by the attacks.

/// A seeded RNG (`TOWER_SEED` replays a run); the seed is printed.
fn rng(test: &str) -> StdRng {
    let seed = std::env::var("TOWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    eprintln!("{test}: TOWER_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// A provider signing as anvil account `i` (fresh: no nonce cached from other senders).
fn l1_as(env: &Env, i: usize) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(key(env, i)))
        .connect_http(env.anvil.endpoint_url())
        .erased()
}

fn signer(env: &Env, i: usize) -> Signer {
    Signer::from_bytes(&key(env, i).to_bytes()).unwrap()
}

fn domain(env: &Env) -> SigningDomain {
    SigningDomain::new(env.anvil.chain_id(), env.deployment.framework)
}

/// How a test's watcher is configured.
#[derive(Clone)]
struct Conf {
    operator_url: String,
    account: usize,
    dir: &'static str,
    availability: Duration,
    stuck_after: Duration,
    stall: Duration,
    process_exits: bool,
}

impl Conf {
    fn new(operator_url: String) -> Self {
        Self {
            operator_url,
            account: 5,
            dir: "watcher",
            availability: Duration::from_secs(1),
            stuck_after: Duration::from_millis(300),
            stall: Duration::from_secs(15),
            process_exits: false,
        }
    }
}

/// The real watcher, started in-process as `plasma-watcher` runs it.
async fn start(env: &Env, c: &Conf) -> plasma_watcher::Running {
    let key = key(env, c.account);
    let me = key.address();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: c.operator_url.clone(),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: c.availability,
        process_exits: c.process_exits,
        deadline_margin: Duration::from_secs(30),
        stuck_after: c.stuck_after,
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings {
            stall_timeout: c.stall,
            ..plasma_watcher::DownloadSettings::default()
        },
    };
    let dir = env.dir.path().join(c.dir);
    let w = Watcher::new(settings, me, l1_as(env, c.account), &dir).await.unwrap();
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Waits (with a deadline) until `f` holds.
async fn until<F: Fn() -> bool>(what: &str, secs: u64, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the watcher has recorded an event matching `f`.
async fn wait_event(w: &plasma_watcher::Running, secs: u64, f: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(e) = w.watcher.events().into_iter().find(|e| f(e)) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such event; status {:?}; events {:?}",
            w.watcher.status(),
            w.watcher.events()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the watcher has read L1 up to its head and validated everything committed.
async fn until_synced(env: &Env, w: &plasma_watcher::Running) {
    let head = env.provider.get_block_number().await.unwrap();
    until("the watcher caught up", 30, || {
        let s = w.watcher.status();
        s.l1_cursor >= head && s.pending_blocks == 0
    })
    .await;
}

async fn mine(env: &Env, n: u64) {
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (n,)).await.unwrap();
}

async fn nonce(env: &Env, who: Address) -> u64 {
    env.provider.get_transaction_count(who).await.unwrap()
}

async fn withdrawable(env: &Env, who: Address) -> U256 {
    PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .withdrawable(who, Address::ZERO)
        .call()
        .await
        .unwrap()
}

async fn exit_status(env: &Env, p: u128) -> u8 {
    StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone())
        .exits(U256::from(p))
        .call()
        .await
        .unwrap()
        .status
}

fn standard_bond() -> U256 {
    DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond
}

/// Deposits `amount` wei of ETH for account `account` straight to the framework; its position.
async fn deposit(env: &Env, account: usize, amount: U256) -> UtxoPos {
    let owner = key(env, account).address();
    let framework = PlasmaFramework::new(env.deployment.framework, l1_as(env, account));
    let tx = Transaction::deposit(owner, Address::ZERO, amount).encode();
    let receipt =
        framework.depositEth(tx.into()).value(amount).send().await.unwrap().get_receipt().await;
    let receipt = receipt.unwrap();
    assert!(receipt.status());
    let logs = framework
        .DepositCreated_filter()
        .from_block(receipt.block_number.unwrap())
        .query()
        .await
        .unwrap();
    let (ev, _) = logs.iter().rev().find(|(e, _)| e.owner == owner).unwrap();
    pos(ev.blknum.try_into().unwrap(), 0, 0)
}

/// Commits `root` as child block `blknum` with the operator key; the commitment's L1 timestamp.
async fn commit(env: &Env, blknum: u64, root: B256) -> u64 {
    let framework = PlasmaFramework::new(env.deployment.framework, l1_as(env, 0));
    let receipt = framework
        .submitBlock(U256::from(blknum), root)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let b = env.provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap();
    b.unwrap().header.timestamp
}

/// Account `owner` authorizes the watcher `w` (EXIT-9) through `POST /v1/guards`.
async fn guard(env: &Env, w: &plasma_watcher::Running, owner: usize) {
    let s = signer(env, owner);
    let standard = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    let nonce = standard.authorizationNonce(s.address()).call().await.unwrap();
    let auth = ExitAuthorization {
        exitor: w.watcher.address(),
        deadline: U256::from(2_000_000_000u64),
        nonce,
    };
    let sig = s.sign_digest(domain(env).exit_authorization_digest(&auth));
    let body = json!({"owner": s.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/guards", w.addr))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Every claim of every batch exit on L1: (position, owner, amount), in log order.
async fn batch_claims(env: &Env) -> Vec<(UtxoPos, Address, U256)> {
    let game = BatchExitGame::new(env.deployment.batch_exit_game, env.provider.clone());
    let groups = game.BatchExitGroup_filter().from_block(0).query().await.unwrap();
    let mut out = Vec::new();
    for (g, _) in groups {
        for (p, amount) in plasma_spec::batch_exit::decode_claims(&g.claims).unwrap() {
            out.push((p, g.owner, amount));
        }
    }
    out
}

/// A thousandth of an ether, in wei.
const MILLI: u64 = 1_000_000_000_000_000;

fn eth_milli(m: u64) -> U256 {
    U256::from(m) * U256::from(10u64.pow(15))
}

// ---------------------------------------------------------------------------------------------
// WATCH-13 (the earlier audits' "exits nobody when short of funds"), WATCH-9, restart.

/// A griefer cannot make a poor tower exit the wrong outputs, or none. Four guarded owners hold
/// deposits of random amounts (some dust); the tower's balance is set to pay for exactly `k`
/// claims (random, 0 … all), and the operator withholds a block. The tower must claim the `k`
/// richest outputs (no dust, each for its owner), none if it can afford none, and say it is
/// short. Then it restarts on its store with a topped-up balance: every output worth exiting is
/// then exited exactly once — by a later batch or, below an owner's watermark, by a standard
/// exit — and nothing claimed before is claimed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poor_tower_exits_the_richest_outputs_then_the_rest_once_funded_after_a_restart() {
    let mut rng = rng("underfunded");
    let env = env().await;
    let c = Conf::new(dead_url());
    let w = start(&env, &c).await;
    let tower = w.watcher.address();
    let menu = [1u64, 2, 20, 50, 100, 300, 1_000, 2_000]; // milli-ether; 1 and 2 are dust
    let mut outputs: Vec<(UtxoPos, Address, U256)> = Vec::new();
    for owner in 1..=4usize {
        for _ in 0..rng.random_range(1..=3) {
            let amount = eth_milli(menu[rng.random_range(0..menu.len())]);
            outputs.push((deposit(&env, owner, amount).await, key(&env, owner).address(), amount));
        }
        guard(&env, &w, owner).await;
    }
    until_synced(&env, &w).await;

    // The costs the tower plans with (WATCH-9, WATCH-13): a claim bond and a claim's start and
    // payout gas per output, one batch bond per transaction, at the node's price with its room.
    let game = BatchExitGame::new(env.deployment.batch_exit_game, env.provider.clone());
    let claim_bond = game.claimBondSize().call().await.unwrap();
    let batch_bond = game.batchBondSize().call().await.unwrap();
    let price = env.provider.get_gas_price().await.unwrap();
    let gas_price = U256::from(price + price / 2 + 1);
    let per_claim = claim_bond + U256::from(198_000u64) * gas_price;
    let dust_below = U256::from(198_000u64) * gas_price + claim_bond / U256::from(2);
    let mut worth: Vec<U256> =
        outputs.iter().map(|o| o.2).filter(|a| *a >= dust_below).collect::<Vec<_>>();
    worth.sort_by(|a, b| b.cmp(a));
    let k = rng.random_range(0..=worth.len());
    // Exactly k claims: a third of a claim to spare (a claim bond alone is more than that, so
    // the price falling a little between this read and the tower's cannot buy one more).
    let balance = batch_bond
        + per_claim * U256::from(k)
        + U256::from(300_000u64) * gas_price
        + per_claim / U256::from(3);
    env.provider
        .raw_request::<_, Value>("anvil_setBalance".into(), (tower, balance))
        .await
        .unwrap();
    eprintln!("outputs {outputs:?}; worth {worth:?}; k = {k}");

    commit(&env, 1000, B256::repeat_byte(0x66)).await;
    wait_event(&w, 20, |e| matches!(e, Event::BlockWithheld { blknum: 1000 })).await;
    if k < worth.len() {
        let e = wait_event(&w, 20, |e| matches!(e, Event::Underfunded { .. })).await;
        let Event::Underfunded { unaffordable, .. } = e else { unreachable!() };
        assert_eq!(unaffordable, worth.len() - k, "the shortfall reported");
    }
    if k > 0 {
        wait_event(&w, 20, |e| matches!(e, Event::BatchMassExit { .. })).await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let claimed = batch_claims(&env).await;
    let mut got: Vec<U256> = claimed.iter().map(|c| c.2).collect();
    got.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, worth[..k].to_vec(), "the k richest outputs, no dust; claims {claimed:?}");
    for (p, owner, amount) in &claimed {
        assert!(outputs.contains(&(*p, *owner, *amount)), "{p} claimed for its owner");
    }
    w.stop().await;

    // Funded again and restarted on the same store: the rest goes out, nothing twice.
    env.provider
        .raw_request::<_, Value>("anvil_setBalance".into(), (tower, plasma_testkit::eth(100)))
        .await
        .unwrap();
    let w = start(&env, &c).await;
    let worth_outputs: Vec<(UtxoPos, Address, U256)> =
        outputs.iter().filter(|o| o.2 >= dust_below).copied().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let claimed = batch_claims(&env).await;
        let mut missing = Vec::new();
        for o in &worth_outputs {
            let in_batch = claimed.iter().filter(|c| c.0 == o.0).count();
            let standard = exit_status(&env, o.0.to_u128()).await;
            assert!(in_batch <= 1, "{} claimed twice: {claimed:?}", o.0);
            assert!(in_batch == 0 || standard == 0, "{} exited twice", o.0);
            if in_batch == 0 && standard == 0 {
                missing.push(o.0);
            }
        }
        for o in outputs.iter().filter(|o| o.2 < dust_below) {
            assert!(!claimed.iter().any(|c| c.0 == o.0), "dust {} claimed", o.0);
            assert_eq!(exit_status(&env, o.0.to_u128()).await, 0, "dust {} exited", o.0);
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never exited: {missing:?}; events {:?}",
            w.watcher.events()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// WATCH-4, WATCH-8: only invalid exits are challenged, whatever the order.

/// A thief hides invalid exits among honest ones: alice exits deposits she spent, carol and bob
/// exit outputs they hold, in a random order and random groupings over several L1 blocks. Every
/// invalid exit is challenged; no honest exit is (a challenge of one would revert and cost gas,
/// or worse); the tower's reward is exactly half a bond per invalid exit and it sent exactly one
/// transaction per invalid exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_random_honest_exits_only_the_invalid_ones_are_challenged() {
    let mut rng = rng("mix");
    let env = env().await;
    let node = operator(&env).await;
    let mut c = Conf::new(format!("http://{}", node.addr));
    c.availability = Duration::from_secs(5);
    let w = start(&env, &c).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = wallet(&env, &node, 3).await;
    let unit = eth_milli(100);
    let n_spent = rng.random_range(1..=plasma_spec::MAX_INPUTS);
    let mut spent = Vec::new();
    for _ in 0..n_spent {
        spent.push(alice.deposit_eth(unit).await.unwrap());
    }
    let mut honest_carol = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        honest_carol.push(carol.deposit_eth(unit).await.unwrap());
    }
    for &d in &spent {
        alice.wait_for_output(d, Duration::from_secs(30)).await.unwrap();
    }
    for &d in &honest_carol {
        carol.wait_for_output(d, Duration::from_secs(30)).await.unwrap();
    }
    let total = unit * U256::from(n_spent);
    let hash = alice.send(bob.address(), Address::ZERO, total, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(30)).await.unwrap();
    until_synced(&env, &w).await;
    let bobs: Vec<u128> = {
        let page = plasma_sdk::OperatorClient::new(format!("http://{}", node.addr))
            .utxo_page(bob.address(), None, 10, false)
            .await
            .unwrap();
        page.utxos.iter().map(|u| u.utxo_pos).collect()
    };
    assert_eq!(bobs.len(), 1);
    bob.wait_for_output(bobs[0], Duration::from_secs(30)).await.unwrap();
    let before = nonce(&env, w.watcher.address()).await;

    // (who, position, invalid), shuffled, sent in random groups of one exit per L1 transaction
    // or several.
    let mut exits: Vec<(u8, u128, bool)> = spent.iter().map(|&p| (1, p, true)).collect();
    exits.extend(honest_carol.iter().map(|&p| (3, p, false)));
    exits.push((2, bobs[0], false));
    exits.shuffle(&mut rng);
    let mut rest = exits.as_slice();
    while !rest.is_empty() {
        let who = rest[0].0;
        let n = rest.iter().take_while(|e| e.0 == who).count();
        let n = rng.random_range(1..=n);
        let group: Vec<u128> = rest[..n].iter().map(|e| e.1).collect();
        let w = match who {
            1 => &alice,
            2 => &bob,
            _ => &carol,
        };
        w.start_exits_unchecked(&group).await.unwrap();
        rest = &rest[n..];
        if rng.random_bool(0.5) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        }
    }
    for &p in &spent {
        let name = UtxoPos::from_u128(p).unwrap().to_string();
        wait_event(
            &w,
            30,
            |e| matches!(e, Event::Challenged { utxo_pos, .. } if *utxo_pos == name),
        )
        .await;
    }
    // A few more steps: nothing else is sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (_, p, invalid) in &exits {
        let want = if *invalid { 2 } else { 1 };
        assert_eq!(exit_status(&env, *p).await, want, "exit of {p} (invalid: {invalid})");
    }
    assert_eq!(
        withdrawable(&env, w.watcher.address()).await,
        standard_bond() / U256::from(2) * U256::from(n_spent),
        "half a bond per invalid exit"
    );
    assert_eq!(nonce(&env, w.watcher.address()).await, before + n_spent as u64);
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::ActionFailed { .. })),
        "{:?}",
        w.watcher.events()
    );
    assert!(w.watcher.status().safe);
    w.stop().await;
    node.stop().await;
}

// ---------------------------------------------------------------------------------------------
// WATCH-11: a challenge front-run by someone else.

/// Two towers (a griefer's and ours) race for the same challenges on an L1 that mines a block
/// a second. Each exit is challenged once on L1; the rewards of both add up to half a bond per
/// exit; a tower that lost the race (its challenge reverted, or it saw the exit challenged) does
/// not send it again: each tower sent at most one transaction per exit, and nothing more after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_towers_racing_for_the_same_challenges_challenge_each_exit_once() {
    let mut rng = rng("race");
    let LocalChain { anvil, provider, deployment } =
        LocalChain::start_with(anvil().block_time(1), PERIOD).await.unwrap();
    let env = Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() };
    let node = operator(&env).await;
    let mut c = Conf::new(format!("http://{}", node.addr));
    c.availability = Duration::from_secs(10);
    c.stuck_after = Duration::from_secs(3);
    let a = start(&env, &c).await;
    let mut c2 = c.clone();
    c2.account = 6;
    c2.dir = "watcher-2";
    let b = start(&env, &c2).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let unit = eth_milli(100);
    let n = rng.random_range(1..=plasma_spec::MAX_INPUTS);
    let mut spent = Vec::new();
    for _ in 0..n {
        spent.push(alice.deposit_eth(unit).await.unwrap());
    }
    for &d in &spent {
        alice.wait_for_output(d, Duration::from_secs(60)).await.unwrap();
    }
    let hash =
        alice.send(bob.address(), Address::ZERO, unit * U256::from(n), U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(60)).await.unwrap();
    until_synced(&env, &a).await;
    until_synced(&env, &b).await;
    let (na, nb) = (nonce(&env, a.watcher.address()).await, nonce(&env, b.watcher.address()).await);
    spent.shuffle(&mut rng);
    let split = rng.random_range(1..=n);
    alice.start_exits_unchecked(&spent[..split]).await.unwrap();
    if split < n {
        alice.start_exits_unchecked(&spent[split..]).await.unwrap();
    }
    for &p in &spent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while exit_status(&env, p).await != 2 {
            assert!(tokio::time::Instant::now() < deadline, "{p} never challenged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both towers' steps after the race, and a few L1 blocks.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (sa, sb) = (nonce(&env, a.watcher.address()).await, nonce(&env, b.watcher.address()).await);
    assert!(
        sa - na <= n as u64 && sb - nb <= n as u64,
        "sent {} and {} for {n} exits",
        sa - na,
        sb - nb
    );
    let rewards = withdrawable(&env, a.watcher.address()).await
        + withdrawable(&env, b.watcher.address()).await;
    assert_eq!(rewards, standard_bond() / U256::from(2) * U256::from(n), "one reward per exit");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (nonce(&env, a.watcher.address()).await, nonce(&env, b.watcher.address()).await),
        (sa, sb),
        "nothing sent again after the race"
    );
    a.stop().await;
    b.stop().await;
    node.stop().await;
}

// ---------------------------------------------------------------------------------------------
// WATCH-1, WATCH-11: a reorganisation that removes the exit the tower challenged.

/// The thief's exit and the tower's challenge are both reorganised away, and the new chain has
/// no exit. The tower must forget its challenge (`ActionLost`) without sending it again against
/// an exit that does not exist (a revert, gas for nothing, and a nonce taken); when the thief
/// starts the exit again, it is challenged again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_removes_the_exit_itself_sends_nothing_until_it_returns() {
    let env = env().await;
    let node = operator(&env).await;
    let mut c = Conf::new(format!("http://{}", node.addr));
    c.availability = Duration::from_secs(5);
    let w = start(&env, &c).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let unit = eth_milli(1000);
    let dep = alice.deposit_eth(unit).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, unit, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    until_synced(&env, &w).await;
    let me = w.watcher.address();
    let before = nonce(&env, me).await;
    node.stop().await; // its own commitments would ride the reorganisation too
    let exit_tx = alice.start_exits_unchecked(&[dep]).await.unwrap();
    let first = wait_event(&w, 20, |e| matches!(e, Event::Challenged { .. })).await;
    let Event::Challenged { l1_tx: first_tx, .. } = first else { unreachable!() };
    assert_eq!(nonce(&env, me).await, before + 1);

    // The thief's signed exit, to send it again after the reorganisation (her wallet's nonce
    // cache would put a fresh one behind a gap).
    let raw: Bytes =
        env.provider.raw_request("eth_getRawTransactionByHash".into(), (exit_tx,)).await.unwrap();
    let started_in =
        env.provider.get_transaction_receipt(exit_tx).await.unwrap().unwrap().block_number.unwrap();
    let head = env.provider.get_block_number().await.unwrap();
    env.provider
        .raw_request::<_, Value>("anvil_reorg".into(), (head - started_in + 1, json!([])))
        .await
        .unwrap();
    wait_event(&w, 20, |e| matches!(e, Event::ActionLost { l1_tx, .. } if *l1_tx == first_tx))
        .await;
    let after_reorg = nonce(&env, me).await;
    // Steps go by; if L1 still holds no exit, nothing is sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if exit_status(&env, dep).await == 0 {
        assert_eq!(nonce(&env, me).await, after_reorg, "a challenge of an exit that is gone");
        assert!(
            !w.watcher.events().iter().any(|e| matches!(e, Event::ActionFailed { .. })),
            "{:?}",
            w.watcher.events()
        );
        // The thief tries again.
        eprintln!("the exit is gone; the thief sends it again");
        let _ = env.provider.send_raw_transaction(&raw).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while exit_status(&env, dep).await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.events());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(withdrawable(&env, me).await, standard_bond() / U256::from(2), "one reward");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::ActionFailed { .. })),
        "no challenge reverted: {:?}",
        w.watcher.events()
    );
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// WATCH-11 across a restart: a challenge pending when the tower stops.

/// L1 stops mining with the tower's challenge in the pool; the tower is restarted on its store
/// (a new process knows nothing of its pending transaction). Once L1 mines again the exit is
/// challenged exactly once: one transaction of the tower's mined, one reward, nothing after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_restarted_with_its_challenge_pending_challenges_once() {
    let env = env().await;
    let node = operator(&env).await;
    let mut c = Conf::new(format!("http://{}", node.addr));
    c.availability = Duration::from_secs(5);
    let w = start(&env, &c).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let unit = eth_milli(1000);
    let dep = alice.deposit_eth(unit).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, unit, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    until_synced(&env, &w).await;
    let me = w.watcher.address();
    let before = nonce(&env, me).await;
    node.stop().await; // nothing else competes for L1 blocks

    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (false,)).await.unwrap();
    let exits = [dep];
    let pending_from = |who: Address| {
        let provider = env.provider.clone();
        async move {
            let pool: Value = provider.raw_request("txpool_content".into(), ()).await.unwrap();
            pool["pending"].as_object().is_some_and(|m| {
                m.keys().any(|k| k.to_lowercase() == who.to_string().to_lowercase())
            })
        }
    };
    let mine_the_exit = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !pending_from(alice.address()).await {
            assert!(tokio::time::Instant::now() < deadline, "alice's exit never reached the pool");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        mine(&env, 1).await;
    };
    let (started, ()) = tokio::join!(alice.start_exits_unchecked(&exits), mine_the_exit);
    started.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !pending_from(me).await {
        assert!(tokio::time::Instant::now() < deadline, "no challenge in the pool");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    w.stop().await;
    let w = start(&env, &c).await;
    // The new process plans the challenge again and meets its own pending transaction.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (true,)).await.unwrap();
    mine(&env, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while exit_status(&env, dep).await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.events());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(withdrawable(&env, me).await, standard_bond() / U256::from(2), "one reward");
    assert_eq!(nonce(&env, me).await, before + 1, "one transaction of the tower mined");
    let pool: Value = env.provider.raw_request("txpool_content".into(), ()).await.unwrap();
    assert!(!pending_from(me).await, "nothing of the tower left pending: {pool}");
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// WATCH-3 against a lying operator.

/// The fake operator's blocks: per number, the right bytes and an impostor's.
type Served = Arc<parking_lot::Mutex<BTreeMap<u64, (Vec<u8>, Vec<u8>)>>>;

/// How the fake operator answers one request for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    /// The right bytes (honouring `Range`).
    Honest,
    /// Random bytes.
    Garbage,
    /// A well-formed block of this number with other transactions (another root).
    WrongBlock,
    /// `500` with a body.
    Error,
    /// The connection accepted and never answered.
    Hang,
    /// The header, then a byte every 100 ms for a while, then the connection dropped.
    Trickle,
    /// A plain header announcing the largest body, then zeros as fast as the link takes them.
    Huge,
}

const LIES: [Lie; 6] =
    [Lie::Garbage, Lie::WrongBlock, Lie::Error, Lie::Hang, Lie::Trickle, Lie::Huge];

/// A fake operator serving `/v1/blocks/{n}` from `blocks`; `script(blknum, attempt)` decides how
/// each request is answered. Returns the requests seen per block.
fn fake_operator(
    listener: TcpListener,
    blocks: Served,
    script: Arc<dyn Fn(u64, usize) -> Lie + Send + Sync>,
) -> Arc<parking_lot::Mutex<BTreeMap<u64, usize>>> {
    let asked: Arc<parking_lot::Mutex<BTreeMap<u64, usize>>> = Arc::default();
    let seen = asked.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let (blocks, script, seen) = (blocks.clone(), script.clone(), seen.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let from: usize = text
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("range: bytes=").map(str::to_owned))
                    .and_then(|r| r.trim_end_matches('-').trim().parse().ok())
                    .unwrap_or(0);
                let blknum: u64 =
                    path.strip_prefix("/v1/blocks/").and_then(|n| n.parse().ok()).unwrap_or(0);
                let attempt = {
                    let mut s = seen.lock();
                    let n = s.entry(blknum).or_default();
                    *n += 1;
                    *n - 1
                };
                let Some((good, wrong)) = blocks.lock().get(&blknum).cloned() else {
                    let _ = conn
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                };
                let lie = script(blknum, attempt);
                let ok = |len: usize| {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {len}\r\n\r\n",
                        wire::MEDIA_TYPE
                    )
                };
                match lie {
                    Lie::Honest => {
                        let head = if from > 0 && from < good.len() {
                            format!(
                                "HTTP/1.1 206 Partial Content\r\ncontent-type: {}\r\ncontent-range: bytes {from}-{}/{}\r\ncontent-length: {}\r\n\r\n",
                                wire::MEDIA_TYPE,
                                good.len() - 1,
                                good.len(),
                                good.len() - from
                            )
                        } else {
                            ok(good.len())
                        };
                        let body = if head.starts_with("HTTP/1.1 206") {
                            &good[from..]
                        } else {
                            &good[..]
                        };
                        let _ = conn.write_all(head.as_bytes()).await;
                        let _ = conn.write_all(body).await;
                    }
                    Lie::Garbage => {
                        let junk: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
                        let _ = conn.write_all(ok(junk.len()).as_bytes()).await;
                        let _ = conn.write_all(&junk).await;
                    }
                    Lie::WrongBlock => {
                        let _ = conn.write_all(ok(wrong.len()).as_bytes()).await;
                        let _ = conn.write_all(&wrong).await;
                    }
                    Lie::Error => {
                        let _ = conn
                            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops")
                            .await;
                    }
                    Lie::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Lie::Trickle => {
                        let _ = conn.write_all(ok(good.len()).as_bytes()).await;
                        let _ = conn.write_all(&good[..wire::HEADER_LEN]).await;
                        for b in good[wire::HEADER_LEN..].iter().take(8) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            if conn.write_all(&[*b]).await.is_err() {
                                return;
                            }
                        }
                    }
                    Lie::Huge => {
                        // Plain frames, the most transactions, lengths at their limit: a decoder
                        // that trusted them would allocate gigabytes.
                        let mut h = good[..wire::HEADER_LEN].to_vec();
                        h[4] = 0;
                        let count = u32::try_from(plasma_spec::MAX_TXS_PER_BLOCK).unwrap();
                        h[45..49].copy_from_slice(&count.to_be_bytes());
                        let raw = u64::from(count) * 4 + (1 << 26);
                        h[49..57].copy_from_slice(&raw.to_be_bytes());
                        h[57..65].copy_from_slice(&raw.to_be_bytes());
                        let _ = conn
                            .write_all(ok(h.len() + usize::try_from(raw).unwrap()).as_bytes())
                            .await;
                        let _ = conn.write_all(&h).await;
                        let zeros = vec![0u8; 64 * 1024];
                        for _ in 0..64 {
                            if conn.write_all(&zeros).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = conn.shutdown().await;
            });
        }
    });
    asked
}

/// A block of `txs` as the operator serves it, and a well-formed impostor of the same number.
fn served(
    d: &SigningDomain,
    blknum: u64,
    txs: &[SignedTransaction],
    by: &Signer,
) -> (B256, Vec<u8>, Vec<u8>) {
    let encode = |txs: &[SignedTransaction]| {
        let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
        let root = BlockTree::from_txs(&leaves).unwrap().root();
        let signed: Vec<Bytes> = txs.iter().map(|t| Bytes::from(t.encode())).collect();
        (root, wire::encode_block(blknum, root, &signed, wire::Encoding::Zlib).unwrap())
    };
    let (root, good) = encode(txs);
    let other = pay_eth(d, &[pos(blknum, 0, 0)], &[(by.address(), 1)], &[by]);
    let (_, wrong) = encode(&[other]);
    (root, good, wrong)
}

/// A byzantine operator serves every block only after lying about it a random number of times
/// in random ways (garbage, another block, errors, a hang, a trickle that drops, a header
/// announcing gigabytes) — each block still in full before its deadline — and meanwhile a thief
/// exits an output spent in a block it lied about. The tower validates every block (no false
/// `blockWithheld`, which would exit every guarded owner for nothing), challenges the thief, and
/// when the operator then lies about a block past its deadline, calls it withheld and claims
/// bob's outputs for him.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_operator_neither_stalls_the_tower_nor_gets_an_honest_block_called_withheld() {
    let mut rng = rng("liar");
    let env = env().await;
    let d = domain(&env);
    let (alice, bob, carol) = (signer(&env, 1), signer(&env, 2), signer(&env, 3));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let blocks: Served = Arc::default();
    // Per block, the lies told before the truth (block 4000: lies for ever).
    let mut plan: BTreeMap<u64, Vec<Lie>> = BTreeMap::new();
    for b in [1000u64, 2000, 3000] {
        let n = rng.random_range(1..=3);
        plan.insert(b, (0..n).map(|_| LIES[rng.random_range(0..LIES.len())]).collect());
    }
    eprintln!("lies: {plan:?}");
    let forever = Arc::new(AtomicBool::new(false));
    let script: Arc<dyn Fn(u64, usize) -> Lie + Send + Sync> = {
        let (plan, forever) = (plan.clone(), forever.clone());
        let lies: Vec<Lie> = LIES.to_vec();
        Arc::new(move |blknum, attempt| match plan.get(&blknum) {
            Some(l) => l.get(attempt).copied().unwrap_or(Lie::Honest),
            None if forever.load(Ordering::SeqCst) => lies[attempt % lies.len()],
            None => Lie::Honest,
        })
    };
    let asked = fake_operator(listener, blocks.clone(), script);
    let mut c = Conf::new(url);
    c.availability = Duration::from_secs(8);
    c.stall = Duration::from_secs(1);
    let w = start(&env, &c).await;
    guard(&env, &w, 2).await;

    let d1 = deposit(&env, 1, eth_milli(1_000)).await;
    let d2 = deposit(&env, 3, eth_milli(500)).await;
    until_synced(&env, &w).await;
    let b1 = [pay_eth(
        &d,
        &[d1],
        &[(bob.address(), MILLI * 600), (alice.address(), MILLI * 400)],
        &[&alice],
    )];
    let b2 = [pay_eth(&d, &[pos(1000, 0, 1)], &[(bob.address(), MILLI * 400)], &[&alice])];
    let b3 = [pay_eth(&d, &[d2], &[(alice.address(), MILLI * 500)], &[&carol])];
    let mut stamps = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for (blknum, txs) in [(1000u64, &b1[..]), (2000, &b2[..]), (3000, &b3[..])] {
        let (root, good, wrong) = served(&d, blknum, txs, &carol);
        blocks.lock().insert(blknum, (good, wrong));
        roots.insert(blknum, root);
        stamps.insert(blknum, commit(&env, blknum, root).await);
    }
    // The thief exits (1000, 0, 1), which she spent in block 2000, while the operator lies.
    let leaves: Vec<Vec<u8>> = b1.iter().map(|t| t.transaction.encode()).collect();
    let proof = BlockTree::from_txs(&leaves).unwrap().proof(0).unwrap();
    let standard = StandardExitGame::new(env.deployment.standard_exit_game, l1_as(&env, 1));
    let bond = standard.bondSize().call().await.unwrap();
    let spent = pos(1000, 0, 1);
    let args = StandardExitGame::StartArgs {
        utxoPos: spent.to_u256(),
        txBytes: b1[0].transaction.encode().into(),
        inclusionProof: proof.to_bytes().into(),
        blockTimestamp: stamps[&1000],
    };
    let r = standard.startStandardExit(args).value(bond).send().await.unwrap().get_receipt().await;
    assert!(r.unwrap().status(), "the thief's exit started");

    until("every honest block validated", 40, || w.watcher.status().synced_block >= 3000).await;
    let s = w.watcher.status();
    assert!(
        s.safe,
        "an honest (if lying) operator called byzantine: {s:?}; {:?}",
        w.watcher.events()
    );
    wait_event(&w, 20, |e| matches!(e, Event::Challenged { .. })).await;
    assert_eq!(exit_status(&env, spent.to_u128()).await, 2, "the thief is challenged");
    for (b, lies) in &plan {
        assert!(asked.lock()[b] > lies.len(), "block {b} asked again after each lie");
    }

    // Block 4000: lies past its deadline. Withheld, and bob's outputs are claimed for him.
    forever.store(true, Ordering::SeqCst);
    let (root, good, wrong) = served(
        &d,
        4000,
        &[pay_eth(&d, &[pos(3000, 0, 0)], &[(bob.address(), 1)], &[&alice])],
        &carol,
    );
    blocks.lock().insert(4000, (good, wrong));
    let committed = commit(&env, 4000, root).await;
    wait_event(&w, 30, |e| matches!(e, Event::BlockWithheld { blknum: 4000 })).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now >= committed + c.availability.as_secs(), "judged before the deadline");
    assert!(asked.lock()[&4000] >= 2, "judged on its own asking");
    wait_event(&w, 20, |e| matches!(e, Event::BatchMassExit { .. })).await;
    let claims = batch_claims(&env).await;
    let got: BTreeSet<UtxoPos> = claims.iter().map(|c| c.0).collect();
    assert_eq!(got, BTreeSet::from([pos(1000, 0, 0), pos(2000, 0, 0)]), "{claims:?}");
    assert!(claims.iter().all(|c| c.1 == bob.address()));
    let _ = roots;
    w.stop().await;
}

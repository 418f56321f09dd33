//! The real `plasma` binary against a real anvil with the contracts and the real operator: amounts
//! and addresses refused before anything is sent, contract errors named, text for people, the
//! history, `status` and `address`, and the degraded modes (two commands on one store, L1 down,
//! a deposit the operator does not credit).

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::U256;
use plasma_testkit::{PERIOD, advance, env, eth, operator};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
};

/// What one run of `plasma` gave.
#[derive(Debug)]
struct Run {
    ok: bool,
    json: Value,
    stdout: String,
    stderr: String,
}

/// `plasma` with the devnet's endpoints and one store per account.
#[derive(Clone)]
struct Plasma {
    rpc: String,
    operator: String,
    framework: String,
    dir: PathBuf,
    keys: Vec<String>,
}

impl Plasma {
    fn new(env: &plasma_testkit::Env, operator: &str) -> Self {
        Self {
            rpc: env.anvil.endpoint(),
            operator: operator.to_owned(),
            framework: env.deployment.framework.to_string(),
            dir: env.dir.path().to_path_buf(),
            keys: env
                .anvil
                .keys()
                .iter()
                .map(|k| format!("0x{}", hex::encode(k.to_bytes())))
                .collect(),
        }
    }

    fn store(&self, key: usize) -> PathBuf {
        self.dir.join(format!("cli-{key}.redb"))
    }

    fn command(&self, key: usize, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plasma"));
        c.args(["--l1.rpc-url", &self.rpc, "--operator.url", &self.operator])
            .args(["--framework", &self.framework])
            .args(["--store", self.store(key).to_str().unwrap()])
            .args(["--private-key", &self.keys[key]])
            .args(args)
            .env_remove("PLASMA_CONFIG")
            .env_remove("PLASMA_WATCHERS")
            .env_remove("PLASMA_TOWERS");
        c
    }

    /// Runs with `--json` (or the flags in `args`) and waits.
    fn run(&self, key: usize, args: &[&str]) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run_raw(key, &all)
    }

    fn run_raw(&self, key: usize, args: &[&str]) -> Run {
        let out = self.command(key, args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            ok: out.status.success(),
            json: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn error_of(r: &Run) -> String {
    assert!(!r.ok, "expected a refusal: {r:?}");
    r.json["error"].as_str().unwrap_or_default().to_owned()
}

const BOB: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_addresses_contract_errors_and_text_for_people() {
    let env = env().await;
    let node = operator(&env).await;
    let token = plasma_contracts::TestToken::deploy(env.provider.clone()).await.unwrap();
    let alice = plasma_testkit::key(&env, 1).address();
    token.mint(alice, eth(100)).send().await.unwrap().get_receipt().await.unwrap();
    let token = token.address().to_string();
    let plasma = Plasma::new(&env, &format!("http://{}", node.addr));
    let watcher = watcher(&env, format!("http://{}", node.addr)).await;
    let watchers = format!("http://{},http://127.0.0.1:9", watcher.addr);
    tokio::task::spawn_blocking(move || {
        // address: the key alone, no L1.
        let r = plasma.run(1, &["address"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["address"], alice.to_string());

        let r = plasma.run(1, &["deposit", "1.5"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["amount"], "1500000000000000000");
        assert!(r.json["l1Tx"].as_str().is_some_and(|h| h.len() == 66), "{r:?}");
        assert!(r.stderr.contains("waiting to be credited"), "{}", r.stderr);

        // Refused before anything is sent: the balance and the history stay as they are.
        let refusals: [(&[&str], &str); 8] = [
            (&["send", BOB, "--", "-1"], "negative"),
            (&["send", BOB, "0.0000000000000000001"], "19 decimals"),
            (&["send", BOB, "0"], "zero"),
            (&["send", BOB, "0wei"], "zero"),
            (
                &[
                    "send",
                    BOB,
                    "115792089237316195423570985008687907853269984665640564039457584007913129639936wei",
                ],
                "too large",
            ),
            (&["send", BOB, "1e18"], "unit"),
            (&["send", BOB, "0.5", "--fee", "0.0000000000000000001"], "--fee"),
            (&["send", "0x3c44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0.5"], "EIP-55"),
        ];
        for (args, why) in refusals {
            let r = plasma.run(1, args);
            assert!(!r.ok, "{args:?} must be refused: {r:?}");
            let said = error_of(&r);
            assert!(said.contains(why), "{args:?}: {said}");
        }
        let r = plasma.run(1, &["balance"]);
        assert_eq!(r.json["balance"], "1500000000000000000", "{r:?}");

        // A payment with the fee in the amount's units, text for people.
        let r = plasma.run_raw(1, &["--human", "send", &BOB.to_lowercase(), "0.5", "--fee", "1gwei"]);
        assert!(r.ok, "{r:?}");
        assert!(r.stdout.contains(&format!("sent 0.5 ETH to {BOB} (fee 0.000000001 ETH)")), "{}", r.stdout);
        assert!(r.stdout.contains("committed in child block 1000"), "{}", r.stdout);
        let r = plasma.run_raw(1, &["--human", "balance"]);
        assert!(r.stdout.contains(&alice.to_string()), "{}", r.stdout);
        assert!(r.stdout.contains("0.999999999 ETH"), "{}", r.stdout);

        // A token: amounts in its units (decimals() read from it), a wrong checksum refused.
        let r = plasma.run(1, &["deposit", "12.25", "--token", &token]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["amount"], "12250000000000000000");
        let r = plasma.run(1, &["deposit", "1.0000000000000000001", "--token", &token]);
        assert!(error_of(&r).contains("19 decimals"), "{r:?}");
        let r = plasma.run(1, &["deposit", "1eth", "--token", &token]);
        assert!(error_of(&r).contains("token's units"), "{r:?}");
        let r = plasma.run_raw(1, &["--human", "balance", "--token", &token]);
        assert!(r.stdout.contains("12.25 TST"), "{}", r.stdout);

        // A contract error by name, with its sentence.
        let r = plasma.run(1, &["withdraw"]);
        let e = error_of(&r);
        assert!(e.contains("FrameworkNothingToWithdraw"), "{e}");
        assert!(e.contains("nothing is credited to this account"), "{e}");

        // History: alice's deposits and payment; bob's receipt, derived from his store.
        let r = plasma.run(1, &["history"]);
        assert!(r.ok, "{r:?}");
        let kinds: Vec<&str> =
            r.json["history"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "deposit").count(), 2, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "sent").count(), 1, "{kinds:?}");
        let sent = r.json["history"].as_array().unwrap().iter().find(|e| e["kind"] == "sent").unwrap();
        assert_eq!(sent["amount"], "500000000000000000");
        assert_eq!(sent["fee"], "1000000000");
        assert_eq!(sent["blknum"], 1000);
        let r = plasma.run(2, &["balance", "--sync"]);
        assert_eq!(r.json["balance"], "500000000000000000", "{r:?}");
        let r = plasma.run_raw(2, &["--human", "history"]);
        assert!(r.stdout.contains("received 0.5 ETH"), "{}", r.stdout);

        // Utxos: positions and amounts as decimal strings.
        let r = plasma.run(2, &["utxos"]);
        assert_eq!(r.json["utxos"][0]["utxoPos"], "1000000000000", "{r:?}");
        assert_eq!(r.json["utxos"][0]["amount"], "500000000000000000");

        // Status: operator and L1 up, no watcher to say the chain is safe.
        let r = plasma.run(1, &["status"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["operator"]["reachable"], true, "{r:?}");
        assert_eq!(r.json["l1"]["reachable"], true);
        assert_eq!(r.json["l1"]["chainId"], 31337);
        assert_eq!(r.json["safe"], Value::Null);
        // With watchers: the one that answers says the chain is safe, the dead one is named.
        let r = plasma.run(1, &["status", "--watchers", &watchers]);
        assert_eq!(r.json["watchers"][0]["reachable"], true, "{r:?}");
        assert_eq!(r.json["watchers"][0]["safe"], true, "{r:?}");
        assert_eq!(r.json["watchers"][1]["reachable"], false, "{r:?}");
        assert_eq!(r.json["safe"], true, "{r:?}");
        let r = plasma.run_raw(1, &["--human", "status", "--watchers", &watchers]);
        assert!(r.stdout.contains("chain safe"), "{}", r.stdout);
        assert!(r.stdout.contains("watcher http://127.0.0.1:9: UNREACHABLE"), "{}", r.stdout);
    })
    .await
    .unwrap();
    watcher.stop().await;
    node.stop().await;
}

/// A watcher of `env`'s chain reading `operator_url`, its API on a free port.
async fn watcher(env: &plasma_testkit::Env, operator_url: String) -> plasma_watcher::Running {
    use alloy::{
        network::EthereumWallet,
        providers::{Provider, ProviderBuilder},
    };
    use std::time::Duration;
    let key = plasma_testkit::key(env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = plasma_watcher::Settings {
        framework: env.deployment.framework,
        operator_url,
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_millis(400),
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = plasma_watcher::Watcher::new(settings, me, provider, &env.dir.path().join("watcher"))
        .await
        .unwrap();
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_lock_is_waited_for_and_the_store_answers_without_l1() {
    let env = env().await;
    let node = operator(&env).await;
    let plasma = Plasma::new(&env, &format!("http://{}", node.addr));
    let online = plasma.clone();
    let bond = tokio::task::spawn_blocking(move || {
        let r = plasma.run(1, &["deposit", "1"]);
        assert!(r.ok, "{r:?}");
        let pos = r.json["utxoPos"].as_str().unwrap().to_owned();
        let r = plasma.run(1, &["exit", &pos]);
        assert!(r.ok, "{r:?}");
        assert!(r.json["bond"].as_str().is_some_and(|b| b != "0"), "{r:?}");
        let bond: U256 = r.json["bond"].as_str().unwrap().parse().unwrap();
        let r = plasma.run(1, &["deposit", "2"]);
        assert!(r.ok, "{r:?}");

        // When each exit can be processed, for people.
        let r = plasma.run_raw(1, &["--human", "exits"]);
        assert!(
            r.stdout.contains(&format!("standard exit of output {pos}: 1 ETH")),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("processable from 20"), "{}", r.stdout);

        // Another process holds the store: the command waits, says so, and then runs.
        let held = plasma_sdk::ProofStore::open(&plasma.store(1)).unwrap();
        let mut child = plasma
            .command(1, &["--json", "balance"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "plasma ended without waiting");
            if line.contains("waiting for another plasma command") {
                break;
            }
        }
        drop(held);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["balance"], "2000000000000000000", "{v}");
        assert_eq!(v["exiting"], "1000000000000000000", "{v}");

        // L1 down: balance and exits answer from the store and say how fresh they are.
        let offline = Plasma { rpc: "http://127.0.0.1:9".into(), ..plasma };
        let r = offline.run(1, &["balance"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["balance"], "2000000000000000000", "{r:?}");
        assert!(r.json["offline"].as_str().is_some_and(|s| !s.is_empty()), "{r:?}");
        assert!(r.json["ageSecs"].is_u64(), "{r:?}");
        assert!(r.stderr.contains("L1 unreachable"), "{}", r.stderr);
        let r = offline.run_raw(1, &["--human", "balance"]);
        assert!(r.stdout.contains("2 ETH") && r.stdout.contains("L1 unreachable"), "{}", r.stdout);
        let r = offline.run(1, &["exits"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["exits"][0]["utxoPos"], pos.as_str(), "{r:?}");
        assert_eq!(r.json["exits"][0]["kind"], "standard");
        assert!(r.json["exits"][0]["exitableAt"].is_u64(), "the last schedule read: {r:?}");
        assert!(r.json["scheduleAsOf"].is_u64(), "{r:?}");
        let r = offline.run(1, &["history"]);
        assert!(r.ok, "{r:?}");
        assert!(r.json["history"].as_array().unwrap().iter().any(|e| e["kind"] == "exit"), "{r:?}");
        // What needs L1 fails, naming why.
        let r = offline.run(1, &["send", BOB, "0.1"]);
        assert!(error_of(&r).starts_with("L1"), "{r:?}");
        bond
    })
    .await
    .unwrap();

    // A period later the exit is processed (by its owner, who earns the bounty back) and paid.
    advance(&env.provider, 3 * PERIOD).await;
    tokio::task::spawn_blocking(move || {
        let r = online.run(1, &["process"]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.json["processed"], 1, "{r:?}");
        assert_eq!(r.json["shortfalls"], serde_json::json!([]), "{r:?}");
        let r = online.run_raw(1, &["--human", "withdraw"]);
        assert!(r.ok, "{r:?}");
        let paid = eth(1) + bond;
        let paid = plasma_sdk::units::format_amount(paid, 18, "ETH");
        assert!(r.stdout.contains(&format!("withdrew {paid} to ")), "{}", r.stdout);
        assert!(r.stdout.contains("in L1 tx 0x"), "{}", r.stdout);
        let r = online.run(1, &["history"]);
        let kinds: Vec<&str> = r.json["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert!(kinds.contains(&"process") && kinds.contains(&"withdraw"), "{kinds:?}");
    })
    .await
    .unwrap();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_not_credited_is_called_safe_on_l1() {
    let env = env().await;
    // No operator at all: the deposit lands on L1 and is never credited.
    let plasma = Plasma::new(&env, "http://127.0.0.1:9");
    let framework = env.deployment.framework;
    let before = alloy::providers::Provider::get_balance(&env.provider, framework).await.unwrap();
    let r = tokio::task::spawn_blocking(move || plasma.run(1, &["deposit", "1", "--timeout", "2"]))
        .await
        .unwrap();
    let e = error_of(&r);
    assert!(e.contains("SAFE ON L1") && e.contains("Do NOT deposit again"), "{e}");
    assert!(r.stderr.contains("waiting to be credited"), "{}", r.stderr);
    let after = alloy::providers::Provider::get_balance(&env.provider, framework).await.unwrap();
    assert_eq!(after - before, eth(1), "the deposit is in the framework");
}

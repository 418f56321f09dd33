//! Devnets with a tower set (issue 17, spec/07-availability.md): `n` watchers that keep a chunk
//! of every child block, `k` of which rebuild a block the operator withholds. Tower 0 is the
//! devnet's watcher (anvil account 9, the one guarding owners); towers 1 … n−1 are more watcher
//! processes, each with its own key, store, port and log (`tower-<i>.log`).

use super::{Devnet, HarnessError, TowerSet, bin_dir, err, free_port, wait_healthy};
use alloy::{
    primitives::{Address, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use std::{process::Command, time::Duration};

impl Devnet {
    /// Starts anvil, deploys, and starts the operator configured with `n` towers of which `k`
    /// rebuild a block (`[da]`, plus `operator_extra`, e.g. a devnet `[faults]` section), the
    /// watcher as tower 0 and towers 1 … n−1; challenge period `period` and availability timeout
    /// `availability_timeout` (seconds) as [`Devnet::start_with_period`].
    pub async fn start_with_towers(
        n: usize,
        k: u16,
        period: u64,
        availability_timeout: u64,
        operator_extra: &str,
    ) -> Result<Self, HarnessError> {
        // The plain devnet first, without its operator and watcher's tower settings; then both
        // again with them, on the same chain (the ports of the set must be fixed up front).
        let mut net = Self::start_with_period(period, availability_timeout).await?;
        net.kill_operator();
        if let Some(mut c) = net.watcher_process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut keys: Vec<PrivateKeySigner> = vec![net.anvil.keys()[9].clone().into()];
        for i in 1..n {
            let key = PrivateKeySigner::from_bytes(&keccak256(format!("plasma tower {i}")))
                .map_err(err)?;
            // Towers pay for their own challenges and exits like any watcher.
            net.fund(key.address(), U256::from(100u64) * U256::from(10u64).pow(U256::from(18)))
                .await?;
            keys.push(key);
        }
        let ports = (0..n).map(|_| free_port()).collect::<Result<Vec<u16>, _>>()?;
        let set = TowerSet { k, ports, keys, procs: (0..n).map(|_| None).collect() };
        let towers: Vec<String> = set
            .keys
            .iter()
            .zip(set.urls())
            .map(|(key, url)| format!("{{ address = \"{}\", url = \"{url}\" }}", key.address()))
            .collect();
        net.operator_extra = format!(
            "[da]\nk = {k}\nwait_ms = 3000\nretry_ms = 200\ntowers = [{}]\n",
            towers.join(", ")
        ) + operator_extra;
        net.towers = Some(set);
        // Towers first: the operator distributes its first block at once.
        let proxy = net.proxy_url.clone();
        net.start_watcher_at(&proxy).await?;
        for i in 1..n {
            net.start_tower(i).await?;
        }
        net.start_operator().await?;
        Ok(net)
    }

    fn set(&self) -> Result<&TowerSet, HarnessError> {
        self.towers.as_ref().ok_or_else(|| HarnessError("this devnet has no towers".into()))
    }

    /// Starts (or restarts, on its store and port) tower `index` ≥ 1.
    pub async fn start_tower(&mut self, index: usize) -> Result<(), HarnessError> {
        let (port, key, args) = {
            let set = self.set()?;
            if index == 0 || index >= set.ports.len() {
                return Err(HarnessError(format!("tower {index}: towers 1 … n−1 only")));
            }
            (set.ports[index], set.keys[index].clone(), set.args(index))
        };
        let log = self.dir.path().join(format!("tower-{index}.log"));
        let mut child = Command::new(bin_dir().join("plasma-watcher"))
            .args([
                "--l1.rpc-url",
                &self.anvil.endpoint(),
                "--l1.framework",
                &self.deployment.framework.to_string(),
            ])
            .args(["--operator.url", &self.proxy_url, "--api.listen", &format!("127.0.0.1:{port}")])
            .args([
                "--availability-timeout",
                &self.availability_timeout.to_string(),
                "--stuck-after",
                &(self.period / 10).clamp(1, 5).to_string(),
                "--l1.block-time",
                "1",
                "--poll-ms",
                "50",
                "--data-dir",
            ])
            .arg(self.dir.path().join(format!("tower-{index}-data")))
            .args(&args)
            .env("PLASMA_WATCHER_L1_PRIVATE_KEY", format!("0x{}", hex::encode(key.to_bytes())))
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).map_err(err)?)
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).map_err(err)?)
            .spawn()
            .map_err(|e| HarnessError(format!("plasma-watcher: {e} (build it first)")))?;
        let url = format!("http://127.0.0.1:{port}");
        wait_healthy(&url, &mut child, &log).await?;
        if let Some(set) = self.towers.as_mut() {
            set.procs[index] = Some(child);
        }
        Ok(())
    }

    /// SIGKILLs tower `index` ≥ 1 (its store stays on disk).
    pub fn kill_tower(&mut self, index: usize) {
        if let Some(c) = self.towers.as_mut().and_then(|s| s.procs.get_mut(index)?.take()) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Tower `index`'s API (tower 0 is the watcher).
    pub fn tower_url(&self, index: usize) -> Result<String, HarnessError> {
        self.set()?.urls().get(index).cloned().ok_or_else(|| HarnessError("no such tower".into()))
    }

    /// Every tower's API, in index order.
    pub fn tower_urls(&self) -> Vec<String> {
        self.towers.as_ref().map(TowerSet::urls).unwrap_or_default()
    }

    /// Tower `index`'s address (its receipts' signer).
    pub fn tower_address(&self, index: usize) -> Result<Address, HarnessError> {
        self.set()?
            .keys
            .get(index)
            .map(PrivateKeySigner::address)
            .ok_or_else(|| HarnessError("no such tower".into()))
    }

    /// The operator's key as the spec's signer (DA-4 headers are signed with it).
    pub fn operator_signer(&self) -> Result<plasma_spec::Signer, HarnessError> {
        let key = alloy::primitives::B256::from_slice(&self.anvil.keys()[0].to_bytes());
        plasma_spec::Signer::from_bytes(&key).ok_or_else(|| HarnessError("operator key".into()))
    }

    /// The deployment's EIP-712 domain (transactions, DA headers and receipts).
    pub fn domain(&self) -> plasma_spec::SigningDomain {
        plasma_spec::SigningDomain::new(self.anvil.chain_id(), self.deployment.framework)
    }

    /// A wallet for anvil account `i` that reads from the towers when the operator fails,
    /// withholds or lies (DA-12); its store is the one [`Devnet::wallet`] uses.
    pub async fn wallet_with_towers(&self, i: usize) -> Result<plasma_sdk::Wallet, HarnessError> {
        Ok(self.wallet(i).await?.with_towers(self.tower_urls()))
    }

    /// Deletes the store of [`Devnet::wallet`] `i` (drop the wallet first).
    pub fn delete_wallet_store(&self, i: usize) -> Result<(), HarnessError> {
        std::fs::remove_file(self.dir.path().join(format!("wallet-{i}.redb"))).map_err(err)
    }

    /// Tower `index`'s `/status`.
    pub async fn tower_status(&self, index: usize) -> Result<serde_json::Value, HarnessError> {
        reqwest::get(format!("{}/status", self.tower_url(index)?))
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)
    }

    /// Polls tower `index`'s `/status` until `check` holds (at most `secs` seconds).
    pub async fn wait_tower(
        &self,
        index: usize,
        what: &str,
        secs: u64,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, HarnessError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let status = self.tower_status(index).await;
            if let Ok(s) = &status
                && check(s)
            {
                return Ok(s.clone());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "tower {index} never reached `{what}`: {status:?}\n{}",
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Readers of a watcher's `/status` (tower or not) for the availability tests: the `da` part sits
/// at the top level or under `status`, depending on the route's version.
pub mod status {
    use serde_json::Value;

    /// The `da` part (index, k, n, chunks stored, rebuilt blocks).
    pub fn da(status: &Value) -> &Value {
        if status["da"].is_null() { &status["status"]["da"] } else { &status["da"] }
    }

    /// The block numbers the watcher says it rebuilt from chunks (DA-10).
    pub fn rebuilt(status: &Value) -> Vec<u64> {
        da(status)["rebuilt"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    /// The faults it named (DA-9), as (blknum, kind).
    pub fn faults(status: &Value) -> Vec<(u64, String)> {
        let list = if status["daFaults"].is_null() {
            &status["status"]["daFaults"]
        } else {
            &status["daFaults"]
        };
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| Some((f["blknum"].as_u64()?, f["kind"].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The newest block it validated.
    pub fn validated(status: &Value) -> u64 {
        status["status"]["syncedBlock"].as_u64().unwrap_or_default()
    }
}

/// A block as a byzantine operator makes it: its root and its wire bytes (OP-9, zlib).
pub fn block_of(
    blknum: u64,
    txs: &[plasma_spec::SignedTransaction],
) -> (alloy::primitives::B256, Vec<u8>) {
    use plasma_spec::wire::{Encoding, encode_block};
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
    let root = plasma_spec::BlockTree::from_txs(&leaves).map(|t| t.root()).unwrap_or_default();
    let signed: Vec<Vec<u8>> = txs.iter().map(plasma_spec::SignedTransaction::encode).collect();
    let wire = encode_block(blknum, root, &signed, Encoding::Zlib).unwrap_or_default();
    (root, wire)
}

/// PUTs `body` (an envelope's bytes, or anything) as block `blknum`'s chunk to the tower at
/// `url`: (HTTP status, JSON body).
pub async fn put_chunk(
    url: &str,
    blknum: u64,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), HarnessError> {
    let r = reqwest::Client::new()
        .put(format!("{url}/v1/da/chunks/{blknum}"))
        .header("content-type", "application/vnd.plasma.chunk")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(err)?;
    Ok((r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null)))
}

impl Devnet {
    /// L1's `nextChildBlock`.
    pub async fn next_child_block(&self) -> Result<u64, HarnessError> {
        let framework = plasma_contracts::PlasmaFramework::new(
            self.deployment.framework,
            self.provider.clone(),
        );
        framework.nextChildBlock().call().await.map_err(err)
    }
}

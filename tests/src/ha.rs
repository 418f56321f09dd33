//! A highly available operator on the real binaries (issue #21): `N` `plasma-operator` processes
//! with the same L1 key on one throwaway PostgreSQL ([`TempPostgres`]), each on its own loopback
//! port, one leading by the lease row and the others standing by. Tests find the leader by asking
//! every process's `/v1/status` (`role`), SIGKILL it, and start a killed one again (it comes back as
//! a standby: the lease is the survivor's by then).
//!
//! The watcher reads the operator through the devnet's proxy; when its upstream is killed the
//! proxy is pointed at a live process at once (a standby serves blocks from the shared store), so
//! the watcher's availability clock (WATCH-3) measures the chain, not the harness.

use crate::{Devnet, HarnessError, bin_dir, err, free_port, wait_healthy};
use plasma_test_postgres::TempPostgres;
use serde_json::Value;
use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

/// How a devnet runs its operator highly available ([`crate::DevnetOptions::ha`]).
#[derive(Clone, Debug)]
pub struct HaOptions {
    /// How many operator processes share the database (at least 1).
    pub nodes: usize,
    /// The leader's lease, in milliseconds (`--ha.lease-ms`): a standby takes over this long
    /// after the leader's last renewal.
    pub lease_ms: u64,
}

impl Default for HaOptions {
    fn default() -> Self {
        Self { nodes: 2, lease_ms: 1000 }
    }
}

/// What one operator process says of itself on `/v1/status`.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// `"leader"` or `"standby"`.
    pub role: String,
    /// The lease epoch it leads in (a leader), or the epoch it saw the leader hold (a standby),
    /// if it says.
    pub epoch: Option<u64>,
    /// The leader's advertised URL, as a standby names it.
    pub leader_url: Option<String>,
    /// The store's backend (`"postgres"`, `"redb"`), if it says.
    pub backend: Option<String>,
    /// The whole answer.
    pub raw: Value,
}

impl NodeStatus {
    fn parse(raw: Value) -> Result<Self, HarnessError> {
        let role = raw["role"]
            .as_str()
            .ok_or_else(|| HarnessError(format!("/v1/status has no role: {raw}")))?
            .to_owned();
        let epoch = raw["epoch"].as_u64().or_else(|| raw["leader"]["epoch"].as_u64());
        let leader_url = raw["leader"]["url"].as_str().map(str::to_owned);
        let backend = raw["store"]["backend"].as_str().map(str::to_owned);
        Ok(Self { role, epoch, leader_url, backend, raw })
    }

    /// Whether it says it leads.
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }
}

/// One operator process of the set.
struct Node {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL: no shutdown path runs, as when the machine dies.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The operator processes and their database. Field order matters: the processes are dropped
/// (killed) before the server they write to.
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    lease_ms: u64,
    postgres: TempPostgres,
}

impl Cluster {
    /// Every process's log (each across its restarts).
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            out.push_str(&format!("\n--- operator-{i}.log\n{text}"));
        }
        out.push_str(&format!("\n--- postgres.log\n{}", self.postgres.log()));
        out
    }
}

impl Devnet {
    fn cluster(&self) -> Result<&Cluster, HarnessError> {
        self.ha.as_ref().ok_or_else(|| HarnessError("this devnet is not highly available".into()))
    }

    fn cluster_mut(&mut self) -> Result<&mut Cluster, HarnessError> {
        self.ha.as_mut().ok_or_else(|| HarnessError("this devnet is not highly available".into()))
    }

    /// Starts the database and `options.nodes` operator processes on it, and waits until one
    /// leads; `operator_url` is then the leader's.
    pub(crate) async fn start_ha(&mut self, options: &HaOptions) -> Result<(), HarnessError> {
        if options.nodes == 0 {
            return Err(HarnessError("an HA devnet needs at least one operator".into()));
        }
        // initdb and the server's start block for about a second: off the test's runtime.
        let postgres = tokio::task::spawn_blocking(TempPostgres::start)
            .await
            .map_err(err)?
            .map_err(|e| HarnessError(format!("PostgreSQL: {e}")))?;
        let mut nodes = Vec::with_capacity(options.nodes);
        for i in 0..options.nodes {
            nodes.push(Node {
                port: free_port()?,
                child: None,
                log: self.dir.path().join(format!("operator-{i}.log")),
                starts: 0,
            });
        }
        self.ha = Some(Cluster { nodes, lease_ms: options.lease_ms, postgres });
        for i in 0..options.nodes {
            self.start_node(i).await?;
            // What the harness means to test: the shared database, not a store of its own.
            let status = self.node_status(i).await?;
            if status.backend.as_deref() != Some("postgres") {
                return Err(HarnessError(format!(
                    "operator process {i} does not run on PostgreSQL: {}",
                    status.raw
                )));
            }
        }
        let leader = self.wait_leader(Duration::from_secs(30)).await?;
        self.operator_url = self.node_url(leader)?;
        self.set_upstream(&self.operator_url);
        Ok(())
    }

    /// The throwaway PostgreSQL of an HA devnet (for `psql` inspection).
    pub fn postgres(&self) -> Result<&TempPostgres, HarnessError> {
        Ok(&self.cluster()?.postgres)
    }

    /// The lease the HA processes run with, in milliseconds.
    pub fn lease_ms(&self) -> Result<u64, HarnessError> {
        Ok(self.cluster()?.lease_ms)
    }

    /// Every operator URL a wallet should be configured with: each HA process's, else the one
    /// operator's.
    pub fn operator_urls(&self) -> Vec<String> {
        match &self.ha {
            Some(c) => c.nodes.iter().map(Node::url).collect(),
            None => vec![self.operator_url.clone()],
        }
    }

    /// Process `i`'s API URL.
    pub fn node_url(&self, i: usize) -> Result<String, HarnessError> {
        self.cluster()?
            .nodes
            .get(i)
            .map(Node::url)
            .ok_or_else(|| HarnessError(format!("no operator process {i}")))
    }

    /// The processes that are running (started and not killed), by index.
    pub fn live_nodes(&self) -> Vec<usize> {
        self.ha.as_ref().map_or_else(Vec::new, |c| {
            c.nodes.iter().enumerate().filter(|(_, n)| n.child.is_some()).map(|(i, _)| i).collect()
        })
    }

    /// (Re)starts operator process `i` on its port with the shared database and waits until it
    /// answers `/health` (a standby does at once; it may or may not lead).
    pub async fn start_node(&mut self, i: usize) -> Result<(), HarnessError> {
        let (port, log, lease_ms, url, starts) = {
            let c = self.cluster()?;
            let n = c.nodes.get(i).ok_or_else(|| HarnessError(format!("no process {i}")))?;
            if n.child.is_some() {
                return Err(HarnessError(format!("operator process {i} is running")));
            }
            (n.port, n.log.clone(), c.lease_ms, c.postgres.url().to_owned(), n.starts)
        };
        let config = self.dir.path().join(format!("operator-{i}.toml"));
        std::fs::write(
            &config,
            self.operator_config(port, &self.dir.path().join(format!("operator-data-{i}"))),
        )
        .map_err(err)?;
        // One log per process across its restarts, each start marked.
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(err)?;
        std::io::Write::write_all(&mut file, format!("=== start {}\n", starts + 1).as_bytes())
            .map_err(err)?;
        let mut child = self
            .operator_command(&config)
            .args(["--store", &url])
            .args(["--ha.advertise-url", &format!("http://127.0.0.1:{port}")])
            .args(["--ha.lease-ms", &lease_ms.to_string()])
            .args(["--ha.node-id", &format!("node-{i}")])
            .stdout(file.try_clone().map_err(err)?)
            .stderr(file)
            .spawn()
            .map_err(|e| {
                HarnessError(format!(
                    "plasma-operator from {}: {e} (build it first)",
                    bin_dir().display()
                ))
            })?;
        wait_healthy(&format!("http://127.0.0.1:{port}"), &mut child, &log).await?;
        let n = &mut self.cluster_mut()?.nodes[i];
        n.child = Some(child);
        n.starts += 1;
        Ok(())
    }

    /// What process `i` says on `/v1/status`.
    pub async fn node_status(&self, i: usize) -> Result<NodeStatus, HarnessError> {
        let url = self.node_url(i)?;
        let r = reqwest::Client::new()
            .get(format!("{url}/v1/status"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(err)?;
        if !r.status().is_success() {
            return Err(HarnessError(format!("{url}/v1/status: HTTP {}", r.status())));
        }
        NodeStatus::parse(r.json().await.map_err(err)?)
    }

    /// Polls every live process until exactly one says it leads and every other live one says
    /// it stands by; returns the leader's index and points `operator_url` and the watcher's proxy
    /// at it. Two live processes both saying they lead is an error at once (split brain).
    pub async fn wait_leader(&mut self, timeout: Duration) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            let mut answered = 0;
            let live = self.live_nodes();
            for &i in &live {
                if let Ok(s) = self.node_status(i).await {
                    answered += 1;
                    if s.is_leader() {
                        leaders.push((i, s.epoch));
                    }
                }
            }
            if leaders.len() > 1 {
                return Err(HarnessError(format!(
                    "two processes say they lead: {leaders:?}\n{}",
                    self.logs()
                )));
            }
            if let [(leader, _)] = leaders[..]
                && answered == live.len()
            {
                self.operator_url = self.node_url(leader)?;
                self.set_upstream(&self.operator_url);
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "no single leader among {live:?} within {timeout:?}\n{}",
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls process `i` until it says `role` (`"leader"` / `"standby"`).
    pub async fn wait_role(
        &self,
        i: usize,
        role: &str,
        timeout: Duration,
    ) -> Result<NodeStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.node_status(i).await;
            if let Ok(s) = &status
                && s.role == role
            {
                return status;
            }
            if Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "operator process {i} never said {role}: {:?}\n{}",
                    status.map(|s| s.raw),
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls process `i`'s status until it is a standby that names a leader (a process just
    /// started is a standby before its first look at the lease, naming none), or `timeout`.
    pub async fn wait_standby_naming_a_leader(
        &self,
        i: usize,
        timeout: Duration,
    ) -> Result<NodeStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.node_status(i).await;
            if let Ok(s) = &status
                && s.role == "standby"
                && s.leader_url.is_some()
            {
                return status;
            }
            if Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "operator process {i} never stood by naming a leader: {:?}\n{}",
                    status.map(|s| s.raw),
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs process `i`. If the watcher's proxy was reading from it, it reads from a live
    /// process from now on.
    pub fn kill_node(&mut self, i: usize) -> Result<(), HarnessError> {
        let killed = {
            let c = self.cluster_mut()?;
            let n = c.nodes.get_mut(i).ok_or_else(|| HarnessError(format!("no process {i}")))?;
            n.kill();
            n.url()
        };
        self.move_upstream_off(&killed, i)
    }

    /// Points the watcher's proxy at a live process other than `i` if it reads from `url` (`i`'s).
    fn move_upstream_off(&self, url: &str, i: usize) -> Result<(), HarnessError> {
        let upstream = self.upstream.lock().map(|u| u.clone()).unwrap_or_default();
        if upstream == url
            && let Some(other) = self.live_nodes().into_iter().find(|&j| j != i)
        {
            self.set_upstream(&self.node_url(other)?);
        }
        Ok(())
    }

    fn signal_node(&self, i: usize, signal: &str) -> Result<(), HarnessError> {
        let c = self.cluster()?;
        let pid = c
            .nodes
            .get(i)
            .and_then(|n| n.child.as_ref())
            .map(Child::id)
            .ok_or_else(|| HarnessError(format!("operator process {i} is not running")))?;
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .map_err(err)?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError(format!("kill -{signal} {pid} failed")))
        }
    }

    /// SIGSTOPs process `i`: a leader that stalls (a stuck disk, a paused VM) and does not know
    /// it; its sockets stay open and its requests hang. [`Devnet::resume_node`] wakes it.
    /// The watcher's proxy moves to another process (a paused one would hang its reads).
    pub fn pause_node(&self, i: usize) -> Result<(), HarnessError> {
        self.signal_node(i, "STOP")?;
        self.move_upstream_off(&self.node_url(i)?, i)
    }

    /// SIGCONTs a paused process.
    pub fn resume_node(&self, i: usize) -> Result<(), HarnessError> {
        self.signal_node(i, "CONT")
    }

    /// Polls until process `i` exits by itself; returns how it ended and its log. The process
    /// counts as killed afterwards ([`Devnet::start_node`] starts it again).
    pub async fn wait_node_exit(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.cluster_mut()?;
            let n = c.nodes.get_mut(i).ok_or_else(|| HarnessError(format!("no process {i}")))?;
            let child = n
                .child
                .as_mut()
                .ok_or_else(|| HarnessError(format!("operator process {i} is not running")))?;
            if let Some(status) = child.try_wait().map_err(err)? {
                n.child = None;
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                return Ok((status, log));
            }
            if Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "operator process {i} still runs after {timeout:?}\n{}",
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Finds the leader (every live process asked) and SIGKILLs it; returns its index.
    pub async fn kill_leader(&mut self) -> Result<usize, HarnessError> {
        let leader = self.wait_leader(Duration::from_secs(30)).await?;
        self.kill_node(leader)?;
        Ok(leader)
    }

    fn set_upstream(&self, url: &str) {
        if let Ok(mut u) = self.upstream.lock() {
            url.clone_into(&mut u);
        }
    }
}

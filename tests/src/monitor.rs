//! Read-only monitors beside a devnet's watcher (issue 20): `plasma-watcher --monitor` processes
//! with no key, following the same L1 and reading blocks through the same proxy as the watcher
//! (so they see what a byzantine operator serves it), each with its own store, port and log.

use super::{Devnet, HarnessError, bin_dir, err, free_port, wait_healthy};
use std::{
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

/// How [`Devnet::start_monitor`] starts a monitor.
#[derive(Clone, Debug, Default)]
pub struct MonitorOptions {
    /// The API port (default: a free one). Reserve it with [`reserve_port`] when other
    /// processes must know it first (monitors cross-checking each other).
    pub port: Option<u16>,
    /// Its L1 endpoint (default: anvil's), e.g. a recording proxy in front of anvil.
    pub l1_rpc_url: Option<String>,
    /// More flags (`--cross-check …`).
    pub args: Vec<String>,
}

/// A free loopback port for a process started later.
pub fn reserve_port() -> Result<u16, HarnessError> {
    free_port()
}

/// A running monitor; killed when dropped (its log printed if the test is failing).
#[derive(Debug)]
pub struct Monitor {
    /// Its API.
    pub url: String,
    child: Child,
    log: PathBuf,
}

impl Monitor {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its `/status` and `/events`.
    pub async fn state(&self) -> Result<(serde_json::Value, serde_json::Value), HarnessError> {
        let get = |path: &str| {
            let url = format!("{}{path}", self.url);
            async move {
                reqwest::get(url).await.map_err(err)?.json::<serde_json::Value>().await.map_err(err)
            }
        };
        Ok((get("/status").await?, get("/events").await?))
    }

    /// Polls the monitor until `check` holds on its (status, events), for at most 30 s.
    pub async fn wait(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
    ) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (s, e) = self.state().await?;
            if check(&s, &e) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "monitor {} never reached `{what}`: {s} {e}\n--- monitor log\n{}",
                    self.url,
                    self.log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- monitor {} log\n{}", self.url, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Devnet {
    /// Starts a read-only monitor (`plasma-watcher --monitor`, no key in its flags or its
    /// environment) with the watcher's timing settings, and waits until it is healthy.
    pub async fn start_monitor(&self, options: MonitorOptions) -> Result<Monitor, HarnessError> {
        let port = match options.port {
            Some(p) => p,
            None => free_port()?,
        };
        let log = self.dir.path().join(format!("monitor-{port}.log"));
        let l1 = options.l1_rpc_url.unwrap_or_else(|| self.anvil.endpoint());
        let mut child = Command::new(bin_dir().join("plasma-watcher"))
            .args(["--monitor", "--l1.rpc-url", &l1])
            .args(["--l1.framework", &self.deployment.framework.to_string()])
            .args(["--operator.url", &self.proxy_url])
            .args(["--api.listen", &format!("127.0.0.1:{port}")])
            .args([
                "--availability-timeout",
                &self.availability_timeout.to_string(),
                "--stuck-after",
                &(self.period / 10).clamp(1, 5).to_string(),
                "--l1.block-time",
                &self.options.block_time.unwrap_or(1).to_string(),
                "--poll-ms",
                "50",
                "--data-dir",
            ])
            .arg(self.dir.path().join(format!("monitor-{port}-data")))
            .args(&options.args)
            .env_remove("PLASMA_WATCHER_L1_PRIVATE_KEY")
            .env_remove("PLASMA_WATCHER_L1_KEYSTORE")
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).map_err(err)?)
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).map_err(err)?)
            .spawn()
            .map_err(|e| {
                HarnessError(format!(
                    "plasma-watcher from {}: {e} (build it first)",
                    bin_dir().display()
                ))
            })?;
        let url = format!("http://127.0.0.1:{port}");
        wait_healthy(&url, &mut child, &log).await?;
        Ok(Monitor { url, child, log })
    }

    /// SIGKILLs the watcher (its state stays on disk); [`Devnet::restart_watcher`] starts it
    /// again.
    pub fn stop_watcher(&mut self) {
        if let Some(mut c) = self.watcher_process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

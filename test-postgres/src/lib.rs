//! A throwaway PostgreSQL server for tests: `initdb` into a temp directory, `postgres` on a free
//! loopback port, one database `plasma`, stopped (and its files removed) when dropped. Real
//! PostgreSQL, no mocks: the operator's PostgreSQL store and its leader election are tested
//! against it (issue #21).
//!
//! The binaries come from Debian's `postgresql` package, which `scripts/lib.sh`
//! (`ensure_postgres`) installs the way the project installs everything; they are looked up in
//! `PLASMA_PG_BIN`, then `PATH`, then `/usr/lib/postgresql/<newest>/bin`. PostgreSQL refuses to
//! run as root, so under root the cluster is owned by and run as the `postgres` user (or
//! `nobody`) through `setpriv`.
//!
//! `PLASMA_TEST_PG_URL` (a server someone else runs, e.g. a CI service) skips all that: each
//! [`TempPostgres`] then creates a fresh database on that server instead.
//!
//! TLS: [`TempPostgres::start_tls`] (TLS offered, plain accepted) and
//! [`TempPostgres::start_tls_client_auth`] (TLS with a client certificate or nothing); those are
//! always servers of their own.

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No PostgreSQL binaries were found.
    #[error(
        "PostgreSQL's binaries (initdb, postgres) were not found in PLASMA_PG_BIN, PATH or \
         /usr/lib/postgresql/*/bin: run scripts/test once, or `apt-get install postgresql`"
    )]
    NotInstalled,
    /// A command failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The server did not accept connections in time.
    #[error("postgres did not accept connections on port {port} within {secs} s; its log:\n{log}")]
    NotReady {
        /// The port.
        port: u16,
        /// How long we waited.
        secs: u64,
        /// The server's log.
        log: String,
    },
    /// An I/O error around the temp directory or the processes.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running throwaway server (or a fresh database on `PLASMA_TEST_PG_URL`'s server).
#[derive(Debug)]
pub struct TempPostgres {
    url: String,
    port: u16,
    child: Option<Child>,
    bin: Option<PathBuf>,
    run_as: Option<String>,
    data: Option<PathBuf>,
    /// The `-c` settings it was started with, given again on a restart.
    settings: Vec<(String, String)>,
    /// How [`Self::psql`] and the set-up reach the server: `url`, or the Unix socket's
    /// conninfo when TCP needs a client certificate the harness does not have.
    admin: String,
    /// `-h` for `createdb` and `pg_isready`: `127.0.0.1`, or the socket's directory.
    admin_host: String,
    // Kept last: removed after the server has stopped.
    _dir: Option<tempfile::TempDir>,
}

/// The database every server gets, owned by the superuser `plasma` (trust authentication on
/// loopback only).
pub const DATABASE: &str = "plasma";
const USER: &str = "plasma";

/// `pg_hba.conf` of a [`TempPostgres::start_tls_client_auth`] server: the Unix socket (the
/// harness) trusted; on TCP, TLS with a client certificate whose CN is the user, and nothing
/// else (no `host`/`hostnossl` line: a plain session is refused).
const CLIENT_CERT_HBA: &str = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n";

impl TempPostgres {
    /// Starts a server with PostgreSQL's defaults (fsync and synchronous commit on: the
    /// durability the operator relies on is what is tested).
    pub fn start() -> Result<Self, Error> {
        Self::start_with(&[])
    }

    /// Starts a server with extra `-c name=value` settings.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, Error> {
        if let Ok(base) = std::env::var("PLASMA_TEST_PG_URL") {
            return Self::on_existing(&base);
        }
        Self::start_own(settings, &[], false)
    }

    /// Starts a server that accepts TLS (`ssl = on`) with this certificate chain and key (PEM),
    /// and plain connections too: what a client's `sslmode` makes of it is the test. Always a
    /// server of its own (`PLASMA_TEST_PG_URL` is not used: its TLS is not ours to set).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        Self::start_own(
            &[("ssl", "on"), ("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key")],
            &[("server.crt", cert_pem.as_bytes()), ("server.key", key_pem.as_bytes())],
            false,
        )
    }

    /// Starts a server that accepts TCP sessions only over TLS **with a client certificate**
    /// signed by `client_ca_pem` (`ssl_ca_file`) whose CN is the user logged in as
    /// (`pg_hba.conf`: `hostssl all all 127.0.0.1/32 cert`; a plain TCP session finds no
    /// `pg_hba.conf` entry). The server presents `cert_pem`/`key_pem`. [`Self::url`] is the TCP
    /// URL the client under test adds its TLS options to (user `plasma`: the client
    /// certificate's CN must be `plasma`); [`Self::psql`] and the set-up go through the Unix
    /// socket (trust), so the harness needs no certificate. Always a server of its own.
    pub fn start_tls_client_auth(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
    ) -> Result<Self, Error> {
        Self::start_own(
            &[
                ("ssl", "on"),
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
                ("ssl_ca_file", "client-ca.crt"),
            ],
            &[
                ("server.crt", cert_pem.as_bytes()),
                ("server.key", key_pem.as_bytes()),
                ("client-ca.crt", client_ca_pem.as_bytes()),
                // Replaces initdb's (trust for everything).
                ("pg_hba.conf", CLIENT_CERT_HBA.as_bytes()),
            ],
            true,
        )
    }

    /// A server of its own; `files` are written into the data directory (mode 0600, owned by
    /// the server's user: PostgreSQL refuses a key file others can read). `admin_by_socket`:
    /// the harness's own sessions use the Unix socket (TCP may demand what it lacks).
    fn start_own(
        settings: &[(&str, &str)],
        files: &[(&str, &[u8])],
        admin_by_socket: bool,
    ) -> Result<Self, Error> {
        let bin = find_bin().ok_or(Error::NotInstalled)?;
        let run_as = run_as_user();
        let dir = tempfile::Builder::new().prefix("plasma-pg.").tempdir()?;
        let data = dir.path().join("data");
        if let Some(user) = &run_as {
            chown_to(dir.path(), user)?;
        }
        run(command(&bin, "initdb", run_as.as_deref()).arg("-D").arg(&data).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
            "-N",
        ]))?;
        for (name, bytes) in files {
            let path = data.join(name);
            std::fs::write(&path, bytes)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            if let Some(user) = &run_as {
                chown_to(&path, user)?;
            }
        }
        // A free port: the kernel's pick, bound and released; another test may race for it, so
        // a start that fails on the port is retried on a new one.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mut cmd = command(&bin, "postgres", run_as.as_deref());
            cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string()).arg("-k").arg(dir.path());
            cmd.args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]);
            cmd.args(["-c", "shared_buffers=64MB", "-c", "logging_collector=off"]);
            for (k, v) in settings {
                cmd.arg("-c").arg(format!("{k}={v}"));
            }
            let log = std::fs::File::create(dir.path().join("postgres.log"))?;
            if let Some(user) = &run_as {
                chown_to(&dir.path().join("postgres.log"), user)?;
            }
            cmd.stdout(Stdio::null()).stderr(log);
            let child = cmd.spawn()?;
            let url = format!("postgres://{USER}@127.0.0.1:{port}/{DATABASE}");
            let (admin, admin_host) = if admin_by_socket {
                let socket_dir = dir.path().display().to_string();
                // Quoted as conninfo wants (a temp directory may hold spaces).
                let quoted = socket_dir.replace('\\', "\\\\").replace('\'', "\\'");
                (format!("host='{quoted}' port={port} user={USER} dbname={DATABASE}"), socket_dir)
            } else {
                (url.clone(), "127.0.0.1".to_owned())
            };
            let mut server = Self {
                url,
                port,
                child: Some(child),
                bin: Some(bin.clone()),
                run_as: run_as.clone(),
                data: Some(data.clone()),
                settings: settings
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                admin,
                admin_host,
                _dir: None,
            };
            match server.await_ready(dir.path()) {
                Ok(()) => {
                    run(command(&bin, "createdb", None).args([
                        "-h",
                        &server.admin_host,
                        "-p",
                        &port.to_string(),
                        "-U",
                        USER,
                        DATABASE,
                    ]))?;
                    server._dir = Some(dir);
                    return Ok(server);
                }
                Err(e) => {
                    server.stop_server();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::NotInstalled))
    }

    fn on_existing(base: &str) -> Result<Self, Error> {
        // A database of our own on someone else's server, named uniquely for this process and
        // call.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "plasma_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let psql = find_bin().map_or_else(|| PathBuf::from("psql"), |b| b.join("psql"));
        run(Command::new(psql)
            .arg(base)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")))?;
        let url = match base.rfind('/') {
            Some(i) if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 => {
                format!("{}/{name}", &base[..i])
            }
            _ => format!("{base}/{name}"),
        };
        Ok(Self {
            admin: url.clone(),
            url,
            port: 0,
            child: None,
            bin: None,
            run_as: None,
            data: None,
            settings: Vec::new(),
            admin_host: String::new(),
            _dir: None,
        })
    }

    /// `postgres://plasma@127.0.0.1:<port>/plasma`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's loopback port (0 on `PLASMA_TEST_PG_URL`).
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (empty on `PLASMA_TEST_PG_URL`).
    pub fn log(&self) -> String {
        self._dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("postgres.log")).ok())
            .unwrap_or_default()
    }

    /// Runs SQL through `psql` against the test database (set-up and inspection in tests that
    /// should not depend on a Rust client; on a [`Self::start_tls_client_auth`] server through
    /// the Unix socket).
    pub fn psql(&self, sql: &str) -> Result<String, Error> {
        let psql = self
            .bin
            .as_ref()
            .map_or_else(|| find_bin().map(|b| b.join("psql")), |b| Some(b.join("psql")))
            .unwrap_or_else(|| PathBuf::from("psql"));
        run(Command::new(psql)
            .arg(&self.admin)
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c"])
            .arg(sql))
    }

    fn await_ready(&mut self, dir: &Path) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(Error::Command {
                    command: format!("postgres on port {}", self.port),
                    output: format!(
                        "exited with {status}:\n{}",
                        std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
                    ),
                });
            }
            // Accepting TCP is not yet accepting sessions ("the database system is starting
            // up"); pg_isready asks the server itself.
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && let Some(bin) = &self.bin
                && Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", &self.admin_host, "-p", &self.port.to_string(), "-U", USER])
                    .status()
                    .is_ok_and(|s| s.success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    port: self.port,
                    secs: 30,
                    log: std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once, as a crash would (SIGQUIT: no checkpoint; the next start
    /// recovers from the WAL), and starts it again on the same port, data and settings (TLS
    /// included): what was committed must still be there.
    pub fn crash_and_restart(&mut self) -> Result<(), Error> {
        self.signal("QUIT");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let (Some(bin), Some(data), Some(dir)) =
            (self.bin.clone(), self.data.clone(), self._dir.as_ref().map(|d| d.path().to_owned()))
        else {
            return Ok(());
        };
        let mut cmd = command(&bin, "postgres", self.run_as.as_deref());
        cmd.arg("-D").arg(&data).arg("-p").arg(self.port.to_string()).arg("-k").arg(&dir);
        cmd.args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]);
        for (k, v) in &self.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let log = std::fs::OpenOptions::new().append(true).open(dir.join("postgres.log"))?;
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn()?);
        self.await_ready(&dir)
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    fn stop_server(&mut self) {
        // Immediate shutdown: the cluster is thrown away.
        self.signal("QUIT");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// The directory holding `initdb` and `postgres`.
pub fn find_bin() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(dir) = std::env::var("PLASMA_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                // Debian links only some binaries into PATH: prefer the real directory.
                if let Ok(real) = std::fs::canonicalize(dir.join("initdb"))
                    && let Some(parent) = real.parent()
                    && has(parent)
                {
                    return Some(parent.to_owned());
                }
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// Who runs the server: nobody else when we are not root; else `postgres` (Debian's package
/// creates it) or `nobody`.
fn run_as_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    for user in ["postgres", "nobody"] {
        if Command::new("id").arg("-u").arg(user).output().is_ok_and(|o| o.status.success()) {
            return Some(user.to_owned());
        }
    }
    None
}

fn chown_to(path: &Path, user: &str) -> Result<(), Error> {
    run(Command::new("chown").arg(format!("{user}:")).arg(path))?;
    Ok(())
}

fn command(bin: &Path, program: &str, run_as: Option<&str>) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", user, "--regid", user, "--init-groups", "--"]);
            c.arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    }
}

fn run(cmd: &mut Command) -> Result<String, Error> {
    let out = cmd.output()?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command { command: format!("{cmd:?}"), output: text })
    }
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_server_starts_answers_and_keeps_committed_data_across_a_crash() {
        let mut pg = TempPostgres::start().unwrap();
        assert!(pg.url().starts_with("postgres://plasma@127.0.0.1:"));
        pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)").unwrap();
        assert_eq!(pg.psql("SELECT sum(v) FROM t").unwrap().trim(), "42");
        pg.crash_and_restart().unwrap();
        assert_eq!(pg.psql("SELECT sum(v) FROM t").unwrap().trim(), "42");
        assert!(pg.psql("SELECT nope").is_err());
    }

    #[test]
    fn two_servers_do_not_share_anything() {
        let a = TempPostgres::start().unwrap();
        let b = TempPostgres::start().unwrap();
        assert_ne!(a.port(), b.port());
        a.psql("CREATE TABLE only_a (v int)").unwrap();
        assert!(b.psql("SELECT * FROM only_a").is_err());
    }
}

//! Third outside-style audit of issue #21 (the highly available operator on PostgreSQL): the
//! round-2 fixes (A21b-3, -6, -7, -8 and migration 0003). Findings are written up in
//! `/work/helpers/audit21c.md` (A21c-N). A test that fails on the code as audited is
//! `#[ignore = "A21c-N: …"]` so CI stays green; a `checked_…` test is an attack that held and
//! stays as a regression test.
//!
//! Real PostgreSQL (`plasma-test-postgres`, a throwaway server per test), real `HaNode`s. A
//! takeover is observed without L1: a standby whose L1 endpoint is unreachable still takes the
//! lease (and ends the old epoch's sessions) before it fails to start leading.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

#[path = "common/ha.rs"]
mod ha_env;

use alloy::providers::Provider;
use plasma_operator::{Batch, EncodedBlock, HaNode, PgOptions, Role, Store, StoreError};
use plasma_test_postgres::TempPostgres;
use std::time::{Duration, Instant};

#[path = "common/standby.rs"]
mod standby;
use standby::postgres;
use standby::standby_config;

/// Migrates `url`'s database and makes node `old` hold the lease and the fence in `epoch`, the
/// lease running out at `expires` (SQL).
fn hold_lease(pg: &TempPostgres, epoch: u64, expires: &str) {
    drop(Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap());
    pg.psql(&format!(
        "INSERT INTO plasma_leader (id, epoch, holder, url, expires_at) \
         VALUES (1, {epoch}, 'old', 'http://127.0.0.1:9', 'infinity') \
         ON CONFLICT (id) DO UPDATE SET epoch = {epoch}, holder = 'old'; \
         INSERT INTO plasma_lease (id, epoch, holder, url, expires_at) \
         VALUES (1, {epoch}, 'old', 'http://127.0.0.1:9', {expires}) \
         ON CONFLICT (id) DO UPDATE SET epoch = {epoch}, holder = 'old', expires_at = {expires}"
    ))
    .unwrap();
}

/// Polls `f` every 20 ms until it is true or `within` has passed; whether it became true.
fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fence_epoch(pg: &TempPostgres) -> String {
    pg.psql("SELECT epoch FROM plasma_leader WHERE id = 1").unwrap().trim().to_owned()
}

/// A raw session on `url` that has run `sql` inside an open transaction (and keeps it open).
fn open_tx(url: &str, sql: &str) -> postgres::Client {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute("BEGIN").unwrap();
    c.batch_execute(sql).unwrap();
    c
}

/// Whether a session opened by [`open_tx`] is still alive (its transaction not ended by anyone).
fn alive(c: &mut postgres::Client) -> bool {
    c.simple_query("SELECT 1").is_ok()
}

// ----------------------------------------------------------------------------------------------
// 1. The takeover ending the old epoch's sessions (A21b-7's fix).

/// ATTACKED, HELD — `end_fence_holders` ends exactly the sessions holding the fence row's share
/// lock in the store's own database, nothing else: not a reader of the fence row (a standby's
/// snapshot), not a session holding `FOR SHARE` on another table, not a session holding `FOR
/// SHARE` on `plasma_leader` of another database on the same server (a second chain sharing the
/// server). The control: the old epoch's open write is ended, and the takeover happens within a
/// couple of leases instead of waiting behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_the_takeover_ends_only_the_fence_holders_of_its_own_database() {
    let pg = tokio::task::spawn_blocking(postgres).await.unwrap();
    let url = pg.url().to_owned();
    let other_url = url.rsplit_once('/').map(|(base, _)| format!("{base}/plasma_other")).unwrap();
    pg.psql("CREATE DATABASE plasma_other").unwrap();
    let pg = tokio::task::spawn_blocking(move || {
        drop(Store::open_postgres(&other_url, &PgOptions::pool(1)).unwrap());
        hold_lease(&pg, 7, "clock_timestamp() + interval '300 milliseconds'");
        (pg, other_url)
    })
    .await
    .unwrap();
    let (pg, other_url) = pg;
    let (mut old_write, mut reader, mut other_table, mut other_db) = {
        let (url, other_url) = (url.clone(), other_url.clone());
        tokio::task::spawn_blocking(move || {
            (
                open_tx(
                    &url,
                    "SELECT epoch, txid_current() FROM plasma_leader WHERE id = 1 FOR SHARE",
                ),
                open_tx(
                    &url,
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                     SELECT epoch FROM plasma_leader WHERE id = 1; SELECT count(*) FROM utxos",
                ),
                open_tx(&url, "SELECT * FROM meta FOR SHARE; SELECT * FROM plasma_lease"),
                open_tx(&other_url, "SELECT * FROM plasma_leader FOR SHARE"),
            )
        })
        .await
        .unwrap()
    };

    let started = Instant::now();
    let node = HaNode::start(standby_config("b", &url)).await.unwrap();
    let taken = {
        let pg = &pg;
        wait_until(Duration::from_secs(5), || fence_epoch(pg) == "8")
    };
    let took = started.elapsed();
    // Item 5 (A21b-6): the exit signal reaches a plain thread when leading cannot start, and
    // the lease taken is given back at once (not left to run out).
    let (tx, rx) = std::sync::mpsc::channel();
    node.on_exit(move |why| {
        let _ = tx.send(why);
    })
    .unwrap();
    let why = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap();
    let released = {
        let pg = &pg;
        wait_until(Duration::from_secs(5), || {
            pg.psql("SELECT holder = 'b' AND expires_at < clock_timestamp() FROM plasma_lease")
                .unwrap()
                .trim()
                == "t"
        })
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    assert!(taken, "the takeover did not move the fence within {took:?}");
    let why = why.expect("no exit signal on a plain thread after leading could not start");
    assert!(why.contains("could not start leading in epoch 8"), "{why}");
    assert!(released, "the lease of a node that could not lead was not released");
    let states = tokio::task::spawn_blocking(move || {
        (alive(&mut old_write), alive(&mut reader), alive(&mut other_table), alive(&mut other_db))
    })
    .await
    .unwrap();
    assert_eq!(
        states,
        (false, true, true, true),
        "(old epoch's write, fence reader, FOR SHARE on another table, another database's fence \
         holder): only the first may be ended"
    );
}

/// ATTACKED, HELD — OP-HA-2 with a `COMMIT` in flight when the takeover ends the session: the
/// old epoch's write is in its `COMMIT` (a deferred constraint trigger makes the commit take 3 s,
/// as a slow commit-time check or a full WAL flush would) when its lease runs out. The takeover
/// ends it. What the old leader's store reports must match what is durable: `Ok` only if the row
/// committed, an error only if it did not — and it must not be `Ok` for a row the new leader
/// cannot see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_a_commit_in_flight_ended_by_the_takeover_is_reported_as_it_ended() {
    let pg = tokio::task::spawn_blocking(postgres).await.unwrap();
    let pg = tokio::task::spawn_blocking(move || {
        hold_lease(&pg, 7, "clock_timestamp() + interval '1 hour'");
        pg.psql(
            "CREATE FUNCTION audit_slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.key = 'audit_commit' THEN PERFORM pg_sleep(3); END IF; RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER audit_slow_commit AFTER INSERT OR UPDATE ON meta \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_slow_commit()",
        )
        .unwrap();
        pg
    })
    .await
    .unwrap();
    let url = pg.url().to_owned();
    let write = tokio::task::spawn_blocking(move || {
        let store = Store::open_postgres(&url, &PgOptions::pool(1)).unwrap();
        store.set_fence(7);
        let r = store.apply(&Batch { meta: vec![("audit_commit", 1)], ..Batch::default() });
        (r, store.poisoned())
    });
    // The write is inside its COMMIT (running the deferred trigger) …
    let in_commit = {
        let pg = &pg;
        wait_until(Duration::from_secs(5), || {
            pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'plasma-operator' \
                 AND query ILIKE 'commit%' AND state = 'active'",
            )
            .unwrap()
            .trim()
                == "1"
        })
    };
    assert!(in_commit, "(precondition) the write never reached its COMMIT");
    // … when its lease runs out and a standby takes over.
    pg.psql("UPDATE plasma_lease SET expires_at = clock_timestamp() - interval '1 ms'").unwrap();
    let node = HaNode::start(standby_config("b", pg.url())).await.unwrap();
    let taken = {
        let pg = &pg;
        wait_until(Duration::from_secs(5), || fence_epoch(pg) == "8")
    };
    let (result, poisoned) = write.await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    assert!(taken, "the takeover did not end the write in its COMMIT");
    let durable = pg.psql("SELECT count(*) FROM meta WHERE key = 'audit_commit'").unwrap();
    let durable = durable.trim() == "1";
    eprintln!("the old epoch's write: {result:?}, durable: {durable}, poisoned: {poisoned:?}");
    assert_eq!(
        result.is_ok(),
        durable,
        "the old leader's store said {result:?} (poisoned: {poisoned:?}) but the row is \
         durable: {durable}"
    );
}

// ----------------------------------------------------------------------------------------------
// 2. The store-call deadline and poisoning (A21b-8, A21b-3).

/// FINDING A21c-1 — the store-call deadline is wall-clock time for the whole call (queue time
/// included), not silence: a write that the database is still executing (healthy, only slow) is
/// given up at the deadline and the store poisons itself — and the write then COMMITS anyway. The
/// store said "outcome unknown, restart", the leader stood down and released its lease, and the
/// next leader reloads the same mempool and produces the same block on the same slow database:
/// the A21-1 loop again, with the call deadline (default 60 s, `[store] call_deadline_ms`)
/// instead of the lease. A full 2^16-payment block is 5 s on loopback in release
/// (docs/benchmarks.md): ~330k row changes and 25 MB of TOASTed rows; a 12× slower database (a
/// burst-credit cloud disk, a busy shared server, a synchronous standby across a region) reaches
/// the default. The knob and the half-deadline warning (added during this audit) let an operator
/// raise it after the fact; nothing tells a busy database from a silent one.
///
/// Reproduction (scaled: a 2 s deadline, a write the server executes for 3.5 s — a trigger
/// sleeping, the backend `active`, not waiting on a lock or a dead socket). Expected: a database
/// that is visibly executing the write is waited for (the deadline applies to silence: the
/// socket's `tcp_user_timeout`/keepalives, or a server-side `statement_timeout` sized to the
/// batch), or at least the store does not declare unknown a write it then commits. Observed:
/// poisoned at 2 s; the row commits at 3.5 s.
#[test]
fn a21c_1_a_slow_but_progressing_write_is_not_poisoned() {
    let pg = postgres();
    hold_lease(&pg, 7, "clock_timestamp() + interval '1 hour'");
    pg.psql(
        "CREATE FUNCTION audit_slow() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN IF NEW.key = 'audit_slow' THEN PERFORM pg_sleep(3.5); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER audit_slow BEFORE INSERT OR UPDATE ON meta \
         FOR EACH ROW EXECUTE FUNCTION audit_slow()",
    )
    .unwrap();
    let options = PgOptions { call_deadline: Duration::from_secs(2), ..PgOptions::pool(1) };
    let store = Store::open_postgres(pg.url(), &options).unwrap();
    store.set_fence(7);
    let started = Instant::now();
    let result = store.apply(&Batch { meta: vec![("audit_slow", 1)], ..Batch::default() });
    let took = started.elapsed();
    let poisoned = store.poisoned();
    // What the database did with it (the write goes on after the caller gave up).
    let committed = wait_until(Duration::from_secs(10), || {
        pg.psql("SELECT count(*) FROM meta WHERE key = 'audit_slow'").unwrap().trim() == "1"
    });
    assert!(
        result.is_ok() && poisoned.is_none(),
        "A21c-1: a write the database was executing (3.5 s, healthy) was given up after {took:?}: \
         {result:?}; store poisoned: {poisoned:?}; the write then committed anyway: {committed}"
    );
}

/// ATTACKED, HELD (A21b-3 end to end, in seconds with a 1 s call deadline) — a real leader on
/// anvil whose store poisons itself (its deposit-cursor write runs past the call deadline and
/// past the longest a write the server is still working on is waited for, ten deadlines since
/// A21c-1's fix: a trigger makes it take 12 s) stands down by itself: the exit signal reaches a plain thread
/// (what the binary's exit 3 hangs on, A21b-6), the role is `Deposed`, and the lease is released
/// at once (expired by the database's clock long before a lease would have run out).
///
/// (The lease row is given a finite expiry first: on a new database nobody can be elected
/// today, A21c-3.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_a_poisoned_leader_stands_down_releases_and_signals_exit() {
    let env = ha_env::env().await;
    let url = env.pg.url().to_owned();
    tokio::task::spawn_blocking(move || {
        drop(Store::open_postgres(&url, &PgOptions::pool(1)).unwrap());
    })
    .await
    .unwrap();
    env.pg.psql("UPDATE plasma_lease SET expires_at = '1970-01-01 00:00:00+00'").unwrap();
    let mut config = ha_env::config(&env, "a");
    config.store.call_deadline_ms = 1_000;
    let node = HaNode::start(config).await.unwrap();
    let epoch =
        tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    let (tx, rx) = std::sync::mpsc::channel();
    node.on_exit(move |why| {
        let _ = tx.send(why);
    })
    .unwrap();
    env.pg
        .psql(
            "CREATE FUNCTION audit_slow_cursor() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.key = 'deposit_cursor' THEN PERFORM pg_sleep(12); END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER audit_slow_cursor BEFORE INSERT OR UPDATE ON meta \
             FOR EACH ROW EXECUTE FUNCTION audit_slow_cursor()",
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let why = loop {
        env.provider
            .raw_request::<_, serde_json::Value>("anvil_mine".into(), (1u64,))
            .await
            .unwrap();
        if let Ok(why) = rx.try_recv() {
            break Some(why);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let poisoned_at = Instant::now();
    let released = wait_until(Duration::from_millis(ha_env::LEASE_MS / 2), || {
        env.pg
            .psql("SELECT holder = 'a' AND expires_at < clock_timestamp() FROM plasma_lease")
            .unwrap()
            .trim()
            == "t"
    });
    let released_after = poisoned_at.elapsed();
    let role = node.role();
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    let why = why.expect("the poisoned leader never signalled its exit");
    assert!(why.contains("refuses every write"), "{why}");
    assert!(matches!(role, Role::Deposed { epoch: e, .. } if e == epoch), "{role:?}");
    assert!(released, "the lease was not released within {released_after:?} of the exit signal");
}

/// FINDING A21c-2 — a block whose encoding outlasts `IDLE_IN_TRANSACTION` (10 s) is never
/// written: `apply_with_block` opens the transaction, writes the batch's rows, then waits (idle
/// in transaction, holding the fence's share lock) for the encoder; at 10 s the server ends the
/// session, the write fails, block production retries the same block with the same encoding time
/// and fails again: the chain stalls on that block. The round-2 brief asked to "encode the block
/// *before* opening its transaction"; the code still overlaps them, so the encoder's time is
/// idle-in-transaction time. A full block's encoding is 0.6 s in release on this machine; a
/// debug build, a slower or CPU-starved host (the encoder competes with `submit`'s signature
/// recovery on all cores) shrinks the 16× margin.
///
/// Reproduction: an empty block whose encoder takes 11 s (as a slow host's would). Expected: it
/// is written. Observed: the session is ended by the server and the write fails.
#[test]
fn a21c_2_a_block_encoded_slower_than_the_idle_timeout_is_still_written() {
    let pg = postgres();
    hold_lease(&pg, 7, "clock_timestamp() + interval '1 hour'");
    let store = Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap();
    store.set_fence(7);
    let block = EncodedBlock::new(1000, &[], &[], None, None).unwrap();
    let batch = Batch { meta: vec![("audit_encode", 1)], ..Batch::default() };
    let result = store.apply_with_block(&batch, move || {
        std::thread::sleep(Duration::from_secs(11));
        Ok::<_, StoreError>(block)
    });
    let stored = pg.psql("SELECT count(*) FROM block_info WHERE blknum = 1000").unwrap();
    assert!(
        result.is_ok() && stored.trim() == "1",
        "A21c-2: a healthy block whose encoding took 11 s was not written: {:?}",
        result.map(|(info, _, _)| info.blknum)
    );
}

// ----------------------------------------------------------------------------------------------
// 6. Migration 0003: the first election.

/// FINDING A21c-3 — a new database never elects a leader. Migration 0003 seeds the lease row
/// with `expires_at = '-infinity'`; every read of the lease (`LeaseDb::read_lease`, the first
/// step of each takeover) formats the expiry with `to_char(expires_at AT TIME ZONE 'UTC', …)`,
/// which is NULL for ±infinity, and `LeaseDb::row` reads it as a non-null `String`: "error
/// deserializing column 3: a Postgres value was `NULL`". Every attempt fails the same way, so
/// every process stays a standby for ever: a fresh deployment (and any 0002 database that never
/// elected, migrated to 0003) never starts its chain. `leader.rs`'s own unit test locks the row
/// by hand and writes a finite expiry before the takeover reads it, so it does not see this.
///
/// Reproduction: a fresh database, one node. Expected: it takes the lease (fence epoch 1)
/// within a few seconds. Observed at 16:13 UTC: "could not try the lease; still a standby" every
/// lease/5. FIXED by the lead by 16:23 (0003 now seeds `'epoch'`, a finite time); the test
/// passes (~1 s) and stays as the regression test.
///
/// Fix: seed a finite past expiry (e.g. `'epoch'` / `'1970-01-01'`) or make `EXPIRES`
/// NULL-safe (`coalesce`, or read `expires_at` as text / `Option<String>`), and test a first
/// election on a fresh database without writing the row by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a21c_3_a_new_database_elects_a_leader() {
    let pg = tokio::task::spawn_blocking(postgres).await.unwrap();
    let node = HaNode::start(standby_config("a", pg.url())).await.unwrap();
    let taken = {
        let pg = &pg;
        wait_until(Duration::from_secs(5), || {
            pg.psql("SELECT count(*) FROM plasma_leader").unwrap().trim() == "1"
        })
    };
    let lease = pg.psql("SELECT epoch, holder, expires_at FROM plasma_lease").unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    assert!(
        taken,
        "A21c-3: 5 s after the only node started on a new database, nobody took the lease \
         (lease row: {}; the node's status: standby, every attempt failing)",
        lease.trim()
    );
}

// ----------------------------------------------------------------------------------------------
// 6b. Migration 0003 on a database of the previous schema (a rolling upgrade).

/// Creates the schema of the release before migration 0003 (0001 and 0002 applied and
/// recorded, as that release's `migrate` left them).
fn schema_0002(pg: &TempPostgres) {
    pg.psql(&format!(
        "CREATE TABLE plasma_schema (version integer PRIMARY KEY, name text NOT NULL, \
         applied_at timestamptz NOT NULL DEFAULT now()); {} {} \
         INSERT INTO plasma_schema (version, name) VALUES (1, 'init'), (2, 'lease');",
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_lease.sql"),
    ))
    .unwrap();
}

/// ATTACKED, HELD — migration 0003 on a 0002 database whose leader (of the previous release,
/// still running) holds a live lease: the new binary's migration keeps that row (`ON CONFLICT DO
/// NOTHING`), the new node stands by while the lease is live, names the old leader, and takes
/// over (epoch + 1) only once it ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_migration_0003_keeps_a_live_leader_of_the_previous_release() {
    let pg = tokio::task::spawn_blocking(move || {
        let pg = postgres();
        schema_0002(&pg);
        pg.psql(
            "INSERT INTO plasma_leader VALUES (1, 5, 'old', 'http://old:1', 'infinity'); \
             INSERT INTO plasma_lease VALUES (1, 5, 'old', 'http://old:1', \
             clock_timestamp() + interval '2 seconds')",
        )
        .unwrap();
        pg
    })
    .await
    .unwrap();
    let node = HaNode::start(standby_config("b", pg.url())).await.unwrap();
    let schema = pg.psql("SELECT max(version) FROM plasma_schema").unwrap();
    assert_eq!(
        schema.trim(),
        plasma_operator::POSTGRES_SCHEMA.to_string(),
        "the new binary migrated"
    );
    let lease = pg.psql("SELECT epoch, holder FROM plasma_lease").unwrap();
    assert_eq!(lease.trim(), "5|old", "the live lease row was kept");
    // While the old leader's lease is live, the new node stands by and names it.
    let named = wait_until(
        Duration::from_secs(1),
        || matches!(node.role(), plasma_operator::Role::Standby { leader: Some(ref l) } if l.epoch == 5 && l.url == "http://old:1"),
    );
    assert!(named, "{:?}", node.role());
    assert_eq!(fence_epoch(&pg), "5", "no takeover while the lease is live");
    let taken = {
        let pg = &pg;
        wait_until(Duration::from_secs(10), || fence_epoch(pg) == "6")
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    assert!(taken, "the new node took over after the old lease ran out, with epoch 6");
}

/// FINDING A21c-3 (as a rolling upgrade meets it) — a 0002 database on which nobody was ever
/// elected (no lease row) gets 0003's epoch-0 row when the new binary opens it; the first
/// takeover must then give epoch 1. Failed at 16:13 UTC with A21c-3 (the `-infinity` expiry);
/// passes since the lead's fix (~1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a21c_3_a_never_elected_0002_database_elects_epoch_1_after_migration() {
    let pg = tokio::task::spawn_blocking(move || {
        let pg = postgres();
        schema_0002(&pg);
        pg
    })
    .await
    .unwrap();
    let node = HaNode::start(standby_config("c", pg.url())).await.unwrap();
    let first = {
        let pg = &pg;
        let mut epoch = String::new();
        wait_until(Duration::from_secs(5), || {
            epoch = fence_epoch(pg);
            !epoch.is_empty()
        });
        epoch
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), node.crash()).await;
    assert_eq!(first, "1", "A21c-3: the first takeover on a migrated never-elected database");
}

// ----------------------------------------------------------------------------------------------
// 1b. A lost COMMIT answer resolved on another server (a failover).

/// A TCP proxy whose upstream port can be switched (a database failover: the same address now
/// reaches the promoted replica) and which refuses new connections (closes them at once) while
/// the failover is in progress.
struct SwitchProxy {
    port: u16,
    upstream: std::sync::Arc<std::sync::atomic::AtomicU16>,
    blackhole: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// New connections accepted and held open, never answered (a hung pooler).
    swallow: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many connections were held that way.
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    streams: std::sync::Arc<parking_lot::Mutex<Vec<std::net::TcpStream>>>,
}

impl SwitchProxy {
    fn start(upstream: u16) -> Self {
        use std::{
            io::{Read, Write},
            sync::{Arc, atomic::Ordering},
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            upstream: Arc::new(upstream.into()),
            blackhole: Arc::default(),
            swallow: Arc::default(),
            held: Arc::default(),
            streams: Arc::default(),
        };
        let held_count = proxy.held.clone();
        let (up, bh, ss) = (proxy.upstream.clone(), proxy.blackhole.clone(), proxy.streams.clone());
        let held = proxy.swallow.clone();
        let mut hung = Vec::new();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if bh.load(Ordering::SeqCst) {
                    continue; // closed at once: the server is down
                }
                if held.load(Ordering::SeqCst) {
                    hung.push(client); // accepted, never answered, never closed
                    held_count.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                ss.lock().push(client.try_clone().unwrap());
                let Ok(server) =
                    std::net::TcpStream::connect(("127.0.0.1", up.load(Ordering::SeqCst)))
                else {
                    continue;
                };
                ss.lock().push(server.try_clone().unwrap());
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        proxy
    }

    /// Closes every connection made so far.
    fn sever(&self) {
        for s in self.streams.lock().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// FINDING A21c-4 — `Conn::resolve` settles a lost `COMMIT` answer with `txid_status(xid)`, but a
/// transaction id means something only on the server (and timeline) that assigned it. After a
/// database failover — the primary dies with the write committed locally but not replicated (an
/// asynchronous replica; or a synchronous one that had not yet received the write's own WAL:
/// sync-rep waits only at commit) — the promoted replica has never seen that xid and assigns it
/// again to another transaction. `txid_status` on it then answers for *that* transaction:
/// `committed`, and the store returns `Ok` for a write that is not in the database the chain now
/// runs on. For a `submit` that is an acknowledged payment lost (OP-2); for a block, a block the
/// operator believes persisted (it may send its root, OP-3) that the new primary lacks.
///
/// Reproduction: two servers stand for the primary (A) and the promoted replica (B, the same
/// schema and lease rows, without the write), behind one address (a proxy). A write's `COMMIT`
/// (made 2 s long by a deferred trigger) is cut off; while the store tries to reconnect, A
/// commits it, the address is switched to B, and B assigns the write's xid to a committed
/// transaction of its own. Expected: the store never answers `Ok` for a write B does not hold
/// (check the server identity — `pg_control_system()`'s `system_identifier` and the timeline —
/// before trusting `txid_status`, or look the write up by a token it wrote, and poison if it
/// cannot tell). Observed: see the assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a21c_4_a_lost_commit_is_not_confirmed_by_another_server_reusing_its_xid() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        let (a, b) = (postgres(), postgres());
        for pg in [&a, &b] {
            hold_lease(pg, 7, "clock_timestamp() + interval '1 hour'");
        }
        a.psql(
            "CREATE FUNCTION audit_slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.key = 'audit_w' THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER audit_slow_commit AFTER INSERT OR UPDATE ON meta \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_slow_commit()",
        )
        .unwrap();
        // The primary has assigned more transaction ids than the replica has seen.
        a.psql("DO $$ BEGIN FOR i IN 1..300 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$")
            .unwrap();
        (a, b)
    })
    .await
    .unwrap();
    let proxy = SwitchProxy::start(a.port());
    let via = a.url().replace(&format!(":{}/", a.port()), &format!(":{}/", proxy.port));
    let write = tokio::task::spawn_blocking(move || {
        let store = Store::open_postgres(&via, &PgOptions::pool(1)).unwrap();
        store.set_fence(7);
        let r = store.apply(&Batch { meta: vec![("audit_w", 1)], ..Batch::default() });
        let poisoned = store.poisoned();
        // Not dropped: a pool thread stuck in a connect would make the drop wait.
        std::mem::forget(store);
        (r, poisoned)
    });
    let a = tokio::task::spawn_blocking(move || {
        let in_commit = wait_until(Duration::from_secs(10), || {
            a.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'plasma-operator' \
                 AND query ILIKE 'commit%' AND state = 'active'",
            )
            .unwrap()
            .trim()
                == "1"
        });
        assert!(in_commit, "(precondition) the write never reached its COMMIT");
        a
    })
    .await
    .unwrap();
    // The primary goes away mid-COMMIT (the answer is lost) …
    proxy.blackhole.store(true, std::sync::atomic::Ordering::SeqCst);
    proxy.sever();
    // … having committed the write locally.
    let (a, b, xid) = tokio::task::spawn_blocking(move || {
        let committed = wait_until(Duration::from_secs(10), || {
            a.psql("SELECT count(*) FROM meta WHERE key = 'audit_w'").unwrap().trim() == "1"
        });
        assert!(committed, "(precondition) the write committed on the old primary");
        let xid: u64 = a
            .psql("SELECT xmin::text FROM meta WHERE key = 'audit_w'")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The promoted replica never saw it, and assigns its xid to a transaction of its own.
        b.psql(&format!(
            "DO $$ DECLARE x bigint; BEGIN LOOP x := txid_current(); COMMIT; \
             EXIT WHEN x >= {xid}; END LOOP; END $$"
        ))
        .unwrap();
        (a, b, xid)
    })
    .await
    .unwrap();
    proxy.upstream.store(b.port(), std::sync::atomic::Ordering::SeqCst);
    proxy.blackhole.store(false, std::sync::atomic::Ordering::SeqCst);
    let (result, poisoned) = write.await.unwrap();
    let on_b = b.psql("SELECT count(*) FROM meta WHERE key = 'audit_w'").unwrap();
    let status_on_b = b.psql(&format!("SELECT txid_status({xid})")).unwrap();
    drop(a);
    assert!(
        result.is_err() || on_b.trim() == "1",
        "A21c-4: the store answered {result:?} (poisoned: {poisoned:?}) for a write the database \
         it now talks to does not hold (rows: {}); txid_status({xid}) there is {} — another \
         transaction's",
        on_b.trim(),
        status_on_b.trim()
    );
}

/// FINDING A21c-5 — a store connection attempt that is accepted but never answered (a hung
/// pooler or proxy, a database VM frozen after its kernel accepted) blocks its pool thread for
/// ever: `connect_timeout` (10 s) bounds only the TCP connect, not the startup and
/// authentication exchange, and `tcp_user_timeout`/keepalives never fire while the peer's kernel
/// acknowledges. Every reconnect — `Conn::read`'s retry, `Conn::write`'s, and `Conn::resolve`'s
/// (whose `RESOLVE_FOR` is checked only after an attempt returns) — can hang there. Callers get
/// their call deadline, but the thread never comes back: with every pool thread caught, every
/// later call times out while still QUEUED (abandoned unrun: no poisoning, so nothing stands the
/// leader down), even once the database answers new connections again; and dropping the store
/// (a node stopping) waits for ever. Seen first as this audit's own test run hanging in
/// `PgStore::drop`.
///
/// Reproduction: a pool of one behind a proxy; its connection is cut while new connections are
/// accepted and held silent; one read (2 s deadline) makes the thread reconnect into that; then
/// the proxy answers new connections again. Expected: within connect_timeout + a margin (20 s)
/// a read succeeds. Observed: none does.
///
/// Fix: bound the whole connect (run it under a deadline — e.g. `tokio_postgres::connect`
/// inside `tokio::time::timeout`, or a watchdog that shuts the socket down — at `connect_timeout`),
/// and check `RESOLVE_FOR` around each attempt, not only after it.
#[test]
fn a21c_5_a_connect_accepted_but_never_answered_gives_the_pool_thread_back() {
    use std::sync::atomic::Ordering;
    let pg = postgres();
    drop(Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap());
    let proxy = SwitchProxy::start(pg.port());
    let via = pg.url().replace(&format!(":{}/", pg.port()), &format!(":{}/", proxy.port));
    let options = PgOptions { call_deadline: Duration::from_secs(2), ..PgOptions::pool(1) };
    let store = Store::open_postgres(&via, &options).unwrap();
    assert!(store.head().is_ok(), "(precondition) reads work through the proxy");
    proxy.swallow.store(true, Ordering::SeqCst);
    proxy.sever();
    let during = store.head();
    assert!(during.is_err(), "(precondition) no answer while the path is silent");
    proxy.swallow.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let recovered = wait_until(Duration::from_secs(20), || store.head().is_ok());
    let waited = started.elapsed();
    std::mem::forget(store); // its thread may be stuck: a drop would wait for it
    assert!(
        recovered,
        "A21c-5: {waited:?} after the database answered new connections again, the store still \
         answers nothing: its only pool thread is stuck in a connect that was accepted and \
         never answered (connect_timeout is 10 s)"
    );
}

/// FINDING A21c-5, the election's side — the same unbounded connect runs on the election thread
/// itself for a standby (`LeaseDb::client` in `try_acquire`, and `warm_probe`, neither on a
/// thread with a deadline as the leader's renewal is). A standby whose reconnect lands on an
/// endpoint that accepts and never answers stops electing for good — even after the database
/// answers again — and never takes over when the leader dies: the pair silently loses its
/// failover, and `/v1/status` still says `standby`.
///
/// Reproduction: a standby behind a proxy while another node holds a live lease; its connections
/// are cut while new ones are held silent; once it is reconnecting into that, new connections
/// are answered again and the lease is made to run out. Expected: it takes over (fence 8) within
/// 15 s (connect_timeout 10 s + a lease). Observed: it never does.
#[test]
fn a21c_5_a_standby_whose_reconnect_hung_still_takes_over() {
    use std::sync::atomic::Ordering;
    let pg = postgres();
    hold_lease(&pg, 7, "clock_timestamp() + interval '1 hour'");
    let proxy = SwitchProxy::start(pg.port());
    let via = pg.url().replace(&format!(":{}/", pg.port()), &format!(":{}/", proxy.port));
    // A runtime of its own, shut down with a bound: its blocking pool may hold a store read
    // stuck in the same connect, which a plain drop would wait for.
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let node = rt.block_on(HaNode::start(standby_config("b", &via))).unwrap();
    let standing_by = wait_until(
        Duration::from_secs(5),
        || matches!(node.role(), Role::Standby { leader: Some(ref l) } if l.epoch == 7),
    );
    assert!(standing_by, "(precondition) {:?}", node.role());
    proxy.swallow.store(true, Ordering::SeqCst);
    proxy.sever();
    // Both reconnect into it: the standby's store poll, and the election thread (its probe's
    // connection first, `warm_probe`, before each attempt).
    let reconnecting =
        wait_until(Duration::from_secs(5), || proxy.held.load(Ordering::SeqCst) >= 2);
    assert!(reconnecting, "(precondition) nothing reconnected into the silent endpoint");
    // The database answers again; the leader dies (its lease runs out).
    proxy.swallow.store(false, Ordering::SeqCst);
    pg.psql("UPDATE plasma_lease SET expires_at = clock_timestamp() - interval '1 ms'").unwrap();
    let started = Instant::now();
    let taken = wait_until(Duration::from_secs(15), || fence_epoch(&pg) == "8");
    let waited = started.elapsed();
    let role = node.role();
    std::mem::forget(node); // its threads may be stuck in the connect
    rt.shutdown_timeout(Duration::from_secs(1));
    assert!(
        taken,
        "A21c-5: {waited:?} after the lease ran out (and the database answered again) the standby \
         had not taken over; its election thread is stuck in a connect that was accepted and \
         never answered. Its role: {role:?}"
    );
}

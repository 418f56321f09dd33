//! Audit of issue #21 (a highly available operator on PostgreSQL): reproductions of findings.
//! Each test states the finding, its severity and the suggested fix; each FAILS on the code as
//! audited (it asserts the behaviour the safety/availability bar asks for).
//!
//! Real PostgreSQL (`plasma-test-postgres`), real anvil with the real contracts, in-process
//! `HaNode`s, as `operator/tests/ha.rs` sets them up.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use plasma_operator::{Batch, HaNode, PgOptions, Role, Store, StoreError};
use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

#[path = "common/ha.rs"]
mod ha_env;
use ha_env::{LEASE_MS, config_at as config, env};

/// FINDING A21-1 — severity MED (availability; HIGH under load with the default lease): the
/// leader deposes ITSELF whenever one of its own write transactions lasts longer than about a
/// lease, and the chain can livelock.
///
/// `operator/src/store/postgres.rs:43` (`FENCE`, `... FOR SHARE`) makes every write hold a share
/// lock on the lease row until it commits; `operator/src/leader.rs:269-279` (`renew`) is an
/// `UPDATE` of that same row, so it waits for the leader's own in-flight writes. The renewal
/// runs with `statement_timeout = lease` (leader.rs:211-216), times out, the monotonic deadline
/// (`sent + 0.9 lease`, leader.rs:~400) passes and the process is Deposed and exits. The write
/// itself dies with the process (rolled back), so the next leader loads the same mempool,
/// produces the same block, holds the same lock as long — and deposes itself too: a block whose
/// write (`apply_with_block` holds the fence across the block's *encoding*, postgres.rs:~711-735)
/// takes > 0.9 lease on the operator's database halts the chain for good. A full 2^16-payment
/// block is ~330k row changes plus the encoding: seconds on a modest PostgreSQL, vs a 5 s lease.
///
/// Reproduction: the leader's epoch is used by a second store handle (the same SQL the leader's
/// own store runs) for one write that holds its transaction open for 2.5 leases (a slow
/// encoding); the leader must still be leading afterwards. Today it is Deposed.
///
/// Fix: do not let the liveness lease and the safety fence contend for one row lock. Keep the
/// epoch (fence, `FOR SHARE`) in one row/table and the expiry (renewal) in another, e.g.
/// `plasma_leader_epoch(id, epoch)` + `plasma_leader_lease(id, holder, url, expires_at)`; a
/// renewal updates only the lease row, a takeover updates both in one transaction (it still
/// waits for the in-flight writes on the epoch row, which is what fencing needs). Alternatively
/// fence with `FOR KEY SHARE` and make `epoch` part of a key the takeover updates; and bound
/// `apply_with_block` so the fence is taken after the encoding, not before.
///
/// FIXED (session 3): migration 0002 moves the expiry to `plasma_lease`; a renewal updates only
/// that row and reads the fence row without locking it (`operator/src/leader.rs`, module doc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a21_1_a_write_longer_than_the_lease_must_not_depose_the_leader() {
    let env = env().await;
    let node = HaNode::start(config(&env, "a", env.pg.url())).await.unwrap();
    let epoch =
        tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");

    // A write in the leader's epoch whose transaction stays open 2.5 leases (the fence's share
    // lock held), e.g. a large block being encoded/written.
    let url = env.pg.url().to_owned();
    let write = tokio::task::spawn_blocking(move || {
        let store = Store::open_postgres(&url, &PgOptions::pool(1)).unwrap();
        store.set_fence(epoch);
        let slow = Duration::from_millis(LEASE_MS * 5 / 2);
        let r = store.apply_with_block(&Batch::default(), move || {
            std::thread::sleep(slow);
            Err(StoreError::Postgres("(audit) a slow encoding, then given up".into()))
        });
        drop(store);
        r.map(|_| ())
    });
    let deadline = Instant::now() + Duration::from_millis(LEASE_MS * 4);
    let mut deposed = None;
    while Instant::now() < deadline {
        if let Role::Deposed { reason, .. } = node.role() {
            deposed = Some(reason);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = write.await;
    let role = node.role();
    node.crash().await;
    assert!(
        deposed.is_none(),
        "A21-1: the leader deposed itself because its own write held the lease row's share \
         lock longer than a lease: {deposed:?} (role now {role:?})"
    );
}

#[path = "common/proxy.rs"]
#[allow(dead_code)] // each audit file uses part of it
mod proxy;
use proxy::Proxy;

/// FINDING A21-2 — severity HIGH (a deposed leader still acting / a renewal that keeps leading
/// after losing the database): when the leader's path to PostgreSQL goes silent (partition,
/// a hung proxy, the database's VM frozen — packets swallowed rather than refused), the lease
/// renewal blocks forever and the process never notices it lost the lease.
///
/// `operator/src/leader.rs:196-216` (`LeaseDb`): only `connect_timeout` and a *server-side*
/// `statement_timeout` are set; no TCP keepalive, no client-side deadline. The sync
/// `postgres::Client::query_opt` in `renew` (leader.rs:~269) then waits for an answer that never
/// comes, so the election loop never reaches its own deadline check (leader.rs:~428, it is only
/// checked after `renew` *returns* an error). The role stays `Leader`: `/v1/status` keeps saying
/// `leader` with the old epoch, the API keeps taking submissions (they then hang on the store,
/// whose connections have only 30 s keepalive idle and no statement deadline either), the L1
/// submitter keeps running and bumping fees for roots, and the binary never exits for its
/// supervisor to restart it — while a standby on the healthy side took over after one lease.
/// Fencing still keeps the store consistent, but the issue's bar ("a deposed leader stops
/// within one renewal period", OP-HA-5) is broken, and wallets/monitors are lied to.
///
/// Reproduction: the leader's connections go through a proxy that becomes a black hole; within
/// 4 leases it must be Deposed. Today it stays `Leader` indefinitely.
///
/// Fix: run each renewal against a deadline of its own: do the query on a helper thread (or a
/// tokio-postgres client under `tokio::time::timeout`) and treat "no answer by `deadline`" as
/// lost — stop leading at the deadline regardless of the I/O; also set `keepalives_idle`/
/// `tcp_user_timeout` (libpq `tcp_user_timeout`, tokio-postgres `Config::tcp_user_timeout`) on
/// both the lease and the store connections, and give store writes a client-side timeout.
///
/// FINDING A21-3 — severity HIGH (availability; found by this reproduction, seen with gdb):
/// store calls made synchronously on tokio worker threads, under the chain's mutex.
/// `operator/src/l1.rs:677` (`deposit_step`) → `Chain::set_deposit_cursor`
/// (`operator/src/chain.rs:759`) → `Store::apply` blocks a tokio worker on a PostgreSQL round
/// trip while holding the chain `State` mutex; `exits.rs:117` (`Chain::exit_cursor`) then blocks
/// the second worker on that mutex. With the database silent, every worker is blocked: no timer
/// fires, `/health`, `/v1/status` and the HA supervisor (`leader.rs` `supervise`, which is what
/// stops a Deposed leader's tasks) cannot run. On redb that call was a local fsync; on
/// PostgreSQL it is a network call of unbounded length. Fix: every `Chain` method that writes
/// the store from async code must go through `spawn_blocking` (or the chain's writer thread),
/// never hold the `State` mutex across a store round trip, and store calls need a client-side
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a21_2_a_leader_cut_off_from_the_database_must_stop_leading_within_a_few_leases() {
    let env = env().await;
    let pg_port: u16 =
        env.pg.url().rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(pg_port);
    let via_proxy = env.pg.url().replace(&format!(":{pg_port}/"), &format!(":{}/", proxy.port));
    let node = HaNode::start(config(&env, "a", &via_proxy)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");

    proxy.blackhole.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    // By the database's clock the lease runs out after one lease; a standby would take over.
    let deadline = cut + Duration::from_millis(LEASE_MS * 4);
    let mut role = node.role();
    while Instant::now() < deadline {
        role = node.role();
        if matches!(role, Role::Deposed { .. }) {
            break;
        }
        // A std sleep on purpose: the runtime's workers are themselves stuck (A21-3), so a tokio
        // timer would never fire and the test would hang instead of failing.
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_leader_after = cut.elapsed();
    // Unblock what can be unblocked; the node is not stopped (its election thread may be stuck
    // in a read that never returns: that is the finding), the test process ends instead.
    proxy.sever();
    std::mem::forget(node);
    assert!(
        matches!(role, Role::Deposed { .. }),
        "A21-2: {still_leader_after:?} after its database went silent (the lease, by the \
         database's clock, ran out after {LEASE_MS} ms) the old leader still believes it leads: \
         {role:?}"
    );
}

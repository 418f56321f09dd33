-- The lease's expiry apart from the fenced epoch (issue #21, audit A21-1).
--
-- Until 0001 one row, plasma_leader, carried both: every write transaction of the store holds
-- `SELECT epoch FROM plasma_leader WHERE id = 1 FOR SHARE` to its end (the fence), and a renewal
-- was an UPDATE of that same row, so it queued behind every write in flight: a write longer than
-- the lease deposed the leader that made it, and the next leader, reloading the same work, could
-- do the same for ever.
--
-- Now:
-- * plasma_leader keeps its columns and stays the FENCE: its `epoch` is the one every write
--   checks, and only a takeover changes it (`epoch + 1`, which waits for the writes in flight).
--   Its holder/url say who took it over last; its expires_at is set to 'infinity' by every
--   takeover of a new binary (never renewed), so an operator of the previous release still
--   running during an upgrade, which elects on this row alone, never finds it expired.
-- * plasma_lease is the LEASE: who holds it, where wallets reach them, until when (by the
--   database's clock). Renewals and every read of the expiry touch only this row, so they never
--   wait for a write. A takeover updates both rows in one transaction (operator/src/leader.rs).
--
-- An existing database keeps its leader: the row is copied, epoch and expiry included, so the
-- process leading when the migration runs is still the holder (a binary of 0001 renews only
-- plasma_leader: its lease here runs out and a new binary takes over once, fenced as any
-- takeover — see docs/operations.md, "Upgrading a pair").
CREATE TABLE plasma_lease (
    id         integer PRIMARY KEY CHECK (id = 1),
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    url        text NOT NULL,
    expires_at timestamptz NOT NULL
);

INSERT INTO plasma_lease (id, epoch, holder, url, expires_at)
SELECT id, epoch, holder, url, expires_at FROM plasma_leader WHERE id = 1;

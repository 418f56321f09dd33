-- The lease row exists from the start (issue #21: the first-election race).
--
-- A takeover begins by locking the lease row (`SELECT … FROM plasma_lease WHERE id = 1 FOR
-- UPDATE`), and two takeovers queue on that lock: the second re-reads the row after the first
-- commits and finds it held. On a new database there was no row to lock, so two processes started
-- together both went on. If the first committed between the second's lease read and its fence
-- read, the second moved the fence again and deposed a leader that had just won: safe (the fence
-- refused the first's writes) but a needless handover, seen under load in
-- `ha::two_operators_started_together_elect_exactly_one`.
--
-- This row is a lease that has already run out and that nobody holds: epoch 0 (no takeover ever
-- gives epoch 0: the first one gives max(fence, lease) + 1 = 1), an empty holder, and an expiry
-- of 'epoch' (1970-01-01: a finite time, which every reader of the row formats). An existing
-- database keeps its row (0002 copied the leader's).
INSERT INTO plasma_lease (id, epoch, holder, url, expires_at)
VALUES (1, 0, '', '', 'epoch')
ON CONFLICT (id) DO NOTHING;

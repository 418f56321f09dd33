-- The operator's state in PostgreSQL (issue #21): the same rows as the redb store
-- (operator/src/store/redb.rs), so both backends answer every read alike.
--
-- Applied by the operator at open, in one transaction, under an advisory lock, and recorded in
-- plasma_schema (see operator/src/store/postgres.rs). Never edit a migration that has shipped:
-- add the next file.
--
-- Keys: block numbers, sequence numbers and meta values are u64 in Rust, stored as bigint
-- bit for bit (`as i64`); UTXO positions are u128 (blknum * 1e9 + ...), stored as 16 bytes
-- big-endian, which sort like the integers. Blocks are stored in the rows of OP-9 (wire form,
-- proof tiles, tree top, transaction groups), in the sizes redb uses, so a `wire_chunk` answers
-- the same bytes on both.

-- The leader lease (part B fills it: one row, id = 1). Every write transaction of the store
-- first reads `epoch` FOR SHARE and refuses to go on unless it is its own: the fence.
CREATE TABLE plasma_leader (
    id         integer PRIMARY KEY CHECK (id = 1),
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    url        text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE utxos (
    pos    bytea PRIMARY KEY CHECK (length(pos) = 16),
    owner  bytea NOT NULL CHECK (length(owner) = 20),
    -- Output::to_packed: owner || token || amount.
    output bytea NOT NULL CHECK (length(output) = 72)
);
-- A standby's `GET /v1/utxos?owner=` (Store::utxos_page) without an in-memory UTXO set.
CREATE INDEX utxos_owner_pos ON utxos (owner, pos);

-- BlockInfo::to_bytes (root, tx count, wire length, commitment).
CREATE TABLE block_info (
    blknum bigint PRIMARY KEY,
    info   bytea NOT NULL
);
CREATE TABLE block_wire (
    blknum bigint NOT NULL,
    row_no integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (blknum, row_no)
);
CREATE TABLE block_tiles (
    blknum bigint NOT NULL,
    row_no integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (blknum, row_no)
);
CREATE TABLE block_tree_top (
    blknum bigint PRIMARY KEY,
    data   bytea NOT NULL
);
CREATE TABLE block_txs (
    blknum bigint NOT NULL,
    row_no integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (blknum, row_no)
);
CREATE TABLE block_tx_offsets (
    blknum bigint PRIMARY KEY,
    data   bytea NOT NULL
);
-- Blocks are written once and never updated in place (only their info row is rewritten):
-- their bytes need no compression attempt by TOAST (they are zlib already).
ALTER TABLE block_wire ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE block_txs ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE block_tiles ALTER COLUMN data SET STORAGE EXTERNAL;

-- The transaction index: hash -> (block, index).
CREATE TABLE txs (
    hash   bytea PRIMARY KEY,
    blknum bigint NOT NULL,
    idx    integer NOT NULL
);

CREATE TABLE mempool (
    seq   bigint PRIMARY KEY,
    bytes bytea NOT NULL
);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bigint NOT NULL
);

-- The exiting outputs (LEDGER-9) as JSON, under one key.
CREATE TABLE exiting (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE da_headers (
    blknum bigint PRIMARY KEY,
    data   bytea NOT NULL
);
CREATE TABLE da_receipts (
    blknum bigint NOT NULL,
    idx    integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (blknum, idx)
);
CREATE TABLE da_pending (
    blknum bigint PRIMARY KEY
);

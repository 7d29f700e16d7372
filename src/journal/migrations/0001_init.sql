-- Journal schema, version 1. Applied once, in one transaction, then PRAGMA user_version = 1.

-- The append-only record. `id` is contiguous from 1 across runs; `seq` is contiguous from 1 within
-- a run. `hash` chains every row to the one before it (see journal/chain.rs for the exact rule).
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    run_id    TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    at        TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    UNIQUE (run_id, seq)
);

-- Rows are never changed or removed by cutover; these make an accident fail loudly. (Someone with
-- the file can drop them: the hash chain is what proves nothing was changed.)
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;

-- The last row and its hash, updated in the same transaction as every append, so a truncated
-- tail is detectable.
CREATE TABLE chain_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL,
    hash    TEXT    NOT NULL
);
INSERT INTO chain_head (id, last_id, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- An index of runs, derivable from the events (for `cutover runs`).
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    runbook        TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    runbook_sha256 TEXT    NOT NULL,
    operator       TEXT    NOT NULL,
    host           TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    first_event_id INTEGER NOT NULL REFERENCES events (id),
    last_event_id  INTEGER NOT NULL REFERENCES events (id),
    finished_at    TEXT,
    outcome        TEXT
);

-- One driver at a time: at most one row, the process currently driving runs in this journal.
CREATE TABLE lease (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    holder       TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    acquired_at  TEXT    NOT NULL,
    heartbeat_at TEXT    NOT NULL
);

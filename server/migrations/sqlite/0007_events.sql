-- The event log: one row per change, written in the same transaction as
-- the change. `body` is the event's canonical encoding (the protobuf
-- encoding of sessiond.v1.Event without its hashes); the other columns are
-- copies of some of its fields, to find events by. `hash` is SHA-256 over
-- `prev_hash` and `body`, chaining every event to the one before it.
CREATE TABLE events (
    revision INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    session_id INTEGER,
    user_id TEXT,
    subject TEXT NOT NULL,
    body BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);

-- No secondary index: SQLite's one writer writes every page a batch
-- dirties, and an index by session or user scatters each batch's events
-- over many pages (push+pop at 64 in flight ran at a third of its rate
-- with the two indexes, measured with bench/examples/store_alone.rs). A
-- filter by session, user or subject reads the log in revision order.

-- The head of the log (its last revision and hash) and the compaction
-- checkpoint (the last revision compacted away and its hash). One row. A
-- writer updates the head in the transaction that appends events; on
-- PostgreSQL it locks this row to do so, which orders every replica's
-- commits by revision.
CREATE TABLE event_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    hash BLOB NOT NULL,
    compact_revision INTEGER NOT NULL,
    compact_hash BLOB NOT NULL
);

INSERT INTO event_head (id, revision, hash, compact_revision, compact_hash)
VALUES (1, 0, zeroblob(32), 0, zeroblob(32));

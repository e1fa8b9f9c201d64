-- The event log: one row per change, written in the same transaction as
-- the change. `body` is the event's canonical encoding (the protobuf
-- encoding of sessiond.v1.Event without its hashes); the other columns are
-- copies of some of its fields, to find events by. `hash` is SHA-256 over
-- `prev_hash` and `body`, chaining every event to the one before it.
CREATE TABLE events (
    revision BIGINT PRIMARY KEY,
    time BIGINT NOT NULL,
    kind INTEGER NOT NULL,
    session_id BIGINT,
    user_id TEXT,
    subject TEXT NOT NULL,
    body BYTEA NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);

CREATE INDEX events_by_session ON events (session_id, revision)
    WHERE session_id IS NOT NULL;
CREATE INDEX events_by_user ON events (user_id, revision)
    WHERE user_id IS NOT NULL;

-- The head of the log (its last revision and hash) and the compaction
-- checkpoint (the last revision compacted away and its hash). One row.
-- Every transaction that appends events locks this row (SELECT … FOR
-- UPDATE) just before its commit and holds it through the commit: so the
-- replicas commit events one transaction at a time, in revision order, and
-- an event never becomes visible after one with a higher revision.
CREATE TABLE event_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    compact_revision BIGINT NOT NULL,
    compact_hash BYTEA NOT NULL
);

INSERT INTO event_head (id, revision, hash, compact_revision, compact_hash)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0, decode(repeat('00', 32), 'hex'));

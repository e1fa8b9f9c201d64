-- Cheaper writes, same data.
--
-- 1. CHECK constraints become OR chains instead of IN lists: for an IN
--    list of three or more values SQLite builds a temporary B-tree every
--    time a statement checks the constraint, which was most of the cost of
--    opening and ending a session. SQLite cannot alter a CHECK constraint,
--    so `sessions` and `module_runs` are rebuilt (copied to a new table that
--    takes the old one's name; their AUTOINCREMENT counters carry over).
-- 2. Listing by user gets an index on columns that never change, so
--    ending a session no longer rewrites it; the per-user limit counts
--    through a partial index that holds only sessions that have not ended.
--
-- The migration runs with foreign keys off (see `migrate`), as SQLite's
-- procedure for rebuilding a table requires.

CREATE TABLE sessions_new (
    session_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_uuid       TEXT    NOT NULL UNIQUE,
    user_id            TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind = 'interactive' OR kind = 'clientless'),
    state              TEXT    NOT NULL
                           CHECK (state = 'open' OR state = 'closing' OR state = 'ended'),
    start_time         INTEGER NOT NULL,
    end_time           INTEGER,
    last_activity_time INTEGER NOT NULL,
    end_reason         TEXT CHECK (end_reason = 'closed_by_client' OR end_reason = 'idle_timeout'
                           OR end_reason = 'max_lifetime' OR end_reason = 'server_shutdown'
                           OR end_reason = 'server_restart' OR end_reason = 'node_lost'),
    effective_user     TEXT    NOT NULL,
    client             TEXT    NOT NULL DEFAULT '',
    -- The server node that owns the session (runs its modules).
    owner_node         TEXT    NOT NULL,
    CHECK ((state = 'ended') = (end_time IS NOT NULL AND end_reason IS NOT NULL))
);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'sessions_new', seq FROM sqlite_sequence WHERE name = 'sessions';
INSERT INTO sessions_new (session_id, session_uuid, user_id, kind, state, start_time, end_time,
                          last_activity_time, end_reason, effective_user, client, owner_node)
    SELECT session_id, session_uuid, user_id, kind, state, start_time, end_time,
           last_activity_time, end_reason, effective_user, client, owner_node
    FROM sessions;

CREATE TABLE module_runs_new (
    run_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      INTEGER NOT NULL REFERENCES sessions (session_id),
    module_id       TEXT    NOT NULL,
    acting_user     TEXT    NOT NULL,
    parameters      TEXT    NOT NULL,
    state           TEXT    NOT NULL
                        CHECK (state = 'running' OR state = 'succeeded' OR state = 'failed'
                               OR state = 'cancelled'),
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    value           TEXT,
    failure_kind    TEXT,
    failure_message TEXT,
    exit_code       INTEGER,
    signal          INTEGER,
    stderr_tail     TEXT,
    CHECK ((state = 'running') = (end_time IS NULL)),
    CHECK ((state = 'succeeded') = (value IS NOT NULL)),
    CHECK ((state = 'failed' OR state = 'cancelled') = (failure_kind IS NOT NULL))
);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'module_runs_new', seq FROM sqlite_sequence WHERE name = 'module_runs';
INSERT INTO module_runs_new (run_id, session_id, module_id, acting_user, parameters, state,
                             start_time, end_time, value, failure_kind, failure_message,
                             exit_code, signal, stderr_tail)
    SELECT run_id, session_id, module_id, acting_user, parameters, state,
           start_time, end_time, value, failure_kind, failure_message,
           exit_code, signal, stderr_tail
    FROM module_runs;

DROP TABLE module_runs;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
ALTER TABLE module_runs_new RENAME TO module_runs;

-- Listing by user, in id order.
CREATE INDEX sessions_by_user ON sessions (user_id, session_id);
-- The per-user limit: a user's sessions that have not ended.
CREATE INDEX sessions_unended_by_user ON sessions (user_id) WHERE state <> 'ended';
-- Start-up recovery: a node's clientless sessions that have not ended.
CREATE INDEX sessions_unended_by_owner ON sessions (owner_node, kind) WHERE state <> 'ended';

-- GetReturnValue: the latest run of a module in a session.
CREATE INDEX module_runs_latest ON module_runs (session_id, module_id, run_id);
-- Idle checks and recovery: the runs still running.
CREATE INDEX module_runs_running ON module_runs (session_id) WHERE state = 'running';

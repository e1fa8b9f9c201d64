-- Sessions (the seed's "DT 443") and their user-context scopes.
-- Times are microseconds since the Unix epoch.

CREATE TABLE sessions (
    session_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_uuid       TEXT    NOT NULL UNIQUE,
    user_id            TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('interactive', 'clientless')),
    state              TEXT    NOT NULL CHECK (state IN ('open', 'closing', 'ended')),
    start_time         INTEGER NOT NULL,
    end_time           INTEGER,
    last_activity_time INTEGER NOT NULL,
    end_reason         TEXT CHECK (end_reason IN ('closed_by_client', 'idle_timeout',
                           'max_lifetime', 'server_shutdown', 'server_restart',
                           'node_lost')),
    effective_user     TEXT    NOT NULL,
    client             TEXT    NOT NULL DEFAULT '',
    -- The server node that owns the session (runs its modules).
    owner_node         TEXT    NOT NULL,
    CHECK ((state = 'ended') = (end_time IS NOT NULL AND end_reason IS NOT NULL))
);

-- Open-session counts per user (the per-user limit) and listing by user.
CREATE INDEX sessions_by_user_state ON sessions (user_id, state);
-- Start-up recovery: a node's clientless sessions that have not ended.
CREATE INDEX sessions_unended_by_owner ON sessions (owner_node, kind) WHERE state <> 'ended';

-- The user-context stack of each session: one row per pushed, not yet
-- popped scope; `depth` 1 is the outermost.
CREATE TABLE user_context_scopes (
    scope_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    INTEGER NOT NULL REFERENCES sessions (session_id),
    depth         INTEGER NOT NULL CHECK (depth > 0),
    user_id       TEXT    NOT NULL,
    -- The user context before the push: what the pop restores.
    previous_user TEXT    NOT NULL,
    pushed_at     INTEGER NOT NULL,
    UNIQUE (session_id, depth)
);

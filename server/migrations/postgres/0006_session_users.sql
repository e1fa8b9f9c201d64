-- The per-user session limit without advisory locks: one row per user
-- whose sessions were created under a limit. A store with several writers
-- locks the user's row (INSERT … ON CONFLICT … DO UPDATE creates and locks
-- it in one statement) before it counts the user's sessions that have not
-- ended, so that two replicas never both admit the last one. A plain row
-- lock works on PostgreSQL-compatible distributed engines, where advisory
-- locks do not. (SQLite's single writer serializes every write and needs no
-- lock; the table is there too, so that both schemas mean the same.)

CREATE TABLE session_users (
    user_id TEXT PRIMARY KEY
);

-- No triggers either: the store now writes `user_context_depth` itself with
-- every push and pop, in the same transaction, under the session's row
-- lock, as the SQLite store does. Both statements run in this migration's
-- transaction, so no push or pop is counted twice or not at all.
DROP TRIGGER user_context_scopes_count ON user_context_scopes;
DROP FUNCTION sessiond_count_scopes();

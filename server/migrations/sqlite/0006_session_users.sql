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

-- Listing by user gets an index on columns that never change, so ending a
-- session no longer rewrites it; the per-user limit counts through a
-- partial index that holds only sessions that have not ended. (The SQLite
-- migration of the same number also rewrites CHECK constraints, which
-- costs PostgreSQL nothing as they are.)

DROP INDEX sessions_by_user_state;
-- Listing by user, in id order.
CREATE INDEX sessions_by_user ON sessions (user_id, session_id);
-- The per-user limit: a user's sessions that have not ended.
CREATE INDEX sessions_unended_by_user ON sessions (user_id) WHERE state <> 'ended';

-- Each session's user-context depth (its number of scopes) kept in its own
-- row, as PostgreSQL's migration of the same number does: reading a session
-- needs no count of its scopes. The store writes it with every push and pop
-- (the domain computes it), on both backends alike.

ALTER TABLE sessions ADD COLUMN user_context_depth INTEGER NOT NULL DEFAULT 0
    CHECK (user_context_depth >= 0);

UPDATE sessions SET user_context_depth =
    (SELECT COUNT(*) FROM user_context_scopes c WHERE c.session_id = sessions.session_id)
WHERE session_id IN (SELECT session_id FROM user_context_scopes);

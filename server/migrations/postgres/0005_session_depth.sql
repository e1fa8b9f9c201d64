-- Each session's user-context depth (its number of scopes) kept in its own
-- row, so that reading a session needs no count of its scopes, and so that
-- a statement that waited for a row lock sees the depth of the row version
-- it locked (a subquery sees only the statement's older snapshot).
--
-- A trigger keeps the column equal to the count: every push inserts a scope
-- and every pop deletes one, whichever replica and whichever version of
-- sessiond does it. The scopes are locked first, so no scope changes
-- between the backfill and the trigger.

LOCK TABLE user_context_scopes IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE sessions ADD COLUMN user_context_depth INTEGER NOT NULL DEFAULT 0
    CHECK (user_context_depth >= 0);

UPDATE sessions s SET user_context_depth = c.scopes
FROM (SELECT session_id, COUNT(*) AS scopes FROM user_context_scopes GROUP BY session_id) c
WHERE c.session_id = s.session_id;

CREATE FUNCTION sessiond_count_scopes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE sessions SET user_context_depth = user_context_depth + 1
        WHERE session_id = NEW.session_id;
        RETURN NEW;
    END IF;
    UPDATE sessions SET user_context_depth = user_context_depth - 1
    WHERE session_id = OLD.session_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER user_context_scopes_count AFTER INSERT OR DELETE ON user_context_scopes
    FOR EACH ROW EXECUTE FUNCTION sessiond_count_scopes();

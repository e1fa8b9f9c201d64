-- Module runs: one row per OpenModule, with its outcome once concluded.
-- Times are microseconds since the Unix epoch. Parameters and values are
-- JSON kept as TEXT, exactly as serde_json wrote them: JSONB would reorder
-- keys, normalise numbers and refuse "\u0000" inside strings.

CREATE TABLE module_runs (
    run_id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id      BIGINT  NOT NULL REFERENCES sessions (session_id),
    module_id       TEXT    NOT NULL,
    acting_user     TEXT    NOT NULL,
    parameters      TEXT    NOT NULL,
    state           TEXT    NOT NULL
                        CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    start_time      BIGINT  NOT NULL,
    end_time        BIGINT,
    value           TEXT,
    failure_kind    TEXT,
    failure_message TEXT,
    exit_code       INTEGER,
    signal          INTEGER,
    stderr_tail     TEXT,
    CHECK ((state = 'running') = (end_time IS NULL)),
    CHECK ((state = 'succeeded') = (value IS NOT NULL)),
    CHECK ((state IN ('failed', 'cancelled')) = (failure_kind IS NOT NULL))
);

-- GetReturnValue: the latest run of a module in a session.
CREATE INDEX module_runs_latest ON module_runs (session_id, module_id, run_id);
-- Idle checks and recovery: the runs still running.
CREATE INDEX module_runs_running ON module_runs (session_id) WHERE state = 'running';

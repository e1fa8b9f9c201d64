-- The process group of each exec-module run whose processes may still be
-- alive: `BOOT_ID PGID START_TICKS` (model::RunProcess), set once the run's
-- process started, cleared when its run concluded and its group was
-- killed. A server that restarts after a crash kills the groups its node's
-- runs left (checking the boot and the leader's start time, so that a
-- reused pid is never signalled) before it records those runs as
-- interrupted, and then clears them. A take-over by another replica leaves
-- them: only the node's own host can kill its processes.

ALTER TABLE module_runs ADD COLUMN process TEXT;

CREATE INDEX module_runs_with_process ON module_runs (session_id) WHERE process IS NOT NULL;

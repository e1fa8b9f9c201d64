//! The verdict, once every node has stopped: the database read directly
//! (SQLite or PostgreSQL, the same queries), every acknowledged write
//! looked for in it, and the invariants that hold whatever was
//! acknowledged.
//!
//! What "an acknowledged write is there" means, call by call:
//! - open / start: the session exists with the id, UUID, user and kind the
//!   answer gave; ids and UUIDs are never given twice;
//! - close / `EndSession`: the session ended with the reason and end time
//!   the answer gave, unchanged since;
//! - a clientless session without an acknowledged close ended anyway (the
//!   shutdown at the end, a crash's recovery, a takeover), for a reason
//!   that says so — or closed by its client when its close was the write
//!   left without an answer; an interactive one is still open, unless its
//!   `EndSession` was left without an answer;
//! - push / pop / set: the session's scopes (depth, user, the user each
//!   restores) and its user context are what the acknowledged calls made
//!   them — with or without the one write left without an answer, never
//!   half of it; scopes stay with an ended session;
//! - `OpenModule`: the run exists in that session for that module and has
//!   concluded; an outcome `GetReturnValue` read is the outcome stored; a
//!   session has no run it was not told of, but for one left without an
//!   answer;
//! - touch: the last activity is no earlier than the touch answered.

use std::collections::{BTreeMap, HashSet};

use super::calls::normalized;
use super::ledger::{Kind, Pending, Record, Scope};

/// A session row.
#[derive(Debug)]
pub struct SessionRow {
    pub uuid: String,
    pub user: String,
    pub kind: String,
    pub state: String,
    pub start: i64,
    pub end: Option<i64>,
    pub last_activity: i64,
    pub reason: Option<String>,
    pub effective_user: String,
    pub depth: i64,
}

/// A run row.
#[derive(Debug)]
pub struct RunRow {
    pub session_id: i64,
    pub module_id: String,
    pub state: String,
    pub value: Option<String>,
}

/// The database's sessions, scopes (by session, by depth) and runs.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sessions: BTreeMap<i64, SessionRow>,
    /// `(depth, scope)` by session.
    pub scopes: BTreeMap<i64, Vec<(i64, Scope)>>,
    pub runs: BTreeMap<i64, RunRow>,
}

type SessionTuple = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    String,
    i64,
);

const SESSIONS: &str = "SELECT session_id, CAST(session_uuid AS TEXT), user_id, kind, state, \
     start_time, end_time, last_activity_time, end_reason, effective_user, \
     CAST(user_context_depth AS BIGINT) FROM sessions";
const SCOPES: &str = "SELECT scope_id, session_id, CAST(depth AS BIGINT), user_id, previous_user \
     FROM user_context_scopes ORDER BY session_id, depth";
const RUNS: &str = "SELECT run_id, session_id, module_id, state, value FROM module_runs";

/// Reads the database at `url` (`sqlite://…` or `postgres://…`).
pub async fn snapshot(url: &str) -> Snapshot {
    macro_rules! read {
        ($pool:expr) => {{
            let pool = $pool;
            let sessions: Vec<SessionTuple> =
                sqlx::query_as(SESSIONS).fetch_all(&pool).await.unwrap();
            let scopes: Vec<(i64, i64, i64, String, String)> =
                sqlx::query_as(SCOPES).fetch_all(&pool).await.unwrap();
            let runs: Vec<(i64, i64, String, String, Option<String>)> =
                sqlx::query_as(RUNS).fetch_all(&pool).await.unwrap();
            pool.close().await;
            (sessions, scopes, runs)
        }};
    }
    let (sessions, scopes, runs) = if url.starts_with("sqlite:") {
        read!(
            sqlx::SqlitePool::connect(&format!("{url}?mode=ro"))
                .await
                .unwrap()
        )
    } else {
        read!(sqlx::PgPool::connect(url).await.unwrap())
    };
    let mut snapshot = Snapshot::default();
    for s in sessions {
        let row = SessionRow {
            uuid: s.1,
            user: s.2,
            kind: s.3,
            state: s.4,
            start: s.5,
            end: s.6,
            last_activity: s.7,
            reason: s.8,
            effective_user: s.9,
            depth: s.10,
        };
        snapshot.sessions.insert(s.0, row);
    }
    for (scope_id, session_id, depth, user, previous_user) in scopes {
        let scope = Scope {
            scope_id,
            user,
            previous_user,
        };
        snapshot
            .scopes
            .entry(session_id)
            .or_default()
            .push((depth, scope));
    }
    for (run_id, session_id, module_id, state, value) in runs {
        let row = RunRow {
            session_id,
            module_id,
            state,
            value,
        };
        snapshot.runs.insert(run_id, row);
    }
    snapshot
}

/// End reasons of a clientless session nobody closed.
const UNASKED_ENDS: [&str; 3] = ["server_restart", "node_lost", "server_shutdown"];

/// What contradicts the ledgers or an invariant, in words.
pub fn violations(records: &[&Record], db: &Snapshot) -> Vec<String> {
    let mut found = invariants(db);
    found.extend(unique(records));
    for record in records {
        let mut say = |what: String| found.push(format!("session {}: {what}", record.session_id));
        let Some(row) = db.sessions.get(&record.session_id) else {
            say("acknowledged, but not in the database (lost)".into());
            continue;
        };
        let kind = match record.kind {
            Kind::Clientless => "clientless",
            Kind::Interactive => "interactive",
        };
        if (&row.uuid, &row.user, row.kind.as_str()) != (&record.session_uuid, &record.user, kind) {
            say(format!("stored as {row:?}"));
        }
        if let Some(problem) = end_problem(record, row) {
            say(problem);
        }
        if let Some(problem) = context_problem(record, row, db) {
            say(problem);
        }
        for problem in run_problems(record, db) {
            say(problem);
        }
        if let Some(touched) = record.touched
            && row.last_activity < touched
        {
            say(format!(
                "last activity {} < touch {touched}",
                row.last_activity
            ));
        }
    }
    found
}

/// Whatever was acknowledged: every ended session has its reason and ends
/// no earlier than it started; no session is left open but interactive
/// ones; at most one scope per depth, depths 1..n, n recorded; no run
/// running.
fn invariants(db: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    for (id, s) in &db.sessions {
        match (s.state.as_str(), s.end, &s.reason) {
            ("ended", Some(end), Some(_)) if end >= s.start => {}
            ("open", None, None) if s.kind == "interactive" => {}
            _ => found.push(format!("session {id}: left as {s:?}")),
        }
        let depths: Vec<i64> = db
            .scopes
            .get(id)
            .map(|scopes| scopes.iter().map(|(depth, _)| *depth).collect())
            .unwrap_or_default();
        if depths != (1..=s.depth).collect::<Vec<_>>() {
            found.push(format!(
                "session {id}: depth {} with scopes at {depths:?}",
                s.depth
            ));
        }
    }
    for (id, run) in &db.runs {
        if run.state == "running" {
            found.push(format!("run {id}: still running after every node stopped"));
        }
    }
    found
}

/// No id or UUID was given twice.
fn unique(records: &[&Record]) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for r in records {
        let ids = [
            ("session", r.session_id.to_string()),
            ("uuid", r.session_uuid.clone()),
        ];
        let runs = r.runs.iter().map(|run| ("run", run.run_id.to_string()));
        let scopes = r.scopes.iter().map(|s| ("scope", s.scope_id.to_string()));
        for key in ids.into_iter().chain(runs).chain(scopes) {
            if !seen.insert(key.clone()) {
                found.push(format!("{} {} given twice", key.0, key.1));
            }
        }
    }
    found
}

fn end_problem(record: &Record, row: &SessionRow) -> Option<String> {
    let stored = (row.state.as_str(), row.reason.as_deref(), row.end);
    let pending_end = matches!(record.pending, Some(Pending::Close | Pending::End));
    let fine = match (&record.ended, record.kind) {
        (Some((reason, end)), _) => stored == ("ended", Some(reason.as_str()), Some(*end)),
        (None, Kind::Clientless) => match stored {
            ("ended", Some("closed_by_client"), Some(_)) => pending_end,
            ("ended", Some(reason), Some(_)) => UNASKED_ENDS.contains(&reason),
            _ => false,
        },
        (None, Kind::Interactive) => match stored {
            ("open", None, None) => true,
            ("ended", Some("closed_by_client"), Some(_)) => pending_end,
            _ => false,
        },
    };
    (!fine).then(|| {
        format!(
            "acknowledged end {:?} (pending {:?}), stored {stored:?}",
            record.ended, record.pending
        )
    })
}

/// The stored scopes and user context are the acknowledged ones, with or
/// without the pending write.
fn context_problem(record: &Record, row: &SessionRow, db: &Snapshot) -> Option<String> {
    let stored: Vec<&Scope> = db
        .scopes
        .get(&record.session_id)
        .map(|scopes| scopes.iter().map(|(_, scope)| scope).collect())
        .unwrap_or_default();
    let acknowledged: Vec<&Scope> = record.scopes.iter().collect();
    let as_acknowledged = stored == acknowledged && row.effective_user == record.effective_user;
    let with_pending = match &record.pending {
        Some(Pending::Push { user }) => {
            stored.len() == acknowledged.len() + 1
                && stored[..acknowledged.len()] == acknowledged[..]
                && stored.last().is_some_and(|top| {
                    (&top.user, &top.previous_user) == (user, &record.effective_user)
                })
                && &row.effective_user == user
        }
        Some(Pending::Pop { scope_id }) => acknowledged.last().is_some_and(|innermost| {
            innermost.scope_id == *scope_id
                && stored[..] == acknowledged[..acknowledged.len() - 1]
                && row.effective_user == innermost.previous_user
        }),
        Some(Pending::Set { user }) => stored == acknowledged && &row.effective_user == user,
        _ => false,
    };
    (!as_acknowledged && !with_pending).then(|| {
        format!(
            "user context {:?} with scopes {stored:?}; acknowledged {:?} with {acknowledged:?}, \
             pending {:?}",
            row.effective_user, record.effective_user, record.pending
        )
    })
}

fn run_problems(record: &Record, db: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    for run in &record.runs {
        let Some(row) = db.runs.get(&run.run_id) else {
            found.push(format!(
                "run {} acknowledged, not stored (lost)",
                run.run_id
            ));
            continue;
        };
        if (row.session_id, &row.module_id) != (record.session_id, &run.module_id) {
            found.push(format!("run {} stored as {row:?}", run.run_id));
        }
        if let Some((state, value)) = &run.concluded {
            let stored_value = row
                .value
                .as_deref()
                .map(|v| normalized(&serde_json::from_str(v).unwrap()));
            if (&row.state, stored_value.as_ref())
                != (state, value.as_ref().map(normalized).as_ref())
            {
                found.push(format!(
                    "run {} read as {state} {value:?}, stored {row:?}",
                    run.run_id
                ));
            }
        }
    }
    let acknowledged: HashSet<i64> = record.runs.iter().map(|run| run.run_id).collect();
    let unasked = db
        .runs
        .iter()
        .filter(|(id, row)| row.session_id == record.session_id && !acknowledged.contains(id))
        .count();
    let allowed = usize::from(matches!(record.pending, Some(Pending::OpenModule)));
    if unasked > allowed {
        found.push(format!("{unasked} runs stored that no client was told of"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(kind: &str, state: &str, reason: Option<&str>) -> SessionRow {
        SessionRow {
            uuid: "u1".into(),
            user: "R41".into(),
            kind: kind.into(),
            state: state.into(),
            start: 10,
            end: reason.map(|_| 20),
            last_activity: 10,
            reason: reason.map(str::to_owned),
            effective_user: "R41".into(),
            depth: 0,
        }
    }

    fn opened(kind: Kind) -> Record {
        Record::opened(1, "u1".into(), "R41", kind)
    }

    fn only(row: SessionRow) -> Snapshot {
        let mut db = Snapshot::default();
        db.sessions.insert(1, row);
        db
    }

    #[test]
    fn what_matches_the_ledger_passes() {
        let db = only(session("clientless", "ended", Some("server_restart")));
        assert_eq!(
            violations(&[&opened(Kind::Clientless)], &db),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_lost_open_a_lost_close_and_a_lost_push_are_found() {
        let record = opened(Kind::Interactive);
        assert_eq!(violations(&[&record], &Snapshot::default()).len(), 1);

        let mut closed = opened(Kind::Clientless);
        closed.ended = Some(("closed_by_client".into(), 20));
        let db = only(session("clientless", "ended", Some("server_restart")));
        assert_eq!(violations(&[&closed], &db).len(), 1);

        let mut pushed = opened(Kind::Interactive);
        pushed.scopes.push(Scope {
            scope_id: 7,
            user: "R42".into(),
            previous_user: "R41".into(),
        });
        pushed.effective_user = "R42".into();
        let db = only(session("interactive", "open", None));
        assert_eq!(violations(&[&pushed], &db).len(), 1);
        // Unless the pop that would explain it was left without an answer.
        pushed.pending = Some(Pending::Pop { scope_id: 7 });
        assert_eq!(violations(&[&pushed], &db), Vec::<String>::new());
    }

    #[test]
    fn an_open_clientless_session_and_a_running_run_break_the_invariants() {
        let mut db = only(session("clientless", "open", None));
        db.runs.insert(
            3,
            RunRow {
                session_id: 1,
                module_id: "slow".into(),
                state: "running".into(),
                value: None,
            },
        );
        assert_eq!(invariants(&db).len(), 2);
    }
}

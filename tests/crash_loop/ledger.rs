//! What the clients were told: every acknowledged write, per session, and
//! the one write per session whose answer never came.
//!
//! A worker owns its sessions: it sends one call at a time on each, so a
//! session's acknowledged writes are in the order they happened. When a
//! write gets no answer (the server died under it, or an error that does not
//! say the write was refused), the write may or may not have happened: it
//! is kept as the session's *pending* write and the worker never touches
//! that session again, so each session has at most one unknown, its last.

use std::collections::BTreeMap;

/// A session's kind, as the client opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `OpenClientlessSession`.
    Clientless,
    /// `StartSession`.
    Interactive,
}

/// One pushed scope, as `PushUserContext` acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub scope_id: i64,
    pub user: String,
    /// The user context the push replaced (what its pop restores).
    pub previous_user: String,
}

/// One acknowledged `OpenModule`.
#[derive(Clone, Debug)]
pub struct Run {
    pub run_id: i64,
    pub module_id: String,
    /// The concluded outcome a `GetReturnValue` acknowledged: the run's
    /// state name (`succeeded`, `failed`, `cancelled`) and its value as
    /// JSON, which must never change afterwards.
    pub concluded: Option<(String, Option<serde_json::Value>)>,
}

/// A write sent whose answer never came.
#[derive(Clone, Debug)]
pub enum Pending {
    Push { user: String },
    Pop { scope_id: i64 },
    Set { user: String },
    OpenModule,
    Close,
    End,
    Touch,
}

/// Everything the clients were told about one session.
#[derive(Clone, Debug)]
pub struct Record {
    pub session_id: i64,
    pub session_uuid: String,
    pub user: String,
    pub kind: Kind,
    /// The user context: the session's user, then as set, pushed, popped.
    pub effective_user: String,
    /// The scopes pushed and not popped, outermost first.
    pub scopes: Vec<Scope>,
    /// The end a close or `EndSession` acknowledged: reason name and
    /// end time in µs.
    pub ended: Option<(String, i64)>,
    pub runs: Vec<Run>,
    /// The latest `last_activity_time` a `TouchSession` acknowledged (µs).
    pub touched: Option<i64>,
    pub pending: Option<Pending>,
}

impl Record {
    /// A session whose open (or start) was acknowledged.
    pub fn opened(session_id: i64, session_uuid: String, user: &str, kind: Kind) -> Self {
        Self {
            session_id,
            session_uuid,
            user: user.to_owned(),
            kind,
            effective_user: user.to_owned(),
            scopes: Vec::new(),
            ended: None,
            runs: Vec::new(),
            touched: None,
            pending: None,
        }
    }
}

/// How many calls of each kind were acknowledged, refused or left without
/// an answer.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Acknowledged writes, by RPC.
    pub acknowledged: BTreeMap<&'static str, u64>,
    /// Reads whose answers were checked against the ledger.
    pub reads: u64,
    /// Calls refused with a reason that says nothing was written.
    pub refused: BTreeMap<String, u64>,
    /// Writes without an answer, by gRPC code.
    pub unknown: BTreeMap<String, u64>,
}

impl Tally {
    pub fn acknowledged_writes(&self) -> u64 {
        self.acknowledged.values().sum()
    }

    pub fn add(&mut self, other: &Self) {
        for (k, v) in &other.acknowledged {
            *self.acknowledged.entry(k).or_default() += v;
        }
        self.reads += other.reads;
        for (k, v) in &other.refused {
            *self.refused.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.unknown {
            *self.unknown.entry(k.clone()).or_default() += v;
        }
    }
}

/// What one worker leaves: its sessions, its tally, and what it saw go
/// wrong while it ran (a read that contradicted an acknowledged write).
#[derive(Debug, Default)]
pub struct WorkerLedger {
    pub sessions: Vec<Record>,
    pub tally: Tally,
    pub violations: Vec<String>,
}

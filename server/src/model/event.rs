//! Changes as the domain names them: what each write of a session, a user
//! context or a run records in the event log, in the same transaction. Who
//! made a change ([`crate::events::Cause`]) and its place in the log (the
//! revision and the hash chain) are added by the store when it commits.
//!
//! Touching a session (`TouchSession`, activity) is not an event: it is the
//! hottest write, it changes no state anyone reacts to, and the session's
//! record keeps its last activity time.

use super::{
    EndReason, FailureKind, ModuleId, ModuleRun, RunId, RunState, ScopeId, Session, SessionId,
    Timestamp, UserId,
};

/// What a change did (the contract's `EventKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An interactive session started.
    SessionStarted,
    /// A clientless session was opened.
    ClientlessSessionOpened,
    /// A clientless session began closing.
    SessionClosing,
    /// A session ended.
    SessionEnded,
    /// A session's user context was replaced.
    UserContextSet,
    /// A user-context scope was pushed.
    UserContextPushed,
    /// A user-context scope was popped.
    UserContextPopped,
    /// A module run started.
    RunStarted,
    /// A module run concluded.
    RunConcluded,
    /// A call was refused (unauthenticated, or not permitted).
    CallRefused,
}

/// The session a change is about, as it is after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    /// Its id.
    pub id: SessionId,
    /// Its UUID.
    pub uuid: uuid::Uuid,
    /// Its user.
    pub user: UserId,
    /// The user it acts as after the change.
    pub effective_user: UserId,
}

/// A refused call, as [`EventKind::CallRefused`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The gRPC method ("/sessiond.v1.SessionService/EndSession").
    pub method: String,
    /// The ErrorInfo reason ("PERMISSION_DENIED").
    pub reason: String,
    /// The session the refusal named, if any.
    pub session_id: Option<SessionId>,
    /// The user the refusal named, if any.
    pub user: Option<String>,
}

/// One change, before the log gives it a revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What it did.
    pub kind: EventKind,
    /// When.
    pub time: Timestamp,
    /// The session it changed.
    pub session: Option<SessionRef>,
    /// The run, for run events.
    pub run: Option<(RunId, ModuleId)>,
    /// Why the session ended or will end.
    pub end_reason: Option<EndReason>,
    /// How a concluded run ended, and why a failed one failed.
    pub run_state: Option<(RunState, Option<FailureKind>)>,
    /// The scope pushed or popped.
    pub scope_id: Option<ScopeId>,
    /// The refused call (boxed: rare, and a change is moved around a lot).
    pub refusal: Option<Box<Refusal>>,
}

impl Change {
    /// A change of `kind` to `session` (as it is after it), at `time`.
    #[must_use]
    pub fn of(kind: EventKind, session: &Session, time: Timestamp) -> Self {
        Self {
            kind,
            time,
            session: Some(SessionRef {
                id: session.id,
                uuid: session.uuid,
                user: session.user.clone(),
                effective_user: session.effective_user.clone(),
            }),
            run: None,
            end_reason: None,
            run_state: None,
            scope_id: None,
            refusal: None,
        }
    }

    /// The session's start: [`EventKind::SessionStarted`] or
    /// [`EventKind::ClientlessSessionOpened`] by its kind.
    #[must_use]
    pub fn started(session: &Session) -> Self {
        let kind = match session.kind {
            super::SessionKind::Interactive => EventKind::SessionStarted,
            super::SessionKind::Clientless => EventKind::ClientlessSessionOpened,
        };
        Self::of(kind, session, session.start_time)
    }

    /// What a write that moved `old` to `new` did to the session's life:
    /// began closing, or ended; `None` for any other change (activity, the
    /// user context, which have their own events).
    #[must_use]
    pub fn of_life(old: &Session, new: &Session, time: Timestamp) -> Option<Self> {
        if old.state == new.state {
            return None;
        }
        let kind = match new.state {
            super::SessionState::Closing => EventKind::SessionClosing,
            super::SessionState::Ended => EventKind::SessionEnded,
            super::SessionState::Open => return None,
        };
        Some(Self {
            end_reason: new.end_reason,
            ..Self::of(kind, new, time)
        })
    }

    /// A closing that will end the session for `reason` (expiry).
    #[must_use]
    pub fn closing(session: &Session, reason: EndReason, time: Timestamp) -> Self {
        Self {
            end_reason: Some(reason),
            ..Self::of(EventKind::SessionClosing, session, time)
        }
    }

    /// A user-context change of `kind`, of scope `scope` when it has one.
    #[must_use]
    pub fn user_context(
        kind: EventKind,
        session: &Session,
        scope: Option<ScopeId>,
        time: Timestamp,
    ) -> Self {
        Self {
            scope_id: scope,
            ..Self::of(kind, session, time)
        }
    }

    /// `run` started (or concluded, by its state) in `session`.
    #[must_use]
    pub fn of_run(session: &Session, run: &ModuleRun, time: Timestamp) -> Self {
        let state = run.state();
        let (kind, run_state) = match state {
            RunState::Running => (EventKind::RunStarted, None),
            concluded => (
                EventKind::RunConcluded,
                Some((concluded, run.failure().map(|failure| failure.kind))),
            ),
        };
        let mut change = Self::of(kind, session, time);
        if let Some(session) = &mut change.session {
            session.effective_user = run.acting_user.clone();
        }
        Self {
            run: Some((run.id, run.module_id.clone())),
            run_state,
            ..change
        }
    }

    /// A refused call, at `time`.
    #[must_use]
    pub fn refused(refusal: Refusal, time: Timestamp) -> Self {
        Self {
            kind: EventKind::CallRefused,
            time,
            session: None,
            run: None,
            end_reason: None,
            run_state: None,
            scope_id: None,
            refusal: Some(Box::new(refusal)),
        }
    }
}

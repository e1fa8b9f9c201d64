//! The reference model: what the contract says each call does to sessions,
//! user contexts and module runs, written from `proto/sessiond/v1` and
//! DESIGN.md — not from the server's code — so that a disagreement is a
//! finding about one or the other.
//!
//! Where the contract does not say which of two refusals comes first (a
//! module id nobody registered on an ended session, say), the model says
//! [`Expect::Unspecified`] and the call is not made: the model asserts only
//! what the contract promises.

use serde_json::Value;
use tonic::Code;

/// What the contract says a call does.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect<T> {
    /// It succeeds, with this effect.
    Ok(T),
    /// It is refused with this code and ErrorInfo reason, changing nothing.
    Refused(Code, &'static str),
    /// The contract does not say; the call is not made.
    Unspecified,
}

/// A session's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// StartSession.
    Interactive,
    /// OpenClientlessSession.
    Clientless,
}

/// A session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Live.
    Open,
    /// Clientless, closing: its running modules are concluding.
    Closing,
    /// Over (always closed by the client here: no timeouts, no restarts).
    Ended,
}

/// A module run's outcome so far.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Not concluded.
    Running,
    /// Concluded with this value.
    Succeeded(Value),
    /// Concluded with an error of the module's.
    Failed,
    /// Stopped when its session closed.
    Cancelled,
}

/// One module run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Its id (assigned by the server).
    pub id: i64,
    /// The module.
    pub module: String,
    /// The user context when it was opened.
    pub acting_user: String,
    /// Its outcome so far.
    pub outcome: Outcome,
}

/// One pushed scope.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Its id (assigned by the server).
    pub id: i64,
    /// The user context from before its push: what its pop restores.
    pub previous: String,
}

/// One session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Its id (assigned by the server).
    pub id: i64,
    /// Whose it is.
    pub user: String,
    /// Its kind.
    pub kind: Kind,
    /// Its state.
    pub state: State,
    /// Its user context.
    pub effective: String,
    /// Its stack of scopes, innermost last.
    pub scopes: Vec<Scope>,
    /// Scopes it pushed and popped.
    pub popped: Vec<i64>,
    /// Its runs, oldest first.
    pub runs: Vec<Run>,
}

impl Session {
    /// How many of its runs are running.
    pub fn running(&self) -> usize {
        self.runs
            .iter()
            .filter(|run| run.outcome == Outcome::Running)
            .count()
    }

    /// The latest run of `module`.
    pub fn latest(&self, module: &str) -> Option<&Run> {
        self.runs.iter().rev().find(|run| run.module == module)
    }
}

/// How a close or an end goes, when it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The session had ended: the record is returned unchanged.
    AlreadyEnded,
    /// It ends now; its running runs are cancelled.
    Now,
    /// It goes CLOSING and ends when its running runs have concluded.
    Drain,
}

/// What a pop finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Popped {
    /// The user context restored.
    pub restored: String,
    /// The scopes still open.
    pub depth: usize,
}

/// The modules the server under test has.
pub const REGISTERED_MODULES: [&str; 2] = ["gate", "echo"];

/// Every session a test case made, and the server's limits.
#[derive(Debug)]
pub struct Model {
    /// The sessions, in the order they were opened.
    pub sessions: Vec<Session>,
    /// The most sessions not ended a user may have.
    pub sessions_per_user: usize,
    /// The most runs running in one session.
    pub runs_per_session: usize,
}

impl Model {
    /// No sessions yet.
    pub fn new(sessions_per_user: usize, runs_per_session: usize) -> Self {
        Self {
            sessions: Vec::new(),
            sessions_per_user,
            runs_per_session,
        }
    }

    /// StartSession / OpenClientlessSession for `user`.
    pub fn open(&self, user: &str) -> Expect<()> {
        let live = self
            .sessions
            .iter()
            .filter(|s| s.user == user && s.state != State::Ended)
            .count();
        if live >= self.sessions_per_user {
            return Expect::Refused(Code::ResourceExhausted, "TOO_MANY_SESSIONS");
        }
        Expect::Ok(())
    }

    /// A session was opened.
    pub fn opened(&mut self, id: i64, user: &str, kind: Kind) {
        self.sessions.push(Session {
            id,
            user: user.to_owned(),
            kind,
            state: State::Open,
            effective: user.to_owned(),
            scopes: Vec::new(),
            popped: Vec::new(),
            runs: Vec::new(),
        });
    }

    /// TouchSession.
    pub fn touch(&self, session: Option<usize>) -> Expect<()> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        match s.state {
            State::Open => Expect::Ok(()),
            State::Closing => Expect::Unspecified,
            State::Ended => Expect::Refused(Code::FailedPrecondition, "SESSION_ENDED"),
        }
    }

    /// EndSession (a clientless session is closed with the server's default
    /// grace, which is zero on the server under test).
    pub fn end(&self, session: Option<usize>) -> Expect<Ending> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        match s.state {
            State::Ended => Expect::Ok(Ending::AlreadyEnded),
            State::Closing => Expect::Unspecified,
            State::Open => Expect::Ok(Ending::Now),
        }
    }

    /// CloseClientlessSession, with no grace or a long one (`drain`).
    pub fn close(&self, session: Option<usize>, drain: bool) -> Expect<Ending> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        match (s.kind, s.state) {
            (Kind::Interactive, State::Ended) => Expect::Unspecified,
            (Kind::Interactive, _) => {
                Expect::Refused(Code::FailedPrecondition, "SESSION_NOT_CLIENTLESS")
            }
            (Kind::Clientless, State::Ended) => Expect::Ok(Ending::AlreadyEnded),
            (Kind::Clientless, State::Closing) => Expect::Unspecified,
            (Kind::Clientless, State::Open) if drain && s.running() > 0 => {
                Expect::Ok(Ending::Drain)
            }
            (Kind::Clientless, State::Open) => Expect::Ok(Ending::Now),
        }
    }

    /// The session ends now: its running runs are cancelled.
    pub fn end_now(&mut self, session: usize) {
        let s = &mut self.sessions[session];
        for run in &mut s.runs {
            if run.outcome == Outcome::Running {
                run.outcome = Outcome::Cancelled;
            }
        }
        s.state = State::Ended;
    }

    /// The session goes CLOSING until its running runs conclude.
    pub fn begin_drain(&mut self, session: usize) {
        self.sessions[session].state = State::Closing;
    }

    /// OpenModule.
    pub fn open_module(&self, session: Option<usize>, module: &str) -> Expect<()> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        let registered = REGISTERED_MODULES.contains(&module);
        // Which of an unknown module and a session that cannot run modules
        // is reported is not said.
        if !registered && (s.kind, s.state) != (Kind::Clientless, State::Open) {
            return Expect::Unspecified;
        }
        match (s.kind, s.state) {
            (Kind::Interactive, State::Ended) => Expect::Unspecified,
            (Kind::Interactive, _) => {
                Expect::Refused(Code::FailedPrecondition, "SESSION_NOT_CLIENTLESS")
            }
            (Kind::Clientless, State::Ended) => {
                Expect::Refused(Code::FailedPrecondition, "SESSION_ENDED")
            }
            (Kind::Clientless, State::Closing) => {
                Expect::Refused(Code::FailedPrecondition, "SESSION_CLOSING")
            }
            (Kind::Clientless, State::Open) if !registered => {
                Expect::Refused(Code::NotFound, "MODULE_NOT_FOUND")
            }
            (Kind::Clientless, State::Open) if s.running() >= self.runs_per_session => {
                Expect::Refused(Code::ResourceExhausted, "TOO_MANY_RUNNING_MODULES")
            }
            (Kind::Clientless, State::Open) => Expect::Ok(()),
        }
    }

    /// A run started: it acts as the session's user context now.
    pub fn run_started(&mut self, session: usize, id: i64, module: &str) {
        let s = &mut self.sessions[session];
        let acting_user = s.effective.clone();
        s.runs.push(Run {
            id,
            module: module.to_owned(),
            acting_user,
            outcome: Outcome::Running,
        });
    }

    /// A run concluded; returns the session whose drain it completed (which
    /// has then ended), if it did.
    pub fn run_concluded(&mut self, run_id: i64, outcome: Outcome) -> Option<usize> {
        let (index, s) = self
            .sessions
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.runs.iter().any(|run| run.id == run_id))?;
        let run = s.runs.iter_mut().find(|run| run.id == run_id)?;
        run.outcome = outcome;
        if s.state == State::Closing && s.running() == 0 {
            s.state = State::Ended;
            return Some(index);
        }
        None
    }

    /// GetReturnValue without waiting.
    pub fn return_value(&self, session: Option<usize>, module: &str) -> Expect<Run> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        if s.kind == Kind::Interactive || !REGISTERED_MODULES.contains(&module) {
            return Expect::Unspecified;
        }
        match s.latest(module) {
            None => Expect::Refused(Code::NotFound, "MODULE_NOT_OPENED"),
            Some(run) if run.outcome == Outcome::Running => {
                Expect::Refused(Code::DeadlineExceeded, "MODULE_STILL_RUNNING")
            }
            Some(run) => Expect::Ok(run.clone()),
        }
    }

    /// GetUserContext / SetUserContext / PushUserContext: the session's user
    /// context before the call.
    pub fn user_context(&self, session: Option<usize>) -> Expect<String> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        if s.state == State::Ended {
            return Expect::Refused(Code::FailedPrecondition, "SESSION_ENDED");
        }
        Expect::Ok(s.effective.clone())
    }

    /// The user context was set.
    pub fn set(&mut self, session: usize, user: &str) {
        user.clone_into(&mut self.sessions[session].effective);
    }

    /// A scope was pushed.
    pub fn pushed(&mut self, session: usize, scope: i64, user: &str) {
        let s = &mut self.sessions[session];
        let previous = std::mem::replace(&mut s.effective, user.to_owned());
        s.scopes.push(Scope {
            id: scope,
            previous,
        });
    }

    /// PopUserContext of `scope`.
    pub fn pop(&self, session: Option<usize>, scope: i64) -> Expect<Popped> {
        let Some(s) = session.map(|i| &self.sessions[i]) else {
            return not_found();
        };
        if s.state == State::Ended {
            return Expect::Refused(Code::FailedPrecondition, "SESSION_ENDED");
        }
        match s.scopes.iter().position(|open| open.id == scope) {
            None => Expect::Refused(Code::NotFound, "SCOPE_NOT_FOUND"),
            Some(at) if at + 1 != s.scopes.len() => {
                Expect::Refused(Code::FailedPrecondition, "SCOPE_NOT_INNERMOST")
            }
            Some(at) => Expect::Ok(Popped {
                restored: s.scopes[at].previous.clone(),
                depth: at,
            }),
        }
    }

    /// The innermost scope was popped.
    pub fn popped(&mut self, session: usize) {
        let s = &mut self.sessions[session];
        let scope = s.scopes.pop().expect("a scope to pop");
        s.effective = scope.previous;
        s.popped.push(scope.id);
    }
}

/// Any call naming a session that does not exist.
fn not_found<T>() -> Expect<T> {
    Expect::Refused(Code::NotFound, "SESSION_NOT_FOUND")
}

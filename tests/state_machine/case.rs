//! One case: a sequence of operations applied to the server and to the
//! model, each call's answer compared with what the model expected.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::*;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::common::{eventually, reason};
use crate::model::{Ending, Expect, Kind, Model, Outcome};
use crate::{Gates, ModuleChoice, Op, Pick, ScopeChoice, Verdict};

/// A session id no session has.
const NO_SESSION: i64 = i64::MAX - 1;

/// A scope id no scope has.
const NO_SCOPE: i64 = i64::MAX - 2;

/// How long a close that drains may take (the case concludes the runs it
/// waits for).
const DRAIN_GRACE: prost_types::Duration = prost_types::Duration {
    seconds: 3600,
    nanos: 0,
};

/// How many calls were refused as the model expected, by reason (for the
/// report).
pub static REFUSALS: Mutex<BTreeMap<(String, &str), u64>> = Mutex::new(BTreeMap::new());

/// A close waiting for its session's runs to conclude.
type Drain = JoinHandle<Result<Response<CloseClientlessSessionResponse>, Status>>;

/// One case on the server.
pub struct Case {
    /// The store the server is on (for the report).
    store: String,
    /// The users of this case (no other case's sessions are theirs); the
    /// first two open sessions, all three are acted as.
    pub users: [String; 3],
    pub sessions: SessionServiceClient<Channel>,
    pub contexts: UserContextServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
    gates: Arc<Gates>,
    /// What the contract says the state is.
    pub model: Model,
    /// Closes in progress, by the session's index.
    drains: HashMap<usize, Drain>,
    /// The operations so far, for messages.
    pub trail: Vec<Op>,
}

impl Case {
    /// Case `number` of the target on `store`.
    pub fn new(
        store: &str,
        number: u64,
        channel: Channel,
        gates: Arc<Gates>,
        model: Model,
    ) -> Self {
        let user = |name| format!("{store}-{}-{number}-{name}", std::process::id());
        Self {
            store: store.to_owned(),
            users: [user("a"), user("b"), user("c")],
            sessions: SessionServiceClient::new(channel.clone()),
            contexts: UserContextServiceClient::new(channel.clone()),
            audit: AuditServiceClient::new(channel),
            gates,
            model,
            drains: HashMap::new(),
            trail: Vec::new(),
        }
    }

    /// Applies `ops`, checking the server against the model after each;
    /// then closes what is left. Returns how many operations were made
    /// (those whose outcome the contract does not say are skipped).
    pub async fn run(&mut self, ops: &[Op]) -> u64 {
        let mut made = 0;
        for op in ops {
            self.trail.push(*op);
            if self.apply(*op).await {
                made += 1;
            }
            self.observe().await;
        }
        self.clean_up().await;
        self.observe().await;
        made
    }

    /// The session `pick` names: below 128 the latest one (so that scopes
    /// pile up and runs reach the limit), else one by index.
    fn pick(&self, pick: Pick) -> Option<usize> {
        let count = self.model.sessions.len();
        (count > 0).then(|| {
            if pick < 128 {
                count - 1
            } else {
                usize::from(pick) % count
            }
        })
    }

    /// The id of the session at `index`, or one no session has.
    fn id(&self, index: Option<usize>) -> i64 {
        index.map_or(NO_SESSION, |i| self.model.sessions[i].id)
    }

    /// Compares a call's answer with `expected` (never Unspecified);
    /// returns the answer of a success.
    #[track_caller]
    pub fn compare<E: Debug, T: Debug>(
        &self,
        call: &str,
        expected: &Expect<E>,
        answer: Result<Response<T>, Status>,
    ) -> Option<T> {
        match (expected, answer) {
            (Expect::Ok(_), Ok(answer)) => Some(answer.into_inner()),
            (Expect::Refused(code, expected_reason), Err(status))
                if status.code() == *code && reason(&status) == *expected_reason =>
            {
                *REFUSALS
                    .lock()
                    .unwrap()
                    .entry((self.store.clone(), expected_reason))
                    .or_default() += 1;
                None
            }
            (expected, answer) => panic!(
                "{call}: the model expected {expected:?}, the server answered {answer:?}\n\
                 after {:?}\nmodel: {:#?}",
                self.trail, self.model.sessions
            ),
        }
    }

    /// Applies one operation; false when the contract does not say what it
    /// does (it is then not made).
    async fn apply(&mut self, op: Op) -> bool {
        match op {
            Op::Open { user, clientless } => return self.open(user, clientless).await,
            Op::Touch(pick) => {
                let at = self.pick(pick);
                let expected = self.model.touch(at);
                if expected == Expect::Unspecified {
                    return false;
                }
                let request = TouchSessionRequest {
                    session_id: self.id(at),
                };
                let answer = self.sessions.touch_session(request).await;
                self.compare("TouchSession", &expected, answer);
            }
            Op::End(pick) => {
                let at = self.pick(pick);
                let expected = self.model.end(at);
                if expected == Expect::Unspecified {
                    return false;
                }
                let request = EndSessionRequest {
                    session_id: self.id(at),
                };
                let answer = self.sessions.end_session(request).await;
                if let Some(ended) = self.compare("EndSession", &expected, answer) {
                    self.ended(at, &expected, ended.session);
                }
            }
            Op::Close { session, drain } => return self.close(session, drain).await,
            Op::OpenModule {
                session,
                module,
                parameter,
            } => return self.open_module(session, module, parameter).await,
            Op::Conclude { run, succeed } => return self.conclude(run, succeed).await,
            Op::ReturnValue(pick, module) => {
                let at = self.pick(pick);
                let module = module_id(module);
                if self.model.return_value(at, module) == Expect::Unspecified {
                    return false;
                }
                self.check_return_value(self.id(at), at, module).await;
            }
            Op::Set(pick, user) => {
                let at = self.pick(pick);
                let user = self.users[usize::from(user) % 3].clone();
                let expected = self.model.user_context(at);
                let request = SetUserContextRequest {
                    session_id: self.id(at),
                    user: user.clone(),
                };
                let answer = self.contexts.set_user_context(request).await;
                if let Some(set) = self.compare("SetUserContext", &expected, answer) {
                    assert_eq!(Expect::Ok(set.previous_user), expected, "{:?}", self.trail);
                    self.model.set(at.unwrap(), &user);
                }
            }
            Op::Push(pick, user) => {
                let at = self.pick(pick);
                let user = self.users[usize::from(user) % 3].clone();
                let expected = self.model.user_context(at);
                let request = PushUserContextRequest {
                    session_id: self.id(at),
                    user: user.clone(),
                };
                let answer = self.contexts.push_user_context(request).await;
                if let Some(pushed) = self.compare("PushUserContext", &expected, answer) {
                    let index = at.unwrap();
                    assert_eq!(
                        Expect::Ok(pushed.previous_user),
                        expected,
                        "{:?}",
                        self.trail
                    );
                    let depth = self.model.sessions[index].scopes.len() + 1;
                    assert_eq!(pushed.depth as usize, depth, "{:?}", self.trail);
                    self.model.pushed(index, pushed.scope_id, &user);
                }
            }
            Op::Pop(pick, scope) => {
                let at = self.pick(pick);
                let scope_id = self.scope(at, scope);
                let expected = self.model.pop(at, scope_id);
                let request = PopUserContextRequest {
                    session_id: self.id(at),
                    scope_id,
                };
                let answer = self.contexts.pop_user_context(request).await;
                if let Some(popped) = self.compare("PopUserContext", &expected, answer) {
                    let Expect::Ok(expected) = expected else {
                        unreachable!()
                    };
                    assert_eq!(popped.user, expected.restored, "{:?}", self.trail);
                    assert_eq!(popped.depth as usize, expected.depth, "{:?}", self.trail);
                    self.model.popped(at.unwrap());
                }
            }
        }
        true
    }

    /// StartSession or OpenClientlessSession.
    async fn open(&mut self, user: u8, clientless: bool) -> bool {
        let user = self.users[usize::from(user) % 2].clone();
        let expected = self.model.open(&user);
        let (kind, answer) = if clientless {
            let request = OpenClientlessSessionRequest { user: user.clone() };
            let answer = self.sessions.open_clientless_session(request).await;
            (
                Kind::Clientless,
                answer.map(|r| r.map(|opened| opened.session)),
            )
        } else {
            let request = StartSessionRequest {
                user: user.clone(),
                client: "state machine".into(),
            };
            let answer = self.sessions.start_session(request).await;
            (
                Kind::Interactive,
                answer.map(|r| r.map(|started| started.session)),
            )
        };
        if let Some(record) = self.compare("open", &expected, answer) {
            let record = record.expect("the new session's record");
            assert_eq!(record.state(), SessionState::Open);
            assert_eq!(record.user, user);
            assert_eq!(record.effective_user, user);
            self.model.opened(record.session_id, &user, kind);
        }
        true
    }

    /// What a close or end that succeeded did, checked and applied.
    fn ended(&mut self, at: Option<usize>, expected: &Expect<Ending>, record: Option<SessionInfo>) {
        let record = record.expect("the ended session's record");
        assert_eq!(record.state(), SessionState::Ended, "{:?}", self.trail);
        assert_eq!(
            record.end_reason(),
            EndReason::ClosedByClient,
            "{:?}",
            self.trail
        );
        if *expected == Expect::Ok(Ending::Now) {
            self.model.end_now(at.unwrap());
        }
    }

    /// CloseClientlessSession, with no grace or draining.
    async fn close(&mut self, pick: Pick, drain: bool) -> bool {
        let at = self.pick(pick);
        let expected = self.model.close(at, drain);
        let request = CloseClientlessSessionRequest {
            session_id: self.id(at),
            grace: Some(if drain {
                DRAIN_GRACE
            } else {
                prost_types::Duration::default()
            }),
        };
        match expected {
            Expect::Unspecified => false,
            Expect::Ok(Ending::Drain) => {
                let index = at.unwrap();
                let mut sessions = self.sessions.clone();
                let drain =
                    tokio::spawn(async move { sessions.close_clientless_session(request).await });
                self.model.begin_drain(index);
                let id = self.id(at);
                let sessions = self.sessions.clone();
                eventually("the session to be closing", || {
                    let mut sessions = sessions.clone();
                    async move {
                        let info = sessions
                            .get_session_info(GetSessionInfoRequest { session_id: id })
                            .await
                            .unwrap()
                            .into_inner()
                            .session
                            .unwrap();
                        (info.state() != SessionState::Open).then_some(())
                    }
                })
                .await;
                self.drains.insert(index, drain);
                true
            }
            expected => {
                let answer = self.sessions.close_clientless_session(request).await;
                if let Some(closed) = self.compare("CloseClientlessSession", &expected, answer) {
                    self.ended(at, &expected, closed.session);
                }
                true
            }
        }
    }

    /// OpenModule; an `echo` run is waited for.
    async fn open_module(&mut self, pick: Pick, module: ModuleChoice, parameter: u8) -> bool {
        let at = self.pick(pick);
        let module = module_id(module);
        let expected = self.model.open_module(at, module);
        if expected == Expect::Unspecified {
            return false;
        }
        let parameters = serde_json::json!({ "p": parameter });
        let request = OpenModuleRequest {
            session_id: self.id(at),
            module_id: module.to_owned(),
            parameters: Some(prost_types::Struct {
                fields: [(
                    "p".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NumberValue(f64::from(parameter))),
                    },
                )]
                .into(),
            }),
        };
        let answer = self.sessions.open_module(request).await;
        let Some(opened) = self.compare("OpenModule", &expected, answer) else {
            return true;
        };
        let index = at.unwrap();
        let effective = &self.model.sessions[index].effective;
        assert_eq!(&opened.acting_user, effective, "{:?}", self.trail);
        self.model.run_started(index, opened.run_id, module);
        if module == "echo" {
            let request = GetReturnValueRequest {
                session_id: self.id(at),
                module_id: module.to_owned(),
                timeout: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
            };
            let read = self.sessions.get_return_value(request).await;
            let read = read.expect("echo concludes").into_inner();
            assert_eq!(read.state(), RunState::Succeeded, "{read:?}");
            let value = Outcome::Succeeded(serde_json::json!({ "echo": parameters }));
            self.model.run_concluded(opened.run_id, value);
        } else {
            assert_eq!(opened.state(), RunState::Running, "{:?}", self.trail);
        }
        true
    }

    /// Concludes a running `gate` run and waits until the server recorded
    /// it (and, when it was the last of a closing session, for the close).
    async fn conclude(&mut self, pick: u8, succeed: bool) -> bool {
        let running: Vec<(i64, i64)> = self
            .model
            .sessions
            .iter()
            .flat_map(|s| {
                s.runs
                    .iter()
                    .filter(|run| run.outcome == Outcome::Running)
                    .map(|run| (s.id, run.id))
            })
            .collect();
        if running.is_empty() {
            return false;
        }
        let (session_id, run_id) = running[usize::from(pick) % running.len()];
        let (verdict, outcome) = if succeed {
            let value = serde_json::json!({ "concluded": run_id });
            (Verdict::Value(value.clone()), Outcome::Succeeded(value))
        } else {
            (Verdict::Error, Outcome::Failed)
        };
        self.gates.conclude(run_id, verdict);
        let audit = self.audit.clone();
        eventually("the run to conclude", || {
            let mut audit = audit.clone();
            async move {
                let request = ListEventsRequest {
                    session_id,
                    kinds: vec![EventKind::RunConcluded as i32],
                    page_size: 1000,
                    ..ListEventsRequest::default()
                };
                let events = audit.list_events(request).await.unwrap().into_inner();
                events
                    .events
                    .iter()
                    .any(|event| event.run_id == run_id)
                    .then_some(())
            }
        })
        .await;
        if let Some(index) = self.model.run_concluded(run_id, outcome) {
            let drain = self.drains.remove(&index).expect("the draining close");
            let closed = drain.await.unwrap();
            let closed = self.compare("CloseClientlessSession", &Expect::Ok(()), closed);
            self.ended(
                Some(index),
                &Expect::Ok(Ending::Drain),
                closed.unwrap().session,
            );
        }
        true
    }

    /// The id of the scope `choice` names for the session at `at`.
    fn scope(&self, at: Option<usize>, choice: ScopeChoice) -> i64 {
        let Some(index) = at else {
            return NO_SCOPE;
        };
        let s = &self.model.sessions[index];
        let nth = |ids: Vec<i64>, n: u8| {
            if ids.is_empty() {
                NO_SCOPE
            } else {
                ids[usize::from(n) % ids.len()]
            }
        };
        match choice {
            ScopeChoice::Innermost => s.scopes.last().map_or(NO_SCOPE, |scope| scope.id),
            ScopeChoice::Outer(n) => {
                let below = s.scopes.len().saturating_sub(1);
                nth(s.scopes[..below].iter().map(|scope| scope.id).collect(), n)
            }
            ScopeChoice::Popped(n) => nth(s.popped.clone(), n),
            ScopeChoice::OfAnotherSession(n) => nth(
                self.model
                    .sessions
                    .iter()
                    .filter(|other| other.id != s.id)
                    .flat_map(|other| {
                        other
                            .scopes
                            .iter()
                            .map(|scope| scope.id)
                            .chain(other.popped.iter().copied())
                    })
                    .collect(),
                n,
            ),
            ScopeChoice::Unknown => NO_SCOPE,
        }
    }

    /// Ends every session of the case: the runs a drain waits for are
    /// concluded, the open sessions are closed without grace.
    async fn clean_up(&mut self) {
        let draining: Vec<usize> = self.drains.keys().copied().collect();
        for index in draining {
            while self.model.sessions[index].running() > 0 {
                self.conclude_in(index).await;
            }
        }
        for index in 0..self.model.sessions.len() {
            if self.model.end(Some(index)) == Expect::Ok(Ending::Now) {
                let request = EndSessionRequest {
                    session_id: self.model.sessions[index].id,
                };
                let answer = self.sessions.end_session(request).await;
                let expected = Expect::Ok(Ending::Now);
                let ended = self.compare("EndSession", &expected, answer).unwrap();
                self.ended(Some(index), &expected, ended.session);
            }
        }
    }

    /// Concludes one running run of the session at `index` with an error.
    async fn conclude_in(&mut self, index: usize) {
        let running: Vec<i64> = self
            .model
            .sessions
            .iter()
            .flat_map(|s| s.runs.iter().filter(|run| run.outcome == Outcome::Running))
            .map(|run| run.id)
            .collect();
        let target = self.model.sessions[index]
            .runs
            .iter()
            .find(|run| run.outcome == Outcome::Running)
            .map(|run| run.id)
            .unwrap();
        let pick = running.iter().position(|id| *id == target).unwrap();
        self.conclude(u8::try_from(pick).unwrap(), false).await;
    }
}

/// The module id of a choice.
pub fn module_id(module: ModuleChoice) -> &'static str {
    match module {
        ModuleChoice::Gate => "gate",
        ModuleChoice::Echo => "echo",
        ModuleChoice::Unregistered => "no-such-module",
    }
}

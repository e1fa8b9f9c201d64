//! The calls a worker makes, and what each answer means for its ledger.

use std::time::Duration;

use sessiond_proto::v1 as pb;

use super::ledger::{Kind, Pending, Record, Run, Scope};
use super::workload::{Answer, Clients, Worker, request};

/// The modules runs are opened of (the manifest in [`super::MANIFEST`]).
const MODULES: [&str; 5] = ["whoami", "slow", "100000", "forks", "lingers"];

/// Users the user context is switched to.
const ACTORS: [&str; 4] = ["R41", "R42", "R43", "svc-batch"];

impl Worker {
    pub(super) async fn open_clientless(&mut self, mut clients: Clients) {
        let user = format!("W{}-{}", self.index, self.rng.below(4));
        let result = clients
            .sessions
            .open_clientless_session(request(
                pb::OpenClientlessSessionRequest { user: user.clone() },
                Duration::ZERO,
            ))
            .await;
        if let Answer::Done(r) = self.answer("OpenClientlessSession", true, result).await {
            let record = Record::opened(r.session_id, r.session_uuid, &user, Kind::Clientless);
            self.ledger.sessions.push(record);
            self.live.push(self.ledger.sessions.len() - 1);
        }
    }

    pub(super) async fn start_interactive(&mut self, mut clients: Clients) {
        let user = format!("W{}-{}", self.index, self.rng.below(4));
        let result = clients
            .sessions
            .start_session(request(
                pb::StartSessionRequest {
                    user: user.clone(),
                    client: "crash-loop".into(),
                },
                Duration::ZERO,
            ))
            .await;
        if let Answer::Done(r) = self.answer("StartSession", true, result).await {
            let record = Record::opened(r.session_id, r.session_uuid, &user, Kind::Interactive);
            self.ledger.sessions.push(record);
            self.live.push(self.ledger.sessions.len() - 1);
        }
    }

    /// One random call on the session in live slot `slot`.
    pub(super) async fn act(&mut self, clients: Clients, slot: usize) {
        let index = self.live[slot];
        let kind = self.ledger.sessions[index].kind;
        let roll = self.rng.below(100);
        match (kind, roll) {
            (_, 0..15) => self.push(clients, slot).await,
            (_, 15..30) => self.pop(clients, slot).await,
            (_, 30..35) => self.set(clients, slot).await,
            (_, 35..45) => self.read_context(clients, slot).await,
            (_, 45..50) => self.read_user(clients, slot).await,
            (Kind::Clientless, 50..72) => self.open_module(clients, slot).await,
            (Kind::Clientless, 72..94) => self.read_value(clients, slot).await,
            (Kind::Clientless, _) => self.close(clients, slot).await,
            (Kind::Interactive, 50..96) => self.touch(clients, slot).await,
            (Kind::Interactive, _) => self.end(clients, slot).await,
        }
    }

    fn record(&mut self, slot: usize) -> &mut Record {
        let index = self.live[slot];
        &mut self.ledger.sessions[index]
    }

    /// A refusal of a call on the session in `slot`: a session a crash (or
    /// a takeover) ended is retired; a refusal that contradicts the ledger
    /// is a violation.
    fn refused(&mut self, slot: usize, reason: &str, call: &str) {
        let record = self.record(slot).clone();
        match reason {
            "SESSION_ENDED" | "SESSION_CLOSING" if record.kind == Kind::Clientless => {
                self.retire(slot);
            }
            "SESSION_ENDED" | "SESSION_CLOSING" | "SESSION_NOT_FOUND" => {
                self.violation(&record, format!("{call} refused with {reason}"));
                self.retire(slot);
            }
            _ => {}
        }
    }

    /// An unknown write on the session in `slot`: kept as its pending
    /// write, and the session is not used again.
    fn unknown(&mut self, slot: usize, pending: Pending) {
        self.record(slot).pending = Some(pending);
        self.retire(slot);
    }

    async fn push(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let user = ACTORS[usize::try_from(self.rng.below(ACTORS.len() as u64)).unwrap()];
        let result = clients
            .contexts
            .push_user_context(request(
                pb::PushUserContextRequest {
                    session_id,
                    user: user.into(),
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("PushUserContext", true, result).await {
            Answer::Done(r) => {
                let record = self.record(slot);
                let expected = (record.effective_user.clone(), record.scopes.len() + 1);
                record.scopes.push(Scope {
                    scope_id: r.scope_id,
                    user: user.into(),
                    previous_user: r.previous_user.clone(),
                });
                record.effective_user = user.into();
                let record = record.clone();
                if (r.previous_user.clone(), r.depth as usize) != expected {
                    let got = (r.previous_user, r.depth);
                    self.violation(&record, format!("push answered {got:?}, not {expected:?}"));
                }
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "PushUserContext"),
            Answer::Unknown => self.unknown(slot, Pending::Push { user: user.into() }),
        }
    }

    async fn pop(&mut self, mut clients: Clients, slot: usize) {
        let record = self.record(slot).clone();
        let Some(innermost) = record.scopes.last().cloned() else {
            return self.read_context(clients, slot).await;
        };
        // Now and then, an outer scope: refused, and nothing changes.
        let outer = record.scopes.len() >= 2 && self.rng.chance(10);
        let scope_id = if outer {
            record.scopes[0].scope_id
        } else {
            innermost.scope_id
        };
        let result = clients
            .contexts
            .pop_user_context(request(
                pb::PopUserContextRequest {
                    session_id: record.session_id,
                    scope_id,
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("PopUserContext", true, result).await {
            Answer::Done(r) if !outer => {
                let record = self.record(slot);
                record.scopes.pop();
                record.effective_user = innermost.previous_user.clone();
                let expected = (record.effective_user.clone(), record.scopes.len());
                let record = record.clone();
                if (r.user.clone(), r.depth as usize) != expected {
                    let got = (r.user, r.depth);
                    self.violation(&record, format!("pop answered {got:?}, not {expected:?}"));
                }
            }
            Answer::Done(_) => {
                self.violation(&record, format!("the outer scope {scope_id} was popped"));
                self.retire(slot);
            }
            Answer::Refused(reason) if outer && reason == "SCOPE_NOT_INNERMOST" => {}
            Answer::Refused(reason) if reason.starts_with("SCOPE_") => {
                self.violation(&record, format!("pop of scope {scope_id}: {reason}"));
                self.retire(slot);
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "PopUserContext"),
            Answer::Unknown if outer => self.retire(slot),
            Answer::Unknown => self.unknown(slot, Pending::Pop { scope_id }),
        }
    }

    async fn set(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let user = ACTORS[usize::try_from(self.rng.below(ACTORS.len() as u64)).unwrap()];
        let result = clients
            .contexts
            .set_user_context(request(
                pb::SetUserContextRequest {
                    session_id,
                    user: user.into(),
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("SetUserContext", true, result).await {
            Answer::Done(r) => {
                let record = self.record(slot);
                let expected = std::mem::replace(&mut record.effective_user, user.into());
                let record = record.clone();
                if r.previous_user != expected {
                    let got = r.previous_user;
                    self.violation(&record, format!("set answered {got:?}, not {expected:?}"));
                }
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "SetUserContext"),
            Answer::Unknown => self.unknown(slot, Pending::Set { user: user.into() }),
        }
    }

    async fn read_context(&mut self, mut clients: Clients, slot: usize) {
        let record = self.record(slot).clone();
        let result = clients
            .contexts
            .get_user_context(request(
                pb::GetUserContextRequest {
                    session_id: record.session_id,
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("GetUserContext", false, result).await {
            Answer::Done(r) => {
                let got = (r.user, r.session_user, r.depth as usize);
                let expected = (
                    record.effective_user.clone(),
                    record.user.clone(),
                    record.scopes.len(),
                );
                if got != expected {
                    self.violation(&record, format!("read {got:?}, not {expected:?}"));
                }
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "GetUserContext"),
            Answer::Unknown => {}
        }
    }

    async fn read_user(&mut self, mut clients: Clients, slot: usize) {
        let record = self.record(slot).clone();
        let result = clients
            .sessions
            .get_session_user(request(
                pb::GetSessionUserRequest {
                    session_id: record.session_id,
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("GetSessionUser", false, result).await {
            Answer::Done(r) if r.user != record.user => {
                self.violation(&record, format!("GetSessionUser answered {:?}", r.user));
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "GetSessionUser"),
            _ => {}
        }
    }

    async fn open_module(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let module = MODULES[usize::try_from(self.rng.below(MODULES.len() as u64)).unwrap()];
        let seconds = self.rng.below(4);
        let parameters = serde_json::json!({ "seconds": seconds });
        let result = clients
            .sessions
            .open_module(request(
                pb::OpenModuleRequest {
                    session_id,
                    module_id: module.into(),
                    parameters: Some(to_struct(&parameters)),
                },
                Duration::ZERO,
            ))
            .await;
        match self.answer("OpenModule", true, result).await {
            Answer::Done(r) => self.record(slot).runs.push(Run {
                run_id: r.run_id,
                module_id: module.into(),
                concluded: None,
            }),
            Answer::Refused(reason) => self.refused(slot, &reason, "OpenModule"),
            Answer::Unknown => self.unknown(slot, Pending::OpenModule),
        }
    }

    async fn read_value(&mut self, mut clients: Clients, slot: usize) {
        let record = self.record(slot).clone();
        if record.runs.is_empty() {
            return self.open_module(clients, slot).await;
        }
        let pick = usize::try_from(self.rng.below(record.runs.len() as u64)).unwrap();
        let module_id = record.runs[pick].module_id.clone();
        // The latest run of that module is the one read.
        let latest = record
            .runs
            .iter()
            .rposition(|run| run.module_id == module_id)
            .unwrap();
        let wait = Duration::from_millis(self.rng.below(1500));
        let result = clients
            .sessions
            .get_return_value(request(
                pb::GetReturnValueRequest {
                    session_id: record.session_id,
                    module_id: module_id.clone(),
                    timeout: Some(prost_types::Duration::try_from(wait).unwrap()),
                },
                wait,
            ))
            .await;
        match self.answer("GetReturnValue", false, result).await {
            Answer::Done(r) => {
                let run = &record.runs[latest];
                let outcome = (state_name(r.state()), r.value.as_ref().map(to_json));
                if r.run_id != run.run_id {
                    let what = format!("{module_id}: run {} read, not {}", r.run_id, run.run_id);
                    return self.violation(&record, what);
                }
                match &run.concluded {
                    Some(before) if *before != outcome => {
                        let what = format!("run {} was {before:?}, now {outcome:?}", r.run_id);
                        self.violation(&record, what);
                    }
                    Some(_) => {}
                    None if outcome.0 == "running" => {
                        self.violation(&record, format!("run {} read as running", r.run_id));
                    }
                    None => self.record(slot).runs[latest].concluded = Some(outcome),
                }
            }
            Answer::Refused(reason) if reason == "MODULE_NOT_OPENED" => {
                let what = format!("{module_id}: MODULE_NOT_OPENED after an acknowledged open");
                self.violation(&record, what);
                self.retire(slot);
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "GetReturnValue"),
            Answer::Unknown => {}
        }
    }

    async fn close(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let grace = Duration::from_millis(self.rng.below(1000));
        let result = clients
            .sessions
            .close_clientless_session(request(
                pb::CloseClientlessSessionRequest {
                    session_id,
                    grace: Some(prost_types::Duration::try_from(grace).unwrap()),
                },
                grace,
            ))
            .await;
        match self.answer("CloseClientlessSession", true, result).await {
            Answer::Done(r) => self.ended(slot, r.session),
            Answer::Refused(reason) => self.refused(slot, &reason, "CloseClientlessSession"),
            Answer::Unknown => self.unknown(slot, Pending::Close),
        }
    }

    async fn end(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let result = clients
            .sessions
            .end_session(request(
                pb::EndSessionRequest { session_id },
                Duration::ZERO,
            ))
            .await;
        match self.answer("EndSession", true, result).await {
            Answer::Done(r) => self.ended(slot, r.session),
            Answer::Refused(reason) => self.refused(slot, &reason, "EndSession"),
            Answer::Unknown => self.unknown(slot, Pending::End),
        }
    }

    /// An acknowledged end: the record the answer carried.
    fn ended(&mut self, slot: usize, session: Option<pb::SessionInfo>) {
        let record = self.record(slot).clone();
        match session {
            Some(s) if s.state() == pb::SessionState::Ended && s.end_time.is_some() => {
                let reason = reason_name(s.end_reason());
                self.record(slot).ended = Some((reason, micros(s.end_time.as_ref())));
            }
            other => self.violation(&record, format!("an end answered {other:?}")),
        }
        self.retire(slot);
    }

    async fn touch(&mut self, mut clients: Clients, slot: usize) {
        let session_id = self.record(slot).session_id;
        let result = clients
            .sessions
            .touch_session(request(
                pb::TouchSessionRequest { session_id },
                Duration::ZERO,
            ))
            .await;
        match self.answer("TouchSession", true, result).await {
            Answer::Done(r) => {
                let at = micros(r.last_activity_time.as_ref());
                let record = self.record(slot);
                record.touched = Some(record.touched.map_or(at, |t| t.max(at)));
            }
            Answer::Refused(reason) => self.refused(slot, &reason, "TouchSession"),
            Answer::Unknown => self.unknown(slot, Pending::Touch),
        }
    }
}

/// The store's name of an end reason (`closed_by_client`, …).
pub fn reason_name(reason: pb::EndReason) -> String {
    let name = reason.as_str_name();
    name.trim_start_matches("END_REASON_").to_ascii_lowercase()
}

/// The store's name of a run state (`running`, `succeeded`, …).
pub fn state_name(state: pb::RunState) -> String {
    let name = state.as_str_name();
    name.trim_start_matches("RUN_STATE_").to_ascii_lowercase()
}

/// Microseconds since the epoch.
pub fn micros(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

/// A JSON value the way a `google.protobuf.Value` carries it (numbers as
/// doubles), so that values from both sides compare.
pub fn normalized(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Number(n) => serde_json::json!(n.as_f64().unwrap_or(f64::NAN)),
        J::Array(items) => J::Array(items.iter().map(normalized).collect()),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `google.protobuf.Value` as JSON.
pub fn to_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind as V;
    match &value.kind {
        None | Some(V::NullValue(_)) => serde_json::Value::Null,
        Some(V::NumberValue(n)) => serde_json::json!(n),
        Some(V::StringValue(s)) => serde_json::json!(s),
        Some(V::BoolValue(b)) => serde_json::json!(b),
        Some(V::StructValue(s)) => serde_json::Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Some(V::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(to_json).collect()),
    }
}

/// A JSON object as a `google.protobuf.Struct`.
fn to_struct(object: &serde_json::Value) -> prost_types::Struct {
    let fields = object
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let kind = match v {
                serde_json::Value::Number(n) => {
                    prost_types::value::Kind::NumberValue(n.as_f64().unwrap())
                }
                other => prost_types::value::Kind::StringValue(other.to_string()),
            };
            (k.clone(), prost_types::Value { kind: Some(kind) })
        })
        .collect();
    prost_types::Struct { fields }
}

//! Everything observable about a case's sessions, compared with the model:
//! each session's record, user and user context, the latest run of each
//! module in it, and the listing of each user's sessions.

use sessiond_proto::v1::*;

use crate::case::Case;
use crate::common::metadata;
use crate::model::{Expect, Kind, Outcome, REGISTERED_MODULES, State};

impl Case {
    /// Compares every session of the case with the model.
    pub async fn observe(&mut self) {
        for index in 0..self.model.sessions.len() {
            self.observe_session(index).await;
        }
        for user in self.users.clone() {
            self.observe_listing(&user).await;
        }
    }

    /// Compares one session with the model.
    async fn observe_session(&mut self, index: usize) {
        let expected = self.model.sessions[index].clone();
        let trail = format!("session {} after {:?}", expected.id, self.trail);
        let id = expected.id;
        let info = self
            .sessions
            .get_session_info(GetSessionInfoRequest { session_id: id })
            .await
            .unwrap_or_else(|status| panic!("{trail}: {status:?}"))
            .into_inner()
            .session
            .unwrap();
        let state = match expected.state {
            State::Open => SessionState::Open,
            State::Closing => SessionState::Closing,
            State::Ended => SessionState::Ended,
        };
        let kind = match expected.kind {
            Kind::Interactive => SessionKind::Interactive,
            Kind::Clientless => SessionKind::Clientless,
        };
        let ended = expected.state == State::Ended;
        assert_eq!(info.state(), state, "{trail}: {info:?}");
        assert_eq!(info.kind(), kind, "{trail}: {info:?}");
        assert_eq!(info.user, expected.user, "{trail}: {info:?}");
        assert_eq!(info.effective_user, expected.effective, "{trail}: {info:?}");
        assert_eq!(
            info.user_context_depth as usize,
            expected.scopes.len(),
            "{trail}: {info:?}"
        );
        let reason = if ended {
            EndReason::ClosedByClient
        } else {
            EndReason::Unspecified
        };
        assert_eq!(info.end_reason(), reason, "{trail}: {info:?}");
        assert_eq!(info.end_time.is_some(), ended, "{trail}: {info:?}");

        let user = self
            .sessions
            .get_session_user(GetSessionUserRequest { session_id: id })
            .await
            .unwrap_or_else(|status| panic!("{trail}: {status:?}"))
            .into_inner()
            .user;
        assert_eq!(user, expected.user, "{trail}");

        let context = self
            .contexts
            .get_user_context(GetUserContextRequest { session_id: id })
            .await;
        let expected_context = self.model.user_context(Some(index));
        if let Some(context) = self.compare("GetUserContext", &expected_context, context) {
            assert_eq!(context.user, expected.effective, "{trail}");
            assert_eq!(context.session_user, expected.user, "{trail}");
            assert_eq!(context.depth as usize, expected.scopes.len(), "{trail}");
        }

        if expected.kind == Kind::Clientless {
            for module in REGISTERED_MODULES {
                self.check_return_value(id, Some(index), module).await;
            }
        }
    }

    /// GetReturnValue without waiting, compared with the model's latest run
    /// of `module` in the session at `at` (whose id is `id`).
    pub async fn check_return_value(&mut self, id: i64, at: Option<usize>, module: &str) {
        let expected = self.model.return_value(at, module);
        let request = GetReturnValueRequest {
            session_id: id,
            module_id: module.to_owned(),
            timeout: None,
        };
        let answer = self.sessions.get_return_value(request).await;
        let trail = format!("{module} in session {id} after {:?}", self.trail);
        if let (Expect::Refused(_, "MODULE_STILL_RUNNING"), Err(status)) = (&expected, &answer) {
            let latest = self.model.sessions[at.unwrap()].latest(module).unwrap();
            let run_id = metadata(status, "run_id");
            assert_eq!(run_id, Some(latest.id.to_string()), "{trail}: {status:?}");
        }
        let Some(read) = self.compare("GetReturnValue", &expected, answer) else {
            return;
        };
        let Expect::Ok(run) = expected else {
            unreachable!()
        };
        assert_eq!(read.run_id, run.id, "{trail}: {read:?}");
        assert_eq!(read.acting_user, run.acting_user, "{trail}: {read:?}");
        assert!(read.end_time.is_some(), "{trail}: {read:?}");
        match run.outcome {
            Outcome::Running => unreachable!("a running run is refused"),
            Outcome::Succeeded(value) => {
                assert_eq!(read.state(), RunState::Succeeded, "{trail}: {read:?}");
                assert!(read.failure.is_none(), "{trail}: {read:?}");
                assert_eq!(json(read.value), as_floats(value), "{trail}");
            }
            Outcome::Failed => {
                assert_eq!(read.state(), RunState::Failed, "{trail}: {read:?}");
                let failure = read.failure.expect("a failure");
                assert_eq!(failure.kind(), ModuleFailureKind::Error, "{trail}");
            }
            Outcome::Cancelled => {
                assert_eq!(read.state(), RunState::Cancelled, "{trail}: {read:?}");
                let failure = read.failure.expect("a failure");
                assert_eq!(failure.kind(), ModuleFailureKind::Cancelled, "{trail}");
            }
        }
    }

    /// ListSessions of `user`: exactly the model's sessions of that user, in
    /// ascending id order, in their states.
    async fn observe_listing(&mut self, user: &str) {
        let listed = self
            .sessions
            .list_sessions(ListSessionsRequest {
                user: user.to_owned(),
                page_size: 1000,
                ..ListSessionsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let listed: Vec<(i64, i32)> = listed
            .sessions
            .iter()
            .map(|s| (s.session_id, s.state))
            .collect();
        let mut expected: Vec<(i64, i32)> = self
            .model
            .sessions
            .iter()
            .filter(|s| s.user == user)
            .map(|s| {
                let state = match s.state {
                    State::Open => SessionState::Open,
                    State::Closing => SessionState::Closing,
                    State::Ended => SessionState::Ended,
                };
                (s.id, state as i32)
            })
            .collect();
        expected.sort_unstable();
        assert_eq!(
            listed, expected,
            "sessions of {user} after {:?}",
            self.trail
        );
    }
}

/// A `Value` as JSON.
fn json(value: Option<prost_types::Value>) -> serde_json::Value {
    use prost_types::value::Kind;
    let Some(kind) = value.and_then(|value| value.kind) else {
        return serde_json::Value::Null;
    };
    match kind {
        Kind::NullValue(_) => serde_json::Value::Null,
        Kind::NumberValue(n) => serde_json::json!(n),
        Kind::StringValue(s) => serde_json::Value::String(s),
        Kind::BoolValue(b) => serde_json::Value::Bool(b),
        Kind::StructValue(fields) => serde_json::Value::Object(
            fields
                .fields
                .into_iter()
                .map(|(name, value)| (name, json(Some(value))))
                .collect(),
        ),
        Kind::ListValue(list) => serde_json::Value::Array(
            list.values
                .into_iter()
                .map(|value| json(Some(value)))
                .collect(),
        ),
    }
}

/// `value` with every number as a float, as a `Value` carries it.
fn as_floats(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(as_floats).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name, as_floats(value)))
                .collect(),
        ),
        other => other,
    }
}

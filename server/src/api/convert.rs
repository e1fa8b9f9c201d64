//! Conversions between the domain's values and the contract's messages.

use sessiond_proto::v1 as pb;

use crate::model::FieldViolation;
use crate::model::{EndReason, Session, SessionKind, SessionState, Timestamp};

impl From<Session> for pb::SessionInfo {
    fn from(session: Session) -> Self {
        Self {
            session_id: session.id.get(),
            session_uuid: session.uuid.hyphenated().to_string(),
            user: session.user.into_string(),
            kind: pb::SessionKind::from(session.kind).into(),
            state: pb::SessionState::from(session.state).into(),
            start_time: Some(session.start_time.into()),
            end_time: session.end_time.map(Into::into),
            last_activity_time: Some(session.last_activity_time.into()),
            end_reason: session
                .end_reason
                .map_or(pb::EndReason::Unspecified, pb::EndReason::from)
                .into(),
            effective_user: session.effective_user.into_string(),
            client: session.client.as_str().to_owned(),
            user_context_depth: session.user_context_depth,
            owner_node: session.owner_node,
        }
    }
}

impl From<SessionKind> for pb::SessionKind {
    fn from(kind: SessionKind) -> Self {
        match kind {
            SessionKind::Interactive => Self::Interactive,
            SessionKind::Clientless => Self::Clientless,
        }
    }
}

impl From<SessionState> for pb::SessionState {
    fn from(state: SessionState) -> Self {
        match state {
            SessionState::Open => Self::Open,
            SessionState::Closing => Self::Closing,
            SessionState::Ended => Self::Ended,
        }
    }
}

impl From<EndReason> for pb::EndReason {
    fn from(reason: EndReason) -> Self {
        match reason {
            EndReason::ClosedByClient => Self::ClosedByClient,
            EndReason::IdleTimeout => Self::IdleTimeout,
            EndReason::MaxLifetime => Self::MaxLifetime,
            EndReason::ServerShutdown => Self::ServerShutdown,
            EndReason::ServerRestart => Self::ServerRestart,
            EndReason::NodeLost => Self::NodeLost,
        }
    }
}

/// A kind filter: unspecified matches any kind.
pub fn kind_filter(field: &str, value: i32) -> Result<Option<SessionKind>, FieldViolation> {
    match pb::SessionKind::try_from(value) {
        Ok(pb::SessionKind::Unspecified) => Ok(None),
        Ok(pb::SessionKind::Interactive) => Ok(Some(SessionKind::Interactive)),
        Ok(pb::SessionKind::Clientless) => Ok(Some(SessionKind::Clientless)),
        Err(_) => Err(FieldViolation::new(field, "unknown session kind")),
    }
}

/// A state filter: unspecified matches any state.
pub fn state_filter(field: &str, value: i32) -> Result<Option<SessionState>, FieldViolation> {
    match pb::SessionState::try_from(value) {
        Ok(pb::SessionState::Unspecified) => Ok(None),
        Ok(pb::SessionState::Open) => Ok(Some(SessionState::Open)),
        Ok(pb::SessionState::Closing) => Ok(Some(SessionState::Closing)),
        Ok(pb::SessionState::Ended) => Ok(Some(SessionState::Ended)),
        Err(_) => Err(FieldViolation::new(field, "unknown session state")),
    }
}

/// A list of states to filter by: each must be a state (not unspecified);
/// repeats are dropped. Empty matches any state.
pub fn states_filter(field: &str, values: &[i32]) -> Result<Vec<SessionState>, FieldViolation> {
    let mut states = Vec::with_capacity(values.len());
    for (index, &value) in values.iter().enumerate() {
        match state_filter(field, value) {
            Ok(Some(state)) if !states.contains(&state) => states.push(state),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(FieldViolation::new(
                    format!("{field}[{index}]"),
                    "must be open, closing or ended",
                ));
            }
        }
    }
    Ok(states)
}

/// The longest grace or timeout a caller may ask for.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A caller's wait (a grace period, a timeout): unset is `None`; it must not
/// be negative nor longer than [`MAX_WAIT`].
pub fn wait(
    field: &str,
    value: Option<prost_types::Duration>,
) -> Result<Option<std::time::Duration>, FieldViolation> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || FieldViolation::new(field, "must be between 0 and 1 hour");
    // Protobuf's own rule for a Duration: nanos within ±999,999,999 and of
    // the same sign as seconds. prost would normalize the rest silently.
    let valid_nanos = value.nanos.unsigned_abs() < 1_000_000_000
        && !(value.seconds > 0 && value.nanos < 0)
        && !(value.seconds < 0 && value.nanos > 0);
    if !valid_nanos {
        return Err(FieldViolation::new(
            field,
            "is not a valid Duration (nanos must be within ±999,999,999 and of the sign of seconds)",
        ));
    }
    let wait = std::time::Duration::try_from(value).map_err(|_| invalid())?;
    if wait > MAX_WAIT {
        return Err(invalid());
    }
    Ok(Some(wait))
}

/// A module run's state in the contract.
impl From<crate::model::RunState> for pb::RunState {
    fn from(state: crate::model::RunState) -> Self {
        use crate::model::RunState;
        match state {
            RunState::Running => Self::Running,
            RunState::Succeeded => Self::Succeeded,
            RunState::Failed => Self::Failed,
            RunState::Cancelled => Self::Cancelled,
        }
    }
}

impl From<crate::model::FailureKind> for pb::ModuleFailureKind {
    fn from(kind: crate::model::FailureKind) -> Self {
        use crate::model::FailureKind;
        match kind {
            FailureKind::Error => Self::Error,
            FailureKind::ExitStatus => Self::ExitStatus,
            FailureKind::Signal => Self::Signal,
            FailureKind::InvalidOutput => Self::InvalidOutput,
            FailureKind::OutputTooLarge => Self::OutputTooLarge,
            FailureKind::Timeout => Self::Timeout,
            FailureKind::Cancelled => Self::Cancelled,
            FailureKind::Interrupted => Self::Interrupted,
            FailureKind::SpawnFailed => Self::SpawnFailed,
        }
    }
}

impl From<crate::model::ModuleFailure> for pb::ModuleFailure {
    fn from(failure: crate::model::ModuleFailure) -> Self {
        Self {
            kind: pb::ModuleFailureKind::from(failure.kind).into(),
            message: failure.message,
            exit_code: failure.exit_code,
            signal: failure.signal,
            stderr_tail: failure.stderr_tail,
        }
    }
}

impl From<crate::model::ModuleRun> for pb::GetReturnValueResponse {
    fn from(run: crate::model::ModuleRun) -> Self {
        use crate::model::RunOutcome;
        let state = pb::RunState::from(run.state()).into();
        let (value, failure) = match run.outcome {
            Some(RunOutcome::Succeeded(value)) => (Some(json_to_value(value)), None),
            Some(RunOutcome::Failed(failure) | RunOutcome::Cancelled(failure)) => {
                (None, Some(failure.into()))
            }
            None => (None, None),
        };
        Self {
            run_id: run.id.get(),
            state,
            value,
            failure,
            start_time: Some(run.start_time.into()),
            end_time: run.end_time.map(Into::into),
            acting_user: run.acting_user.into_string(),
        }
    }
}

/// A JSON value as a `google.protobuf.Value`.
pub fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `google.protobuf.Value` as JSON. Numbers that JSON cannot carry (NaN,
/// infinities) become null, as in the protobuf JSON mapping's spirit.
pub fn value_to_json(value: prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::NumberValue(n)) => number_to_json(n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(fields)) => serde_json::Value::Object(struct_to_json(fields)),
    }
}

/// A `google.protobuf.Struct` as a JSON object.
pub fn struct_to_json(fields: prost_types::Struct) -> serde_json::Map<String, serde_json::Value> {
    fields
        .fields
        .into_iter()
        .map(|(k, v)| (k, value_to_json(v)))
        .collect()
}

/// Integral numbers stay integers in JSON (`5`, not `5.0`).
fn number_to_json(n: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < EXACT {
        #[allow(clippy::cast_possible_truncation)]
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// How long the caller's own deadline (`grpc-timeout`) leaves, if it set
/// one.
pub fn call_deadline(metadata: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let header = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = header.split_at(header.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

impl From<crate::principal::Method> for pb::AuthenticationMethod {
    fn from(method: crate::principal::Method) -> Self {
        use crate::principal::Method;
        match method {
            Method::TlsClientCertificate => Self::TlsClientCertificate,
            Method::Jwt => Self::Jwt,
            Method::StaticToken => Self::StaticToken,
            Method::ModuleRun => Self::ModuleRun,
        }
    }
}

/// An optional time of a request.
pub fn time_of(
    field: &str,
    time: Option<prost_types::Timestamp>,
) -> Result<Option<Timestamp>, FieldViolation> {
    let Some(time) = time else {
        return Ok(None);
    };
    let valid = (0..1_000_000_000).contains(&time.nanos)
        && (-62_135_596_800..=253_402_300_799).contains(&time.seconds);
    if !valid {
        return Err(FieldViolation::new(
            field,
            "is not a valid Timestamp (0001-01-01 to 9999-12-31, nanos within 0..999,999,999)",
        ));
    }
    Ok(Some(Timestamp::from_unix_micros(
        time.seconds * 1_000_000 + i64::from(time.nanos / 1000),
    )))
}

/// The page size a request asks for: 0 means the default.
pub fn page_size_of(requested: i32) -> Result<u32, FieldViolation> {
    const DEFAULT_PAGE_SIZE: u32 = 100;
    const MAX_PAGE_SIZE: u32 = 1000;
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) if size <= MAX_PAGE_SIZE => Ok(size),
        _ => Err(FieldViolation::new(
            "page_size",
            "must be between 0 and 1000",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_protobuf_values() {
        let json = serde_json::json!({
            "answer": 42, "ratio": 0.5, "name": "R41", "ok": true, "none": null,
            "list": [1, "two", [3]], "nested": {"deep": {"x": -7}}
        });
        assert_eq!(value_to_json(json_to_value(json.clone())), json);
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (header, expected) in [
            ("5S", std::time::Duration::from_secs(5)),
            ("250m", std::time::Duration::from_millis(250)),
            ("2M", std::time::Duration::from_secs(120)),
            ("1H", std::time::Duration::from_secs(3600)),
            ("900u", std::time::Duration::from_micros(900)),
            ("40n", std::time::Duration::from_nanos(40)),
        ] {
            metadata.insert("grpc-timeout", header.parse().unwrap());
            assert_eq!(call_deadline(&metadata), Some(expected), "{header}");
        }
        metadata.insert("grpc-timeout", "soon".parse().unwrap());
        assert_eq!(call_deadline(&metadata), None);
    }

    #[test]
    fn waits_are_valid_protobuf_durations_up_to_an_hour() {
        let duration = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        assert_eq!(
            wait("timeout", duration(5, 500_000_000)).unwrap(),
            Some(std::time::Duration::from_millis(5500))
        );
        assert_eq!(wait("timeout", None).unwrap(), None);
        for (seconds, nanos) in [
            (0, 1_000_000_000),
            (1, -1),
            (-1, 1),
            (0, -1),
            (3601, 0),
            (0, i32::MIN),
        ] {
            let violation = wait("timeout", duration(seconds, nanos)).unwrap_err();
            assert_eq!(violation.field, "timeout", "{seconds}s {nanos}ns");
        }
    }
}

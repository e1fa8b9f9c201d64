//! Module values: `serde_json::Value` in the public API,
//! `google.protobuf.Value` / `Struct` on the wire.
//!
//! The mapping is protobuf's JSON mapping: null, booleans, strings, arrays
//! and objects map one to one; numbers travel as `f64`. A number read back
//! that is integral and within ±2⁵³ becomes a JSON integer again, so `5`
//! round-trips as `5`, not `5.0`; integers beyond ±2⁵³ lose precision, as in
//! any JSON-over-protobuf API. Non-finite numbers, which JSON cannot hold,
//! become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, as protobuf's
//! JSON mapping writes them.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as ProtoValue};
use serde_json::{Map, Number, Value};

use crate::error::{Error, FieldViolation, Result};

/// The largest magnitude up to which every integer is exact in an `f64`.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// A JSON value as a protobuf `Value`.
pub(crate) fn to_proto(value: Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_proto).collect(),
        }),
        Value::Object(map) => Kind::StructValue(object_to_struct(map)),
    };
    ProtoValue { kind: Some(kind) }
}

/// A protobuf `Value` as JSON; an unset kind is `null`.
pub(crate) fn from_proto(value: ProtoValue) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(from_proto).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(struct_to_object(s)),
    }
}

/// Module parameters as the request's `Struct`: an object, or `null` for no
/// parameters.
///
/// # Errors
/// [`Error::InvalidArgument`] (raised here, nothing is sent) when `params`
/// is neither an object nor `null`.
pub(crate) fn parameters(params: Value) -> Result<Option<Struct>> {
    match params {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(object_to_struct(map))),
        other => Err(Error::InvalidArgument {
            message: format!(
                "module parameters must be a JSON object or null, not {}",
                json_type(&other)
            ),
            violations: vec![FieldViolation {
                field: "parameters".to_owned(),
                description: "must be a JSON object".to_owned(),
            }],
        }),
    }
}

fn object_to_struct(map: Map<String, Value>) -> Struct {
    Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_proto(v))).collect(),
    }
}

fn struct_to_object(s: Struct) -> Map<String, Value> {
    s.fields
        .into_iter()
        .map(|(k, v)| (k, from_proto(v)))
        .collect()
}

#[allow(clippy::cast_possible_truncation)] // guarded: integral and within ±2^53
fn number(n: f64) -> Value {
    if n.is_nan() {
        return Value::String("NaN".to_owned());
    }
    if n.is_infinite() {
        return Value::String(if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned());
    }
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_values_round_trip_through_protobuf() {
        let value = json!({
            "name": "R41",
            "count": 5,
            "negative": -12,
            "ratio": 0.25,
            "ok": true,
            "nothing": null,
            "list": [1, "two", [3.5], {"four": false}],
            "nested": {"empty_list": [], "empty_object": {}},
        });
        assert_eq!(from_proto(to_proto(value.clone())), value);
    }

    #[test]
    fn scalars_map_to_the_matching_protobuf_kinds() {
        assert_eq!(
            to_proto(json!(null)).kind,
            Some(Kind::NullValue(prost_types::NullValue::NullValue.into()))
        );
        assert_eq!(to_proto(json!(true)).kind, Some(Kind::BoolValue(true)));
        assert_eq!(to_proto(json!(7)).kind, Some(Kind::NumberValue(7.0)));
        assert_eq!(
            to_proto(json!("x")).kind,
            Some(Kind::StringValue("x".into()))
        );
        let Some(Kind::StructValue(s)) = to_proto(json!({"a": 1})).kind else {
            panic!("an object is a Struct");
        };
        assert_eq!(s.fields["a"].kind, Some(Kind::NumberValue(1.0)));
    }

    #[test]
    fn integral_numbers_come_back_as_integers() {
        let five = from_proto(ProtoValue {
            kind: Some(Kind::NumberValue(5.0)),
        });
        assert!(five.is_i64(), "{five:?}");
        assert_eq!(five, json!(5));
        let half = from_proto(ProtoValue {
            kind: Some(Kind::NumberValue(0.5)),
        });
        assert_eq!(half, json!(0.5));
        let huge = from_proto(ProtoValue {
            kind: Some(Kind::NumberValue(1e300)),
        });
        assert!(huge.is_f64(), "beyond 2^53 stays a float: {huge:?}");
    }

    #[test]
    fn non_finite_numbers_and_unset_kinds_have_json_forms() {
        let of = |n: f64| {
            from_proto(ProtoValue {
                kind: Some(Kind::NumberValue(n)),
            })
        };
        assert_eq!(of(f64::NAN), json!("NaN"));
        assert_eq!(of(f64::INFINITY), json!("Infinity"));
        assert_eq!(of(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(from_proto(ProtoValue { kind: None }), Value::Null);
    }

    #[test]
    fn parameters_are_an_object_or_nothing() {
        assert_eq!(parameters(Value::Null).unwrap(), None);
        let s = parameters(json!({"customer": "C-1", "limit": 3}))
            .unwrap()
            .unwrap();
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields["limit"].kind, Some(Kind::NumberValue(3.0)));
        let Err(Error::InvalidArgument {
            violations,
            message,
        }) = parameters(json!([1, 2]))
        else {
            panic!("an array is not a parameter object");
        };
        assert_eq!(violations[0].field, "parameters");
        assert!(message.contains("an array"), "{message}");
    }
}

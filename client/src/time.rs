//! Conversions between the contract's `google.protobuf.Timestamp` /
//! `Duration` and `std::time`.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// A required timestamp of a response: missing or out of range is an
/// invalid response.
pub(crate) fn required_time(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<SystemTime> {
    optional_time(field, value)?.ok_or_else(|| Error::invalid_response(format!("{field} is unset")))
}

/// An optional timestamp of a response (unset: `None`).
pub(crate) fn optional_time(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<SystemTime>> {
    value
        .map(|ts| {
            SystemTime::try_from(ts)
                .map_err(|e| Error::invalid_response(format!("{field} is out of range: {e}")))
        })
        .transpose()
}

/// A duration for a request. Durations beyond the protobuf range (about
/// 10,000 years) are clamped; the server refuses anything over its own
/// maximum with a field violation.
pub(crate) fn to_proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration).unwrap_or(prost_types::Duration {
        seconds: 315_576_000_000,
        nanos: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_unset_ones_are_reported() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let ts = prost_types::Timestamp::from(now);
        assert_eq!(required_time("start_time", Some(ts)).unwrap(), now);
        assert_eq!(optional_time("end_time", None).unwrap(), None);
        let error = required_time("start_time", None).unwrap_err();
        assert!(error.to_string().contains("start_time"), "{error}");
    }

    #[test]
    fn durations_convert_and_huge_ones_clamp() {
        let d = to_proto_duration(Duration::from_millis(1500));
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
        assert_eq!(to_proto_duration(Duration::MAX).seconds, 315_576_000_000);
    }
}

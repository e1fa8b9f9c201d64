//! Which calls are retried, and how long to wait between attempts.
//!
//! Only `UNAVAILABLE` is retried. Reads, and the writes the contract calls
//! idempotent (`EndSession`, `CloseClientlessSession`, `TouchSession`), are
//! retried on any `UNAVAILABLE`. Other writes are retried only when the
//! server says `STORE_UNAVAILABLE`, which guarantees that nothing was
//! changed; a transport failure leaves their outcome unknown, so they are
//! never retried blindly.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use sessiond_proto::v1::ErrorReason;
use tonic::{Code, Status};

use crate::error::error_reason;

/// How often and how patiently retryable calls are retried.
///
/// ```
/// use std::time::Duration;
/// use sessiond_client::RetryPolicy;
///
/// let patient = RetryPolicy {
///     max_attempts: 6,
///     initial_backoff: Duration::from_millis(100),
///     max_backoff: Duration::from_secs(2),
/// };
/// assert!(patient.max_attempts > RetryPolicy::default().max_attempts);
/// assert_eq!(RetryPolicy::never().max_attempts, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with every retry.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting about 50 ms, 100 ms and 200 ms in between.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is attempted once.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): exponential,
    /// capped, with "equal jitter" (between half and all of it) so that
    /// clients that failed together do not retry together.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }
}

/// A number in [0, 1), different on every call (no RNG dependency: the
/// standard library's randomly keyed hasher is random enough for jitter).
fn jitter() -> f64 {
    #[allow(clippy::cast_precision_loss)] // 53 random bits are plenty
    let bits = (RandomState::new().hash_one(0u8) >> 11) as f64;
    bits / (1u64 << 53) as f64
}

/// How a call may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// Changes nothing: retried on any `UNAVAILABLE`.
    Read,
    /// A write the contract makes idempotent: retried on any `UNAVAILABLE`.
    IdempotentWrite,
    /// Any other write: retried only on `STORE_UNAVAILABLE`.
    Write,
}

impl CallKind {
    /// Whether a call of this kind that failed with `status` may be sent
    /// again.
    pub(crate) fn may_retry(self, status: &Status) -> bool {
        if status.code() != Code::Unavailable {
            return false;
        }
        match self {
            Self::Read | Self::IdempotentWrite => true,
            Self::Write => error_reason(status) == Some(ErrorReason::StoreUnavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;
    use crate::error::ERROR_DOMAIN;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = policy.backoff(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = policy.backoff(30);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350));
        }
    }

    #[test]
    fn only_unavailable_is_retried_and_writes_only_when_nothing_changed() {
        let store_unavailable = Status::with_error_details(
            Code::Unavailable,
            "store",
            ErrorDetails::with_error_info(
                "STORE_UNAVAILABLE",
                ERROR_DOMAIN,
                HashMap::<String, String>::new(),
            ),
        );
        let transport = Status::unavailable("connection reset");
        let not_found = Status::not_found("no");
        for kind in [CallKind::Read, CallKind::IdempotentWrite] {
            assert!(kind.may_retry(&store_unavailable));
            assert!(kind.may_retry(&transport));
            assert!(!kind.may_retry(&not_found));
        }
        assert!(CallKind::Write.may_retry(&store_unavailable));
        assert!(!CallKind::Write.may_retry(&transport));
        assert!(!CallKind::Write.may_retry(&not_found));
    }
}

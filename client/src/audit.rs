//! The audit trail's evidence: whether the event log's hash chain holds
//! ([`LedgerVerification`]) and its head and compaction checkpoint
//! ([`Checkpoint`]), for an operator to keep elsewhere and compare later.

use sessiond_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::event::LedgerHash;

/// What [`Client::verify_ledger`](crate::Client::verify_ledger) found (the
/// contract's `VerifyLedgerResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerVerification {
    /// How many events were verified.
    pub verified_events: i64,
    /// The first event found altered, missing or out of chain; `None` when
    /// the range verified.
    pub first_bad: Option<LedgerFault>,
    /// The revision of the log's head.
    pub head_revision: i64,
    /// The hash of the log's head.
    pub head_hash: LedgerHash,
}

impl LedgerVerification {
    /// Whether every event of the range is intact and chained to the one
    /// before it.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Where and how the hash chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerFault {
    /// The first revision found altered, missing or out of chain.
    pub revision: i64,
    /// What is wrong there, in words.
    pub problem: String,
}

impl TryFrom<pb::VerifyLedgerResponse> for LedgerVerification {
    type Error = Error;

    fn try_from(response: pb::VerifyLedgerResponse) -> Result<Self> {
        let first_bad = if response.ok {
            None
        } else {
            Some(LedgerFault {
                revision: response.first_bad_revision,
                problem: response.problem,
            })
        };
        Ok(Self {
            verified_events: response.verified_events,
            first_bad,
            head_revision: response.head_revision,
            head_hash: LedgerHash::required("head_hash", &response.head_hash)?,
        })
    }
}

/// The head of the event log and its compaction checkpoint (the contract's
/// `GetCheckpointResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The revision of the log's last event (0 when there is none).
    pub head_revision: i64,
    /// That event's hash.
    pub head_hash: LedgerHash,
    /// Events up to this revision were compacted away (0: none were).
    pub compact_revision: i64,
    /// The hash of the event at `compact_revision`: the `prev_hash` of the
    /// oldest retained event.
    pub compact_hash: LedgerHash,
}

impl TryFrom<pb::GetCheckpointResponse> for Checkpoint {
    type Error = Error;

    fn try_from(response: pb::GetCheckpointResponse) -> Result<Self> {
        Ok(Self {
            head_revision: response.head_revision,
            head_hash: LedgerHash::required("head_hash", &response.head_hash)?,
            compact_revision: response.compact_revision,
            compact_hash: LedgerHash::required("compact_hash", &response.compact_hash)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_names_the_first_bad_revision_only_when_not_ok() {
        let ok = LedgerVerification::try_from(pb::VerifyLedgerResponse {
            ok: true,
            verified_events: 3,
            head_revision: 3,
            head_hash: vec![3; 32],
            ..pb::VerifyLedgerResponse::default()
        })
        .unwrap();
        assert!(ok.is_ok());
        let broken = LedgerVerification::try_from(pb::VerifyLedgerResponse {
            ok: false,
            verified_events: 1,
            first_bad_revision: 2,
            head_revision: 3,
            head_hash: vec![3; 32],
            problem: "hash mismatch".into(),
        })
        .unwrap();
        assert!(!broken.is_ok());
        assert_eq!(
            broken.first_bad,
            Some(LedgerFault {
                revision: 2,
                problem: "hash mismatch".into()
            })
        );
        assert!(
            LedgerVerification::try_from(pb::VerifyLedgerResponse::default()).is_err(),
            "a head hash is 32 bytes"
        );
    }
}

//! Verifying the ledger: recomputing the hash chain over a range of
//! revisions, from the event before it (or the compaction checkpoint).

use crate::model::Result;
use crate::store::{EventQuery, EventStore, Head, LedgerHead};

/// Events read per query.
const PAGE: u32 = 10_000;

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// How many events were verified (before the first bad one).
    pub verified_events: i64,
    /// The first revision found altered, missing or out of chain, and
    /// what is wrong with it; `None` when the range is intact.
    pub first_bad: Option<(i64, String)>,
    /// The head and checkpoint of the log when the verification began.
    pub head: LedgerHead,
}

/// Verifies the events from `from` to `to` (0: the oldest retained, the
/// head): each one's hash over its contents and the hash before it, no
/// revision missing, and — when the range reaches the head — the head
/// matching the last event.
///
/// # Errors
/// [`crate::Error::StoreUnavailable`].
pub async fn verify(store: &dyn EventStore, from: i64, to: i64) -> Result<Verification> {
    let head = store.ledger_head().await?;
    let oldest = head.compacted.revision + 1;
    let start = from.max(oldest);
    let end = if to <= 0 || to > head.head.revision {
        head.head.revision
    } else {
        to
    };
    let mut verification = Verification {
        head,
        ..Verification::default()
    };
    if start > end {
        return Ok(verification);
    }
    let (mut prev_revision, mut prev_hash) = if start == oldest {
        (head.compacted.revision, head.compacted.hash.to_vec())
    } else {
        let before = store.events(&EventQuery::after(start - 2, 1)).await?;
        match before.first() {
            Some(event) if event.revision == start - 1 => (event.revision, event.hash.clone()),
            _ => match compacted_past(store, start - 1).await? {
                Some(checkpoint) => (checkpoint.revision, checkpoint.hash.to_vec()),
                None => {
                    verification.first_bad = Some((start - 1, "the event is missing".to_owned()));
                    return Ok(verification);
                }
            },
        }
    };
    while prev_revision < end {
        let query = EventQuery {
            before: Some(end + 1),
            ..EventQuery::after(prev_revision, PAGE)
        };
        let page = store.events(&query).await?;
        if page
            .first()
            .is_none_or(|event| event.revision != prev_revision + 1)
            && let Some(checkpoint) = compacted_past(store, prev_revision + 1).await?
        {
            // Compacted away while this verification read them: what is
            // left goes on from the new checkpoint.
            (prev_revision, prev_hash) = (checkpoint.revision, checkpoint.hash.to_vec());
            continue;
        }
        if page.is_empty() {
            break;
        }
        for event in page {
            if let Some(problem) = event.fault(prev_revision, &prev_hash) {
                let bad = event.revision.min(prev_revision + 1);
                verification.first_bad = Some((bad, problem));
                return Ok(verification);
            }
            verification.verified_events += 1;
            prev_revision = event.revision;
            prev_hash = event.hash;
        }
    }
    if prev_revision < end {
        verification.first_bad = Some((prev_revision + 1, "the event is missing".to_owned()));
    } else if prev_revision == end && end == head.head.revision && prev_hash != head.head.hash {
        verification.first_bad = Some((
            end,
            "the head's hash is not the last event's: the log was cut or rewritten".to_owned(),
        ));
    }
    Ok(verification)
}

/// The compaction checkpoint, if events up to `revision` (at least) have
/// been compacted away: a reader that finds them missing after it began
/// raced the retention, not a tampering.
///
/// # Errors
/// [`crate::Error::StoreUnavailable`].
async fn compacted_past(store: &dyn EventStore, revision: i64) -> Result<Option<Head>> {
    let compacted = store.ledger_head().await?.compacted;
    Ok((compacted.revision >= revision).then_some(compacted))
}

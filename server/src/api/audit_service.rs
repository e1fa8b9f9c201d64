//! `sessiond.v1.AuditService`: the event log as evidence, for callers
//! granted `read_audit`.

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::audit_service_server::AuditService;
use tonic::{Request, Response, Status};

use super::convert::{page_size_of, time_of};
use crate::events::EventLog;
use crate::model::{EventKind, FieldViolation, SessionId, UserId, Validate};
use crate::principal;
use crate::store::EventQuery;

/// The `AuditService` implementation.
#[derive(Clone, Debug)]
pub struct AuditApi {
    events: EventLog,
}

impl AuditApi {
    /// Serves `events`.
    #[must_use]
    pub fn new(events: EventLog) -> Self {
        Self { events }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let caller = principal::of(&request);
        let pb::ListEventsRequest {
            session_id,
            user,
            subject,
            kinds,
            start_time,
            end_time,
            after_revision,
            page_size,
            page_token,
            newest_first,
        } = request.into_inner();
        let session_id = if session_id == 0 {
            Ok(None)
        } else {
            SessionId::parse("session_id", session_id).map(Some)
        };
        let user = if user.is_empty() {
            Ok(None)
        } else {
            UserId::parse("user", user).map(|user| Some(user.into_string()))
        };
        let after = if after_revision < 0 {
            Err(FieldViolation::new("after_revision", "must be >= 0"))
        } else {
            Ok(after_revision)
        };
        let (session_id, user, kinds, start_time, end_time, after, limit, token) = (
            session_id,
            user,
            kinds_of(&kinds),
            time_of("start_time", start_time),
            time_of("end_time", end_time),
            after,
            page_size_of(page_size),
            page_token_of(&page_token),
        )
            .validate()?;
        // A page continues after (or, newest first, before) the last
        // revision of the one before.
        let (after, before) = match (token, newest_first) {
            (Some(token), false) => (after.max(token), None),
            (Some(token), true) => (after, Some(token)),
            (None, _) => (after, None),
        };
        let query = EventQuery {
            after,
            before,
            session_id,
            user,
            subject: (!subject.is_empty()).then_some(subject),
            kinds,
            start_time,
            end_time,
            newest_first,
            limit: limit + 1,
        };
        let (mut events, compact_revision) = self.events.list(&caller, &query).await?;
        let next_page_token = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events
                .last()
                .map(|event| event.revision.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListEventsResponse {
            events,
            next_page_token,
            compact_revision,
        }))
    }

    async fn verify_ledger(
        &self,
        request: Request<pb::VerifyLedgerRequest>,
    ) -> Result<Response<pb::VerifyLedgerResponse>, Status> {
        let caller = principal::of(&request);
        let pb::VerifyLedgerRequest {
            from_revision,
            to_revision,
        } = request.into_inner();
        let revision = |field: &str, value: i64| {
            if value < 0 {
                Err(FieldViolation::new(field, "must be >= 0"))
            } else {
                Ok(value)
            }
        };
        let (from, to) = (
            revision("from_revision", from_revision),
            revision("to_revision", to_revision),
        )
            .validate()?;
        let verification = self.events.verify(&caller, from, to).await?;
        let (first_bad_revision, problem) = verification.first_bad.unwrap_or_default();
        Ok(Response::new(pb::VerifyLedgerResponse {
            ok: first_bad_revision == 0,
            verified_events: verification.verified_events,
            first_bad_revision,
            head_revision: verification.head.head.revision,
            head_hash: verification.head.head.hash.to_vec(),
            problem,
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        let caller = principal::of(&request);
        let head = self.events.checkpoint(&caller).await?;
        Ok(Response::new(pb::GetCheckpointResponse {
            head_revision: head.head.revision,
            head_hash: head.head.hash.to_vec(),
            compact_revision: head.compacted.revision,
            compact_hash: head.compacted.hash.to_vec(),
        }))
    }
}

/// The kinds a request filters by.
fn kinds_of(kinds: &[i32]) -> Result<Vec<EventKind>, FieldViolation> {
    kinds
        .iter()
        .map(|&kind| {
            let kind = match pb::EventKind::try_from(kind) {
                Ok(pb::EventKind::SessionStarted) => EventKind::SessionStarted,
                Ok(pb::EventKind::ClientlessSessionOpened) => EventKind::ClientlessSessionOpened,
                Ok(pb::EventKind::SessionClosing) => EventKind::SessionClosing,
                Ok(pb::EventKind::SessionEnded) => EventKind::SessionEnded,
                Ok(pb::EventKind::UserContextSet) => EventKind::UserContextSet,
                Ok(pb::EventKind::UserContextPushed) => EventKind::UserContextPushed,
                Ok(pb::EventKind::UserContextPopped) => EventKind::UserContextPopped,
                Ok(pb::EventKind::RunStarted) => EventKind::RunStarted,
                Ok(pb::EventKind::RunConcluded) => EventKind::RunConcluded,
                Ok(pb::EventKind::CallRefused) => EventKind::CallRefused,
                Ok(pb::EventKind::Unspecified | pb::EventKind::SessionSnapshot) | Err(_) => {
                    return Err(FieldViolation::new(
                        "kinds",
                        format!("{kind} is not a kind of event the log records"),
                    ));
                }
            };
            Ok(kind)
        })
        .collect()
}

/// Where a page starts: the revision its token names.
fn page_token_of(token: &str) -> Result<Option<i64>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse::<i64>()
        .ok()
        .filter(|&revision| revision > 0)
        .map(Some)
        .ok_or_else(|| FieldViolation::new("page_token", "is not a token this server issued"))
}

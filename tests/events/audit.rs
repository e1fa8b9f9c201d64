//! The audit trail: ListEvents' filters and pages (forward and newest
//! first); VerifyLedger on an intact log and on one tampered with in each
//! way (an edited body, a removed event, a removed last event, an edited
//! hash); only callers granted `read_audit` read it; retention compacts old
//! events behind a checkpoint from which the rest still verifies.

use std::path::Path;
use std::time::Duration;

use sessiond::clock::Clock;
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::EventKind as K;
use tonic::Code;

use super::common::{ManualClock, TestServer, assert_error, eventually, metadata};
use super::log::secured;
use super::{
    Acks, Backend, Clients, Watch, as_caller, assert_chained, churn, events_after, head, list_all,
    revisions, server_on,
};

/// Phase one's changes, then the clock moves, then phase two's: ListEvents
/// finds each filter's events (compared with filtering the whole log), and
/// pages through them in either order.
async fn list_events_filters_and_pages(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let (security, tokens) = secured(files.path());
    let clock = ManualClock::new();
    let server = server_on(
        backend,
        "list_events_filters",
        |config| config.security = security,
        |builder| builder.clock(clock.clone()),
    )
    .await;
    let mut c = Clients::on(server.channel().await);
    let (service, r41, auditor) = (
        Some(tokens.service.as_str()),
        Some(tokens.r41.as_str()),
        Some(tokens.auditor.as_str()),
    );
    let start = |user: &str| pb::StartSessionRequest {
        user: user.into(),
        client: String::new(),
    };
    let mut start_as = async |user: &str| {
        c.sessions
            .start_session(as_caller(service, start(user)))
            .await
            .unwrap()
            .into_inner()
            .session_id
    };
    let a = start_as("R41").await;
    let b = start_as("R42").await;
    let clientless = c
        .sessions
        .open_clientless_session(as_caller(
            service,
            pb::OpenClientlessSessionRequest { user: "R41".into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .session_id;
    c.contexts
        .set_user_context(as_caller(
            r41,
            pb::SetUserContextRequest {
                session_id: a,
                user: "R41".into(),
            },
        ))
        .await
        .unwrap();
    let phase_one = list_all(&mut c.audit, auditor, pb::ListEventsRequest::default()).await;
    let phase_one_end = phase_one.last().unwrap().revision;

    clock.advance(Duration::from_secs(600));
    let later = clock.now();
    c.contexts
        .push_user_context(as_caller(
            service,
            pb::PushUserContextRequest {
                session_id: b,
                user: "R43".into(),
            },
        ))
        .await
        .unwrap();
    c.sessions
        .end_session(as_caller(r41, pb::EndSessionRequest { session_id: a }))
        .await
        .unwrap();
    c.sessions
        .close_clientless_session(as_caller(
            service,
            pb::CloseClientlessSessionRequest {
                session_id: clientless,
                grace: None,
            },
        ))
        .await
        .unwrap();

    let all = list_all(&mut c.audit, auditor, pb::ListEventsRequest::default()).await;
    assert_chained(&all);
    let later = prost_types::Timestamp::from(later);
    for event in &all[phase_one.len()..] {
        assert_eq!(event.time, Some(later), "events carry the server's clock");
    }
    let mut audit = c.audit.clone();
    let mut list = async |filter: pb::ListEventsRequest| {
        let listed = list_all(&mut audit, auditor, filter).await;
        assert!(!listed.is_empty(), "a filter that finds something");
        listed
    };
    let only = |keep: &dyn Fn(&pb::Event) -> bool| {
        all.iter()
            .filter(|e| keep(e))
            .cloned()
            .collect::<Vec<pb::Event>>()
    };
    let filter = pb::ListEventsRequest::default;

    let of_a = list(pb::ListEventsRequest {
        session_id: a,
        ..filter()
    })
    .await;
    assert_eq!(of_a, only(&|e| e.session_id == a));
    let of_r41 = list(pb::ListEventsRequest {
        user: "R41".into(),
        ..filter()
    })
    .await;
    assert_eq!(of_r41, only(&|e| e.user == "R41"));
    assert!(of_r41.iter().any(|e| e.session_id == clientless));
    let by_r41 = list(pb::ListEventsRequest {
        subject: "R41".into(),
        ..filter()
    })
    .await;
    assert_eq!(
        by_r41.iter().map(pb::Event::kind).collect::<Vec<_>>(),
        [K::UserContextSet, K::SessionEnded]
    );
    let of_kinds = list(pb::ListEventsRequest {
        kinds: vec![K::SessionEnded.into(), K::UserContextPushed.into()],
        ..filter()
    })
    .await;
    assert_eq!(
        of_kinds,
        only(&|e| matches!(e.kind(), K::SessionEnded | K::UserContextPushed))
    );
    let since = list(pb::ListEventsRequest {
        start_time: Some(later),
        ..filter()
    })
    .await;
    assert_eq!(since, only(&|e| e.revision > phase_one_end));
    let before = list(pb::ListEventsRequest {
        end_time: Some(later),
        ..filter()
    })
    .await;
    assert_eq!(before, phase_one);
    let after = list(pb::ListEventsRequest {
        after_revision: phase_one_end,
        ..filter()
    })
    .await;
    assert_eq!(after, since);
    let together = list(pb::ListEventsRequest {
        user: "R41".into(),
        kinds: vec![K::SessionEnded.into()],
        start_time: Some(later),
        ..filter()
    })
    .await;
    assert_eq!(
        together,
        only(&|e| e.user == "R41" && e.kind() == K::SessionEnded)
    );
    assert_eq!(together.len(), 2, "A ended, the clientless one closed");

    // Pages, forward and newest first, with and without a filter.
    let paged = list(pb::ListEventsRequest {
        page_size: 2,
        ..filter()
    })
    .await;
    assert_eq!(paged, all);
    let first = c
        .audit
        .list_events(as_caller(
            auditor,
            pb::ListEventsRequest {
                page_size: 2,
                ..filter()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revisions(&first.events), revisions(&all[..2]));
    assert!(!first.next_page_token.is_empty());
    let newest = list(pb::ListEventsRequest {
        page_size: 3,
        newest_first: true,
        ..filter()
    })
    .await;
    assert_eq!(newest, all.iter().rev().cloned().collect::<Vec<_>>());
    let newest_of_r41 = list(pb::ListEventsRequest {
        user: "R41".into(),
        page_size: 1,
        newest_first: true,
        ..filter()
    })
    .await;
    assert_eq!(newest_of_r41, of_r41.into_iter().rev().collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn list_events_filters_and_pages_on_sqlite() {
    list_events_filters_and_pages(Backend::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn list_events_filters_and_pages_on_postgres() {
    list_events_filters_and_pages(Backend::Postgres).await;
}

#[tokio::test]
async fn only_callers_granted_read_audit_read_the_audit_trail() {
    let files = tempfile::tempdir().unwrap();
    let (security, tokens) = secured(files.path());
    let server = TestServer::start_with(|config| config.security = security).await;
    let mut c = Clients::on(server.channel().await);
    for token in [
        None,
        Some(tokens.service.as_str()),
        Some(tokens.r41.as_str()),
    ] {
        let (code, reason) = match token {
            None => (Code::Unauthenticated, "UNAUTHENTICATED"),
            Some(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
        };
        let listed = c
            .audit
            .list_events(as_caller(token, pb::ListEventsRequest::default()))
            .await;
        let refused = assert_error(listed, code, reason);
        if token.is_some() {
            assert_eq!(
                metadata(&refused, "permission").as_deref(),
                Some("read_audit")
            );
        }
        let verified = c
            .audit
            .verify_ledger(as_caller(token, pb::VerifyLedgerRequest::default()))
            .await;
        assert_error(verified, code, reason);
        let checkpoint = c
            .audit
            .get_checkpoint(as_caller(token, pb::GetCheckpointRequest {}))
            .await;
        assert_error(checkpoint, code, reason);
    }
    let auditor = Some(tokens.auditor.as_str());
    let refusals = eventually("the nine refusals to be recorded", || {
        let mut audit = c.audit.clone();
        async move {
            let all = list_all(&mut audit, auditor, pb::ListEventsRequest::default()).await;
            (all.len() >= 9).then_some(all)
        }
    })
    .await;
    assert!(refusals.iter().all(|e| e.kind() == K::CallRefused));
    assert_eq!(refusals.len(), 9);
    let verified = c
        .audit
        .verify_ledger(as_caller(auditor, pb::VerifyLedgerRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.verified_events, 9);
    let checkpoint = c
        .audit
        .get_checkpoint(as_caller(auditor, pb::GetCheckpointRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checkpoint.head_revision, 9);
    assert_eq!(checkpoint.head_hash, refusals[8].hash);
    server.stop().await;
}

/// The VerifyLedger answer of the server at `c`.
async fn verify(c: &mut Clients, from: i64, to: i64) -> pb::VerifyLedgerResponse {
    c.audit
        .verify_ledger(pb::VerifyLedgerRequest {
            from_revision: from,
            to_revision: to,
        })
        .await
        .unwrap()
        .into_inner()
}

/// A consistent copy of the SQLite database in `from`, in a new
/// directory (through SQLite, which copes with a stopped server's
/// connections still closing).
fn copy_database(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(from.join("sessiond.db")).unwrap();
    db.execute(
        "VACUUM INTO ?1",
        [to.path().join("sessiond.db").to_str().unwrap()],
    )
    .unwrap();
    to
}

/// A way to tamper with the log of a stopped server.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Flip one bit of an event's body.
    EditBody(i64),
    /// Remove an event.
    Remove(i64),
    /// Replace an event's hash with zeros.
    EditHash(i64),
}

impl Tamper {
    /// Does it to the SQLite file in `dir`.
    fn apply(self, dir: &Path) {
        let db = rusqlite::Connection::open(dir.join("sessiond.db")).unwrap();
        let changed = match self {
            Self::EditBody(revision) => {
                let mut body: Vec<u8> = db
                    .query_row(
                        "SELECT body FROM events WHERE revision = ?1",
                        [revision],
                        |row| row.get(0),
                    )
                    .unwrap();
                let middle = body.len() / 2;
                body[middle] ^= 1;
                db.execute(
                    "UPDATE events SET body = ?1 WHERE revision = ?2",
                    rusqlite::params![body, revision],
                )
            }
            Self::Remove(revision) => {
                db.execute("DELETE FROM events WHERE revision = ?1", [revision])
            }
            Self::EditHash(revision) => db.execute(
                "UPDATE events SET hash = zeroblob(32) WHERE revision = ?1",
                [revision],
            ),
        };
        assert_eq!(changed.unwrap(), 1, "{self:?} changed one row");
    }
}

#[tokio::test]
async fn verify_ledger_finds_the_first_revision_tampered_with() {
    let server = TestServer::start().await;
    let mut c = Clients::on(server.channel().await);
    churn(c.clone(), "R41".into(), 2, Acks::default())
        .await
        .unwrap();
    let events = events_after(&mut c.audit, 0).await;
    let last = events.last().unwrap().clone();
    let intact = verify(&mut c, 0, 0).await;
    assert!(intact.ok, "{intact:?}");
    assert_eq!(intact.verified_events, last.revision);
    assert_eq!(
        (intact.head_revision, &intact.head_hash),
        (last.revision, &last.hash)
    );
    let part = verify(&mut c, 3, 6).await;
    assert!(part.ok && part.verified_events == 4, "{part:?}");
    let dir = server.stop().await;
    let n = last.revision;
    let k = n / 2;
    assert!(k > 1 && k < n);

    let cases = [
        ("a bit of a body flipped", Tamper::EditBody(k), k),
        ("an event removed", Tamper::Remove(k), k),
        ("the last event removed", Tamper::Remove(n), n),
        ("a hash changed", Tamper::EditHash(k), k),
    ];
    for (what, tamper, bad) in cases {
        let copy = copy_database(dir.path());
        tamper.apply(copy.path());
        let server = TestServer::start_in(copy, |_| {}).await;
        let mut c = Clients::on(server.channel().await);
        let found = verify(&mut c, 0, 0).await;
        assert!(!found.ok, "{what}: {found:?}");
        assert_eq!(found.first_bad_revision, bad, "{what}: {found:?}");
        assert!(!found.problem.is_empty());
        assert_eq!(found.verified_events, bad - 1, "{what}");
        server.stop().await;
    }
    // The original, untouched, still verifies.
    let server = TestServer::start_in(dir, |_| {}).await;
    let mut c = Clients::on(server.channel().await);
    assert!(verify(&mut c, 0, 0).await.ok);
    server.stop().await;
}

/// Events older than the retention are compacted away: the checkpoint
/// moves to the last one removed, what is left verifies from it, and a
/// watch from before it is refused with the revision to start after.
async fn retention_compacts_behind_a_checkpoint(backend: Backend) {
    let clock = ManualClock::new();
    let server = server_on(
        backend,
        "retention_compacts",
        |config| {
            config.event_retention = Some(Duration::from_secs(10));
            config.idle_timeout = None;
            config.max_lifetime = None;
        },
        |builder| builder.clock(clock.clone()),
    )
    .await;
    let mut c = Clients::on(server.channel().await);
    churn(c.clone(), "R41".into(), 1, Acks::default())
        .await
        .unwrap();
    let old = events_after(&mut c.audit, 0).await;
    let compacted = old.last().unwrap().clone();
    clock.advance(Duration::from_secs(60));
    churn(c.clone(), "R42".into(), 1, Acks::default())
        .await
        .unwrap();

    let checkpoint = eventually("the old events to be compacted", || {
        let mut audit = c.audit.clone();
        async move {
            let checkpoint = audit
                .get_checkpoint(pb::GetCheckpointRequest {})
                .await
                .unwrap()
                .into_inner();
            (checkpoint.compact_revision > 0).then_some(checkpoint)
        }
    })
    .await;
    assert_eq!(checkpoint.compact_revision, compacted.revision);
    assert_eq!(checkpoint.compact_hash, compacted.hash);
    let kept = c
        .audit
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.compact_revision, compacted.revision);
    assert_eq!(kept.events[0].revision, compacted.revision + 1);
    assert_eq!(kept.events[0].prev_hash, compacted.hash);
    let kept = events_after(&mut c.audit, 0).await;
    assert_eq!(kept.last().unwrap().revision, checkpoint.head_revision);
    for (from, what) in [(0, "the oldest retained"), (1, "a compacted revision")] {
        let verified = verify(&mut c, from, 0).await;
        assert!(verified.ok, "from {what}: {verified:?}");
        assert_eq!(verified.verified_events, i64::try_from(kept.len()).unwrap());
    }

    let too_old = compacted.revision - 1;
    let refused = match Watch::start(
        &mut c.sessions,
        None,
        pb::WatchSessionsRequest {
            after_revision: too_old,
            ..pb::WatchSessionsRequest::default()
        },
    )
    .await
    {
        Ok(mut watch) => watch.next().await.map(drop),
        Err(status) => Err(status),
    };
    let status = assert_error(refused, Code::OutOfRange, "REVISION_COMPACTED");
    assert_eq!(
        metadata(&status, "compact_revision"),
        Some(compacted.revision.to_string())
    );
    let mut resumed = Watch::after(&mut c.sessions, compacted.revision).await;
    let received = resumed.until(checkpoint.head_revision).await;
    assert_eq!(received, kept, "from the checkpoint on, nothing lost");
    assert_eq!(head(&mut c.audit).await, checkpoint.head_revision);
    server.stop().await;
}

#[tokio::test]
async fn retention_compacts_behind_a_checkpoint_on_sqlite() {
    retention_compacts_behind_a_checkpoint(Backend::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn retention_compacts_behind_a_checkpoint_on_postgres() {
    retention_compacts_behind_a_checkpoint(Backend::Postgres).await;
}

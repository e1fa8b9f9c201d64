//! Retention racing the log's readers: events compacted away while a watch
//! is catching up from the log, or while a verification is reading it.
//! Neither may pass the hole off as the log: the watch ends with
//! REVISION_COMPACTED after the contiguous events it sent, and the
//! verification of an intact log stays ok.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sessiond::events::{Cause, verify};
use sessiond::model::{Change, Refusal, Result, Session, Timestamp};
use sessiond::modules::async_trait;
use sessiond::store::{
    EventQuery, EventStore, LedgerHead, Pending, SessionQuery, SqliteStore, StoredEvent,
};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::watch_sessions_response::Message;
use tonic::Code;
use tonic::transport::Channel;

use super::common::{ManualClock, TestServer, assert_error, eventually, metadata};
use super::{Acks, Clients, Watch, churn, churn_concurrently, head};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_catching_up_while_its_next_events_are_compacted_ends_with_revision_compacted() {
    let clock = ManualClock::new();
    let server = TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| {
            config.event_retention = Some(Duration::from_secs(10));
            config.idle_timeout = None;
            config.max_lifetime = None;
        },
        |builder| builder.clock(clock.clone()),
    )
    .await;
    let writers = Clients::on(server.channel().await);
    // More events than the watch's stream buffers hold (64 responses, the
    // server's HTTP/2 send buffer, the small windows below), so that it is
    // still catching up when they are compacted.
    churn_concurrently(std::slice::from_ref(&writers), 8, 100).await;
    let old = head(&mut writers.audit.clone()).await;

    let slow = Channel::from_shared(server.endpoint())
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let mut sessions = Clients::on(slow).sessions;
    let mut watch = Watch::after(&mut sessions, 1).await;
    let Message::Event(first) = watch.next().await.unwrap() else {
        panic!("the watch starts with an event");
    };
    assert_eq!(first.revision, 2);

    // The watch waits for its reader; the old events go.
    clock.advance(Duration::from_secs(60));
    eventually("the old events to be compacted", || {
        let mut audit = writers.audit.clone();
        async move {
            let checkpoint = audit
                .get_checkpoint(pb::GetCheckpointRequest {})
                .await
                .unwrap()
                .into_inner();
            (checkpoint.compact_revision == old).then_some(())
        }
    })
    .await;
    churn(writers.clone(), "later".into(), 1, Acks::default())
        .await
        .unwrap();

    let mut last = first.revision;
    let ended = loop {
        match watch.next().await {
            Ok(Message::Event(event)) => {
                assert_eq!(
                    event.revision,
                    last + 1,
                    "the watch skipped revisions {}..{} that were compacted",
                    last + 1,
                    event.revision - 1
                );
                last = event.revision;
            }
            Ok(_) => {}
            Err(status) => break status,
        }
    };
    assert!(last < old, "the watch was still catching up");
    let status = assert_error(Err::<(), _>(ended), Code::OutOfRange, "REVISION_COMPACTED");
    assert_eq!(metadata(&status, "compact_revision"), Some(old.to_string()));
    server.stop().await;
}

/// A log whose events before `before` are compacted just before the
/// second read of them: a compaction running while a reader pages.
#[derive(Debug)]
struct CompactedWhileRead {
    inner: SqliteStore,
    before: Timestamp,
    reads: AtomicUsize,
}

#[async_trait]
impl EventStore for CompactedWhileRead {
    async fn record_events(&self, changes: Vec<Pending>) -> Result<()> {
        self.inner.record_events(changes).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            while self.inner.compact_events(self.before, 10_000).await? > 0 {}
        }
        self.inner.events(query).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        self.inner.ledger_head().await
    }

    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)> {
        self.inner.unended_sessions_at_head(query).await
    }

    async fn compact_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.inner.compact_events(before, limit).await
    }

    fn commits(&self) -> Arc<sessiond::store::Commits> {
        self.inner.commits()
    }
}

/// `count` refused calls at `time`, as the log records them.
fn refusals(count: usize, time: Timestamp) -> Vec<Pending> {
    (0..count)
        .map(|n| {
            let refusal = Refusal {
                method: "/sessiond.v1.AuditService/ListEvents".to_owned(),
                reason: "PERMISSION_DENIED".to_owned(),
                session_id: None,
                user: Some(format!("R{n}")),
            };
            (Change::refused(refusal, time), Cause::system())
        })
        .collect()
}

#[tokio::test]
async fn a_verification_reading_while_old_events_are_compacted_stays_ok() {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(dir.path().join("sessiond.db"))
        .await
        .unwrap();
    let now = Timestamp::from_unix_micros(1_800_000_000_000_000);
    // More than one page of the verification (10,000 events), the old
    // ones reaching into its second page.
    inner
        .record_events(refusals(15_000, now.minus(Duration::from_secs(3600))))
        .await
        .unwrap();
    inner.record_events(refusals(10_000, now)).await.unwrap();
    let store = CompactedWhileRead {
        inner,
        before: now.minus(Duration::from_secs(60)),
        reads: AtomicUsize::new(0),
    };

    let verified = verify::verify(&store, 0, 0).await.unwrap();
    assert_eq!(verified.first_bad, None, "an intact log: {verified:?}");
    assert!(verified.verified_events >= 10_000, "{verified:?}");
    let checkpoint = store.ledger_head().await.unwrap();
    assert_eq!(checkpoint.compacted.revision, 15_000);
    assert_eq!(checkpoint.head.revision, 25_000);
}

//! The reasons only a watch meets, each provoked on a server of its own:
//! `REVISION_COMPACTED` (a watch after a revision retention removed),
//! `SERVER_SHUTTING_DOWN` (a watch open while its server stops) and
//! `WATCH_TOO_SLOW` (a watch whose caller stopped reading while the log
//! grew past the server's buffer). Each watch is made not to resume
//! ([`RetryPolicy::never`]), so that the client hands over the status the
//! server ended it with.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sessiond_client::{Client, Error, RetryPolicy, WatchEvent, WatchOptions, WatchStream};
use tonic::transport::Endpoint;

use super::common::{ManualClock, TestServer, eventually};

/// The longest a case waits for a watch's next item (a guard against
/// hanging, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// A watch from now that does not resume, once its server has started it
/// (sent its first progress); and the revision it started after.
async fn watch_once(client: &Client) -> (WatchStream, i64) {
    let mut watch = client.watch_sessions(WatchOptions::from_now().retry(RetryPolicy::never()));
    match next(&mut watch).await {
        Ok(WatchEvent::Progress(start)) => (watch, start),
        other => panic!("an idle watch from now sends progress first, not {other:?}"),
    }
}

/// The next item of `watch`.
async fn next(watch: &mut WatchStream) -> sessiond_client::Result<WatchEvent> {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("the watch delivers its next item")
        .expect("a watch ends only after an error")
}

/// The error that ends `watch`, and the revision of the last event it
/// delivered before it.
async fn end_of(watch: &mut WatchStream) -> (Error, Option<i64>) {
    let mut last_event = None;
    loop {
        match next(watch).await {
            Ok(WatchEvent::Event(event)) => last_event = Some(event.revision),
            Ok(_) => {}
            Err(error) => {
                assert!(watch.next().await.is_none(), "the error is the last item");
                return (error, last_event);
            }
        }
    }
}

/// A watch after revision 1 of a log whose events older than the retention
/// were compacted away.
pub async fn revision_compacted() -> Error {
    let clock = ManualClock::new();
    let server = TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| config.event_retention = Some(Duration::from_secs(10)),
        {
            let clock = Arc::clone(&clock);
            |builder| builder.clock(clock)
        },
    )
    .await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    for user in ["R41", "R42", "R43"] {
        client.start_session(user, "errors test").await.unwrap();
    }
    clock.advance(Duration::from_secs(3600));
    // Compaction runs every second at this retention (a tenth of it, at
    // least a second).
    let compacted = eventually("the old events to be compacted", || {
        let client = client.clone();
        async move {
            let checkpoint = client.get_checkpoint().await.unwrap();
            (checkpoint.compact_revision >= 3).then_some(checkpoint.compact_revision)
        }
    })
    .await;
    let mut watch = client.watch_sessions(WatchOptions::after(1).retry(RetryPolicy::never()));
    let (error, delivered) = end_of(&mut watch).await;
    assert_eq!(delivered, None);
    assert!(
        matches!(error, Error::RevisionCompacted { compact_revision: Some(c) } if c == compacted),
        "{error:?}"
    );
    // From the checkpoint on, the log is still there to watch.
    let mut from_checkpoint =
        client.watch_sessions(WatchOptions::after(compacted).retry(RetryPolicy::never()));
    client.start_session("R44", "errors test").await.unwrap();
    let item = next(&mut from_checkpoint).await.unwrap();
    assert!(
        matches!(&item, WatchEvent::Event(e) if e.revision > compacted),
        "{item:?}"
    );
    server.stop().await;
    error
}

/// A watch open while its server shuts down.
pub async fn server_shutting_down() -> Error {
    let server = TestServer::start_with(|config| {
        config.watch_progress_interval = Duration::from_millis(100);
    })
    .await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let (mut watch, start) = watch_once(&client).await;
    let session = client.start_session("R41", "errors test").await.unwrap();
    let stopping = tokio::spawn(server.stop());
    let (error, delivered) = end_of(&mut watch).await;
    stopping.await.unwrap();
    assert!(delivered.is_some_and(|revision| revision > start));
    assert!(
        matches!(error, Error::ServerShuttingDown { revision: Some(r) } if Some(r) >= delivered),
        "every event up to the status's revision was delivered: {error:?}, {session:?}"
    );
    error
}

/// A watch whose caller stops reading while the log grows by far more than
/// the server buffers (a small `watch_buffer`, and a small HTTP/2 window so
/// that little waits in the connection).
pub async fn watch_too_slow() -> Error {
    let server = TestServer::start_with(|config| {
        config.watch_buffer = 2;
        config.watch_progress_interval = Duration::from_millis(100);
        config.max_open_sessions_per_user = None;
    })
    .await;
    let channel = Endpoint::from_shared(server.endpoint())
        .unwrap()
        .initial_stream_window_size(16 * 1024)
        .initial_connection_window_size(16 * 1024)
        .connect()
        .await
        .unwrap();
    let slow = Client::builder().with_channel(channel).unwrap();
    let (mut watch, start) = watch_once(&slow).await;

    // Not reading the watch: 1,000 changes (the watch can hold a few
    // hundred in its channel and the connection before it stops reading
    // the feed; the feed keeps 2 batches).
    let writer = Client::connect(server.endpoint()).await.unwrap();
    let sessions = futures::future::try_join_all(
        ["R41", "R42", "R43", "R44"].map(|user| writer.open_clientless_session(user)),
    )
    .await
    .unwrap();
    futures::future::try_join_all(sessions.iter().map(|session| {
        let writer = writer.clone();
        let id = session.session_id;
        async move {
            for n in 0..249 {
                writer.set_user_context(id, format!("U{n}")).await?;
            }
            Ok::<_, Error>(())
        }
    }))
    .await
    .unwrap();

    let (error, delivered) = end_of(&mut watch).await;
    assert!(
        matches!(error, Error::WatchTooSlow { revision: Some(r) } if Some(r) == delivered && r > start),
        "the status names the last event delivered: {error:?}, last delivered {delivered:?}"
    );
    server.stop().await;
    error
}

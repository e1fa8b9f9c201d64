//! `SessionService/WatchSessions`: a stream of changes that reconnects and
//! resumes where it was after an interruption.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;
use sessiond_proto::v1 as pb;
use tonic::{Code, Streaming};

use super::Client;
use crate::error::{Error, ErrorContext, Result};
use crate::retry::RetryPolicy;
use crate::watch::{Position, WatchEvent, WatchOptions};

impl Client {
    /// Watches sessions: the changes to the sessions `options` selects and
    /// the caller may read, in revision order, as they are committed (and
    /// `progress` when there are none for a while). Nothing is sent until
    /// the stream is first polled; it never ends by itself.
    ///
    /// # Resuming
    /// When the server ends the watch with `UNAVAILABLE`
    /// ([`Error::WatchTooSlow`], [`Error::ServerShuttingDown`],
    /// [`Error::StoreUnavailable`]) or the connection is lost, the stream
    /// connects again (with the backoff of the options' or the client's
    /// [`RetryPolicy`]) and resumes after the last revision it delivered —
    /// an event, progress or the initial state's end — so that it neither
    /// misses nor repeats a change. The initial state is never sent again
    /// once it was delivered; an initial state interrupted before its end
    /// was delivered to no one and is asked for again whole. A watch "from
    /// now" that delivered nothing resumes after the revision the server's
    /// status named, else from now again (changes committed while it was
    /// disconnected are then not delivered). It gives up after as many
    /// attempts in a row without a message as the policy allows, yielding
    /// the last error.
    ///
    /// ```no_run
    /// # async fn run() -> sessiond_client::Result<()> {
    /// use futures::StreamExt;
    /// use sessiond_client::{Client, WatchEvent, WatchOptions};
    ///
    /// let client = Client::connect("http://127.0.0.1:50051").await?;
    /// let mut watch = client.watch_sessions(WatchOptions::from_now().user("R41"));
    /// while let Some(item) = watch.next().await {
    ///     match item? {
    ///         WatchEvent::Event(event) => println!("{} {} {:?}", event.revision, event.kind, event.session_id),
    ///         WatchEvent::Progress(revision) => println!("up to date at {revision}"),
    ///         WatchEvent::InitialStateEnd(_) => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The stream yields one error and ends: [`Error::RevisionCompacted`]
    /// when the server no longer keeps the changes after the revision to
    /// start from; [`Error::InvalidArgument`] for bad options (an initial
    /// state with a revision to start after); [`Error::PermissionDenied`]
    /// and [`Error::Unauthenticated`]; an interruption it could not resume
    /// from.
    #[must_use = "a watch does nothing until its stream is polled"]
    pub fn watch_sessions(&self, options: WatchOptions) -> WatchStream {
        let retry = options.retry.unwrap_or(self.retry);
        let watch = Watch {
            client: self.clone(),
            position: Position::new(options),
            retry,
            connection: None,
            ready: VecDeque::new(),
            failures_in_a_row: 0,
            ended: false,
        };
        WatchStream {
            inner: Box::pin(futures::stream::unfold(watch, Watch::next)),
        }
    }
}

/// The stream of [`Client::watch_sessions`]: [`WatchEvent`]s, until an
/// error it does not resume from (the last item).
pub struct WatchStream {
    inner: BoxStream<'static, Result<WatchEvent>>,
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

/// One watch's state between two items.
struct Watch {
    client: Client,
    /// What was delivered, and so what to ask for next.
    position: Position,
    /// How patiently it reconnects.
    retry: RetryPolicy,
    /// The current call's responses; `None` between connections.
    connection: Option<Streaming<pb::WatchSessionsResponse>>,
    /// Items received and not yet yielded.
    ready: VecDeque<WatchEvent>,
    /// Connections in a row that failed before a message arrived.
    failures_in_a_row: u32,
    /// Whether the last item (an error) was yielded.
    ended: bool,
}

impl Watch {
    /// The next item, and the state after it; `None` after the error that
    /// ended the watch.
    async fn next(mut self) -> Option<(Result<WatchEvent>, Self)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some((Ok(item), self));
            }
            if self.ended {
                return None;
            }
            let error = match self.receive().await {
                Ok(()) => continue,
                Err(error) => error,
            };
            self.connection = None;
            self.position.interrupted(&error);
            self.failures_in_a_row += 1;
            if may_resume(&error) && self.failures_in_a_row < self.retry.max_attempts {
                let wait = self.retry.backoff(self.failures_in_a_row);
                tracing::debug!(error = %error, ?wait, "watch interrupted; resuming");
                tokio::time::sleep(wait).await;
                continue;
            }
            self.ended = true;
            return Some((Err(error), self));
        }
    }

    /// Connects if need be and takes the next message into `ready`.
    async fn receive(&mut self) -> Result<()> {
        let options = self.position.options();
        let (session_id, user) = (options.session_id, options.user.clone());
        let context = ErrorContext {
            session_id,
            user: user.as_deref(),
            ..ErrorContext::default()
        };
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                // No deadline: a watch lasts as long as it is read.
                let request = tonic::Request::new(self.position.request());
                let response = self
                    .client
                    .sessions()
                    .watch_sessions(request)
                    .await
                    .map_err(|status| Error::from_status(status, &context))?;
                self.connection.insert(response.into_inner())
            }
        };
        match connection.message().await {
            Ok(Some(pb::WatchSessionsResponse {
                message: Some(message),
            })) => {
                self.failures_in_a_row = 0;
                self.position.receive(message, &mut self.ready)
            }
            Ok(Some(pb::WatchSessionsResponse { message: None })) => Err(Error::invalid_response(
                "a watch response without a message",
            )),
            Ok(None) => Err(Error::Status(Box::new(tonic::Status::unavailable(
                "the server ended the watch without a status",
            )))),
            Err(status) => Err(Error::from_status(status, &context)),
        }
    }
}

/// Whether a watch that ended with `error` may be resumed: `UNAVAILABLE`
/// (a status the server chose, or a connection that could not be made),
/// or a connection lost mid-stream (a status tonic made from a transport
/// error, which carries that error as its source).
fn may_resume(error: &Error) -> bool {
    if error.code() == Some(Code::Unavailable) {
        return true;
    }
    match error {
        Error::Status(status) => std::error::Error::source(status.as_ref()).is_some(),
        _ => false,
    }
}

//! `AuditService` calls: the event log, page by page or as one stream, its
//! verification and its checkpoint. Every one needs the `read_audit`
//! permission on a server that authenticates its callers.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;
use sessiond_proto::v1 as pb;

use super::{Call, Client};
use crate::audit::{Checkpoint, LedgerVerification};
use crate::error::{Error, ErrorContext, Result};
use crate::event::{Event, EventFilter, EventPage};
use crate::retry::CallKind;

/// The page size [`Client::list_events`] reads with: the most the server
/// returns.
const STREAM_PAGE_SIZE: u32 = 1000;

impl Client {
    /// One page of the events `filter` matches, oldest first (newest first
    /// with [`EventFilter::newest_first`]). `page_size` 0 means the
    /// server's default (100); at most 1000. `page_token` is the previous
    /// page's [`next_page_token`](EventPage::next_page_token), with the same
    /// filter.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] without `read_audit`;
    /// [`Error::InvalidArgument`] for a bad filter, page size or token.
    pub async fn list_events_page(
        &self,
        filter: &EventFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<EventPage> {
        let call = Call::new(
            "ListEvents",
            CallKind::Read,
            ErrorContext {
                session_id: filter.session_id,
                user: filter.user.as_deref(),
                ..ErrorContext::default()
            },
        );
        let request = filter.to_request(page_size, page_token);
        let response = self
            .unary(call, request, |r| {
                let mut c = self.audit();
                async move { c.list_events(r).await }
            })
            .await?;
        EventPage::try_from(response)
    }

    /// Every event `filter` matches, in its order, reading the next page
    /// only when the previous one has been consumed (so an export of the
    /// whole log holds one page at a time). Events committed while the
    /// stream is read are included when they sort after the current page.
    ///
    /// ```no_run
    /// # async fn run() -> sessiond_client::Result<()> {
    /// use futures::TryStreamExt;
    /// use sessiond_client::{Client, EventFilter};
    ///
    /// let client = Client::connect("http://127.0.0.1:50051").await?;
    /// let mut events = client.list_events(EventFilter::new().user("R41"));
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{} {} by {}", event.revision, event.kind, event.subject);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The stream yields one error and ends, as
    /// [`Client::list_events_page`] fails.
    #[must_use = "a listing does nothing until its stream is polled"]
    pub fn list_events(&self, filter: EventFilter) -> EventStream {
        let listing = Listing {
            client: self.clone(),
            filter,
            page_token: None,
            ready: VecDeque::new(),
            last_page: false,
        };
        EventStream {
            inner: Box::pin(futures::stream::unfold(listing, Listing::next)),
        }
    }

    /// Recomputes the event log's hash chain from revision `from` to `to`
    /// (`None`: from the oldest retained event, to the head) and says
    /// whether it holds, and where it breaks when it does not.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] without `read_audit`;
    /// [`Error::InvalidArgument`] for a negative revision.
    pub async fn verify_ledger(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<LedgerVerification> {
        let call = Call::new("VerifyLedger", CallKind::Read, ErrorContext::default());
        let request = pb::VerifyLedgerRequest {
            from_revision: from.unwrap_or(0),
            to_revision: to.unwrap_or(0),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.audit();
                async move { c.verify_ledger(r).await }
            })
            .await?;
        LedgerVerification::try_from(response)
    }

    /// The head of the event log and its compaction checkpoint, for an
    /// operator to keep elsewhere and compare with later.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] without `read_audit`.
    pub async fn get_checkpoint(&self) -> Result<Checkpoint> {
        let call = Call::new("GetCheckpoint", CallKind::Read, ErrorContext::default());
        let response = self
            .unary(call, pb::GetCheckpointRequest {}, |r| {
                let mut c = self.audit();
                async move { c.get_checkpoint(r).await }
            })
            .await?;
        Checkpoint::try_from(response)
    }
}

/// The stream of [`Client::list_events`]: every matching event, until the
/// last page or an error (the last item).
pub struct EventStream {
    inner: BoxStream<'static, Result<Event>>,
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

/// One listing's state between two events.
struct Listing {
    client: Client,
    filter: EventFilter,
    /// The token of the page to read next.
    page_token: Option<String>,
    /// Events read and not yet yielded.
    ready: VecDeque<Event>,
    /// Whether the last page was read (or an error yielded).
    last_page: bool,
}

impl Listing {
    async fn next(mut self) -> Option<(Result<Event>, Self)> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some((Ok(event), self));
            }
            if self.last_page {
                return None;
            }
            let page = self
                .client
                .list_events_page(&self.filter, STREAM_PAGE_SIZE, self.page_token.as_deref())
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    self.last_page = true;
                    return Some((Err(error), self));
                }
            };
            match page.next_page_token {
                Some(next) if Some(&next) == self.page_token.as_ref() => {
                    self.last_page = true;
                    return Some((
                        Err(Error::invalid_response(
                            "ListEvents returned the same page token twice",
                        )),
                        self,
                    ));
                }
                Some(next) => self.page_token = Some(next),
                None => self.last_page = true,
            }
            self.ready.extend(page.events);
        }
    }
}

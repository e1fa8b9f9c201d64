//! What would otherwise hold a shutdown up: streams that never end by
//! themselves, such as a health `Watch`, are ended with UNAVAILABLE as the
//! shutdown starts, so that they do not hold the drain for its whole
//! timeout.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

/// A service whose response streams end with UNAVAILABLE once `shutdown`
/// is cancelled.
#[derive(Clone, Debug)]
pub struct EndAtShutdown<S> {
    inner: S,
    shutdown: CancellationToken,
}

impl<S> EndAtShutdown<S> {
    /// `inner`, its streams ended at `shutdown`.
    pub fn new(inner: S, shutdown: CancellationToken) -> Self {
        Self { inner, shutdown }
    }
}

impl<S: NamedService> NamedService for EndAtShutdown<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for EndAtShutdown<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = self.inner.call(request);
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|body| {
                Body::new(UntilShutdown {
                    inner: body,
                    shutdown: Box::pin(shutdown.cancelled_owned()),
                    ended: false,
                })
            }))
        })
    }
}

/// A response body that ends with UNAVAILABLE trailers at shutdown.
struct UntilShutdown {
    inner: Body,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    ended: bool,
}

impl http_body::Body for UntilShutdown {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("14"));
            trailers.insert(
                "grpc-message",
                HeaderValue::from_static("the server is shutting down"),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

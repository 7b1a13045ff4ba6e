//! The request timeout, counted from the end of the headers with the body's upload included.
//! When it runs out, it tells a slow client (408) from a slow server (503): the request body
//! remembers whether the handler was last left waiting for bytes from the client.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error::HttpError;
use super::watched_body::{BodyObserver, Polled, watched};

/// Runs the rest of the request under the timeout.
#[derive(Debug, Clone)]
pub struct Limit(pub Duration);

/// [`Limit`] in front of the service `S`.
#[derive(Debug, Clone)]
pub struct LimitService<S> {
    limit: Duration,
    inner: S,
}

impl<S> Layer<S> for Limit {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            limit: self.0,
            inner,
        }
    }
}

impl<S> Service<Request> for LimitService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let upload = Upload::default();
        let request = request.map(|body| watched(body, upload.clone()));
        LimitFuture {
            inner: tokio::time::timeout(self.limit, self.inner.call(request)),
            upload,
        }
    }
}

pin_project! {
    /// The answer, or the timeout's.
    pub struct LimitFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        upload: Upload,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for LimitFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(Ok(match ready!(this.inner.poll(cx)) {
            Ok(Ok(response)) => response,
            // The client was too slow sending the body: its fault (408), not the server's (503).
            Err(_) if this.upload.waiting_for_client() => HttpError::BodyTimeout.into_response(),
            Err(_) => HttpError::Timeout.into_response(),
        }))
    }
}

/// Whether the request's handler is waiting for the client to send more of the body.
#[derive(Debug, Clone, Default)]
pub struct Upload(Arc<AtomicBool>);

impl Upload {
    /// True when the last read of the body found nothing yet from the client.
    fn waiting_for_client(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl BodyObserver for Upload {
    fn polled(&self, polled: &Polled) {
        self.0.store(polled.is_pending(), Ordering::Relaxed);
    }
}

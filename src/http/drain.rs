//! What an answer left unread of its request body is read and dropped (up to a bound) before the
//! answer goes out. A server that answers while the client is still sending and then closes makes
//! the kernel reset the connection, and the client loses the answer; Jira's servlet container
//! drains bodies the same way. Refusals come from many places (a guard, a 405, a handler), so the
//! body is kept here, where every answer passes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Most of a body read and dropped after its answer, and how long that may take.
const DISCARD_BYTES: usize = 1 << 20;
const DISCARD_TIME: Duration = Duration::from_secs(1);

/// Drains what the service below left unread.
#[derive(Debug, Clone, Copy)]
pub struct DrainUnread;

/// [`DrainUnread`] in front of the service `S`.
#[derive(Debug, Clone)]
pub struct DrainUnreadService<S>(S);

impl<S> Layer<S> for DrainUnread {
    type Service = DrainUnreadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainUnreadService(inner)
    }
}

impl<S> Service<Request> for DrainUnreadService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DrainFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Most requests carry no body, and pay nothing here.
        if hyper::body::Body::is_end_stream(request.body()) {
            return DrainFuture::Bodiless {
                inner: self.0.call(request),
            };
        }
        let (parts, body) = request.into_parts();
        let kept = Arc::new(Mutex::new(body));
        let answer = self.0.call(Request::from_parts(
            parts,
            Body::new(SharedBody(Arc::clone(&kept))),
        ));
        DrainFuture::WithBody {
            inner: Box::pin(async move {
                let response = answer.await?;
                let mut rest =
                    std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner));
                if !hyper::body::Body::is_end_stream(&rest) {
                    discard(&mut rest).await;
                }
                Ok(response)
            }),
        }
    }
}

type Answer = Result<Response, Infallible>;

pin_project! {
    /// The answer, after the body's rest was drained.
    #[project = Projected]
    pub enum DrainFuture<F> {
        /// No body: the answer as it comes.
        Bodiless { #[pin] inner: F },
        /// A body: the answer, then the drain.
        WithBody { inner: Pin<Box<dyn Future<Output = Answer> + Send>> },
    }
}

impl<F: Future<Output = Answer>> Future for DrainFuture<F> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        match self.project() {
            Projected::Bodiless { inner } => inner.poll(cx),
            Projected::WithBody { inner } => inner.as_mut().poll(cx),
        }
    }
}

async fn discard(body: &mut Body) {
    let drain = async {
        let mut dropped = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            dropped += frame.data_ref().map_or(0, Bytes::len);
            if dropped > DISCARD_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

/// The request's body as the service below reads it, while this layer keeps hold of it.
struct SharedBody(Arc<Mutex<Body>>);

impl SharedBody {
    fn body(&self) -> std::sync::MutexGuard<'_, Body> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl hyper::body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.body()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&*self.body())
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&*self.body())
    }
}

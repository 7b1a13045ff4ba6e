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
use axum::http::{Version, header};
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
        // Most requests carry no body, and pay nothing here. HTTP/2 resets a stream, not the
        // connection, so its refusals need no drain.
        if hyper::body::Body::is_end_stream(request.body()) || request.version() == Version::HTTP_2
        {
            return DrainFuture::Bodiless {
                inner: self.0.call(request),
            };
        }
        // A client waiting for `100 Continue` sends nothing unless asked: reading its body
        // after a refusal would ask for it.
        let awaits_continue = request
            .headers()
            .get(header::EXPECT)
            .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let (parts, body) = request.into_parts();
        let kept = Arc::new(Mutex::new(Kept { body, read: false }));
        let answer = self.0.call(Request::from_parts(
            parts,
            Body::new(SharedBody(Arc::clone(&kept))),
        ));
        DrainFuture::WithBody {
            inner: Box::pin(async move {
                let response = answer.await?;
                // A body still held below (by a task the handler left running) is its own.
                if Arc::strong_count(&kept) > 1 {
                    return Ok(response);
                }
                let Kept {
                    body: mut rest,
                    read,
                } = std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner));
                if !hyper::body::Body::is_end_stream(&rest) && (read || !awaits_continue) {
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

/// The request's body, and whether the service below began to read it.
#[derive(Default)]
struct Kept {
    body: Body,
    read: bool,
}

/// The request's body as the service below reads it, while this layer keeps hold of it.
struct SharedBody(Arc<Mutex<Kept>>);

impl SharedBody {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
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
        let mut kept = self.kept();
        kept.read = true;
        Pin::new(&mut kept.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.kept().body)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.kept().body)
    }
}

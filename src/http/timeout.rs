//! The request timeout, counted from the end of the headers with the body's upload included.
//! When it runs out, it tells a slow client (408) from a slow server (503): the request body
//! remembers whether the handler was last left waiting for bytes from the client.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};

use super::AppState;
use super::error::HttpError;

/// Runs the rest of the request under the timeout.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let upload = Upload::default();
    let request = request.map(|body| upload.watch(body));
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        // The client was too slow sending the body: its fault (408), not the server's (503).
        Err(_) if upload.waiting_for_client() => HttpError::BodyTimeout.into_response(),
        Err(_) => HttpError::Timeout.into_response(),
    }
}

/// Whether the request's handler is waiting for the client to send more of the body.
#[derive(Debug, Clone, Default)]
struct Upload(Arc<AtomicBool>);

impl Upload {
    /// Wraps `body` so that this watch sees it.
    fn watch(&self, body: Body) -> Body {
        Body::new(Watched {
            inner: body,
            waiting: self.0.clone(),
        })
    }

    /// True when the last read of the body found nothing yet from the client.
    fn waiting_for_client(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Watched {
    inner: Body,
    waiting: Arc<AtomicBool>,
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = hyper::body::Body::poll_frame(Pin::new(&mut self.inner), cx);
        self.waiting.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

//! Tells a slow client from a slow server when a request runs out of time: the request body
//! remembers whether the handler was last left waiting for bytes from the client.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};

/// Whether the request's handler is waiting for the client to send more of the body.
#[derive(Debug, Clone, Default)]
pub struct Upload(Arc<AtomicBool>);

impl Upload {
    /// Wraps `body` so that this watch sees it.
    pub fn watch(&self, body: Body) -> Body {
        Body::new(Watched {
            inner: body,
            waiting: self.0.clone(),
        })
    }

    /// True when the last read of the body found nothing yet from the client.
    pub fn waiting_for_client(&self) -> bool {
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

//! A request body that shows every read to an observer: how the timeout tells a slow client from
//! a slow server, and how the journal copies a stored PUT's body.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};

/// What one read of a body gave.
pub type Polled = Poll<Option<Result<Frame<Bytes>, axum::Error>>>;

/// Sees each read of a request body.
pub trait BodyObserver: Send + Unpin + 'static {
    /// Called after every poll of the body, with its outcome.
    fn polled(&self, polled: &Polled);
}

/// `body`, shown to `observer` as it is read.
pub fn watched(body: Body, observer: impl BodyObserver) -> Body {
    Body::new(Watched {
        inner: body,
        observer,
    })
}

struct Watched<O> {
    inner: Body,
    observer: O,
}

impl<O: BodyObserver> hyper::body::Body for Watched<O> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let polled = hyper::body::Body::poll_frame(Pin::new(&mut self.inner), cx);
        self.observer.polled(&polled);
        polled
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

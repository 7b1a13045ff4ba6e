//! A panic while a request is handled becomes a logged 500, and the process keeps serving. Like
//! tower-http's `CatchPanic`, but answering with our own body type, so the layers around it need
//! no conversion.

use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error::panic_response;

/// Catches panics in the service below.
#[derive(Debug, Clone, Copy)]
pub struct CatchPanics;

/// [`CatchPanics`] in front of the service `S`.
#[derive(Debug, Clone)]
pub struct CatchPanicsService<S>(S);

impl<S> Layer<S> for CatchPanics {
    type Service = CatchPanicsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanicsService(inner)
    }
}

impl<S> Service<Request> for CatchPanicsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CatchPanicsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match catch_unwind(AssertUnwindSafe(|| self.0.call(request))) {
            Ok(inner) => CatchPanicsFuture::Running { inner },
            Err(panic) => CatchPanicsFuture::Panicked {
                response: Some(panic_response(panic)),
            },
        }
    }
}

pin_project! {
    /// The answer, or a 500 if producing it panicked.
    #[project = Projected]
    pub enum CatchPanicsFuture<F> {
        /// The handler is running.
        Running { #[pin] inner: F },
        /// The call itself panicked.
        Panicked { response: Option<Response> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for CatchPanicsFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Running { inner } => {
                match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                    Ok(polled) => polled,
                    Err(panic) => Poll::Ready(Ok(panic_response(panic))),
                }
            }
            Projected::Panicked { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| panic_response(Box::new("answer polled twice"))))),
        }
    }
}

//! The two shapes our middleware takes, as tower layers: [`Around`] (look at the request, then at
//! its answer; no allocation of its own) and [`Guard`] (decide, possibly waiting, whether the
//! request goes on; one boxed future per request). Each concern implements one of them
//! in its own file; `http/mod.rs` stacks them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error::HttpError;

/// Middleware that acts before a request and after its answer, without waiting on anything.
pub trait Around: Clone + Send + Sync + 'static {
    /// What `before` hands to `after`.
    type Memo: Send + 'static;

    /// Sees (and may change) the request before the rest of the stack.
    fn before(&self, request: &mut Request) -> Self::Memo;

    /// Sees (and may change) the answer.
    fn after(&self, memo: Self::Memo, response: &mut Response);

    /// A span the rest of the request runs in, if this middleware opens one.
    fn span(_memo: &Self::Memo) -> Option<&tracing::Span> {
        None
    }

    /// The request was dropped before its answer was made, as when its client went away. It
    /// may have changed what is stored all the same.
    fn cancelled(&self, _memo: Self::Memo) {}
}

/// Middleware that decides whether a request goes on, and may wait to decide.
pub trait Guard: Clone + Send + Sync + 'static {
    /// What `check` hands to `after`.
    type Memo: Send + 'static;

    /// Lets the request through, perhaps with more in its extensions, or refuses it.
    fn check(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<(Request, Self::Memo), HttpError>> + Send;

    /// Sees the answer of a request that went through.
    fn after(&self, _memo: Self::Memo, _response: &mut Response) {}
}

/// Two guards in one layer, `A` then `B`: one allocation on a request's way through both.
#[derive(Debug, Clone)]
pub struct Then<A, B>(pub A, pub B);

impl<A: Guard, B: Guard> Guard for Then<A, B> {
    type Memo = (A::Memo, B::Memo);

    async fn check(&self, request: Request) -> Result<(Request, Self::Memo), HttpError> {
        let (request, first) = self.0.check(request).await?;
        let (request, second) = self.1.check(request).await?;
        Ok((request, (first, second)))
    }

    fn after(&self, (first, second): Self::Memo, response: &mut Response) {
        self.1.after(second, response);
        self.0.after(first, response);
    }
}

/// An [`Around`] as a tower layer.
#[derive(Debug, Clone)]
pub struct AroundLayer<A>(pub A);

/// A [`Guard`] as a tower layer.
#[derive(Debug, Clone)]
pub struct GuardLayer<G>(pub G);

/// An [`Around`] in front of the service `S`.
#[derive(Debug, Clone)]
pub struct AroundService<A, S> {
    around: A,
    inner: S,
}

/// A [`Guard`] in front of the service `S`.
#[derive(Debug, Clone)]
pub struct GuardService<G, S> {
    guard: G,
    inner: S,
}

impl<A: Clone, S> Layer<S> for AroundLayer<A> {
    type Service = AroundService<A, S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            around: self.0.clone(),
            inner,
        }
    }
}

impl<G: Clone, S> Layer<S> for GuardLayer<G> {
    type Service = GuardService<G, S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.0.clone(),
            inner,
        }
    }
}

pin_project! {
    /// The answer of a request passing an [`Around`].
    pub struct AroundFuture<A: Around, F> {
        #[pin]
        inner: F,
        around: A,
        memo: Option<A::Memo>,
    }

    impl<A: Around, F> PinnedDrop for AroundFuture<A, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(memo) = this.memo.take() {
                this.around.cancelled(memo);
            }
        }
    }
}

impl<A: Around, F> Future for AroundFuture<A, F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this
            .memo
            .as_ref()
            .and_then(A::span)
            .map(tracing::Span::enter);
        let Ok(mut response) = ready!(this.inner.poll(cx));
        drop(entered);
        if let Some(memo) = this.memo.take() {
            this.around.after(memo, &mut response);
        }
        Poll::Ready(Ok(response))
    }
}

impl<A, S> Service<Request> for AroundService<A, S>
where
    A: Around,
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AroundFuture<A, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let around = &self.around;
        let memo = around.before(&mut request);
        let inner = {
            let _entered = A::span(&memo).map(tracing::Span::enter);
            self.inner.call(request)
        };
        AroundFuture {
            inner,
            around: around.clone(),
            memo: Some(memo),
        }
    }
}

impl<G, S> Service<Request> for GuardService<G, S>
where
    G: Guard,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was polled ready is the one that is called; a clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let guard = self.guard.clone();
        Box::pin(async move {
            let (request, memo) = match guard.check(request).await {
                Ok(passed) => passed,
                Err(refused) => return Ok(refused.into_response()),
            };
            let Ok(mut response) = inner.call(request).await;
            guard.after(memo, &mut response);
            Ok(response)
        })
    }
}

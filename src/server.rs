//! The accept loop: connections, their limits, and graceful shutdown.
//!
//! `axum::serve` sets no header timeout and takes every connection offered, so a client that
//! connects and sends nothing, or sends its headers a byte at a time, holds a connection for
//! ever, and enough of them exhaust the process's file descriptors. This loop serves the same
//! router through hyper directly, with four bounds:
//!
//! - **Connections at once** (`max_connections`): a semaphore taken before `accept`. When it is
//!   empty the loop stops accepting, and new connections wait in the kernel's listen backlog
//!   until one closes. A waiting client sees a slow server, not a reset: its request goes through
//!   once a slot frees, where a connection accepted and closed at once would look like a crash
//!   and be retried, or not, as each client's retry logic (often not for PUT) decides.
//! - **Time to a request's headers** (`header_read_timeout`), counted from the accept for the
//!   first request and from the end of the previous response for the next ones, so it also
//!   closes idle keep-alive connections. hyper enforces it for HTTP/1 once it knows the protocol;
//!   the first request's deadline is also enforced here, because hyper-util's protocol detection
//!   waits without a limit for the first bytes.
//! - **Time with nothing done** (`header_read_timeout` again), for every protocol: a
//!   connection on which no request started, ran or ended, and no answer held up by a full
//!   socket went on, for that long is asked to close (HTTP/2 gets a GOAWAY; hyper's header
//!   timeout does not cover HTTP/2), and one still open a period after that is dropped. HTTP/2
//!   pings do not count, so they cannot hold a connection open. This drops a client that stops
//!   reading its answers, whose connection would otherwise wait on the write for ever, while a
//!   slow client still reading a large answer keeps its connection as long as the kernel takes
//!   more of it within each period. Linux wakes a writer once a third of its send buffer (up to
//!   4 MiB) is free: at the default 10 s, a client reading about 130 KB/s or more.
//! - **Time to the rest of the request** is the request timeout, in [`crate::http`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// After shutdown is asked for, how long in-flight requests get to finish.
    pub shutdown_grace: Duration,
    /// How long a client has to send a request's headers; also how long a keep-alive
    /// connection may sit idle.
    pub header_read_timeout: Duration,
    /// Most connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets in-flight
/// requests finish for at most the grace period, and drops what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: &ServeOptions,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // No `pipeline_flush`: it holds an answer back while any byte of a next request is
        // unread, so a request cut short after a committed PUT left the PUT unanswered.
        .header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stopping, stop) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // Finished connections are reaped as we go, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        // Without it, a second write before the client acknowledged the first (the answer to a
        // pipelined request) waits for the client's delayed ACK: 40 ms on Linux.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            remote,
            header_read_timeout: options.header_read_timeout,
            _slot: slot,
        };
        connections.spawn(connection.run(stream, stop.clone()));
    }
    drop(listener);
    let _ = stopping.send(());
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(options.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = options.shutdown_grace.as_secs(),
            "shutdown grace period over; dropping open requests"
        );
    }
    Ok(())
}

/// A failed `accept`: a connection that died in the backlog is nothing; anything else (such as
/// running out of file descriptors) is logged and waited out, rather than spun on.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection and what it needs.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    app: Router,
    remote: SocketAddr,
    header_read_timeout: Duration,
    /// Held while the connection is open: its place among `max_connections`.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stop: watch::Receiver<()>) {
        let activity = Arc::new(Activity::default());
        let service = {
            let (app, remote, activity) = (self.app, self.remote, activity.clone());
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                // The client's address, for the login throttle.
                request.extensions_mut().insert(ConnectInfo(remote));
                let running = Running::start(&activity);
                let answer = tower::ServiceExt::oneshot(app.clone(), request.map(Body::new));
                async move {
                    let answer = answer.await;
                    drop(running);
                    answer
                }
            })
        };
        let stream = Watched {
            stream,
            activity: activity.clone(),
            held_up: false,
        };
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        let mut connection = pin!(connection);
        let period = self.header_read_timeout;
        let mut watch = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = 0;
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(remote = %self.remote, %error, "connection ended with an error");
                    }
                    break;
                }
                _ = watch.tick() => {
                    if activity.started.load(Ordering::Relaxed) == 0 {
                        tracing::debug!(remote = %self.remote, "no request within the header timeout; closing");
                        break;
                    }
                    let moved = activity.moved.load(Ordering::Relaxed);
                    let idle = moved == seen && activity.running.load(Ordering::Relaxed) == 0;
                    seen = moved;
                    if !idle {
                        continue;
                    }
                    if closing {
                        tracing::debug!(remote = %self.remote, "idle connection did not close when asked; dropping it");
                        break;
                    }
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = stop.changed(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection is doing, for its idle watch. Counters only: the requests of an HTTP/2
/// connection run in tasks of their own.
#[derive(Debug, Default)]
struct Activity {
    /// Requests started.
    started: AtomicU64,
    /// Requests whose answer is not yet made.
    running: AtomicUsize,
    /// Requests that ended, and writes that went on after the socket held them up: unchanged
    /// over a period, nothing was done.
    moved: AtomicU64,
}

/// One request in progress on its connection, until dropped.
struct Running(Arc<Activity>);

impl Running {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.running.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.moved.fetch_add(1, Ordering::Relaxed);
    }
}

/// The connection's socket, counting the writes that go on after a full socket held them up:
/// an answer making its way to a slow reader. Other traffic (HTTP/2 pings, window updates) is
/// not counted, so that it cannot keep an idle connection open.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// The last write found the socket full.
    held_up: bool,
}

impl Watched {
    fn wrote(&mut self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &polled {
            Poll::Pending => self.held_up = true,
            Poll::Ready(Ok(written)) if *written > 0 && self.held_up => {
                self.held_up = false;
                self.activity.moved.fetch_add(1, Ordering::Relaxed);
            }
            Poll::Ready(_) => {}
        }
        polled
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, data);
        this.wrote(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        this.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

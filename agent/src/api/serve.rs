//! Serving the local API: HTTP/1.1 connections with limits, so a client that connects and says
//! nothing, says it slowly, or holds many connections open cannot starve the others (`/health`
//! above all). `axum::serve` has no timeouts and no connection limit.
//!
//! - A connection must send a request's headers within `HEADER_TIMEOUT`, and an idle keep-alive
//!   connection is closed after the same time (hyper's header read timeout also runs while a
//!   connection waits for its next request).
//! - A request must have its answer's head within `REQUEST_TIMEOUT` (event streams and exports
//!   answer at once and then stream).
//! - At most `MAX_CONNECTIONS` are open; a new one beyond that closes the connection without a
//!   request in flight that has been quiet longest (no byte read or written), so a new client is
//!   served; when every one is busy, the new one is closed instead.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Time to send a request's headers, and the longest a keep-alive connection may sit idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a request to get its answer's head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once (well under the usual 1,024 file descriptors).
pub const MAX_CONNECTIONS: usize = 256;

/// One open connection, as the limit sees it.
struct Open {
    /// Milliseconds since `epoch` of the last byte read or written.
    quiet_since: Arc<AtomicU64>,
    /// Requests being answered (an answer's head not yet sent).
    in_flight: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Open>,
}

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, app: Router) {
    let epoch = Instant::now();
    let registry = Arc::new(Mutex::new(Registry::default()));
    let app = app.layer(axum::middleware::from_fn(answer_in_time));
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait for connections to close.
                tracing::warn!("local API cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small request/answer pairs on loopback: Nagle's algorithm would only add delay.
        let _ = tcp.set_nodelay(true);
        let quiet_since = Arc::new(AtomicU64::new(millis(epoch)));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        let id = {
            let mut r = registry.lock().unwrap_or_else(|e| e.into_inner());
            if r.open.len() >= MAX_CONNECTIONS {
                let idle = r
                    .open
                    .iter()
                    .filter(|(_, o)| o.in_flight.load(Ordering::Relaxed) == 0)
                    .min_by_key(|(_, o)| o.quiet_since.load(Ordering::Relaxed))
                    .map(|(id, _)| *id);
                match idle.and_then(|quietest| r.open.remove(&quietest)) {
                    Some(o) => o.close.notify_one(),
                    None => {
                        // Every connection is answering a request: this one is closed.
                        drop(tcp);
                        continue;
                    }
                }
            }
            r.next += 1;
            let id = r.next;
            r.open.insert(
                id,
                Open {
                    quiet_since: quiet_since.clone(),
                    in_flight: in_flight.clone(),
                    close: close.clone(),
                },
            );
            id
        };
        let service = Counted {
            inner: hyper_util::service::TowerToHyperService::new(app.clone()),
            in_flight,
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(Tracked {
                inner: tcp,
                quiet_since,
                epoch,
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn = builder.serve_connection(io, service);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!("local API connection ended: {e}");
                    }
                }
                _ = close.notified() => tracing::debug!("local API connection closed to make room"),
            }
            registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open
                .remove(&id);
        });
    }
}

/// Answers 503 when a request has no answer within `REQUEST_TIMEOUT`. Only the wait is cut: the
/// handlers that change payments run their change in a task of their own (`api::detached`).
async fn answer_in_time(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => super::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "no answer within {} s; try again",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

/// A connection's service that counts the requests it is answering.
struct Counted<S> {
    inner: S,
    in_flight: Arc<AtomicUsize>,
}

/// Takes one request off the count when its answer (or the connection) is done with it.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, R> hyper::service::Service<R> for Counted<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let counted = InFlight(self.in_flight.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(counted);
            r
        })
    }
}

fn millis(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// A TCP stream that notes when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    quiet_since: Arc<AtomicU64>,
    epoch: Instant,
}

impl Tracked {
    fn moved(&self) {
        self.quiet_since
            .store(millis(self.epoch), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

//! Serving HTTP connections by hand (hyper's HTTP/1 server), so that a client can hold a
//! connection only while it makes progress:
//!
//! * `header-timeout`: a request's head must arrive whole within it (hyper's
//!   `header_read_timeout`, which also runs while a kept-alive connection waits for its next
//!   request), so headers dripped a byte at a time do not hold a slot;
//! * `body-timeout`: a body must be read whole within it from the request's start, so a
//!   chunked body that never ends fails the request;
//! * `idle-timeout`: a connection with no request being answered is closed after it (this also
//!   ends a connection whose unread body is still trickling in after its answer).
//!
//! axum's own `serve` exposes none of these. Shutdown is graceful as before: the socket closes,
//! requests in flight are answered, then their connections close.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use http_body::{Body as HttpBody, Frame};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use super::{ClientAddr, LazyRouter};
use crate::auth::Engine;
use crate::net::{Conn, Listener};

/// The listener's timeouts (`header-timeout`, `body-timeout`, `idle-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: Listener,
    app: LazyRouter,
    timeouts: Timeouts,
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (conn, addr) = listener.accept() => {
                conns.spawn(connection(conn, addr, app.get().clone(), timeouts, engine.clone(), stop_rx.clone()));
            }
            // Reap finished connection tasks as we go.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// What the idle check reads: requests being answered, and when the last one began or ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Instant::now();
        }
    }

    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.last.lock().ok().map(|l| *l)
    }
}

/// Held while a request is answered.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::SeqCst);
        a.touch();
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(
    conn: Conn,
    addr: Option<SocketAddr>,
    app: Router,
    t: Timeouts,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let per_request = activity.clone();
    let body_engine = engine.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = InFlight::new(&per_request);
        req.extensions_mut().insert(ConnectInfo(ClientAddr(addr)));
        let engine = body_engine.clone();
        let req = req.map(|b| Body::new(TimedBody::new(b, t.body, engine)));
        let mut app = app.clone();
        async move {
            let response = tower_service::Service::call(&mut app, req).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(t.header)
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(conn), service);
    tokio::pin!(served);
    let check = (t.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        engine.count_refusal("http", "header_timeout");
                        tracing::info!(?addr, "HTTP client too slow to send a request head; connection closed");
                    } else {
                        tracing::debug!(?addr, error = %e, "HTTP connection ended");
                    }
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep(check) => {
                if let Some(since) = activity.idle_since() {
                    if since.elapsed() >= t.idle {
                        engine.count_refusal("http", "idle_timeout");
                        tracing::debug!(?addr, "HTTP connection idle for {:?}; closed", t.idle);
                        return;
                    }
                }
            }
        }
    }
}

/// A request body that fails once `timeout` has passed since the request began.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    engine: Arc<Engine>,
    expired: bool,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration, engine: Arc<Engine>) -> TimedBody {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            engine,
            expired: false,
        }
    }
}

/// The error a body that took too long ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimeout(Duration);

impl HttpBody for TimedBody {
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired = true;
            this.engine.count_refusal("http", "body_timeout");
            tracing::info!(
                "HTTP request body not received within {:?}; request failed",
                this.timeout
            );
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

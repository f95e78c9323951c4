//! How the gateway serves its connections: HTTP/1 and HTTP/2 without TLS on one port (gRPC health
//! shares it), each request with its connection's address, and [`Limits`] that keep clients which
//! stall from holding the gateway: a time for a request's head, a time a body may pause, keep-alive
//! pings for HTTP/2, a cap on open connections, and a share of it for each client address.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{body::Body, extract::ConnectInfo, extract::Request, response::Response};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;
use tower_service::Service;

use super::client_slots::{ClientSlot, ClientSlots};

/// The default of [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The default of [`Limits::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default of [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The default of [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default of [`Limits::max_connections_per_client`]: a tenth of the default cap.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 1_000;

/// How long an accept error other than a reset connection (no file descriptor left) pauses
/// accepting, as `axum::serve` pauses.
const PAUSE_AFTER_ACCEPT_ERROR: Duration = Duration::from_secs(1);

/// What a connection may take before the gateway closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The time a client has to send a request's head, from when its connection opens or its
    /// previous answer was sent: on HTTP/1 also how long a keep-alive connection waits for its next
    /// request, and on HTTP/2 the time to the first request.
    pub header_timeout: Duration,
    /// The longest a request's body may pause between two pieces.
    pub body_timeout: Duration,
    /// How long an HTTP/2 connection may be silent before the gateway pings its client, and then
    /// how long the gateway waits for the answer before it closes the connection.
    pub idle_timeout: Duration,
    /// Most connections open at once: past it the gateway accepts no more until one closes.
    pub max_connections: usize,
    /// Most connections one client address may have open at once: one past it is closed as soon
    /// as it is accepted, so no one address holds every connection the cap allows.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// Serves the app within `limits`, with each connection's address available to handlers and
/// layers as `ConnectInfo<SocketAddr>`, until `shutdown` completes; then accepts no more
/// connections and returns once the requests in flight have been answered.
pub async fn serve<App>(
    listener: TcpListener,
    app: App,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    App: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    App::Future: Send,
{
    let builder = builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let client_slots = ClientSlots::new(limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // At the cap, connections wait in the listen backlog until one closes, rather than being
        // accepted and closed at once: the timeouts free a slot within a head or a body's time.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore stays open"),
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        // Past its address's share the connection is closed at once (dropped), whatever its
        // protocol; its slot under the cap goes back with it.
        let Some(client_slot) = client_slots.take(client.ip()) else {
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            limits,
            _slot: slot,
            _client_slot: client_slot,
        };
        tokio::spawn(connection.serve(stream, client, app.clone()));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1 with hyper's head timeout (which hyper runs from when a connection is ready for its next
/// request, so it also ends idle keep-alive connections), and HTTP/2 with keep-alive pings.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout)
        .keep_alive_timeout(limits.idle_timeout);
    builder
}

/// The next connection. A connection reset before it was accepted is skipped; another error (no
/// file descriptor left) is logged and accepting pauses, as `axum::serve` does.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::error!(target: "gateway", "cannot accept a connection: {e}");
                tokio::time::sleep(PAUSE_AFTER_ACCEPT_ERROR).await;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection, holding its slots under the cap and its client's share until it
/// closes.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    limits: Limits,
    _slot: OwnedSemaphorePermit,
    _client_slot: ClientSlot,
}

impl Connection {
    /// Serves the connection's requests until it closes, each request's body read within the body
    /// timeout and its extensions holding the client's address.
    async fn serve<App>(self, stream: TcpStream, client: SocketAddr, app: App)
    where
        App: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        App::Future: Send,
    {
        let started = Arc::new(AtomicBool::new(false));
        let body_timeout = self.limits.body_timeout;
        let service = {
            let started = Arc::clone(&started);
            service_fn(move |request: http::Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                let mut request =
                    request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
                request.extensions_mut().insert(ConnectInfo(client));
                app.clone().oneshot(request)
            })
        };
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        let mut connection = pin!(self.watcher.watch(connection));
        // hyper-util reads a connection's first bytes, to tell HTTP/1 from HTTP/2, with no timer
        // (hyper issue 3756): a client that sends nothing, or part of the HTTP/2 preface, would
        // hold its connection for good. So a connection with no request by the head's time is
        // dropped, which closes it.
        match tokio::time::timeout(self.limits.header_timeout, connection.as_mut()).await {
            Ok(_served) => {}
            Err(_) if !started.load(Ordering::Relaxed) => {}
            Err(_) => {
                let _served = connection.await;
            }
        }
    }
}

//! HTTP endpoints for a [`HealthChecker`]: an axum 0.8 [`Router`] and a [`serve`] helper.
//!
//! | path | answers | status code |
//! |---|---|---|
//! | `/health` | the [`HealthReport`](crate::HealthReport) as JSON | 200 healthy or degraded, 503 unhealthy |
//! | `/health/full` | [`HealthChecker::full_status`] | as `/health` |
//! | `/health/{section}` | one component's status document (`sampling`, `metrics`, `export`, `storage`, `config`, or any registered name) | by that component's check; 404 with a JSON error for an unknown name |
//! | `/livez` | `{"status": "alive", "uptime_seconds": ...}`; checks no component | always 200 |
//! | `/readyz` | the [`Readiness`](crate::Readiness) verdict | 200 ready, 503 not ready |
//! | `/metrics` | Prometheus text from [`HealthChecker::set_metrics_source`] | 200, or 404 with a JSON error when no source is set |
//!
//! Every path answers `GET` and `HEAD` (same status and headers, no body). Responses carry
//! `Cache-Control: no-store`; JSON ones `Content-Type: application/json`, and `/metrics`
//! `text/plain; version=0.0.4; charset=utf-8`. The health endpoints also send
//! `X-Health-Status: healthy | degraded | unhealthy`, so a `HEAD` probe can tell degraded from
//! healthy. Any other path gets 404 with a JSON error.
//!
//! Checks run on tokio's blocking pool with a deadline ([`HttpOptions::check_timeout`]): a
//! component that hangs makes its endpoint answer 503 `{"error": "health check timed out
//! ..."}` instead of holding the connection, and never delays `/livez`.
//!
//! [`serve`] adds connection-level protection that a bare router cannot: a header read
//! timeout (slow or idle clients are disconnected), a cap on each connection's lifetime and
//! a cap on concurrent connections. Inside an existing tokio program, use [`serve_listener`]
//! for the same protection, or mount [`router`] in your own server.
//!
//! ```
//! use std::sync::Arc;
//! use std::io::{Read, Write};
//! use tta_health::{HealthChecker, http};
//!
//! let checker = Arc::new(HealthChecker::default());
//! let server = http::serve("127.0.0.1:0", checker)?; // port 0: any free port
//!
//! let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
//! stream.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
//! let mut response = String::new();
//! stream.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//!
//! server.shutdown()?;
//! # Ok::<(), tta_health::HealthError>(())
//! ```

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use crate::{HealthChecker, HealthError, HealthStatus};

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Header carrying the status of the health endpoints' answer.
const X_HEALTH_STATUS: HeaderName = HeaderName::from_static("x-health-status");

/// Timeouts and limits of the HTTP endpoints. [`router_with`] uses `check_timeout`; the other
/// fields apply to [`serve`] and [`serve_listener`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// How long a check (or the metrics source) may run before the endpoint answers 503.
    /// Default 5 s.
    pub check_timeout: Duration,
    /// How long a client may take to send a request's headers; slower clients are
    /// disconnected. Default 5 s.
    pub header_read_timeout: Duration,
    /// The longest a connection may stay open, keep-alive included; it is then closed after
    /// the request in flight. Default 60 s.
    pub connection_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog. Default 64.
    pub max_connections: usize,
    /// Threads that may run checks at once in [`serve`]'s runtime (checks that hang hold
    /// one each until they return). Default 4.
    pub check_threads: usize,
    /// How long shutdown waits for requests in flight. Default 2 s.
    pub shutdown_grace: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(60),
            max_connections: 64,
            check_threads: 4,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
struct AppState {
    checker: Arc<HealthChecker>,
    check_timeout: Duration,
}

/// The health router with default options (a 5 s check timeout). Needs a tokio runtime
/// (checks run on its blocking pool).
///
/// ```
/// use std::sync::Arc;
/// use tta_health::{HealthChecker, http};
///
/// let app: axum::Router = http::router(Arc::new(HealthChecker::default()));
/// // Mount it into an existing app: `my_app.merge(app)`, then serve with axum::serve
/// // or, with timeouts for slow clients, http::serve_listener.
/// # let _ = app;
/// ```
pub fn router(checker: Arc<HealthChecker>) -> Router {
    router_with(checker, &HttpOptions::default())
}

/// The health router with the given options (only `check_timeout` matters to the router).
pub fn router_with(checker: Arc<HealthChecker>, options: &HttpOptions) -> Router {
    let state = AppState {
        checker,
        check_timeout: options.check_timeout,
    };
    Router::new()
        .route("/health", get(health))
        .route("/health/full", get(full))
        .route("/health/{section}", get(section))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Runs `f` on the blocking pool within the check timeout, or answers with an error.
async fn run<T, F>(state: &AppState, f: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&HealthChecker) -> T + Send + 'static,
{
    let checker = Arc::clone(&state.checker);
    let task = tokio::task::spawn_blocking(move || f(&checker));
    match tokio::time::timeout(state.check_timeout, task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({
                "error": "health check failed (the check or metrics source panicked)",
            }),
        )),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "error": format!(
                    "health check timed out after {} ms",
                    state.check_timeout.as_millis()
                ),
            }),
        )),
    }
}

fn error(code: StatusCode, body: Value) -> Response {
    (code, Json(body)).into_response()
}

fn status_code(status: HealthStatus) -> StatusCode {
    if status.is_serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn with_status(status: HealthStatus, body: impl serde::Serialize) -> Response {
    let mut response = (status_code(status), Json(body)).into_response();
    response
        .headers_mut()
        .insert(X_HEALTH_STATUS, HeaderValue::from_static(status.as_str()));
    response
}

async fn health(State(state): State<AppState>) -> Response {
    match run(&state, |c| c.check_health()).await {
        // Serialized from the struct so keys keep the guide's order.
        Ok(report) => with_status(report.status, &report),
        Err(response) => response,
    }
}

async fn full(State(state): State<AppState>) -> Response {
    match run(&state, |c| c.full_status_with_report()).await {
        Ok((report, full)) => with_status(report.status, full),
        Err(response) => response,
    }
}

async fn section(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(name)) = name else {
        return error(
            StatusCode::NOT_FOUND,
            json!({ "error": "unknown health section" }),
        );
    };
    let lookup = name.clone();
    let result = run(&state, move |c| {
        let found = c.component_health(&lookup).zip(c.section(&lookup));
        (found, c.component_names())
    })
    .await;
    match result {
        Ok((Some((health, document)), _)) => with_status(health.status, document),
        Ok((None, known)) => error(
            StatusCode::NOT_FOUND,
            json!({
                "error": "unknown health section",
                "section": name,
                "sections": known,
            }),
        ),
        Err(response) => response,
    }
}

async fn livez(State(state): State<AppState>) -> Response {
    // Reads the clock only: no component, no blocking pool, no backend.
    let live = state.checker.liveness();
    (StatusCode::OK, Json(live)).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match run(&state, |c| c.readiness()).await {
        Ok(ready) => {
            let code = if ready.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, Json(ready)).into_response()
        }
        Err(response) => response,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match run(&state, |c| c.metrics_text()).await {
        Ok(Some(text)) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            json!({ "error": "no metrics source registered" }),
        ),
        Err(response) => response,
    }
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        json!({ "error": "not found", "path": uri.path() }),
    )
}

/// An address for [`serve`]: a [`SocketAddr`], a `"host:port"` string, or a bare port
/// (`8000`, `"8000"` or `":8000"`), which binds 127.0.0.1 so the endpoints are not exposed
/// unless asked for (`"0.0.0.0:8000"`).
///
/// ```
/// use tta_health::http::BindAddr;
///
/// assert_eq!(8000.resolve()?.to_string(), "127.0.0.1:8000");
/// assert_eq!(":8000".resolve()?.to_string(), "127.0.0.1:8000");
/// assert_eq!("0.0.0.0:9000".resolve()?.to_string(), "0.0.0.0:9000");
/// assert!("no port here".resolve().is_err());
/// # Ok::<(), tta_health::HealthError>(())
/// ```
pub trait BindAddr {
    /// Resolves to one socket address.
    fn resolve(self) -> Result<SocketAddr, HealthError>;
}

impl BindAddr for SocketAddr {
    fn resolve(self) -> Result<SocketAddr, HealthError> {
        Ok(self)
    }
}

impl BindAddr for u16 {
    fn resolve(self) -> Result<SocketAddr, HealthError> {
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, self)))
    }
}

impl BindAddr for &str {
    fn resolve(self) -> Result<SocketAddr, HealthError> {
        let text = self.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(addr);
        }
        if let Ok(port) = text.strip_prefix(':').unwrap_or(text).parse::<u16>() {
            return port.resolve();
        }
        let invalid = |why: String| HealthError::InvalidAddress {
            addr: self.to_owned(),
            why,
        };
        let mut addrs = text
            .to_socket_addrs()
            .map_err(|e| invalid(format!("expected host:port or a port ({e})")))?;
        addrs
            .next()
            .ok_or_else(|| invalid("resolves to no address".into()))
    }
}

impl BindAddr for String {
    fn resolve(self) -> Result<SocketAddr, HealthError> {
        self.as_str().resolve()
    }
}

/// A running server started by [`serve`]. Dropping it stops the server too (as
/// [`shutdown`](Self::shutdown) does, ignoring errors).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in flight finish within
    /// [`HttpOptions::shutdown_grace`], and waits for the server thread to end.
    pub fn shutdown(mut self) -> Result<(), HealthError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), HealthError> {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped; nothing to tell it then.
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| HealthError::ServerPanicked),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Drop cannot report errors; `shutdown` is the way to see them.
        let _ = self.stop_and_join();
    }
}

/// Serves the health endpoints on `addr` from a thread of its own (with a current-thread
/// tokio runtime), for programs without an async runtime. Binds before returning, so a busy
/// port is reported here as [`HealthError::Bind`].
pub fn serve(
    addr: impl BindAddr,
    checker: Arc<HealthChecker>,
) -> Result<ServerHandle, HealthError> {
    serve_with(addr, checker, HttpOptions::default())
}

/// [`serve`] with chosen timeouts and limits.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tta_health::{HealthChecker, http::{self, HttpOptions}};
///
/// let options = HttpOptions { header_read_timeout: Duration::from_secs(2), ..Default::default() };
/// let server = http::serve_with(0, Arc::new(HealthChecker::default()), options)?; // 127.0.0.1, any port
/// assert!(server.local_addr().ip().is_loopback());
/// server.shutdown()?;
/// # Ok::<(), tta_health::HealthError>(())
/// ```
pub fn serve_with(
    addr: impl BindAddr,
    checker: Arc<HealthChecker>,
    options: HttpOptions,
) -> Result<ServerHandle, HealthError> {
    let addr = addr.resolve()?;
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| HealthError::Bind { addr, source })?;
    let server_err = |what| move |source| HealthError::Server { what, source };
    std_listener
        .set_nonblocking(true)
        .map_err(server_err("the listener cannot be made non-blocking"))?;
    let local_addr = std_listener
        .local_addr()
        .map_err(server_err("the bound address cannot be read"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(options.check_threads.max(1))
        .thread_name("tta-health-check")
        .build()
        .map_err(server_err("the tokio runtime cannot be built"))?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(std_listener)
            .map_err(server_err("the listener cannot be registered with tokio"))?
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tta-health-http".into())
        .spawn(move || {
            runtime.block_on(serve_listener(listener, checker, options, async {
                // A dropped sender (handle dropped without shutdown) stops the server too.
                let _ = stopped.await;
            }));
            // Checks that hang keep a blocking thread; do not wait for them.
            runtime.shutdown_background();
        })
        .map_err(server_err("the server thread cannot be spawned"))?;
    Ok(ServerHandle {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Serves the health endpoints on an already bound tokio listener until `shutdown`
/// completes, with the timeouts and limits of `options`: for programs that already run
/// tokio and want [`serve`]'s protection against slow clients. Returns once requests in
/// flight have finished (or [`HttpOptions::shutdown_grace`] has passed).
///
/// ```
/// use std::sync::Arc;
/// use tta_health::{HealthChecker, http::{self, HttpOptions}};
///
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// runtime.block_on(async {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let checker = Arc::new(HealthChecker::default());
///     // Serves until the shutdown future completes; here it completes at once.
///     http::serve_listener(listener, checker, HttpOptions::default(), async {}).await;
/// });
/// ```
pub async fn serve_listener<F>(
    listener: TcpListener,
    checker: Arc<HealthChecker>,
    options: HttpOptions,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let app = router_with(checker, &options);
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed; stop if it were
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(_) => {
                    // Out of file descriptors or a connection reset before accept: back
                    // off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Nagle only delays small responses.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let options = Arc::clone(&options);
        let closing = closing_rx.clone();
        connections.spawn(async move {
            serve_connection(stream, app, &options, closing).await;
            drop(permit);
        });
    }
    // Ask every connection to finish its request in flight, then wait within the grace.
    let _ = closing.send(true);
    let grace = options.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    options: &HttpOptions,
    mut closing: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(16 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(options.connection_timeout);
    tokio::pin!(lifetime);
    tokio::select! {
        // Errors here are the client's (reset, timeout, bad request): nothing to report.
        _ = conn.as_mut() => return,
        () = &mut lifetime => {}
        _ = closing.wait_for(|closing| *closing) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(options.shutdown_grace, conn).await;
}

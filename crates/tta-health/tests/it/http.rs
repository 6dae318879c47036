//! Real HTTP over loopback against a bound port: every path, status codes, headers, 404,
//! HEAD, timeouts and the server's life cycle.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use insta::assert_json_snapshot;
use serde_json::{Value, json};
use tta_health::http::{self, HttpOptions, PROMETHEUS_CONTENT_TYPE, ServerHandle};
use tta_health::{ComponentHealth, HealthChecker, HealthComponent, HealthError};

use crate::guide::production_system;
use crate::support::{Fake, Reply, connect, read_response, request};

const JSON: &str = "application/json";

fn serve(checker: &Arc<HealthChecker>) -> ServerHandle {
    http::serve("127.0.0.1:0", Arc::clone(checker)).unwrap()
}

fn assert_common(reply: &Reply, what: &str) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "{what}: {reply:?}"
    );
}

#[test]
fn guide_verification_curl_health() {
    // Verification, 1: `curl http://localhost:8000/health` with the expected response.
    let system = production_system();
    let server = serve(&system.checker);
    let reply = request(server.local_addr(), "GET", "/health");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(JSON));
    assert_common(&reply, "/health");
    assert_eq!(reply.header("x-health-status"), Some("healthy"));
    let body = reply.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["message"], "All observability systems operational");
    assert_eq!(body["details"]["config_loaded"], true);
    assert_eq!(body["details"]["environment"], "production");
    assert_eq!(body["details"]["metrics_collector"], "available");
    assert_eq!(body["details"]["tracing_available"], true);
    assert!(body["details"]["uptime_seconds"].is_number());
    assert_json_snapshot!("http_health", body, {
        ".timestamp" => "[timestamp]",
        ".details.uptime_seconds" => "[uptime]",
    });

    // Sampling verification over HTTP: /health/sampling.
    let reply = request(server.local_addr(), "GET", "/health/sampling");
    assert_eq!(reply.status, 200);
    let status = reply.json();
    assert_eq!(status["enabled"], true);
    let rate = status["sampling_rate"].as_f64().unwrap();
    assert!(0.0 < rate && rate <= 1.0);
    assert_eq!(status["always_sample_errors"], true);
    server.shutdown().unwrap();
}

#[test]
fn every_path_get_and_head() {
    let system = production_system();
    system
        .checker
        .set_metrics_source(Arc::new(|| "# TYPE up gauge\nup 1\n".to_string()));
    let server = serve(&system.checker);
    let addr = server.local_addr();
    let paths: &[(&str, u16, &str)] = &[
        ("/health", 200, JSON),
        ("/health/full", 200, JSON),
        ("/health/sampling", 200, JSON),
        ("/health/metrics", 200, JSON),
        ("/health/export", 200, JSON),
        ("/health/storage", 200, JSON),
        ("/health/config", 200, JSON),
        ("/livez", 200, JSON),
        ("/readyz", 200, JSON),
        ("/metrics", 200, PROMETHEUS_CONTENT_TYPE),
        ("/health/nope", 404, JSON),
        ("/nowhere", 404, JSON),
    ];
    for &(path, status, content_type) in paths {
        let get = request(addr, "GET", path);
        assert_eq!(get.status, status, "GET {path}: {}", get.text());
        assert_eq!(get.header("content-type"), Some(content_type), "GET {path}");
        assert_common(&get, path);
        assert!(!get.body.is_empty(), "GET {path}");
        if content_type == JSON {
            assert!(get.json().is_object(), "GET {path}");
        }
        let head = request(addr, "HEAD", path);
        assert_eq!(head.status, status, "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            Some(content_type),
            "HEAD {path}"
        );
        assert_common(&head, path);
        assert_eq!(
            head.header("x-health-status"),
            get.header("x-health-status"),
            "HEAD {path}"
        );
        // HEAD announces the length GET sends (bodies with uptime vary in length by a few
        // bytes between requests, so only their presence is compared).
        let len = head
            .header("content-length")
            .unwrap_or_else(|| panic!("HEAD {path}: no length"));
        if !["/health", "/health/full", "/livez"].contains(&path) {
            assert_eq!(
                len,
                get.body.len().to_string(),
                "HEAD {path} content-length"
            );
        }
    }
    let sampling = request(addr, "GET", "/health/sampling").json();
    assert_eq!(sampling, system.checker.sampling_status());
    let full = request(addr, "GET", "/health/full").json();
    assert_eq!(full["sampling"]["sampling_rate"], 0.05);
    assert_eq!(full["health"]["status"], "healthy");
    assert_eq!(
        request(addr, "GET", "/metrics").text(),
        "# TYPE up gauge\nup 1\n"
    );
    let live = request(addr, "GET", "/livez").json();
    assert_eq!(live["status"], "alive");
    let ready = request(addr, "GET", "/readyz").json();
    assert_eq!(
        ready,
        json!({ "status": "ready", "ready": true, "not_ready": [] })
    );
    server.shutdown().unwrap();
}

#[test]
fn unknown_section_and_path_are_json_404s() {
    let checker = Arc::new(HealthChecker::default());
    checker
        .register(Fake::new("sampling", ComponentHealth::healthy()))
        .unwrap();
    checker
        .register(Fake::new("queue-2", ComponentHealth::healthy()))
        .unwrap();
    let server = serve(&checker);
    let addr = server.local_addr();
    let reply = request(addr, "GET", "/health/storage");
    assert_eq!(reply.status, 404);
    assert_json_snapshot!("http_unknown_section", reply.json());
    // Any registered name is a section, not only the five usual ones, and it serves the
    // component's current document.
    let queue = Fake::new("queue-3", ComponentHealth::healthy());
    checker.register(queue.clone()).unwrap();
    queue.set_document(json!({ "depth": 7 }));
    assert_eq!(
        request(addr, "GET", "/health/queue-3").json(),
        json!({ "depth": 7 })
    );
    assert_eq!(request(addr, "GET", "/health/queue-2").status, 200);
    // Percent-encoded garbage and odd paths never panic the server.
    for path in [
        "/health/%FF%FE",
        "/health/..%2F..",
        "/health/",
        "/health/full/x",
        "/%00",
    ] {
        let reply = request(addr, "GET", path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.json()["error"].is_string(), "{path}");
    }
    let reply = request(addr, "GET", "/nowhere?x=1");
    assert_eq!(
        reply.json(),
        json!({ "error": "not found", "path": "/nowhere" })
    );
    let reply = request(addr, "GET", "/metrics");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"], "no metrics source registered");
    let reply = request(addr, "POST", "/health");
    assert_eq!(reply.status, 405);
    assert_common(&reply, "POST /health");
    server.shutdown().unwrap();
}

#[test]
fn status_codes_follow_health() {
    let checker = Arc::new(HealthChecker::default());
    let export = Fake::new("export", ComponentHealth::healthy());
    let sampling = Fake::new("sampling", ComponentHealth::healthy());
    checker.register(export.clone()).unwrap();
    checker.register(sampling.clone()).unwrap();
    let server = serve(&checker);
    let addr = server.local_addr();
    let codes = |expected: [(&str, u16); 6]| {
        for (path, code) in expected {
            let reply = request(addr, "GET", path);
            assert_eq!(reply.status, code, "{path}: {}", reply.text());
        }
    };
    codes([
        ("/health", 200),
        ("/health/full", 200),
        ("/health/export", 200),
        ("/health/sampling", 200),
        ("/readyz", 200),
        ("/livez", 200),
    ]);

    export.set(ComponentHealth::degraded(
        "export latency p99 150.0 ms over the 100.0 ms target",
    ));
    codes([
        ("/health", 200),
        ("/health/full", 200),
        ("/health/export", 200),
        ("/health/sampling", 200),
        ("/readyz", 200),
        ("/livez", 200),
    ]);
    assert_eq!(
        request(addr, "HEAD", "/health").header("x-health-status"),
        Some("degraded")
    );

    export.set(ComponentHealth::unhealthy(
        "export failing: 3 consecutive failures",
    ));
    codes([
        ("/health", 503),
        ("/health/full", 503),
        ("/health/export", 503),
        ("/health/sampling", 200),
        ("/readyz", 503),
        ("/livez", 200),
    ]);
    let reply = request(addr, "GET", "/health");
    assert_eq!(reply.header("x-health-status"), Some("unhealthy"));
    assert_eq!(
        reply.json()["message"],
        "Unhealthy: export (export failing: 3 consecutive failures)"
    );
    assert_eq!(request(addr, "HEAD", "/readyz").status, 503);
    let ready = request(addr, "GET", "/readyz").json();
    assert_eq!(ready["not_ready"][0]["component"], "export");
    assert_eq!(
        ready["not_ready"][0]["reason"],
        "export failing: 3 consecutive failures"
    );
    server.shutdown().unwrap();
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let checker = Arc::new(HealthChecker::default());
    let server = serve(&checker);
    let stream = connect(server.local_addr());
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for path in ["/health", "/livez", "/readyz"] {
        write!(writer, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let reply = read_response(&mut reader, false);
        assert_eq!(reply.status, 200, "{path}");
        assert!(reply.json().is_object());
    }
    server.shutdown().unwrap();
}

/// A component whose check blocks until the test lets it go.
struct Hung {
    release: Mutex<mpsc::Receiver<()>>,
}

impl HealthComponent for Hung {
    fn name(&self) -> &str {
        "storage"
    }
    fn check(&self) -> ComponentHealth {
        // Bounded: the test releases it, and a forgotten release still ends.
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        ComponentHealth::healthy()
    }
    fn status_document(&self) -> Value {
        json!({})
    }
}

#[test]
fn a_hung_check_times_out_and_never_blocks_livez() {
    let (release, wait) = mpsc::channel();
    let checker = Arc::new(HealthChecker::default());
    checker
        .register(Arc::new(Hung {
            release: Mutex::new(wait),
        }))
        .unwrap();
    let options = HttpOptions {
        check_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let server = http::serve_with("127.0.0.1:0", Arc::clone(&checker), options).unwrap();
    let addr = server.local_addr();
    let started = Instant::now();
    let reply = request(addr, "GET", "/health");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("content-type"), Some(JSON));
    assert_eq!(reply.json()["error"], "health check timed out after 200 ms");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The check is still stuck, yet liveness answers at once.
    let live = request(addr, "GET", "/livez");
    assert_eq!(live.status, 200);
    assert_eq!(request(addr, "GET", "/readyz").status, 503);
    for _ in 0..4 {
        let _ = release.send(());
    }
    server.shutdown().unwrap();
}

#[test]
fn slow_clients_are_disconnected() {
    let checker = Arc::new(HealthChecker::default());
    let options = HttpOptions {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 1,
        ..Default::default()
    };
    let server = http::serve_with(0_u16, Arc::clone(&checker), options).unwrap();
    let addr = server.local_addr();
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST, "a bare port binds loopback");

    // A client that starts a request and never finishes its headers holds the only slot...
    let mut slow = connect(addr);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    // ...until the header read timeout closes it; then the next client is served.
    let started = Instant::now();
    let reply = request(addr, "GET", "/livez");
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "served before the slot was free"
    );
    let mut rest = Vec::new();
    // EOF (not the 10 s read timeout) proves the server closed the slow connection.
    slow.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    server.shutdown().unwrap();
}

#[test]
fn bind_errors_are_clear_and_shutdown_frees_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let checker = Arc::new(HealthChecker::default());
    let err = http::serve(addr, Arc::clone(&checker)).unwrap_err();
    assert!(
        matches!(err, HealthError::Bind { addr: a, .. } if a == addr),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot bind health server to {addr}")
    );
    assert!(std::error::Error::source(&err).is_some());
    drop(taken);

    let err = http::serve("not an address", Arc::clone(&checker)).unwrap_err();
    assert!(matches!(err, HealthError::InvalidAddress { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("invalid health server address \"not an address\""),
        "{err}"
    );

    let server = http::serve(":0", Arc::clone(&checker)).unwrap();
    let bound: SocketAddr = server.local_addr();
    assert_eq!(bound.ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(request(bound, "GET", "/livez").status, 200);
    server.shutdown().unwrap();
    // The listener is closed once shutdown returns.
    assert!(std::net::TcpStream::connect_timeout(&bound, Duration::from_secs(5)).is_err());

    // Dropping the handle stops the server as well.
    let server = http::serve("127.0.0.1:0".to_string(), checker).unwrap();
    let bound = server.local_addr();
    drop(server);
    assert!(std::net::TcpStream::connect_timeout(&bound, Duration::from_secs(5)).is_err());
}

#[test]
fn router_and_serve_listener_work_inside_an_existing_runtime() {
    let system = production_system();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_plain, stopped_plain) = tokio::sync::oneshot::channel::<()>();
    let (addrs_tx, addrs_rx) = mpsc::channel();
    let checker = Arc::clone(&system.checker);
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            // With the protective server...
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let protected = listener.local_addr().unwrap();
            let serve = http::serve_listener(
                listener,
                Arc::clone(&checker),
                HttpOptions::default(),
                async {
                    let _ = stopped.await;
                },
            );
            // ...and the bare router mounted in the app's own axum server.
            let plain_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let plain = plain_listener.local_addr().unwrap();
            let app = axum::Router::new()
                .route("/", axum::routing::get(|| async { "app" }))
                .merge(http::router(checker));
            let plain_serve = axum::serve(plain_listener, app).with_graceful_shutdown(async {
                let _ = stopped_plain.await;
            });
            addrs_tx.send((protected, plain)).unwrap();
            let (_, plain_result) = tokio::join!(serve, plain_serve);
            plain_result.unwrap();
        });
    });
    let (protected, plain) = addrs_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    for addr in [protected, plain] {
        let reply = request(addr, "GET", "/health");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["details"]["environment"], "production");
        assert_common(&reply, "/health");
        assert_eq!(
            request(addr, "GET", "/health/metrics").json()["total_executions"],
            0
        );
    }
    assert_eq!(request(plain, "GET", "/").text(), "app");
    stop.send(()).unwrap();
    stop_plain.send(()).unwrap();
    thread.join().unwrap();
}

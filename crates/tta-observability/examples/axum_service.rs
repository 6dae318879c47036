//! The guide's FastAPI example as an axum service: `/api/endpoint` instrumented by the
//! tracing layer, plus `/health`, `/health/full`, `/health/sampling`, `/health/metrics`
//! (and `/livez`, `/readyz`, `/metrics`).
//!
//! ```sh
//! cargo run --example axum_service --features tracing,http
//! curl http://127.0.0.1:8000/api/endpoint
//! curl http://127.0.0.1:8000/health
//! ```
//! The listen address comes from `TTA_LISTEN` (default `127.0.0.1:8000`); the store from
//! `TTA_DATA_DIR` (default `./tta-data`).

// An example program reports what it does on stdout.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tta_observability::Observability;

async fn endpoint(headers: HeaderMap) -> &'static str {
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("GET /api/endpoint", traceparent = %traceparent, http.route = "/api/endpoint");
    async {
        let _db = tracing::info_span!("SELECT items", db.system = "postgresql").entered();
        std::hint::black_box((0..1_000u64).sum::<u64>());
        "ok\n"
    }
    .instrument(span)
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let obs = Observability::builder().from_env()?.build()?;
    tracing_subscriber::registry().with(obs.layer()).init();

    let app = Router::new().route("/api/endpoint", get(endpoint)).merge(
        tta_observability::health::http::router(obs.health().clone()),
    );
    let addr = std::env::var("TTA_LISTEN").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    obs.shutdown(Duration::from_secs(5));
    Ok(())
}

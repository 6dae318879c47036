//! Health checking for tta-observability: components report a status with reasons, the
//! checker rolls them up worst-first into the guide's health report, and an optional axum
//! router serves `/health`, `/livez`, `/readyz` and `/metrics` to people and Kubernetes.
//!
//! Most services should not use this crate directly: the `tta-observability` facade
//! registers its sampling, metrics, export, storage and config components with a
//! [`HealthChecker`] and judges them with the [`rules`] here, so
//! `tta_observability::health_checker().check_health()` works out of the box. Depend on
//! `tta-health` alone to health-check components of your own, or to serve the endpoints for
//! a checker you build yourself. This crate depends on no other tta crate.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::{Value, json};
//! use tta_health::rules::{self, HealthThresholds, SamplingObservation};
//! use tta_health::{CheckerInfo, ComponentHealth, HealthChecker, HealthComponent, HealthStatus};
//!
//! /// A sampling component as the facade would write it: read the live rate, apply the rule.
//! struct Sampling { rate: f64, thresholds: HealthThresholds }
//!
//! impl HealthComponent for Sampling {
//!     fn name(&self) -> &str { "sampling" }
//!     fn check(&self) -> ComponentHealth {
//!         let obs = SamplingObservation { enabled: true, current_rate: self.rate, min_rate: 0.001, adaptive: true };
//!         rules::sampling(&obs, &self.thresholds)
//!     }
//!     fn status_document(&self) -> Value {
//!         json!({ "enabled": true, "sampling_rate": self.rate, "always_sample_errors": true })
//!     }
//! }
//!
//! let checker = HealthChecker::new(CheckerInfo { config_loaded: true, ..Default::default() });
//! checker.register(Arc::new(Sampling { rate: 0.005, thresholds: HealthThresholds::default() }))?;
//!
//! let report = checker.check_health();
//! assert_eq!(report.status, HealthStatus::Degraded);
//! assert_eq!(report.status.as_str(), "degraded");
//! assert_eq!(report.message, "Degraded: sampling (sampling rate 0.005 below 0.01 (very low sampling))");
//! assert_eq!(report.details["sampling"]["status"], "degraded");
//! assert_eq!(checker.sampling_status()["sampling_rate"], 0.005);
//! assert!(checker.readiness().ready, "degraded is still ready");
//! # Ok::<(), tta_health::HealthError>(())
//! ```
//!
//! # Features
//!
//! - `http` (off by default): the `http` module: `http::router`, an axum 0.8 router with
//!   `GET`/`HEAD` `/health`, `/health/full`, `/health/{section}`, `/livez`, `/readyz` and
//!   `/metrics`, and `http::serve`, which runs it on its own thread (with header-read and
//!   connection timeouts) for programs without an async runtime. Pulls in axum, hyper and
//!   tokio.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod checker;
mod error;
pub mod rules;
mod status;
mod time;
mod window;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;

pub use checker::{
    CheckerInfo, HEALTHY_MESSAGE, HealthChecker, HealthComponent, HealthReport, Liveness,
    MetricsSource, NotReady, Readiness, ReadinessRole, sections,
};
pub use error::HealthError;
pub use rules::HealthThresholds;
pub use status::{ComponentHealth, HealthStatus};
pub use time::format_rfc3339;
pub use window::{DEFAULT_BUCKETS, WindowCounter};

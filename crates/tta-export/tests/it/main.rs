//! Integration tests of tta-export (one binary).

mod json_lines;
#[cfg(feature = "otlp")]
mod otlp;
mod pipeline;
#[cfg(feature = "otlp")]
mod pipeline_otlp;
#[cfg(feature = "otlp")]
mod receiver;
#[cfg(feature = "store")]
mod store;

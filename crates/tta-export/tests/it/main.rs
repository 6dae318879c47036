//! Integration tests of tta-export (one binary).

mod json_lines;
#[cfg(feature = "otlp")]
mod otlp;
mod pipeline;
#[cfg(feature = "otlp")]
mod pipeline_otlp;
#[cfg(feature = "otlp")]
mod receiver;
mod shards;
#[cfg(feature = "store")]
mod store;

//! Integration tests of tta-config.

mod env;
mod handle;
mod presets;
mod watcher;
mod yaml;

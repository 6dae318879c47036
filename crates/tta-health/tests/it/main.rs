//! Integration tests of tta-health: the roll-up, the guide's verification steps and, with the
//! `http` feature, real HTTP over loopback.

mod guide;
#[cfg(feature = "http")]
mod http;
mod rollup;
mod support;

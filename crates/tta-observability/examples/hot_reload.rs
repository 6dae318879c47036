//! Hot reload: the runtime watches a YAML file; editing it changes the sampling rate of the
//! running sampler within milliseconds. This example edits the file itself (an editor-style
//! rename-save) so it demonstrates the change on its own:
//!
//! ```sh
//! cargo run --example hot_reload            # or: cargo run --example hot_reload -- my.yaml
//! ```

// An example program reports what it does on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use tta_observability::{Observability, ObservabilityConfig};

fn write_rate(path: &std::path::Path, rate: f64) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(
        &tmp,
        format!("environment: production\ntracing:\n  sampling:\n    default_rate: {rate}\n"),
    )?;
    std::fs::rename(tmp, path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("tta-hot-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("observability.yaml"));
    write_rate(&path, 0.05)?;

    let obs = Observability::builder()
        .config(ObservabilityConfig::from_yaml_file(&path)?)
        .watch_config(&path)
        .without_store()
        .build()?;
    println!(
        "watching {}; sampling rate {}",
        path.display(),
        obs.sampler().current_rate()
    );

    write_rate(&path, 0.01)?;
    let start = Instant::now();
    while obs.config().tracing.sampling.default_rate != 0.01
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "after a rename-save to 0.01: rate {} (applied in {:?}); reloads applied: {}",
        obs.sampler().current_rate(),
        start.elapsed(),
        obs.config_handle().stats().applied
    );
    let sampled = (0..100_000)
        .filter(|_| {
            obs.head_decision(tta_observability::TraceId::random())
                .is_sampled()
        })
        .count();
    println!("head-sampled {sampled} of 100000 new traces");
    obs.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

//! The `tta` command: demo workload, config, trace store, storage estimates and health checks.

fn main() {
    eprintln!("tta: no commands yet");
    std::process::exit(2);
}

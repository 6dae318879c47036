//! Prints the configuration reference (`docs/configuration.md`); `cargo xtask codegen` runs it.

// Printing the generated document is this example's whole job.
#![allow(clippy::print_stdout)]

fn main() {
    print!("{}", tta_config::render_reference());
}

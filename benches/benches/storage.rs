//! Placeholder: this bench is written with its crate's issue.
fn main() {}

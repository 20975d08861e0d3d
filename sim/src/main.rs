//! The simulator's command line (work in progress).
fn main() {}

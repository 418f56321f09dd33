//! Coding bench (to come).

fn main() {}

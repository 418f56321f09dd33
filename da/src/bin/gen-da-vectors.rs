//! Writes `spec/vectors/availability.json` (to come).

fn main() {}

//! Vectors (to come).

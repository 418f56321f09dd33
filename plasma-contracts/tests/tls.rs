//! TLS to L1 endpoints (issue #18); the tests land with `plasma_contracts::l1`.

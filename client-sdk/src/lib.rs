//! Placeholder for the client SDK and `plasma` CLI (issue: client-sdk).
//!
//! Nothing here works yet: the crate exists so the workspace has its final shape and later work
//! lands in the right place. See the issue tracker for what it will hold.

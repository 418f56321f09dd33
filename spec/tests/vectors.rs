//! The committed vectors in `spec/vectors/` are exactly what the generator produces, and they
//! say what the crate does. Regenerate with `cargo run -p plasma-spec --bin gen-vectors`.

use plasma_spec::vectors::generate;
use std::path::Path;

#[test]
fn committed_vectors_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut stale = Vec::new();
    for (name, text) in generate() {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(on_disk) if on_disk == text => {}
            Ok(_) => stale.push(format!("{name} differs")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "spec/vectors is stale ({}); run `cargo run -p plasma-spec --bin gen-vectors`",
        stale.join(", ")
    );
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(generate(), generate());
}

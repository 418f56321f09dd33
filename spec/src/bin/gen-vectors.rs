//! Writes the shared test vectors to `spec/vectors/` (or the directory given as argument).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors"));
    plasma_spec::vectors::write(&dir)?;
    println!("wrote vectors to {}", dir.display());
    Ok(())
}

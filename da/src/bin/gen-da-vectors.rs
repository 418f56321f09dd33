//! Writes `spec/vectors/availability.json` (or the path given as argument).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let path =
        std::env::args_os().nth(1).map_or_else(plasma_da::vectors::default_path, PathBuf::from);
    plasma_da::vectors::write(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}

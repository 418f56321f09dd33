//! Rebuild the bindings whenever the exported artifacts change (`sol!` reads them at compile time).
fn main() {
    println!("cargo:rerun-if-changed=artifacts");
}

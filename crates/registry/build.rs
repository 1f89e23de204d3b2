//! Embeds every `sources/*.toml` definition file, in name order.
use std::fs;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sources");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("sources dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let mut out = String::from("[\n");
    for n in &names {
        println!("cargo:rerun-if-changed={}", dir.join(n).display());
        out.push_str(&format!(
            "({n:?}, include_str!({:?})),\n",
            dir.join(n).display().to_string()
        ));
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin.rs");
    fs::write(dest, out).expect("write builtin.rs");
}

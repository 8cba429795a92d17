//! Embeds the shipped reproduction sessions (`sessions/**/*.jsonl`) so the console's composer
//! offers them as templates without depending on the working directory.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let sessions = root.join("sessions");
    println!("cargo:rerun-if-changed={}", sessions.display());
    let mut files = Vec::new();
    collect(&sessions, &mut files);
    files.sort();
    let mut code = String::from("/// Every shipped session: (path under sessions/, text).\npub static SESSION_TEMPLATES: &[(&str, &str)] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file
            .strip_prefix(&sessions)
            .unwrap_or(file)
            .display()
            .to_string();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("session_templates.rs");
    if let Err(error) = std::fs::write(&out, code) {
        panic!("cannot write {}: {error}", out.display());
    }
}

//! Records the toolchain and the dependency lock at build time, for run manifests.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CLAIMBENCH_RUSTC={}", version.trim());
    println!("cargo:rerun-if-changed=../Cargo.lock");
}

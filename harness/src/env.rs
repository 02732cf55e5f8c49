//! The environment of a run: git state, toolchain, dependency versions, devices, CPU and OS.
//! Recorded in `manifest.json` so runs can be compared and resumed honestly.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The workspace's `Cargo.lock`, captured at build time.
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// The git state of the checkout a run came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GitState {
    /// Commit sha, or "unknown" outside a git checkout.
    pub sha: String,
    /// Uncommitted changes present.
    pub dirty: bool,
}

/// Reads the git state of the workspace this binary was built from (falls back to the current
/// directory, then to "unknown").
pub fn git_state() -> GitState {
    let root = workspace_root();
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(sha) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            GitState { sha, dirty }
        }
        None => GitState {
            sha: "unknown".into(),
            dirty: false,
        },
    }
}

/// The workspace root (where `Cargo.lock` lives) when it still exists, else the current directory.
pub fn workspace_root() -> std::path::PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("Cargo.lock").exists() {
        built
    } else {
        std::env::current_dir().unwrap_or_else(|_| ".".into())
    }
}

/// sha256 of the `Cargo.lock` the binary was built with.
pub fn cargo_lock_hash() -> String {
    hex(&Sha256::digest(CARGO_LOCK.as_bytes()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Versions of the crates that decide the numbers, read from the build's `Cargo.lock`.
pub fn crate_versions() -> Vec<(String, String)> {
    const WANTED: &[&str] = &[
        "burn",
        "cubecl",
        "wgpu",
        "polars",
        "criterion",
        "minijinja",
        "plotters",
    ];
    let mut found = Vec::new();
    let mut name: Option<&str> = None;
    for line in CARGO_LOCK.lines() {
        if let Some(n) = line.strip_prefix("name = \"") {
            name = n.strip_suffix('"');
        } else if let (Some(n), Some(v)) = (name, line.strip_prefix("version = \"")) {
            if WANTED.contains(&n) {
                found.push((n.to_string(), v.trim_end_matches('"').to_string()));
            }
            name = None;
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The features this binary was built with.
pub fn features() -> Vec<String> {
    let mut f = vec!["flex".to_string(), "wgpu".to_string()];
    if cfg!(feature = "cuda") {
        f.push("cuda".into());
    }
    f
}

/// The rustc that built this binary.
pub fn rustc_version() -> String {
    env!("CLAIMBENCH_RUSTC").to_string()
}

/// The CPU model from `/proc/cpuinfo` and the number of logical cores.
pub fn cpu_model() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{model} ({cores} logical cores)")
}

/// The OS name from `/etc/os-release`, with the kernel release.
pub fn os_name() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if kernel.is_empty() {
        pretty
    } else {
        format!("{pretty}, kernel {kernel}")
    }
}

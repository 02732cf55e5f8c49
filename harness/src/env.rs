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

pub use claimbench_paper::files::hex;

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

/// The workspace's `Cargo.toml`, captured at build time: the burn/cubecl features it asks for.
const WORKSPACE_TOML: &str = include_str!("../../Cargo.toml");

/// The crates whose features decide what burn and cubecl compile in.
const BUILD_CRATES: &[&str] = &["burn", "burn-cubecl", "cubecl"];

/// How one of burn/cubecl was built.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CrateBuild {
    /// Crate name.
    pub name: String,
    /// Version requirement as the workspace pins it (e.g. `=0.21.0`).
    pub version: String,
    /// Whether its default features are on.
    pub default_features: bool,
    /// Features the workspace turns on.
    pub features: Vec<String>,
}

/// What the run's burn and cubecl were built with and how their backends are set
/// (`manifest.json` `build`, contracts.md version 2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct BuildInfo {
    /// burn, burn-cubecl and cubecl as the workspace asks for them, plus `autotune` on burn when
    /// this binary was built with the `autotune` (or `cuda`) feature.
    pub crates: Vec<CrateBuild>,
    /// burn's `autotune` feature is on (tuned matmul and reductions instead of one fixed kernel).
    pub autotune: bool,
    /// Backend settings: the types the benchmarks run and cubecl's autotune level and cache.
    pub settings: Vec<String>,
    /// The autotune caches found after the device probe (`<device>/<tuned op>`, with entry
    /// counts): evidence that burn's ops went through the tuner.
    #[serde(default)]
    pub autotune_caches: Vec<String>,
}

/// The build of this binary: [`BuildInfo`] from the workspace's `Cargo.toml` and cubecl's
/// runtime configuration ([`BuildInfo::autotune_caches`] is filled after the probe).
pub fn build_info() -> BuildInfo {
    let parsed: toml::Table =
        toml::from_str(WORKSPACE_TOML).expect("the workspace Cargo.toml parses");
    let deps = parsed
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table());
    let crates: Vec<CrateBuild> = BUILD_CRATES
        .iter()
        .filter_map(|&name| {
            let spec = deps?.get(name)?;
            let (version, default_features, features) = match spec {
                toml::Value::String(v) => (v.clone(), true, Vec::new()),
                t => (
                    t.get("version")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    t.get("default-features")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(true),
                    t.get("features")
                        .and_then(|f| f.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
            };
            Some(CrateBuild {
                name: name.into(),
                version,
                default_features,
                features,
            })
        })
        .collect();
    // The workspace asks for burn without autotune; `--features autotune` (or `cuda`) adds it.
    let mut crates = crates;
    if claimbench_kernels::BURN_AUTOTUNE {
        for c in crates.iter_mut().filter(|c| c.name == "burn") {
            if !c.features.iter().any(|f| f == "autotune") {
                c.features.push("autotune".into());
            }
        }
    }
    let autotune = crates.iter().any(|c| {
        c.name == "burn" && (c.default_features || c.features.iter().any(|f| f == "autotune"))
    });
    let cfg = <cubecl::config::CubeClRuntimeConfig as cubecl::config::RuntimeConfig>::get();
    let mut settings = vec![
        format!(
            "wgpu backend: {}",
            std::any::type_name::<burn::backend::Wgpu>()
        ),
        format!("autotune level: {:?}", cfg.autotune.level),
        format!("autotune cache: {}", cfg.autotune.cache.root().display()),
    ];
    if cfg!(feature = "cuda") {
        settings.insert(
            1,
            "cuda backend: burn::backend::Cuda (fusion, as wgpu)".into(),
        );
    }
    BuildInfo {
        crates,
        autotune,
        settings,
        autotune_caches: Vec::new(),
    }
}

/// The autotune caches cubecl has written under its cache root (`autotune/<version>/<device>/
/// <tuned op>.json.log`), each as `<device>/<tuned op>: <entries> entries`, sorted. Empty
/// when none exists (autotune off, or nothing tuned yet).
pub fn autotune_caches() -> Vec<String> {
    let cfg = <cubecl::config::CubeClRuntimeConfig as cubecl::config::RuntimeConfig>::get();
    let root = cfg.autotune.cache.root().join("autotune");
    let mut out: Vec<String> = walkdir::WalkDir::new(&root)
        .max_depth(4)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_str()?
                .strip_suffix(".json.log")?
                .to_string();
            let device = e.path().parent()?.file_name()?.to_str()?.to_string();
            let entries = std::fs::read_to_string(e.path())
                .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
                .unwrap_or(0);
            Some(format!("{device}/{name}: {entries} entries"))
        })
        .collect();
    out.sort();
    out.truncate(64);
    out
}

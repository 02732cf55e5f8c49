//! The harness's layers (ARCHITECTURE.md): each module refers only to its own layer and those
//! below it, through a `use` or an inline `crate::` path. A new module must be given a layer here.

use std::path::Path;

/// Bottom to top. Keep in step with ARCHITECTURE.md's "Layers".
const LAYERS: &[&[&str]] = &[
    &["out", "error", "env", "ids"],
    &["devices", "lock"],
    &["peaks"],
    &["store"],
    &["artifacts"],
    &["kernel_suites"],
    &["registry"],
    &["configs"],
    &["plan", "stage"],
    &["executor", "worker"],
    &["claims", "claim_views"],
    &[
        "compare",
        "history",
        "criterion_import",
        "summary",
        "export",
    ],
    &["plots", "sitecheck"],
    &["report"],
    &["run"],
];

/// Items of `lib.rs` itself, usable from every layer.
const ROOT_ITEMS: &[&str] = &["require_device"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The modules `source` names through `crate::<module>`, including grouped imports
/// (`use crate::{a::X, b}`); comments are skipped.
fn referenced(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `claimbench_crate::`
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
    }
    out
}

/// The references of module `module` (its source `source`) that go up a layer.
fn violations(module: &str, source: &str) -> Result<Vec<String>, String> {
    let own = layer_of(module).ok_or_else(|| format!("module {module} has no layer"))?;
    Ok(referenced(source)
        .into_iter()
        .filter(|m| m != module && !ROOT_ITEMS.contains(&m.as_str()))
        .filter(|m| layer_of(m).is_none_or(|l| l > own))
        .map(|m| format!("{module} (layer {own}) refers to crate::{m}"))
        .collect())
}

#[test]
fn no_module_refers_to_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        match violations(module, &text) {
            Ok(v) => problems.extend(v),
            Err(e) => problems.push(format!("{}: {e}", rel.display())),
        }
        seen += 1;
    }
    assert!(
        seen >= 20,
        "only {seen} modules found under {}",
        src.display()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker's own control: it catches an upward `use`, an inline path, a grouped import and
/// an unknown module, and ignores comments.
#[test]
fn the_layer_check_catches_upward_references() {
    assert_eq!(
        violations("store", "use crate::report::render;")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        violations("store", "let x = crate::run::MAX;")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        violations(
            "configs",
            "use crate::{error::E, claims, registry::Registry};"
        )
        .unwrap()
        .len(),
        1
    );
    assert_eq!(violations("ids", "use crate::nowhere;").unwrap().len(), 1);
    assert!(violations("nowhere", "").is_err());
    assert!(
        violations("store", "// see crate::report\n/// [`crate::run`]")
            .unwrap()
            .is_empty()
    );
    assert!(
        violations(
            "run",
            "use crate::{report, store::RunDir};\nuse crate::require_device;"
        )
        .unwrap()
        .is_empty()
    );
}

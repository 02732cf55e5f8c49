//! The stored `small` summary (`benches/baselines/small-summary.json`) against README's status
//! table and against the code: a README that says something no stored run measured, or a summary
//! of claims or settings the code no longer has, fails here (issue 23, "Honest status").

use std::path::PathBuf;

use claimbench::registry::Registry;
use claimbench::summary;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness sits in the workspace")
        .to_path_buf()
}

#[test]
fn readme_shows_the_stored_summary() {
    let s = summary::read(&repo().join(summary::SUMMARY_PATH)).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = summary::readme_block(&readme).expect("README has a status block");
    assert_eq!(
        block,
        summary::readme_table(&s),
        "README's status table differs from {}: run `claimbench summary`",
        summary::SUMMARY_PATH
    );
}

#[test]
fn the_stored_summary_matches_the_code() {
    let s = summary::read(&repo().join(summary::SUMMARY_PATH)).unwrap();
    let problems = summary::check_against_code(&s, &Registry::default());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(s.fdr.as_ref().is_some_and(|f| f.family_size > 0));
    assert!(!s.git_sha.is_empty());
}

#[test]
fn a_summary_that_drifts_from_the_code_is_caught() {
    let mut s = summary::read(&repo().join(summary::SUMMARY_PATH)).unwrap();
    s.config_hash = "0".repeat(64);
    if let Some(p) = s.papers.values_mut().next() {
        p.claim_ids.push("dora/not-a-claim".into());
    }
    let problems = summary::check_against_code(&s, &Registry::default());
    assert!(
        problems.iter().any(|p| p.contains("settings hash")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("not-a-claim")),
        "{problems:?}"
    );
    // A README edited by hand no longer matches.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = summary::readme_block(&readme).unwrap();
    let edited = block.replacen(" | ", " | 9", 2);
    assert_ne!(edited, block, "the edit changed the table");
    let fresh = summary::read(&repo().join(summary::SUMMARY_PATH)).unwrap();
    assert_eq!(block, summary::readme_table(&fresh));
    assert_ne!(edited, summary::readme_table(&fresh));
}

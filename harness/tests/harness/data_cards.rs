//! Data cards (`manifest.json` `data_cards`): papers defined here return cards for their text; a
//! paper that cannot load its text stops the run (exit 4) before any unit runs; cards of the same
//! text from several papers merge; the cards reach the manifest, the paper pages and the
//! environment page, escaped; `--corpus-root` reaches the units (`RunContext::data`) and is
//! checked; a crafted card is refused when the run is read back; a resume whose text changed is
//! refused unless `--force`.

use std::path::Path;

use claimbench::devices::BackendChoice;
use claimbench::registry::{Entry, Registry};
use claimbench::run::{RunOptions, run};
use claimbench::store::{Manifest, RunDir};
use claimbench_claims::{ClaimSpec, Direction, Evidence, TestSpec};
use claimbench_paper::report::Section;
use claimbench_paper::{
    DataCard, DataEnv, Judged, MetricRow, Outcome, Paper, PaperInfo, RunContext, Scale, UnitRecord,
    UnitSpec,
};

use crate::cli::{bin, stderr};
use crate::fixtures::{Spec, train_unit, write_run};

/// A corpus-backed test paper: two arms per seed, one ordering claim (so it gets a page), and
/// two data cards, `en-fortunes` (text digest `text` repeated) and `rust-src`; with `fail`, its
/// text cannot be loaded.
struct Corp {
    id: &'static str,
    text: char,
    fail: bool,
}

fn card(domain: &str, sha: char, paper: &str) -> DataCard {
    DataCard {
        domain: domain.into(),
        language: "en".into(),
        package: "fortunes".into(),
        // Markup in a field is shown as text; a long word wraps (no sideways scroll).
        version: format!("1:1.99<b>x</b>{}", "-long".repeat(30)),
        files: 3,
        documents: 10,
        duplicates: 1,
        over_budget: 2,
        bytes: 12_345,
        tokens: 4_321,
        split_documents: [8, 1, 1],
        split_tokens: [3_400, 461, 460],
        sha256: sha.to_string().repeat(64),
        vocab_size: 512,
        tokenizer_sha256: "b".repeat(64),
        used_by: vec![paper.into()],
    }
}

impl Paper for Corp {
    type Config = serde_json::Value;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: self.id,
            title: "A corpus-backed test paper",
            arxiv: "0000.00002",
            kernels: &[],
        }
    }

    fn config(&self, _scale: Scale) -> serde_json::Value {
        serde_json::json!({})
    }

    fn validate(&self, _cfg: &serde_json::Value, _seeds: Option<&[u64]>) -> Result<(), String> {
        Ok(())
    }

    fn estimated_bytes(&self, _cfg: &serde_json::Value) -> u64 {
        0
    }

    fn units(&self, _cfg: &serde_json::Value, seeds: &[u64]) -> Vec<UnitSpec> {
        seeds
            .iter()
            .flat_map(|&s| {
                ["a", "b"].map(|arm| train_unit(self.id, "corpus", arm, s, "arm", Vec::new()))
            })
            .collect()
    }

    fn run_unit(&self, _cfg: &serde_json::Value, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let v = if unit.arm == "a" { 0.0 } else { 1.0 } + unit.seed.unwrap_or(0) as f64 * 0.01;
        // The unit reports where its text came from: the run's DataEnv reached it.
        let root = match &ctx.data.corpus_root {
            Some(r) => format!("root {}", r.display()),
            None => "debian packages".into(),
        };
        Outcome::passed(root, vec![MetricRow::new("value", None, v)])
    }

    fn claim_specs(&self, _cfg: &serde_json::Value) -> Vec<ClaimSpec> {
        vec![spec(self.id)]
    }

    fn claims(&self, _cfg: &serde_json::Value, records: &[UnitRecord], scale: &str) -> Judged {
        let values = |arm: &str| -> Vec<(u64, f64)> {
            let mut v: Vec<(u64, f64)> = records
                .iter()
                .filter(|u| u.paper == self.id && u.arm == arm && u.passed())
                .filter_map(|u| Some((u.seed?, u.scalar("value")?)))
                .collect();
            v.sort_by_key(|&(s, _)| s);
            v
        };
        let (a, b) = (values("a"), values("b"));
        let seeds: Vec<u64> = a.iter().map(|&(s, _)| s).collect();
        let evidence = Evidence::Paired {
            a: a.iter().map(|&(_, v)| v).collect(),
            b: b.iter().map(|&(_, v)| v).collect(),
        };
        match claimbench_claims::evaluate(&spec(self.id), &evidence, &seeds, scale) {
            Ok(c) => Judged {
                claims: vec![c],
                warnings: Vec::new(),
            },
            Err(e) => Judged {
                claims: Vec::new(),
                warnings: vec![e.to_string()],
            },
        }
    }

    fn sections(&self, _cfg: &serde_json::Value, _records: &[UnitRecord]) -> Vec<Section> {
        Vec::new()
    }

    fn data_cards(&self, _cfg: &serde_json::Value, env: &DataEnv) -> Result<Vec<DataCard>, String> {
        if self.fail {
            return Err(format!(
                "the text of domain de-fortunes comes from the Debian package fortunes-de, which is not installed; install it with `apt-get install fortunes-de` (corpus root {:?})",
                env.corpus_root
            ));
        }
        Ok(vec![
            card("en-fortunes", self.text, self.id),
            card("rust-src", 'c', self.id),
        ])
    }
}

fn spec(paper: &str) -> ClaimSpec {
    ClaimSpec {
        min_seeds: 2,
        band_rule: "a test claim: only the sign".into(),
        ..ClaimSpec::new(
            paper,
            "a-below-b",
            "Arm a measures less than arm b.",
            "the test",
            "value",
            TestSpec::Ordering {
                direction: Direction::Less,
                alpha: 0.05,
            },
        )
    }
}

fn corp(id: &'static str, text: char) -> Entry {
    Entry::Paper(Box::new(Corp {
        id,
        text,
        fail: false,
    }))
}

fn options(out: &Path) -> RunOptions {
    RunOptions {
        scale: Some(Scale::Smoke),
        backend: Some(BackendChoice::Flex),
        seeds: Some(2),
        out: Some(out.to_path_buf()),
        quiet: true,
        ..Default::default()
    }
}

fn resume(out: &Path, force: bool) -> RunOptions {
    RunOptions {
        resume: Some(out.to_path_buf()),
        scale: None,
        seeds: None,
        out: None,
        force,
        ..options(out)
    }
}

fn is_input_error(err: &anyhow::Error) -> bool {
    err.downcast_ref::<claimbench::error::InputError>()
        .is_some()
}

#[test]
fn a_paper_that_cannot_load_its_text_stops_the_run_before_any_unit() {
    let reg = Registry::new(vec![
        corp("corp-a", 'a'),
        Entry::Paper(Box::new(Corp {
            id: "corp-b",
            text: 'a',
            fail: true,
        })),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let err = run(options(&out), &reg).err().expect("the run is refused");
    assert!(is_input_error(&err), "exit 4: {err:#}");
    let msg = format!("{err:#}");
    assert!(msg.contains("corp-b"), "names the paper: {msg}");
    assert!(
        msg.contains("apt-get install fortunes-de"),
        "the paper's message: {msg}"
    );
    assert!(!out.exists(), "no run directory, no unit ran");

    // A paper that is not selected is not asked for its text.
    let only = RunOptions {
        only: Some(vec!["corp-a".into()]),
        ..options(&out)
    };
    let result = run(only, &reg).unwrap();
    assert_eq!(result.exit, claimbench::error::Exit::Ok);
    let (_, m) = RunDir::open(&out).unwrap();
    assert_eq!(m.data_cards.len(), 2);
    assert!(m.data_cards.iter().all(|c| c.used_by == ["corp-a"]));
}

#[test]
fn cards_merge_reach_the_manifest_and_the_paper_pages() {
    // corp-a and corp-b read the same rust-src text (one card, used by both) and different
    // en-fortunes texts (two cards).
    let reg = Registry::new(vec![corp("corp-a", 'a'), corp("corp-b", 'd')]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let result = run(
        RunOptions {
            corpus_root: Some(corpus.clone()),
            ..options(&out)
        },
        &reg,
    )
    .unwrap();
    assert_eq!(result.exit, claimbench::error::Exit::Ok);
    let (dir, m): (RunDir, Manifest) = RunDir::open(&out).unwrap();
    let corpus = corpus.canonicalize().unwrap();
    assert_eq!(
        m.corpus_root.as_deref(),
        Some(corpus.to_str().unwrap()),
        "the root is recorded"
    );
    let shown: Vec<(&str, char, Vec<&str>)> = m
        .data_cards
        .iter()
        .map(|c| {
            (
                c.domain.as_str(),
                c.sha256.chars().next().unwrap(),
                c.used_by.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("en-fortunes", 'a', vec!["corp-a"]),
            ("rust-src", 'c', vec!["corp-a", "corp-b"]),
            ("en-fortunes", 'd', vec!["corp-b"]),
        ]
    );
    // The raw manifest holds them under `data_cards`.
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(raw["data_cards"].as_array().unwrap().len(), 3);
    // The units read from the run's DataEnv.
    let rec = dir.read_unit("corp-a/a/seed-0").unwrap().unwrap();
    assert_eq!(rec.message, format!("root {}", corpus.display()));

    let page =
        |id: &str| std::fs::read_to_string(out.join(format!("report/papers/{id}.html"))).unwrap();
    let a = page("corp-a");
    assert!(a.contains(r#"<h2 id="data">Data</h2>"#), "{a}");
    assert!(a.contains("en-fortunes") && a.contains("rust-src"), "{a}");
    let (sha_a, sha_c, sha_d) = ("a".repeat(64), "c".repeat(64), "d".repeat(64));
    assert!(
        a.contains(&format!(r#"<code title="{sha_a}">{}</code>"#, &sha_a[..12])),
        "short sha with the full one in a title: {a}"
    );
    assert!(a.contains(&sha_c[..12]), "{a}");
    assert!(
        !a.contains(&sha_d[..12]),
        "corp-b's text is not corp-a's: {a}"
    );
    assert!(a.contains("3400 / 461 / 460"), "tokens per split: {a}");
    assert!(
        a.contains("1:1.99&lt;b&gt;x&lt;&#x2f;b&gt;") || a.contains("1:1.99&lt;b&gt;x&lt;/b&gt;"),
        "escaped: {a}"
    );
    assert!(!a.contains("<b>x</b>"), "no markup from a card: {a}");
    let b = page("corp-b");
    assert!(b.contains(&sha_d[..12]) && b.contains(&sha_c[..12]), "{b}");
    assert!(!b.contains(&sha_a[..12]), "{b}");
    // The data table comes before the paper's own sections and sits in the scrolling container.
    assert!(
        a.contains("<div class=\"scroll\">\n<table class=\"data\">"),
        "{a}"
    );
    let env = std::fs::read_to_string(out.join("report/environment.html")).unwrap();
    assert!(env.contains("text corpus"), "{env}");
    // minijinja escapes '/' too.
    let shown = corpus.to_str().unwrap().replace('/', "&#x2f;");
    assert!(
        env.contains(&shown),
        "the root on the environment page: {env}"
    );

    // Every page opens cleanly in headless Chromium at 1280 px (no sideways scroll, no raw
    // JSON in a cell, no broken link), when a browser is installed.
    match claimbench::sitecheck::find_browser() {
        Some(b) => {
            let r = claimbench::sitecheck::check(&out.join("report"), Some(&b)).unwrap();
            assert!(r.problems.is_empty(), "site problems: {:#?}", r.problems);
        }
        None => assert!(
            std::env::var("CLAIMBENCH_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "CLAIMBENCH_REQUIRE_BROWSER=1 but no chromium found"
        ),
    }
}

#[test]
fn crafted_cards_are_refused_when_the_run_is_read() {
    let cases: [(&str, serde_json::Value, &[&str]); 3] = [
        (
            "domain",
            "../evil".into(),
            &["manifest.json", "domain", "'..' segment"],
        ),
        (
            "sha256",
            "z".repeat(64).into(),
            &["manifest.json", "sha256", "64 hex digits"],
        ),
        (
            "used_by",
            serde_json::json!(["<script>"]),
            &["manifest.json", "used_by"],
        ),
    ];
    for (what, value, needles) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let root = write_run(tmp.path(), &Spec::default());
        let mut c = serde_json::to_value(card("en-fortunes", 'a', "dora")).unwrap();
        c[what] = value;
        edit_manifest(&root, serde_json::json!([c]));
        refused(&root, needles, what);
    }
    // More cards than a run holds.
    let tmp = tempfile::tempdir().unwrap();
    let root = write_run(tmp.path(), &Spec::default());
    let c = serde_json::to_value(card("en-fortunes", 'a', "dora")).unwrap();
    edit_manifest(&root, serde_json::Value::Array(vec![c; 65]));
    refused(
        &root,
        &["manifest.json", "65 data cards", "at most 64"],
        "count",
    );

    // A good card on a fixture run is shown on the page of the paper that uses it.
    let tmp = tempfile::tempdir().unwrap();
    let root = write_run(tmp.path(), &Spec::default());
    let c = serde_json::to_value(card("en-fortunes", 'e', "dora")).unwrap();
    edit_manifest(&root, serde_json::json!([c]));
    let o = bin()
        .args(["report", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dora = std::fs::read_to_string(root.join("report/papers/dora.html")).unwrap();
    assert!(dora.contains(&"e".repeat(12)), "{dora}");
    let mixtral = std::fs::read_to_string(root.join("report/papers/mixtral.html")).unwrap();
    assert!(!mixtral.contains(r#"id="data""#), "{mixtral}");
}

fn edit_manifest(root: &Path, cards: serde_json::Value) {
    let p = root.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["data_cards"] = cards;
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// `report` on `root` exits 4 with a short message holding every needle, and writes no page.
fn refused(root: &Path, needles: &[&str], what: &str) {
    let o = bin()
        .args(["report", root.to_str().unwrap()])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{what}: expected exit 4: {e}");
    for n in needles {
        assert!(e.contains(n), "{what}: message lacks {n:?}: {e}");
    }
    assert!(e.len() < 1200, "{what}: message is {} bytes: {e}", e.len());
    assert!(
        !root.join("report").exists(),
        "{what}: a report was written"
    );
}

#[test]
fn a_resume_whose_text_changed_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let reg = Registry::new(vec![corp("corp-a", 'a')]);
    let first = RunOptions {
        corpus_root: Some(corpus.clone()),
        no_report: true,
        ..options(&out)
    };
    assert_eq!(run(first, &reg).unwrap().exit, claimbench::error::Exit::Ok);
    let (dir, _) = RunDir::open(&out).unwrap();
    std::fs::remove_file(dir.unit_path("corp-a/b/seed-1")).unwrap();

    // The same text: the resume goes on, with the run's own corpus root.
    let unchanged = RunOptions {
        no_report: true,
        ..resume(&out, false)
    };
    assert_eq!(
        run(unchanged, &reg).unwrap().exit,
        claimbench::error::Exit::Ok
    );
    let rec = dir.read_unit("corp-a/b/seed-1").unwrap().unwrap();
    let corpus = corpus.canonicalize().unwrap();
    assert_eq!(rec.message, format!("root {}", corpus.display()));

    // Another text for en-fortunes: refused, naming the domain and both digests, and nothing
    // in the run directory changes.
    std::fs::remove_file(dir.unit_path("corp-a/b/seed-1")).unwrap();
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    let changed = Registry::new(vec![corp("corp-a", 'd')]);
    let err = run(resume(&out, false), &changed).err().expect("refused");
    assert!(is_input_error(&err), "exit 4: {err:#}");
    let msg = format!("{err:#}");
    for n in [
        "the text of domain en-fortunes changed since the run started",
        &format!("{} → {}", "a".repeat(12), "d".repeat(12)),
        "--force",
    ] {
        assert!(msg.contains(n), "message lacks {n:?}: {msg}");
    }
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    assert!(dir.read_unit("corp-a/b/seed-1").unwrap().is_none());

    // --force goes on and records the text read now.
    let forced = RunOptions {
        no_report: true,
        ..resume(&out, true)
    };
    assert_eq!(
        run(forced, &changed).unwrap().exit,
        claimbench::error::Exit::Ok
    );
    let (_, m) = RunDir::open(&out).unwrap();
    assert_eq!(m.data_cards[0].sha256, "d".repeat(64));
    assert!(dir.read_unit("corp-a/b/seed-1").unwrap().is_some());
}

#[test]
fn a_corpus_root_that_is_not_a_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-corpus");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = tmp.path().join("r");
    let base = [
        "run",
        "--scale",
        "smoke",
        "--backend",
        "flex",
        "--quiet",
        "--only",
        "kernels/token-logprob",
        "--out",
        out.to_str().unwrap(),
    ];
    for root in [&missing, &file] {
        let o = bin()
            .args(base)
            .args(["--corpus-root", root.to_str().unwrap()])
            .output()
            .unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{e}");
        assert!(
            e.contains("--corpus-root") && e.contains(root.to_str().unwrap()),
            "{e}"
        );
        assert!(e.contains("not a directory"), "{e}");
        // The same through the environment variable.
        let o = bin()
            .args(base)
            .env("CLAIMBENCH_CORPUS_ROOT", root)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(stderr(&o).contains(root.to_str().unwrap()));
    }
    assert!(!out.exists(), "nothing was written");
}

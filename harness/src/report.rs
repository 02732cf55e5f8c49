//! `claimbench report <run-dir>`: a static site rendered with minijinja (templates in
//! `reports/templates`, compiled into the binary, HTML autoescaped) into `<run-dir>/report/`.
//! Pages link relatively and embed their SVG plots, so the site works from `file://` offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use claimbench_claims::{ClaimKind, ClaimsFile};

use crate::claim_views::{ClaimView, KindCounts, fdr_text};
use crate::plots::ForestRow;
use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use claimbench_paper::bench::BenchEntry;
use claimbench_paper::report::{Section, Table};

use crate::lock::RunLock;
use crate::plots::{RooflinePoint, Series, roofline, xy_plot};
use crate::registry::Registry;
use crate::store::{RunDir, UnitRecord, read_bounded, write_atomic};

const BASE: &str = include_str!("../../reports/templates/base.html");
const INDEX: &str = include_str!("../../reports/templates/index.html");
const KERNEL: &str = include_str!("../../reports/templates/kernel.html");
const PAPER: &str = include_str!("../../reports/templates/paper.html");
const ENVIRONMENT: &str = include_str!("../../reports/templates/environment.html");
const HISTORY: &str = include_str!("../../reports/templates/history.html");
const STYLE: &str = include_str!("../../reports/static/style.css");

/// A benchmark row prepared for the templates.
#[derive(Serialize)]
struct BenchView {
    entry: BenchEntry,
    ours_ms: f64,
    baseline_ms: f64,
    floor_ms: Option<f64>,
    floor_ratio: Option<f64>,
    target_met: Option<bool>,
    /// `met` (CI above the target), `not met` (CI below), `inconclusive` (CI spans it), or
    /// `measured` (no target).
    verdict: &'static str,
    gbps: f64,
    gflops: f64,
    /// Percent of the measured peak bandwidth / FLOP rate, when the device was probed.
    pct_bandwidth: Option<f64>,
    pct_flops: Option<f64>,
    /// Why the throughput is suspect (above the measured peak).
    suspect: Option<String>,
    /// Our throughput as a share of the floor that bounds it ([`crate::peaks::Peaks::pct_of_floor`]).
    pct_of_floor: Option<f64>,
    /// Every baseline timed, with its median.
    baselines: Vec<BaselineView>,
    /// The cross-device alternative, when timed.
    cross_device: Option<BaselineView>,
    page: String,
    plot: String,
}

/// One baseline of a benchmark as the kernel page lists it.
#[derive(Serialize)]
struct BaselineView {
    name: String,
    median_ms: f64,
    speedup: f64,
    speedup_ci: [f64; 2],
}

/// The verdict of a benchmark against its target, from the CI (not the point estimate).
fn bench_verdict(e: &BenchEntry) -> &'static str {
    match e.target {
        None => "measured",
        Some(t) if e.speedup_ci[0] >= t => "met",
        Some(t) if e.speedup_ci[1] < t => "not met",
        Some(_) => "inconclusive",
    }
}

/// A paper page: a summary (title, counts by kind, the forest plot), then a card per claim,
/// then the paper's own sections.
#[derive(Serialize)]
struct PaperView {
    id: String,
    page: String,
    title: String,
    arxiv: String,
    claims: Vec<ClaimView>,
    counts: KindCounts,
    /// The counts as text: reproductions by verdict, controls passed, checks passed.
    count_texts: [String; 3],
    forest: String,
    sections: Vec<SectionView>,
    /// The cards of the text this paper read (`manifest.json` `data_cards` whose `used_by`
    /// names it), checked when the manifest was read.
    data: Vec<claimbench_paper::DataCard>,
}

/// A paper section as the templates read it: the paper's [`Section`] with its figures drawn
/// (inline SVG).
#[derive(Serialize, Debug, Clone)]
pub struct SectionView {
    /// Heading.
    pub title: String,
    /// A paragraph above the table.
    pub note: String,
    /// A table, if any.
    pub table: Option<Table>,
    /// SVG documents, one `<figure>` each.
    pub figures: Vec<String>,
    /// Caption under the figures.
    pub caption: String,
}

impl From<Section> for SectionView {
    fn from(s: Section) -> Self {
        SectionView {
            figures: s.figures.iter().map(crate::plots::figure).collect(),
            title: s.title,
            note: s.note,
            table: s.table,
            caption: s.caption,
        }
    }
}

/// A kernel page.
#[derive(Serialize)]
struct KernelView {
    id: String,
    page: String,
    benches: Vec<BenchView>,
    checks: Vec<CheckRow>,
    units: Vec<UnitRecord>,
    train_plot: Option<String>,
    roofline: Option<String>,
}

/// One correctness measurement: shape, what, max |Δ|, tolerance.
#[derive(Serialize)]
struct CheckRow {
    unit: String,
    backend: String,
    shape: String,
    what: String,
    err: f64,
    tol: f64,
    ok: bool,
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("base.html", BASE)
        .expect("base template parses");
    env.add_template("index.html", INDEX)
        .expect("index template parses");
    env.add_template("kernel.html", KERNEL)
        .expect("kernel template parses");
    env.add_template("paper.html", PAPER)
        .expect("paper template parses");
    env.add_template("environment.html", ENVIRONMENT)
        .expect("environment template parses");
    env.add_template("history.html", HISTORY)
        .expect("history template parses");
    env.add_filter("fmt", |v: f64, digits: usize| -> String {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "–".to_string()
        }
    });
    env.add_filter("sci", |v: f64| -> String {
        if v.is_finite() {
            format!("{v:.2e}")
        } else {
            "–".to_string()
        }
    });
    env
}

/// The file name of a kernel page: `kernels/token-logprob` → `kernels/token-logprob.html`.
fn kernel_page(kernel: &str) -> String {
    format!("{kernel}.html")
}

/// Renders the report of the run in `dir` into `dir/report/`; returns the index page's path.
/// Takes the run's lock ([`RunLock`]): a run another process is writing is an input error.
/// A missing or corrupt `manifest.json` (or other run file), or an id outside the grammar, is
/// an input error naming the file.
pub fn render(dir: &Path, reg: &Registry) -> Result<PathBuf> {
    let (run, _, lock) = RunDir::open_locked(dir, "report")?;
    render_locked(&run, &lock, reg)
}

/// [`render`] for the holder of the run's lock. Every file of the run is read and checked
/// before anything is written: the ids that become file names and links ([`crate::ids`]), and
/// the tables published in `report/data/` (they must parse with the contract's columns).
pub fn render_locked(run: &RunDir, lock: &RunLock, reg: &Registry) -> Result<PathBuf> {
    let dir = run.root.as_path();
    let (_, manifest) = RunDir::open(dir)?;
    let units = run.read_units()?;
    let benches = run.benchmark_entries(&units)?;
    let claims: ClaimsFile = run
        .read_claims()?
        .unwrap_or_else(|| ClaimsFile::new(Vec::new()));
    // Raw data travels with the site, so `report/` alone can be published or archived; each
    // file is read (bounded) and checked before it is copied.
    let mut published = Vec::new();
    for f in [
        "metrics.parquet",
        "metrics.csv",
        "benchmarks.json",
        "claims.json",
        "manifest.json",
    ] {
        let src = dir.join(f);
        if src.is_file() {
            let bytes = read_bounded(&src)?;
            match f {
                "metrics.parquet" | "metrics.csv" => check_metrics_table(&src, &bytes)?,
                // Parsed and checked above (`open`, `read_benchmarks`, `read_claims`).
                _ => {}
            }
            published.push((f, bytes));
        }
    }

    let out = dir.join("report");
    let stale = run.remove_stale_temporaries(lock)?;
    if stale > 0 {
        errln!("note: removed {stale} temporary file(s) left by an interrupted run or report");
    }
    std::fs::create_dir_all(out.join("static"))
        .with_context(|| format!("creating {}", out.display()))?;
    write_atomic(&out.join("static/style.css"), STYLE.as_bytes())?;
    let mut downloads = Vec::new();
    for (f, bytes) in &published {
        write_atomic(&out.join("data").join(f), bytes)?;
        downloads.push(*f);
    }
    let peaks = manifest.peaks.clone();

    // Group benchmarks and unit records by kernel.
    let mut kernels: BTreeMap<String, KernelView> = BTreeMap::new();
    for b in &benches {
        let k = kernels
            .entry(b.kernel.clone())
            .or_insert_with(|| new_kernel(&b.kernel));
        let ours = b.ours_median_ms();
        let floor = (!b.floor_ms.is_empty()).then(|| b.floor_median_ms());
        let series = {
            let mut s = vec![Series {
                label: "ours (fused)".into(),
                points: b
                    .ours_ms
                    .iter()
                    .enumerate()
                    .map(|(i, &y)| (i as f64, y))
                    .collect(),
            }];
            if b.baselines.is_empty() {
                s.push(Series {
                    label: "baseline".into(),
                    points: b
                        .baseline_ms
                        .iter()
                        .enumerate()
                        .map(|(i, &y)| (i as f64, y))
                        .collect(),
                });
            }
            for base in &b.baselines {
                s.push(Series {
                    label: base.name.clone(),
                    points: base
                        .ms
                        .iter()
                        .enumerate()
                        .map(|(i, &y)| (i as f64, y))
                        .collect(),
                });
            }
            if !b.floor_ms.is_empty() {
                s.push(Series {
                    label: "read floor".into(),
                    points: b
                        .floor_ms
                        .iter()
                        .enumerate()
                        .map(|(i, &y)| (i as f64, y))
                        .collect(),
                });
            }
            s
        };
        let plot = xy_plot(
            &format!("{} vs {}", b.implementation, b.baseline),
            "round",
            "time (ms)",
            &series,
            false,
        );
        let gflops = b.flops as f64 / (ours * 1e-3) / 1e9;
        k.benches.push(BenchView {
            entry: b.clone(),
            ours_ms: ours,
            baseline_ms: b.baseline_median_ms(),
            floor_ms: floor,
            floor_ratio: floor.map(|f| ours / f),
            target_met: b.target_met(),
            verdict: bench_verdict(b),
            gbps: b.ours_gbps(),
            gflops,
            pct_bandwidth: peaks
                .as_ref()
                .map(|p| 100.0 * b.ours_gbps() / p.bandwidth_gbps),
            pct_flops: peaks.as_ref().map(|p| 100.0 * gflops / p.gflops),
            suspect: peaks
                .as_ref()
                .and_then(|p| p.suspect(b.bytes, b.flops, ours)),
            pct_of_floor: peaks
                .as_ref()
                .and_then(|p| p.pct_of_floor(b.bytes, b.flops, ours)),
            baselines: b
                .baselines
                .iter()
                .map(|base| BaselineView {
                    name: base.name.clone(),
                    median_ms: claimbench_claims::stats::median(&base.ms).unwrap_or(f64::NAN),
                    speedup: base.speedup,
                    speedup_ci: base.speedup_ci,
                })
                .collect(),
            cross_device: b.cross_device.as_ref().map(|c| BaselineView {
                name: c.name.clone(),
                median_ms: claimbench_claims::stats::median(&c.ms).unwrap_or(f64::NAN),
                speedup: c.speedup,
                speedup_ci: c.speedup_ci,
            }),
            page: kernel_page(&b.kernel),
            plot,
        });
    }
    for u in &units {
        if u.paper != "kernels" {
            continue;
        }
        // Checked when read: a `kernels` unit's id starts with its kernel id.
        let Some(kernel) = crate::ids::kernel_of(&u.unit_id) else {
            continue;
        };
        let k = kernels
            .entry(kernel.clone())
            .or_insert_with(|| new_kernel(&kernel));
        for m in u
            .metrics
            .iter()
            .filter(|m| m.metric.starts_with("max_abs_err_"))
        {
            let what = m.metric.trim_start_matches("max_abs_err_").to_string();
            let tol = u
                .metrics
                .iter()
                .find(|t| t.metric == format!("tolerance_{what}") && t.shape == m.shape)
                .map(|t| t.value)
                .unwrap_or(f64::NAN);
            k.checks.push(CheckRow {
                unit: u.unit_id.clone(),
                backend: u.backend.clone(),
                shape: m.shape.clone(),
                what,
                err: m.value,
                tol,
                ok: m.value <= tol,
            });
        }
        k.units.push(u.clone());
    }
    for k in kernels.values_mut() {
        let curves: Vec<Series> = k
            .units
            .iter()
            .filter(|u| u.metrics.iter().any(|m| m.metric == "train_loss"))
            .map(|u| Series {
                label: format!("{} seed {}", u.backend, u.seed.unwrap_or(0)),
                points: u
                    .metrics
                    .iter()
                    .filter(|m| m.metric == "train_loss")
                    .map(|m| (m.step.unwrap_or(0) as f64, m.value))
                    .collect(),
            })
            .collect();
        if !curves.is_empty() {
            k.train_plot = Some(xy_plot(
                "training loss through the op (bigram, AdamW)",
                "step",
                "loss (nats)",
                &curves,
                true,
            ));
        }
        if let Some(p) = &peaks {
            let points: Vec<RooflinePoint> = k
                .benches
                .iter()
                .flat_map(|b| {
                    let e = &b.entry;
                    let ai = e.flops as f64 / e.bytes.max(1) as f64;
                    let rate = |ms: f64| e.flops as f64 / (ms * 1e-3) / 1e9;
                    [
                        RooflinePoint {
                            label: format!("{} (ours)", e.implementation),
                            intensity: ai,
                            gflops: rate(b.ours_ms),
                        },
                        RooflinePoint {
                            label: format!("{} (baseline)", e.baseline),
                            intensity: ai,
                            gflops: rate(b.baseline_ms),
                        },
                    ]
                })
                .collect();
            if !points.is_empty() {
                k.roofline = Some(roofline(
                    &format!("roofline on {}", p.device),
                    p.bandwidth_gbps,
                    p.gflops,
                    &points,
                ));
            }
        }
    }

    // Papers with claims get a page each.
    let mut papers: BTreeMap<String, PaperView> = BTreeMap::new();
    for c in &claims.claims {
        let info = reg.paper(&c.paper).map(|p| p.info());
        papers
            .entry(c.paper.clone())
            .or_insert_with(|| PaperView {
                id: c.paper.clone(),
                page: format!("papers/{}.html", c.paper),
                title: info.as_ref().map_or(String::new(), |i| i.title.to_string()),
                arxiv: info.as_ref().map_or(String::new(), |i| i.arxiv.to_string()),
                claims: Vec::new(),
                counts: KindCounts::default(),
                count_texts: Default::default(),
                forest: String::new(),
                sections: Vec::new(),
                data: manifest
                    .data_cards
                    .iter()
                    .filter(|d| d.used_by.contains(&c.paper))
                    .cloned()
                    .collect(),
            })
            .claims
            .push(ClaimView::new(c));
    }
    for p in papers.values_mut() {
        p.counts = KindCounts::of(p.claims.iter().map(|v| &v.claim));
        p.count_texts = [
            p.counts.reproduction.text(),
            p.counts.control.pass_text(),
            p.counts.check.pass_text(),
        ];
        let rows: Vec<ForestRow> = p
            .claims
            .iter()
            .filter(|v| v.claim.kind != ClaimKind::Check)
            .filter_map(|v| {
                Some(ForestRow {
                    label: v
                        .claim
                        .id
                        .strip_prefix(&format!("{}/", p.id))
                        .unwrap_or(&v.claim.id)
                        .to_string(),
                    estimate: v.claim.our_value.as_f64()?,
                    ci: v.claim.ci,
                    band: v.claim.band.as_ref()?.reproduced,
                    verdict: v.claim.verdict.as_str().to_string(),
                })
            })
            .collect();
        if !rows.is_empty() {
            p.forest = crate::plots::forest(
                &format!("{}: every reproduction and control against its band", p.id),
                &rows,
            );
        }
    }
    let all_papers: Vec<&str> = reg.papers().map(|p| p.info().id).collect();
    let fdr_note = fdr_text(claims.fdr.as_ref(), &all_papers);
    let total_counts = KindCounts::of(&claims.claims);
    // Imported criterion results have neither settings nor reproduction units (nor paper pages).
    if let Some(configs) = crate::configs::of_manifest(reg, &manifest)? {
        for (id, page) in papers.iter_mut() {
            if let (Some(p), Some(cfg)) = (reg.paper(id), configs.get(id)) {
                page.sections = p
                    .sections(cfg, &units)
                    .into_iter()
                    .map(SectionView::from)
                    .collect();
            }
        }
    }
    let history = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .and_then(|p| crate::history::collect(p, Some(&manifest.run_id)).ok());
    let history_plots = history.as_ref().map(history_plots).unwrap_or_default();

    let env = env();
    let kernel_list: Vec<&KernelView> = kernels.values().collect();
    let all_benches: Vec<&BenchView> = kernel_list.iter().flat_map(|k| k.benches.iter()).collect();
    let index = env
        .get_template("index.html")?
        .render(context! {
            root => "",
            manifest => &manifest,
            claims => &claims.claims.iter().map(ClaimView::new).collect::<Vec<_>>(),
            counts => &total_counts,
            fdr_note => &fdr_note,
            benches => &all_benches,
            kernels => &kernel_list,
            papers => papers.values().collect::<Vec<_>>(),
            units => &units,
            downloads => &downloads,
            has_history => history.is_some(),
        })
        .context("rendering index.html")?;
    write_atomic(&out.join("index.html"), index.as_bytes())?;
    for p in papers.values() {
        let html = env
            .get_template("paper.html")?
            .render(context! { root => "../", manifest => &manifest, paper => p, fdr_note => &fdr_note })
            .with_context(|| format!("rendering {}", p.page))?;
        write_atomic(&out.join(&p.page), html.as_bytes())?;
    }
    let html = env
        .get_template("environment.html")?
        .render(context! { root => "", manifest => &manifest, peaks => &peaks, downloads => &downloads })
        .context("rendering environment.html")?;
    write_atomic(&out.join("environment.html"), html.as_bytes())?;
    let html = env
        .get_template("history.html")?
        .render(context! {
            root => "",
            manifest => &manifest,
            history => &history,
            plots => &history_plots,
            standalone => false,
        })
        .context("rendering history.html")?;
    write_atomic(&out.join("history.html"), html.as_bytes())?;
    // How the timing units were kept apart from other work (the executor the run used).
    let timing_note = match &manifest.executor {
        Some(e) => e.timing_text(),
        None => "How the units were executed was not recorded (a run made before it was, or imported results).".to_string(),
    };
    for k in &kernel_list {
        let depth = k.page.matches('/').count();
        let root = "../".repeat(depth);
        let html = env
            .get_template("kernel.html")?
            .render(context! { root => root, manifest => &manifest, peaks => &peaks, kernel => k, timing_note => &timing_note })
            .with_context(|| format!("rendering {}", k.page))?;
        write_atomic(&out.join(&k.page), html.as_bytes())?;
    }
    Ok(out.join("index.html"))
}

/// The columns of `metrics.parquet` and `metrics.csv` (contracts.md), in order.
pub const METRIC_COLUMNS: [&str; 13] = [
    "run_id",
    "paper",
    "experiment",
    "arm",
    "seed",
    "backend",
    "device",
    "dtype",
    "shape",
    "step",
    "metric",
    "value",
    "unit",
];

/// Checks that `bytes` (the contents of `path`, `metrics.parquet` or `metrics.csv`) parse as
/// the long metrics table with the contract's columns and a numeric `value`.
fn check_metrics_table(path: &Path, bytes: &[u8]) -> Result<()> {
    use polars::prelude::{CsvReadOptions, DataType, ParquetReader, SerReader};
    let cursor = std::io::Cursor::new(bytes.to_vec());
    let parquet = path.extension().is_some_and(|e| e == "parquet");
    // A parser fed crafted bytes may panic instead of returning an error: both are refusals.
    let parsed = std::panic::catch_unwind(move || {
        if parquet {
            ParquetReader::new(cursor).finish()
        } else {
            CsvReadOptions::default()
                .with_has_header(true)
                .into_reader_with_file_handle(cursor)
                .finish()
        }
    });
    let bad = |why: String| {
        crate::error::input_error(format!(
            "{} is not a claimbench metrics table: {why}",
            path.display()
        ))
    };
    let df = match parsed {
        Ok(Ok(df)) => df,
        Ok(Err(e)) => return Err(bad(crate::ids::shown(&e.to_string()).to_string())),
        Err(_) => return Err(bad("the parser gave up on it".into())),
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    if names != METRIC_COLUMNS {
        return Err(bad(format!(
            "its columns are {}, not {}",
            crate::ids::shown(&names.join(",")),
            METRIC_COLUMNS.join(",")
        )));
    }
    let value = df.column("value").map_err(|e| bad(e.to_string()))?;
    // An empty table reads its columns as strings (or null) from CSV.
    if df.height() > 0 && !matches!(value.dtype(), DataType::Float64 | DataType::Int64) {
        return Err(bad(format!("its value column holds {}", value.dtype())));
    }
    Ok(())
}

fn new_kernel(id: &str) -> KernelView {
    KernelView {
        id: id.to_string(),
        page: kernel_page(id),
        benches: Vec::new(),
        checks: Vec::new(),
        units: Vec::new(),
        train_plot: None,
        roofline: None,
    }
}

/// One SVG per history series: per-run medians in history order, change points marked.
fn history_plots(h: &crate::history::History) -> Vec<String> {
    h.series
        .iter()
        .map(|s| {
            let mut series = vec![Series {
                label: "median of the run".into(),
                points: s.points.iter().map(|&(i, v)| (i as f64, v)).collect(),
            }];
            if !s.changes.is_empty() {
                series.push(Series {
                    label: "first run after a change point".into(),
                    points: s.changes.iter().map(|c| (c.run as f64, c.after)).collect(),
                });
            }
            xy_plot(
                &s.key.label(),
                "run (history order)",
                if s.key.measure == crate::compare::Measure::Time {
                    "time (ms)"
                } else {
                    "ours / baseline"
                },
                &series,
                false,
            )
        })
        .collect()
}

/// Writes the history of the runs in `runs_dir` as a small site in `runs_dir/history/`
/// (`index.html`, `history.json`); returns the index path.
pub fn render_history(runs_dir: &Path, h: &crate::history::History) -> Result<PathBuf> {
    let out = runs_dir.join("history");
    let latest = h
        .runs
        .last()
        .map(|r| r.dir.clone())
        .ok_or_else(|| crate::error::input_error("no runs in the history"))?;
    let (_, manifest) = RunDir::open(&latest)?;
    write_atomic(&out.join("static/style.css"), STYLE.as_bytes())?;
    crate::store::write_json(&out.join("history.json"), h)?;
    let html = env()
        .get_template("history.html")?
        .render(context! {
            root => "",
            manifest => &manifest,
            history => h,
            plots => history_plots(h),
            standalone => true,
        })
        .context("rendering the history page")?;
    write_atomic(&out.join("index.html"), html.as_bytes())?;
    Ok(out.join("index.html"))
}

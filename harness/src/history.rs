//! `claimbench history RUNS_DIR`: every benchmark series over the stored runs in commit order,
//! with change points (PELT on the log per-run medians,
//! `claimbench_claims::regression::change_points_with_noise`, whose noise estimate is floored by
//! the variance of one run's median computed from that run's own samples)
//! and the run and commit where each change starts. Changes below [`MIN_CHANGE`] are merged away.
//!
//! Runs are ordered by their commit's position in `git rev-list --topo-order` of the current
//! repository (ties and runs at one commit by start time); when a run's commit is not in that
//! history (another clone, a rebased branch) every run is ordered by start time instead, and the
//! output says so. Directories that are not runs are ignored; corrupt runs are skipped with a
//! note naming them, so one bad directory does not hide the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use claimbench_claims::regression::change_points_with_noise;
use serde::Serialize;

use crate::compare::{self, SeriesKey};
use crate::error::input_error;
use crate::store::{Manifest, RunDir};

/// One run in history order.
#[derive(Clone, Debug, Serialize)]
pub struct RunPoint {
    /// Run id.
    pub run_id: String,
    /// Commit.
    pub git_sha: String,
    /// Uncommitted changes.
    pub git_dirty: bool,
    /// Start time (RFC 3339).
    pub started: String,
    /// Its directory.
    pub dir: PathBuf,
}

/// Where a series changes level.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeAt {
    /// Index into [`History::runs`] of the first run of the new level.
    pub run: usize,
    /// Its run id.
    pub run_id: String,
    /// Its commit: where the change starts.
    pub commit: String,
    /// Median of the per-run medians before (over the previous segment).
    pub before: f64,
    /// Median of the per-run medians after (over the new segment).
    pub after: f64,
    /// after / before − 1.
    pub relative: f64,
}

/// One series over the runs.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesHistory {
    /// Identity.
    pub key: SeriesKey,
    /// (run index, median of the run's samples), in history order.
    pub points: Vec<(usize, f64)>,
    /// Change points.
    pub changes: Vec<ChangeAt>,
}

/// Series over runs.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    /// Runs in history order.
    pub runs: Vec<RunPoint>,
    /// How they were ordered.
    pub order: String,
    /// Series, by key.
    pub series: Vec<SeriesHistory>,
    /// Directories skipped, with why.
    pub skipped: Vec<(String, String)>,
}

/// Commits of the current repository, oldest first (empty outside a git checkout).
fn commit_order() -> Vec<String> {
    Command::new("git")
        .args(["rev-list", "--topo-order", "--reverse", "HEAD"])
        .current_dir(crate::env::workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn median(v: &[f64]) -> f64 {
    claimbench_claims::stats::median(v).unwrap_or(f64::NAN)
}

/// Variance of the log of a sample's median: the sample's robust log-scale spread
/// (MAD / 0.6745), times the median's asymptotic efficiency factor √(π/2), squared, over n.
fn log_median_variance(samples: &[f64]) -> f64 {
    let logs: Vec<f64> = samples
        .iter()
        .filter(|v| **v > 0.0)
        .map(|v| v.ln())
        .collect();
    if logs.len() < 2 {
        return 0.0;
    }
    let m = median(&logs);
    let mad = median(&logs.iter().map(|v| (v - m).abs()).collect::<Vec<_>>());
    let sd = mad / 0.6745;
    std::f64::consts::FRAC_PI_2 * sd * sd / logs.len() as f64
}

/// Fewer runs than this in a series give no change points: run-to-run variation (machine state,
/// other load) is larger than one run's own sampling error and can only be estimated from the
/// spread of several runs.
pub const MIN_RUNS: usize = 4;

/// Changes smaller than this (relative, between the medians of adjacent segments) are not
/// reported: PELT with one-run segments would otherwise flag a single noisy run of a short
/// history; the same minimum effect as `compare`'s default.
pub const MIN_CHANGE: f64 = 0.05;

/// Segment boundaries → the changes between adjacent segments, dropping (and merging across)
/// any change smaller than `min_change` until every reported change is at least that large.
fn changes_of(
    points: &[(usize, f64)],
    cps: Vec<usize>,
    runs: &[RunPoint],
    min_change: f64,
) -> Vec<ChangeAt> {
    let seg_median =
        |a: usize, b: usize| median(&points[a..b].iter().map(|(_, v)| *v).collect::<Vec<_>>());
    let mut cuts = cps;
    loop {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied());
        bounds.push(points.len());
        let changes: Vec<ChangeAt> = (1..bounds.len() - 1)
            .map(|j| {
                let (a, s, b) = (bounds[j - 1], bounds[j], bounds[j + 1]);
                let before = seg_median(a, s);
                let after = seg_median(s, b);
                let run = points[s].0;
                ChangeAt {
                    run,
                    run_id: runs[run].run_id.clone(),
                    commit: runs[run].git_sha.clone(),
                    before,
                    after,
                    relative: after / before - 1.0,
                }
            })
            .collect();
        // Drop the smallest change below the threshold, then recompute its neighbours.
        let smallest = changes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.relative.abs() < min_change)
            .min_by(|a, b| a.1.relative.abs().total_cmp(&b.1.relative.abs()))
            .map(|(i, _)| i);
        match smallest {
            Some(i) => {
                cuts.remove(i);
            }
            None => return changes,
        }
    }
}

/// Collects the history of the runs directly under `runs_dir`. With `upto`, only runs at or
/// before that run (in history order) count. No run at all is an input error.
pub fn collect(runs_dir: &Path, upto: Option<&str>) -> Result<History> {
    let listing = std::fs::read_dir(runs_dir)
        .map_err(|e| input_error(format!("{}: cannot list runs: {e}", runs_dir.display())))?;
    let mut dirs: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    let mut skipped = Vec::new();
    let mut loaded: Vec<(Manifest, compare::RunView, PathBuf)> = Vec::new();
    for d in dirs {
        match RunDir::open(&d).and_then(|(_, m)| compare::load(&d).map(|v| (m, v, d.clone()))) {
            Ok(x) => loaded.push(x),
            Err(e) => skipped.push((d.display().to_string(), format!("{e:#}"))),
        }
    }
    if loaded.is_empty() {
        return Err(input_error(format!(
            "{}: no readable run directory (a directory holding manifest.json) in it{}",
            runs_dir.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    "; skipped: {}",
                    skipped
                        .iter()
                        .map(|(d, e)| format!("{d} ({e})"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        )));
    }
    let commits = commit_order();
    let pos: BTreeMap<&str, usize> = commits
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let all_known = loaded
        .iter()
        .all(|(m, _, _)| pos.contains_key(m.git_sha.as_str()));
    let order = if all_known {
        loaded.sort_by(|(a, _, _), (b, _, _)| {
            pos[a.git_sha.as_str()]
                .cmp(&pos[b.git_sha.as_str()])
                .then_with(|| a.started.cmp(&b.started))
        });
        "commit order (git rev-list --topo-order), then start time".to_string()
    } else {
        loaded.sort_by(|(a, _, _), (b, _, _)| a.started.cmp(&b.started));
        "start time (some runs' commits are not in this repository's history)".to_string()
    };
    if let Some(id) = upto
        && let Some(i) = loaded.iter().position(|(m, _, _)| m.run_id == id)
    {
        loaded.truncate(i + 1);
    }
    let runs: Vec<RunPoint> = loaded
        .iter()
        .map(|(m, _, d)| RunPoint {
            run_id: m.run_id.clone(),
            git_sha: m.git_sha.clone(),
            git_dirty: m.git_dirty,
            started: m.started.clone(),
            dir: d.clone(),
        })
        .collect();
    // Per series: (run index, median) and the variance of each log-median.
    type Points = (Vec<(usize, f64)>, Vec<f64>);
    let mut by_key: BTreeMap<SeriesKey, Points> = BTreeMap::new();
    for (i, (_, view, _)) in loaded.iter().enumerate() {
        for (k, samples) in &view.series {
            let m = median(samples);
            if m.is_finite() && m > 0.0 {
                let e = by_key.entry(k.clone()).or_default();
                e.0.push((i, m));
                e.1.push(log_median_variance(samples));
            }
        }
    }
    let series = by_key
        .into_iter()
        .map(|(key, (points, variances))| {
            // change_points works on the log of positive values: changes are relative. Its noise
            // estimate is floored by the typical uncertainty of one run's median.
            let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
            let cps = if values.len() < MIN_RUNS {
                Vec::new()
            } else {
                change_points_with_noise(&values, median(&variances))
            };
            let changes = changes_of(&points, cps, &runs, MIN_CHANGE);
            SeriesHistory {
                key,
                points,
                changes,
            }
        })
        .collect();
    Ok(History {
        runs,
        order,
        series,
        skipped,
    })
}

/// The text `claimbench history` prints.
pub fn text(h: &History) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{} runs, ordered by {}", h.runs.len(), h.order);
    for (d, why) in &h.skipped {
        let _ = writeln!(s, "skipped {d}: {why}");
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(vec!["series", "runs", "latest median", "change points"]);
    for sh in &h.series {
        let changes = if sh.changes.is_empty() {
            "none".to_string()
        } else {
            sh.changes
                .iter()
                .map(|c| {
                    format!(
                        "{:+.1}% at run {} (commit {})",
                        c.relative * 100.0,
                        c.run_id,
                        c.commit.get(..10).unwrap_or(&c.commit)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        t.add_row(vec![
            sh.key.label(),
            sh.points.len().to_string(),
            format!("{:.4}", sh.points.last().map(|p| p.1).unwrap_or(f64::NAN)),
            changes,
        ]);
    }
    let _ = writeln!(s, "{t}");
    s
}

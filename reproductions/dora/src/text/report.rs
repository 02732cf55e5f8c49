//! The paper page's real-text sections: held-out loss by method and rank with DoRA's share of
//! the FT–LoRA gap, the paper's numbers beside ours, the `(ΔD, ΔM)` analysis, learning curves.

use claimbench_continual::Shift;
use claimbench_paper::report::{Figure, Section, Series, Table};
use claimbench_paper::{UnitRecord, fmt_pm, mean_over_runs, mean_pm};

use super::claims::{PAPER_CORR, correlation};
use super::measure::TextSeed;
use super::units::TEXT_SEEDS;
use super::{TextArm, TextConfig};
use crate::layer::Method;
use crate::paper::PAPER;

/// The measurements of the run's passed real-text seed units; one whose metrics do not parse
/// is left out with a warning naming it.
pub fn text_seeds(records: &[UnitRecord], warnings: &mut Vec<String>) -> Vec<TextSeed> {
    claimbench_paper::passed_measurements(
        records,
        PAPER,
        TEXT_SEEDS,
        |u| TextSeed::from_metrics(&u.metrics),
        warnings,
    )
}

fn col(ts: &[TextSeed], f: impl Fn(&TextSeed) -> Option<f64>) -> Vec<f64> {
    ts.iter().filter_map(f).filter(|v| v.is_finite()).collect()
}

fn loss(ts: &[TextSeed], shift: Shift, arm: TextArm) -> Vec<f64> {
    col(ts, |m| m.arm(shift, arm).map(|a| a.test_loss))
}

fn arm_of(method: Method, rank: usize) -> TextArm {
    TextArm {
        method,
        rank,
        exact: false,
    }
}

/// `(LoRA_r − DoRA_r) / (LoRA_r − FT)` per seed: the share of the FT–LoRA gap DoRA closes.
fn gap_share(ts: &[TextSeed], shift: Shift, r: usize) -> Vec<f64> {
    col(ts, |m| {
        let l = m.arm(shift, arm_of(Method::Lora, r))?.test_loss;
        let d = m.arm(shift, arm_of(Method::Dora, r))?.test_loss;
        let f = m.arm(shift, TextArm::FT)?.test_loss;
        Some((l - d) / (l - f))
    })
}

fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|s| s.to_string()).collect()
}

/// The real-text sections for `cfg` (none before a seed has run).
pub fn sections(cfg: &TextConfig, records: &[UnitRecord]) -> Vec<Section> {
    let ts = text_seeds(records, &mut Vec::new());
    if ts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &shift in &cfg.shifts {
        out.extend(shift_sections(cfg, &ts, shift));
    }
    out.push(paper_beside_ours(cfg, &ts));
    out
}

fn shift_sections(cfg: &TextConfig, ts: &[TextSeed], shift: Shift) -> Vec<Section> {
    let sh = shift.name();
    let b = &cfg.base;
    let d1 = match shift {
        Shift::Weak => &b.weak,
        Shift::Strong => &b.strong,
    };
    let base_d1 = col(ts, |m| m.base_of(shift).map(|b| b.test_loss));
    let base_d0 = col(ts, |m| m.base_of(shift).map(|b| b.d0_test_loss));
    let gap = col(ts, |m| {
        m.base_of(shift).map(|b| b.test_loss - b.d0_test_loss)
    });
    let mut rows = vec![vec![
        "base (not adapted)".into(),
        "–".into(),
        fmt_pm(mean_pm(&base_d1)),
        fmt_pm(mean_pm(&base_d0)),
        "–".into(),
        "–".into(),
    ]];
    let mut series: Vec<Series> = Vec::new();
    for arm in cfg.arms() {
        let lr = ts
            .iter()
            .find_map(|m| m.arm(shift, arm).map(|a| a.lr))
            .map_or("–".into(), |v| format!("{v}"));
        let share = match (arm.method, arm.exact) {
            (Method::Dora, false) => fmt_pm(mean_pm(&gap_share(ts, shift, arm.rank))),
            _ => "–".into(),
        };
        rows.push(vec![
            arm.name(),
            lr,
            fmt_pm(mean_pm(&loss(ts, shift, arm))),
            fmt_pm(mean_pm(&col(ts, |m| {
                m.arm(shift, arm).map(|a| a.d0_test_loss)
            }))),
            share,
            ts.len().to_string(),
        ]);
    }
    for method in [Method::Lora, Method::Dora] {
        series.push(Series {
            label: method.as_str().into(),
            points: cfg
                .sorted_ranks()
                .iter()
                .filter_map(|&r| {
                    mean_pm(&loss(ts, shift, arm_of(method, r))).map(|(m, _)| (r as f64, m))
                })
                .collect(),
        });
    }
    if let Some((ft, _)) = mean_pm(&loss(ts, shift, TextArm::FT)) {
        series.push(Series {
            label: "ft (full fine-tuning)".into(),
            points: cfg.sorted_ranks().iter().map(|&r| (r as f64, ft)).collect(),
        });
    }
    let table = Section {
        title: format!("Real text, {sh} shift: held-out loss by method and rank"),
        note: format!(
            "The {d0}-pretrained base model of each seed (continual's stage 0, shared) adapted \
             to {d1} for {} Adam steps, adapters on every attention and feed-forward projection \
             (α = {}·r), learning rates chosen per arm on tuning seeds {:?} (validation split); \
             losses on the test split. Shift size (base model's {d1} loss minus its {d0} loss): \
             {} nats. The share of the gap is (LoRA − DoRA) / (LoRA − FT) at the same rank, per \
             seed: 1 = DoRA matches full fine-tuning, 0 = no better than LoRA.",
            cfg.steps,
            cfg.alpha_per_rank,
            cfg.tuning_seeds,
            fmt_pm(mean_pm(&gap)),
            d0 = b.d0,
        ),
        table: Some(Table {
            header: header(&[
                "arm",
                "peak lr",
                &format!("{d1} test loss (nats, mean ± 95% CI)"),
                &format!("{} test loss (forgetting)", b.d0),
                "DoRA's share of the FT–LoRA gap",
                "seeds",
            ]),
            rows,
        }),
        figures: vec![Figure::xy(
            &format!("{d1} test loss by rank"),
            "rank r",
            "test loss (nats)",
            &series,
            true,
        )],
        caption: "Mean over seeds; FT has no rank and is drawn flat.".into(),
    };
    // Learning curves: mean validation loss per arm.
    let curves: Vec<Series> = cfg
        .arms()
        .into_iter()
        .filter_map(|arm| {
            let runs: Vec<(&[usize], &[f64])> = ts
                .iter()
                .filter_map(|m| m.arm(shift, arm))
                .map(|a| (a.curve_steps.as_slice(), a.curve.as_slice()))
                .collect();
            let points = mean_over_runs(&runs);
            if points.is_empty() {
                return None;
            }
            Some(Series {
                label: arm.name(),
                points,
            })
        })
        .collect();
    // ΔD–ΔM points per method.
    let mut scatter = Vec::new();
    let mut corr_rows = Vec::new();
    for (method, paper) in PAPER_CORR {
        let pts: Vec<(f64, f64)> = ts
            .iter()
            .flat_map(|m| {
                m.arms
                    .iter()
                    .filter(|a| a.shift == shift && a.arm.method == method && !a.arm.exact)
                    .flat_map(|a| a.points.iter().map(|p| (p.2, p.3)))
                    .collect::<Vec<_>>()
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        let c = col(ts, |m| correlation(m, shift, method));
        corr_rows.push(vec![
            method.as_str().into(),
            format!("{paper:+}"),
            fmt_pm(mean_pm(&c)),
        ]);
        scatter.push(Series {
            label: method.as_str().into(),
            points: pts,
        });
    }
    vec![
        table,
        Section {
            title: format!("Real text, {sh} shift: learning curves"),
            note: format!(
                "{d1} validation loss every {} steps, mean over seeds (the tuning runs score \
                 the last point of the same curve on their own seeds).",
                cfg.eval_every
            ),
            table: None,
            figures: vec![Figure::xy(
                "validation loss by step",
                "step",
                "validation loss (nats)",
                &curves,
                true,
            )],
            caption: "One line per arm.".into(),
        },
        Section {
            title: format!("Real text, {sh} shift: magnitude and direction (Sec. 3.2, Fig. 2)"),
            note: format!(
                "ΔM = Σ_n |m_n,t − m_n,0| / k and ΔD = Σ_n (1 − cos(W_t[:, n], W0[:, n])) / k of \
                 the query and value projections at every evaluation after step 0 (FT, and \
                 LoRA/DoRA at rank {}); the correlation is over each seed's points and is \
                 compared with the paper's value method by method.",
                cfg.analysis_rank
            ),
            table: Some(Table {
                header: header(&["method", "paper", "ours (mean ± 95% CI)"]),
                rows: corr_rows,
            }),
            figures: vec![Figure::xy("ΔD vs ΔM", "ΔD", "ΔM", &scatter, false)],
            caption: "Each point is one projection at one evaluation of one seed.".into(),
        },
    ]
}

fn paper_beside_ours(cfg: &TextConfig, ts: &[TextSeed]) -> Section {
    let mut rows = Vec::new();
    let rmax = cfg.sorted_ranks().last().copied().unwrap_or(0);
    for &shift in &cfg.shifts {
        let sh = shift.name();
        let diff = col(ts, |m| {
            Some(
                m.arm(shift, arm_of(Method::Dora, rmax))?.test_loss
                    - m.arm(shift, arm_of(Method::Lora, rmax))?.test_loss,
            )
        });
        rows.push(vec![
            format!("DoRA − LoRA at equal rank ({sh}, r{rmax})"),
            "+3.7 points accuracy (78.4 vs 74.7, Table 1, LLaMA-7B)".into(),
            format!(
                "{} nats; share of the FT–LoRA gap {}",
                fmt_pm(mean_pm(&diff)),
                fmt_pm(mean_pm(&gap_share(ts, shift, rmax)))
            ),
        ]);
        let r = cfg.analysis_rank;
        let exact = col(ts, |m| {
            Some(
                m.arm(shift, arm_of(Method::Dora, r))?.test_loss
                    - m.arm(
                        shift,
                        TextArm {
                            exact: true,
                            ..arm_of(Method::Dora, r)
                        },
                    )?
                    .test_loss,
            )
        });
        rows.push(vec![
            format!("detached − exact norm ({sh}, r{r})"),
            "−0.2 points accuracy (78.3 → 78.1, Sec. 4.3)".into(),
            format!("{} nats", fmt_pm(mean_pm(&exact))),
        ]);
        for (method, paper) in PAPER_CORR {
            rows.push(vec![
                format!("(ΔD, ΔM) correlation, {} ({sh})", method.as_str()),
                format!("{paper:+} (Fig. 2)"),
                fmt_pm(mean_pm(&col(ts, |m| correlation(m, shift, method)))),
            ]);
        }
    }
    let saving = col(ts, |m| m.memory.map(|n| n.saving()));
    rows.push(vec![
        "memory saved by the detached norm".into(),
        "24.4% (37.3 → 28.2 GB, LLaMA-7B fine-tuning)".into(),
        match mean_pm(&saving) {
            Some((s, _)) => format!(
                "{:.1}% of a training step's peak ({} PEFT layers {}×{}, rank {}, {} tokens)",
                100.0 * s,
                cfg.memory.layers,
                cfg.memory.d_in,
                cfg.memory.d_out,
                cfg.memory.rank,
                cfg.memory.tokens
            ),
            None => "not measured (no counting allocator in this process)".into(),
        },
    ]);
    Section {
        title: "The paper's numbers beside ours (real text)".into(),
        note: "The paper measures accuracy of 7B models on commonsense tasks; we measure the \
               held-out loss of a small model on Debian text, so the directions compare, the \
               sizes do not."
            .into(),
        table: Some(Table {
            header: header(&["quantity", "paper", "ours (mean ± 95% CI over seeds)"]),
            rows,
        }),
        figures: Vec::new(),
        caption: String::new(),
    }
}

//! The DPO-vs-PPO reproduction (paper id `dpo-ppo`, arXiv 2404.10719) in the run: the exact
//! tabular claims of Sec. 4.1 (one unit, f64), the 8×8 preference experiments (Fig. 1, the
//! distribution shift and DPO-Iter; one unit per seed) and the PPO ablation ladder (Table 3; one
//! unit per rung × seed), their metrics, the claims' inputs, and the paper page's sections.

use burn::tensor::backend::AutodiffBackend;
use claimbench_dpo_ppo::claims::{Table1Measurements, measure};
use claimbench_dpo_ppo::fig1::{self, Fig1Measurements};
use claimbench_dpo_ppo::ladder::{self, Arm, ArmMeasurements};

use super::{Job, Outcome, UnitSpec, fmt_pm, mean_curve, mean_pm, scalar};
use crate::configs::DpoPpoConfigs;
use crate::plots::{Bar, Series, bars, heatmap, xy_plot};
use crate::report::{Section, TableView};
use crate::store::{MetricRow, UnitRecord, UnitStatus};

/// The paper id.
pub const PAPER: &str = "dpo-ppo";
/// The exact-claims unit.
pub const TABLE1_UNIT: &str = "dpo-ppo/table1/exact";
/// The experiment name of the 8×8 preference units.
pub const FIG1: &str = "fig1";
/// The experiment name of the PPO ladder units.
pub const LADDER: &str = "ladder";

/// The paper's units: the exact claims, then per seed the 8×8 experiments and every rung of the
/// ladder (seed-major, so an interrupted run has whole seeds).
pub fn units(seeds: &[u64]) -> Vec<UnitSpec> {
    let mut out = vec![UnitSpec {
        id: TABLE1_UNIT.into(),
        paper: PAPER.into(),
        experiment: "table1".into(),
        arm: "tabular".into(),
        seed: Some(0),
        job: Job::DpoTable1,
        needs_device: false,
    }];
    for &seed in seeds {
        out.push(UnitSpec {
            id: format!("{PAPER}/{FIG1}/seed-{seed}"),
            paper: PAPER.into(),
            experiment: FIG1.into(),
            arm: "dpo-vs-ppo".into(),
            seed: Some(seed),
            job: Job::DpoFig1,
            needs_device: false,
        });
        for arm in Arm::ALL {
            out.push(UnitSpec {
                id: format!("{PAPER}/{LADDER}/{}/seed-{seed}", arm.name()),
                paper: PAPER.into(),
                experiment: LADDER.into(),
                arm: arm.name().into(),
                seed: Some(seed),
                job: Job::DpoLadder,
                needs_device: false,
            });
        }
    }
    out
}

/// Measures the tabular claims over one random problem per seed, shape and β.
pub fn run_unit(seeds: &[u64]) -> Outcome {
    match measure(seeds) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(m) => Outcome::passed(
            format!(
                "L_DPO(0.1, 0, 0.9) = {:e}; max π*(y3) = {:e}; max |L_DPO(π*) − L_BT| = {:e} over {} problems",
                m.dpo_loss_at_solution, m.ppo_max_mass_y3, m.optimum_max_abs_diff, m.problems
            ),
            vec![
                MetricRow::full(
                    "f64",
                    "3",
                    None,
                    "dpo_loss_at_solution",
                    m.dpo_loss_at_solution,
                    "nats",
                ),
                MetricRow::full(
                    "f64",
                    "3",
                    None,
                    "ppo_max_mass_y3",
                    m.ppo_max_mass_y3,
                    "probability",
                ),
                MetricRow::full(
                    "f64",
                    "tabular",
                    None,
                    "optimum_max_abs_diff",
                    m.optimum_max_abs_diff,
                    "nats",
                ),
                MetricRow::full(
                    "f64",
                    "tabular",
                    None,
                    "problems",
                    m.problems as f64,
                    "count",
                ),
            ],
        ),
    }
}

/// Runs the 8×8 experiments of the unit's seed on the autodiff backend `A`.
pub fn run_fig1<A: AutodiffBackend + claimbench_kernels::burn_ops::PreferenceBackend>(
    cfg: &DpoPpoConfigs,
    unit: &UnitSpec,
    device: &A::Device,
) -> Outcome {
    let seed = unit.seed.unwrap_or(0);
    match fig1::run::<A>(&cfg.fig1, seed, device) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(m) => Outcome::passed(
            format!(
                "true reward: π_ref {:.3}, DPO {:.3}, PPO {:.3}; largest uncovered increase DPO {:+.3}, PPO {:+.3}",
                m.reward_ref,
                m.reward_dpo,
                m.reward_ppo,
                m.dpo_uncovered_increase,
                m.ppo_uncovered_increase
            ),
            m.metrics(),
        ),
    }
}

/// Runs one rung of the PPO ladder on the unit's seed on the autodiff backend `A`.
pub fn run_ladder<A: AutodiffBackend>(
    cfg: &DpoPpoConfigs,
    unit: &UnitSpec,
    device: &A::Device,
) -> Outcome {
    let Some(arm) = Arm::from_name(&unit.arm) else {
        return Outcome::error(format!("unit {}: no ladder arm {}", unit.id, unit.arm));
    };
    let seed = unit.seed.unwrap_or(0);
    match ladder::run_arm::<A>(&cfg.ladder, arm, seed, device) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(m) => Outcome::passed(
            format!(
                "pass@{k}: SFT {:.3} → {:.3} after PPO ({} sequences); pass@1 {:.3} → {:.3}",
                m.sft_pass_k,
                m.final_pass_k,
                m.samples,
                m.sft_pass1,
                m.final_pass1,
                k = m.k
            ),
            m.metrics(),
        ),
    }
}

fn passed<'a>(
    records: &'a [UnitRecord],
    experiment: &'a str,
) -> impl Iterator<Item = &'a UnitRecord> {
    records.iter().filter(move |u| {
        u.paper == PAPER && u.experiment == experiment && u.status == UnitStatus::Passed
    })
}

/// The measurements stored by the run's passed exact-claims unit, if any.
pub fn measurements(records: &[UnitRecord]) -> Option<Table1Measurements> {
    let u = records
        .iter()
        .find(|u| u.unit_id == TABLE1_UNIT && u.status == UnitStatus::Passed)?;
    Some(Table1Measurements {
        dpo_loss_at_solution: scalar(u, "dpo_loss_at_solution")?,
        ppo_max_mass_y3: scalar(u, "ppo_max_mass_y3")?,
        optimum_max_abs_diff: scalar(u, "optimum_max_abs_diff")?,
        problems: scalar(u, "problems")? as usize,
    })
}

/// The per-seed 8×8 measurements of the run's passed units. A unit whose metrics do not parse
/// is left out with a warning naming it.
pub fn fig1_measurements(records: &[UnitRecord]) -> Vec<Fig1Measurements> {
    passed(records, FIG1)
        .filter_map(|u| match Fig1Measurements::from_metrics(&u.metrics) {
            Ok(m) => Some(m),
            Err(e) => {
                errln!(
                    "warning: {}: metrics unreadable ({e}); left out of the claims",
                    u.unit_id
                );
                None
            }
        })
        .collect()
}

/// The ladder runs `(arm, seed, measurements)` of the run's passed units.
pub fn ladder_runs(records: &[UnitRecord]) -> Vec<ladder::Run> {
    passed(records, LADDER)
        .filter_map(|u| {
            let arm = Arm::from_name(&u.arm)?;
            match ArmMeasurements::from_metrics(&u.metrics) {
                Ok(m) => Some((arm, u.seed?, m)),
                Err(e) => {
                    errln!(
                        "warning: {}: metrics unreadable ({e}); left out of the claims",
                        u.unit_id
                    );
                    None
                }
            }
        })
        .collect()
}

fn pm_of(xs: impl Iterator<Item = f64>) -> String {
    fmt_pm(mean_pm(&xs.collect::<Vec<_>>()))
}

/// The paper page's sections: Fig. 1 (heatmaps of π_ref, DPO and PPO on the first seed, the
/// summary table over seeds, learning curves), the distribution shift and DPO-Iter, and the PPO
/// ladder (bars with CIs beside the paper's Table 3, learning curves).
pub fn report_sections(cfg: &DpoPpoConfigs, units: &[UnitRecord]) -> Vec<Section> {
    let mut out = Vec::new();
    let fig = fig1_measurements(units);
    if let Some(first) = fig.iter().min_by_key(|m| m.seed) {
        let (nx, ny) = (first.n_prompts, first.n_responses);
        let covered: Vec<bool> = first.coverage.iter().map(|&c| c > 0.5).collect();
        let maps = [
            ("π_ref", &first.pi_ref),
            ("π_DPO", &first.pi_dpo),
            ("π_PPO", &first.pi_ppo),
            ("π* ∝ π_ref·exp(r_RM/β)", &first.pi_star),
        ]
        .iter()
        .map(|(name, p)| {
            heatmap(
                &format!("{name}, seed {}", first.seed),
                "response y",
                "prompt x",
                [nx, ny],
                p,
                &covered,
            )
        })
        .collect();
        let row = |label: &str, f: fn(&Fig1Measurements) -> f64, paper: &str| {
            vec![
                label.to_string(),
                paper.to_string(),
                pm_of(fig.iter().map(f)),
            ]
        };
        let table = TableView {
            header: ["quantity", "paper (Fig. 1)", "ours (mean ± 95% CI)"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows: vec![
                row("expected true reward, π_ref", |m| m.reward_ref, "–"),
                row("expected true reward, DPO", |m| m.reward_dpo, "–"),
                row("expected true reward, PPO", |m| m.reward_ppo, "–"),
                row(
                    "expected true reward, π* of the reward model",
                    |m| m.reward_star,
                    "–",
                ),
                row(
                    "largest rise of an uncovered cell, DPO",
                    |m| m.dpo_uncovered_increase,
                    "+0.12 (0.11 → 0.23)",
                ),
                row(
                    "largest rise of an uncovered cell, PPO",
                    |m| m.ppo_uncovered_increase,
                    "stays low",
                ),
                row("mean TV to π*, DPO", |m| m.dpo_tv_to_optimum, "–"),
                row(
                    "mean TV to π*, PPO",
                    |m| m.ppo_tv_to_optimum,
                    "learns the optimum",
                ),
                row("reward-model accuracy on the pairs", |m| m.rm_accuracy, "–"),
            ],
        };
        out.push(Section {
            title: "Fig. 1: DPO moves mass to responses the data never covers".into(),
            note: format!(
                "Scaled-down replica of the paper's synthetic study: {nx} prompts × {ny} responses, one-hot prompt → MLP \
                 policy and reward model, the true optimum on the diagonal, preference pairs covering few cells (outlined). \
                 DPO β = {}; PPO with the same β as its KL coefficient against the learnt reward. {} seeds; heatmaps show the first.",
                cfg.fig1.beta,
                fig.len()
            ),
            table: Some(table),
            figures: maps,
            caption: "Probabilities π(y | x) per prompt (row) and response (column); outlined cells appear in the preference data."
                .into(),
        });
        let curve = |name: &str, f: fn(&Fig1Measurements) -> &Vec<f64>| Series {
            label: name.into(),
            points: mean_of_vectors(fig.iter().map(f)),
        };
        out.push(Section {
            title: "Fig. 1: learning curves".into(),
            note: "Mean over seeds.".into(),
            table: None,
            figures: vec![
                xy_plot(
                    "reward model and DPO losses",
                    "step",
                    "loss (nats)",
                    &[
                        curve("reward model (Bradley–Terry)", |m| &m.curve_rm_loss),
                        curve("DPO", |m| &m.curve_dpo_loss),
                    ],
                    true,
                ),
                xy_plot(
                    "PPO: expected true reward",
                    "PPO iteration",
                    "expected true reward",
                    &[curve("PPO from π_ref", |m| &m.curve_ppo_reward)],
                    true,
                ),
            ],
            caption: String::new(),
        });
        out.push(shift_section(&fig));
    }
    let runs = ladder_runs(units);
    if !runs.is_empty() {
        out.push(ladder_section(cfg, units, &runs));
    }
    out
}

/// The element-wise mean of equally indexed vectors, as `(index, mean)` points.
fn mean_of_vectors<'a>(vs: impl Iterator<Item = &'a Vec<f64>>) -> Vec<(f64, f64)> {
    let mut sums: Vec<(f64, usize)> = Vec::new();
    for v in vs {
        if sums.len() < v.len() {
            sums.resize(v.len(), (0.0, 0));
        }
        for (i, &x) in v.iter().enumerate() {
            sums[i].0 += x;
            sums[i].1 += 1;
        }
    }
    sums.iter()
        .enumerate()
        .map(|(i, &(s, n))| (i as f64, s / n.max(1) as f64))
        .collect()
}

fn bar(label: &str, xs: &[f64]) -> Bar {
    let (mean, half) = mean_pm(xs).unwrap_or((f64::NAN, f64::NAN));
    Bar {
        label: label.into(),
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

fn shift_section(fig: &[Fig1Measurements]) -> Section {
    let col = |f: fn(&Fig1Measurements) -> f64| fig.iter().map(f).collect::<Vec<f64>>();
    let last = |v: &Vec<f64>| v.last().copied().unwrap_or(f64::NAN);
    let iter_other: Vec<f64> = fig.iter().map(|m| last(&m.iter_reward_other)).collect();
    let iter_sft: Vec<f64> = fig.iter().map(|m| last(&m.iter_reward_sft)).collect();
    let rows = vec![
        vec![
            "the reference itself".to_string(),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_ref_other))),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_ref_sft))),
            "–".into(),
        ],
        vec![
            "DPO".to_string(),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_dpo_other))),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_dpo_sft))),
            "SafeRLHF: 55.4% (SFT Alpaca) vs 71.8% (SFT Safe)".into(),
        ],
        vec![
            "DPO-Iter (last round)".to_string(),
            fmt_pm(mean_pm(&iter_other)),
            fmt_pm(mean_pm(&iter_sft)),
            "up to 99.9%".into(),
        ],
        vec![
            "PPO".to_string(),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_ppo_other))),
            fmt_pm(mean_pm(&col(|m| m.shift_reward_ppo_sft))),
            "99.5%".into(),
        ],
    ];
    let figure = bars(
        "expected true reward by reference",
        "expected true reward",
        &[
            bar("DPO, other ref", &col(|m| m.shift_reward_dpo_other)),
            bar("DPO, SFT ref", &col(|m| m.shift_reward_dpo_sft)),
            bar("DPO-Iter, other", &iter_other),
            bar("DPO-Iter, SFT", &iter_sft),
            bar("PPO, other ref", &col(|m| m.shift_reward_ppo_other)),
            bar("PPO, SFT ref", &col(|m| m.shift_reward_ppo_sft)),
        ],
        &[],
    );
    let rounds = xy_plot(
        "DPO-Iter: expected true reward per round",
        "round (0 = one round of DPO)",
        "expected true reward",
        &[
            Series {
                label: "from the other-data reference".into(),
                points: mean_of_vectors(fig.iter().map(|m| &m.iter_reward_other)),
            },
            Series {
                label: "from the SFT reference".into(),
                points: mean_of_vectors(fig.iter().map(|m| &m.iter_reward_sft)),
            },
        ],
        true,
    );
    Section {
        title: "Distribution shift and DPO-Iter".into(),
        note: "The same 8×8 problems: DPO and PPO from a reference trained on other data, and from one trained (SFT) on \
               the preference data's chosen responses; DPO-Iter relabels fresh samples with the reward model each round. \
               Expected true reward, mean ± 95% CI over seeds."
            .into(),
        table: Some(TableView {
            header: ["method", "other-data reference", "SFT reference", "paper"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        }),
        figures: vec![figure, rounds],
        caption: String::new(),
    }
}

fn ladder_section(cfg: &DpoPpoConfigs, units: &[UnitRecord], runs: &[ladder::Run]) -> Section {
    let k = cfg.ladder.pass_k;
    let of = |arm: Arm, f: fn(&ArmMeasurements) -> f64| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.0 == arm)
            .map(|r| f(&r.2))
            .collect()
    };
    // The SFT row: one value per seed (every arm of a seed starts from the same SFT policy).
    let mut sft: std::collections::BTreeMap<u64, f64> = Default::default();
    for (_, seed, m) in runs {
        sft.entry(*seed).or_insert(m.sft_pass_k);
    }
    let sft: Vec<f64> = sft.into_values().collect();
    let paper = |name: &str| {
        ladder::TABLE3
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("–".to_string(), |(_, v)| format!("{v:.1}"))
    };
    let mut rows = vec![vec![
        "SFT".to_string(),
        paper("sft"),
        fmt_pm(mean_pm(&sft)),
        "–".into(),
        sft.len().to_string(),
    ]];
    let mut bs = vec![bar("SFT", &sft)];
    for arm in Arm::ALL {
        let pk = of(arm, |m| m.final_pass_k);
        rows.push(vec![
            arm.name().to_string(),
            paper(arm.name()),
            fmt_pm(mean_pm(&pk)),
            fmt_pm(mean_pm(&of(arm, |m| m.final_pass1))),
            pk.len().to_string(),
        ]);
        bs.push(bar(arm.name(), &pk));
    }
    let curves: Vec<Series> = Arm::ALL
        .iter()
        .map(|arm| {
            let us: Vec<&UnitRecord> = passed(units, LADDER)
                .filter(|u| u.arm == arm.name())
                .collect();
            Series {
                label: arm.name().into(),
                points: mean_curve(&us, "curve_pass_k"),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Section {
        title: "PPO ablation ladder (Table 3)".into(),
        note: format!(
            "A verifiable sequence task (write {} tokens following the prompt's rule; the checker passes or fails it), \
             a small MLP policy and critic, token-level PPO with KL-penalised rewards and GAE. Each rung adds one trick \
             to the previous; every rung runs the same number of PPO iterations. Exact pass@{k} on the training prompts, \
             mean ± 95% CI over seeds. The paper's numbers are APPS Intro pass@5 (%) of a 7B model.",
            cfg.ladder.length
        ),
        table: Some(TableView {
            header: [
                "rung".to_string(),
                "paper pass@5 (%)".to_string(),
                format!("ours pass@{k}"),
                "ours pass@1".to_string(),
                "seeds".to_string(),
            ]
            .to_vec(),
            rows,
        }),
        figures: vec![
            bars(
                &format!("pass@{k} after PPO, per rung"),
                &format!("pass@{k}"),
                &bs,
                &[],
            ),
            xy_plot(
                &format!("pass@{k} during PPO (mean over seeds)"),
                "PPO iteration",
                &format!("pass@{k}"),
                &curves,
                true,
            ),
        ],
        caption: "Bars: mean with 95% t-interval whiskers.".into(),
    }
}

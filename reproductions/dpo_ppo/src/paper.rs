//! The DPO-vs-PPO reproduction as a [`Paper`]: the exact tabular claims of Sec. 4.1 (one unit,
//! f64), the 8×8 preference experiments (Fig. 1, the distribution shift and DPO-Iter; one unit per
//! seed) and the PPO ablation ladder (Table 3; one unit per rung × seed), their metrics, the
//! claims' inputs, and the paper page's sections.

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::tensor::backend::AutodiffBackend;
use claimbench_paper::report::{Bar, Figure, Section, Series, Table};
use claimbench_paper::{
    Artifact, Exec, Judged, MetricRow, Outcome, Paper, PaperInfo, RunContext, RunsOn, Scale,
    UnitRecord, UnitSpec, fmt_pm, mean_curve, mean_pm,
};
use serde::{Deserialize, Serialize};

use crate::claims::{Table1Measurements, measure};
use crate::fig1::{self, Fig1Config, Fig1Measurements};
use crate::ladder::{self, Arm, ArmMeasurements, LadderConfig};
use crate::mlp::MlpWeights;

/// The settings of the DPO-vs-PPO experiments: the 8×8 preference problems (Fig. 1, the
/// distribution shift, DPO-Iter) and the PPO ablation ladder (Table 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoPpoConfigs {
    /// Fig. 1 and the distribution-shift experiments.
    pub fig1: Fig1Config,
    /// The PPO ablation ladder.
    pub ladder: LadderConfig,
}

impl DpoPpoConfigs {
    /// The defaults of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        DpoPpoConfigs {
            fig1: Fig1Config::for_scale(scale),
            ladder: LadderConfig::for_scale(scale),
        }
    }
}

/// The DPO-vs-PPO paper (arXiv 2404.10719).
pub struct DpoPpo;

impl Paper for DpoPpo {
    type Config = DpoPpoConfigs;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: PAPER,
            title: "Is DPO Superior to PPO for LLM Alignment? A Comprehensive Study",
            arxiv: "2404.10719",
            kernels: &["kernels/token-logprob", "kernels/dpo-loss", "kernels/ppo"],
        }
    }

    fn config(&self, scale: Scale) -> DpoPpoConfigs {
        DpoPpoConfigs::for_scale(scale)
    }

    /// Both configs; with the run's verdict `seeds`, also that none of them is one of the
    /// ladder's tuning seeds ([`LadderConfig::validate_with_seeds`]).
    fn validate(&self, cfg: &DpoPpoConfigs, seeds: Option<&[u64]>) -> Result<(), String> {
        cfg.fig1.validate().map_err(|e| format!("fig1: {e}"))?;
        match seeds {
            Some(s) => cfg.ladder.validate_with_seeds(s),
            None => cfg.ladder.validate(),
        }
        .map_err(|e| format!("ladder: {e}"))
    }

    fn estimated_bytes(&self, cfg: &DpoPpoConfigs) -> u64 {
        cfg.fig1.estimated_bytes().max(cfg.ladder.estimated_bytes())
    }

    fn units(&self, _cfg: &DpoPpoConfigs, seeds: &[u64]) -> Vec<UnitSpec> {
        units(seeds)
    }

    fn run_unit(&self, cfg: &DpoPpoConfigs, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let fig = unit.task == "fig1";
        match (unit.task, ctx.exec) {
            ("table1", _) => run_table1(ctx.seeds),
            (_, Exec::Flex) if fig => run_fig1::<Autodiff<Flex>>(cfg, unit, &Default::default()),
            (_, Exec::Flex) => run_ladder::<Autodiff<Flex>>(cfg, unit, &Default::default(), ctx),
            (_, Exec::Wgpu) if fig => run_fig1::<Autodiff<Wgpu>>(cfg, unit, &Default::default()),
            (_, Exec::Wgpu) => run_ladder::<Autodiff<Wgpu>>(cfg, unit, &Default::default(), ctx),
            #[cfg(feature = "cuda")]
            (_, Exec::Cuda) if fig => {
                run_fig1::<Autodiff<burn::backend::Cuda>>(cfg, unit, &Default::default())
            }
            #[cfg(feature = "cuda")]
            (_, Exec::Cuda) => {
                run_ladder::<Autodiff<burn::backend::Cuda>>(cfg, unit, &Default::default(), ctx)
            }
            #[cfg(not(feature = "cuda"))]
            (_, Exec::Cuda) => Outcome::error("built without the cuda feature".into()),
        }
    }

    fn claims(&self, cfg: &DpoPpoConfigs, records: &[UnitRecord], scale: &str) -> Judged {
        let mut out = Judged::default();
        if let Some(m) = measurements(records) {
            match crate::claims::evaluate(&m, scale) {
                Ok(claims) => out.claims.extend(claims),
                Err(e) => out
                    .warnings
                    .push(format!("dpo-ppo claims not evaluated: {e}")),
            }
        }
        let fig1 = fig1_measurements(records, &mut out.warnings);
        if !fig1.is_empty() {
            match fig1::evaluate(&cfg.fig1, &fig1, scale) {
                Ok(claims) => out.claims.extend(claims),
                Err(e) => out
                    .warnings
                    .push(format!("dpo-ppo Fig. 1 claims not evaluated: {e}")),
            }
        }
        let ladder = ladder_runs(records, &mut out.warnings);
        if !ladder.is_empty() {
            match ladder::evaluate(&cfg.ladder, &ladder, scale) {
                Ok(claims) => out.claims.extend(claims),
                Err(e) => out
                    .warnings
                    .push(format!("dpo-ppo ladder claims not evaluated: {e}")),
            }
        }
        out
    }

    fn claim_specs(&self, cfg: &DpoPpoConfigs) -> Vec<claimbench_claims::ClaimSpec> {
        let mut out = crate::claims::specs();
        out.extend(fig1::specs(&cfg.fig1));
        out.extend(ladder::specs(&cfg.ladder));
        out
    }

    fn sections(&self, cfg: &DpoPpoConfigs, records: &[UnitRecord]) -> Vec<Section> {
        report_sections(cfg, records)
    }
}

#[cfg(test)]
mod can_fail;

/// The paper id.
pub const PAPER: &str = "dpo-ppo";
/// The exact-claims unit.
pub const TABLE1_UNIT: &str = "dpo-ppo/table1/exact";
/// The experiment name of the 8×8 preference units.
pub const FIG1: &str = "fig1";
/// The experiment name of the PPO ladder units.
pub const LADDER: &str = "ladder";

/// The experiment name of the ladder's SFT units.
pub const LADDER_SFT: &str = "ladder-sft";
/// The artifact an SFT unit stores: the policy's weights, bit-exact ([`StoredMlp`]).
pub const SFT_ARTIFACT: &str = "sft.json";

/// An SFT policy as stored: its widths and every weight as IEEE-754 bits, so that it comes back
/// exactly (JSON numbers round-trip an f32 only through f64).
#[derive(Serialize, Deserialize)]
struct StoredMlp {
    n_in: usize,
    hidden: usize,
    n_out: usize,
    w1: Vec<u32>,
    b1: Vec<u32>,
    w2: Vec<u32>,
    b2: Vec<u32>,
}

fn encode_sft(w: &MlpWeights) -> Vec<u8> {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
    let s = StoredMlp {
        n_in: w.n_in,
        hidden: w.hidden,
        n_out: w.n_out,
        w1: bits(&w.w1),
        b1: bits(&w.b1),
        w2: bits(&w.w2),
        b2: bits(&w.b2),
    };
    serde_json::to_vec(&s).expect("weights serialise")
}

fn decode_sft(bytes: &[u8]) -> Result<MlpWeights, String> {
    let s: StoredMlp = serde_json::from_slice(bytes).map_err(|e| format!("{SFT_ARTIFACT}: {e}"))?;
    let floats = |v: Vec<u32>| v.into_iter().map(f32::from_bits).collect();
    Ok(MlpWeights {
        n_in: s.n_in,
        hidden: s.hidden,
        n_out: s.n_out,
        w1: floats(s.w1),
        b1: floats(s.b1),
        w2: floats(s.w2),
        b2: floats(s.b2),
    })
}

/// The unit id of `seed`'s SFT policy: `dpo-ppo/ladder/sft/seed-<s>`.
pub fn sft_id(seed: u64) -> String {
    format!("{PAPER}/{LADDER}/sft/seed-{seed}")
}

/// The paper's units: the exact claims, then per seed the 8×8 experiments, the ladder's SFT
/// policy (stored as an artifact) and every rung of the ladder, which starts from it
/// (seed-major, so an interrupted run has whole seeds).
fn units(seeds: &[u64]) -> Vec<UnitSpec> {
    let mut out = vec![UnitSpec {
        id: TABLE1_UNIT.into(),
        paper: PAPER.into(),
        experiment: "table1".into(),
        arm: "tabular".into(),
        seed: Some(0),
        task: "table1",
        runs_on: RunsOn::Flex,
        bench: false,
        depends_on: Vec::new(),
    }];
    for &seed in seeds {
        out.push(UnitSpec {
            id: format!("{PAPER}/{FIG1}/seed-{seed}"),
            paper: PAPER.into(),
            experiment: FIG1.into(),
            arm: "dpo-vs-ppo".into(),
            seed: Some(seed),
            task: "fig1",
            runs_on: RunsOn::Train,
            bench: false,
            depends_on: Vec::new(),
        });
        out.push(UnitSpec {
            id: sft_id(seed),
            paper: PAPER.into(),
            experiment: LADDER_SFT.into(),
            arm: "sft".into(),
            seed: Some(seed),
            task: "ladder-sft",
            runs_on: RunsOn::Train,
            bench: false,
            depends_on: Vec::new(),
        });
        for arm in Arm::ALL {
            out.push(UnitSpec {
                id: format!("{PAPER}/{LADDER}/{}/seed-{seed}", arm.name()),
                paper: PAPER.into(),
                experiment: LADDER.into(),
                arm: arm.name().into(),
                seed: Some(seed),
                task: "ladder",
                runs_on: RunsOn::Train,
                bench: false,
                depends_on: vec![sft_id(seed)],
            });
        }
    }
    out
}

/// Measures the tabular claims over one random problem per seed, shape and β.
fn run_table1(seeds: &[u64]) -> Outcome {
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
fn run_fig1<A: AutodiffBackend + claimbench_kernels::burn_ops::PreferenceBackend>(
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

/// Runs the ladder's SFT unit (the policy stored as [`SFT_ARTIFACT`], no metrics) or one rung
/// of the PPO ladder from its seed's stored SFT policy, on the autodiff backend `A`.
fn run_ladder<A: AutodiffBackend>(
    cfg: &DpoPpoConfigs,
    unit: &UnitSpec,
    device: &A::Device,
    ctx: &RunContext,
) -> Outcome {
    let seed = unit.seed.unwrap_or(0);
    if unit.task == "ladder-sft" {
        return match ladder::sft_policy::<A>(&cfg.ladder, seed, device) {
            Err(e) => Outcome::error(e.to_string()),
            Ok(w) => {
                let bytes = encode_sft(&w);
                Outcome {
                    artifacts: vec![Artifact {
                        name: SFT_ARTIFACT.into(),
                        bytes,
                    }],
                    ..Outcome::passed(
                        format!(
                            "SFT policy of seed {seed}: MLP [{}, {}, {}]",
                            w.n_in, w.hidden, w.n_out
                        ),
                        Vec::new(),
                    )
                }
            }
        };
    }
    let Some(arm) = Arm::from_name(&unit.arm) else {
        return Outcome::error(format!("unit {}: no ladder arm {}", unit.id, unit.arm));
    };
    let sft = match ctx
        .artifact(&sft_id(seed), SFT_ARTIFACT)
        .and_then(|b| decode_sft(&b))
    {
        Ok(w) => w,
        Err(e) => return Outcome::error(format!("SFT policy: {e}")),
    };
    match ladder::run_arm_from::<A>(&cfg.ladder, arm, seed, &sft, device) {
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
    records
        .iter()
        .filter(move |u| u.paper == PAPER && u.experiment == experiment && u.passed())
}

/// The measurements stored by the run's passed exact-claims unit, if any.
fn measurements(records: &[UnitRecord]) -> Option<Table1Measurements> {
    let u = records
        .iter()
        .find(|u| u.unit_id == TABLE1_UNIT && u.passed())?;
    Some(Table1Measurements {
        dpo_loss_at_solution: u.scalar("dpo_loss_at_solution")?,
        ppo_max_mass_y3: u.scalar("ppo_max_mass_y3")?,
        optimum_max_abs_diff: u.scalar("optimum_max_abs_diff")?,
        problems: u.scalar("problems")? as usize,
    })
}

/// The per-seed 8×8 measurements of the run's passed units. A unit whose metrics do not parse
/// is left out with a warning naming it.
fn fig1_measurements(records: &[UnitRecord], warnings: &mut Vec<String>) -> Vec<Fig1Measurements> {
    claimbench_paper::passed_measurements(
        records,
        PAPER,
        FIG1,
        |u| Fig1Measurements::from_metrics(&u.metrics),
        warnings,
    )
}

/// The ladder runs `(arm, seed, measurements)` of the run's passed units (a unit of an unknown
/// arm or without a seed is not a ladder run and is skipped).
fn ladder_runs(records: &[UnitRecord], warnings: &mut Vec<String>) -> Vec<ladder::Run> {
    let parse = |u: &UnitRecord| {
        ArmMeasurements::from_metrics(&u.metrics).map(|m| {
            Arm::from_name(&u.arm)
                .zip(u.seed)
                .map(|(arm, seed)| (arm, seed, m))
        })
    };
    claimbench_paper::passed_measurements(records, PAPER, LADDER, parse, warnings)
        .into_iter()
        .flatten()
        .collect()
}

fn pm_of(xs: impl Iterator<Item = f64>) -> String {
    fmt_pm(mean_pm(&xs.collect::<Vec<_>>()))
}

/// The paper page's sections: Fig. 1 (heatmaps of π_ref, DPO and PPO on the first seed, the
/// summary table over seeds, learning curves), the distribution shift and DPO-Iter, and the PPO
/// ladder (bars with CIs beside the paper's Table 3, learning curves).
fn report_sections(cfg: &DpoPpoConfigs, units: &[UnitRecord]) -> Vec<Section> {
    let mut out = Vec::new();
    let fig = fig1_measurements(units, &mut Vec::new());
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
            Figure::heatmap(
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
        let table = Table {
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
                Figure::xy(
                    "reward model and DPO losses",
                    "step",
                    "loss (nats)",
                    &[
                        curve("reward model (Bradley–Terry)", |m| &m.curve_rm_loss),
                        curve("DPO", |m| &m.curve_dpo_loss),
                    ],
                    true,
                ),
                Figure::xy(
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
    let runs = ladder_runs(units, &mut Vec::new());
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
    let figure = Figure::bars(
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
    let rounds = Figure::xy(
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
        table: Some(Table {
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
        table: Some(Table {
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
            Figure::bars(
                &format!("pass@{k} after PPO, per rung"),
                &format!("pass@{k}"),
                &bs,
                &[],
            ),
            Figure::xy(
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

//! What one seed measures ([`Fig1Measurements`], as metric rows both ways).

use super::*;

/// Mean over prompts of the total-variation distance `½ Σ_y |p(y|x) − q(y|x)|`.
pub fn mean_tv(p: &[f64], q: &[f64], n_responses: usize) -> f64 {
    let rows = p.len() / n_responses;
    p.chunks(n_responses)
        .zip(q.chunks(n_responses))
        .map(|(a, b)| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>())
        .sum::<f64>()
        / rows as f64
}

/// `exp` of a log-probability table, renormalised per row (f32 rounding) so that it is a valid
/// [`TabularPolicy`].
pub(super) fn probs_of(logp: &[f64], n_responses: usize) -> Vec<f64> {
    let mut p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
    for row in p.chunks_mut(n_responses) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    p
}

/// Everything one seed measured. Tables are row-major `[X·Y]` (cell `x·Y + y`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig1Measurements {
    /// The seed.
    pub seed: u64,
    /// Prompts `X`.
    pub n_prompts: usize,
    /// Responses `Y`.
    pub n_responses: usize,
    /// `r*(x, y)`.
    pub true_reward: Vec<f64>,
    /// 1 where the cell appears in the preference data, else 0.
    pub coverage: Vec<f64>,
    /// The reward model's `r(x, y)`.
    pub rm_reward: Vec<f64>,
    /// Share of the preference pairs the reward model orders correctly (`r_c > r_r`).
    pub rm_accuracy: f64,
    /// Share of prompts whose reward-model argmax response is uncovered: where the learnt
    /// reward, and so `π*`, favours a response the data never compared.
    pub rm_argmax_uncovered: f64,
    /// `π_ref(y|x)` (SFT on the spread data).
    pub pi_ref: Vec<f64>,
    /// `π_DPO(y|x)`, DPO from `π_ref`.
    pub pi_dpo: Vec<f64>,
    /// `π_PPO(y|x)`, PPO from `π_ref`.
    pub pi_ppo: Vec<f64>,
    /// `π*(y|x) ∝ π_ref·exp(r_RM/β)`, the KL-regularised optimum of the learnt reward.
    pub pi_star: Vec<f64>,
    /// Expected true reward of `π_ref`.
    pub reward_ref: f64,
    /// Expected true reward of `π_DPO`.
    pub reward_dpo: f64,
    /// Expected true reward of `π_PPO`.
    pub reward_ppo: f64,
    /// Expected true reward of `π*`.
    pub reward_star: f64,
    /// Largest `π_DPO − π_ref` over uncovered cells.
    pub dpo_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub dpo_uncovered_cell: usize,
    /// Largest `π_PPO − π_ref` over uncovered cells.
    pub ppo_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub ppo_uncovered_cell: usize,
    /// Control: expected true reward of PPO from `π_ref` rewarded by the true reward `r*`
    /// instead of the reward model (an oracle reward, correct on uncovered cells too).
    pub reward_ppo_oracle: f64,
    /// Largest `π_PPO-oracle − π_ref` over uncovered cells.
    pub ppo_oracle_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub ppo_oracle_uncovered_cell: usize,
    /// Mean total variation between `π_DPO` and `π*`.
    pub dpo_tv_to_optimum: f64,
    /// Mean total variation between `π_PPO` and `π*`.
    pub ppo_tv_to_optimum: f64,
    /// Bradley–Terry loss before each reward-model step.
    pub curve_rm_loss: Vec<f64>,
    /// DPO loss before each step (DPO from `π_ref`).
    pub curve_dpo_loss: Vec<f64>,
    /// Expected true reward before the first and after every PPO iteration (from `π_ref`).
    pub curve_ppo_reward: Vec<f64>,
    /// Expected true reward of `π_ref^other` (SFT on other data).
    pub shift_reward_ref_other: f64,
    /// Expected true reward of `π_ref^sft` (SFT on the chosen responses).
    pub shift_reward_ref_sft: f64,
    /// DPO from `π_ref^other`.
    pub shift_reward_dpo_other: f64,
    /// DPO from `π_ref^sft`.
    pub shift_reward_dpo_sft: f64,
    /// PPO from `π_ref^other`.
    pub shift_reward_ppo_other: f64,
    /// PPO from `π_ref^sft`.
    pub shift_reward_ppo_sft: f64,
    /// DPO-Iter from `π_ref^other`: expected true reward per round (round 0 = one-round DPO).
    pub iter_reward_other: Vec<f64>,
    /// DPO-Iter from `π_ref^sft`, as `iter_reward_other`.
    pub iter_reward_sft: Vec<f64>,
}

/// One metric row: name, index (a cell `x·Y + y`, a step, a round; `None` for a scalar), value.
pub use claimbench_paper::metrics::MetricRow;

/// The scalar fields (name, accessor) of [`Fig1Measurements`], in metric order.
pub(super) type Getter = fn(&Fig1Measurements) -> f64;
pub(super) type Setter = fn(&mut Fig1Measurements, f64);

macro_rules! field_tables {
    (scalars: [$($s:ident),*], vectors: [$($v:ident),*]) => {
        const SCALARS: &[(&str, Getter, Setter)] = &[
            $((stringify!($s), |m| m.$s, |m, v| m.$s = v)),*
        ];
        type VecGetter = fn(&Fig1Measurements) -> &Vec<f64>;
        type VecSetter = fn(&mut Fig1Measurements) -> &mut Vec<f64>;
        const VECTORS: &[(&str, VecGetter, VecSetter)] = &[
            $((stringify!($v), |m| &m.$v, |m| &mut m.$v)),*
        ];
    };
}

field_tables!(
    scalars: [
        rm_accuracy, rm_argmax_uncovered, reward_ref, reward_dpo, reward_ppo, reward_ppo_oracle,
        reward_star, dpo_tv_to_optimum,
        ppo_tv_to_optimum, shift_reward_ref_other, shift_reward_ref_sft, shift_reward_dpo_other,
        shift_reward_dpo_sft, shift_reward_ppo_other, shift_reward_ppo_sft
    ],
    vectors: [
        true_reward, coverage, rm_reward, pi_ref, pi_dpo, pi_ppo, pi_star, curve_rm_loss,
        curve_dpo_loss, curve_ppo_reward, iter_reward_other, iter_reward_sft
    ]
);

impl Fig1Measurements {
    /// The measurements as metric rows:
    /// - `seed`, `n_prompts`, `n_responses` (no index);
    /// - scalars, no index: `rm_accuracy`, `rm_argmax_uncovered`, `reward_{ref,dpo,ppo,star}`
    ///   (expected true reward of `π_ref`, `π_DPO`, `π_PPO`, `π*`), `{dpo,ppo}_tv_to_optimum`,
    ///   `shift_reward_{ref,dpo,ppo}_{other,sft}`;
    /// - `dpo_uncovered_increase` / `ppo_uncovered_increase` / `ppo_oracle_uncovered_increase`,
    ///   indexed by their cell `x·Y + y`; `reward_ppo_oracle` (no index);
    /// - tables indexed by cell: `true_reward`, `coverage`, `rm_reward`, `pi_ref`, `pi_dpo`,
    ///   `pi_ppo`, `pi_star`;
    /// - curves indexed by step: `curve_rm_loss`, `curve_dpo_loss`, `curve_ppo_reward` (index =
    ///   PPO iterations done), `iter_reward_other` / `iter_reward_sft` (index = DPO-Iter round,
    ///   0 = one-round DPO).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows: Vec<MetricRow> = vec![
            MetricRow::new("seed", None, self.seed as f64),
            MetricRow::new("n_prompts", None, self.n_prompts as f64),
            MetricRow::new("n_responses", None, self.n_responses as f64),
            MetricRow::new(
                "dpo_uncovered_increase",
                Some(self.dpo_uncovered_cell as i64),
                self.dpo_uncovered_increase,
            ),
            MetricRow::new(
                "ppo_uncovered_increase",
                Some(self.ppo_uncovered_cell as i64),
                self.ppo_uncovered_increase,
            ),
            MetricRow::new(
                "ppo_oracle_uncovered_increase",
                Some(self.ppo_oracle_uncovered_cell as i64),
                self.ppo_oracle_uncovered_increase,
            ),
        ];
        for (name, get, _) in SCALARS {
            rows.push(MetricRow::new(*name, None, get(self)));
        }
        for (name, get, _) in VECTORS {
            for (i, &v) in get(self).iter().enumerate() {
                rows.push(MetricRow::new(*name, Some(i as i64), v));
            }
        }
        rows
    }

    /// The inverse of [`Fig1Measurements::metrics`]: every name must be present (vectors with
    /// indices `0..n`, no gaps or repeats; scalars once, without index). Errors:
    /// [`Error::Metrics`] naming the bad row.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let table = MetricTable::new(rows);
        let plain = |name: &str| table.scalar(name);
        let count = |name: &str| whole(table.scalar(name)?, name);
        let vector = |name: &str| table.dense(name);
        let cell = |name: &str| -> Result<(usize, f64), Error> {
            match table.indexed(name)?.as_slice() {
                [one] => Ok(*one),
                rs => Err(Error::Metrics(format!(
                    "{name} has {} rows; it needs exactly 1",
                    rs.len()
                ))),
            }
        };
        let (dpo_cell, dpo_inc) = cell("dpo_uncovered_increase")?;
        let (ppo_cell, ppo_inc) = cell("ppo_uncovered_increase")?;
        let (oracle_cell, oracle_inc) = cell("ppo_oracle_uncovered_increase")?;
        let mut m = Fig1Measurements {
            seed: count("seed")? as u64,
            n_prompts: count("n_prompts")?,
            n_responses: count("n_responses")?,
            true_reward: Vec::new(),
            coverage: Vec::new(),
            rm_reward: Vec::new(),
            rm_accuracy: 0.0,
            rm_argmax_uncovered: 0.0,
            pi_ref: Vec::new(),
            pi_dpo: Vec::new(),
            pi_ppo: Vec::new(),
            pi_star: Vec::new(),
            reward_ref: 0.0,
            reward_dpo: 0.0,
            reward_ppo: 0.0,
            reward_star: 0.0,
            dpo_uncovered_increase: dpo_inc,
            dpo_uncovered_cell: dpo_cell,
            ppo_uncovered_increase: ppo_inc,
            ppo_uncovered_cell: ppo_cell,
            reward_ppo_oracle: 0.0,
            ppo_oracle_uncovered_increase: oracle_inc,
            ppo_oracle_uncovered_cell: oracle_cell,
            dpo_tv_to_optimum: 0.0,
            ppo_tv_to_optimum: 0.0,
            curve_rm_loss: Vec::new(),
            curve_dpo_loss: Vec::new(),
            curve_ppo_reward: Vec::new(),
            shift_reward_ref_other: 0.0,
            shift_reward_ref_sft: 0.0,
            shift_reward_dpo_other: 0.0,
            shift_reward_dpo_sft: 0.0,
            shift_reward_ppo_other: 0.0,
            shift_reward_ppo_sft: 0.0,
            iter_reward_other: Vec::new(),
            iter_reward_sft: Vec::new(),
        };
        for (name, _, set) in SCALARS {
            set(&mut m, plain(name)?);
        }
        for (name, _, set) in VECTORS {
            *set(&mut m) = vector(name)?;
        }
        let cells = m.n_prompts * m.n_responses;
        for (name, get, _) in VECTORS.iter().take(7) {
            if get(&m).len() != cells {
                return Err(Error::Metrics(format!(
                    "{name} has {} cells; {} × {} needs {cells}",
                    get(&m).len(),
                    m.n_prompts,
                    m.n_responses
                )));
            }
        }
        Ok(m)
    }

    /// `|R_PPO(sft) − R_PPO(other)|`: PPO's sensitivity to its reference.
    pub fn ppo_reference_gap(&self) -> f64 {
        (self.shift_reward_ppo_sft - self.shift_reward_ppo_other).abs()
    }

    /// `|R_DPO(sft) − R_DPO(other)|`: DPO's sensitivity to its reference.
    pub fn dpo_reference_gap(&self) -> f64 {
        (self.shift_reward_dpo_sft - self.shift_reward_dpo_other).abs()
    }
}

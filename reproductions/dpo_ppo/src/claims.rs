//! The exact (deterministic) claims of the paper's Sec. 4.1 as data, measured on the tabular
//! constructions of [`crate::tabular`] and judged by `claimbench_claims::evaluate` (test
//! `exact`). The experiments with seeds (Fig. 1, the PPO ladder, distribution shift) join later.

use claimbench_claims::{Claim, ClaimError, ClaimSpec, Evidence, TestSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;
use crate::tabular::{
    RandomTabular, TABLE1_DPO_INFIMUM, TABLE1_DPO_SOLUTION, Table1, optimum_losses,
};

const PAPER: &str = "dpo-ppo";
/// β of the Table 1 checks (the paper's DPO β).
pub const BETA: f64 = 0.1;
/// Stage-1 rewards `(r(y1), r(y2), r(y3))` whose KL-regularised optimum is checked for mass on
/// `y3`: the reward model of `{y1 ≻ y2}` fixes only `r(y1) − r(y2)` and leaves `r(y3)` free, so
/// `r(y3)` ranges from far below to far above the others.
pub const TABLE1_REWARDS: [[f64; 3]; 4] = [
    [1.0, 0.0, -5.0],
    [1.0, 0.0, 0.0],
    [1.0, 0.0, 5.0],
    [10.0, 0.0, 50.0],
];
/// Shapes `(prompts, responses)` and βs of the random tabular problems.
pub const RANDOM_SHAPES: [(usize, usize); 3] = [(8, 8), (4, 3), (16, 5)];
/// βs of the random tabular problems.
pub const RANDOM_BETAS: [f64; 3] = [0.1, 1.0, 3.0];
/// Tolerance of the optimum identity (f64 rounding over a few hundred terms is far below it).
pub const OPTIMUM_TOLERANCE: f64 = 1e-6;

/// What the exact claims measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Table1Measurements {
    /// `L_DPO(π = (0.1, 0, 0.9))` on `{y1 ≻ y2}` with `π_ref = (0.5, 0.5, 0)`.
    pub dpo_loss_at_solution: f64,
    /// The largest `π*(y3)` of the KL-regularised optimum over [`TABLE1_REWARDS`].
    pub ppo_max_mass_y3: f64,
    /// The largest `|L_DPO(π*) − L_BT(r)|` over the random problems.
    pub optimum_max_abs_diff: f64,
    /// How many random problems were checked.
    pub problems: usize,
}

/// Measures everything on the seeds given (one random problem per seed, shape and β).
pub fn measure(seeds: &[u64]) -> Result<Table1Measurements, Error> {
    let table = Table1::new();
    let dpo_loss_at_solution = table.dpo_loss(TABLE1_DPO_SOLUTION, BETA)?;
    let mut ppo_max_mass_y3 = 0.0f64;
    for r in TABLE1_REWARDS {
        ppo_max_mass_y3 = ppo_max_mass_y3.max(table.ppo_optimum(r, BETA)?[2]);
    }
    let (mut worst, mut problems) = (0.0f64, 0usize);
    for &seed in seeds {
        for (x, y) in RANDOM_SHAPES {
            let p = RandomTabular::generate(seed, x, y)?;
            for beta in RANDOM_BETAS {
                let l = optimum_losses(&p, beta)?;
                worst = worst.max((l.dpo_at_optimum - l.reward_model).abs());
                problems += 1;
            }
        }
    }
    Ok(Table1Measurements {
        dpo_loss_at_solution,
        ppo_max_mass_y3,
        optimum_max_abs_diff: worst,
        problems,
    })
}

fn spec(id: &str, statement: &str, source: &str, metric: &str, test: TestSpec) -> ClaimSpec {
    // Deterministic facts, not a scaled-down experiment: no proxy, no seeds.
    ClaimSpec {
        proxy: false,
        min_seeds: 1,
        ..ClaimSpec::new(PAPER, id, statement, source, metric, test)
    }
}

/// The three exact claims.
pub fn specs() -> Vec<ClaimSpec> {
    let mut a = spec(
        "table1-dpo-extra-solution",
        "π = (0.1, 0, 0.9) attains the DPO loss's infimum on {y1 ≻ y2} although π_ref(y3) = 0",
        "Table 1, Theorem 4.1",
        "L_DPO(0.1, 0, 0.9) at β = 0.1",
        TestSpec::exact(TABLE1_DPO_INFIMUM, 1e-12),
    );
    a.paper_value = json!(0.0);
    a.margin_why = "exact up to f64 rounding".into();
    let mut b = spec(
        "table1-ppo-no-mass-outside-support",
        "The KL-regularised (PPO) optimum puts no mass on y3, whatever reward y3 gets",
        "Table 1, Theorem 4.1",
        "max π*(y3) over r(y3) ∈ {−5, 0, 5, 50}",
        TestSpec::exact(0.0, 0.0),
    );
    b.paper_value = json!(0.0);
    b.margin_why = "π* ∝ π_ref·exp(r/β) is exactly 0 where π_ref is 0".into();
    let mut c = spec(
        "optimum-dpo-equals-reward-model",
        "On random tabular problems the closed-form optimum π* ∝ π_ref·exp(r/β) makes the DPO loss \
         equal the reward-model (Bradley–Terry) loss",
        "Sec. 4.1 (DPO's reparameterisation)",
        "max |L_DPO(π*) − L_BT(r)| over the problems",
        TestSpec::exact(0.0, OPTIMUM_TOLERANCE),
    );
    c.paper_value = json!(0.0);
    c.margin_why =
        "1e-6: the identity is exact, f64 rounding over a few hundred pairs is ~1e-14".into();
    vec![a, b, c]
}

/// The verdicts of [`specs`] on `m`.
pub fn evaluate(m: &Table1Measurements, scale: &str) -> Result<Vec<Claim>, ClaimError> {
    let values = [
        m.dpo_loss_at_solution,
        m.ppo_max_mass_y3,
        m.optimum_max_abs_diff,
    ];
    specs()
        .iter()
        .zip(values)
        .map(|(s, v)| claimbench_claims::evaluate(s, &Evidence::Exact(v), &[], scale))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_claims_are_reproduced_and_a_wrong_value_is_not() {
        let m = measure(&[0, 1]).unwrap();
        assert_eq!(m.problems, 2 * 3 * 3);
        let claims = evaluate(&m, "small").unwrap();
        assert_eq!(claims.len(), 3);
        for c in &claims {
            assert_eq!(c.verdict.as_str(), "reproduced", "{c:?}");
        }
        // Negative control: a policy with mass on y2 is not at the infimum.
        let off = Table1Measurements {
            dpo_loss_at_solution: Table1::new().dpo_loss([0.5, 0.2, 0.3], BETA).unwrap(),
            ..m
        };
        assert_eq!(
            evaluate(&off, "small").unwrap()[0].verdict.as_str(),
            "not-reproduced"
        );
    }
}

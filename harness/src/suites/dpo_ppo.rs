//! The DPO-vs-PPO reproduction (paper id `dpo-ppo`, arXiv 2404.10719) in the run: so far one
//! unit, the exact tabular claims of Sec. 4.1 (Table 1 and the optimum identity), computed by
//! `claimbench_dpo_ppo` in f64 on the CPU.

use claimbench_dpo_ppo::claims::{Table1Measurements, measure};

use super::{Job, Outcome, UnitSpec, metric};
use crate::store::{UnitRecord, UnitStatus};

/// The paper id.
pub const PAPER: &str = "dpo-ppo";
/// The exact-claims unit.
pub const TABLE1_UNIT: &str = "dpo-ppo/table1/exact";

/// The paper's units.
pub fn units() -> Vec<UnitSpec> {
    vec![UnitSpec {
        id: TABLE1_UNIT.into(),
        paper: PAPER.into(),
        experiment: "table1".into(),
        arm: "tabular".into(),
        seed: Some(0),
        job: Job::DpoTable1,
        needs_device: false,
    }]
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
                metric(
                    "f64",
                    "3",
                    None,
                    "dpo_loss_at_solution",
                    m.dpo_loss_at_solution,
                    "nats",
                ),
                metric(
                    "f64",
                    "3",
                    None,
                    "ppo_max_mass_y3",
                    m.ppo_max_mass_y3,
                    "probability",
                ),
                metric(
                    "f64",
                    "tabular",
                    None,
                    "optimum_max_abs_diff",
                    m.optimum_max_abs_diff,
                    "nats",
                ),
                metric(
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

/// The measurements stored by the run's passed exact-claims unit, if any.
pub fn measurements(records: &[UnitRecord]) -> Option<Table1Measurements> {
    let u = records
        .iter()
        .find(|u| u.unit_id == TABLE1_UNIT && u.status == UnitStatus::Passed)?;
    let get = |name: &str| u.metrics.iter().find(|m| m.metric == name).map(|m| m.value);
    Some(Table1Measurements {
        dpo_loss_at_solution: get("dpo_loss_at_solution")?,
        ppo_max_mass_y3: get("ppo_max_mass_y3")?,
        optimum_max_abs_diff: get("optimum_max_abs_diff")?,
        problems: get("problems")? as usize,
    })
}

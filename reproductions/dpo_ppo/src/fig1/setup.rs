//! The preference problem of one seed ([`Setup`]): seeded streams, the true reward, coverage and the preference pairs.

use super::*;

/// A seed for one of the experiment's random streams: `seed` mixed with the stream's tag.
pub(super) fn stream(seed: u64, tag: u64) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

/// A standard normal draw (Box–Muller).
pub(super) fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One draw from the distribution `probs` (non-negative, any positive sum).
pub(super) fn categorical(rng: &mut StdRng, probs: &[f64]) -> usize {
    let total: f64 = probs.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    // Rounding left `u` at or above the last weight: the last response with positive weight.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// The seeded problem of one seed: true reward, preference data and the SFT data sets. Tables are
/// row-major `[X, Y]` (`(x, y)` at `x·Y + y`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Prompts `X`.
    pub n_prompts: usize,
    /// Responses `Y`.
    pub n_responses: usize,
    /// `r*(x, y)`, `[X·Y]`: 1 on the diagonal, `U[0, off_diagonal_max)` elsewhere.
    pub true_reward: Vec<f64>,
    /// `covered[x·Y + y]`: `y` appears in one of `x`'s pairs. The diagonal is always covered.
    pub covered: Vec<bool>,
    /// The preference data, hard labels by `r*`, grouped by prompt.
    pub pairs: Vec<Preference>,
    /// SFT counts of `π_ref`'s data, `[X·Y]`.
    pub ref_counts: Vec<f64>,
    /// SFT counts of `π_ref^other`'s data (concentrated on uncovered responses), `[X·Y]`.
    pub other_counts: Vec<f64>,
    /// SFT counts of `π_ref^sft`'s data: each pair's chosen response once, `[X·Y]`.
    pub chosen_counts: Vec<f64>,
}

impl Setup {
    /// The problem of `seed` under `cfg` (validated first).
    pub fn generate(cfg: &Fig1Config, seed: u64) -> Result<Self, Error> {
        cfg.validate()?;
        let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
        let mut rng = stream(seed, 1);
        let mut true_reward = vec![0.0; nx * ny];
        for x in 0..nx {
            for y in 0..ny {
                true_reward[x * ny + y] = if x % ny == y {
                    1.0
                } else {
                    rng.random::<f64>() * cfg.off_diagonal_max
                };
            }
        }
        let mut covered = vec![false; nx * ny];
        let mut pairs = Vec::new();
        for x in 0..nx {
            let diag = x % ny;
            // A partial Fisher–Yates shuffle picks the covered non-diagonal responses.
            let mut others: Vec<usize> = (0..ny).filter(|&y| y != diag).collect();
            for i in 0..cfg.covered_per_prompt - 1 {
                let j = rng.random_range(i..others.len());
                others.swap(i, j);
            }
            let mut resp = vec![diag];
            resp.extend_from_slice(&others[..cfg.covered_per_prompt - 1]);
            // All pairs among the covered responses, those with the diagonal (index 0) first.
            let mut cand = Vec::new();
            for i in 0..resp.len() {
                for j in i + 1..resp.len() {
                    cand.push((resp[i], resp[j]));
                }
            }
            for &(a, b) in cand.iter().take(cfg.pairs_per_prompt) {
                let (ra, rb) = (true_reward[x * ny + a], true_reward[x * ny + b]);
                let (c, r) = if ra >= rb { (a, b) } else { (b, a) };
                covered[x * ny + a] = true;
                covered[x * ny + b] = true;
                pairs.push(Preference::hard(x, c, r));
            }
        }
        let mut ref_counts = vec![0.0; nx * ny];
        let mut other_counts = vec![0.0; nx * ny];
        let mut chosen_counts = vec![0.0; nx * ny];
        let mut srng = stream(seed, 2);
        for x in 0..nx {
            let g: Vec<f64> = (0..ny)
                .map(|_| (cfg.ref_spread * normal(&mut srng)).exp())
                .collect();
            let row = &covered[x * ny..(x + 1) * ny];
            let n_cov = row.iter().filter(|&&c| c).count() as f64;
            let n_unc = ny as f64 - n_cov;
            let other: Vec<f64> = row
                .iter()
                .map(|&c| {
                    if c {
                        cfg.other_covered_share / n_cov
                    } else {
                        (1.0 - cfg.other_covered_share) / n_unc
                    }
                })
                .collect();
            for _ in 0..cfg.sft_samples_per_prompt {
                ref_counts[x * ny + categorical(&mut srng, &g)] += 1.0;
                other_counts[x * ny + categorical(&mut srng, &other)] += 1.0;
            }
        }
        for p in &pairs {
            chosen_counts[p.prompt * ny + p.chosen] += 1.0;
        }
        Ok(Setup {
            n_prompts: nx,
            n_responses: ny,
            true_reward,
            covered,
            pairs,
            ref_counts,
            other_counts,
            chosen_counts,
        })
    }

    /// Expected true reward of a policy table `[X·Y]`, prompts uniform:
    /// `(1/X) Σ_x Σ_y π(y|x) r*(x, y)`.
    pub fn expected_true_reward(&self, probs: &[f64]) -> f64 {
        probs
            .iter()
            .zip(&self.true_reward)
            .map(|(p, r)| p * r)
            .sum::<f64>()
            / self.n_prompts as f64
    }

    /// The largest `π(y|x) − π_ref(y|x)` over uncovered cells (which are never the diagonal),
    /// and its cell `x·Y + y`.
    pub fn largest_uncovered_increase(&self, policy: &[f64], reference: &[f64]) -> (usize, f64) {
        let mut best = (0, f64::NEG_INFINITY);
        for (i, &c) in self.covered.iter().enumerate() {
            let d = policy[i] - reference[i];
            if !c && d > best.1 {
                best = (i, d);
            }
        }
        best
    }
}

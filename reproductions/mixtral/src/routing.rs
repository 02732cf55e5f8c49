//! Routing statistics of one MoE layer on the validation set, from the host copy of the chosen
//! experts (paper Sec. 5):
//!
//! - **same-first rate**: over consecutive positions `(t, t+1)` of a sequence, the fraction whose
//!   first-choice expert is the same (Table 5, "First choice"; chance `1/E` = 12.5% for `E = 8`
//!   under uniform routing);
//! - **first-or-second rate**: the fraction whose top-`k` sets share an expert (Table 5, "First
//!   or second choice"; chance `1 − C(E−k, k)/C(E, k)` = 46.4% for `E = 8`, `k = 2`);
//! - **shares**: the fraction of all `n·k` assignments each expert receives (balanced: `1/E`);
//! - **per-domain histograms** (Fig. 7): the same fractions within each domain's validation
//!   sequences, and their total-variation distance `½ Σ_e |h_δ,e − h_e|` to the overall
//!   histogram `h` (0: the domain is routed like everything else; 1: disjoint experts).

use serde::{Deserialize, Serialize};

/// The statistics of one layer (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRouting {
    /// Block index (0-based).
    pub layer: usize,
    /// Consecutive tokens with the same first-choice expert, in `[0, 1]`.
    pub same_first: f64,
    /// Consecutive tokens whose top-`k` sets overlap, in `[0, 1]`.
    pub first_or_second: f64,
    /// What `same_first` would be if consecutive choices were independent draws from the
    /// observed first-choice shares: `Σ_e s1_e²` (equals `1/E` only when balanced).
    pub same_first_chance: f64,
    /// Fraction of the assignments per expert `[E]` (sums to 1).
    pub shares: Vec<f64>,
    /// Per domain, the fraction of its assignments per expert `[D][E]`.
    pub domain_hist: Vec<Vec<f64>>,
    /// Per domain, the total-variation distance of its histogram to `shares` `[D]`.
    pub domain_tv: Vec<f64>,
}

impl LayerRouting {
    /// From `ids [rows · T, k]` (row-major; sequence `r`'s positions are rows `r·T..(r+1)·T`)
    /// and the domain of each sequence. `experts` is `E`.
    pub fn from_ids(
        layer: usize,
        ids: &[usize],
        k: usize,
        seq_len: usize,
        domain: &[usize],
        domains: usize,
        experts: usize,
    ) -> Self {
        let mut counts = vec![0usize; experts];
        let mut first = vec![0usize; experts];
        let mut dom_counts = vec![vec![0usize; experts]; domains];
        let (mut same, mut overlap, mut pairs) = (0usize, 0usize, 0usize);
        let at = |pos: usize| &ids[pos * k..(pos + 1) * k];
        for (r, &dom) in domain.iter().enumerate() {
            for t in 0..seq_len {
                let pos = r * seq_len + t;
                let cur = at(pos);
                first[cur[0]] += 1;
                for &e in cur {
                    counts[e] += 1;
                    dom_counts[dom][e] += 1;
                }
                if t + 1 < seq_len {
                    let nxt = at(pos + 1);
                    pairs += 1;
                    same += usize::from(cur[0] == nxt[0]);
                    overlap += usize::from(cur.iter().any(|e| nxt.contains(e)));
                }
            }
        }
        let frac = |c: &[usize]| -> Vec<f64> {
            let total: usize = c.iter().sum();
            c.iter().map(|&x| x as f64 / total.max(1) as f64).collect()
        };
        let shares = frac(&counts);
        let domain_hist: Vec<Vec<f64>> = dom_counts.iter().map(|c| frac(c)).collect();
        let domain_tv = domain_hist
            .iter()
            .map(|h| total_variation(h, &shares))
            .collect();
        LayerRouting {
            layer,
            same_first: same as f64 / pairs.max(1) as f64,
            first_or_second: overlap as f64 / pairs.max(1) as f64,
            same_first_chance: frac(&first).iter().map(|s| s * s).sum(),
            shares,
            domain_hist,
            domain_tv,
        }
    }

    /// The largest share times `E` (1 = balanced, `E` = collapse onto one expert).
    pub fn max_share_ratio(&self) -> f64 {
        let e = self.shares.len() as f64;
        self.shares.iter().fold(0.0, |m: f64, &s| m.max(s)) * e
    }

    /// The smallest share times `E` (1 = balanced, 0 = an unused expert).
    pub fn min_share_ratio(&self) -> f64 {
        let e = self.shares.len() as f64;
        self.shares
            .iter()
            .fold(f64::INFINITY, |m: f64, &s| m.min(s))
            * e
    }

    /// Mean over domains of [`LayerRouting::domain_tv`].
    pub fn mean_domain_tv(&self) -> f64 {
        self.domain_tv.iter().sum::<f64>() / self.domain_tv.len().max(1) as f64
    }
}

/// `½ Σ_i |p_i − q_i|`.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// The chance that two independent uniformly random top-`k` sets of `E` experts share one:
/// `1 − C(E−k, k)/C(E, k)` (46.4% for `E = 8`, `k = 2`, the paper's "random" column).
pub fn chance_overlap(experts: usize, k: usize) -> f64 {
    fn choose(n: usize, r: usize) -> f64 {
        if r > n {
            return 0.0;
        }
        (0..r).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }
    if 2 * k > experts {
        return 1.0;
    }
    1.0 - choose(experts - k, k) / choose(experts, k)
}

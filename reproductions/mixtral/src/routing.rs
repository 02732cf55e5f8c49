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
//!   histogram `h` (0: the domain is routed like everything else; 1: disjoint experts);
//! - **domain–expert mutual information** ([`domain_mi`]): `I(domain; first-choice expert)` in
//!   bits over the validation tokens, with a permutation null that shuffles the sequences'
//!   domain labels (tokens of one sequence keep one label, so their dependence is kept) and
//!   its p-value `(1 + #{null ≥ observed}) / (P + 1)`; the claims read the excess over the
//!   null's mean (the plug-in estimate's bias removed);
//! - **planted specialisation** (the positive control of those tests, [`planted_domain_tv`]): the
//!   same statistics of the top-`k` choices of a router given a domain signal, i.e. the
//!   layer's own router logits on the same validation tokens plus a bias `b` on expert
//!   `δ mod E` for the tokens of domain `δ`, with `b` a stated number of standard deviations
//!   of the layer's logits. Measured on the trained model's logits, no extra training; the
//!   biased choices are not fed forward (later layers see the model's own routing).

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
    /// The planted bias `b` in logit units ([`planted_domain_tv`]; 0 until
    /// [`LayerRouting::with_planted`]).
    pub planted_bias: f64,
    /// Per domain, `domain_tv` of the router with the planted domain bias `[D]` (empty until
    /// [`LayerRouting::with_planted`]).
    pub planted_domain_tv: Vec<f64>,
    /// [`domain_mi`] of the real routing (zeros until [`LayerRouting::with_mi`]).
    pub mi: MiTest,
    /// [`domain_mi`] of the router with the planted domain bias (zeros until
    /// [`LayerRouting::with_planted`]).
    pub planted_mi: MiTest,
    /// Per domain, the first-choice expert of the first tokens of its first validation window
    /// (the page's coloured sample, the paper's Fig. 8); `[D][S]`.
    pub sample_experts: Vec<Vec<usize>>,
}

/// The permutation test of the domain–expert mutual information ([`domain_mi`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MiTest {
    /// Observed `I(domain; first expert)`, bits.
    pub observed: f64,
    /// Mean of the permutation null, bits.
    pub null_mean: f64,
    /// `(1 + #{null ≥ observed}) / (P + 1)`.
    pub p: f64,
}

impl MiTest {
    /// Observed minus the null's mean (bits): the specialisation claims' statistic.
    pub fn excess(&self) -> f64 {
        self.observed - self.null_mean
    }
}

/// Plug-in mutual information (bits) between each token's domain and its first-choice expert:
/// `first [rows · T]` row-major, `domain [rows]`.
pub fn mutual_information(
    first: &[usize],
    seq_len: usize,
    domain: &[usize],
    domains: usize,
    experts: usize,
) -> f64 {
    let mut joint = vec![0usize; domains * experts];
    let mut n = 0usize;
    for (r, &d) in domain.iter().enumerate() {
        for &e in first.iter().skip(r * seq_len).take(seq_len) {
            if d < domains && e < experts {
                joint[d * experts + e] += 1;
                n += 1;
            }
        }
    }
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let pd: Vec<f64> = (0..domains)
        .map(|d| joint[d * experts..(d + 1) * experts].iter().sum::<usize>() as f64 / nf)
        .collect();
    let pe: Vec<f64> = (0..experts)
        .map(|e| (0..domains).map(|d| joint[d * experts + e]).sum::<usize>() as f64 / nf)
        .collect();
    let mut mi = 0.0;
    for d in 0..domains {
        for e in 0..experts {
            let c = joint[d * experts + e];
            if c > 0 {
                let p = c as f64 / nf;
                mi += p * (p / (pd[d] * pe[e])).log2();
            }
        }
    }
    mi.max(0.0)
}

/// The permutation test of [`mutual_information`]: the observed value, the mean of `perms`
/// values with the sequences' domain labels shuffled (Fisher–Yates from `rng`), and the p-value
/// `(1 + #{null ≥ observed}) / (perms + 1)`.
pub fn domain_mi(
    first: &[usize],
    seq_len: usize,
    domain: &[usize],
    domains: usize,
    experts: usize,
    perms: usize,
    rng: &mut rand::rngs::StdRng,
) -> MiTest {
    use rand::Rng;
    let observed = mutual_information(first, seq_len, domain, domains, experts);
    let mut labels = domain.to_vec();
    let (mut sum, mut above) = (0.0, 0usize);
    for _ in 0..perms {
        for i in (1..labels.len()).rev() {
            let j = rng.random_range(0..=i);
            labels.swap(i, j);
        }
        let m = mutual_information(first, seq_len, &labels, domains, experts);
        sum += m;
        above += usize::from(m >= observed - 1e-12);
    }
    MiTest {
        observed,
        null_mean: sum / perms.max(1) as f64,
        p: (1 + above) as f64 / (perms + 1) as f64,
    }
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
            planted_bias: 0.0,
            planted_domain_tv: Vec::new(),
            mi: MiTest::default(),
            planted_mi: MiTest::default(),
            sample_experts: Vec::new(),
        }
    }

    /// Adds [`domain_mi`] of the first choices in `ids [rows · T, k]` (as in
    /// [`LayerRouting::from_ids`]) with `perms` permutations from `rng`.
    pub fn with_mi(
        mut self,
        ids: &[usize],
        k: usize,
        seq_len: usize,
        domain: &[usize],
        perms: usize,
        rng: &mut rand::rngs::StdRng,
    ) -> Self {
        let first: Vec<usize> = ids.iter().step_by(k.max(1)).copied().collect();
        let (d, e) = (self.domain_tv.len(), self.shares.len());
        self.mi = domain_mi(&first, seq_len, domain, d, e, perms, rng);
        self
    }

    /// Adds the positive control: [`planted_domain_tv`] of this layer's router `logits
    /// [rows · T, E]` (the rows of `ids` in [`LayerRouting::from_ids`]) with a bias of
    /// `bias_sd` standard deviations, and [`domain_mi`] of its first choices (`perms`
    /// permutations from `rng`): the same tests as the real routing's.
    #[allow(clippy::too_many_arguments)]
    pub fn with_planted(
        mut self,
        logits: &[f64],
        k: usize,
        seq_len: usize,
        domain: &[usize],
        bias_sd: f64,
        perms: usize,
        rng: &mut rand::rngs::StdRng,
    ) -> Self {
        let experts = self.shares.len();
        let domains = self.domain_tv.len();
        let (b, ids) = planted_ids(logits, experts, k, seq_len, domain, bias_sd);
        let r = LayerRouting::from_ids(0, &ids, k, seq_len, domain, domains, experts);
        self.planted_bias = b;
        self.planted_domain_tv = r.domain_tv;
        let first: Vec<usize> = ids.iter().step_by(k.max(1)).copied().collect();
        self.planted_mi = domain_mi(&first, seq_len, domain, domains, experts, perms, rng);
        self
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

    /// Mean over domains of [`LayerRouting::planted_domain_tv`] (`None` when not measured).
    pub fn mean_planted_tv(&self) -> Option<f64> {
        let tv = &self.planted_domain_tv;
        (!tv.is_empty()).then(|| tv.iter().sum::<f64>() / tv.len() as f64)
    }
}

/// The root-mean-square spread of router logits within a token: `sqrt(mean_rows(mean_e
/// (x_e − x̄_row)²))` over `logits [n, E]` (0 for no rows).
pub fn logit_sd(logits: &[f64], experts: usize) -> f64 {
    let rows = logits.len() / experts.max(1);
    if rows == 0 {
        return 0.0;
    }
    let var: f64 = logits
        .chunks_exact(experts)
        .map(|x| {
            let m = x.iter().sum::<f64>() / experts as f64;
            x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / experts as f64
        })
        .sum();
    (var / rows as f64).sqrt()
}

/// The top-`k` experts of each row of `logits [n, E]`, highest first (ties: lower index
/// first), as `ids [n, k]` row-major.
pub fn top_k_ids(logits: &[f64], experts: usize, k: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(logits.len() / experts.max(1) * k);
    let mut order: Vec<usize> = (0..experts).collect();
    for x in logits.chunks_exact(experts) {
        order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
        out.extend_from_slice(&order[..k]);
    }
    out
}

/// The positive control of the specialisation test: `(b, tv [D])`.
///
/// `logits [rows · T, E]` are a layer's router logits on the validation tokens (sequence `r`'s
/// positions are rows `r·T..(r+1)·T`, its domain `domain[r]`). With `b = bias_sd ·`
/// [`logit_sd`], every token of domain `δ` gets `+b` on expert `δ mod E`; the top-`k` of the
/// biased logits ([`top_k_ids`]) go through [`LayerRouting::from_ids`], and `tv` is its
/// `domain_tv`: the same statistic as the real routing's, for a router that was given the
/// domain. With independent standard-normal logits (`E = 8`, `k = 2`, `D = 4`) a bias of 2 sd
/// gives a mean TV of about 0.25 (simulation; `routing::tests`), 1 sd about 0.14.
pub fn planted_domain_tv(
    logits: &[f64],
    experts: usize,
    k: usize,
    seq_len: usize,
    domain: &[usize],
    domains: usize,
    bias_sd: f64,
) -> (f64, Vec<f64>) {
    let (b, ids) = planted_ids(logits, experts, k, seq_len, domain, bias_sd);
    let r = LayerRouting::from_ids(0, &ids, k, seq_len, domain, domains, experts);
    (b, r.domain_tv)
}

/// The planted router's bias `b` (logit units) and its top-`k` choices `ids [rows · T, k]`
/// ([`planted_domain_tv`]).
pub fn planted_ids(
    logits: &[f64],
    experts: usize,
    k: usize,
    seq_len: usize,
    domain: &[usize],
    bias_sd: f64,
) -> (f64, Vec<usize>) {
    let b = bias_sd * logit_sd(logits, experts);
    let mut biased = logits.to_vec();
    for (r, &dom) in domain.iter().enumerate() {
        for t in 0..seq_len {
            let row = r * seq_len + t;
            if let Some(x) = biased.get_mut(row * experts + dom % experts.max(1)) {
                *x += b;
            }
        }
    }
    (b, top_k_ids(&biased, experts, k))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{normal, stream};

    #[test]
    fn top_k_takes_the_largest_with_ties_to_the_lower_index() {
        let logits = [0.0, 3.0, 1.0, 3.0, /* row 2 */ 5.0, -1.0, 5.0, 5.0];
        assert_eq!(top_k_ids(&logits, 4, 2), vec![1, 3, 0, 2]);
        assert!((logit_sd(&[0.0, 1.0, 2.0, 3.0], 4) - 1.25f64.sqrt()).abs() < 1e-12);
    }

    /// Two one-position sequences of domains 0 and 1, both with logits [0, 1, 2, 3]: without a
    /// bias both route to {3, 2} (TV 0); with 2 sd (b = 2·√1.25 ≈ 2.24) domain 0 routes to
    /// {3, 0} and domain 1 to {1, 3}: histograms (½ on 0 and 3) and (½ on 1 and 3) against the
    /// overall (¼, ¼, 0, ½), TV ¼ each.
    #[test]
    fn planted_bias_moves_each_domain_to_its_expert() {
        let logits = [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0];
        let (b, tv) = planted_domain_tv(&logits, 4, 2, 1, &[0, 1], 2, 1e-12);
        assert!(b < 1e-11);
        assert_eq!(tv, vec![0.0, 0.0]);
        let (b, tv) = planted_domain_tv(&logits, 4, 2, 1, &[0, 1], 2, 2.0);
        assert!((b - 2.0 * 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(tv, vec![0.25, 0.25]);
        let r = LayerRouting::from_ids(0, &[3, 2, 3, 2], 2, 1, &[0, 1], 2, 4).with_planted(
            &logits,
            2,
            1,
            &[0, 1],
            2.0,
            19,
            &mut stream(0, 1),
        );
        assert_eq!(r.domain_tv, vec![0.0, 0.0]);
        assert_eq!(r.planted_domain_tv, vec![0.25, 0.25]);
        assert_eq!(r.mean_planted_tv(), Some(0.25));
    }

    /// The number quoted in [`planted_domain_tv`]'s docs and the control's band rule:
    /// independent standard-normal logits, `E = 8`, `k = 2`, `D = 4`, bias 2 sd → mean TV
    /// ≈ 0.25 (the sd of such logits within a row is about √(7/8)).
    #[test]
    fn planted_bias_of_two_sd_on_gaussian_logits_gives_tv_near_a_quarter() {
        let (e, d, per) = (8, 4, 4000);
        let mut rng = stream(1, 99);
        let logits: Vec<f64> = (0..d * per * e).map(|_| normal(&mut rng)).collect();
        let domain: Vec<usize> = (0..d).flat_map(|x| std::iter::repeat_n(x, per)).collect();
        let (_, tv) = planted_domain_tv(&logits, e, 2, 1, &domain, d, 2.0);
        let mean = tv.iter().sum::<f64>() / d as f64;
        assert!((0.22..0.29).contains(&mean), "mean TV {mean}");
        let (_, none) = planted_domain_tv(&logits, e, 2, 1, &domain, d, 1e-9);
        assert!(none.iter().all(|&x| x < 0.03), "{none:?}");
    }

    /// The mutual information of known tables: independent (0 bits) and a full split of two
    /// domains over two experts (1 bit).
    #[test]
    fn mutual_information_of_known_tables() {
        // Two sequences of two tokens: domain 0 → experts 0, 1; domain 1 → 0, 1: independent.
        assert_eq!(mutual_information(&[0, 1, 0, 1], 2, &[0, 1], 2, 2), 0.0);
        // Domain 0 → 0, 0; domain 1 → 1, 1: one bit.
        let mi = mutual_information(&[0, 0, 1, 1], 2, &[0, 1], 2, 2);
        assert!((mi - 1.0).abs() < 1e-12, "{mi}");
    }

    /// The permutation test: routing independent of the domain gives an excess near 0 and a
    /// large p; the planted router of the control's setting (`E = 8`, `k = 2`, `D = 5`, bias
    /// 2 sd on Gaussian logits, windows of 64 tokens) gives an excess of about 0.93 bits, far
    /// above the claims' bound of 0.05 bits, and the smallest p the permutations allow. The
    /// number is the one the control's band rule quotes.
    #[test]
    fn permutation_test_separates_none_from_planted() {
        let (e, d, per, t) = (8, 5, 24, 64);
        let mut rng = stream(2, 7);
        let logits: Vec<f64> = (0..d * per * t * e).map(|_| normal(&mut rng)).collect();
        let domain: Vec<usize> = (0..d).flat_map(|x| std::iter::repeat_n(x, per)).collect();
        let ids = top_k_ids(&logits, e, 2);
        let first: Vec<usize> = ids.iter().step_by(2).copied().collect();
        let none = domain_mi(&first, t, &domain, d, e, 199, &mut stream(3, 1));
        assert!(none.excess().abs() < 0.01, "{none:?}");
        assert!(none.p > 0.05, "{none:?}");
        let (_, planted) = planted_ids(&logits, e, 2, t, &domain, 2.0);
        let first: Vec<usize> = planted.iter().step_by(2).copied().collect();
        let yes = domain_mi(&first, t, &domain, d, e, 199, &mut stream(3, 2));
        eprintln!("planted 2 sd: {yes:?}");
        assert!((0.85..1.0).contains(&yes.excess()), "{yes:?}");
        assert!((yes.p - 0.005).abs() < 1e-12, "{yes:?}");
    }
}

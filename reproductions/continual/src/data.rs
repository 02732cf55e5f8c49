//! Seeded synthetic "languages" and the finite datasets drawn from them.
//!
//! The paper continues pre-training from the Pile (D0) to SlimPajama (a *weak* shift: more
//! English web text) or to German Common Crawl (a *strong* shift: a new language). Our proxies:
//!
//! - a [`Language`] is a sparse order-2 Markov chain over its own token range: every context
//!   `(a, b)` has `fanout` successors with seeded log-normal weights;
//! - weak shift: [`Language::redraw`] re-draws the successors of a share (default 30%) of D0's
//!   contexts, keeping the vocabulary and the rest of the structure;
//! - strong shift: a new chain on a disjoint token range (`offset = size`), so D1 shares no
//!   token with D0 and only the model's weights are shared.
//!
//! Datasets are finite ([`Corpus`]): `n` sequences of `len` tokens generated once per seed, as a
//! real corpus is; training samples them with replacement through the replay mixer.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::ConfigError;

/// A sparse Markov chain of order 1 or 2 over the tokens `offset..offset + size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Language {
    offset: usize,
    size: usize,
    fanout: usize,
    order: usize,
    /// `succ[ctx·fanout + j]`: the `j`-th successor (local id) of context `ctx` (`b` for order
    /// 1, `a·size + b` for order 2, where `b` is the last token).
    succ: Vec<u32>,
    /// Matching probabilities, each context's `fanout` entries summing to 1.
    prob: Vec<f64>,
}

impl Language {
    /// A chain of `order` (1 or 2) over `offset..offset + size` with `fanout` successors per
    /// context, from `seed`. Errors unless `size ≥ 2`, `1 ≤ fanout ≤ size`, `order ∈ {1, 2}`.
    pub fn new(
        offset: usize,
        size: usize,
        fanout: usize,
        order: usize,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        if size < 2 || fanout == 0 || fanout > size || !(1..=2).contains(&order) {
            return Err(ConfigError::Invalid(format!(
                "a language needs size >= 2, 1 <= fanout <= size and order 1 or 2, got size {size}, fanout {fanout}, order {order}"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let n_ctx = size.pow(order as u32);
        let mut lang = Language {
            offset,
            size,
            fanout,
            order,
            succ: vec![0; n_ctx * fanout],
            prob: vec![0.0; n_ctx * fanout],
        };
        for ctx in 0..n_ctx {
            lang.draw_context(ctx, &mut rng);
        }
        Ok(lang)
    }

    fn draw_context(&mut self, ctx: usize, rng: &mut StdRng) {
        let f = self.fanout;
        let picks = rand::seq::index::sample(rng, self.size, f);
        let weights: Vec<f64> = (0..f)
            .map(|_| rng.random_range(-1.5f64..1.5).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        for (j, (tok, w)) in picks.iter().zip(weights).enumerate() {
            self.succ[ctx * f + j] = tok as u32;
            self.prob[ctx * f + j] = w / total;
        }
    }

    /// The weak shift: a copy whose successors are re-drawn for `round(share · contexts)` contexts
    /// chosen by `seed` (the rest unchanged).
    pub fn redraw(&self, share: f64, seed: u64) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&share) {
            return Err(ConfigError::Invalid(format!(
                "weak-shift redraw share {share} is outside [0, 1]"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let n_ctx = self.n_contexts();
        let k = (share * n_ctx as f64).round() as usize;
        let mut out = self.clone();
        for ctx in rand::seq::index::sample(&mut rng, n_ctx, k) {
            out.draw_context(ctx, &mut rng);
        }
        Ok(out)
    }

    /// Number of contexts, `size^order`.
    pub fn n_contexts(&self) -> usize {
        self.size.pow(self.order as u32)
    }

    fn context(&self, a: usize, b: usize) -> usize {
        if self.order == 1 {
            b
        } else {
            a * self.size + b
        }
    }

    /// First token id of the range.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of tokens in the range.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Draws the successor of context `ctx` (local id) with one uniform from `rng`.
    fn draw_next(&self, ctx: usize, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        let row = ctx * self.fanout..(ctx + 1) * self.fanout;
        let mut acc = 0.0;
        for (&tok, &p) in self.succ[row.clone()].iter().zip(&self.prob[row.clone()]) {
            acc += p;
            if u < acc {
                return tok as usize;
            }
        }
        // Rounding left the cumulative sum just below u: the last successor.
        self.succ[row.end - 1] as usize
    }

    /// One sequence of `len ≥ 2` global token ids: `order` uniform tokens, then the chain.
    pub fn sample(&self, len: usize, rng: &mut StdRng) -> Vec<i32> {
        let mut local: Vec<usize> = vec![rng.random_range(0..self.size)];
        if self.order == 2 {
            local.push(rng.random_range(0..self.size));
        }
        while local.len() < len.max(2) {
            let b = local[local.len() - 1];
            let a = if local.len() >= 2 {
                local[local.len() - 2]
            } else {
                0
            };
            local.push(self.draw_next(self.context(a, b), rng));
        }
        local.truncate(len);
        local
            .into_iter()
            .map(|t| (t + self.offset) as i32)
            .collect()
    }

    /// `−ln P(seq[i] | seq[..i])` under this chain for `i ≥ 1`: for order 2, `ln size` at
    /// `i = 1` (the second token is uniform), the transition probability everywhere else.
    /// Infinite for a token the chain cannot emit.
    pub fn token_nll(&self, seq: &[i32]) -> Vec<f64> {
        let local = |t: i32| (t as i64 - self.offset as i64) as usize;
        let mut out = Vec::with_capacity(seq.len().saturating_sub(1));
        for i in 1..seq.len() {
            if i == 1 && self.order == 2 {
                out.push((self.size as f64).ln());
                continue;
            }
            let a = if i >= 2 { local(seq[i - 2]) } else { 0 };
            let ctx = self.context(a, local(seq[i - 1]));
            let t = local(seq[i]) as u32;
            let p = (0..self.fanout)
                .find(|&j| self.succ[ctx * self.fanout + j] == t)
                .map_or(0.0, |j| self.prob[ctx * self.fanout + j]);
            out.push(-p.ln());
        }
        out
    }
}

/// A finite dataset: `n` sequences of `len` tokens, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    tokens: Vec<i32>,
    len: usize,
    /// Mean `−ln P` of every target token under the generating chain(s): the loss a perfect
    /// model would reach on this corpus (its entropy floor), in nats.
    pub floor: f64,
}

impl Corpus {
    /// `n` sequences of `len` tokens from `lang`, seeded. With a `marker`, every sequence
    /// starts with that token and continues with `len − 1` tokens of the chain: the source's
    /// signature that real documents carry (a model can tell the datasets apart from context,
    /// as a language model can tell SlimPajama from the Pile).
    pub fn generate(lang: &Language, n: usize, len: usize, seed: u64, marker: Option<i32>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tokens = Vec::with_capacity(n * len);
        let (mut nll, mut count) = (0.0, 0usize);
        for _ in 0..n {
            let (seq, first) = match marker {
                Some(m) => {
                    let chain = lang.sample(len - 1, &mut rng);
                    // The chain's first token is uniform given the marker.
                    let mut seq = vec![m];
                    seq.extend(chain);
                    (seq, Some((lang.size() as f64).ln()))
                }
                None => (lang.sample(len, &mut rng), None),
            };
            let chain = if marker.is_some() {
                &seq[1..]
            } else {
                &seq[..]
            };
            for x in first.into_iter().chain(lang.token_nll(chain)) {
                nll += x;
                count += 1;
            }
            tokens.extend(seq);
        }
        Corpus {
            tokens,
            len,
            floor: if count == 0 {
                f64::NAN
            } else {
                nll / count as f64
            },
        }
    }

    /// Number of sequences.
    pub fn n(&self) -> usize {
        self.tokens.len().checked_div(self.len).unwrap_or(0)
    }

    /// Tokens per sequence.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the corpus holds no sequence.
    pub fn is_empty(&self) -> bool {
        self.n() == 0
    }

    /// Sequence `i`.
    pub fn seq(&self, i: usize) -> &[i32] {
        &self.tokens[i * self.len..(i + 1) * self.len]
    }

    /// All sequences, row-major (`n · len` ids).
    pub fn tokens(&self) -> &[i32] {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_seeded_and_normalised() {
        let a = Language::new(0, 8, 3, 2, 1).unwrap();
        assert_eq!(a, Language::new(0, 8, 3, 2, 1).unwrap());
        assert_ne!(a, Language::new(0, 8, 3, 2, 2).unwrap());
        for ctx in 0..64 {
            let s: f64 = a.prob[ctx * 3..ctx * 3 + 3].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn redraw_changes_the_stated_share_of_contexts() {
        let a = Language::new(0, 16, 3, 2, 1).unwrap();
        let b = a.redraw(0.3, 9).unwrap();
        let changed = (0..256)
            .filter(|&c| {
                a.succ[c * 3..c * 3 + 3] != b.succ[c * 3..c * 3 + 3]
                    || a.prob[c * 3..c * 3 + 3] != b.prob[c * 3..c * 3 + 3]
            })
            .count();
        // 77 contexts re-drawn; a re-draw can (rarely) repeat the old successors exactly.
        assert!((70..=77).contains(&changed), "{changed}");
        assert_eq!(a.redraw(0.0, 9).unwrap(), a);
        assert!(a.redraw(1.5, 9).is_err());
    }

    #[test]
    fn samples_stay_in_range_and_the_floor_is_their_mean_nll() {
        let lang = Language::new(16, 16, 2, 2, 3).unwrap();
        let c = Corpus::generate(&lang, 50, 12, 4, None);
        assert_eq!((c.n(), c.len()), (50, 12));
        assert!(c.tokens().iter().all(|&t| (16..32).contains(&t)));
        // Every sampled transition has positive probability.
        let nll: Vec<f64> = (0..50).flat_map(|i| lang.token_nll(c.seq(i))).collect();
        assert!(nll.iter().all(|x| x.is_finite()));
        let mean = nll.iter().sum::<f64>() / nll.len() as f64;
        assert!((mean - c.floor).abs() < 1e-12);
        // Below ln 16 (the chain is sparse), above 0.
        assert!(c.floor > 0.0 && c.floor < (16f64).ln());
        assert!(Language::new(0, 1, 1, 1, 0).is_err());
        assert!(Language::new(0, 4, 2, 3, 0).is_err());
        // Order 1: every target is a transition.
        let bigram = Language::new(0, 16, 2, 1, 3).unwrap();
        let c1 = Corpus::generate(&bigram, 50, 12, 4, None);
        assert!(c1.floor > 0.0 && c1.floor < (2f64).ln() + 1e-12);
        // A marker leads every sequence; the token after it is uniform over the language.
        let m = Corpus::generate(&bigram, 50, 12, 4, Some(99));
        assert!((0..50).all(|i| m.seq(i)[0] == 99 && m.seq(i)[1..].iter().all(|&t| t < 16)));
        assert!(m.floor > c1.floor);
        assert!(Language::new(0, 4, 5, 1, 0).is_err());
        assert!(Corpus::generate(&lang, 0, 12, 4, None).is_empty());
    }
}

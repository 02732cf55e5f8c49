//! The synthetic multi-domain data: `D` sparse order-2 Markov chains over one shared vocabulary,
//! the toy stand-in for the paper's topics (Sec. 5: ArXiv, biology, philosophy, … share one
//! tokenizer). No token marks the domain; a model has to infer it from the context.
//!
//! Domain `δ` has, for every context `(a, b)` of two tokens, `s` distinct successors drawn
//! uniformly from the `V` tokens with weights from a flat Dirichlet (normalised `Exp(1)` draws).
//! A sequence of domain `δ` starts with two uniform tokens and continues by the chain. With
//! `D·V²` contexts of `s` successors each, the table exceeds what the toy FFNs can store:
//! the models are capacity-limited, the regime in which more (sparse) parameters should help.
//!
//! Everything is drawn from seeded host streams ([`stream`]), so a seed's data are the same on
//! every run and backend.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::DataConfig;

/// A seeded random stream: `seed` mixed with the stream's `tag` (stream tags are listed in
/// [`crate::experiments`]).
pub fn stream(seed: u64, tag: u64) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One domain's order-2 chain: for context `(a, b)` (index `a·V + b`) the successors and their
/// probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    vocab: usize,
    /// `[V², s]` successor ids.
    next: Vec<u32>,
    /// `[V², s]` successor probabilities (each row sums to 1).
    prob: Vec<f64>,
    successors: usize,
}

impl Chain {
    /// A random chain (see the [module docs](self)).
    pub fn random(vocab: usize, successors: usize, rng: &mut StdRng) -> Self {
        let mut next = Vec::with_capacity(vocab * vocab * successors);
        let mut prob = Vec::with_capacity(vocab * vocab * successors);
        let mut pool: Vec<u32> = (0..vocab as u32).collect();
        for _ in 0..vocab * vocab {
            // Partial Fisher–Yates: the first `s` entries become a uniform draw without
            // replacement.
            for i in 0..successors {
                let j = rng.random_range(i..vocab);
                pool.swap(i, j);
            }
            next.extend_from_slice(&pool[..successors]);
            let w: Vec<f64> = (0..successors)
                .map(|_| -(1.0 - rng.random::<f64>()).ln())
                .collect();
            let total: f64 = w.iter().sum();
            prob.extend(w.iter().map(|x| x / total));
        }
        Chain {
            vocab,
            next,
            prob,
            successors,
        }
    }

    /// `P(c | a, b)` under this chain.
    pub fn p(&self, a: u32, b: u32, c: u32) -> f64 {
        let row = (a as usize * self.vocab + b as usize) * self.successors;
        (0..self.successors)
            .find(|&j| self.next[row + j] == c)
            .map_or(0.0, |j| self.prob[row + j])
    }

    fn sample(&self, a: u32, b: u32, rng: &mut StdRng) -> u32 {
        let row = (a as usize * self.vocab + b as usize) * self.successors;
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for j in 0..self.successors {
            acc += self.prob[row + j];
            if u < acc {
                return self.next[row + j];
            }
        }
        self.next[row + self.successors - 1]
    }
}

/// The domains of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Domains {
    /// One chain per domain.
    pub chains: Vec<Chain>,
    vocab: usize,
    seq_len: usize,
}

/// A batch of sequences: `tokens [n, T + 1]` row-major and the domain of each row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `[n · (T + 1)]` token ids.
    pub tokens: Vec<u32>,
    /// `[n]` domain of each sequence.
    pub domain: Vec<usize>,
    /// `T + 1`.
    pub len: usize,
}

impl Batch {
    /// Number of sequences.
    pub fn rows(&self) -> usize {
        self.domain.len()
    }
}

impl Domains {
    /// The `D` chains of `cfg`, drawn from `rng`.
    pub fn new(cfg: &DataConfig, rng: &mut StdRng) -> Self {
        Domains {
            chains: (0..cfg.domains)
                .map(|_| Chain::random(cfg.vocab, cfg.successors, rng))
                .collect(),
            vocab: cfg.vocab,
            seq_len: cfg.seq_len,
        }
    }

    /// One sequence of `T + 1` tokens of domain `domain`.
    fn sequence(&self, domain: usize, rng: &mut StdRng, out: &mut Vec<u32>) {
        let v = self.vocab as u32;
        let (mut a, mut b) = (rng.random_range(0..v), rng.random_range(0..v));
        out.push(a);
        out.push(b);
        for _ in 2..=self.seq_len {
            let c = self.chains[domain].sample(a, b, rng);
            out.push(c);
            (a, b) = (b, c);
        }
    }

    /// `n` sequences, each of a domain drawn uniformly (the training mixture).
    pub fn mixed_batch(&self, n: usize, rng: &mut StdRng) -> Batch {
        let mut tokens = Vec::with_capacity(n * (self.seq_len + 1));
        let mut domain = Vec::with_capacity(n);
        for _ in 0..n {
            let d = rng.random_range(0..self.chains.len());
            self.sequence(d, rng, &mut tokens);
            domain.push(d);
        }
        Batch {
            tokens,
            domain,
            len: self.seq_len + 1,
        }
    }

    /// `n` sequences of every domain, domain-major (the validation set).
    pub fn per_domain_batch(&self, n: usize, rng: &mut StdRng) -> Batch {
        let mut tokens = Vec::new();
        let mut domain = Vec::new();
        for d in 0..self.chains.len() {
            for _ in 0..n {
                self.sequence(d, rng, &mut tokens);
                domain.push(d);
            }
        }
        Batch {
            tokens,
            domain,
            len: self.seq_len + 1,
        }
    }

    /// The oracle's mean next-token loss (nats) on `batch`: `−log P(x_i | x_{i−2}, x_{i−1}, δ)`
    /// with the true chain and domain for `i ≥ 2`, `log V` for the uniform second token. A
    /// floor no model reaches (the model must infer `δ`).
    pub fn oracle_loss(&self, batch: &Batch) -> f64 {
        let (mut sum, mut count) = (0.0, 0usize);
        for (r, &dom) in batch.domain.iter().enumerate() {
            let s = &batch.tokens[r * batch.len..(r + 1) * batch.len];
            sum += (self.vocab as f64).ln();
            count += 1;
            for i in 2..batch.len {
                sum -= self.chains[dom].p(s[i - 2], s[i - 1], s[i]).ln();
                count += 1;
            }
        }
        sum / count as f64
    }
}

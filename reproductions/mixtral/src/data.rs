//! The multi-domain text: the corpus layer's domains (`claimbench-corpus`: English and German
//! fortunes, French and English manual pages, Rust's standard library at the presets), one shared
//! byte-level BPE, no domain tag. A model has to infer the domain from the context, as Mixtral's
//! router sees ArXiv, biology, philosophy, … through one tokenizer (Sec. 5).
//!
//! Training batches mix the domains uniformly: each row draws a domain, then a window of `T + 1`
//! tokens at a uniform offset of that domain's training split. The validation set holds
//! `val_seqs_per_domain` windows per domain, evenly spaced over its validation split (the same
//! for every seed), domain-major. Everything random is drawn from seeded host streams
//! ([`stream`]), so a seed's batches are the same on every run and backend.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use claimbench_corpus::{Corpus, Split};

use crate::config::DataConfig;
use crate::error::Error;

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

/// The training streams of a run's domains, in the settings' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Domains {
    /// Per domain, its training split's tokens.
    pub train: Vec<Vec<u32>>,
    /// Per domain, its validation split's tokens.
    pub validation: Vec<Vec<u32>>,
    seq_len: usize,
}

impl Domains {
    /// The domains of `cfg` from a loaded corpus. Errors name a domain missing from the corpus or
    /// a split shorter than one window of `T + 1` tokens.
    pub fn from_corpus(cfg: &DataConfig, corpus: &Corpus) -> Result<Self, Error> {
        let len = cfg.seq_len + 1;
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for id in &cfg.corpus.domains {
            let d = corpus
                .domain(id)
                .ok_or_else(|| Error::Data(format!("domain {id} is not in the loaded corpus")))?;
            let tr = d.tokens(Split::Train);
            let va = d.tokens(Split::Validation);
            if tr.len() < len {
                return Err(Error::Data(format!(
                    "{id}: the training split has {} tokens, fewer than one window of {len}",
                    tr.len()
                )));
            }
            if va.len() < len {
                return Err(Error::Data(format!(
                    "{id}: the validation split has {} tokens, fewer than one window of {len}",
                    va.len()
                )));
            }
            train.push(tr.to_vec());
            validation.push(va.to_vec());
        }
        Ok(Domains {
            train,
            validation,
            seq_len: cfg.seq_len,
        })
    }

    /// Number of domains `D`.
    pub fn len(&self) -> usize {
        self.train.len()
    }

    /// Whether there are no domains.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty()
    }

    /// `n` windows, each of a domain drawn uniformly and at a uniform offset of its training
    /// split (the training mixture).
    pub fn mixed_batch(&self, n: usize, rng: &mut StdRng) -> Batch {
        let len = self.seq_len + 1;
        let mut tokens = Vec::with_capacity(n * len);
        let mut domain = Vec::with_capacity(n);
        for _ in 0..n {
            let d = rng.random_range(0..self.train.len());
            let s = &self.train[d];
            let at = rng.random_range(0..=s.len() - len);
            tokens.extend_from_slice(&s[at..at + len]);
            domain.push(d);
        }
        Batch {
            tokens,
            domain,
            len,
        }
    }

    /// `n` windows of every domain, evenly spaced over its validation split (window `i` starts
    /// at `i · ⌊(N − T − 1)/(n − 1)⌋`; they overlap when the split holds fewer than `n` windows,
    /// as the small test fixture's do), domain-major: the validation set, the same for every
    /// seed.
    pub fn validation_batch(&self, n: usize) -> Batch {
        let len = self.seq_len + 1;
        let mut tokens = Vec::with_capacity(self.len() * n * len);
        let mut domain = Vec::with_capacity(self.len() * n);
        for (d, s) in self.validation.iter().enumerate() {
            let span = s.len() - len;
            let step = if n > 1 { span / (n - 1) } else { 0 };
            for i in 0..n {
                let at = i * step;
                tokens.extend_from_slice(&s[at..at + len]);
                domain.push(d);
            }
        }
        Batch {
            tokens,
            domain,
            len,
        }
    }

    /// A context-free reference: the mean cross-entropy (nats) on `batch`'s predicted tokens
    /// (positions `1..=T`) of the unigram distribution of all domains' training tokens, add-one
    /// smoothed over a vocabulary of `vocab`. A model that learned nothing from the context sits
    /// here; every arm should end far below it.
    pub fn unigram_loss(&self, batch: &Batch, vocab: usize) -> f64 {
        let mut counts = vec![1.0f64; vocab.max(1)];
        for s in &self.train {
            for &t in s {
                if let Some(c) = counts.get_mut(t as usize) {
                    *c += 1.0;
                }
            }
        }
        let total: f64 = counts.iter().sum();
        let (mut sum, mut n) = (0.0, 0usize);
        for row in batch.tokens.chunks_exact(batch.len) {
            for &t in &row[1..] {
                let c = counts.get(t as usize).copied().unwrap_or(1.0);
                sum -= (c / total).ln();
                n += 1;
            }
        }
        sum / n.max(1) as f64
    }
}

//! The finite datasets the experiment trains and evaluates on: windows of real text's tokens
//! ([`Corpus`]).
//!
//! The paper continues pre-training from the Pile (D0) to SlimPajama (a *weak* shift: more
//! English web text) or to German Common Crawl (a *strong* shift: a new language). Ours come
//! from Debian's text packages through `claimbench_corpus` (see `ExperimentConfig`): D0 English
//! fortunes, the weak shift English manual pages, the strong shift German fortunes, one
//! byte-level BPE for all three. A dataset is `n` windows of `len` tokens cut from a domain's
//! token stream: training windows at seeded offsets (a finite corpus, sampled with replacement
//! by the replay mixer), held-out windows evenly spaced over the validation split.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A finite dataset: `n` sequences of `len` tokens, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    tokens: Vec<i32>,
    len: usize,
}

/// Why windows cannot be cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stream of {stream} tokens is shorter than one window of {len}")]
pub struct TooShort {
    /// Tokens in the stream.
    pub stream: usize,
    /// Tokens per window.
    pub len: usize,
}

impl Corpus {
    /// `n` windows of `len` tokens of `stream` at offsets drawn uniformly from `seed`.
    pub fn sample_windows(
        stream: &[u32],
        n: usize,
        len: usize,
        seed: u64,
    ) -> Result<Self, TooShort> {
        if stream.len() < len || len == 0 {
            return Err(TooShort {
                stream: stream.len(),
                len,
            });
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let last = stream.len() - len;
        let mut tokens = Vec::with_capacity(n * len);
        for _ in 0..n {
            let at = rng.random_range(0..=last);
            tokens.extend(stream[at..at + len].iter().map(|&t| t as i32));
        }
        Ok(Corpus { tokens, len })
    }

    /// `n` windows of `len` tokens evenly spaced over `stream` (the first at 0, the last
    /// ending at its end; overlapping only when the stream holds fewer than `n · len` tokens).
    pub fn spaced_windows(stream: &[u32], n: usize, len: usize) -> Result<Self, TooShort> {
        if stream.len() < len || len == 0 {
            return Err(TooShort {
                stream: stream.len(),
                len,
            });
        }
        let last = stream.len() - len;
        let mut tokens = Vec::with_capacity(n * len);
        for i in 0..n {
            let at = match n {
                1 => 0,
                _ => i * last / (n - 1),
            };
            tokens.extend(stream[at..at + len].iter().map(|&t| t as i32));
        }
        Ok(Corpus { tokens, len })
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
    fn windows_are_seeded_in_range_and_spaced_windows_cover_the_stream() {
        let stream: Vec<u32> = (0..100).collect();
        let a = Corpus::sample_windows(&stream, 20, 8, 1).unwrap();
        assert_eq!(a, Corpus::sample_windows(&stream, 20, 8, 1).unwrap());
        assert_ne!(a, Corpus::sample_windows(&stream, 20, 8, 2).unwrap());
        assert_eq!((a.n(), a.len()), (20, 8));
        // Each window is a contiguous run of the stream.
        assert!((0..20).all(|i| a.seq(i).windows(2).all(|w| w[1] == w[0] + 1)));
        let s = Corpus::spaced_windows(&stream, 3, 10).unwrap();
        assert_eq!(s.seq(0)[0], 0);
        assert_eq!(s.seq(1)[0], 45);
        assert_eq!(*s.seq(2).last().unwrap(), 99);
        assert_eq!(Corpus::spaced_windows(&stream, 1, 10).unwrap().seq(0)[0], 0);
        assert!(Corpus::sample_windows(&stream[..5], 2, 8, 0).is_err());
        assert!(Corpus::spaced_windows(&stream, 2, 0).is_err());
        assert!(Corpus::sample_windows(&stream, 0, 8, 0).unwrap().is_empty());
    }
}

//! Deterministic replay: a share `x` of every batch comes from the old data.
//!
//! The paper replays `x`% of each batch from the previous dataset at equal compute (0.5% to 50%).
//! With small shares and small batches `x · B` is not an integer (0.5% of 16 is 0.08), so
//! rounding per batch would give either 0 or 1 old example every batch. [`ReplayMixer`] instead
//! carries the fractional remainder across batches: after `N` examples in total it has handed
//! out exactly
//!
//! `O(N) = ⌊x · N + ε⌋` old examples (`ε = 1e-9` absorbs binary rounding of `x`),
//!
//! so a batch of size `b` after `N` examples gets `O(N + b) − O(N)` old ones and the total never
//! drifts: `|O(N) − x · N| < 1` at every batch, whatever the batch sizes. At `x = 0.005`,
//! `B = 16` that is one old example every 12.5 batches on average.
//!
//! The seed decides only *where* in a batch the old examples go ([`ReplayMixer::positions`]) and
//! which examples are drawn ([`ReplayMixer::draw_indices`]); the counts do not depend on it. The
//! same seed and the same calls give the same batches.

use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{ConfigError, check_share};

/// Slack added before the floor in `O(N) = ⌊x · N + ε⌋`, so that a share such as `0.005`
/// (stored slightly below 0.005) still yields `O(200) = 1`.
const EPS: f64 = 1e-9;

/// Which of the two datasets an example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// The data of earlier stages (replayed).
    Old,
    /// The current stage's data.
    New,
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dataset::Old => "old",
            Dataset::New => "new",
        })
    }
}

/// One example of a batch: its dataset and its 0-based index in that dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Example `i` of the old (replayed) dataset.
    Old(usize),
    /// Example `i` of the new dataset.
    New(usize),
}

impl Source {
    /// The dataset this example comes from.
    pub fn dataset(&self) -> Dataset {
        match self {
            Source::Old(_) => Dataset::Old,
            Source::New(_) => Dataset::New,
        }
    }

    /// The example's 0-based index within its dataset.
    pub fn index(&self) -> usize {
        match *self {
            Source::Old(i) | Source::New(i) => i,
        }
    }
}

/// Splits a stream of batches between old and new data with an exact long-run share `x`.
///
/// State: `N` (examples handed out so far), `O` (old ones among them) and a seeded RNG
/// ([`StdRng`], ChaCha12 in rand 0.9). See the [module docs](self) for the carry rule.
#[derive(Debug, Clone)]
pub struct ReplayMixer {
    share: f64,
    seed: u64,
    rng: StdRng,
    examples: u64,
    old: u64,
}

impl ReplayMixer {
    /// A mixer replaying a share `x = share` of examples, with `seed` for positions and draws.
    /// `share` must be finite and in `[0, 1]` (`replay share 1.5 is outside [0, 1]`).
    pub fn new(share: f64, seed: u64) -> Result<Self, ConfigError> {
        check_share(share)?;
        Ok(Self {
            share,
            seed,
            rng: StdRng::seed_from_u64(seed),
            examples: 0,
            old: 0,
        })
    }

    /// The replay share `x`.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// The seed the mixer was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `N`: examples handed out so far (old and new).
    pub fn examples_seen(&self) -> u64 {
        self.examples
    }

    /// `O(N)`: old examples handed out so far.
    pub fn old_seen(&self) -> u64 {
        self.old
    }

    /// `O(N + b) − O(N)` for the next batch of size `b`, without advancing.
    fn peek(&self, batch_size: usize) -> usize {
        let total = self.examples.saturating_add(batch_size as u64);
        // `x ≤ 1`, so the target never exceeds `total`; the cast saturates on overflow.
        let target = (self.share * total as f64 + EPS).floor() as u64;
        let n = target.saturating_sub(self.old).min(batch_size as u64);
        n as usize
    }

    /// How many of the next `batch_size` examples come from the old dataset:
    /// `O(N + b) − O(N)` with `O(N) = ⌊x · N + ε⌋`. Advances `N` by `b` and `O` by the result.
    /// Does not use the RNG.
    pub fn batch(&mut self, batch_size: usize) -> usize {
        let n = self.peek(batch_size);
        self.examples = self.examples.saturating_add(batch_size as u64);
        self.old = self.old.saturating_add(n as u64);
        n
    }

    /// A mask for the next batch: `mask[i]` is `true` when position `i` holds an old example.
    /// Exactly [`ReplayMixer::batch`]`(batch_size)` entries are `true` (it advances the mixer
    /// the same way), at positions drawn uniformly without replacement by the seeded RNG.
    pub fn positions(&mut self, batch_size: usize) -> Vec<bool> {
        let n_old = self.batch(batch_size);
        let mut mask = vec![n_old == batch_size; batch_size];
        if n_old > 0 && n_old < batch_size {
            for i in rand::seq::index::sample(&mut self.rng, batch_size, n_old) {
                mask[i] = true;
            }
        }
        mask
    }

    /// The next batch as example indices: the old/new layout of
    /// [`ReplayMixer::positions`], each old position an index drawn uniformly from
    /// `0..n_old_available`, each new one from `0..n_new_available` (with replacement, by the
    /// seeded RNG).
    ///
    /// Fails without advancing the mixer when the batch needs examples from a dataset with
    /// none available ([`ConfigError::EmptyDataset`], naming `old` or `new`). A side that the
    /// batch does not need may be empty (e.g. `n_old_available = 0` at share 0).
    pub fn draw_indices(
        &mut self,
        n_old_available: usize,
        n_new_available: usize,
        batch_size: usize,
    ) -> Result<Vec<Source>, ConfigError> {
        let need_old = self.peek(batch_size);
        let need_new = batch_size - need_old;
        if need_old > 0 && n_old_available == 0 {
            return Err(ConfigError::EmptyDataset {
                which: Dataset::Old,
                needed: need_old,
            });
        }
        if need_new > 0 && n_new_available == 0 {
            return Err(ConfigError::EmptyDataset {
                which: Dataset::New,
                needed: need_new,
            });
        }
        let mask = self.positions(batch_size);
        Ok(mask
            .into_iter()
            .map(|is_old| {
                if is_old {
                    Source::Old(self.rng.random_range(0..n_old_available))
                } else {
                    Source::New(self.rng.random_range(0..n_new_available))
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARES: [f64; 7] = [0.0, 0.005, 0.01, 0.05, 0.25, 0.5, 1.0];
    const BATCHES: [usize; 4] = [1, 7, 16, 64];

    #[test]
    fn rejects_bad_share() {
        for (share, text) in [
            (1.5, "1.5"),
            (-0.01, "-0.01"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ] {
            let msg = ReplayMixer::new(share, 0).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("replay share {text} is outside [0, 1]")),
                "{msg}"
            );
        }
        ReplayMixer::new(0.0, 0).unwrap();
        ReplayMixer::new(1.0, 0).unwrap();
    }

    /// After k batches of size B the old total is ⌊x·B·k⌋ or ⌈x·B·k⌉ and within 1 of x·B·k.
    #[test]
    fn carry_never_drifts() {
        for share in SHARES {
            for b in BATCHES {
                let mut m = ReplayMixer::new(share, 7).unwrap();
                let mut total = 0usize;
                for k in 1..=10_000usize {
                    let n = m.batch(b);
                    assert!(n <= b);
                    total += n;
                    let exact = share * (b * k) as f64;
                    assert!(
                        (total as f64 - exact).abs() < 1.0,
                        "share {share}, B {b}, k {k}: {total} vs {exact}"
                    );
                    assert!(
                        total == exact.floor() as usize || total == exact.ceil() as usize,
                        "share {share}, B {b}, k {k}: {total} vs {exact}"
                    );
                }
                assert_eq!(m.old_seen(), total as u64);
                assert_eq!(m.examples_seen(), (b * 10_000) as u64);
            }
        }
    }

    #[test]
    fn half_percent_at_sixteen_is_one_per_twelve_and_a_half_batches() {
        let mut m = ReplayMixer::new(0.005, 1).unwrap();
        let counts: Vec<usize> = (0..10_000).map(|_| m.batch(16)).collect();
        assert!(counts.iter().all(|&n| n <= 1));
        assert_eq!(counts.iter().sum::<usize>(), 800);
        // Old examples land in batches 12, 24 (every 12 or 13 batches), 1-based 13 and 25.
        let hits: Vec<usize> = counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n == 1)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(&hits[..4], &[12, 24, 37, 49]);
        for gap in hits.windows(2).map(|w| w[1] - w[0]) {
            assert!(gap == 12 || gap == 13, "gap {gap}");
        }
    }

    #[test]
    fn extremes_are_all_or_nothing() {
        let mut none = ReplayMixer::new(0.0, 3).unwrap();
        let mut all = ReplayMixer::new(1.0, 3).unwrap();
        for b in BATCHES {
            assert_eq!(none.batch(b), 0);
            assert_eq!(all.batch(b), b);
            assert!(none.positions(b).iter().all(|&o| !o));
            assert!(all.positions(b).iter().all(|&o| o));
        }
    }

    #[test]
    fn varying_batch_sizes_do_not_drift() {
        let mut m = ReplayMixer::new(0.05, 11).unwrap();
        let mut n_total = 0usize;
        let mut old_total = 0usize;
        for k in 0..10_000usize {
            let b = 1 + (k * 37) % 50;
            old_total += m.batch(b);
            n_total += b;
            assert!((old_total as f64 - 0.05 * n_total as f64).abs() < 1.0);
        }
    }

    #[test]
    fn masks_hold_exactly_the_batch_count() {
        for share in SHARES {
            for b in BATCHES {
                let mut counter = ReplayMixer::new(share, 5).unwrap();
                let mut masker = ReplayMixer::new(share, 5).unwrap();
                for _ in 0..500 {
                    let mask = masker.positions(b);
                    assert_eq!(mask.len(), b);
                    assert_eq!(mask.iter().filter(|&&o| o).count(), counter.batch(b));
                }
            }
        }
    }

    #[test]
    fn masks_spread_over_positions() {
        // With 1 old example per batch of 16, every position should be picked sometimes.
        let mut m = ReplayMixer::new(1.0 / 16.0, 9).unwrap();
        let mut hits = [0usize; 16];
        for _ in 0..1600 {
            for (i, &o) in m.positions(16).iter().enumerate() {
                hits[i] += o as usize;
            }
        }
        assert_eq!(hits.iter().sum::<usize>(), 1600);
        assert!(hits.iter().all(|&h| h > 50), "{hits:?}");
    }

    fn masks(seed: u64) -> Vec<Vec<bool>> {
        let mut m = ReplayMixer::new(0.25, seed).unwrap();
        (0..200).map(|_| m.positions(16)).collect()
    }

    #[test]
    fn same_seed_same_masks_different_seed_different_masks() {
        assert_eq!(masks(42), masks(42));
        assert_ne!(masks(42), masks(43));
        // The seed changes positions, never counts.
        let count = |ms: &Vec<Vec<bool>>| -> Vec<usize> {
            ms.iter()
                .map(|m| m.iter().filter(|&&o| o).count())
                .collect()
        };
        assert_eq!(count(&masks(42)), count(&masks(43)));
    }

    #[test]
    fn draw_indices_layout_and_ranges() {
        let mut m = ReplayMixer::new(0.25, 1).unwrap();
        let mut layout = ReplayMixer::new(0.25, 1).unwrap();
        for _ in 0..100 {
            let batch = m.draw_indices(10, 1000, 16).unwrap();
            assert_eq!(batch.len(), 16);
            let expected = layout.positions(16);
            for (src, &is_old) in batch.iter().zip(&expected) {
                assert_eq!(src.dataset() == Dataset::Old, is_old);
                match *src {
                    Source::Old(i) => assert!(i < 10),
                    Source::New(i) => assert!(i < 1000),
                }
            }
            // Keep `layout`'s RNG in step: it drew no indices, so re-sync by cloning.
            layout = m.clone();
        }
        assert_eq!(m.old_seen(), 400);
    }

    #[test]
    fn draw_indices_is_deterministic_and_covers_the_data() {
        let draw = |seed| {
            let mut m = ReplayMixer::new(0.5, seed).unwrap();
            (0..100)
                .map(|_| m.draw_indices(4, 4, 8).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let all: Vec<Source> = draw(3).into_iter().flatten().collect();
        for i in 0..4 {
            assert!(all.contains(&Source::Old(i)));
            assert!(all.contains(&Source::New(i)));
        }
    }

    #[test]
    fn draw_indices_empty_dataset_errors() {
        let mut m = ReplayMixer::new(0.5, 0).unwrap();
        let err = m.draw_indices(0, 100, 16).unwrap_err();
        assert_eq!(
            err,
            ConfigError::EmptyDataset {
                which: Dataset::Old,
                needed: 8
            }
        );
        assert!(
            err.to_string().contains("the old dataset is empty"),
            "{err}"
        );
        // The failed call did not advance the mixer.
        assert_eq!(m.examples_seen(), 0);
        let err = m.draw_indices(100, 0, 16).unwrap_err().to_string();
        assert!(err.contains("the new dataset is empty"), "{err}");
        assert!(err.contains("needs 8 new"), "{err}");
    }

    #[test]
    fn draw_indices_allows_an_unneeded_empty_side() {
        let mut none = ReplayMixer::new(0.0, 0).unwrap();
        let batch = none.draw_indices(0, 5, 8).unwrap();
        assert!(batch.iter().all(|s| matches!(s, Source::New(_))));
        let mut all = ReplayMixer::new(1.0, 0).unwrap();
        let batch = all.draw_indices(5, 0, 8).unwrap();
        assert!(batch.iter().all(|s| matches!(s, Source::Old(_))));
        // At 0.5% the first batches need no old data, so an empty old set is fine until then.
        let mut rare = ReplayMixer::new(0.005, 0).unwrap();
        for _ in 0..12 {
            rare.draw_indices(0, 5, 16).unwrap();
        }
        assert!(rare.draw_indices(0, 5, 16).is_err());
    }

    #[test]
    fn source_accessors() {
        assert_eq!(Source::Old(3).dataset(), Dataset::Old);
        assert_eq!(Source::New(4).dataset(), Dataset::New);
        assert_eq!(Source::Old(3).index(), 3);
        assert_eq!(Source::New(4).index(), 4);
        assert_eq!(Dataset::Old.to_string(), "old");
    }
}

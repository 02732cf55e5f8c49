//! The seeded datasets of one seed ([`Datasets`]).

use super::*;

/// The seeded datasets of one seed: D0, both D1s, each with a train and a held-out corpus.
#[derive(Debug, Clone)]
pub struct Datasets {
    /// D0 train / eval.
    pub d0: (Corpus, Corpus),
    /// Weak-shift D1 train / eval.
    pub weak: (Corpus, Corpus),
    /// Strong-shift D1 train / eval.
    pub strong: (Corpus, Corpus),
}

impl Datasets {
    /// Generates the datasets of `seed` (sequences of `context + 1` tokens).
    pub fn generate(cfg: &ExperimentConfig, seed: u64) -> Result<Self, ConfigError> {
        let n = cfg.language_size;
        let base = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let d0 = Language::new(0, n, cfg.fanout, cfg.order, base ^ 1)?;
        let weak = d0.redraw(cfg.weak_redraw_share, base ^ 2)?;
        let strong = Language::new(n, n, cfg.fanout, cfg.order, base ^ 3)?;
        let len = cfg.model.context + 1;
        let pair = |lang: &Language, k: u64| {
            let marker = cfg.domain_markers.then_some((2 * n) as i32 + k as i32 - 1);
            (
                Corpus::generate(lang, cfg.train_sequences, len, base ^ (k << 8), marker),
                Corpus::generate(
                    lang,
                    cfg.eval_sequences,
                    len,
                    base ^ (k << 8) ^ 0xe7a1,
                    marker,
                ),
            )
        };
        Ok(Datasets {
            d0: pair(&d0, 1),
            weak: pair(&weak, 2),
            strong: pair(&strong, 3),
        })
    }

    /// D1's (train, eval) for `shift`.
    pub fn d1(&self, shift: Shift) -> &(Corpus, Corpus) {
        match shift {
            Shift::Weak => &self.weak,
            Shift::Strong => &self.strong,
        }
    }
}

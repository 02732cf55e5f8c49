//! The datasets of one seed ([`Datasets`]), cut from the corpus's token streams.

use super::*;

/// The datasets of one seed: D0, both D1s, each with a train and a held-out set of windows.
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
    /// The datasets of `seed` (windows of `context + 1` tokens): training windows at offsets
    /// of each domain's training split drawn from `seed`, held-out windows evenly spaced over
    /// its validation split (the same for every seed). The corpus is loaded from `env` once per
    /// process ([`claimbench_corpus::load`]).
    pub fn load(cfg: &ExperimentConfig, seed: u64, env: &DataEnv) -> Result<Self, ConfigError> {
        let corpus = claimbench_corpus::load(&cfg.corpus, env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if corpus.bpe.vocab_size > cfg.model.vocab {
            return Err(ConfigError::Invalid(format!(
                "the tokenizer has {} tokens, more than model vocab {}",
                corpus.bpe.vocab_size, cfg.model.vocab
            )));
        }
        let len = cfg.model.context + 1;
        let base = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let pair = |id: &str, k: u64| -> Result<(Corpus, Corpus), ConfigError> {
            let d = corpus.domain(id).ok_or_else(|| {
                ConfigError::Invalid(format!("domain {id} is not in the loaded corpus"))
            })?;
            let train = d.tokens(claimbench_corpus::Split::Train);
            let eval = d.tokens(claimbench_corpus::Split::Validation);
            Ok((
                Corpus::sample_windows(train, cfg.train_sequences, len, base ^ (k << 8))
                    .map_err(|e| ConfigError::Invalid(format!("{id} train: {e}")))?,
                Corpus::spaced_windows(eval, cfg.eval_sequences, len)
                    .map_err(|e| ConfigError::Invalid(format!("{id} validation: {e}")))?,
            ))
        };
        Ok(Datasets {
            d0: pair(&cfg.d0, 1)?,
            weak: pair(&cfg.weak, 2)?,
            strong: pair(&cfg.strong, 3)?,
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

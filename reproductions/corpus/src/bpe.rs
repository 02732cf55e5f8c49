//! The byte-level BPE every domain of a run shares ([`Bpe`]): trained with the `tokenizers`
//! crate on the training splits, cached on disk by the hash of everything that decides it.
//!
//! Byte-level: every string has an encoding (no unknown token), and `<|doc|>` (id
//! [`Bpe::doc_id`]) separates documents. The cache file is `<cache>/tokenizers/<key>.json`, where
//! `key` is the SHA-256 of the trainer's settings, the crate's version and each training text's
//! SHA-256, so a different text or vocabulary never reuses a stale file; a cache file that does not
//! parse or does not match is retrained and replaced.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use claimbench_paper::files::hex;

use crate::error::CorpusError;

/// The document separator.
pub const DOC: &str = "<|doc|>";

/// Pairs seen fewer times are not merged.
const MIN_FREQUENCY: u64 = 2;

/// Bound on a cached tokenizer file.
const MAX_CACHE_BYTES: u64 = 64 << 20;

/// A trained tokenizer and what identifies it.
pub struct Bpe {
    tokenizer: Tokenizer,
    /// SHA-256 (hex) of its JSON.
    pub sha256: String,
    /// Vocabulary size (the separator and the 256 byte symbols included).
    pub vocab_size: usize,
    /// Id of [`DOC`].
    pub doc_id: u32,
    /// Loaded from the cache (not trained now).
    pub cached: bool,
}

fn tok_err(e: impl std::fmt::Display) -> CorpusError {
    CorpusError::Tokenizer(e.to_string())
}

/// The cache folder: `CLAIMBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/claimbench`, else
/// `$HOME/.cache/claimbench`; `None` when none is set (train every time).
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("CLAIMBENCH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("claimbench")))
        .or_else(|| env("HOME").map(|p| p.join(".cache").join("claimbench")))
}

impl Bpe {
    /// The tokenizer of `vocab_size` (≥ 257 + 1) trained on `texts`, from `cache` when there.
    pub fn train_or_load(
        texts: &[&str],
        vocab_size: usize,
        cache: Option<&Path>,
    ) -> Result<Bpe, CorpusError> {
        let mut key = Sha256::new();
        key.update(format!(
            "claimbench-bpe-v1 tokenizers-0.22 byte-level vocab={vocab_size} min_frequency={MIN_FREQUENCY} texts={}\n",
            texts.len()
        ));
        for t in texts {
            key.update(Sha256::digest(t.as_bytes()));
        }
        let key = hex(&key.finalize());
        let file = cache.map(|c| c.join("tokenizers").join(format!("{key}.json")));
        if let Some(f) = &file
            && let Some(bpe) = Self::load(f, vocab_size)
        {
            return Ok(bpe);
        }
        let json = Self::train(texts, vocab_size)?;
        if let Some(f) = &file {
            // A cache that cannot be written only costs the next run a retrain.
            let _ = claimbench_paper::files::write_atomic(f, json.as_bytes());
        }
        Self::from_json(&json, vocab_size, false)
    }

    fn load(file: &Path, vocab_size: usize) -> Option<Bpe> {
        let meta = std::fs::metadata(file).ok()?;
        if meta.len() > MAX_CACHE_BYTES {
            return None;
        }
        let json = std::fs::read_to_string(file).ok()?;
        Self::from_json(&json, vocab_size, true).ok()
    }

    fn from_json(json: &str, vocab_size: usize, cached: bool) -> Result<Bpe, CorpusError> {
        let tokenizer: Tokenizer = json.parse().map_err(tok_err)?;
        let doc_id = tokenizer
            .token_to_id(DOC)
            .ok_or_else(|| tok_err(format!("no {DOC} token")))?;
        let size = tokenizer.get_vocab_size(true);
        if size > vocab_size {
            return Err(tok_err(format!(
                "{size} tokens, more than the {vocab_size} asked for"
            )));
        }
        Ok(Bpe {
            tokenizer,
            sha256: hex(&Sha256::digest(json.as_bytes())),
            vocab_size: size,
            doc_id,
            cached,
        })
    }

    fn train(texts: &[&str], vocab_size: usize) -> Result<String, CorpusError> {
        let mut trainer = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(MIN_FREQUENCY)
            .special_tokens(vec![AddedToken::from(DOC, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tok =
            TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
                .with_model(BPE::default())
                .with_normalizer(None)
                .with_pre_tokenizer(Some(ByteLevel::default()))
                .with_post_processor(Some(ByteLevel::default()))
                .with_decoder(Some(ByteLevel::default()))
                .build()
                .map_err(tok_err)?;
        tok.train(&mut trainer, texts.iter().copied())
            .map_err(tok_err)?;
        let tok: Tokenizer = tok.into();
        tok.to_string(false).map_err(tok_err)
    }

    /// The ids of each document, in order.
    pub fn encode(&self, docs: &[&str]) -> Result<Vec<Vec<u32>>, CorpusError> {
        let enc = self
            .tokenizer
            .encode_batch(docs.to_vec(), false)
            .map_err(tok_err)?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The text of `ids` (for tests and samples).
    pub fn decode(&self, ids: &[u32]) -> Result<String, CorpusError> {
        self.tokenizer.decode(ids, false).map_err(tok_err)
    }

    /// The text each token of `ids` adds to the decoded text, one string per token, so that
    /// their concatenation is `decode(ids)`. A byte-level token can end inside a multi-byte
    /// character; its piece is then empty and the character shows with the token that completes
    /// it (a trailing incomplete character stays as U+FFFD).
    pub fn pieces(&self, ids: &[u32]) -> Result<Vec<String>, CorpusError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut prev = String::new();
        for i in 0..ids.len() {
            let cur = self.decode(&ids[..=i])?;
            if cur.ends_with('\u{FFFD}') && i + 1 < ids.len() {
                out.push(String::new());
                continue;
            }
            // Decoded prefixes agree up to the last complete character; cut at the common prefix.
            let common = prev
                .char_indices()
                .zip(cur.chars())
                .find(|((_, a), b)| a != b)
                .map_or(prev.len().min(cur.len()), |((i, _), _)| i);
            let common = (0..=common)
                .rev()
                .find(|&c| cur.is_char_boundary(c))
                .unwrap_or(0);
            out.push(cur[common..].to_string());
            prev = cur;
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bpe")
            .field("sha256", &self.sha256)
            .field("vocab_size", &self.vocab_size)
            .field("doc_id", &self.doc_id)
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

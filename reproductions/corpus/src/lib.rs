//! Real text for the language-model reproductions.
//!
//! A [`CorpusConfig`] names domains ([`source::DOMAINS`]: English, German, Spanish and Italian
//! fortunes; English, German and French manual pages; Rust's standard library) and a byte budget.
//! [`load`] reads each domain's files (the installed Debian package's, found with `dpkg -L`, or a
//! folder under `--corpus-root`), cuts them into documents, drops exact duplicates, keeps
//! documents in the order of their content hash while they fit the budget, and assigns each to a
//! split by its hash (`train` 90%, `validation` 5%, `test` 5%): the split is stable under any
//! change elsewhere and a document never lands in two. A byte-level BPE ([`bpe::Bpe`]) is then
//! trained on the training splits of all the run's domains (each capped at the same bytes, so no
//! language dominates the merges) and cached by the hash of its inputs; every split becomes one
//! token stream, documents separated by `<|doc|>`. Each domain gets a [`DataCard`].
//!
//! Loads are memoised per process (units of one run share one load), keyed by the settings and
//! the text source.

#![deny(missing_docs)]

pub mod bpe;
mod error;
pub mod roff;
pub mod source;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use claimbench_paper::{DataCard, DataEnv};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use bpe::Bpe;
pub use error::CorpusError;
pub use source::{DOMAINS, Domain, Kind};

/// Bounds on [`CorpusConfig`].
pub const MAX_DOMAINS: usize = 8;
/// Largest byte budget per domain (256 MiB).
pub const MAX_BYTES_PER_DOMAIN: u64 = 256 << 20;
/// Vocabulary bounds: the 256 byte symbols and the separator, up to 32 768.
pub const VOCAB_RANGE: std::ops::RangeInclusive<usize> = 258..=32_768;

/// Which text a run reads and how it is tokenised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusConfig {
    /// Domain ids ([`source::DOMAINS`]), distinct.
    pub domains: Vec<String>,
    /// Most bytes of text kept per domain: documents in content-hash order, each kept when it
    /// still fits (first fit).
    pub max_bytes_per_domain: u64,
    /// The BPE's vocabulary size (separator and byte symbols included).
    pub vocab_size: usize,
}

impl CorpusConfig {
    /// Checks the domains exist and are distinct, and the sizes are within bounds.
    pub fn validate(&self) -> Result<(), CorpusError> {
        if self.domains.is_empty() || self.domains.len() > MAX_DOMAINS {
            return Err(CorpusError::Settings(format!(
                "domains lists {} ids; it needs 1 to {MAX_DOMAINS}",
                self.domains.len()
            )));
        }
        let mut seen = HashSet::new();
        for d in &self.domains {
            source::domain(d)?;
            if !seen.insert(d) {
                return Err(CorpusError::Settings(format!("domain {d} is listed twice")));
            }
        }
        if !(1..=MAX_BYTES_PER_DOMAIN).contains(&self.max_bytes_per_domain) {
            return Err(CorpusError::Settings(format!(
                "max_bytes_per_domain {} is outside 1..={MAX_BYTES_PER_DOMAIN}",
                self.max_bytes_per_domain
            )));
        }
        if !VOCAB_RANGE.contains(&self.vocab_size) {
            return Err(CorpusError::Settings(format!(
                "vocab_size {} is outside {}..={}",
                self.vocab_size,
                VOCAB_RANGE.start(),
                VOCAB_RANGE.end()
            )));
        }
        Ok(())
    }
}

/// A split of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 90% of documents.
    Train,
    /// 5%.
    Validation,
    /// 5%.
    Test,
}

impl Split {
    /// All three, in card order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// `train`, `validation`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The split of a document with content digest `h`: its bytes 8..16 modulo 100, below 90
    /// train, below 95 validation, else test (bytes 0..8 order the documents for the budget).
    pub fn of(h: &[u8; 32]) -> Split {
        let b = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")) % 100;
        match b {
            0..90 => Split::Train,
            90..95 => Split::Validation,
            _ => Split::Test,
        }
    }
}

/// One domain's tokens and card.
#[derive(Debug)]
pub struct DomainText {
    /// Its definition.
    pub domain: &'static Domain,
    /// Its card (`used_by` empty; [`Corpus::cards`] fills it).
    pub card: DataCard,
    /// Token streams per split (train, validation, test), `<|doc|>` after every document.
    pub splits: [Vec<u32>; 3],
}

impl DomainText {
    /// The token stream of `split`.
    pub fn tokens(&self, split: Split) -> &[u32] {
        &self.splits[split as usize]
    }
}

/// Seconds spent loading, for the benchmark and the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadTimes {
    /// Listing, reading, stripping, deduplicating and splitting.
    pub read_s: f64,
    /// Training the BPE (0 when cached).
    pub bpe_s: f64,
    /// Encoding every split.
    pub encode_s: f64,
}

/// A loaded corpus: the shared tokenizer and every domain.
#[derive(Debug)]
pub struct Corpus {
    /// The tokenizer.
    pub bpe: Bpe,
    /// Domains, in the settings' order.
    pub domains: Vec<DomainText>,
    /// How long the load took.
    pub times: LoadTimes,
}

impl Corpus {
    /// The domain `id`.
    pub fn domain(&self, id: &str) -> Option<&DomainText> {
        self.domains.iter().find(|d| d.domain.id == id)
    }

    /// Every card, `used_by` set to `papers`.
    pub fn cards(&self, papers: &[&str]) -> Vec<DataCard> {
        self.domains
            .iter()
            .map(|d| DataCard {
                used_by: papers.iter().map(|p| p.to_string()).collect(),
                ..d.card.clone()
            })
            .collect()
    }
}

type Memo = Mutex<HashMap<(CorpusConfig, Option<PathBuf>), Arc<Corpus>>>;

/// The corpus of `cfg` from `env`'s source, loaded once per process.
pub fn load(cfg: &CorpusConfig, env: &DataEnv) -> Result<Arc<Corpus>, CorpusError> {
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    let key = (cfg.clone(), env.corpus_root.clone());
    if let Some(c) = memo.get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(load_uncached(cfg, env, bpe::cache_dir().as_deref())?);
    memo.insert(key, c.clone());
    Ok(c)
}

/// One domain's documents per split before tokenising.
struct Docs {
    domain: &'static Domain,
    package: String,
    version: String,
    files: usize,
    duplicates: u64,
    over_budget: u64,
    bytes: u64,
    sha256: String,
    splits: [Vec<String>; 3],
}

fn read_domain(
    d: &'static Domain,
    root: Option<&std::path::Path>,
    budget: u64,
) -> Result<Docs, CorpusError> {
    let listing = source::list_files(d, root)?;
    let mut seen = HashSet::new();
    let mut docs: Vec<([u8; 32], String)> = Vec::new();
    let mut duplicates = 0;
    for f in &listing.files {
        let text = source::read_text(f)?;
        for doc in source::documents_of(d.kind, f, &text) {
            let h: [u8; 32] = Sha256::digest(doc.as_bytes()).into();
            if seen.insert(h) {
                docs.push((h, doc));
            } else {
                duplicates += 1;
            }
        }
    }
    docs.sort_by_key(|d| d.0);
    let mut bytes = 0u64;
    let total = docs.len();
    docs.retain(|(_, doc)| {
        let fits = bytes + doc.len() as u64 <= budget;
        if fits {
            bytes += doc.len() as u64;
        }
        fits
    });
    let over_budget = (total - docs.len()) as u64;
    let mut sha = Sha256::new();
    let mut splits: [Vec<String>; 3] = Default::default();
    for (h, doc) in docs {
        sha.update(doc.as_bytes());
        sha.update([0u8]);
        splits[Split::of(&h) as usize].push(doc);
    }
    for s in Split::ALL {
        if splits[s as usize].is_empty() {
            return Err(CorpusError::Empty {
                domain: d.id,
                split: s.name(),
                files: listing.files.len(),
            });
        }
    }
    Ok(Docs {
        domain: d,
        package: listing.package,
        version: listing.version,
        files: listing.files.len(),
        duplicates,
        over_budget,
        bytes,
        sha256: claimbench_paper::files::hex(&sha.finalize()),
        splits,
    })
}

/// [`load`] without the memo, with the tokenizer cache in `cache` (none: train every time).
pub fn load_uncached(
    cfg: &CorpusConfig,
    env: &DataEnv,
    cache: Option<&std::path::Path>,
) -> Result<Corpus, CorpusError> {
    cfg.validate()?;
    let t0 = Instant::now();
    let mut all = Vec::new();
    for id in &cfg.domains {
        all.push(read_domain(
            source::domain(id)?,
            env.corpus_root.as_deref(),
            cfg.max_bytes_per_domain,
        )?);
    }
    let read_s = t0.elapsed().as_secs_f64();
    // Tokenizer training text: each domain's training split, capped at the smallest domain's
    // training bytes so every domain weighs the same in the merges.
    let cap = all
        .iter()
        .map(|d| d.splits[0].iter().map(String::len).sum::<usize>())
        .min()
        .unwrap_or(0);
    let mut texts: Vec<&str> = Vec::new();
    for d in &all {
        let mut used = 0;
        for doc in &d.splits[0] {
            if used + doc.len() > cap {
                break;
            }
            used += doc.len();
            texts.push(doc);
        }
    }
    let t1 = Instant::now();
    let bpe = Bpe::train_or_load(&texts, cfg.vocab_size, cache)?;
    let bpe_s = if bpe.cached {
        0.0
    } else {
        t1.elapsed().as_secs_f64()
    };
    let t2 = Instant::now();
    let mut domains = Vec::new();
    for d in all {
        let mut splits: [Vec<u32>; 3] = Default::default();
        for s in Split::ALL {
            let docs: Vec<&str> = d.splits[s as usize].iter().map(String::as_str).collect();
            let stream = &mut splits[s as usize];
            for ids in bpe.encode(&docs)? {
                stream.extend(ids);
                stream.push(bpe.doc_id);
            }
        }
        let card = DataCard {
            domain: d.domain.id.into(),
            language: d.domain.language.into(),
            package: d.package,
            version: d.version,
            files: d.files as u64,
            documents: d.splits.iter().map(|s| s.len() as u64).sum(),
            duplicates: d.duplicates,
            over_budget: d.over_budget,
            bytes: d.bytes,
            tokens: splits.iter().map(|s| s.len() as u64).sum(),
            split_documents: [0, 1, 2].map(|i| d.splits[i].len() as u64),
            split_tokens: [0, 1, 2].map(|i| splits[i].len() as u64),
            sha256: d.sha256,
            vocab_size: bpe.vocab_size as u64,
            tokenizer_sha256: bpe.sha256.clone(),
            used_by: Vec::new(),
        };
        domains.push(DomainText {
            domain: d.domain,
            card,
            splits,
        });
    }
    let encode_s = t2.elapsed().as_secs_f64();
    Ok(Corpus {
        bpe,
        domains,
        times: LoadTimes {
            read_s,
            bpe_s,
            encode_s,
        },
    })
}

/// The folder of the small fixture corpus the tests use (`tests/fixture`, one folder per domain).
pub fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixture")
}

//! [`CorpusError`], the one error type of this crate. Every variant but `Tokenizer` and `Io` is
//! an input or environment problem the harness reports as exit 4.

use std::path::PathBuf;

/// What went wrong reading or tokenising text.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The domain's Debian package is not installed.
    #[error(
        "the text of domain {domain} comes from the Debian package {package}, which is not installed; \
         install it with `apt-get install {package}` (README lists every package), or point \
         --corpus-root / CLAIMBENCH_CORPUS_ROOT at a folder with a {domain}/ sub-folder"
    )]
    MissingPackage {
        /// Package name.
        package: &'static str,
        /// Domain id.
        domain: &'static str,
    },
    /// A corpus root without the domain's folder.
    #[error("corpus root {}: no folder {domain}/ (one folder per domain the run uses)", root.display())]
    RootMissingDomain {
        /// The root given.
        root: PathBuf,
        /// Domain id.
        domain: &'static str,
    },
    /// A domain id nobody defined.
    #[error("unknown corpus domain {id:?}; known: {known}")]
    UnknownDomain {
        /// The id given (at most 40 characters).
        id: String,
        /// The known ids.
        known: String,
    },
    /// A domain that has no document left.
    #[error(
        "domain {domain}: no documents in its {split} split ({files} files read); the run needs text in every split"
    )]
    Empty {
        /// Domain id.
        domain: &'static str,
        /// `train`, `validation` or `test`.
        split: &'static str,
        /// Files read.
        files: usize,
    },
    /// A file larger than the bound.
    #[error("{}: {bytes} bytes is above the 16 MiB bound on one file (64 MiB uncompressed)", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A settings value out of bounds.
    #[error("corpus settings: {0}")]
    Settings(String),
    /// `dpkg`/`dpkg-query` could not be run.
    #[error("{0} (the corpus reads Debian's package lists; on another system use --corpus-root)")]
    Dpkg(String),
    /// Reading a file failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The tokenizer failed to train, load or encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl CorpusError {
    /// An input or environment problem (exit 4), not a bug.
    pub fn is_input(&self) -> bool {
        !matches!(self, CorpusError::Tokenizer(_))
    }
}

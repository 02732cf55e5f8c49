//! What a corpus-backed paper tells the run about its text: one [`DataCard`] per domain, stored in
//! `manifest.json` (`data_cards`) and shown on every paper page that uses the domain, and the
//! [`DataEnv`] that says where the text comes from.
//!
//! A card read back from a run directory is untrusted: [`DataCard::validate`] checks the domain
//! and paper ids against the id grammar, the digests' form and every string's length before any
//! of it reaches a page.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a run's text comes from: Debian's installed packages (`corpus_root: None`) or a folder
/// with one sub-folder per domain (`--corpus-root`, `CLAIMBENCH_CORPUS_ROOT`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataEnv {
    /// The folder given, if any.
    pub corpus_root: Option<PathBuf>,
}

/// One domain's text as a run used it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCard {
    /// Domain id (one segment of the id grammar), e.g. `en-fortunes`.
    pub domain: String,
    /// Language (ISO 639-1, or `rust` for source code).
    pub language: String,
    /// The Debian package it was read from, or `corpus-root`.
    pub package: String,
    /// The package's installed version (`dpkg-query`), or the corpus root's path.
    pub version: String,
    /// Files read.
    pub files: u64,
    /// Documents kept (after removing duplicates and applying the byte budget).
    pub documents: u64,
    /// Documents dropped as exact duplicates of an earlier one.
    pub duplicates: u64,
    /// Documents left out by the byte budget.
    pub over_budget: u64,
    /// Bytes of text kept (UTF-8).
    pub bytes: u64,
    /// Tokens of the kept text under the run's tokenizer (document separators included).
    pub tokens: u64,
    /// Documents per split: train, validation, test.
    pub split_documents: [u64; 3],
    /// Tokens per split: train, validation, test.
    pub split_tokens: [u64; 3],
    /// SHA-256 (hex) of the kept documents in order, each followed by a NUL byte.
    pub sha256: String,
    /// The tokenizer's vocabulary size.
    pub vocab_size: u64,
    /// SHA-256 (hex) of the tokenizer's JSON.
    pub tokenizer_sha256: String,
    /// Paper ids that use this domain.
    pub used_by: Vec<String>,
}

/// Longest string a card may hold (a version, a path).
const MAX_STR: usize = 512;

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl DataCard {
    /// Checks what a page or a comparison will use: the domain and paper ids through `id` (the
    /// harness's one id grammar), digests as 64 hex digits, strings at most 512 bytes without
    /// control characters, at most 16 papers. The error names the field.
    pub fn validate(&self, id: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
        id(&self.domain).map_err(|e| format!("data card domain {:?}: {e}", trunc(&self.domain)))?;
        for (name, v) in [
            ("language", &self.language),
            ("package", &self.package),
            ("version", &self.version),
        ] {
            if v.len() > MAX_STR || v.chars().any(char::is_control) {
                return Err(format!(
                    "data card {}: {name} is longer than {MAX_STR} bytes or holds control characters",
                    self.domain
                ));
            }
        }
        for (name, v) in [
            ("sha256", &self.sha256),
            ("tokenizer_sha256", &self.tokenizer_sha256),
        ] {
            if !hex64(v) {
                return Err(format!(
                    "data card {}: {name} is not 64 hex digits",
                    self.domain
                ));
            }
        }
        if self.used_by.len() > 16 {
            return Err(format!(
                "data card {}: used_by lists {} papers (at most 16)",
                self.domain,
                self.used_by.len()
            ));
        }
        for p in &self.used_by {
            id(p).map_err(|e| format!("data card {}: used_by {:?}: {e}", self.domain, trunc(p)))?;
        }
        Ok(())
    }
}

fn trunc(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> DataCard {
        DataCard {
            domain: "en-fortunes".into(),
            language: "en".into(),
            package: "fortunes".into(),
            version: "1:1.99.1-7.3".into(),
            files: 3,
            documents: 10,
            duplicates: 1,
            over_budget: 0,
            bytes: 1000,
            tokens: 300,
            split_documents: [8, 1, 1],
            split_tokens: [240, 30, 30],
            sha256: "a".repeat(64),
            vocab_size: 512,
            tokenizer_sha256: "b".repeat(64),
            used_by: vec!["continual".into()],
        }
    }

    fn id(s: &str) -> Result<(), String> {
        match !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            true => Ok(()),
            false => Err("not an id".into()),
        }
    }

    #[test]
    fn a_good_card_passes_and_bad_fields_are_named() {
        assert!(card().validate(id).is_ok());
        let mut c = card();
        c.domain = "../x".into();
        assert!(c.validate(id).unwrap_err().contains("domain"));
        let mut c = card();
        c.sha256 = "zz".into();
        assert!(c.validate(id).unwrap_err().contains("sha256"));
        let mut c = card();
        c.used_by = vec!["<script>".into()];
        assert!(c.validate(id).unwrap_err().contains("used_by"));
        let mut c = card();
        c.version = "x".repeat(600);
        assert!(c.validate(id).unwrap_err().contains("version"));
    }
}

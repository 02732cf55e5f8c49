//! Artifacts: the files a unit stores for the units that depend on it (a pretrained checkpoint,
//! an SFT policy), at `artifacts/<unit>/<name>` in the run directory.
//!
//! A unit's artifacts are written (atomically) before its record, and the record lists each
//! one's length and SHA-256 ([`ArtifactRef`]); a record is the proof that its artifacts are
//! complete. A dependent unit reads them through [`StoredArtifacts`], which checks the name,
//! the length (before reading, bounded by [`MAX_ARTIFACT_BYTES`]) and the hash: a run directory
//! may be a downloaded CI artifact, and a resumed run must not train on a truncated checkpoint.
//!
//! Architecture Invariant: units share results only through stored records and the artifacts
//! those records list; nothing is cached between units inside a process.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use claimbench_paper::{Artifact, ArtifactRef, ArtifactSource, UnitRecord};
use sha2::{Digest, Sha256};

use crate::store::{RunDir, write_atomic};

/// Largest artifact read back, in bytes (a `full` continual checkpoint is about 0.2 GiB).
pub const MAX_ARTIFACT_BYTES: u64 = 8 << 30;

/// The path of `unit_id`'s artifact `name` (both checked against the id grammar first).
pub fn path(dir: &RunDir, unit_id: &str, name: &str) -> PathBuf {
    dir.root
        .join("artifacts")
        .join(unit_id.replace('/', "__"))
        .join(name)
}

/// Writes `a` for `unit_id` atomically and returns what the unit's record lists.
pub fn write(dir: &RunDir, unit_id: &str, a: &Artifact) -> Result<ArtifactRef> {
    write_in(
        &dir.root.join("artifacts").join(unit_id.replace('/', "__")),
        unit_id,
        a,
    )
}

/// [`write`] into the folder `folder` (a unit's staging folder, [`crate::stage`]).
pub fn write_in(folder: &Path, unit_id: &str, a: &Artifact) -> Result<ArtifactRef> {
    crate::ids::validate(&a.name)
        .ok()
        .filter(|_| !a.name.contains('/'))
        .with_context(|| {
            format!(
                "unit {unit_id}: artifact name {:?} is not one id segment",
                a.name
            )
        })?;
    if a.bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        anyhow::bail!(
            "unit {unit_id}: artifact {} is {} bytes, over the {} GiB a run reads back",
            a.name,
            a.bytes.len(),
            MAX_ARTIFACT_BYTES >> 30
        );
    }
    let p = folder.join(&a.name);
    write_atomic(&p, &a.bytes).with_context(|| format!("storing artifact {}", p.display()))?;
    Ok(ArtifactRef {
        name: a.name.clone(),
        bytes: a.bytes.len() as u64,
        sha256: crate::env::hex(&Sha256::digest(&a.bytes)),
    })
}

/// The artifacts of a run directory's stored records, checked as they are read.
pub struct StoredArtifacts<'a> {
    /// The run directory.
    pub dir: &'a RunDir,
}

impl ArtifactSource for StoredArtifacts<'_> {
    fn read(&self, record: &UnitRecord, name: &str) -> Result<Vec<u8>, String> {
        let unit = &record.unit_id;
        let recompute = format!(
            "delete {} and --resume to recompute it",
            self.dir.unit_path(unit).display()
        );
        let listed = record
            .artifacts
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| format!("unit {unit} stored no artifact {name}; {recompute}"))?;
        // The record was checked when read: its names follow the grammar, its sizes the bound.
        let p = path(self.dir, unit, name);
        read_checked(&p, listed)
            .map_err(|what| format!("artifact {}: {what}; {recompute}", p.display()))
    }
}

/// The bytes of the plain file `p`, checked against the length and SHA-256 `listed` gives (the
/// length before reading); the error says what differs.
pub fn read_checked(p: &Path, listed: &ArtifactRef) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a plain file".into());
    }
    if meta.len() != listed.bytes {
        return Err(format!(
            "{} bytes, its record lists {}",
            meta.len(),
            listed.bytes
        ));
    }
    let mut bytes = Vec::with_capacity(listed.bytes as usize);
    std::fs::File::open(p)
        .and_then(|f| f.take(listed.bytes + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let sha = crate::env::hex(&Sha256::digest(&bytes));
    if bytes.len() as u64 != listed.bytes || sha != listed.sha256 {
        return Err("its contents differ from what its record lists (SHA-256)".into());
    }
    Ok(bytes)
}

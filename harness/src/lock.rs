//! The run directory's lock: one process at a time writes a run directory (`run`, `run --resume`,
//! `report`). The lock is an advisory exclusive lock (`flock`) on `DIR/run.lock`, held for the
//! life of a [`RunLock`]; the kernel drops it when the process exits, however it exits, so a
//! killed run never leaves a stale lock behind. The file's text says who holds it, so a second
//! process can name the holder.
//!
//! Architecture Invariant: temporary files in a run directory are removed only under its lock
//! (see [`crate::store::RunDir::remove_stale_temporaries`]), so no process deletes a temporary
//! another one is still writing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::input_error;

/// File name of the lock in a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// An exclusive lock on a run directory, released on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the run directory `root` for `what` (e.g. `run --resume`), without
    /// waiting. Held by another process: an input error (exit 4) naming the holder.
    pub fn acquire(root: &Path, what: &str) -> Result<Self> {
        let path = root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                input_error(format!(
                    "{}: cannot open the run's lock file: {e}",
                    path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Bounded: the text is ours, one short line, but the file may have been edited.
                let _ = (&file).take(512).read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(input_error(format!(
                    "{} is in use by another claimbench process ({}); wait for it to finish, or \
                     stop it, then try again",
                    root.display(),
                    if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        crate::ids::shown(holder).to_string()
                    }
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(input_error(format!(
                    "{}: cannot lock the run directory: {e}",
                    path.display()
                )));
            }
        }
        let text = format!(
            "pid {} on {}, {} since {}\n",
            std::process::id(),
            hostname(),
            what,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        // Who holds it is information only: a failure to write it does not release the lock.
        let _ = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()));
        Ok(Self { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

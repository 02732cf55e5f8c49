//! The two file helpers the harness and the reproduction crates share: lower-case hex of a
//! digest ([`hex`]) and an atomic write ([`write_atomic`]: a temporary file in the same folder,
//! permissions 0644, fsync, rename), so a reader never sees half a file.

use std::io::{self, Write};
use std::path::Path;

/// Lower-case hex of `bytes` (a SHA-256 digest gives 64 digits).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder (created with the
/// folder if missing), fsync, rename. The error says which step failed and names the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let step = |what: String| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(step(format!("creating directory {}", dir.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(step(format!(
        "creating a temporary file in {}",
        dir.display()
    )))?;
    tmp.write_all(bytes)
        .map_err(step(format!("writing {}", path.display())))?;
    // Temporary files are created owner-only; results (and a report a web server may publish)
    // are ordinary files readable by others, as `umask` would make them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(step(format!("setting permissions of {}", path.display())))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(step(format!("syncing {}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(step(format!("renaming into {}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_an_atomic_write_leave_one_whole_file() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        let e = write_atomic(&d.path().join("sub/f.json/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("f.json"), "{e}");
    }
}

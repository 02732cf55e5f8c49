//! The domains ([`DOMAINS`]), where their files are ([`list_files`]: `dpkg -L` or a corpus
//! root) and how a file becomes documents ([`documents_of`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::CorpusError;
use crate::roff;

/// How a domain's files are cut into documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `fortune` files: documents separated by lines that are exactly `%`.
    Fortunes,
    /// Manual pages (gzip-compressed roff): one page is one document, as plain text.
    Manpages,
    /// Source files: one file is one document.
    Source,
}

/// One domain of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain {
    /// Id (one segment of the id grammar): the folder name under a corpus root too.
    pub id: &'static str,
    /// Language (ISO 639-1, `rust` for code).
    pub language: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    /// How its files are cut into documents.
    pub kind: Kind,
    /// The package's files that belong to the domain: paths starting with this prefix (after
    /// a `*` in it, any one path segment).
    pub prefix: &'static str,
    /// Files whose name ends with one of these are skipped.
    pub suffix: &'static str,
}

/// Every domain the corpus layer knows.
pub const DOMAINS: &[Domain] = &[
    Domain {
        id: "en-fortunes",
        language: "en",
        package: "fortunes",
        kind: Kind::Fortunes,
        prefix: "/usr/share/games/fortunes/",
        suffix: "",
    },
    Domain {
        id: "de-fortunes",
        language: "de",
        package: "fortunes-de",
        kind: Kind::Fortunes,
        prefix: "/usr/share/games/fortunes/de/",
        suffix: "",
    },
    Domain {
        id: "es-fortunes",
        language: "es",
        package: "fortunes-es",
        kind: Kind::Fortunes,
        prefix: "/usr/share/games/fortunes/es/",
        suffix: "",
    },
    Domain {
        id: "it-fortunes",
        language: "it",
        package: "fortunes-it",
        kind: Kind::Fortunes,
        prefix: "/usr/share/games/fortunes/it/",
        suffix: "",
    },
    Domain {
        id: "en-man",
        language: "en",
        package: "manpages",
        kind: Kind::Manpages,
        prefix: "/usr/share/man/man",
        suffix: ".gz",
    },
    Domain {
        id: "de-man",
        language: "de",
        package: "manpages-de",
        kind: Kind::Manpages,
        prefix: "/usr/share/man/de/",
        suffix: ".gz",
    },
    Domain {
        id: "fr-man",
        language: "fr",
        package: "manpages-fr",
        kind: Kind::Manpages,
        prefix: "/usr/share/man/fr/",
        suffix: ".gz",
    },
    Domain {
        id: "rust-src",
        language: "rust",
        package: "rust-src",
        kind: Kind::Source,
        prefix: "/usr/src/rustc-*/library/",
        suffix: ".rs",
    },
];

/// The domain `id`, or an error listing the known ones.
pub fn domain(id: &str) -> Result<&'static Domain, CorpusError> {
    DOMAINS
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| CorpusError::UnknownDomain {
            id: id.chars().take(40).collect(),
            known: DOMAINS.iter().map(|d| d.id).collect::<Vec<_>>().join(", "),
        })
}

/// Largest file read (bytes, before decompression); larger files are an error, not truncated.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Where a domain's text was found: its files, and the package version (or the root's path).
#[derive(Clone, Debug)]
pub struct Listing {
    /// Regular files, sorted.
    pub files: Vec<PathBuf>,
    /// `dpkg-query`'s version, or the corpus root.
    pub version: String,
    /// `corpus-root` or the package name.
    pub package: String,
}

/// The domain's files: under `root/<id>/` (every regular file, recursively, sorted) when a
/// corpus root is given, else the installed package's files (`dpkg -L`) under the domain's
/// prefix, skipping symlinks (the fortunes folder links Italian files under English names),
/// `.dat` indexes, `.u8` duplicates and offensive (`off/`) folders.
pub fn list_files(d: &Domain, root: Option<&Path>) -> Result<Listing, CorpusError> {
    if let Some(root) = root {
        let dir = root.join(d.id);
        if !dir.is_dir() {
            return Err(CorpusError::RootMissingDomain {
                root: root.to_path_buf(),
                domain: d.id,
            });
        }
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let entry = entry.map_err(|e| CorpusError::Io {
                path: dir.clone(),
                message: e.to_string(),
            })?;
            if entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
        return Ok(Listing {
            files,
            version: root.display().to_string(),
            package: "corpus-root".into(),
        });
    }
    let version = dpkg_version(d)?;
    let out = Command::new("dpkg")
        .args(["-L", d.package])
        .output()
        .map_err(|e| CorpusError::Dpkg(format!("dpkg -L {}: {e}", d.package)))?;
    if !out.status.success() {
        return Err(missing(d));
    }
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|p| matches_prefix(p, d.prefix))
        .filter(|p| !p.ends_with(".dat") && !p.ends_with(".u8") && !p.contains("/off/"))
        .filter(|p| p.ends_with(d.suffix))
        .map(PathBuf::from)
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()))
        .collect();
    files.sort();
    files.dedup();
    Ok(Listing {
        files,
        version,
        package: d.package.into(),
    })
}

fn missing(d: &Domain) -> CorpusError {
    CorpusError::MissingPackage {
        package: d.package,
        domain: d.id,
    }
}

/// The installed version of the domain's package, or [`CorpusError::MissingPackage`].
fn dpkg_version(d: &Domain) -> Result<String, CorpusError> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}\t${Version}", d.package])
        .output()
        .map_err(|e| CorpusError::Dpkg(format!("dpkg-query -W {}: {e}", d.package)))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_once('\t') {
        Some((status, version)) if out.status.success() && status.ends_with(" installed") => {
            Ok(version.trim().to_string())
        }
        _ => Err(missing(d)),
    }
}

/// `path` starts with `prefix`, where a `*` in the prefix stands for one path segment's worth
/// of characters (no `/`).
fn matches_prefix(path: &str, prefix: &str) -> bool {
    match prefix.split_once('*') {
        None => path.starts_with(prefix),
        Some((head, tail)) => path.strip_prefix(head).is_some_and(|rest| {
            rest.find('/')
                .is_some_and(|i| rest[i..].starts_with(tail) || rest[i + 1..].starts_with(tail))
        }),
    }
}

/// Reads `path` (at most [`MAX_FILE_BYTES`]; gzip when the name ends in `.gz`) as text: UTF-8,
/// or Latin-1 when it is not valid UTF-8 (every byte is a character, so the result is
/// deterministic).
pub fn read_text(path: &Path) -> Result<String, CorpusError> {
    let io = |e: std::io::Error| CorpusError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(CorpusError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
        });
    }
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(4 * MAX_FILE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(io)?;
        if out.len() as u64 > 4 * MAX_FILE_BYTES {
            return Err(CorpusError::FileTooLarge {
                path: path.to_path_buf(),
                bytes: out.len() as u64,
            });
        }
        out
    } else {
        raw
    };
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    })
}

/// The documents of one file of `kind`, trimmed, empty ones dropped: a manual-page domain's file
/// named like a page (`*.<section>[.gz]`) is one roff page; a source file is one document; any
/// other file is plain text with documents separated by lines that are exactly `%` (the
/// fortune format, also what a corpus root's plain-text files use).
pub fn documents_of(kind: Kind, path: &Path, text: &str) -> Vec<String> {
    let docs: Vec<String> = match kind {
        Kind::Manpages if is_roff(path) => vec![roff::to_text(text)],
        Kind::Fortunes | Kind::Manpages => {
            let mut docs = Vec::new();
            let mut cur = String::new();
            for line in text.lines() {
                if line.trim_end() == "%" {
                    docs.push(std::mem::take(&mut cur));
                } else {
                    cur.push_str(line.trim_end());
                    cur.push('\n');
                }
            }
            docs.push(cur);
            docs
        }
        Kind::Source => vec![text.replace("\r\n", "\n")],
    };
    docs.into_iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

fn is_roff(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| ext.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_with_a_wildcard_match_one_segment() {
        let p = "/usr/src/rustc-*/library/";
        assert!(matches_prefix(
            "/usr/src/rustc-1.63.0/library/core/src/lib.rs",
            p
        ));
        assert!(!matches_prefix("/usr/src/rustc-1.63.0/compiler/x.rs", p));
        assert!(matches_prefix(
            "/usr/share/man/man1/ls.1.gz",
            "/usr/share/man/man"
        ));
    }

    #[test]
    fn fortunes_split_on_percent_lines_and_pages_are_roff_only_by_name() {
        let docs = documents_of(Kind::Fortunes, Path::new("f"), "a\nb\n%\n\n%\nc  \n%\n");
        assert_eq!(docs, vec!["a\nb".to_string(), "c".to_string()]);
        assert!(is_roff(Path::new("ls.1.gz")));
        assert!(is_roff(Path::new("ls.1")));
        assert!(!is_roff(Path::new("notes.txt")));
        let page = documents_of(Kind::Manpages, Path::new("x.7"), ".SH NAME\nx \\- y\n");
        assert_eq!(page, vec!["NAME\nx - y".to_string()]);
    }

    #[test]
    fn unknown_domains_list_the_known_ones() {
        let e = domain("klingon").unwrap_err().to_string();
        assert!(e.contains("en-fortunes") && e.contains("rust-src"), "{e}");
    }
}

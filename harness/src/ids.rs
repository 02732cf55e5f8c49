//! The one grammar every id in a run directory follows (contracts.md: papers `dora`, kernels
//! `kernels/token-logprob`, units `kernels/token-logprob/train/seed-0`, claims
//! `mixtral/moe-beats-dense`), checked before an id becomes part of a path or an href.
//!
//! Run files are untrusted input (a run directory may be a downloaded CI artifact), so every id
//! read from one is checked here first: `report` builds file names and links from kernel,
//! paper and unit ids, and `--resume` builds unit paths from the manifest's unit ids.
//!
//! Architecture Invariant: no id read from a file reaches `Path::join`, a file name or an `href`
//! without passing [`check`].

use std::fmt;
use std::path::Path;

/// Longest id accepted, in bytes (the longest registered unit id is under 80).
pub const MAX_LEN: usize = 160;

/// Most `/`-separated segments in an id.
pub const MAX_SEGMENTS: usize = 8;

/// Why a string is not an id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The empty string.
    #[error("it is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("it is {0} bytes long (at most {MAX_LEN})")]
    TooLong(usize),
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("it has {0} segments (at most {MAX_SEGMENTS})")]
    TooManySegments(usize),
    /// Starts with `/`, ends with `/` or holds `//`.
    #[error("it has an empty segment (a leading, trailing or doubled '/')")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("it has a '{0}' segment")]
    DotSegment(String),
    /// A character outside `[a-z0-9._-]` and `/`.
    #[error("it holds {0:?}; ids use lower-case letters, digits, '.', '_', '-' and '/'")]
    BadChar(char),
}

/// Checks `id` against the grammar: one or more segments of `[a-z0-9._-]+` joined by `/`, no
/// `.` or `..` segment, at most [`MAX_SEGMENTS`] segments and [`MAX_LEN`] bytes. Such an id is
/// never absolute, never leaves the directory it is joined to, and is safe in an `href` (no
/// scheme: `:` is not allowed).
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong(id.len()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/'))
    {
        return Err(IdError::BadChar(c));
    }
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(IdError::TooManySegments(segments.len()));
    }
    for s in segments {
        match s {
            "" => return Err(IdError::EmptySegment),
            "." | ".." => return Err(IdError::DotSegment(s.to_string())),
            _ => {}
        }
    }
    Ok(())
}

/// At most 60 characters of an untrusted string, escaped, for an error message.
pub fn shown(s: &str) -> impl fmt::Display + '_ {
    struct Shown<'a>(&'a str);
    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let head: String = self.0.chars().take(60).collect();
            let more = if self.0.chars().count() > 60 {
                "…"
            } else {
                ""
            };
            write!(f, "{:?}{more}", head)
        }
    }
    Shown(s)
}

/// [`validate`] as an input error (exit 4) naming the file, the field and the id.
pub fn check(file: &Path, field: &str, id: &str) -> anyhow::Result<()> {
    validate(id).map_err(|e| {
        crate::error::input_error(format!(
            "{}: {field} {} is not a valid id: {e}",
            file.display(),
            shown(id)
        ))
    })
}

/// `s` as one segment of the grammar: lower-cased, every other character (`/` too) as `-`,
/// at most 64 bytes; `-` for an empty string.
pub fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            _ => '-',
        })
        .take(64)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// The kernel an id belongs to: its first two segments (`kernels/token-logprob/bench` →
/// `kernels/token-logprob`). `None` unless it starts with `kernels/` and has a second segment.
pub fn kernel_of(id: &str) -> Option<String> {
    let mut it = id.split('/');
    match (it.next(), it.next()) {
        (Some("kernels"), Some(k)) if !k.is_empty() => Some(format!("kernels/{k}")),
        _ => None,
    }
}

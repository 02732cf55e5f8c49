//! Writing to stdout and stderr without panicking when the reader has gone away
//! (`claimbench list | head -1`): `println!` panics on a broken pipe (exit 101). These macros
//! stop writing quietly instead, and the command finishes with the exit code its work earned.
//!
//! Architecture Invariant: the harness writes to stdout and stderr only through [`outln!`],
//! [`out!`] and [`errln!`].

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout. After a broken pipe nothing more is written; any other error is reported
/// once on stderr.
pub fn stdout(args: fmt::Arguments) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|_| o.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            stderr(format_args!("warning: cannot write to stdout: {e}\n"));
        }
    }
}

/// Writes to stderr, ignoring any error (there is nowhere left to report it).
pub fn stderr(args: fmt::Arguments) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `println!` that never panics (see [`stdout`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::out::stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that never panics (see [`stdout`]).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::out::stdout(format_args!($($t)*)) };
}

/// `eprintln!` that never panics (see [`stderr`]).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::out::stderr(format_args!("{}\n", format_args!($($t)*))) };
}

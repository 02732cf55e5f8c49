//! A counting global allocator, for claims about training memory (DoRA Sec. 4.3: the detached
//! column norm cuts training memory).
//!
//! [`CountingAlloc`] wraps [`System`] and keeps two process-wide counters in atomics: the bytes
//! currently allocated and not freed (**live**) and the largest live count since the last reset
//! (**peak**). Units are bytes of requested sizes (`Layout::size()`), not pages or allocator
//! overhead. A binary opts in with
//!
//! ```ignore
//! #[global_allocator]
//! static A: claimbench_paper::alloc::CountingAlloc = claimbench_paper::alloc::CountingAlloc::new();
//! ```
//!
//! and measures a closure with [`measure_peak`]. Without that declaration nothing is counted,
//! [`installed`] is false and [`measure_peak`] returns [`NotInstalled`].
//!
//! Invariant: live = Σ sizes allocated − Σ sizes freed (a `realloc` adds its new − old size), so
//! live ≤ peak between resets. The counters are process-wide: every thread's allocations count,
//! including burn's rayon workers (which is what a backend that allocates on its thread pool
//! needs), and so do those of any other work running at the same time. Callers must therefore
//! not run other work concurrently with a measurement (the harness runs units one at a time;
//! tests serialise theirs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes allocated and not yet freed, all threads.
static LIVE: AtomicU64 = AtomicU64::new(0);
/// The largest value of [`LIVE`] since the last reset ([`measure_peak`] resets it).
static PEAK: AtomicU64 = AtomicU64::new(0);
/// Set by the first allocation that goes through [`CountingAlloc`].
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A [`GlobalAlloc`] that forwards to [`System`] and counts live and peak bytes (see the module
/// docs). It never allocates itself: counting is a few relaxed atomic operations.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

impl CountingAlloc {
    /// The allocator, for a `#[global_allocator]` static.
    pub const fn new() -> Self {
        CountingAlloc
    }
}

/// Counts `size` new live bytes and raises the peak to the new live count.
fn grow(size: usize) {
    let size = size as u64;
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// Counts `size` freed bytes.
fn shrink(size: usize) {
    LIVE.fetch_sub(size as u64, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only adds
// atomic bookkeeping, so `System`'s guarantees carry over; failed allocations (null) are not
// counted.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (hence by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`; `new_size` is valid for `layout.align()` by the caller.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let old = layout.size();
            if new_size >= old {
                grow(new_size - old);
            } else {
                shrink(old - new_size);
            }
        }
        new
    }
}

/// Whether [`CountingAlloc`] is this process's global allocator (it has counted an
/// allocation). Makes one tiny allocation of its own to find out.
pub fn installed() -> bool {
    if !INSTALLED.load(Ordering::Relaxed) {
        drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    }
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes currently allocated and not freed, all threads (0 when [`CountingAlloc`] is not the
/// global allocator).
pub fn live_bytes() -> u64 {
    LIVE.load(Ordering::SeqCst)
}

/// [`measure_peak`] was called in a binary whose global allocator is not [`CountingAlloc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory is not counted: the binary must declare `#[global_allocator] static A: \
     claimbench_paper::alloc::CountingAlloc = claimbench_paper::alloc::CountingAlloc::new();`"
)]
pub struct NotInstalled;

/// Runs `f` and returns its result with the peak heap bytes it added: the largest live count
/// while `f` ran minus the live count when it started (saturating at 0), in bytes. Bytes that
/// `f` returns or leaks are part of the peak.
///
/// Resets the process-wide peak to the current live count first, so measurements must not
/// overlap, and the count is process-wide: allocations of other threads running meanwhile are
/// included (see the module docs).
pub fn measure_peak<R>(f: impl FnOnce() -> R) -> Result<(R, u64), NotInstalled> {
    if !installed() {
        return Err(NotInstalled);
    }
    let start = LIVE.load(Ordering::SeqCst);
    PEAK.store(start, Ordering::SeqCst);
    let out = f();
    let peak = PEAK.load(Ordering::SeqCst);
    Ok((out, peak.saturating_sub(start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's unit-test binary declares no global allocator, so nothing is counted.
    #[test]
    fn not_installed_is_an_error_naming_the_fix() {
        assert!(!installed());
        assert_eq!(live_bytes(), 0);
        let err = measure_peak(|| 1).unwrap_err();
        assert_eq!(err, NotInstalled);
        assert!(err.to_string().contains("#[global_allocator]"), "{err}");
    }
}

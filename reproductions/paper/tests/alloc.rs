//! The counting allocator installed as this test binary's global allocator: peaks of known
//! allocations. The counters are process-wide, so the tests take one lock and measure one at a
//! time (libtest's own bookkeeping may still add a little, hence the 64 KiB slack).

use std::hint::black_box;
use std::sync::Mutex;

use claimbench_paper::alloc::{CountingAlloc, installed, live_bytes, measure_peak};

#[global_allocator]
static A: CountingAlloc = CountingAlloc::new();

static SERIAL: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;
const SLACK: u64 = 64 << 10;

#[test]
fn a_dropped_mebibyte_is_the_peak() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(installed());
    let before = live_bytes();
    let ((), peak) = measure_peak(|| {
        let v = black_box(vec![1u8; MIB as usize]);
        drop(v);
    })
    .unwrap();
    // Another thread (libtest's) may free a little while f runs: the net peak can fall short.
    assert!((MIB - SLACK..MIB + SLACK).contains(&peak), "peak {peak}");
    // Freed again: the live count is back near where it was.
    assert!(
        live_bytes() < before + SLACK,
        "{} vs {before}",
        live_bytes()
    );
}

#[test]
fn zeroed_allocations_count() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ((), peak) = measure_peak(|| drop(black_box(vec![0u8; MIB as usize]))).unwrap();
    // Another thread (libtest's) may free a little while f runs: the net peak can fall short.
    assert!((MIB - SLACK..MIB + SLACK).contains(&peak), "peak {peak}");
}

#[test]
fn nothing_allocated_is_a_small_peak() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (sum, peak) = measure_peak(|| black_box((0..1000u64).sum::<u64>())).unwrap();
    assert_eq!(sum, 499_500);
    assert!(peak < SLACK, "peak {peak}");
}

#[test]
fn realloc_growth_and_shrink_count() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (v, peak) = measure_peak(|| {
        let mut v = black_box(Vec::<u8>::with_capacity(1024));
        v.reserve_exact(2 * MIB as usize);
        black_box(v)
    })
    .unwrap();
    // The grown buffer is still alive, so it is part of the peak. Another thread (libtest's)
    // may free a little while f runs: the net peak can fall short (CI once saw 2 MiB − 24 B).
    assert!(v.capacity() >= 2 * MIB as usize);
    assert!(
        (2 * MIB - SLACK..2 * MIB + SLACK).contains(&peak),
        "peak {peak}"
    );
    let before = live_bytes();
    let mut v = v;
    v.shrink_to(MIB as usize);
    assert!(v.capacity() < 2 * MIB as usize);
    let freed = before.saturating_sub(live_bytes());
    assert!(freed + SLACK > MIB, "shrinking freed only {freed} bytes");
    drop(v);
}

#[test]
fn a_returned_allocation_counts_from_the_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Something already alive before the measurement is not part of its peak.
    let held = black_box(vec![7u8; 4 * MIB as usize]);
    let (kept, peak) = measure_peak(|| black_box(vec![1u8; MIB as usize])).unwrap();
    // Another thread (libtest's) may free a little while f runs: the net peak can fall short.
    assert!((MIB - SLACK..MIB + SLACK).contains(&peak), "peak {peak}");
    drop((held, kept));
}

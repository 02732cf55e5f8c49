//! DoRA Sec. 4.3's memory claim measured: the peak heap bytes of a training step of the PEFT-style
//! DoRA layer on `Autodiff<Flex>` with the exact and the detached column norm
//! (`claimbench_dora::memory`). This binary installs the counting allocator; the counters are
//! process-wide, so every test holds one lock while it runs. Run with `--nocapture` to see the
//! bytes.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use claimbench_dora::Error;
use claimbench_dora::memory::{MemoryShape, NormMemory, norm_memory};
use claimbench_paper::alloc::CountingAlloc;

#[global_allocator]
static A: CountingAlloc = CountingAlloc::new();

static SERIAL: Mutex<()> = Mutex::new(());

/// How far repeated measurements may differ: burn-autodiff's graph registry is hash tables with
/// random hashers, whose resizes move the peak by up to ~2 KiB (see the module docs).
const NOISE: u64 = 4 << 10;

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn measure(shape: MemoryShape, seed: u64) -> NormMemory {
    let t = Instant::now();
    let mem = norm_memory(&shape, seed).unwrap();
    eprintln!(
        "{shape:?} seed {seed}: exact {} B, detached {} B, saving {:.4} ({:.2} s for 2 warm-up + 2 measured steps)",
        mem.exact_bytes,
        mem.detached_bytes,
        mem.saving(),
        t.elapsed().as_secs_f64()
    );
    mem
}

#[test]
fn the_detached_norm_saves_memory_at_the_default_shape() {
    let _serial = serial();
    let mem = measure(MemoryShape::default(), 0);
    assert!(mem.detached_bytes < mem.exact_bytes, "{mem:?}");
    // Measured 0.238: the exact norm's backward temporaries, about 1.26 · 4·d² bytes.
    assert!(mem.saving() > 0.1 && mem.saving() < 0.5, "{mem:?}");
}

#[test]
fn repeated_measurements_agree() {
    let _serial = serial();
    let shape = MemoryShape {
        d_in: 256,
        d_out: 256,
        rank: 4,
        tokens: 64,
        layers: 3,
    };
    let first = measure(shape, 7);
    for _ in 0..3 {
        let again = measure(shape, 7);
        assert!(
            first.exact_bytes.abs_diff(again.exact_bytes) <= NOISE
                && first.detached_bytes.abs_diff(again.detached_bytes) <= NOISE,
            "{first:?} vs {again:?}"
        );
    }
    // The bytes do not depend on the values drawn.
    let other = measure(shape, 8);
    assert!(
        first.exact_bytes.abs_diff(other.exact_bytes) <= NOISE,
        "{first:?} vs {other:?}"
    );
}

/// Only the exact norm's backward temporaries (`[d, d]` per layer) differ between the modes, so
/// the saving is large when weights set the peak (few tokens) and vanishes, without turning
/// into a cost, when activations do (measured: 0.343 at 64 tokens, 0.000 at 1024).
#[test]
fn the_saving_grows_with_width_relative_to_tokens() {
    let _serial = serial();
    let shape = |tokens| MemoryShape {
        d_in: 512,
        d_out: 512,
        rank: 8,
        tokens,
        layers: 2,
    };
    let many_tokens = measure(shape(1024), 1);
    let few_tokens = measure(shape(64), 1);
    assert!(
        many_tokens.detached_bytes <= many_tokens.exact_bytes + NOISE,
        "{many_tokens:?}"
    );
    assert!(
        few_tokens.saving() > many_tokens.saving() + 0.2,
        "{many_tokens:?} vs {few_tokens:?}"
    );
}

#[test]
fn validate_rejects_each_bad_size() {
    let _serial = serial();
    let ok = MemoryShape::default();
    ok.validate().unwrap();
    let cases: [(&str, MemoryShape); 11] = [
        ("memory.d_in", MemoryShape { d_in: 0, ..ok }),
        ("memory.d_in", MemoryShape { d_in: 4097, ..ok }),
        ("memory.d_out", MemoryShape { d_out: 0, ..ok }),
        ("memory.d_out", MemoryShape { d_out: 4097, ..ok }),
        ("memory.tokens", MemoryShape { tokens: 0, ..ok }),
        (
            "memory.tokens",
            MemoryShape {
                tokens: 65537,
                ..ok
            },
        ),
        ("memory.layers", MemoryShape { layers: 0, ..ok }),
        ("memory.layers", MemoryShape { layers: 65, ..ok }),
        ("memory.rank", MemoryShape { rank: 0, ..ok }),
        ("memory.rank", MemoryShape { rank: 1025, ..ok }),
        // Stacked layers must be square.
        ("memory.d_out", MemoryShape { d_out: 512, ..ok }),
    ];
    for (field, shape) in cases {
        match shape.validate() {
            Err(Error::Config { name, .. }) => assert_eq!(name, field, "{shape:?}"),
            other => panic!("{shape:?}: expected a Config error on {field}, got {other:?}"),
        }
        // norm_memory validates before it allocates anything.
        assert!(matches!(norm_memory(&shape, 0), Err(Error::Config { .. })));
    }
    // One layer may be rectangular.
    MemoryShape {
        d_out: 512,
        layers: 1,
        ..ok
    }
    .validate()
    .unwrap();
    // Every size in range, but 64 layers of 4096² weights are 4 GiB.
    let big = MemoryShape {
        d_in: 4096,
        d_out: 4096,
        rank: 8,
        tokens: 256,
        layers: 64,
    };
    let err = big.validate().unwrap_err();
    assert!(err.to_string().contains("more than 1 GiB"), "{err}");
    assert!(big.tensor_bytes() > MemoryShape::MAX_BYTES);
}

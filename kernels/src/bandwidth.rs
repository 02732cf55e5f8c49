//! A memory-bandwidth probe: kernels written to saturate memory, so that a benchmark's "% of the
//! floor" is measured against what the device can move, not against another slow reduction.
//!
//! Three variants, each timed on its own (best of N) by [`probe`]:
//! - [`Variant::StridedRead`]: a grid-stride loop, each unit summing vectors `unit, unit + U,
//!   unit + 2U, …` (`U` units in all) into a register and writing one vector: bytes read
//!   `len·4`, written `U·4·width`;
//! - [`Variant::UnrolledRead`]: no loop at all, each unit summing [`UNROLL`] vectors
//!   `k·U + unit` (unrolled), written as one vector: on lavapipe a load inside a loop runs as a
//!   scalar loop over the SIMD lanes, a load outside control flow does not;
//! - [`Variant::Copy`]: one vector read and one written per unit (read + write traffic).
//!
//! Every variant's bytes are what it reads plus what it writes. The plain-Rust reference is the
//! f64 sum of the input ([`reference_sum`]); [`sum`] checks each variant against it.

use cubecl::prelude::*;

use crate::KernelError;
use crate::launch::{grid_1d, vector_size_dividing};

/// Vectors each unit of [`Variant::UnrolledRead`] reads.
pub const UNROLL: usize = 8;

/// Units per cube of every variant.
pub const CUBE: usize = 256;

/// The probe's variants (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Grid-stride loop, read-only.
    StridedRead,
    /// [`UNROLL`] vectors per unit, no loop, read-only.
    UnrolledRead,
    /// One vector read and written per unit.
    Copy,
}

impl Variant {
    /// All variants, in the order [`probe`] reports them.
    pub const ALL: [Variant; 3] = [Variant::StridedRead, Variant::UnrolledRead, Variant::Copy];

    /// Short name (`strided-read`, `unrolled-read`, `copy`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::StridedRead => "strided-read",
            Variant::UnrolledRead => "unrolled-read",
            Variant::Copy => "copy",
        }
    }
}

/// Grid-stride read: unit `u` of `units` sums vectors `u, u + units, …` below `vecs` into
/// `partial[u]`.
#[cube(launch_unchecked)]
fn strided_read_kernel<N: Size>(
    input: &Array<Vector<f32, N>>,
    partial: &mut Array<Vector<f32, N>>,
    vecs: u32,
    units: u32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let unit = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if unit >= units as usize {
        terminate!();
    }
    let mut acc = Vector::<f32, N>::new(0.0);
    let mut i = unit;
    while i < vecs as usize {
        acc += input[i];
        i += units as usize;
    }
    partial[unit] = acc;
}

/// Unrolled read: unit `u` of `units` sums vectors `k·units + u`, `k < UNROLL`, into
/// `partial[u]`. Requires `vecs = UNROLL·units`.
#[cube(launch_unchecked)]
fn unrolled_read_kernel<N: Size>(
    input: &Array<Vector<f32, N>>,
    partial: &mut Array<Vector<f32, N>>,
    units: u32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let unit = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if unit >= units as usize {
        terminate!();
    }
    let stride = units as usize;
    let mut acc = input[unit];
    #[unroll]
    for k in 1..UNROLL {
        acc += input[k * stride + unit];
    }
    partial[unit] = acc;
}

/// Copy: `out[i] = input[i]` for every vector `i < vecs`, one per unit.
#[cube(launch_unchecked)]
fn copy_kernel<N: Size>(input: &Array<Vector<f32, N>>, out: &mut Array<Vector<f32, N>>, vecs: u32) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let i = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if i >= vecs as usize {
        terminate!();
    }
    out[i] = input[i];
}

/// The launch plan of `variant` over `len` f32 on `client`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The variant.
    pub variant: Variant,
    /// f32 per vector load.
    pub width: usize,
    /// Vectors of the input.
    pub vecs: usize,
    /// Units launched (= vectors written).
    pub units: usize,
}

impl Plan {
    /// Plans `variant` over `len` f32. [`Variant::UnrolledRead`] needs `len` to be a multiple
    /// of `UNROLL · width`; the strided read runs at most `max_units` units (the grid the
    /// device fills; at least one).
    pub fn new<R: Runtime>(
        client: &ComputeClient<R>,
        variant: Variant,
        len: usize,
        max_units: usize,
    ) -> Result<Self, KernelError> {
        if len == 0 {
            return Err(KernelError::EmptyDimension {
                what: "probe length",
            });
        }
        let width = vector_size_dividing(client, 4, len);
        let vecs = len / width;
        let units = match variant {
            Variant::StridedRead => vecs.min(max_units.max(1)),
            Variant::UnrolledRead => {
                if !vecs.is_multiple_of(UNROLL) {
                    return Err(KernelError::InvalidSetting {
                        what: "unrolled-read length (f32)",
                        value: len.to_string(),
                        expected: "a multiple of UNROLL vectors of the device's load width",
                    });
                }
                vecs / UNROLL
            }
            Variant::Copy => vecs,
        };
        Ok(Self {
            variant,
            width,
            vecs,
            units,
        })
    }

    /// Bytes moved: the input read once, plus the vectors written.
    pub fn bytes(&self) -> u64 {
        ((self.vecs + self.units) * self.width * 4) as u64
    }

    /// Launches the variant on `input` (`vecs·width` f32) into `out` (`units·width` f32).
    pub fn launch<R: Runtime>(
        &self,
        client: &ComputeClient<R>,
        input: cubecl::server::Handle,
        out: cubecl::server::Handle,
    ) {
        let count = grid_1d(client, self.units.div_ceil(CUBE));
        let dim = CubeDim::new_1d(CUBE as u32);
        let (vecs, units) = (self.vecs, self.units);
        // SAFETY: `input` holds `vecs` vectors and `out` `units` vectors (the caller allocates
        // them from this plan); every kernel bounds its unit index by `units` (copy: `vecs`,
        // equal to `units`) and, for the unrolled read, `vecs = UNROLL·units` by construction.
        unsafe {
            let input = ArrayArg::from_raw_parts(input, vecs);
            let out = ArrayArg::from_raw_parts(out, units);
            match self.variant {
                Variant::StridedRead => strided_read_kernel::launch_unchecked::<R>(
                    client,
                    count,
                    dim,
                    self.width,
                    input,
                    out,
                    vecs as u32,
                    units as u32,
                ),
                Variant::UnrolledRead => unrolled_read_kernel::launch_unchecked::<R>(
                    client,
                    count,
                    dim,
                    self.width,
                    input,
                    out,
                    units as u32,
                ),
                Variant::Copy => copy_kernel::launch_unchecked::<R>(
                    client,
                    count,
                    dim,
                    self.width,
                    input,
                    out,
                    vecs as u32,
                ),
            }
        }
    }
}

/// The plain-Rust reference: the f64 sum of `data`.
pub fn reference_sum(data: &[f32]) -> f64 {
    data.iter().map(|&x| x as f64).sum()
}

/// Runs `variant` over `data` on `client` and returns what it computed, summed on the host in
/// f64: the sum of `data` for the reads, the sum of the copy for [`Variant::Copy`]. The check of
/// each variant against [`reference_sum`].
pub fn sum<R: Runtime>(
    client: &ComputeClient<R>,
    variant: Variant,
    data: &[f32],
    max_units: usize,
) -> Result<f64, KernelError> {
    let plan = Plan::new(client, variant, data.len(), max_units)?;
    let input = client.create_from_slice(f32::as_bytes(data));
    let out = client.empty(plan.units * plan.width * 4);
    plan.launch(client, input, out.clone());
    Ok(reference_sum(&crate::testing::read_f32(client, out)))
}

/// One variant's measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The variant.
    pub variant: Variant,
    /// Bytes one pass moves ([`Plan::bytes`]).
    pub bytes: u64,
    /// Best time of one pass, ms.
    pub best_ms: f64,
}

impl Measurement {
    /// Achieved bandwidth, GB/s (10⁹ bytes per second).
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 / (self.best_ms * 1e-3) / 1e9
    }
}

/// Times every variant over `len` f32 (a seeded ramp, never read back in the timed region):
/// one untimed pass, then the best of `reps` passes, each ending with a device sync. The
/// strided read runs `max_units` units. Variants whose plan does not fit `len` are skipped.
pub fn probe<R: Runtime>(
    client: &ComputeClient<R>,
    len: usize,
    max_units: usize,
    reps: usize,
) -> Vec<Measurement> {
    let data: Vec<f32> = (0..len).map(|i| (i % 1021) as f32 * 1e-3).collect();
    let input = client.create_from_slice(f32::as_bytes(&data));
    drop(data);
    let mut out = Vec::new();
    for variant in Variant::ALL {
        let Ok(plan) = Plan::new(client, variant, len, max_units) else {
            continue;
        };
        let dst = client.empty(plan.units * plan.width * 4);
        let pass = || {
            let start = std::time::Instant::now();
            plan.launch(client, input.clone(), dst.clone());
            let _ = cubecl::future::block_on(client.sync());
            start.elapsed().as_secs_f64() * 1e3
        };
        pass(); // compilation stays outside the timing
        let best_ms = (0..reps.max(1))
            .map(|_| pass())
            .fold(f64::INFINITY, f64::min);
        out.push(Measurement {
            variant,
            bytes: plan.bytes(),
            best_ms,
        });
    }
    out
}

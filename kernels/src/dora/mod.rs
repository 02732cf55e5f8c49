//! LoRA and DoRA linear layers (arXiv 2402.09353) around the backend's own GEMM.
//!
//! With burn's `Linear` layout (weight `W0 [d_in, d_out]`, `y = x W0`), adapters `A [d_in, r]`,
//! `B [r, d_out]`, scaling `s = α / r` and one magnitude per output column `m [d_out]`:
//! - LoRA: `y = x W0 + s (x A) B`;
//! - DoRA: `V = W0 + s A B`, `c_j = ‖V[:, j]‖` (per output column), `g = m / max(c, ε)`,
//!   `W' = V ⊙ g` (column-wise), `y = x W' = (x W0 + s (x A) B) ⊙ g` (paper Eq. 5).
//!
//! Neither `A B` nor `W'` is materialised: [`column_norms`] computes `c` in one pass over `W0`
//! (recomputing each `(A B)[i, j]` from `r` products), one backend GEMM computes
//! `both = x [W0 | A]` (the base output and `x A` together: `r` more columns instead of a skinny
//! second GEMM), and [`epilogue`] fuses the low-rank term and the column scaling into one pass
//! over the output. Backward, with the norm detached (Sec. 4.3, Eq. 11):
//! `∂L/∂z = ∂L/∂y ⊙ g` and `∂L/∂g_j = Σ_t ∂L/∂y[t, j] z[t, j]` ([`epilogue_backward`]), then
//! GEMMs for `∂L/∂A`, `∂L/∂B` and `∂L/∂x = [∂L/∂z | ∂L/∂(xA)] [W0 | A]ᵀ` (one GEMM); `∂L/∂m = ∂L/∂g / max(c, ε)` equals Eq. 7.
//!
//! The plain-Rust references in this module (`*_reference`, f64, materialising `W'` and the
//! closed forms of Eqs. 6, 7 and 11) are what the kernel and op tests compare against.

pub mod kernel;
mod reference;
pub use reference::matmul as reference_matmul;
pub use reference::{Grads, HostAdapter};

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
use crate::gemm::{GemmTiling, unit_blocks};
use crate::launch::{cpu_like, cube_size_pow2, grid_1d, vector_size_dividing};

/// The floor of the column norm `c` in `g = m / max(c, ε)`: a zero column of `V` gives a finite
/// `g` (PEFT issue 2049 reports `inf` without one).
pub const NORM_EPS: f32 = 1e-6;

/// Units per cube along the columns in the chunked kernels.
const COLUMN_CUBE: usize = 64;
/// Rows per chunk in the chunked kernels (at least; more when there are over 1024 chunks).
const CHUNK_ROWS: usize = 16;
/// Rows per unit of the epilogue (at least).
const EPILOGUE_ROWS: usize = 16;
/// Units per cube of the per-column sums.
const ELEMENT_CUBE: usize = 256;

/// An adapter's geometry and strength: `W0 [d_in, d_out]`, rank `r`, `α` (`s = α / r`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdapterSpec {
    /// Input features (rows of `W0`).
    pub d_in: usize,
    /// Output features (columns of `W0`; one magnitude each).
    pub d_out: usize,
    /// The rank `r` of `A B`.
    pub rank: usize,
    /// LoRA's `α`; the update is scaled by `s = α / r`.
    pub alpha: f32,
}

impl AdapterSpec {
    /// Fails on an empty layer, `r = 0`, `r > min(d_in, d_out)` or `α ≤ 0` (or not finite).
    pub fn validate(&self) -> Result<(), KernelError> {
        if self.d_in == 0 {
            return Err(KernelError::EmptyDimension {
                what: "adapter input features d_in",
            });
        }
        if self.d_out == 0 {
            return Err(KernelError::EmptyDimension {
                what: "adapter output features d_out",
            });
        }
        if self.rank == 0 {
            return Err(KernelError::EmptyDimension {
                what: "adapter rank r",
            });
        }
        let max = self.d_in.min(self.d_out);
        if self.rank > max {
            return Err(KernelError::InvalidSetting {
                what: "adapter rank r",
                value: format!("{} (layer {}×{})", self.rank, self.d_in, self.d_out),
                expected: "1 ≤ r ≤ min(d_in, d_out): a larger rank adds parameters, not capacity",
            });
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(KernelError::InvalidSetting {
                what: "adapter α",
                value: self.alpha.to_string(),
                expected: "a finite value above 0 (the update is scaled by α / r)",
            });
        }
        Ok(())
    }

    /// `s = α / r`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// Checks the tensors' shapes against the spec: `W0 [d_in, d_out]`, `A [d_in, r]`,
    /// `B [r, d_out]`, `m [d_out]` (when given) and inputs `x [n, d_in]` (when given).
    pub fn check_shapes(
        &self,
        x: Option<[usize; 2]>,
        w0: [usize; 2],
        a: [usize; 2],
        b: [usize; 2],
        m: Option<[usize; 1]>,
    ) -> Result<(), KernelError> {
        self.validate()?;
        let expect = |what, want: Vec<usize>, got: Vec<usize>| {
            if want == got {
                Ok(())
            } else {
                Err(KernelError::ShapeMismatch {
                    what,
                    expected: want,
                    got,
                })
            }
        };
        expect(
            "base weight W0 [d_in, d_out]",
            vec![self.d_in, self.d_out],
            w0.to_vec(),
        )?;
        expect(
            "adapter A [d_in, r] (d_in from the base layer)",
            vec![self.d_in, self.rank],
            a.to_vec(),
        )?;
        expect(
            "adapter B [r, d_out] (d_out from the base layer)",
            vec![self.rank, self.d_out],
            b.to_vec(),
        )?;
        if let Some(m) = m {
            expect(
                "DoRA magnitude m [d_out] (one per output column)",
                vec![self.d_out],
                m.to_vec(),
            )?;
        }
        if let Some([n, d]) = x {
            if n == 0 {
                return Err(KernelError::EmptyDimension {
                    what: "number of input rows",
                });
            }
            if d != self.d_in {
                return Err(KernelError::ShapeMismatch {
                    what: "input x [n, d_in] vs the base layer's d_in",
                    expected: vec![n, self.d_in],
                    got: vec![n, d],
                });
            }
        }
        Ok(())
    }
}

/// The dimensions a launch needs (validated by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows of the left operand (`d_in` for the norms, tokens `n` for the epilogue).
    pub rows: usize,
    /// Output columns `d_out`.
    pub d_out: usize,
    /// Rank `r ≥ 1`.
    pub rank: usize,
}

/// The launch geometry of the (vector column block, row chunk) kernels.
struct Chunking {
    /// Columns per vector (divides `d_out`).
    width: usize,
    /// Vector columns `d_out / width`.
    d_vecs: usize,
    /// Rows per chunk.
    chunk_rows: usize,
    /// Number of chunks.
    chunks: usize,
    /// Vector columns per unit ([`column_unit_vecs`]).
    unit_vecs: usize,
    count: CubeCount,
    dim: CubeDim,
}

/// Vector columns per unit of the chunked kernels: 4 on CPU-like devices (lavapipe, where a
/// unit's loads of `A`'s or `xa`'s row then serve four vectors: at tokens 2048, d = 1024, r = 16
/// the epilogue's backward took 11.8 ms with one vector a unit and 6.5 ms with four, the column
/// norms 5.1 and 2.4 ms, in two runs of `dora_pieces_speed_wgpu` on the unfused backend), 1 on
/// GPUs (adjacent units on adjacent vectors, for coalesced rows).
fn column_unit_vecs<R: Runtime>(client: &ComputeClient<R>) -> usize {
    if cpu_like(client) { 4 } else { 1 }
}

/// The grid of the chunked kernels: x over blocks of units of `unit_vecs` vector columns, y over
/// the chunks.
fn chunk_grid<R: Runtime>(
    client: &ComputeClient<R>,
    d_vecs: usize,
    unit_vecs: usize,
    chunks: usize,
) -> (CubeCount, CubeDim) {
    let (blocks, cube) = unit_blocks(client, d_vecs.div_ceil(unit_vecs), COLUMN_CUBE);
    (
        CubeCount::Static(blocks, chunks as u32, 1),
        CubeDim::new_1d(cube),
    )
}

/// Chunks of at least `min_rows` rows (at most 1024 chunks), vectors as wide as the device loads
/// efficiently that divide `d_out`.
fn chunking<R: Runtime>(
    client: &ComputeClient<R>,
    rows: usize,
    d_out: usize,
    min_rows: usize,
) -> Chunking {
    let width = vector_size_dividing(client, 4, d_out);
    let d_vecs = d_out / width;
    let chunk_rows = min_rows.max(rows.div_ceil(1024));
    let chunks = rows.div_ceil(chunk_rows).max(1);
    let unit_vecs = column_unit_vecs(client);
    let (count, dim) = chunk_grid(client, d_vecs, unit_vecs, chunks);
    Chunking {
        width,
        d_vecs,
        chunk_rows,
        chunks,
        unit_vecs,
        count,
        dim,
    }
}

fn sum_partials<R: Runtime>(
    client: &ComputeClient<R>,
    partials: Handle,
    chunks: usize,
    d_out: usize,
    sqrt: bool,
) -> Handle {
    let out = client.empty(d_out * 4);
    let cube = cube_size_pow2(client, ELEMENT_CUBE.min(d_out.next_power_of_two()));
    // SAFETY: partials holds chunks·d_out f32, out d_out.
    unsafe {
        kernel::sum_partials_kernel::launch_unchecked::<R>(
            client,
            grid_1d(client, d_out.div_ceil(cube)),
            CubeDim::new_1d(cube as u32),
            ArrayArg::from_raw_parts(partials, chunks * d_out),
            ArrayArg::from_raw_parts(out.clone(), d_out),
            chunks as u32,
            d_out as u32,
            sqrt,
        );
    }
    out
}

/// Column norms `c [d_out]` of `V = W0 + s·A·B` (`W0 [d_in, d_out]`, `A [d_in, r]`, `B [r,
/// d_out]`, `dims.rows = d_in`), without the floor. Two launches (chunked partial sums of squares,
/// then their sum and square root); `V` is never stored.
pub fn column_norms<R: Runtime>(
    client: &ComputeClient<R>,
    dims: Dims,
    w0: Handle,
    a: Handle,
    b: Handle,
    scale: f32,
) -> Handle {
    let Dims { rows, d_out, rank } = dims;
    let c = chunking(client, rows, d_out, CHUNK_ROWS);
    let partials = client.empty(c.chunks * d_out * 4);
    // SAFETY: w0 holds rows·d_out, a rows·rank, b rank·d_out f32 (caller's contract); the vector
    // width divides d_out.
    unsafe {
        kernel::column_sq_partials_kernel::launch_unchecked::<R>(
            client,
            c.count,
            c.dim,
            c.width,
            ArrayArg::from_raw_parts(w0, rows * c.d_vecs),
            ArrayArg::from_raw_parts(a, rows * rank),
            ArrayArg::from_raw_parts(b, rank * c.d_vecs),
            ArrayArg::from_raw_parts(partials.clone(), c.chunks * c.d_vecs),
            rows as u32,
            c.d_vecs as u32,
            c.chunk_rows as u32,
            scale,
            rank,
            c.unit_vecs,
        );
    }
    sum_partials(client, partials, c.chunks, d_out, true)
}

/// `gcd(a, b)`.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The geometry of a kernel reading `both [rows, d_out + r]`: vectors dividing `d_out` and the
/// row length `d_out + r`.
fn both_chunking<R: Runtime>(
    client: &ComputeClient<R>,
    dims: Dims,
    min_rows: usize,
) -> (Chunking, usize, usize) {
    let Dims { rows, d_out, rank } = dims;
    let row_len = d_out + rank;
    let mut c = chunking(client, rows, gcd(d_out, row_len), min_rows);
    // `chunking` sized the vector for gcd(d_out, d_out + r); the columns are d_out.
    c.d_vecs = d_out / c.width;
    (c.count, c.dim) = chunk_grid(client, c.d_vecs, c.unit_vecs, c.chunks);
    let row_vecs = row_len / c.width;
    (c, row_vecs, row_len)
}

/// The epilogue after the one GEMM `both = x·[W0 | A]` (`[n, d_out + r]`, `dims.rows = n`):
/// `out [n, d_out] = (base + s·xa·B) ⊙ g` (`g [d_out]` per column; `base`, `xa` the two column
/// blocks of `both`) or, with `g = None`, `base + s·xa·B`. One launch.
pub fn epilogue<R: Runtime>(
    client: &ComputeClient<R>,
    dims: Dims,
    both: Handle,
    b: Handle,
    g: Option<Handle>,
    scale: f32,
) -> Handle {
    let Dims { rows, d_out, rank } = dims;
    let scaled = g.is_some();
    // LoRA: the kernel never reads g; bind B in its place.
    let g = g.unwrap_or_else(|| b.clone());
    let g_len = if scaled { d_out } else { rank * d_out };
    let out = client.empty(rows * d_out * 4);
    let (c, row_vecs, row_len) = both_chunking(client, dims, EPILOGUE_ROWS);
    let v = |len: usize| len / c.width;
    // SAFETY: both holds n·(d_out + r), b r·d_out, g d_out (or stands in unread) f32; the vector
    // width divides d_out and d_out + r.
    unsafe {
        kernel::epilogue_kernel::launch_unchecked::<R>(
            client,
            c.count,
            c.dim,
            c.width,
            ArrayArg::from_raw_parts(both.clone(), v(rows * row_len)),
            ArrayArg::from_raw_parts(both, rows * row_len),
            ArrayArg::from_raw_parts(b, v(rank * d_out)),
            ArrayArg::from_raw_parts(g, v(g_len)),
            ArrayArg::from_raw_parts(out.clone(), v(rows * d_out)),
            rows as u32,
            c.d_vecs as u32,
            row_vecs as u32,
            row_len as u32,
            d_out as u32,
            c.chunk_rows as u32,
            scale,
            rank,
            scaled,
            c.unit_vecs,
        );
    }
    out
}

/// The DoRA epilogue's backward: `(dbase [n, d_out] = dy ⊙ g, dg [d_out] = Σ_t dy ⊙ z)` with
/// `z = base + s·xa·B` recomputed from `both [n, d_out + r]`. Two launches.
pub fn epilogue_backward<R: Runtime>(
    client: &ComputeClient<R>,
    dims: Dims,
    dy: Handle,
    both: Handle,
    b: Handle,
    g: Handle,
    scale: f32,
) -> (Handle, Handle) {
    let Dims { rows, d_out, rank } = dims;
    let len = rows * d_out;
    let (c, row_vecs, row_len) = both_chunking(client, dims, CHUNK_ROWS);
    let dbase = client.empty(len * 4);
    let partials = client.empty(c.chunks * d_out * 4);
    let v = |len: usize| len / c.width;
    // SAFETY: dy holds n·d_out, both n·(d_out + r), b r·d_out, g d_out f32 (caller's contract);
    // the vector width divides d_out and d_out + r.
    unsafe {
        kernel::epilogue_backward_kernel::launch_unchecked::<R>(
            client,
            c.count,
            c.dim,
            c.width,
            ArrayArg::from_raw_parts(dy, v(len)),
            ArrayArg::from_raw_parts(both.clone(), v(rows * row_len)),
            ArrayArg::from_raw_parts(both, rows * row_len),
            ArrayArg::from_raw_parts(b, v(rank * d_out)),
            ArrayArg::from_raw_parts(g, v(d_out)),
            ArrayArg::from_raw_parts(dbase.clone(), v(len)),
            ArrayArg::from_raw_parts(partials.clone(), v(c.chunks * d_out)),
            rows as u32,
            c.d_vecs as u32,
            row_vecs as u32,
            row_len as u32,
            d_out as u32,
            c.chunk_rows as u32,
            scale,
            rank,
            c.unit_vecs,
        );
    }
    let dg = sum_partials(client, partials, c.chunks, d_out, false);
    (dbase, dg)
}

/// The tiling of the main launch of [`adapted_matmul`]: the CPU tiling of the shared GEMM loop
/// ([`crate::gemm::CPU_TILING`], where the measurements are).
pub const ADAPTED_MAIN: GemmTiling = crate::gemm::CPU_TILING;
/// The tiling of the thin `x A` launch of [`adapted_matmul`] (`r` columns): one vector a unit,
/// all units of a cube on the same rows. In the same probe run (r = 16) it took 5.3 ms; 32 × 2
/// units in 2 × 4 cubes 5.4 ms, 64 × 1 5.8 ms, 32 × 4 in 1 × 8 cubes 7.0 ms, 16 × 4 in 1 × 8
/// 8.1 ms, 8 × 4 in 1 × 16 9.3 ms (loads the whole cube shares are cheaper on lavapipe).
pub const ADAPTED_THIN: GemmTiling = GemmTiling {
    cube_x: 16,
    cube_y: 1,
    unit_rows: 32,
    unit_vecs: 1,
};

/// Whether the adapted layers run [`adapted_matmul`] (their own GEMM, with the low-rank term and
/// the column scaling applied in registers) rather than the backend's GEMM and [`epilogue`]:
/// on CPU-like devices ([`cpu_like`]: software Vulkan), where it is faster than burn's GEMM and
/// a separate epilogue pass costs a second trip over the output. GPUs keep the backend's GEMM
/// (tensor-core tiling this kernel does not have).
pub fn fused_gemm<R: Runtime>(client: &ComputeClient<R>) -> bool {
    cpu_like(client)
}

/// The grid of an [`adapted_matmul`] launch over `rows` rows and `col_vecs` vector columns.
fn adapted_grid<R: Runtime>(
    client: &ComputeClient<R>,
    rows: usize,
    col_vecs: usize,
    tiling: GemmTiling,
) -> (CubeCount, CubeDim) {
    let (blocks, cube_x) = unit_blocks(
        client,
        col_vecs.div_ceil(tiling.unit_vecs),
        tiling.cube_x as usize,
    );
    (
        CubeCount::Static(blocks, rows.div_ceil(tiling.tile_rows()) as u32, 1),
        CubeDim::new_2d(cube_x, tiling.cube_y),
    )
}

/// The bare product `y = x·W0` (`x [rows, d_in]`, `W0 [d_in, d_out]`, `y [rows, d_out]`) by the
/// main launch of [`adapted_matmul`] at rank 0: the GEMM the adapted layers run on CPU-like
/// devices, without the adapter (tiling [`ADAPTED_MAIN`]; correct anywhere, tuned for lavapipe).
/// The peak probe times it beside burn's matmul, so that the practical FLOP rate it records is
/// the best this suite reaches on the device.
pub fn base_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    rows: usize,
    d_in: usize,
    d_out: usize,
    x: Handle,
    w0: Handle,
) -> Handle {
    let dims = Dims {
        rows,
        d_out,
        rank: 0,
    };
    // Rank 0: `A` and `B` are never read; `W0` stands in for both.
    adapted_matmul(
        client,
        dims,
        d_in,
        x,
        w0.clone(),
        w0.clone(),
        w0,
        None,
        1.0,
        false,
    )
    .0
}

/// The adapted layer in two launches, `A B` and `W'` never formed: `xa = x A` (`[n, r]`), then
/// `y = (x W0 + s·xa·B) ⊙ g` (`g = None`: LoRA, no `⊙ g`), with `x W0` computed once, in
/// registers. Returns `y [n, d_out]` and, with `keep_both`, `both [n, d_out + r] = [x W0 | x A]`
/// as the backend-GEMM path produces it (what the backward reads). `x [n, d_in]`, `W0 [d_in, d_out]`,
/// `A [d_in, r]`, `B [r, d_out]`, `g [d_out]`; `dims.rows = n`. At `dims.rank = 0` it is the
/// bare `x W0` in one launch ([`base_matmul`]): `A` and `B` are not read (any buffers of at least
/// one vector stand in).
#[allow(clippy::too_many_arguments)]
pub fn adapted_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dims: Dims,
    d_in: usize,
    x: Handle,
    w0: Handle,
    a: Handle,
    b: Handle,
    g: Option<Handle>,
    scale: f32,
    keep_both: bool,
) -> (Handle, Option<Handle>) {
    let Dims { rows, d_out, rank } = dims;
    let row_len = d_out + rank;
    // One vector width for both launches: it divides r, d_out and so d_out + r.
    let width = vector_size_dividing(client, 4, gcd(d_out, rank));
    let v = |len: usize| len / width;
    // At rank 0 (the bare product) there is no `x A`: `x` stands in for it, unread.
    let (xa, xa_len) = if rank > 0 {
        (client.empty(rows * rank * 4), rows * rank)
    } else {
        (x.clone(), 1)
    };
    // Without `keep_both` the kernels never write `both`: a one-vector stand-in is bound.
    let both = client.empty(if keep_both {
        rows * row_len * 4
    } else {
        width * 4
    });
    let both_len = if keep_both { v(rows * row_len) } else { 1 };
    let y = client.empty(rows * d_out * 4);
    let quads = d_in.is_multiple_of(4);
    let x4_len = (rows * d_in / 4).max(1);
    // `x A` with the same vectors: scalar columns (to fill a cube with r = 16 units) took 21 ms
    // at the benchmark's shape on lavapipe, 4-wide ones 13 ms.
    let thin = width;
    let geometry = |cols: usize, width: usize, tiling: GemmTiling| {
        adapted_grid(client, rows, cols / width, tiling)
    };
    let (count, dim) = geometry(rank, thin, ADAPTED_THIN);
    let t = |len: usize| len / thin;
    let thin_both_len = if keep_both { t(rows * row_len) } else { 1 };
    // SAFETY: x holds n·d_in, a d_in·r f32; xa n·r and both n·(d_out + r) are written in range
    // (the width divides r and d_out); x4 is read only when 4 divides d_in; rank 0 leaves the
    // stand-ins for xa, B and g (bound to a) unread.
    if rank > 0 {
        unsafe {
            kernel::adapted_matmul_kernel::launch_unchecked::<R>(
                client,
                count,
                dim,
                thin,
                ArrayArg::from_raw_parts(x.clone(), rows * d_in),
                ArrayArg::from_raw_parts(x.clone(), x4_len),
                ArrayArg::from_raw_parts(a.clone(), t(d_in * rank)),
                ArrayArg::from_raw_parts(a.clone(), d_in * rank),
                ArrayArg::from_raw_parts(a.clone(), (d_in * rank / 4).max(1)),
                ArrayArg::from_raw_parts(a.clone(), t(d_in * rank)),
                ArrayArg::from_raw_parts(a, t(d_in * rank)),
                ArrayArg::from_raw_parts(xa.clone(), t(rows * rank)),
                ArrayArg::from_raw_parts(both.clone(), thin_both_len),
                rows as u32,
                d_in as u32,
                t(rank) as u32,
                t(row_len) as u32,
                t(d_out) as u32,
                scale,
                ADAPTED_THIN.unit_rows,
                ADAPTED_THIN.unit_vecs,
                0,
                false,
                quads,
                false,
                keep_both,
            );
        }
    }
    let scaled = g.is_some();
    // LoRA: the kernel never reads g; bind B in its place.
    let g = g.unwrap_or_else(|| b.clone());
    let g_len = if scaled {
        d_out
    } else {
        (rank * d_out).max(width)
    };
    let (count, dim) = geometry(d_out, width, ADAPTED_MAIN);
    // SAFETY: x holds n·d_in, w0 d_in·d_out, xa n·r, b r·d_out, g d_out (or stands in unread) f32;
    // y n·d_out and both n·(d_out + r) are written in range (the width divides d_out and r); at
    // rank 0 xa, B and g are unread stand-ins bound at one vector or more.
    unsafe {
        kernel::adapted_matmul_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            width,
            ArrayArg::from_raw_parts(x.clone(), rows * d_in),
            ArrayArg::from_raw_parts(x, x4_len),
            ArrayArg::from_raw_parts(w0, v(d_in * d_out)),
            ArrayArg::from_raw_parts(xa.clone(), xa_len),
            ArrayArg::from_raw_parts(xa, (xa_len / 4).max(1)),
            ArrayArg::from_raw_parts(b, v((rank * d_out).max(width))),
            ArrayArg::from_raw_parts(g, v(g_len)),
            ArrayArg::from_raw_parts(y.clone(), v(rows * d_out)),
            ArrayArg::from_raw_parts(both.clone(), both_len),
            rows as u32,
            d_in as u32,
            v(d_out) as u32,
            v(row_len) as u32,
            0,
            scale,
            ADAPTED_MAIN.unit_rows,
            ADAPTED_MAIN.unit_vecs,
            rank,
            scaled,
            quads,
            rank.is_multiple_of(4),
            keep_both,
        );
    }
    (y, keep_both.then_some(both))
}

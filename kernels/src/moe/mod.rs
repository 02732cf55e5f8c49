//! Sparse mixture-of-experts pieces (Mixtral, arXiv 2401.04088, Sec. 2.1): the router, the
//! dispatch that groups token–expert assignments by expert, the grouped SwiGLU experts and the
//! weighted combine, each with a plain-Rust reference.
//!
//! # Shapes (burn's row-major layout)
//! - tokens `x [n, d]`, router logits `[n, E]`;
//! - routing: `ids [n, k]` (expert of each slot, descending weight, ties → lower expert id) and
//!   `weights [n, k]`, `weights[t, j] = softmax(logits[t])[ids[t, j]] / Σ_j' softmax(..)[ids[t, j']]`
//!   (HF's softmax → top-k → renormalise, which equals the paper's `Softmax(TopK(x·W_g))`);
//! - experts: `w13 [E, d, 2h]` (columns `0..h` are `W1`, the gate; `h..2h` are `W3`, the up
//!   projection), `w2 [E, h, d]`; expert `e` maps a row `x` to
//!   `SwiGLU_e(x) = (silu(x W1_e) ⊙ (x W3_e)) W2_e` (the paper's `W2·(silu(W1 x) ⊙ W3 x)`);
//! - output `y [n, d]`, `y_t = Σ_j weights[t, j] · SwiGLU_{ids[t, j]}(x_t)`.

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
pub use crate::gemm::GemmTiling;
use crate::gemm::unit_blocks;
use crate::launch::{cpu_like, cube_size_pow2, grid_1d, vector_size_dividing};

pub mod kernel;

/// The sizes of one MoE layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeSpec {
    /// Experts `E`.
    pub experts: usize,
    /// Experts per token `k` (`1 ≤ k ≤ E`).
    pub top_k: usize,
    /// Model width `d`.
    pub d_model: usize,
    /// Expert hidden width `h`.
    pub hidden: usize,
}

impl MoeSpec {
    /// Refuses `E = 0`, `k = 0`, `k > E`, `d = 0` and `h = 0`, naming the value.
    pub fn validate(&self) -> Result<(), KernelError> {
        for (what, v) in [
            ("number of experts", self.experts),
            ("top-k", self.top_k),
            ("model width", self.d_model),
            ("expert hidden width", self.hidden),
        ] {
            if v == 0 {
                return Err(KernelError::EmptyDimension { what });
            }
        }
        if self.top_k > self.experts {
            return Err(KernelError::InvalidSetting {
                what: "top-k",
                value: format!("{} with {} experts", self.top_k, self.experts),
                expected: "1 ≤ top-k ≤ number of experts",
            });
        }
        Ok(())
    }

    /// Checks `x [n, d]`, router `[d, E]`, `w13 [E, d, 2h]`, `w2 [E, h, d]` against the spec.
    pub fn check_shapes(
        &self,
        x: Option<[usize; 2]>,
        router: Option<[usize; 2]>,
        w13: [usize; 3],
        w2: [usize; 3],
    ) -> Result<(), KernelError> {
        self.validate()?;
        let (e, d, h) = (self.experts, self.d_model, self.hidden);
        let mismatch = |what, expected: Vec<usize>, got: Vec<usize>| {
            if expected == got {
                Ok(())
            } else {
                Err(KernelError::ShapeMismatch {
                    what,
                    expected,
                    got,
                })
            }
        };
        if let Some(x) = x {
            mismatch("tokens x [n, d]: width", vec![d], vec![x[1]])?;
            if x[0] == 0 {
                return Err(KernelError::EmptyDimension {
                    what: "number of tokens",
                });
            }
        }
        if let Some(r) = router {
            mismatch("router weight [d, E]", vec![d, e], r.to_vec())?;
        }
        mismatch(
            "expert weights w13 [E, d, 2h]",
            vec![e, d, 2 * h],
            w13.to_vec(),
        )?;
        mismatch("expert weights w2 [E, h, d]", vec![e, h, d], w2.to_vec())
    }
}

/// The top-`k` experts of one row of logits: `(ids, renormalised weights, full softmax)`.
///
/// Ids are ordered by descending probability, ties going to the lower expert id; the softmax is
/// computed in f64 from the max-shifted logits.
pub fn route_reference(logits: &[f32], top_k: usize) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    let probs: Vec<f64> = exps.iter().map(|e| e / total).collect();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Stable sort on the f32 logits (the kernels compare logits, softmax is monotone).
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let ids: Vec<usize> = order[..top_k].to_vec();
    let kept: f64 = ids.iter().map(|&i| probs[i]).sum();
    let weights = ids.iter().map(|&i| probs[i] / kept).collect();
    (ids, weights, probs)
}

/// `silu(a) = a·σ(a)`.
pub fn silu(a: f64) -> f64 {
    a / (1.0 + (-a).exp())
}

/// One expert on one row, in f64: `(silu(x W1) ⊙ (x W3)) W2` with `w13 [d, 2h]`, `w2 [h, d]`
/// (expert `e`'s slices, row-major).
pub fn swiglu_reference(x: &[f32], w13: &[f32], w2: &[f32], hidden: usize) -> Vec<f64> {
    let d = x.len();
    let mut act = vec![0.0f64; hidden];
    for (j, a) in act.iter_mut().enumerate() {
        let (mut g, mut u) = (0.0f64, 0.0f64);
        for (i, &xi) in x.iter().enumerate() {
            g += xi as f64 * w13[i * 2 * hidden + j] as f64;
            u += xi as f64 * w13[i * 2 * hidden + hidden + j] as f64;
        }
        *a = silu(g) * u;
    }
    (0..d)
        .map(|c| {
            act.iter()
                .enumerate()
                .map(|(j, a)| a * w2[j * d + c] as f64)
                .sum()
        })
        .collect()
}

/// The whole layer in f64 on the host: `x [n, d]` row-major, `logits [n, E]`, `w13 [E, d, 2h]`,
/// `w2 [E, h, d]`; returns `y [n, d]` and the routing ids `[n, k]`.
pub fn moe_reference(
    spec: &MoeSpec,
    x: &[f32],
    logits: &[f32],
    w13: &[f32],
    w2: &[f32],
) -> (Vec<f64>, Vec<usize>) {
    let (e, d, h, k) = (spec.experts, spec.d_model, spec.hidden, spec.top_k);
    let n = x.len() / d;
    let mut y = vec![0.0f64; n * d];
    let mut all_ids = Vec::with_capacity(n * k);
    for t in 0..n {
        let (ids, weights, _) = route_reference(&logits[t * e..(t + 1) * e], k);
        for (&ex, &w) in ids.iter().zip(&weights) {
            let out = swiglu_reference(
                &x[t * d..(t + 1) * d],
                &w13[ex * d * 2 * h..(ex + 1) * d * 2 * h],
                &w2[ex * h * d..(ex + 1) * h * d],
                h,
            );
            for (yc, o) in y[t * d..(t + 1) * d].iter_mut().zip(out) {
                *yc += w * o;
            }
        }
        all_ids.extend(ids);
    }
    (y, all_ids)
}

/// The sizes of one MoE call: `tokens` rows of width `d_model`, `experts`, `top_k`, `hidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeDims {
    /// Tokens `n`.
    pub tokens: usize,
    /// Experts `E`.
    pub experts: usize,
    /// Experts per token `k`.
    pub top_k: usize,
    /// Width `d`.
    pub d_model: usize,
    /// Expert hidden width `h`.
    pub hidden: usize,
}

impl MoeDims {
    /// Token–expert assignments `m = n·k` (the grouped rows).
    pub fn assignments(&self) -> usize {
        self.tokens * self.top_k
    }
}

/// The router's outputs (device buffers): `probs [n, E]`, `weights [n, k]` f32, `ids [n, k]` i32.
#[derive(Debug, Clone)]
pub struct Routing {
    /// Full softmax.
    pub probs: Handle,
    /// Renormalised top-k weights.
    pub weights: Handle,
    /// Chosen experts, descending weight.
    pub ids: Handle,
}

/// The dispatch (device buffers, u32): `offsets [E + 1]` (group starts; `offsets[e + 1] −
/// offsets[e]` is expert `e`'s token count, the histogram), `assign [m]` (grouped row → assignment
/// `t·k + j`, stable: ascending within a group) and `inverse [m]` (assignment → grouped row).
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Group starts.
    pub offsets: Handle,
    /// Grouped row → assignment.
    pub assign: Handle,
    /// Assignment → grouped row.
    pub inverse: Handle,
}

/// What the experts' forward keeps for the backward: `hpre [m, 2h]` (`x W1 | x W3` in grouped
/// order), `act [m, h]` and the expert outputs `out [m, d]`.
#[derive(Debug, Clone)]
pub struct ExpertsSaved {
    /// Pre-activations.
    pub hpre: Handle,
    /// Gated activations.
    pub act: Handle,
    /// Expert outputs before weighting.
    pub out: Handle,
}

/// Gradients of the experts' op: `dx [n, d]`, `dweights [n, k]`, `dw13 [E, d, 2h]`, `dw2 [E, h, d]`.
#[derive(Debug, Clone)]
pub struct ExpertsGrads {
    /// Input gradient.
    pub dx: Handle,
    /// Routing-weight gradient.
    pub dweights: Handle,
    /// Up-projection gradient.
    pub dw13: Handle,
    /// Down-projection gradient.
    pub dw2: Handle,
}

/// Units per cube of the elementwise kernels.
const ELEMENTWISE_CUBE: usize = 256;
/// Assignments per dispatch chunk (one cube each).
const DISPATCH_CHUNK: usize = 256;
/// The grouped GEMM's tiling on devices without plane (subgroup) operations, i.e. software
/// Vulkan on the CPU (lavapipe), where every load is paid per lane: 16 units of 32 rows × 4
/// vectors of columns each (a 32-row tile per cube; see [`crate::gemm::accumulate_rows`] for why
/// a unit holds several column vectors, and [`crate::gemm::CPU_TILING`] for the figures of the
/// same loop at DoRA's shape). Measured, with one vector a unit, there at tokens 2048, d 512, h 1024, E 8, top-2: the
/// gathered up-projection took 9.3 s with 16 × 4 units of 4 rows, 7.5 s with 16 × 2 of 8,
/// 6.4 s with 16 × 1 of 16 and 5.9 s with 16 × 1 of 32; reading `a` four inner steps at a time
/// ([`quad_loads`]) took the experts' forward from 9.0 s to 7.9 s and their backward from 17.7 s
/// to 16.2 s (64 rows a unit then changed neither beyond noise).
pub const GEMM_CPU: GemmTiling = crate::gemm::CPU_TILING;
/// The grouped GEMM's tiling on GPUs: 16 × 16 units of 4 rows (a 64-row tile per cube).
pub const GEMM_GPU: GemmTiling = GemmTiling {
    cube_x: 16,
    cube_y: 16,
    unit_rows: 4,
    unit_vecs: 1,
};
/// The weight-gradient kernel: 64 units along the columns.
const WGRAD_CUBE: u32 = 64;

/// The grouped GEMM's tiling for the client's device ([`GEMM_CPU`] or [`GEMM_GPU`]).
pub fn gemm_tiling<R: Runtime>(client: &ComputeClient<R>) -> GemmTiling {
    if cpu_like(client) { GEMM_CPU } else { GEMM_GPU }
}

/// Whether the grouped GEMMs read their left operand four inner steps at a time: on CPU-like
/// devices (where every load is paid per lane, so four steps per load cut the loads of `a`
/// fourfold) when `4 | inner`.
fn quad_loads<R: Runtime>(client: &ComputeClient<R>, inner: usize) -> bool {
    cpu_like(client) && inner.is_multiple_of(4)
}

/// Inner rows per unit of the weight-gradient kernel: 64 on CPU-like devices, 4 on GPUs. At the
/// benchmark shape on lavapipe `dw2` took 6.1 s at 4, 3.4 s at 16 and 2.7 s at 32; with
/// [`quad_loads`], 2.47 s at 32 and 2.33 s at 64 (`dw13`: 5.45 s and 4.71 s).
fn wgrad_rows<R: Runtime>(client: &ComputeClient<R>) -> usize {
    if cpu_like(client) { 64 } else { 4 }
}

/// Launch geometry of a one-unit-per-item kernel over `items`.
fn elementwise<R: Runtime>(client: &ComputeClient<R>, items: usize) -> (CubeCount, CubeDim) {
    let cube = cube_size_pow2(client, ELEMENTWISE_CUBE);
    (
        grid_1d(client, items.div_ceil(cube)),
        CubeDim::new_1d(cube as u32),
    )
}

/// Router: softmax, top-k (ties → lower id), renormalised weights. `logits [n, E]` f32.
pub fn route<R: Runtime>(client: &ComputeClient<R>, dims: MoeDims, logits: Handle) -> Routing {
    let (n, e, k) = (dims.tokens, dims.experts, dims.top_k);
    let probs = client.empty(n * e * 4);
    let weights = client.empty(n * k * 4);
    let ids = client.empty(n * k * 4);
    let (count, dim) = elementwise(client, n);
    // SAFETY: logits holds n·E f32; outputs sized above.
    unsafe {
        kernel::route_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(logits, n * e),
            ArrayArg::from_raw_parts(probs.clone(), n * e),
            ArrayArg::from_raw_parts(weights.clone(), n * k),
            ArrayArg::from_raw_parts(ids.clone(), n * k),
            n as u32,
            e as u32,
            k,
        );
    }
    Routing {
        probs,
        weights,
        ids,
    }
}

/// The router's backward: `∂L/∂logits [n, E]` from `∂L/∂weights [n, k]` and, if given,
/// `∂L/∂probs [n, E]`.
pub fn route_backward<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    routing: &Routing,
    dprobs: Option<Handle>,
    dweights: Handle,
) -> Handle {
    let (n, e, k) = (dims.tokens, dims.experts, dims.top_k);
    let dlogits = client.empty(n * e * 4);
    let with_probs = dprobs.is_some();
    let dprobs = dprobs.unwrap_or_else(|| routing.probs.clone());
    let (count, dim) = elementwise(client, n);
    // SAFETY: buffers as in `route`; dprobs n·E f32 (or unread).
    unsafe {
        kernel::route_backward_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(routing.probs.clone(), n * e),
            ArrayArg::from_raw_parts(routing.weights.clone(), n * k),
            ArrayArg::from_raw_parts(routing.ids.clone(), n * k),
            ArrayArg::from_raw_parts(dprobs, n * e),
            ArrayArg::from_raw_parts(dweights, n * k),
            ArrayArg::from_raw_parts(dlogits.clone(), n * e),
            n as u32,
            e as u32,
            k,
            with_probs,
        );
    }
    dlogits
}

/// Groups the assignments by expert: histogram and local ranks per chunk, a scan, then the
/// placement (three launches, deterministic: no atomics). `ids [n, k]` i32 in `[0, E)`.
pub fn dispatch<R: Runtime>(client: &ComputeClient<R>, dims: MoeDims, ids: Handle) -> Dispatch {
    let (e, m) = (dims.experts, dims.assignments());
    let chunk = cube_size_pow2(client, DISPATCH_CHUNK);
    let chunks = m.div_ceil(chunk);
    let rank = client.empty(m * 4);
    let counts = client.empty(chunks * e * 4);
    let base = client.empty(chunks * e * 4);
    let offsets = client.empty((e + 1) * 4);
    let assign = client.empty(m * 4);
    let inverse = client.empty(m * 4);
    let scan_cube = cube_size_pow2(client, e.max(1)).min(cube_size_pow2(client, 1024));
    let (count, dim) = elementwise(client, m);
    // SAFETY: ids holds m i32 in [0, E); the other buffers are sized above.
    unsafe {
        kernel::dispatch_count_kernel::launch_unchecked(
            client,
            grid_1d(client, chunks),
            CubeDim::new_1d(chunk as u32),
            ArrayArg::from_raw_parts(ids.clone(), m),
            ArrayArg::from_raw_parts(rank.clone(), m),
            ArrayArg::from_raw_parts(counts.clone(), chunks * e),
            m as u32,
            e as u32,
        );
        kernel::dispatch_scan_kernel::launch_unchecked(
            client,
            CubeCount::Static(1, 1, 1),
            CubeDim::new_1d(scan_cube as u32),
            ArrayArg::from_raw_parts(counts, chunks * e),
            ArrayArg::from_raw_parts(base.clone(), chunks * e),
            ArrayArg::from_raw_parts(offsets.clone(), e + 1),
            chunks as u32,
            e as u32,
        );
        kernel::dispatch_place_kernel::launch_unchecked(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(ids, m),
            ArrayArg::from_raw_parts(rank, m),
            ArrayArg::from_raw_parts(base, chunks * e),
            ArrayArg::from_raw_parts(assign.clone(), m),
            ArrayArg::from_raw_parts(inverse.clone(), m),
            m as u32,
            e as u32,
            chunk as u32,
        );
    }
    Dispatch {
        offsets,
        assign,
        inverse,
    }
}

/// Grouped GEMM `out [m, cols]`: grouped row `p` of expert `e` gets `a[src(p)] · b[e]`, with
/// `b [E, inner, cols]`, `src(p) = assign[p] / k` (gather from tokens) or `p`.
#[allow(clippy::too_many_arguments)]
pub fn grouped_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    a: Handle,
    a_rows: usize,
    gather: Option<&Handle>,
    b: Handle,
    offsets: &Handle,
    inner: usize,
    cols: usize,
    tiling: GemmTiling,
) -> Handle {
    let (e, m) = (dims.experts, dims.assignments());
    let width = vector_size_dividing(client, 4, cols);
    let col_vecs = cols / width;
    let out = client.empty(m * cols * 4);
    let tiles = m.div_ceil(tiling.tile_rows()) + e;
    let rows = gather.cloned().unwrap_or_else(|| offsets.clone());
    let rows_len = if gather.is_some() { m } else { e + 1 };
    let quads = quad_loads(client, inner);
    let (col_blocks, cube_x) = unit_blocks(
        client,
        col_vecs.div_ceil(tiling.unit_vecs),
        tiling.cube_x as usize,
    );
    // SAFETY: a holds a_rows·inner, b E·inner·cols f32, assign m u32 (or stands in unread),
    // offsets E + 1 u32 with offsets[E] = m; width divides cols; a4 binds a as
    // a_rows·inner / 4 vectors, read only when 4 divides inner.
    unsafe {
        kernel::grouped_matmul_kernel::launch_unchecked::<R>(
            client,
            CubeCount::Static(col_blocks, tiles as u32, 1),
            CubeDim::new_2d(cube_x, tiling.cube_y),
            width,
            ArrayArg::from_raw_parts(a.clone(), a_rows * inner),
            ArrayArg::from_raw_parts(a, (a_rows * inner / 4).max(1)),
            ArrayArg::from_raw_parts(rows, rows_len),
            ArrayArg::from_raw_parts(b, e * inner * col_vecs),
            ArrayArg::from_raw_parts(offsets.clone(), e + 1),
            ArrayArg::from_raw_parts(out.clone(), m * col_vecs),
            inner as u32,
            col_vecs as u32,
            e as u32,
            dims.top_k as u32,
            tiling.unit_rows,
            tiling.unit_vecs,
            gather.is_some(),
            quads,
        );
    }
    out
}

/// Grouped weight gradient `dw [E, inner, cols]`, `dw[e] = lhs_eᵀ · rhs_e` over expert `e`'s
/// grouped rows (`lhs` gathered from tokens when `gather`).
#[allow(clippy::too_many_arguments)]
pub fn grouped_weight_grad<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    lhs: Handle,
    lhs_rows: usize,
    gather: bool,
    rhs: Handle,
    dispatch: &Dispatch,
    inner: usize,
    cols: usize,
) -> Handle {
    let (e, m) = (dims.experts, dims.assignments());
    let width = vector_size_dividing(client, 4, cols);
    let col_vecs = cols / width;
    let rows_per_unit = wgrad_rows(client);
    let i_tiles = inner.div_ceil(rows_per_unit);
    let dw = client.empty(e * inner * cols * 4);
    // SAFETY: lhs holds lhs_rows·inner, rhs m·cols f32; dispatch buffers as in `dispatch`.
    unsafe {
        kernel::grouped_weight_grad_kernel::launch_unchecked::<R>(
            client,
            CubeCount::Static(
                col_vecs.div_ceil(WGRAD_CUBE as usize) as u32,
                (e * i_tiles) as u32,
                1,
            ),
            CubeDim::new_1d(WGRAD_CUBE),
            width,
            ArrayArg::from_raw_parts(lhs.clone(), lhs_rows * inner),
            ArrayArg::from_raw_parts(lhs, (lhs_rows * inner / 4).max(1)),
            ArrayArg::from_raw_parts(rhs, m * col_vecs),
            ArrayArg::from_raw_parts(dispatch.assign.clone(), m),
            ArrayArg::from_raw_parts(dispatch.offsets.clone(), e + 1),
            ArrayArg::from_raw_parts(dw.clone(), e * inner * col_vecs),
            inner as u32,
            col_vecs as u32,
            i_tiles as u32,
            dims.top_k as u32,
            rows_per_unit,
            gather,
            quad_loads(client, inner) && rows_per_unit.is_multiple_of(4),
        );
    }
    dw
}

/// `[batches, r, c] → [batches, c, r]`.
fn transpose<R: Runtime>(
    client: &ComputeClient<R>,
    inp: Handle,
    batches: usize,
    r: usize,
    c: usize,
) -> Handle {
    let total = batches * r * c;
    let out = client.empty(total * 4);
    let (count, dim) = elementwise(client, total);
    // SAFETY: inp holds total f32.
    unsafe {
        kernel::transpose_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(inp, total),
            ArrayArg::from_raw_parts(out.clone(), total),
            total as u32,
            r as u32,
            c as u32,
        );
    }
    out
}

/// `y [n, d]` from `o [m, d]`: `Σ_j w[t, j] · o[inverse[t·k + j]]`, or the plain sum.
fn combine<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    o: Handle,
    weights: Option<Handle>,
    dispatch: &Dispatch,
) -> Handle {
    let (n, d, k, m) = (dims.tokens, dims.d_model, dims.top_k, dims.assignments());
    let width = vector_size_dividing(client, 4, d);
    let d_vecs = d / width;
    let y = client.empty(n * d * 4);
    let weighted = weights.is_some();
    let weights = weights.unwrap_or_else(|| dispatch.inverse.clone());
    let (count, dim) = elementwise(client, n * d_vecs);
    // SAFETY: o holds m·d f32, weights n·k f32 (or unread), inverse m u32.
    unsafe {
        kernel::combine_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            width,
            ArrayArg::from_raw_parts(o, m * d_vecs),
            ArrayArg::from_raw_parts(weights, m),
            ArrayArg::from_raw_parts(dispatch.inverse.clone(), m),
            ArrayArg::from_raw_parts(y.clone(), n * d_vecs),
            (n * d_vecs) as u32,
            d_vecs as u32,
            k,
            weighted,
        );
    }
    y
}

/// The experts' forward: dispatch-ordered up-projection `hpre = x[tokens] · w13[e]` (gathered,
/// one launch for all experts), `act = silu(gate) ⊙ up`, `out = act · w2[e]`, then the weighted
/// combine `y [n, d]`. `x [n, d]`, `weights [n, k]`, `w13 [E, d, 2h]`, `w2 [E, h, d]`.
pub fn experts_forward<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    x: Handle,
    weights: Handle,
    dispatch: &Dispatch,
    w13: Handle,
    w2: Handle,
) -> (Handle, ExpertsSaved) {
    let (n, d, h, m) = (dims.tokens, dims.d_model, dims.hidden, dims.assignments());
    let hpre = grouped_matmul(
        client,
        dims,
        x,
        n,
        Some(&dispatch.assign),
        w13,
        &dispatch.offsets,
        d,
        2 * h,
        gemm_tiling(client),
    );
    let width = vector_size_dividing(client, 4, h);
    let h_vecs = h / width;
    let act = client.empty(m * h * 4);
    let (count, dim) = elementwise(client, m * h_vecs);
    // SAFETY: hpre holds m·2h f32, act m·h.
    unsafe {
        kernel::glu_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            width,
            ArrayArg::from_raw_parts(hpre.clone(), 2 * m * h_vecs),
            ArrayArg::from_raw_parts(act.clone(), m * h_vecs),
            (m * h_vecs) as u32,
            h_vecs as u32,
        );
    }
    let out = grouped_matmul(
        client,
        dims,
        act.clone(),
        m,
        None,
        w2,
        &dispatch.offsets,
        h,
        d,
        gemm_tiling(client),
    );
    let y = combine(client, dims, out.clone(), Some(weights), dispatch);
    (y, ExpertsSaved { hpre, act, out })
}

/// The experts' backward from `dy [n, d]`: `do = w · dy[token]`, `dweights = dy · out`,
/// `dact = do · w2ᵀ`, the gate backward, `dw2 = actᵀ do`, `dw13 = x[tokens]ᵀ dhpre` (per expert),
/// `dx = Σ_j (dhpre · w13ᵀ)[inverse]`.
#[allow(clippy::too_many_arguments)]
pub fn experts_backward<R: Runtime>(
    client: &ComputeClient<R>,
    dims: MoeDims,
    x: Handle,
    weights: Handle,
    dispatch: &Dispatch,
    w13: Handle,
    w2: Handle,
    saved: &ExpertsSaved,
    dy: Handle,
) -> ExpertsGrads {
    let (n, e, d, h, k, m) = (
        dims.tokens,
        dims.experts,
        dims.d_model,
        dims.hidden,
        dims.top_k,
        dims.assignments(),
    );
    let dw_width = vector_size_dividing(client, 4, d);
    let d_vecs = d / dw_width;
    let dout = client.empty(m * d * 4);
    let dweights = client.empty(m * 4);
    let (count, dim) = elementwise(client, m * d_vecs);
    let (wcount, wdim) = elementwise(client, m);
    // SAFETY: dy holds n·d, weights n·k, saved.out m·d f32; dispatch buffers m u32.
    unsafe {
        kernel::combine_backward_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            dw_width,
            ArrayArg::from_raw_parts(dy.clone(), n * d_vecs),
            ArrayArg::from_raw_parts(weights, m),
            ArrayArg::from_raw_parts(dispatch.assign.clone(), m),
            ArrayArg::from_raw_parts(dout.clone(), m * d_vecs),
            (m * d_vecs) as u32,
            d_vecs as u32,
            k as u32,
        );
        kernel::combine_weights_backward_kernel::launch_unchecked::<R>(
            client,
            wcount,
            wdim,
            dw_width,
            ArrayArg::from_raw_parts(dy, n * d_vecs),
            ArrayArg::from_raw_parts(saved.out.clone(), m * d_vecs),
            ArrayArg::from_raw_parts(dispatch.inverse.clone(), m),
            ArrayArg::from_raw_parts(dweights.clone(), m),
            m as u32,
            d_vecs as u32,
            k as u32,
            dw_width,
        );
    }
    let w2t = transpose(client, w2, e, h, d);
    let dact = grouped_matmul(
        client,
        dims,
        dout.clone(),
        m,
        None,
        w2t,
        &dispatch.offsets,
        d,
        h,
        gemm_tiling(client),
    );
    let width = vector_size_dividing(client, 4, h);
    let h_vecs = h / width;
    let dhpre = client.empty(m * 2 * h * 4);
    let (count, dim) = elementwise(client, m * h_vecs);
    // SAFETY: dact m·h, hpre and dhpre m·2h f32.
    unsafe {
        kernel::glu_backward_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            width,
            ArrayArg::from_raw_parts(dact, m * h_vecs),
            ArrayArg::from_raw_parts(saved.hpre.clone(), 2 * m * h_vecs),
            ArrayArg::from_raw_parts(dhpre.clone(), 2 * m * h_vecs),
            (m * h_vecs) as u32,
            h_vecs as u32,
        );
    }
    let dw2 = grouped_weight_grad(
        client,
        dims,
        saved.act.clone(),
        m,
        false,
        dout,
        dispatch,
        h,
        d,
    );
    let dw13 = grouped_weight_grad(client, dims, x, n, true, dhpre.clone(), dispatch, d, 2 * h);
    let w13t = transpose(client, w13, e, d, 2 * h);
    let dxg = grouped_matmul(
        client,
        dims,
        dhpre,
        m,
        None,
        w13t,
        &dispatch.offsets,
        2 * h,
        d,
        gemm_tiling(client),
    );
    let dx = combine(client, dims, dxg, None, dispatch);
    ExpertsGrads {
        dx,
        dweights,
        dw13,
        dw2,
    }
}

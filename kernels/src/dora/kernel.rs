//! The cubecl kernels of the LoRA/DoRA family. They assume validated input (see [`super`]):
//! buffers of the stated lengths, `rank ≥ 1`. Layouts are row-major with burn's `Linear`
//! convention (weights `[d_in, d_out]`, `A [d_in, r]`, `B [r, d_out]`, activations `[n, d]`); the
//! column-wise kernels read `N` adjacent columns as one vector (`N` divides `d_out`).

use cubecl::prelude::*;

use crate::gemm::{accumulate_rows, store_block};

/// Loads the `V = unit_vecs` vector columns `col .. col + V` of `B [rank, d_out]` into registers,
/// `out[k·V + v]` (a column past the end repeats the last one; `rank` and `V` are comptime: the
/// loops unroll).
#[cube]
fn load_columns<N: Size>(
    b: &Array<Vector<f32, N>>,
    col: usize,
    d_vecs: usize,
    #[comptime] rank: usize,
    #[comptime] unit_vecs: usize,
) -> Array<Vector<f32, N>> {
    let mut out = Array::<Vector<f32, N>>::new(rank * unit_vecs);
    #[unroll]
    for k in 0..rank {
        #[unroll]
        for v in 0..unit_vecs {
            out[k * unit_vecs + v] = b[k * d_vecs + min(col + v, d_vecs - 1)];
        }
    }
    out
}

/// `s · Σ_k left[start + k] · bcols[k·V + v]` for `v < V`: `V` vectors of `s · (left · B)` for
/// the row of `left` that starts at scalar offset `start`, with `B`'s columns in registers (as
/// [`load_columns`] lays them out). Each element of `left` is loaded once for the `V` vectors:
/// on lavapipe the loads, not the multiply–adds, are what costs.
#[cube]
fn low_rank<N: Size>(
    left: &Array<f32>,
    bcols: &Array<Vector<f32, N>>,
    start: usize,
    scale: f32,
    #[comptime] rank: usize,
    #[comptime] unit_vecs: usize,
) -> Array<Vector<f32, N>> {
    let mut acc = Array::<Vector<f32, N>>::new(unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        acc[v] = Vector::<f32, N>::new(0.0f32);
    }
    #[unroll]
    for k in 0..rank {
        let l = Vector::<f32, N>::new(left[start + k]);
        #[unroll]
        for v in 0..unit_vecs {
            acc[v] = fma(l, bcols[k * unit_vecs + v], acc[v]);
        }
    }
    let sv = Vector::<f32, N>::new(scale);
    #[unroll]
    for v in 0..unit_vecs {
        acc[v] *= sv;
    }
    acc
}

/// The epilogue's pre-scale input for row `t` and the unit's `V` vectors at `col`:
/// `z[v] = base[t, col + v] + s · both[t, d_out..] · B[:, col + v]` (`base` as vectors,
/// `row_vecs` a row; `xa` as scalars, `row_len` a row, from `xa_offset`; a vector past `d_vecs`
/// repeats the last one, for the caller not to store).
#[cube]
#[allow(clippy::too_many_arguments)]
fn pre_scale_row<N: Size>(
    base: &Array<Vector<f32, N>>,
    xa: &Array<f32>,
    bcols: &Array<Vector<f32, N>>,
    t: usize,
    col: usize,
    d_vecs: usize,
    row_vecs: usize,
    row_len: usize,
    xa_offset: usize,
    scale: f32,
    #[comptime] rank: usize,
    #[comptime] unit_vecs: usize,
) -> Array<Vector<f32, N>> {
    let mut z = low_rank::<N>(xa, bcols, t * row_len + xa_offset, scale, rank, unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        z[v] += base[t * row_vecs + min(col + v, d_vecs - 1)];
    }
    z
}

/// Partial squared column norms of `V = W0 + s·A·B` without storing `V` (nor `A·B`):
/// `partials[chunk, j] = Σ_{i ∈ chunk} (W0[i, j] + s Σ_k A[i, k] B[k, j])²`, chunks of
/// `chunk_rows` consecutive rows. Grid: x over blocks of `CUBE_DIM_X` units, y over row chunks;
/// one unit per (`unit_vecs` vector columns, chunk), `B`'s columns held in registers.
#[cube(launch_unchecked)]
pub fn column_sq_partials_kernel<N: Size>(
    w0: &Array<Vector<f32, N>>,
    a: &Array<f32>,
    b: &Array<Vector<f32, N>>,
    partials: &mut Array<Vector<f32, N>>,
    d_in: u32,
    d_vecs: u32,
    chunk_rows: u32,
    scale: f32,
    #[comptime] rank: usize,
    #[comptime] unit_vecs: usize,
) {
    let col = ((CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize) * unit_vecs;
    let d_vecs = d_vecs as usize;
    if col >= d_vecs {
        terminate!();
    }
    let bcols = load_columns::<N>(b, col, d_vecs, rank, unit_vecs);
    let chunk = CUBE_POS_Y as usize;
    let start = chunk * chunk_rows as usize;
    let end = min(start + chunk_rows as usize, d_in as usize);
    let mut acc = Array::<Vector<f32, N>>::new(unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        acc[v] = Vector::<f32, N>::new(0.0f32);
    }
    for i in start..end {
        let lr = low_rank::<N>(a, &bcols, i * rank, scale, rank, unit_vecs);
        #[unroll]
        for v in 0..unit_vecs {
            let w = w0[i * d_vecs + min(col + v, d_vecs - 1)] + lr[v];
            acc[v] = fma(w, w, acc[v]);
        }
    }
    #[unroll]
    for v in 0..unit_vecs {
        if col + v < d_vecs {
            partials[chunk * d_vecs + col + v] = acc[v];
        }
    }
}

/// Sums `partials [chunks, d_out]` over the chunks: `out[j] = Σ_c partials[c, j]`, then the square
/// root when `sqrt` (column norms). One unit per column.
#[cube(launch_unchecked)]
pub fn sum_partials_kernel(
    partials: &Array<f32>,
    out: &mut Array<f32>,
    chunks: u32,
    d_out: u32,
    #[comptime] sqrt: bool,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let col = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    let d_out = d_out as usize;
    if col >= d_out {
        terminate!();
    }
    let mut acc = 0.0f32;
    for c in 0..chunks as usize {
        acc += partials[c * d_out + col];
    }
    if sqrt {
        out[col] = acc.sqrt();
    } else {
        out[col] = acc;
    }
}

/// The LoRA/DoRA epilogue after the one GEMM `both = x·[W0 | A]` (`[n, d_out + r]`: the base
/// output `x·W0` in the first `d_out` columns, `x·A` in the last `r`), over `[n, d_out]` in
/// (`unit_vecs` vector columns, row chunk) units: `out[t, j] = (both[t, j] + s Σ_k both[t, d_out
/// + k] B[k, j]) · g[j]` (DoRA, `scaled`), or without `· g` (LoRA; `g` is not read). `both` is
/// bound twice: as vectors (`base`, `row_vecs` vectors a row) and as scalars (`xa`, `row_len` a
/// row). `B`'s columns and `g` are loaded once per unit. With `both = [W0 | A]` it merges the
/// adapter into one weight matrix. Grid as [`column_sq_partials_kernel`].
#[cube(launch_unchecked)]
pub fn epilogue_kernel<N: Size>(
    base: &Array<Vector<f32, N>>,
    xa: &Array<f32>,
    b: &Array<Vector<f32, N>>,
    g: &Array<Vector<f32, N>>,
    out: &mut Array<Vector<f32, N>>,
    rows: u32,
    d_vecs: u32,
    row_vecs: u32,
    row_len: u32,
    xa_offset: u32,
    chunk_rows: u32,
    scale: f32,
    #[comptime] rank: usize,
    #[comptime] scaled: bool,
    #[comptime] unit_vecs: usize,
) {
    let col = ((CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize) * unit_vecs;
    let d_vecs = d_vecs as usize;
    if col >= d_vecs {
        terminate!();
    }
    let bcols = load_columns::<N>(b, col, d_vecs, rank, unit_vecs);
    let mut gs = Array::<Vector<f32, N>>::new(unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        gs[v] = Vector::<f32, N>::new(1.0f32);
        if scaled {
            gs[v] = g[min(col + v, d_vecs - 1)];
        }
    }
    let start = CUBE_POS_Y as usize * chunk_rows as usize;
    let end = min(start + chunk_rows as usize, rows as usize);
    for t in start..end {
        let z = pre_scale_row::<N>(
            base,
            xa,
            &bcols,
            t,
            col,
            d_vecs,
            row_vecs as usize,
            row_len as usize,
            xa_offset as usize,
            scale,
            rank,
            unit_vecs,
        );
        #[unroll]
        for v in 0..unit_vecs {
            if col + v < d_vecs {
                let pos = t * d_vecs + col + v;
                if scaled {
                    out[pos] = z[v] * gs[v];
                } else {
                    out[pos] = z[v];
                }
            }
        }
    }
}

/// The DoRA epilogue's backward with respect to its pre-scale input and `g`, over row chunks:
/// `dbase[t, j] = dy[t, j] · g[j]` and `partials[chunk, j] = Σ_{t ∈ chunk} dy[t, j] · z[t, j]`
/// with `z = both[t, j] + s · both[t, d_out..] · B` recomputed (not stored by the forward; `both`
/// bound as in [`epilogue_kernel`]). Summing the partials over chunks gives `∂L/∂g`. Grid as
/// [`column_sq_partials_kernel`].
#[cube(launch_unchecked)]
pub fn epilogue_backward_kernel<N: Size>(
    dy: &Array<Vector<f32, N>>,
    base: &Array<Vector<f32, N>>,
    xa: &Array<f32>,
    b: &Array<Vector<f32, N>>,
    g: &Array<Vector<f32, N>>,
    dbase: &mut Array<Vector<f32, N>>,
    partials: &mut Array<Vector<f32, N>>,
    rows: u32,
    d_vecs: u32,
    row_vecs: u32,
    row_len: u32,
    xa_offset: u32,
    chunk_rows: u32,
    scale: f32,
    #[comptime] rank: usize,
    #[comptime] unit_vecs: usize,
) {
    let col = ((CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize) * unit_vecs;
    let d_vecs = d_vecs as usize;
    if col >= d_vecs {
        terminate!();
    }
    let bcols = load_columns::<N>(b, col, d_vecs, rank, unit_vecs);
    let chunk = CUBE_POS_Y as usize;
    let start = chunk * chunk_rows as usize;
    let end = min(start + chunk_rows as usize, rows as usize);
    let mut gs = Array::<Vector<f32, N>>::new(unit_vecs);
    let mut acc = Array::<Vector<f32, N>>::new(unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        gs[v] = g[min(col + v, d_vecs - 1)];
        acc[v] = Vector::<f32, N>::new(0.0f32);
    }
    for t in start..end {
        let z = pre_scale_row::<N>(
            base,
            xa,
            &bcols,
            t,
            col,
            d_vecs,
            row_vecs as usize,
            row_len as usize,
            xa_offset as usize,
            scale,
            rank,
            unit_vecs,
        );
        #[unroll]
        for v in 0..unit_vecs {
            if col + v < d_vecs {
                let pos = t * d_vecs + col + v;
                let up = dy[pos];
                acc[v] = fma(up, z[v], acc[v]);
                dbase[pos] = up * gs[v];
            }
        }
    }
    #[unroll]
    for v in 0..unit_vecs {
        if col + v < d_vecs {
            partials[chunk * d_vecs + col + v] = acc[v];
        }
    }
}

/// The adapted layer's GEMM with its epilogue in registers, for CPU-like devices:
/// `out[t, :] = (x[t, :]·W + s Σ_k xa[t, k] B[k, :]) ⊙ g` (`scaled`; without `⊙ g` otherwise;
/// just `x[t, :]·W` when `rank = 0`, and then `xa`, `b`, `g` are not read), and the bare
/// product `x[t, :]·W` also into `copy` when `keep` (row stride `copy_row_vecs` vectors,
/// starting at vector column `copy_offset`). `x [rows, inner]`, `W [inner, col_vecs·N]`,
/// `xa [rows, rank]`, `B [rank, col_vecs·N]`, `g [col_vecs·N]`. Each unit computes `unit_rows`
/// rows × `unit_vecs` vectors of `N` columns (see [`accumulate_rows`]); a cube covers
/// `CUBE_DIM_X · unit_vecs · N` columns × `CUBE_DIM_Y · unit_rows` rows. Grid: x over column
/// tiles, y over row tiles. With `quads` (needs `4 | inner`), `x` is also read through `x4` (the
/// same buffer as 4-wide vectors), four inner steps per load. The low-rank term runs as `rank`
/// more inner steps over `[xa | s·B]`, through `xa4` four at a time with `rank_quads` (needs
/// `4 | rank`).
#[cube(launch_unchecked)]
pub fn adapted_matmul_kernel<N: Size>(
    x: &Array<f32>,
    x4: &Array<Vector<f32, Const<4>>>,
    w: &Array<Vector<f32, N>>,
    xa: &Array<f32>,
    xa4: &Array<Vector<f32, Const<4>>>,
    b: &Array<Vector<f32, N>>,
    g: &Array<Vector<f32, N>>,
    out: &mut Array<Vector<f32, N>>,
    copy: &mut Array<Vector<f32, N>>,
    rows: u32,
    inner: u32,
    col_vecs: u32,
    copy_row_vecs: u32,
    copy_offset: u32,
    scale: f32,
    #[comptime] unit_rows: usize,
    #[comptime] unit_vecs: usize,
    #[comptime] rank: usize,
    #[comptime] scaled: bool,
    #[comptime] quads: bool,
    #[comptime] rank_quads: bool,
    #[comptime] keep: bool,
) {
    let col = ((CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize) * unit_vecs;
    let col_vecs = col_vecs as usize;
    let first = ((CUBE_POS_Y * CUBE_DIM_Y + UNIT_POS_Y) * unit_rows as u32) as usize;
    let rows = rows as usize;
    if col >= col_vecs || first >= rows {
        terminate!();
    }
    let inner = inner as usize;
    // Row offsets (rows past the end repeat the last row and are not written).
    let mut src = Array::<usize>::new(unit_rows);
    #[unroll]
    for r in 0..unit_rows {
        src[r] = min(first + r, rows - 1);
    }
    let mut acc = Array::<Vector<f32, N>>::new(unit_rows * unit_vecs);
    #[unroll]
    for i in 0..unit_rows * unit_vecs {
        acc[i] = Vector::<f32, N>::new(0.0f32);
    }
    accumulate_rows::<N>(
        &mut acc, &src, x, x4, w, 0, col, inner, col_vecs, 1.0f32, unit_rows, unit_vecs, quads,
        false,
    );
    let copy_row_vecs = copy_row_vecs as usize;
    let copy_offset = copy_offset as usize;
    if keep {
        store_block::<N>(
            copy,
            &acc,
            first,
            rows,
            col,
            col_vecs,
            copy_row_vecs,
            copy_offset,
            unit_rows,
            unit_vecs,
        );
    }
    if rank > 0 {
        // The low-rank term as `r` more inner steps over `[xa | s·B]`, loaded like `x` and `W`.
        accumulate_rows::<N>(
            &mut acc, &src, xa, xa4, b, 0, col, rank, col_vecs, scale, unit_rows, unit_vecs,
            rank_quads, true,
        );
        if scaled {
            #[unroll]
            for v in 0..unit_vecs {
                let gj = g[min(col + v, col_vecs - 1)];
                #[unroll]
                for r in 0..unit_rows {
                    acc[r * unit_vecs + v] = acc[r * unit_vecs + v] * gj;
                }
            }
        }
    }
    store_block::<N>(
        out, &acc, first, rows, col, col_vecs, col_vecs, 0, unit_rows, unit_vecs,
    );
}

//! The cubecl kernels of the MoE layer. They assume validated input (see [`super`]).
//!
//! Grouped order: the `n·k` token–expert assignments sorted by expert (stable: by token, then
//! slot, within an expert); `offsets [E + 1]` are the group starts, `rows [n·k]` the source row
//! (token) of each grouped row.

use cubecl::prelude::*;

use crate::gemm::{accumulate_rows, store_block};

/// Finds the expert and first grouped row of virtual row tile `tile` (`tile_rows` rows a tile,
/// each expert's group cut into `⌈count_e / tile_rows⌉` tiles, tiles numbered expert by expert).
/// Returns `(expert, start, end)`; `expert = experts` when the tile index is past the last tile.
#[cube]
fn find_tile(offsets: &Array<u32>, tile: u32, tile_rows: u32, experts: u32) -> (u32, u32, u32) {
    let mut expert = experts;
    let mut start = 0u32;
    let mut end = 0u32;
    let mut seen = 0u32;
    for e in 0..experts {
        let lo = offsets[e as usize];
        let hi = offsets[e as usize + 1];
        let tiles = (hi - lo).div_ceil(tile_rows);
        if expert == experts && tile < seen + tiles {
            expert = e;
            start = lo + (tile - seen) * tile_rows;
            end = min(start + tile_rows, hi);
        }
        seen += tiles;
    }
    (expert, start, end)
}

/// Grouped GEMM: for every grouped row `p` of expert `e`, `out[p, :] = a[src(p), :] · b[e]` with
/// `b [E, inner, cols]`, `src(p) = rows[p] / top_k` (the token of assignment `rows[p]`) when
/// `gather`, else `p`; `N` divides `cols`. Each unit computes `unit_rows` rows × `N` columns; a
/// cube covers `CUBE_DIM_Y · unit_rows` rows of one expert (a row tile; the last tile of a group
/// may be partial, no padding beyond it) × `CUBE_DIM_X · N` columns. Grid: x over column tiles,
/// y over row tiles (at most `⌈m / tile⌉ + E`; the extra ones exit). With `quads` (needs
/// `4 | inner`), `a` is also read as 4-wide vectors through `a4` (the same buffer), four inner
/// steps per iteration.
#[cube(launch_unchecked)]
pub fn grouped_matmul_kernel<N: Size>(
    a: &Array<f32>,
    a4: &Array<Vector<f32, Const<4>>>,
    rows: &Array<u32>,
    b: &Array<Vector<f32, N>>,
    offsets: &Array<u32>,
    out: &mut Array<Vector<f32, N>>,
    inner: u32,
    col_vecs: u32,
    experts: u32,
    top_k: u32,
    #[comptime] unit_rows: usize,
    #[comptime] unit_vecs: usize,
    #[comptime] gather: bool,
    #[comptime] quads: bool,
) {
    let col = ((CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize) * unit_vecs;
    let tile_rows = CUBE_DIM_Y * unit_rows as u32;
    let (expert, tile_start, tile_end) = find_tile(offsets, CUBE_POS_Y, tile_rows, experts);
    if expert == experts || col >= col_vecs as usize {
        terminate!();
    }
    let first = tile_start + UNIT_POS_Y * unit_rows as u32;
    if first >= tile_end {
        terminate!();
    }
    let inner = inner as usize;
    let col_vecs = col_vecs as usize;
    // Source rows (rows past the tile's end repeat its last row and are not written).
    let mut src = Array::<usize>::new(unit_rows);
    #[unroll]
    for r in 0..unit_rows {
        let p = min(first + r as u32, tile_end - 1) as usize;
        let mut row = p;
        if gather {
            row = source_row(rows, p, top_k);
        }
        src[r] = row;
    }
    let mut acc = Array::<Vector<f32, N>>::new(unit_rows * unit_vecs);
    #[unroll]
    for i in 0..unit_rows * unit_vecs {
        acc[i] = Vector::<f32, N>::new(0.0f32);
    }
    let b_start = expert as usize * inner * col_vecs;
    accumulate_rows::<N>(
        &mut acc, &src, a, a4, b, b_start, col, inner, col_vecs, 1.0f32, unit_rows, unit_vecs,
        quads, false,
    );
    store_block::<N>(
        out,
        &acc,
        first as usize,
        tile_end as usize,
        col,
        col_vecs,
        col_vecs,
        0,
        unit_rows,
        unit_vecs,
    );
}

/// Router, one unit per token: `probs[t] = softmax(logits[t])` (max-shifted, f32), the `top_k`
/// largest logits in descending order (ties → lower expert id: a strictly greater logit is
/// needed to replace the current choice) as `ids[t]`, and `weights[t, j] = probs[t, ids[t, j]] /
/// Σ_j' probs[t, ids[t, j']]`.
#[cube(launch_unchecked)]
pub fn route_kernel(
    logits: &Array<f32>,
    probs: &mut Array<f32>,
    weights: &mut Array<f32>,
    ids: &mut Array<i32>,
    tokens: u32,
    experts: u32,
    #[comptime] top_k: usize,
) {
    let t = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if t >= tokens {
        terminate!();
    }
    let e_count = experts as usize;
    let row = t as usize * e_count;
    let mut top = logits[row];
    for e in 1..e_count {
        top = max(top, logits[row + e]);
    }
    let mut total = 0.0f32;
    for e in 0..e_count {
        total += (logits[row + e] - top).exp();
    }
    for e in 0..e_count {
        probs[row + e] = (logits[row + e] - top).exp() / total;
    }
    let mut chosen = Array::<u32>::new(top_k);
    let mut kept = 0.0f32;
    #[unroll]
    for j in 0..top_k {
        let mut best = experts;
        let mut best_logit = 0.0f32;
        for e in 0..experts {
            let mut taken = false;
            #[unroll]
            for q in 0..j {
                if chosen[q] == e {
                    taken = true;
                }
            }
            let l = logits[row + e as usize];
            if !taken && (best == experts || l > best_logit) {
                best = e;
                best_logit = l;
            }
        }
        chosen[j] = best;
        kept += probs[row + best as usize];
    }
    let out = t as usize * top_k;
    #[unroll]
    for j in 0..top_k {
        ids[out + j] = chosen[j] as i32;
        weights[out + j] = probs[row + chosen[j] as usize] / kept;
    }
}

/// The router's backward, one unit per token: with `gw = ∂L/∂weights [n, k]` and (if
/// `with_probs`) `gp = ∂L/∂probs [n, E]`,
/// `dlogits[t, i] = p_i (gp_i − Σ_e p_e gp_e) + [i = ids_j] w_j (gw_j − Σ_j' w_j' gw_j')`
/// (the renormalised top-k weights are the softmax of the kept logits).
#[cube(launch_unchecked)]
pub fn route_backward_kernel(
    probs: &Array<f32>,
    weights: &Array<f32>,
    ids: &Array<i32>,
    dprobs: &Array<f32>,
    dweights: &Array<f32>,
    dlogits: &mut Array<f32>,
    tokens: u32,
    experts: u32,
    #[comptime] top_k: usize,
    #[comptime] with_probs: bool,
) {
    let t = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if t >= tokens {
        terminate!();
    }
    let e_count = experts as usize;
    let row = t as usize * e_count;
    let mut dot_p = 0.0f32;
    if with_probs {
        for e in 0..e_count {
            dot_p += probs[row + e] * dprobs[row + e];
        }
    }
    for e in 0..e_count {
        let mut g = 0.0f32;
        if with_probs {
            g = probs[row + e] * (dprobs[row + e] - dot_p);
        }
        dlogits[row + e] = g;
    }
    let slot = t as usize * top_k;
    let mut dot_w = 0.0f32;
    #[unroll]
    for j in 0..top_k {
        dot_w += weights[slot + j] * dweights[slot + j];
    }
    #[unroll]
    for j in 0..top_k {
        let e = ids[slot + j] as usize;
        dlogits[row + e] += weights[slot + j] * (dweights[slot + j] - dot_w);
    }
}

/// Dispatch, step 1, one cube per chunk of `CUBE_DIM_X` consecutive assignments (assignment
/// `a = t·k + j`, expert `ids[a]`): `rank[a]` = number of earlier assignments of the chunk with the
/// same expert, and `counts[chunk, e]` per expert.
#[cube(launch_unchecked)]
pub fn dispatch_count_kernel(
    ids: &Array<i32>,
    rank: &mut Array<u32>,
    counts: &mut Array<u32>,
    assignments: u32,
    experts: u32,
) {
    let chunk = CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X;
    let start = chunk * CUBE_DIM_X;
    let end = min(start + CUBE_DIM_X, assignments);
    let a = start + UNIT_POS_X;
    if a < end {
        let e = ids[a as usize];
        let mut r = 0u32;
        for q in start..a {
            if ids[q as usize] == e {
                r += 1;
            }
        }
        rank[a as usize] = r;
    }
    let mut e = UNIT_POS_X;
    while e < experts {
        let mut c = 0u32;
        for q in start..end {
            if ids[q as usize] == e as i32 {
                c += 1;
            }
        }
        counts[(chunk * experts + e) as usize] = c;
        e += CUBE_DIM_X;
    }
}

/// Dispatch, step 2, one cube: turns `counts [chunks, E]` into each (chunk, expert)'s first
/// grouped row `base [chunks, E]` (expert-major order: all of expert 0's rows first) and the
/// group starts `offsets [E + 1]`.
#[cube(launch_unchecked)]
pub fn dispatch_scan_kernel(
    counts: &Array<u32>,
    base: &mut Array<u32>,
    offsets: &mut Array<u32>,
    chunks: u32,
    experts: u32,
) {
    let mut e = UNIT_POS_X;
    while e < experts {
        let mut running = 0u32;
        for c in 0..chunks {
            let i = (c * experts + e) as usize;
            base[i] = running;
            running += counts[i];
        }
        offsets[e as usize + 1] = running;
        e += CUBE_DIM_X;
    }
    sync_cube();
    if UNIT_POS_X == 0 {
        offsets[0] = 0u32;
        for e in 0..experts {
            offsets[e as usize + 1] += offsets[e as usize];
        }
    }
    sync_cube();
    let mut e = UNIT_POS_X;
    while e < experts {
        let start = offsets[e as usize];
        for c in 0..chunks {
            base[(c * experts + e) as usize] += start;
        }
        e += CUBE_DIM_X;
    }
}

/// Dispatch, step 3, one unit per assignment `a`: its grouped row
/// `p = base[chunk(a), ids[a]] + rank[a]`; writes `assign[p] = a` and `inverse[a] = p`.
#[cube(launch_unchecked)]
pub fn dispatch_place_kernel(
    ids: &Array<i32>,
    rank: &Array<u32>,
    base: &Array<u32>,
    assign: &mut Array<u32>,
    inverse: &mut Array<u32>,
    assignments: u32,
    experts: u32,
    chunk_size: u32,
) {
    let a = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if a >= assignments {
        terminate!();
    }
    let chunk = a / chunk_size;
    let p = base[(chunk * experts) as usize + ids[a as usize] as usize] + rank[a as usize];
    assign[p as usize] = a;
    inverse[a as usize] = p;
}

/// Grouped GEMM with a gathered left operand: as [`grouped_matmul_kernel`], the source row of
/// grouped row `p` being the token `assign[p] / top_k`.
#[cube]
fn source_row(assign: &Array<u32>, p: usize, top_k: u32) -> usize {
    (assign[p] / top_k) as usize
}

/// SwiGLU's gate, elementwise over `[m, h]` vectors: `act[p, c] = silu(hpre[p, c]) ·
/// hpre[p, h + c]` with `hpre [m, 2h]` (`x W1 | x W3`). One unit per output vector.
#[cube(launch_unchecked)]
pub fn glu_kernel<N: Size>(
    hpre: &Array<Vector<f32, N>>,
    act: &mut Array<Vector<f32, N>>,
    total: u32,
    h_vecs: u32,
) {
    let i = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if i >= total {
        terminate!();
    }
    let p = i / h_vecs;
    let c = i % h_vecs;
    let g = hpre[(p * 2 * h_vecs + c) as usize];
    let u = hpre[(p * 2 * h_vecs + h_vecs + c) as usize];
    act[i as usize] = g * sigmoid::<N>(g) * u;
}

/// `σ(g) = 1 / (1 + e^(−g))` per lane. Written `0 − g`: cubecl 0.10's CUDA code generator emits
/// a unary minus on a vector type that NVRTC rejects (found on an H200).
#[cube]
fn sigmoid<N: Size>(g: Vector<f32, N>) -> Vector<f32, N> {
    let one = Vector::<f32, N>::new(1.0f32);
    let zero = Vector::<f32, N>::new(0.0f32);
    one / (one + (zero - g).exp())
}

/// SwiGLU gate backward: from `dact [m, h]` and `hpre [m, 2h]`, `dhpre [m, 2h]` with
/// `d gate = dact · u · σ(g)(1 + g(1 − σ(g)))` and `d up = dact · silu(g)`.
#[cube(launch_unchecked)]
pub fn glu_backward_kernel<N: Size>(
    dact: &Array<Vector<f32, N>>,
    hpre: &Array<Vector<f32, N>>,
    dhpre: &mut Array<Vector<f32, N>>,
    total: u32,
    h_vecs: u32,
) {
    let i = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if i >= total {
        terminate!();
    }
    let p = i / h_vecs;
    let c = i % h_vecs;
    let gi = (p * 2 * h_vecs + c) as usize;
    let ui = gi + h_vecs as usize;
    let g = hpre[gi];
    let u = hpre[ui];
    let one = Vector::<f32, N>::new(1.0f32);
    let s = sigmoid::<N>(g);
    let da = dact[i as usize];
    dhpre[gi] = da * u * s * (one + g * (one - s));
    dhpre[ui] = da * g * s;
}

/// Combine, one unit per output vector of `y [n, d]`: `y[t, c] = Σ_j w[t, j] · o[inverse[t·k +
/// j], c]` (`weighted`), or the plain sum (the input gradient's scatter back to tokens).
#[cube(launch_unchecked)]
pub fn combine_kernel<N: Size>(
    o: &Array<Vector<f32, N>>,
    weights: &Array<f32>,
    inverse: &Array<u32>,
    y: &mut Array<Vector<f32, N>>,
    total: u32,
    d_vecs: u32,
    #[comptime] top_k: usize,
    #[comptime] weighted: bool,
) {
    let i = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if i >= total {
        terminate!();
    }
    let t = (i / d_vecs) as usize;
    let c = (i % d_vecs) as usize;
    let mut acc = Vector::<f32, N>::new(0.0f32);
    #[unroll]
    for j in 0..top_k {
        let a = t * top_k + j;
        let v = o[inverse[a] as usize * d_vecs as usize + c];
        if weighted {
            acc += Vector::<f32, N>::new(weights[a]) * v;
        } else {
            acc += v;
        }
    }
    y[i as usize] = acc;
}

/// Combine backward to the expert outputs, one unit per vector of `do [m, d]`:
/// `do[p, c] = w[assign[p]] · dy[assign[p] / k, c]`.
#[cube(launch_unchecked)]
pub fn combine_backward_kernel<N: Size>(
    dy: &Array<Vector<f32, N>>,
    weights: &Array<f32>,
    assign: &Array<u32>,
    dout: &mut Array<Vector<f32, N>>,
    total: u32,
    d_vecs: u32,
    top_k: u32,
) {
    let i = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if i >= total {
        terminate!();
    }
    let p = (i / d_vecs) as usize;
    let c = (i % d_vecs) as usize;
    let a = assign[p];
    let t = source_row(assign, p, top_k);
    dout[i as usize] = Vector::<f32, N>::new(weights[a as usize]) * dy[t * d_vecs as usize + c];
}

/// Combine backward to the weights, one unit per assignment `a = t·k + j`:
/// `dw[a] = Σ_c dy[t, c] · o[inverse[a], c]`.
#[cube(launch_unchecked)]
pub fn combine_weights_backward_kernel<N: Size>(
    dy: &Array<Vector<f32, N>>,
    o: &Array<Vector<f32, N>>,
    inverse: &Array<u32>,
    dweights: &mut Array<f32>,
    assignments: u32,
    d_vecs: u32,
    top_k: u32,
    #[comptime] width: usize,
) {
    let a = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if a >= assignments {
        terminate!();
    }
    let t = (a / top_k) as usize;
    let d_vecs = d_vecs as usize;
    let row = inverse[a as usize] as usize * d_vecs;
    let mut acc = Vector::<f32, N>::new(0.0f32);
    for c in 0..d_vecs {
        acc += dy[t * d_vecs + c] * o[row + c];
    }
    let mut total = 0.0f32;
    #[unroll]
    for q in 0..width {
        total += acc[q];
    }
    dweights[a as usize] = total;
}

/// Grouped weight gradient: `dw[e, i, c] = Σ_{p ∈ group e} lhs[src(p), i] · rhs[p, c]` with
/// `lhs [·, inner]` (gathered through `assign[p] / k` when `gather`), `rhs [m, cols]`,
/// `dw [E, inner, cols]`. Each unit computes `unit_rows` consecutive `i` × `N` columns; grid x
/// over column vectors, y over (expert, `i` tile). With `quads` (needs `4 | inner` and
/// `4 | unit_rows`), `lhs` is read as 4-wide vectors through `lhs4` (the same buffer).
#[cube(launch_unchecked)]
pub fn grouped_weight_grad_kernel<N: Size>(
    lhs: &Array<f32>,
    lhs4: &Array<Vector<f32, Const<4>>>,
    rhs: &Array<Vector<f32, N>>,
    assign: &Array<u32>,
    offsets: &Array<u32>,
    dw: &mut Array<Vector<f32, N>>,
    inner: u32,
    col_vecs: u32,
    i_tiles: u32,
    top_k: u32,
    #[comptime] unit_rows: usize,
    #[comptime] gather: bool,
    #[comptime] quads: bool,
) {
    let col = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
    let col_vecs = col_vecs as usize;
    if col >= col_vecs {
        terminate!();
    }
    let expert = CUBE_POS_Y / i_tiles;
    let i0 = (CUBE_POS_Y % i_tiles) as usize * unit_rows;
    let inner = inner as usize;
    let mut acc = Array::<Vector<f32, N>>::new(unit_rows);
    #[unroll]
    for r in 0..unit_rows {
        acc[r] = Vector::<f32, N>::new(0.0f32);
    }
    let lo = offsets[expert as usize] as usize;
    let hi = offsets[expert as usize + 1] as usize;
    for p in lo..hi {
        let mut src = p;
        if gather {
            src = source_row(assign, p, top_k);
        }
        let g = rhs[p * col_vecs + col];
        if quads {
            let row = src * inner / 4;
            #[unroll]
            for q in 0..unit_rows / 4 {
                let lv = lhs4[row + min(i0 / 4 + q, inner / 4 - 1)];
                #[unroll]
                for j in 0..4usize {
                    acc[4 * q + j] += Vector::<f32, N>::new(lv[j]) * g;
                }
            }
        } else {
            #[unroll]
            for r in 0..unit_rows {
                let i = min(i0 + r, inner - 1);
                acc[r] += Vector::<f32, N>::new(lhs[src * inner + i]) * g;
            }
        }
    }
    #[unroll]
    for r in 0..unit_rows {
        let i = i0 + r;
        if i < inner {
            dw[(expert as usize * inner + i) * col_vecs + col] = acc[r];
        }
    }
}

/// Batched transpose `out[b, j, i] = inp[b, i, j]` of `[batches, r, c]`, one unit per element.
#[cube(launch_unchecked)]
pub fn transpose_kernel(inp: &Array<f32>, out: &mut Array<f32>, total: u32, r: u32, c: u32) {
    let idx = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    if idx >= total {
        terminate!();
    }
    let per = r * c;
    let b = idx / per;
    let rem = idx % per;
    let i = rem / c;
    let j = rem % c;
    out[(b * per + j * r + i) as usize] = inp[idx as usize];
}

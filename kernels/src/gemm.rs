//! The register-tiled GEMM pieces shared by the kernels of [`crate::moe`] and [`crate::dora`]:
//! the unit tiling ([`GemmTiling`]), the grid along the columns ([`unit_blocks`]), the inner loop
//! ([`accumulate_rows`]) and the guarded store of a unit's block ([`store_block`]).

use cubecl::prelude::*;

use crate::launch::cube_size_pow2;

/// Launch shape of a register-tiled GEMM: units per cube along the columns (`x`) and rows (`y`),
/// rows and vectors of columns per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmTiling {
    /// Units along the columns.
    pub cube_x: u32,
    /// Units along the rows.
    pub cube_y: u32,
    /// Rows per unit.
    pub unit_rows: usize,
    /// Vectors of columns per unit.
    pub unit_vecs: usize,
}

impl GemmTiling {
    /// Rows of one cube tile.
    pub fn tile_rows(&self) -> usize {
        self.cube_y as usize * self.unit_rows
    }
}

/// The tiling of the shared GEMM loop on CPU-like devices (lavapipe): 16 units along the columns,
/// each 32 rows × 4 vectors; the DoRA layer's GEMM and the MoE grouped GEMM both run it. One run
/// of the probe `adapted_gemm_speed_wgpu` (tokens 2048, d_in = d_out = 1024, medians of 5) took
/// 112 ms at this tiling, 244 ms at one vector a unit (32 × 1), 136 ms at 16 × 4, 108 ms at
/// 64 × 4 and 104 ms at 32 × 8 (twice the registers, more waste on ragged shapes), 197 ms with
/// units stacked along the rows (4 × 4 units of 16 × 4); burn's matmul (autotune off) took 294 ms in
/// the same run.
pub const CPU_TILING: GemmTiling = GemmTiling {
    cube_x: 16,
    cube_y: 1,
    unit_rows: 32,
    unit_vecs: 4,
};

/// Cubes along the columns for `units` units, at most `max_cube` a cube (a power of two the
/// device allows, no larger than the units need): `(cubes, units per cube)`.
pub fn unit_blocks<R: Runtime>(
    client: &ComputeClient<R>,
    units: usize,
    max_cube: usize,
) -> (u32, u32) {
    let cube = cube_size_pow2(client, max_cube.min(units.next_power_of_two()));
    (units.div_ceil(cube) as u32, cube as u32)
}

/// Stores a unit's block `acc[r·V + v]` (as [`accumulate_rows`] lays it out) into
/// `out[(first + r)·row_stride + offset + col + v]`, skipping rows at or past `rows_end` and
/// vectors at or past `col_vecs` (the padding of ragged tiles).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn store_block<N: Size>(
    out: &mut Array<Vector<f32, N>>,
    acc: &Array<Vector<f32, N>>,
    first: usize,
    rows_end: usize,
    col: usize,
    col_vecs: usize,
    row_stride: usize,
    offset: usize,
    #[comptime] unit_rows: usize,
    #[comptime] unit_vecs: usize,
) {
    #[unroll]
    for r in 0..unit_rows {
        #[unroll]
        for v in 0..unit_vecs {
            let row = first + r;
            if row < rows_end && col + v < col_vecs {
                out[row * row_stride + offset + col + v] = acc[r * unit_vecs + v];
            }
        }
    }
}

/// `acc[r·V + v] += scale · Σ_{i < inner} left[src[r]·inner + i] · right[right_start + i·col_vecs + c_v]`
/// for the `unit_rows` rows of a unit and its `V = unit_vecs` vectors of `N` columns,
/// `c_v = min(first_vec + v, col_vecs − 1)` (a vector past the row's end repeats the last one; the
/// caller does not store it): `left` row-major with rows of `inner` elements (row ids `src`),
/// `right` `[inner, col_vecs]` vectors. With `quads` (needs `4 | inner`) `left` is read through
/// `left4` (the same buffer as 4-wide vectors), four inner steps per load. `scaled` multiplies
/// `right` by `scale` as it is loaded (otherwise `scale` is unread).
///
/// Why a unit holds a block of rows *and* columns: on lavapipe (Mesa 22.3) every buffer load
/// inside a loop runs as a scalar loop over the SIMD lanes, whatever its address, so the cost of
/// a GEMM there is its loads per lane: `R + 4V` scalars per inner step for `4·R·V` multiply–adds.
/// One vector column per unit (`V = 1`) spends a load of `left` on every four of them.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn accumulate_rows<N: Size>(
    acc: &mut Array<Vector<f32, N>>,
    src: &Array<usize>,
    left: &Array<f32>,
    left4: &Array<Vector<f32, Const<4>>>,
    right: &Array<Vector<f32, N>>,
    right_start: usize,
    first_vec: usize,
    inner: usize,
    col_vecs: usize,
    scale: f32,
    #[comptime] unit_rows: usize,
    #[comptime] unit_vecs: usize,
    #[comptime] quads: bool,
    #[comptime] scaled: bool,
) {
    let sv = Vector::<f32, N>::new(scale);
    let mut cols = Array::<usize>::new(unit_vecs);
    #[unroll]
    for v in 0..unit_vecs {
        cols[v] = right_start + min(first_vec + v, col_vecs - 1);
    }
    let mut pos = 0usize;
    if quads {
        let mut w = Array::<Vector<f32, N>>::new(4 * unit_vecs);
        for q in 0..inner / 4 {
            #[unroll]
            for j in 0..4usize {
                #[unroll]
                for v in 0..unit_vecs {
                    let mut wv = right[pos + j * col_vecs + cols[v]];
                    if scaled {
                        wv *= sv;
                    }
                    w[j * unit_vecs + v] = wv;
                }
            }
            pos += 4 * col_vecs;
            #[unroll]
            for r in 0..unit_rows {
                let xv = left4[src[r] * inner / 4 + q];
                let x0 = Vector::<f32, N>::new(xv[0]);
                let x1 = Vector::<f32, N>::new(xv[1]);
                let x2 = Vector::<f32, N>::new(xv[2]);
                let x3 = Vector::<f32, N>::new(xv[3]);
                #[unroll]
                for v in 0..unit_vecs {
                    let i = r * unit_vecs + v;
                    let mut s = fma(x0, w[v], acc[i]);
                    s = fma(x1, w[unit_vecs + v], s);
                    s = fma(x2, w[2 * unit_vecs + v], s);
                    acc[i] = fma(x3, w[3 * unit_vecs + v], s);
                }
            }
        }
    } else {
        let mut w = Array::<Vector<f32, N>>::new(unit_vecs);
        for i in 0..inner {
            #[unroll]
            for v in 0..unit_vecs {
                let mut wv = right[pos + cols[v]];
                if scaled {
                    wv *= sv;
                }
                w[v] = wv;
            }
            pos += col_vecs;
            #[unroll]
            for r in 0..unit_rows {
                let xs = Vector::<f32, N>::new(left[src[r] * inner + i]);
                #[unroll]
                for v in 0..unit_vecs {
                    let k = r * unit_vecs + v;
                    acc[k] = fma(xs, w[v], acc[k]);
                }
            }
        }
    }
}

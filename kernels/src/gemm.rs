//! The register-tiled inner loop shared by the GEMM kernels of [`crate::moe`] and [`crate::dora`].

use cubecl::prelude::*;

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

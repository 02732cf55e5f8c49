//! The register-tiled inner loop shared by the GEMM kernels of [`crate::moe`] and [`crate::dora`].

use cubecl::prelude::*;

/// `acc[r] += scale · Σ_{i < inner} left[src[r]·inner + i] · right[right_start + i·col_vecs]`
/// for the `unit_rows` rows of a unit and one vector of `N` columns: `left` row-major with rows of
/// `inner` elements (row ids `src`), `right` `[inner, col_vecs]` vectors. With `quads` (needs
/// `4 | inner`) `left` is read through `left4` (the same buffer as 4-wide vectors), four inner
/// steps per load: on a software device (lavapipe) a load whose address is the same on every unit
/// of the cube is one scalar load and a broadcast, so the rows should depend on the cube alone.
/// `scaled` multiplies `right` by `scale` as it is loaded (otherwise `scale` is unread).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn accumulate_rows<N: Size>(
    acc: &mut Array<Vector<f32, N>>,
    src: &Array<usize>,
    left: &Array<f32>,
    left4: &Array<Vector<f32, Const<4>>>,
    right: &Array<Vector<f32, N>>,
    right_start: usize,
    inner: usize,
    col_vecs: usize,
    scale: f32,
    #[comptime] unit_rows: usize,
    #[comptime] quads: bool,
    #[comptime] scaled: bool,
) {
    let sv = Vector::<f32, N>::new(scale);
    let mut pos = right_start;
    if quads {
        for q in 0..inner / 4 {
            let mut w0 = right[pos];
            let mut w1 = right[pos + col_vecs];
            let mut w2 = right[pos + 2 * col_vecs];
            let mut w3 = right[pos + 3 * col_vecs];
            if scaled {
                w0 *= sv;
                w1 *= sv;
                w2 *= sv;
                w3 *= sv;
            }
            pos += 4 * col_vecs;
            #[unroll]
            for r in 0..unit_rows {
                let xv = left4[src[r] * inner / 4 + q];
                let mut s = fma(Vector::<f32, N>::new(xv[0]), w0, acc[r]);
                s = fma(Vector::<f32, N>::new(xv[1]), w1, s);
                s = fma(Vector::<f32, N>::new(xv[2]), w2, s);
                acc[r] = fma(Vector::<f32, N>::new(xv[3]), w3, s);
            }
        }
    } else {
        for i in 0..inner {
            let mut wv = right[pos];
            if scaled {
                wv *= sv;
            }
            pos += col_vecs;
            #[unroll]
            for r in 0..unit_rows {
                acc[r] = fma(Vector::<f32, N>::new(left[src[r] * inner + i]), wv, acc[r]);
            }
        }
    }
}

//! Launch geometry shared by the kernels: vector widths and grids that respect device limits.

use cubecl::prelude::*;

/// The widest vector (in elements of `elem_bytes` bytes) the client loads efficiently that divides
/// `len`, so rows of length `len` can be read as whole vectors. Always at least 1.
pub fn vector_size_dividing<R: Runtime>(
    client: &ComputeClient<R>,
    elem_bytes: usize,
    len: usize,
) -> usize {
    client
        .io_optimized_vector_sizes(elem_bytes)
        .find(|&n| n > 0 && len.is_multiple_of(n))
        .unwrap_or(1)
}

/// A grid of `cubes` cubes laid out along x, spilling into y when x would exceed the device's
/// maximum cube count. Kernels recover the linear cube index as `CUBE_POS_Y * CUBE_COUNT_X +
/// CUBE_POS_X` and must ignore indices `>= cubes` (the last y row may be partial).
pub fn grid_1d<R: Runtime>(client: &ComputeClient<R>, cubes: usize) -> CubeCount {
    let max_x = client.properties().hardware.max_cube_count.0.max(1) as usize;
    let cubes = cubes.max(1);
    if cubes <= max_x {
        CubeCount::Static(cubes as u32, 1, 1)
    } else {
        let y = cubes.div_ceil(max_x);
        CubeCount::Static(max_x as u32, y as u32, 1)
    }
}

/// The largest power of two `<= min(want, device max units per cube)`, at least 1.
pub fn cube_size_pow2<R: Runtime>(client: &ComputeClient<R>, want: usize) -> usize {
    let max_units = client.properties().hardware.max_units_per_cube as usize;
    let max_x = client.properties().hardware.max_cube_dim.0 as usize;
    let cap = want.min(max_units).min(max_x).max(1);
    1usize << (usize::BITS - 1 - cap.leading_zeros())
}

/// The largest buffer, in bytes, the client can allocate and bind in one piece.
pub fn max_buffer_bytes<R: Runtime>(client: &ComputeClient<R>) -> u64 {
    client.properties().memory.max_page_size
}

/// Whether the device is a SIMD-on-CPU software device (no plane operations: lavapipe), where
/// loads are paid per lane: Mesa 22.3's llvmpipe turns a buffer load inside any loop or branch
/// into a scalar loop over the SIMD lanes (its one-load-and-broadcast path for an address every
/// lane shares applies only outside control flow), so kernels there are tiled to minimise loads
/// per multiply–add (loads the whole cube shares still measure cheaper than divergent ones).
pub fn cpu_like<R: Runtime>(client: &ComputeClient<R>) -> bool {
    client.properties().features.plane.is_empty()
}

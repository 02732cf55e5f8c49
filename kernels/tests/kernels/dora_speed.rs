//! Speed probes of the LoRA/DoRA layers (ignored tests, run by hand): where the forward's time
//! goes piece by piece, the adapted GEMM's tilings, and a whole training step. Run with
//! `cargo test --release -p claimbench-kernels --test kernels dora_ -- --ignored --nocapture`
//! (`--features cuda` adds the CUDA instantiations).

use burn::backend::{Autodiff, Wgpu};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use claimbench_kernels::burn_ops::{DoraBackend, NormGrad, dora_linear, lora_linear};
use claimbench_kernels::testing::{client_or_skip, uniform};

use crate::dora_ops::{Case, CubeWgpu, has_wgpu, t1, t2};

/// Where the DoRA forward's time goes, as a probe: at the benchmark's shape (tokens 2048,
/// d_in = d_out = 1024, r = 16, f32) on `B`, the median over `reps` rounds (each `iters` calls,
/// then a read and a sync) of each piece: the bare `x·W0`, `x·[W0 | A]` (the one GEMM the layer
/// runs, and the concatenation), the thin `x·A`, the column norms, the epilogue, and the whole
/// layer. Ignored; run with
/// `cargo test --release -p claimbench-kernels --test kernels dora_pieces -- --ignored --nocapture`
/// (`--features cuda` adds the CUDA instantiation).
fn dora_pieces_speed<B: DoraBackend>(what: &str, iters: usize, reps: usize) {
    use std::time::Instant;
    let (n, d, r) = (2048usize, 1024usize, 16usize);
    let c = Case::new(n, d, d, r, 5);
    let s = c.spec;
    let x = t2::<B>(&c.x, [n, d]);
    let w0 = t2::<B>(&c.w0, [d, d]);
    let a = t2::<B>(&c.a, [d, r]);
    let b = t2::<B>(&c.b, [r, d]);
    let m = t1::<B>(&c.m);
    let wa = Tensor::cat(vec![w0.clone(), a.clone()], 1);
    let device = x.device();
    let time = |f: &dyn Fn() -> Tensor<B, 2>| -> f64 {
        let mut v = Vec::new();
        for rep in 0..reps + 1 {
            let t0 = Instant::now();
            let mut out = f();
            for _ in 1..iters {
                out = f();
            }
            let _ = out.slice([0..1, 0..1]).into_data();
            let _ = B::sync(&device);
            if rep > 0 {
                v.push(t0.elapsed().as_secs_f64() * 1e3 / iters as f64);
            }
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let norms = || {
        B::dora_column_norms(
            w0.clone().into_primitive().tensor(),
            a.clone().into_primitive().tensor(),
            b.clone().into_primitive().tensor(),
            s.scale(),
        )
    };
    let g = Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(norms()));
    let both = x.clone().matmul(wa.clone());
    type Piece<'a, B> = (&'static str, Box<dyn Fn() -> Tensor<B, 2> + 'a>);
    let pieces: Vec<Piece<'_, B>> = vec![
        ("x·W0", Box::new(|| x.clone().matmul(w0.clone()))),
        (
            "x·[W0|A] (precat)",
            Box::new(|| x.clone().matmul(wa.clone())),
        ),
        (
            "cat + x·[W0|A]",
            Box::new(|| {
                x.clone()
                    .matmul(Tensor::cat(vec![w0.clone(), a.clone()], 1))
            }),
        ),
        ("x·A", Box::new(|| x.clone().matmul(a.clone()))),
        (
            "column norms",
            Box::new(|| {
                let t =
                    Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(norms()));
                t.reshape([1, d])
            }),
        ),
        (
            "epilogue",
            Box::new(|| {
                Tensor::<B, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(
                    B::lora_epilogue(
                        both.clone().into_primitive().tensor(),
                        b.clone().into_primitive().tensor(),
                        Some(g.clone().into_primitive().tensor()),
                        s.scale(),
                    ),
                ))
            }),
        ),
        (
            "epilogue backward",
            Box::new(|| {
                // `x` stands in for `∂L/∂y` (same shape, d_in = d_out).
                let (dz, _) = B::dora_epilogue_backward(
                    x.clone().into_primitive().tensor(),
                    both.clone().into_primitive().tensor(),
                    b.clone().into_primitive().tensor(),
                    g.clone().into_primitive().tensor(),
                    s.scale(),
                );
                Tensor::<B, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(dz))
            }),
        ),
        (
            "lora_linear",
            Box::new(|| lora_linear(&s, x.clone(), w0.clone(), a.clone(), b.clone()).unwrap()),
        ),
        (
            "adapted_forward (g given)",
            Box::new(|| {
                let (y, _) = B::adapted_forward(
                    x.clone().into_primitive().tensor(),
                    w0.clone().into_primitive().tensor(),
                    a.clone().into_primitive().tensor(),
                    b.clone().into_primitive().tensor(),
                    Some(g.clone().into_primitive().tensor()),
                    s.scale(),
                    false,
                );
                Tensor::<B, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(y))
            }),
        ),
        (
            "dora_linear",
            Box::new(|| {
                dora_linear(
                    &s,
                    x.clone(),
                    w0.clone(),
                    a.clone(),
                    b.clone(),
                    m.clone(),
                    NormGrad::Detached,
                )
                .unwrap()
            }),
        ),
    ];
    for (name, f) in &pieces {
        println!("{what} {name}: {:.4} ms", time(f.as_ref()));
    }
}

#[test]
#[ignore]
fn dora_pieces_speed_wgpu() {
    if has_wgpu() {
        dora_pieces_speed::<Wgpu>("fused wgpu", 1, 7);
        dora_pieces_speed::<CubeWgpu>("cube wgpu", 1, 7);
    }
}

#[cfg(feature = "cuda")]
#[test]
#[ignore]
fn dora_pieces_speed_cuda() {
    if client_or_skip::<cubecl::cuda::CudaRuntime>("dora pieces cuda").is_some() {
        dora_pieces_speed::<burn::backend::Cuda>("cuda", 20, 7);
    }
}

/// The fused path's GEMM at the benchmark's shape (tokens 2048, d_in = d_out = 1024, r = 16)
/// on lavapipe, as a probe. First the bare kernel (`rank = 0`) at several unit tilings `(rows,
/// vectors, cube_x, cube_y)`, the first being [`dora::ADAPTED_MAIN`], checked equal, medians of 5
/// rounds; the same for the thin `x A` launch ([`dora::ADAPTED_THIN`] first). Then medians of 7
/// interleaved rounds (each one call, then a full read) of the bare kernel, the MoE grouped GEMM with one expert, `adapted_matmul` for
/// DoRA with and without `both`, `adapted_matmul` at `d_out = r` (two thin launches: what `x A`
/// costs, twice) and burn's matmul on the fused default backend. Ignored; run with
/// `cargo test --release -p claimbench-kernels --test kernels adapted_gemm_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn adapted_gemm_speed_wgpu() {
    use claimbench_kernels::dora;
    use claimbench_kernels::moe::{self, MoeDims};
    use cubecl::prelude::{ArrayArg, CubeCount, CubeDim, CubeElement};
    use std::time::Instant;
    let Some(client) = client_or_skip::<cubecl::wgpu::WgpuRuntime>("probe") else {
        return;
    };
    let (n, d, r) = (2048usize, 1024usize, 16usize);
    let dims = MoeDims {
        tokens: n,
        experts: 1,
        top_k: 1,
        d_model: d,
        hidden: d,
    };
    let f = |len: usize, seed| client.create_from_slice(f32::as_bytes(&uniform(len, seed)));
    let x = f(n * d, 1);
    let w = f(d * d, 2);
    let a = f(d * r, 3);
    let b = f(d * r, 4);
    let g = f(d, 5);
    let offsets = client.create_from_slice(u32::as_bytes(&[0u32, n as u32]));
    let tiling = moe::GEMM_CPU;
    let ddims = dora::Dims {
        rows: n,
        d_out: d,
        rank: r,
    };
    let tdims = dora::Dims {
        rows: n,
        d_out: r,
        rank: r,
    };
    // The bare product (rank 0) at one tiling: `(unit_rows, unit_vecs, cube_x, cube_y)`.
    let bare_cols = |cols: usize,
                     right: &cubecl::server::Handle,
                     (ur, uv, cx, cy): (usize, usize, usize, usize)| {
        let y = client.empty(n * cols * 4);
        unsafe {
            dora::kernel::adapted_matmul_kernel::launch_unchecked::<cubecl::wgpu::WgpuRuntime>(
                &client,
                CubeCount::Static(
                    (cols / 4).div_ceil(uv * cx) as u32,
                    n.div_ceil(ur * cy) as u32,
                    1,
                ),
                CubeDim::new_2d(cx as u32, cy as u32),
                4,
                ArrayArg::from_raw_parts(x.clone(), n * d),
                ArrayArg::from_raw_parts(x.clone(), n * d / 4),
                ArrayArg::from_raw_parts(right.clone(), d * cols / 4),
                ArrayArg::from_raw_parts(a.clone(), d * r),
                ArrayArg::from_raw_parts(a.clone(), d * r / 4),
                ArrayArg::from_raw_parts(a.clone(), d * r / 4),
                ArrayArg::from_raw_parts(a.clone(), d * r / 4),
                ArrayArg::from_raw_parts(y.clone(), n * cols / 4),
                ArrayArg::from_raw_parts(y.clone(), n * cols / 4),
                n as u32,
                d as u32,
                (cols / 4) as u32,
                (cols / 4) as u32,
                0,
                1.0,
                ur,
                uv,
                0,
                false,
                true,
                false,
                false,
            );
        }
        y
    };
    let bare = |t| bare_cols(d, &w, t);
    let thin = dora::ADAPTED_THIN;
    let thin_tilings = [
        (
            thin.unit_rows,
            thin.unit_vecs,
            (thin.cube_x as usize).min(r / 4),
            thin.cube_y as usize,
        ),
        (32, 4, 1, 8),
        (8, 4, 1, 16),
        (32, 2, 2, 4),
        (16, 4, 1, 8),
        (64, 1, 4, 1),
    ];
    let thin_ref =
        f32::from_bytes(&client.read_one(bare_cols(r, &a, thin_tilings[0])).unwrap()).to_vec();
    let mut tt = vec![Vec::new(); thin_tilings.len()];
    for _ in 0..7 {
        for (i, t) in thin_tilings.iter().enumerate() {
            let t0 = Instant::now();
            let got = f32::from_bytes(&client.read_one(bare_cols(r, &a, *t)).unwrap()).to_vec();
            tt[i].push(t0.elapsed().as_secs_f64() * 1e3);
            assert!(
                got.iter().zip(&thin_ref).all(|(p, q)| (p - q).abs() < 1e-3),
                "{t:?}"
            );
        }
    }
    for (t, mut v) in thin_tilings.iter().zip(tt) {
        v.sort_by(f64::total_cmp);
        println!(
            "thin {t:?}: median {:.2} ms, min {:.2}",
            v[v.len() / 2],
            v[0]
        );
    }
    let main = dora::ADAPTED_MAIN;
    let tilings = [
        (
            main.unit_rows,
            main.unit_vecs,
            main.cube_x as usize,
            main.cube_y as usize,
        ),
        (32, 1, 16, 1),
        (16, 4, 16, 1),
        (64, 4, 16, 1),
        (32, 8, 16, 1),
        (16, 4, 4, 4),
    ];
    // Every tiling must give the same product.
    let reference = f32::from_bytes(&client.read_one(bare(tilings[0])).unwrap()).to_vec();
    for t in &tilings[1..] {
        let got = f32::from_bytes(&client.read_one(bare(*t)).unwrap()).to_vec();
        let worst = reference
            .iter()
            .zip(&got)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "tiling {t:?} differs by {worst}");
    }
    let mut tt = vec![Vec::new(); tilings.len()];
    for _ in 0..5 {
        for (i, t) in tilings.iter().enumerate() {
            let t0 = Instant::now();
            let _ = client.read_one(bare(*t)).unwrap();
            tt[i].push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    for (t, mut v) in tilings.iter().zip(tt) {
        v.sort_by(f64::total_cmp);
        println!(
            "bare {t:?}: median {:.1} ms, min {:.1}",
            v[v.len() / 2],
            v[0]
        );
    }
    type BW = Wgpu;
    let dev = Default::default();
    let xt = Tensor::<BW, 2>::from_data(TensorData::new(uniform(n * d, 1), [n, d]), &dev);
    let wt = Tensor::<BW, 2>::from_data(TensorData::new(uniform(d * d, 2), [d, d]), &dev);
    let _ = xt.clone().matmul(wt.clone()).into_data();
    let adapted =
        |dims, right: &cubecl::server::Handle, g: Option<&cubecl::server::Handle>, keep| {
            let (a, b) = (a.clone(), b.clone());
            dora::adapted_matmul(
                &client,
                dims,
                d,
                x.clone(),
                right.clone(),
                a,
                b,
                g.cloned(),
                1.0,
                keep,
            )
            .0
        };
    let mut t = vec![Vec::new(); 6];
    for _ in 0..7 {
        let t0 = Instant::now();
        let _ = xt.clone().matmul(wt.clone()).into_data();
        t[5].push(t0.elapsed().as_secs_f64() * 1e3);
        let runs: [Box<dyn Fn() -> cubecl::server::Handle>; 5] = [
            Box::new(|| bare(tilings[0])),
            Box::new(|| {
                moe::grouped_matmul(
                    &client,
                    dims,
                    x.clone(),
                    n,
                    None,
                    w.clone(),
                    &offsets,
                    d,
                    d,
                    tiling,
                )
            }),
            Box::new(|| adapted(ddims, &w, Some(&g), true)),
            Box::new(|| adapted(ddims, &w, Some(&g), false)),
            Box::new(|| adapted(tdims, &a, None, false)),
        ];
        for (i, run) in runs.iter().enumerate() {
            let _ = client.read_one(run()).unwrap();
            let t0 = Instant::now();
            let _ = client.read_one(run()).unwrap();
            t[i].push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    for (name, mut v) in [
        "bare adapted kernel",
        "grouped",
        "adapted keep",
        "adapted",
        "thin (xa twice)",
        "burn x·W0",
    ]
    .into_iter()
    .zip(t)
    {
        v.sort_by(f64::total_cmp);
        println!("{name}: median {:.1} ms, min {:.1}", v[v.len() / 2], v[0]);
    }
}

/// Training steps at the benchmark's shape (tokens 2048, d_in = d_out = 1024, r = 16) on
/// lavapipe, as a probe: the forward alone and forward + backward (loss `Σ y`, gradients for
/// `x`, `A`, `B` and, for DoRA, `m`; every gradient reduced and read) of LoRA, DoRA, and DoRA
/// with a fixed untracked `g` (what the column norms and the gain cost in a step). Medians of 5
/// interleaved rounds, each uploading its tensors. It found the detached norms still tracked
/// (see `dora_linear`): 20–25 ms of the step. Ignored; run with
/// `cargo test --release -p claimbench-kernels --test kernels dora_step_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn dora_step_speed_wgpu() {
    dora_step_speed::<Wgpu>("fused wgpu");
    dora_step_speed::<CubeWgpu>("cube wgpu");
}

#[derive(Clone, Copy)]
enum StepLayer {
    Lora,
    Dora,
    FixedGain,
}

fn dora_step_speed<B: DoraBackend>(what: &str) {
    use std::time::Instant;
    type A<B> = Autodiff<B>;
    let (n, d, r) = (2048usize, 1024usize, 16usize);
    let c = Case::new(n, d, d, r, 5);
    let s = c.spec;
    let step = |layer: StepLayer, backward: bool| {
        let x = t2::<A<B>>(&c.x, [n, d]).require_grad();
        let w0 = t2::<A<B>>(&c.w0, [d, d]);
        let a = t2::<A<B>>(&c.a, [d, r]).require_grad();
        let b = t2::<A<B>>(&c.b, [r, d]).require_grad();
        let m = t1::<A<B>>(&c.m).require_grad();
        let y = match layer {
            StepLayer::Lora => lora_linear(&s, x.clone(), w0, a.clone(), b.clone()).unwrap(),
            StepLayer::Dora => dora_linear(
                &s,
                x.clone(),
                w0,
                a.clone(),
                b.clone(),
                m,
                NormGrad::Detached,
            )
            .unwrap(),
            StepLayer::FixedGain => {
                let (y, _) = <A<B> as DoraBackend>::adapted_forward(
                    x.clone().into_primitive().tensor(),
                    w0.into_primitive().tensor(),
                    a.clone().into_primitive().tensor(),
                    b.clone().into_primitive().tensor(),
                    Some(t1::<A<B>>(&c.m).into_primitive().tensor()),
                    s.scale(),
                    false,
                );
                Tensor::<A<B>, 2>::from_primitive(TensorPrimitive::Float(y))
            }
        };
        if !backward {
            let _ = y.slice([0..1, 0..1]).into_data();
            return;
        }
        let grads = y.sum().backward();
        let sum = x.grad(&grads).unwrap().sum()
            + a.grad(&grads).unwrap().sum()
            + b.grad(&grads).unwrap().sum();
        let _ = sum.into_data();
    };
    let cases = [
        ("LoRA forward", StepLayer::Lora, false),
        ("DoRA forward", StepLayer::Dora, false),
        ("LoRA step", StepLayer::Lora, true),
        ("DoRA step", StepLayer::Dora, true),
        ("DoRA step, fixed g", StepLayer::FixedGain, true),
    ];
    for (_, layer, backward) in cases {
        step(layer, backward);
    }
    let mut t = vec![Vec::new(); cases.len()];
    for _ in 0..5 {
        for (i, (_, layer, backward)) in cases.iter().enumerate() {
            let t0 = Instant::now();
            step(*layer, *backward);
            t[i].push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    for ((name, _, _), mut v) in cases.iter().zip(t) {
        v.sort_by(f64::total_cmp);
        println!(
            "{what} {name}: median {:.1} ms, min {:.1}",
            v[v.len() / 2],
            v[0]
        );
    }
}

//! Kernel-vs-reference suites on wgpu (Mesa lavapipe on a CPU-only machine) and, with the `cuda`
//! feature, on CUDA. Each module instantiates the same generic suites for one runtime.

mod wgpu {
    type TestRuntime = cubecl::wgpu::WgpuRuntime;
    claimbench_kernels::testgen_token_logprob!();
    claimbench_kernels::testgen_cross_entropy!();
}

#[cfg(feature = "cuda")]
mod cuda {
    type TestRuntime = cubecl::cuda::CudaRuntime;
    claimbench_kernels::testgen_token_logprob!();
    claimbench_kernels::testgen_cross_entropy!();
}

/// The bandwidth probe's variants compute what they read: the f64 sum of the input (to f32
/// accumulation error), over awkward lengths (1, odd, not a multiple of the cube, large), and
/// refuse what they cannot plan. The timing itself is exercised once on a small buffer.
mod bandwidth {
    use claimbench_kernels::bandwidth::{Plan, UNROLL, Variant, probe, reference_sum, sum};
    use claimbench_kernels::testing::client_or_skip;
    use cubecl::Runtime;

    /// `|Δ| <= 1e-4·Σ|x| + 1e-6`: f32 partial sums of at most a few thousand terms each.
    fn check<R: Runtime>(test: &str)
    where
        R::Device: Default,
    {
        let Some(client) = client_or_skip::<R>(test) else {
            return;
        };
        for len in [1usize, 7, 1000, 4 * UNROLL * 3, 4 * UNROLL * 257, 1 << 22] {
            let data: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5)
                .collect();
            let want = reference_sum(&data);
            let scale: f64 = data.iter().map(|x| x.abs() as f64).sum();
            for variant in Variant::ALL {
                for max_units in [1usize, 3, 4096] {
                    match sum(&client, variant, &data, max_units) {
                        Ok(got) => assert!(
                            (got - want).abs() <= 1e-4 * scale + 1e-6,
                            "{} len {len} units {max_units}: {got} vs {want}",
                            variant.name()
                        ),
                        Err(e) => {
                            // Only the unrolled read refuses, and only lengths it cannot tile.
                            assert_eq!(variant, Variant::UnrolledRead, "{e}");
                            let width = Plan::new(&client, Variant::StridedRead, len, 1)
                                .unwrap()
                                .width;
                            assert!(!(len / width).is_multiple_of(UNROLL), "{e}");
                        }
                    }
                }
            }
        }
        assert!(Plan::new(&client, Variant::Copy, 0, 1).is_err());
        let m = probe(&client, 1 << 16, 1024, 2);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(
            m.iter().all(|m| m.best_ms > 0.0 && m.gbps().is_finite()),
            "{m:?}"
        );
    }

    #[test]
    fn probe_variants_sum_what_they_read_wgpu() {
        check::<cubecl::wgpu::WgpuRuntime>("bandwidth probe (wgpu)");
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn probe_variants_sum_what_they_read_cuda() {
        check::<cubecl::cuda::CudaRuntime>("bandwidth probe (cuda)");
    }
}

mod cross_entropy_validation {
    use claimbench_kernels::KernelError;
    use claimbench_kernels::cross_entropy::{Settings, check_targets};

    #[test]
    fn bad_settings_and_targets_are_named() {
        let s = Settings::default();
        assert_eq!(check_targets(&[0, -100, 3], 4, s), Ok(2));
        assert!(matches!(
            check_targets(&[0, 4], 4, s),
            Err(KernelError::TargetOutOfRange {
                position: 1,
                id: 4,
                vocab: 4
            })
        ));
        let err = check_targets(&[-100, -100], 4, s).unwrap_err();
        assert!(
            err.to_string()
                .contains("all 2 targets equal the ignore index -100"),
            "{err}"
        );
        let bad = Settings {
            smoothing: 1.5,
            ..s
        };
        let err = check_targets(&[0], 4, bad).unwrap_err();
        assert!(
            err.to_string().contains("label smoothing 1.5 is invalid"),
            "{err}"
        );
        let nan = Settings {
            smoothing: f32::NAN,
            ..s
        };
        assert!(check_targets(&[0], 4, nan).is_err());
    }
}

mod validation {
    use claimbench_kernels::KernelError;
    use claimbench_kernels::token_logprob::{Problem, check_targets};

    #[test]
    fn empty_dimensions_are_refused() {
        assert!(matches!(
            Problem::new(0, 10),
            Err(KernelError::EmptyDimension { .. })
        ));
        assert!(matches!(
            Problem::new(10, 0),
            Err(KernelError::EmptyDimension { .. })
        ));
    }

    #[test]
    fn out_of_range_targets_are_named() {
        let err = check_targets(&[0, 3, 10, -1], 10).unwrap_err();
        assert_eq!(
            err,
            KernelError::TargetOutOfRange {
                position: 2,
                id: 10,
                vocab: 10
            }
        );
        assert!(err.to_string().contains("position 2"));
        assert!(check_targets(&[-1], 10).is_err());
        assert!(check_targets(&[0, 9], 10).is_ok());
    }
}

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

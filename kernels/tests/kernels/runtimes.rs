//! Kernel-vs-reference suites on wgpu (Mesa lavapipe on a CPU-only machine) and, with the `cuda`
//! feature, on CUDA. Each module instantiates the same generic suites for one runtime.

mod wgpu {
    type TestRuntime = cubecl::wgpu::WgpuRuntime;
    claimbench_kernels::testgen_token_logprob!();
}

#[cfg(feature = "cuda")]
mod cuda {
    type TestRuntime = cubecl::cuda::CudaRuntime;
    claimbench_kernels::testgen_token_logprob!();
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

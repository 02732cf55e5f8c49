//! Tests of [`super`].

use super::*;
use burn::backend::{Autodiff, Flex};

type T = Autodiff<Flex>;

/// The small fixture corpus (the tests must not depend on installed packages).
fn env() -> DataEnv {
    DataEnv {
        corpus_root: Some(claimbench_corpus::fixture_root()),
    }
}

fn tiny() -> ExperimentConfig {
    ExperimentConfig {
        stage_steps: 40,
        train_sequences: 256,
        eval_sequences: 32,
        eval_every: 10,
        ..ExperimentConfig::for_scale(Scale::Smoke)
    }
}

#[test]
fn bad_configs_are_refused_with_the_value_named() {
    let bad = |f: &dyn Fn(&mut ExperimentConfig)| {
        let mut c = ExperimentConfig::for_scale(Scale::Small);
        f(&mut c);
        c.validate().unwrap_err().to_string()
    };
    assert!(bad(&|c| c.replay_shares.push(1.5)).contains("replay share 1.5 is outside [0, 1]"));
    let e = bad(&|c| c.eta_min = 2e-2);
    assert_eq!(e, "η_min 2e-2 is above η_max 1e-2");
    let e = bad(&|c| c.warmup_share = 1.5);
    assert!(e.contains("warmup") && e.contains("300"), "{e}");
    assert!(
        bad(&|c| {
            c.infinite_cooldown_share = 1.0;
            c.infinite_anneal_share = 0.0
        })
        .contains("warmup")
    );
    assert!(bad(&|c| c.train_sequences = 0).contains("dataset would be empty"));
    assert!(bad(&|c| c.model.vocab = 10).contains("vocab 10"));
    assert!(bad(&|c| c.model.n_heads = 3).contains("does not divide"));
    ExperimentConfig::for_scale(Scale::Small)
        .validate()
        .unwrap();
    ExperimentConfig::for_scale(Scale::Smoke)
        .validate()
        .unwrap();
}

#[test]
#[ignore = "timing probe: cargo test --release -p claimbench-continual -- --ignored --nocapture"]
fn step_time() {
    let mut cfg = ExperimentConfig::for_scale(Scale::Small);
    if let Ok(v) = std::env::var("PROBE") {
        let patch: serde_json::Value = serde_json::from_str(&v).unwrap();
        let mut base = serde_json::to_value(&cfg).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            base[k] = v.clone();
        }
        cfg = serde_json::from_value(base).unwrap();
    }
    for arm in [
        Arm::Replay {
            shift: Shift::Weak,
            share: 0.0,
        },
        Arm::Replay {
            shift: Shift::Weak,
            share: 0.05,
        },
        Arm::Replay {
            shift: Shift::Weak,
            share: 0.5,
        },
        Arm::Union { shift: Shift::Weak },
        Arm::Replay {
            shift: Shift::Strong,
            share: 0.0,
        },
        Arm::Replay {
            shift: Shift::Strong,
            share: 0.25,
        },
        Arm::Union {
            shift: Shift::Strong,
        },
        Arm::SameData,
        Arm::ConstantMin { shift: Shift::Weak },
        Arm::Peak {
            shift: Shift::Weak,
            peak: cfg.eta_max * 2.0,
        },
        Arm::Infinite {
            shift: Shift::Weak,
            share: 0.05,
        },
    ] {
        let t = std::time::Instant::now();
        let r = run_arm::<T>(
            &cfg,
            &arm,
            1,
            &DataEnv::default(),
            &Default::default(),
            &mut || {},
        )
        .unwrap();
        eprintln!(
            "{:>8} {:>14} {:>6.2?} pre {:.3}/{:.3} last {:.3}/{:.3} avg {:.3} forget {:.3} adapt {:.3} peak-rise {:.3}",
            arm.experiment(),
            arm.name(),
            t.elapsed(),
            r.pre.0,
            r.pre.1,
            r.last.0,
            r.last.1,
            r.average(),
            r.forgetting(),
            r.adaptation(),
            r.peak_d0 - r.pre.0,
        );
    }
}

#[test]
fn the_optimizer_reset_between_stages_changes_stage_1_only() {
    let reset = tiny();
    let carry = ExperimentConfig {
        reset_optimizer: false,
        ..tiny()
    };
    let arm = Arm::Replay {
        shift: Shift::Weak,
        share: 0.05,
    };
    let dev = Default::default();
    let a = run_arm::<T>(&reset, &arm, 3, &env(), &dev, &mut || {}).unwrap();
    let b = run_arm::<T>(&carry, &arm, 3, &env(), &dev, &mut || {}).unwrap();
    // Stage 0 is the same; stage 1 starts from other AdamW moments.
    assert_eq!(a.pre, b.pre, "{:?} vs {:?}", a.curve, b.curve);
    let after = |r: &ArmResult| {
        r.curve
            .iter()
            .find(|p| p.step > r.boundary)
            .copied()
            .unwrap()
    };
    assert_ne!(after(&a).d1_loss, after(&b).d1_loss);
}

#[test]
fn the_parameter_count_matches_the_model() {
    for scale in [Scale::Smoke, Scale::Small] {
        let cfg = ExperimentConfig::for_scale(scale);
        // Through `init_model`: an unlocked init would draw from flex's global seeded RNG
        // while another test initialises under the lock.
        let m = init_model::<Flex>(&cfg, 0, &Default::default());
        assert_eq!(m.num_params(), cfg.model.parameters());
    }
}

#[test]
fn arms_are_distinct_and_named() {
    let cfg = ExperimentConfig::for_scale(Scale::Small);
    let names: Vec<String> = cfg
        .arms()
        .iter()
        .map(|a| format!("{}/{}", a.experiment(), a.name()))
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(
        names.contains(&"strong/replay-0.5pct".to_string()),
        "{names:?}"
    );
    // 7 + 7 replay arms, 2 peaks, constant, 2 unions, same data, infinite.
    assert_eq!(names.len(), 21);
    // Equal total steps for every arm (the union at equal tokens).
    for arm in cfg.arms() {
        assert_eq!(
            cfg.lr_curve(&arm).unwrap().len(),
            2 * cfg.stage_steps,
            "{arm:?}"
        );
    }
}

#[test]
fn an_arm_learns_forgets_and_reuses_the_checkpoint_deterministically() {
    let cfg = tiny();
    let dev = Default::default();
    let arm = Arm::Replay {
        shift: Shift::Strong,
        share: 0.0,
    };
    let ck = pretrain::<T>(&cfg, 7, &env(), &dev, &mut || {}).unwrap();
    let a = run_arm_from::<T>(&cfg, &arm, 7, Some(&ck), &env(), &dev, &mut || {}).unwrap();
    let ln_v = (cfg.model.vocab as f64).ln();
    let start = a.curve[0];
    assert!((start.d0_loss - ln_v).abs() < 0.5, "{start:?}");
    // Stage 0 learns D0; stage 1 learns D1 and forgets D0.
    assert!(a.pre.0 < start.d0_loss - 0.3, "{a:?}");
    assert!(a.adaptation() > 0.3, "{a:?}");
    assert!(a.forgetting() > 0.0, "{a:?}");
    assert_eq!(a.curve.last().unwrap().step, 2 * cfg.stage_steps);
    // A second arm of the same seed starts from the same checkpoint (same boundary D0 loss).
    let half = Arm::Replay {
        shift: Shift::Strong,
        share: 0.5,
    };
    let b = run_arm_from::<T>(&cfg, &half, 7, Some(&ck), &env(), &dev, &mut || {}).unwrap();
    assert_eq!(a.pre, b.pre);
    assert_eq!(
        format!("{:?}", &a.curve[..5]),
        format!("{:?}", &b.curve[..5])
    );
    // Half of every batch from D0 forgets less.
    assert!(b.forgetting() < a.forgetting(), "{a:?} {b:?}");
    // Recomputing stage 0 gives a checkpoint that trains the same arm (what --resume relies on:
    // the record's parameter ids differ from run to run, its weights do not); the checkpoint
    // survives its artifacts bit for bit; run_arm, which computes it itself, gives the same arm.
    let recomputed = pretrain::<T>(&cfg, 7, &env(), &dev, &mut || {}).unwrap();
    let same =
        run_arm_from::<T>(&cfg, &arm, 7, Some(&recomputed), &env(), &dev, &mut || {}).unwrap();
    assert_eq!(format!("{same:?}"), format!("{a:?}"));
    let stored = ck.to_artifacts();
    let back = Checkpoint::from_artifacts(stored[0].1.clone(), &stored[1].1).unwrap();
    assert_eq!(back, ck);
    let again = run_arm::<T>(&cfg, &arm, 7, &env(), &dev, &mut || {}).unwrap();
    assert_eq!(format!("{again:?}"), format!("{a:?}"));
    // An arm that needs the checkpoint refuses to run without one; corrupt curves are refused.
    assert!(run_arm_from::<T>(&cfg, &arm, 7, None, &env(), &dev, &mut || {}).is_err());
    assert!(Checkpoint::from_artifacts(stored[0].1.clone(), b"{}").is_err());
}

//! Tests of [`super`].

use super::*;
use burn::backend::{Autodiff, Flex};

type T = Autodiff<Flex>;

/// A tiny config for unit tests (well under a second per run).
fn tiny() -> Fig1Config {
    Fig1Config {
        sft_steps: 60,
        rm_steps: 60,
        dpo_steps: 40,
        ppo_iterations: 6,
        ppo_batch: 64,
        iter_rounds: 1,
        ..Fig1Config::for_scale(Scale::Smoke)
    }
}

#[test]
fn scales_validate_and_bad_settings_are_named() {
    for s in Scale::ALL {
        Fig1Config::for_scale(s).validate().unwrap();
    }
    let base = Fig1Config::for_scale(Scale::Small);
    let cases: Vec<(Fig1Config, &str)> = vec![
        (
            Fig1Config {
                beta: 0.0,
                ..base.clone()
            },
            "beta = 0",
        ),
        (
            Fig1Config {
                beta: f64::NAN,
                ..base.clone()
            },
            "beta = NaN",
        ),
        (
            Fig1Config {
                dpo_steps: 0,
                ..base.clone()
            },
            "dpo_steps = 0",
        ),
        (
            Fig1Config {
                policy_hidden: 0,
                ..base.clone()
            },
            "policy_hidden = 0",
        ),
        (
            Fig1Config {
                rm_hidden: 0,
                ..base.clone()
            },
            "rm_hidden = 0",
        ),
        (
            Fig1Config {
                pairs_per_prompt: 0,
                ..base.clone()
            },
            "pairs_per_prompt = 0",
        ),
        (
            Fig1Config {
                pairs_per_prompt: 4,
                ..base.clone()
            },
            "pairs_per_prompt = 4",
        ),
        (
            Fig1Config {
                covered_per_prompt: 8,
                ..base.clone()
            },
            "covered_per_prompt = 8",
        ),
        (
            Fig1Config {
                ppo_batch: 3,
                ..base.clone()
            },
            "ppo_batch = 3",
        ),
        (
            Fig1Config {
                off_diagonal_max: 1.0,
                ..base.clone()
            },
            "off_diagonal_max = 1",
        ),
        (
            Fig1Config {
                other_covered_share: -0.1,
                ..base.clone()
            },
            "other_covered_share = -0.1",
        ),
        (
            Fig1Config {
                rm_weight_decay: -1.0,
                ..base.clone()
            },
            "rm_weight_decay = -1",
        ),
        (
            Fig1Config {
                ppo_clip: 0.0,
                ..base.clone()
            },
            "ppo_clip = 0",
        ),
    ];
    for (cfg, needle) in cases {
        let e = cfg.validate().unwrap_err();
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        assert!(run::<T>(&cfg, 0, &Default::default()).is_err());
    }
    let text = serde_json::to_string(&base).unwrap();
    let back: Fig1Config = serde_json::from_str(&text).unwrap();
    assert_eq!(back, base);
    let extra = text.replacen('{', "{\"bogus\": 1, ", 1);
    assert!(serde_json::from_str::<Fig1Config>(&extra).is_err());
}

#[test]
fn setup_covers_the_diagonal_labels_by_true_reward_and_leaves_cells_uncovered() {
    let cfg = Fig1Config::for_scale(Scale::Small);
    let s = Setup::generate(&cfg, 3).unwrap();
    let ny = cfg.n_responses;
    assert_eq!(s.pairs.len(), cfg.n_prompts * cfg.pairs_per_prompt);
    for x in 0..cfg.n_prompts {
        assert!(s.covered[x * ny + x]);
        let n_cov = s.covered[x * ny..(x + 1) * ny]
            .iter()
            .filter(|&&c| c)
            .count();
        assert_eq!(n_cov, cfg.covered_per_prompt);
        assert!(s.pairs.iter().any(|p| p.prompt == x && p.chosen == x));
    }
    for p in &s.pairs {
        assert!(
            s.true_reward[p.prompt * ny + p.chosen] > s.true_reward[p.prompt * ny + p.rejected]
        );
    }
    assert_eq!(Setup::generate(&cfg, 3).unwrap(), s);
    assert_ne!(Setup::generate(&cfg, 4).unwrap(), s);
}

#[test]
fn dpo_loss_starts_at_log2_decreases_and_matches_the_f64_reference() {
    let cfg = tiny();
    let device = Default::default();
    let setup = Setup::generate(&cfg, 1).unwrap();
    let ctx = Ctx::<T>::new(&cfg, &device);
    let mut rng = stream(1, 3);
    let base = MlpWeights::init(8, cfg.policy_hidden, 8, &mut rng);
    let ref_w = ctx.sft(&base, &setup.ref_counts, "sft").unwrap();
    let ref_logp = ctx.logp_host(&ref_w).unwrap();
    let (w, curve) = ctx.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
    assert!((curve[0] - 2f64.ln()).abs() < 1e-5, "{}", curve[0]);
    assert!(*curve.last().unwrap() < 0.9 * curve[0], "{curve:?}");
    // The burn loss of the trained policy equals the f64 tabular DPO loss on its table.
    let lp = ctx.logp_host(&w).unwrap();
    let pol = TabularPolicy::new(8, 8, probs_of(&lp, 8)).unwrap();
    let reference = TabularPolicy::new(8, 8, probs_of(&ref_logp, 8)).unwrap();
    let f64_loss = crate::tabular::dpo_loss(&pol, &reference, &setup.pairs, cfg.beta).unwrap();
    let (_, again) = ctx.dpo(&w, &ref_logp, &setup.pairs, "dpo").unwrap();
    assert!(
        (again[0] - f64_loss).abs() < 1e-4,
        "{} vs {f64_loss}",
        again[0]
    );
}

/// The DPO stage trains the same through the cubecl kernels (burn's fused wgpu, lavapipe on a
/// CPU-only machine) as through the flex composition: same loss curve and final table within
/// f32 tolerance. Skipped without a wgpu device unless `CLAIMBENCH_REQUIRE_DEVICE=1`.
#[test]
fn dpo_trains_the_same_through_the_kernels_and_the_composition() {
    if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>("fig1 dpo on wgpu")
        .is_none()
    {
        return;
    }
    let cfg = Fig1Config {
        dpo_steps: 40,
        ..tiny()
    };
    let setup = Setup::generate(&cfg, 4).unwrap();
    let flex_device = Default::default();
    let flex = Ctx::<T>::new(&cfg, &flex_device);
    let mut rng = stream(4, 3);
    let base = MlpWeights::init(8, cfg.policy_hidden, 8, &mut rng);
    let ref_w = flex.sft(&base, &setup.ref_counts, "sft").unwrap();
    let ref_logp = flex.logp_host(&ref_w).unwrap();
    let (w_flex, c_flex) = flex.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
    type W = Autodiff<burn::backend::Wgpu>;
    let wgpu_device = Default::default();
    let wgpu = Ctx::<W>::new(&cfg, &wgpu_device);
    let (w_wgpu, c_wgpu) = wgpu.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
    for (i, (a, b)) in c_flex.iter().zip(&c_wgpu).enumerate() {
        assert!((a - b).abs() < 2e-4, "step {i}: flex {a} vs wgpu {b}");
    }
    let (pf, pw) = (
        flex.logp_host(&w_flex).unwrap(),
        flex.logp_host(&w_wgpu).unwrap(),
    );
    let worst = pf
        .iter()
        .zip(&pw)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-3, "final log-probs differ by {worst}");
}

#[test]
fn reward_model_orders_every_covered_pair() {
    for rm_arch in [RmArch::PromptHeads, RmArch::Pair] {
        let cfg = Fig1Config { rm_arch, ..tiny() };
        let setup = Setup::generate(&cfg, 2).unwrap();
        let mut rng = stream(2, 3);
        let init = rm_weights(&cfg, &mut rng);
        let (rm, curve) =
            train_reward_model::<T>(&cfg, &setup, &init, &Default::default()).unwrap();
        assert_eq!(rm.len(), 64);
        for p in &setup.pairs {
            assert!(
                rm[p.prompt * 8 + p.chosen] > rm[p.prompt * 8 + p.rejected],
                "{rm_arch:?} {p:?}"
            );
        }
        assert!(curve.last().unwrap() < &(0.5 * curve[0]), "{curve:?}");
    }
}

#[test]
fn same_seed_is_bit_identical_and_metrics_round_trip() {
    let cfg = tiny();
    let device = Default::default();
    let a = run::<T>(&cfg, 7, &device).unwrap();
    let b = run::<T>(&cfg, 7, &device).unwrap();
    assert_eq!(a, b);
    let c = run::<T>(&cfg, 8, &device).unwrap();
    assert_ne!(a.pi_dpo, c.pi_dpo);
    for t in [&a.pi_ref, &a.pi_dpo, &a.pi_ppo, &a.pi_star] {
        for row in t.chunks(8) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }
    assert_eq!(a.curve_ppo_reward.len(), cfg.ppo_iterations + 1);
    assert_eq!(a.iter_reward_sft.len(), cfg.iter_rounds + 1);
    assert_eq!(a.coverage[a.dpo_uncovered_cell], 0.0);
    let rows = a.metrics();
    assert_eq!(Fig1Measurements::from_metrics(&rows).unwrap(), a);
    // Broken rows are named.
    let missing: Vec<_> = rows
        .iter()
        .filter(|r| r.metric != "reward_dpo")
        .cloned()
        .collect();
    let e = Fig1Measurements::from_metrics(&missing).unwrap_err();
    assert!(e.to_string().contains("reward_dpo"), "{e}");
    let mut dup = rows.clone();
    dup.push(MetricRow::new("pi_ref", Some(3), 0.5));
    assert!(Fig1Measurements::from_metrics(&dup).is_err());
    // The JSON form keeps every field (serde_json may move a float by one ulp).
    let text = serde_json::to_string(&a).unwrap();
    let back: Fig1Measurements = serde_json::from_str(&text).unwrap();
    assert_eq!(back.metrics().len(), rows.len());
    assert!((back.reward_dpo - a.reward_dpo).abs() < 1e-12);
}

#[test]
fn other_table_sizes_and_the_pair_reward_model_run() {
    let cfg = Fig1Config {
        n_prompts: 5,
        n_responses: 4,
        covered_per_prompt: 2,
        pairs_per_prompt: 1,
        rm_arch: RmArch::Pair,
        ppo_batch: 20,
        ..tiny()
    };
    let m = run::<T>(&cfg, 0, &Default::default()).unwrap();
    assert_eq!(m.pi_ppo.len(), 20);
    for row in m.pi_dpo.chunks(4) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert_eq!(m.coverage.iter().sum::<f64>(), 10.0);
    assert!(m.ppo_uncovered_cell < 20 && m.coverage[m.ppo_uncovered_cell] == 0.0);
    assert_eq!(Fig1Measurements::from_metrics(&m.metrics()).unwrap(), m);
}

#[test]
fn claims_get_verdicts_from_the_measurements() {
    let cfg = tiny();
    let device = Default::default();
    let runs: Vec<_> = (0..2)
        .map(|s| run::<T>(&cfg, s, &device).unwrap())
        .collect();
    let claims = evaluate(&cfg, &runs, "smoke").unwrap();
    assert_eq!(claims.len(), specs(&cfg).len());
    for c in &claims {
        assert!(c.id.starts_with("dpo-ppo/"));
        // Two seeds are below min_seeds 5: every verdict is inconclusive.
        assert_eq!(c.verdict.as_str(), "inconclusive", "{c:?}");
    }
    // Synthetic per-seed numbers that make every claim hold, then fail: the verdicts follow.
    let make = |seed: u64, good: bool| {
        let mut m = runs[0].clone();
        m.seed = seed;
        let j = seed as f64 * 1e-3;
        let s = if good { 1.0 } else { -1.0 };
        m.dpo_uncovered_increase = UNCOVERED_MARGIN + s * (0.1 + j);
        m.ppo_uncovered_increase = UNCOVERED_MARGIN - s * (0.04 + j);
        m.reward_ppo = 0.9 + j;
        m.reward_dpo = 0.9 - s * (0.2 + j);
        m.ppo_tv_to_optimum = OPTIMUM_TV_MARGIN - s * (0.05 + j);
        m.shift_reward_dpo_sft = 0.8 + j;
        m.shift_reward_dpo_other = 0.8 - s * (0.3 + j);
        m.shift_reward_ppo_sft = 0.95;
        m.shift_reward_ppo_other = 0.95 - (if good { 0.01 } else { 0.6 }) - j;
        m.iter_reward_sft = vec![0.8 + j, 0.8 + j + s * (0.1 + j)];
        m.ppo_oracle_uncovered_increase = UNCOVERED_MARGIN - s * (0.04 + j);
        m.reward_ref = 0.5 + j;
        m.reward_ppo_oracle = 0.5 + j + s * (0.2 + j);
        m
    };
    for (good, want) in [(true, "reproduced"), (false, "not-reproduced")] {
        let per: Vec<_> = (0..5).map(|s| make(s, good)).collect();
        for c in evaluate(&cfg, &per, "small").unwrap() {
            assert_eq!(c.verdict.as_str(), want, "{}: {}", c.id, c.details);
        }
    }
    // Repeated seeds are an error, not a verdict.
    let twice = vec![runs[0].clone(), runs[0].clone()];
    assert!(evaluate(&cfg, &twice, "smoke").is_err());
}

/// Prints the `small` claims for seeds 0..5:
/// `cargo test --release -p claimbench-dpo-ppo -- --ignored --nocapture small_claims`.
#[test]
#[ignore]
fn small_claims() {
    let scale: Scale = std::env::var("FIG1_SCALE")
        .map(|s| s.parse().expect("FIG1_SCALE is smoke, small or full"))
        .unwrap_or_default();
    // FIG1_CONFIG='{"rm_arch": "pair"}' overrides fields of the scale's config.
    let mut value = serde_json::to_value(Fig1Config::for_scale(scale)).unwrap();
    if let Ok(text) = std::env::var("FIG1_CONFIG") {
        let over: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (k, v) in over.as_object().unwrap() {
            value[k] = v.clone();
        }
    }
    let cfg: Fig1Config = serde_json::from_value(value).unwrap();
    cfg.validate().unwrap();
    let device = Default::default();
    let n = if scale == Scale::Smoke { 2 } else { 5 };
    let t = std::time::Instant::now();
    let runs: Vec<_> = (0..n)
        .map(|s| {
            let t = std::time::Instant::now();
            let m = run::<T>(&cfg, s, &device).unwrap();
            eprintln!("seed {s}: {:.2}s", t.elapsed().as_secs_f64());
            m
        })
        .collect();
    eprintln!(
        "total {:.1}s for {n} seeds at {scale}",
        t.elapsed().as_secs_f64()
    );
    for m in &runs {
        let ppo_tv: Vec<f64> = (0..m.n_prompts)
            .map(|x| {
                let r = x * m.n_responses..(x + 1) * m.n_responses;
                (mean_tv(&m.pi_ppo[r.clone()], &m.pi_star[r], m.n_responses) * 100.0).round()
                    / 100.0
            })
            .collect();
        if std::env::var("FIG1_DEBUG").is_ok() {
            for (x, tv) in ppo_tv.iter().enumerate() {
                if *tv > 0.5 {
                    let r = x * m.n_responses..(x + 1) * m.n_responses;
                    let f = |v: &[f64]| {
                        v.iter()
                            .map(|p| format!("{p:.3}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    eprintln!(
                        "  x{x} ref  {}\n  x{x} ppo  {}\n  x{x} star {}\n  x{x} rm   {}\n  x{x} cov  {}\n  x{x} r*   {}",
                        f(&m.pi_ref[r.clone()]),
                        f(&m.pi_ppo[r.clone()]),
                        f(&m.pi_star[r.clone()]),
                        f(&m.rm_reward[r.clone()]),
                        f(&m.coverage[r.clone()]),
                        f(&m.true_reward[r])
                    );
                }
            }
        }
        let c = &m.curve_ppo_reward;
        eprintln!(
            "seed {}: PPO true reward at 0, 1/4, 1/2, end: {:.3} {:.3} {:.3} {:.3}; TV(π_PPO, π*) per prompt {ppo_tv:?}; oracle PPO R {:.3} uncovered +{:.3}",
            m.seed,
            c[0],
            c[c.len() / 4],
            c[c.len() / 2],
            c[c.len() - 1],
            m.reward_ppo_oracle,
            m.ppo_oracle_uncovered_increase
        );
        eprintln!(
            "seed {}: R ref {:.3} dpo {:.3} ppo {:.3} star {:.3} | uncovered dpo +{:.3} @{} ({:.3}→{:.3}) ppo +{:.3} @{} | tv dpo {:.3} ppo {:.3} | rm acc {:.2} argmax-unc {:.2} | shift ref o/s {:.3}/{:.3} dpo {:.3}/{:.3} ppo {:.3}/{:.3} | iter o {:?} s {:?}",
            m.seed,
            m.reward_ref,
            m.reward_dpo,
            m.reward_ppo,
            m.reward_star,
            m.dpo_uncovered_increase,
            m.dpo_uncovered_cell,
            m.pi_ref[m.dpo_uncovered_cell],
            m.pi_dpo[m.dpo_uncovered_cell],
            m.ppo_uncovered_increase,
            m.ppo_uncovered_cell,
            m.dpo_tv_to_optimum,
            m.ppo_tv_to_optimum,
            m.rm_accuracy,
            m.rm_argmax_uncovered,
            m.shift_reward_ref_other,
            m.shift_reward_ref_sft,
            m.shift_reward_dpo_other,
            m.shift_reward_dpo_sft,
            m.shift_reward_ppo_other,
            m.shift_reward_ppo_sft,
            m.iter_reward_other
                .iter()
                .map(|v| (v * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            m.iter_reward_sft
                .iter()
                .map(|v| (v * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
        );
    }
    for c in evaluate(&cfg, &runs, scale.name()).unwrap() {
        eprintln!("{} [{}]: {}", c.id, c.verdict, c.details);
    }
}

//! The scale reports: timings, per-arm losses, routing statistics and the claims' verdicts.
//! Ignored (minutes); run with
//! `cargo test --release -p claimbench-mixtral --test report -- --ignored --nocapture`
//! (`MIXTRAL_REPORT_SCALE=small` for one scale only).

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use claimbench_mixtral::{Arm, MixtralConfig, SeedMeasurements, arm_params, evaluate, run_seed};
use claimbench_paper::{DataEnv, Scale};

type T = Autodiff<Flex>;

fn report(scale: Scale, seeds: &[u64]) {
    run_report(MixtralConfig::for_scale(scale), scale.name(), seeds);
}

fn run_report(cfg: MixtralConfig, scale: &str, seeds: &[u64]) {
    cfg.validate_with_seeds(seeds).unwrap();
    let device = Default::default();
    let t0 = Instant::now();
    let mut per_seed: Vec<SeedMeasurements> = Vec::new();
    let mut t_seeds = Vec::new();
    for &s in seeds {
        let t = Instant::now();
        per_seed.push(run_seed::<T>(&cfg, s, &DataEnv::default(), &device).unwrap());
        t_seeds.push(t.elapsed().as_secs_f64());
    }
    let total = t0.elapsed().as_secs_f64();
    println!("== {scale}: seeds {t_seeds:.1?} s, total {total:.1} s");
    println!(
        "unigram loss: {:.3?}",
        per_seed.iter().map(|m| m.unigram_loss).collect::<Vec<_>>()
    );
    for arm in Arm::ALL {
        let p = arm_params(&cfg.model, arm);
        let v: Vec<f64> = per_seed
            .iter()
            .map(|m| m.arm(arm).unwrap().val_loss)
            .collect();
        let secs: Vec<f64> = per_seed
            .iter()
            .map(|m| m.arm(arm).unwrap().seconds)
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{}: params {}/{} (ffn {}/{}), mean val loss {mean:.4} {v:.4?}, seconds {secs:.1?}",
            arm.as_str(),
            p.total,
            p.active,
            p.ffn_total,
            p.ffn_active
        );
        let a = per_seed[0].arm(arm).unwrap();
        println!(
            "  seed {} curve: steps {:?} train {:.3?} val {:.3?}; final slopes {:.3?}",
            per_seed[0].seed,
            a.curve_steps,
            a.train_curve,
            a.val_curve,
            per_seed
                .iter()
                .map(|m| m.arm(arm).unwrap().final_slope)
                .collect::<Vec<_>>()
        );
        for r in &a.routing {
            println!(
                "  layer {}: same-first {:.3} (chance at observed shares {:.3}), first-or-second \
                 {:.3}, shares×E {:.2?}, domain TV {:.3?}, planted TV {:.3?} (bias {:.3}), MI \
                 {:?}, planted MI {:?}",
                r.layer,
                r.same_first,
                r.same_first_chance,
                r.first_or_second,
                r.shares
                    .iter()
                    .map(|s| s * r.shares.len() as f64)
                    .collect::<Vec<_>>(),
                r.domain_tv,
                r.planted_domain_tv,
                r.planted_bias,
                r.mi,
                r.planted_mi
            );
        }
    }
    for c in evaluate(&cfg, &per_seed, scale).unwrap() {
        println!("{} [{}]: {}", c.id, c.verdict, c.details);
    }
}

#[test]
#[ignore]
fn report_smoke() {
    if std::env::var("MIXTRAL_REPORT_SCALE").is_ok_and(|s| s != "smoke") {
        return;
    }
    report(Scale::Smoke, &[0, 1]);
}

#[test]
#[ignore]
fn report_small() {
    if std::env::var("MIXTRAL_REPORT_SCALE").is_ok_and(|s| s != "small") {
        return;
    }
    report(Scale::Small, &[0, 1, 2, 3, 4]);
}

/// A report of a custom config: `MIXTRAL_PROBE` holds a JSON `MixtralConfig` (missing fields
/// take the `small` preset), `MIXTRAL_PROBE_SEEDS` the number of seeds (default 2). For sizing
/// the presets.
#[test]
#[ignore]
fn report_probe() {
    let Ok(json) = std::env::var("MIXTRAL_PROBE") else {
        return;
    };
    let cfg: MixtralConfig = serde_json::from_str(&json).unwrap();
    let n: u64 = std::env::var("MIXTRAL_PROBE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seeds: Vec<u64> = (0..n).collect();
    run_report(cfg, "probe", &seeds);
}

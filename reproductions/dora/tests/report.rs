//! The scale reports: timings, chosen learning rates, per-arm values and the claims' verdicts.
//! Ignored (minutes); run with
//! `cargo test --release -p claimbench-dora --test report -- --ignored --nocapture`.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use claimbench_dora::{
    DoraConfig, Experiment, Method, SeedMeasurements, arms, evaluate, run_seed, tune,
};
use claimbench_paper::Scale;

type T = Autodiff<Flex>;

fn report(scale: Scale, seeds: &[u64]) {
    let cfg = DoraConfig::for_scale(scale);
    cfg.validate_with_seeds(seeds).unwrap();
    let device = Default::default();
    let t0 = Instant::now();
    let tuning = tune::<T>(&cfg, &device).unwrap();
    let t_tune = t0.elapsed().as_secs_f64();
    let mut per_seed: Vec<SeedMeasurements> = Vec::new();
    let mut t_seeds = Vec::new();
    for &s in seeds {
        let t = Instant::now();
        per_seed.push(run_seed::<T>(&cfg, &tuning, s, &device).unwrap());
        t_seeds.push(t.elapsed().as_secs_f64());
    }
    let total = t0.elapsed().as_secs_f64();
    println!("== {scale}: tune {t_tune:.1} s, seeds {t_seeds:.1?} s, total {total:.1} s");
    for c in &tuning.choices {
        println!(
            "lr {}/{}/r{}: {} (scores {:?})",
            c.experiment.as_str(),
            c.method.as_str(),
            c.rank,
            c.lr,
            c.scores
        );
    }
    println!(
        "pretrain nmse: {:?}",
        per_seed.iter().map(|m| m.pretrain_nmse).collect::<Vec<_>>()
    );
    for e in Experiment::ALL {
        for (method, rank) in arms(&cfg, e) {
            let v: Vec<f64> = per_seed
                .iter()
                .map(|m| m.arm(e, method, rank).unwrap().nmse)
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            println!(
                "{}/{}/r{rank}: mean nmse {mean:.4} {v:.4?}",
                e.as_str(),
                method.as_str()
            );
        }
    }
    for method in [Method::Full, Method::Lora, Method::Dora] {
        let c: Vec<f64> = per_seed
            .iter()
            .map(|m| m.analysis_of(method).unwrap().correlation)
            .collect();
        let s: Vec<f64> = per_seed
            .iter()
            .map(|m| m.analysis_of(method).unwrap().slope)
            .collect();
        println!("analysis {}: corr {c:.3?} slope {s:.3?}", method.as_str());
    }
    for c in evaluate(&cfg, &per_seed, scale.name()).unwrap() {
        println!("{} [{}]: {}", c.id, c.verdict, c.details);
    }
}

#[test]
#[ignore]
fn report_smoke() {
    report(Scale::Smoke, &[0, 1]);
}

#[test]
#[ignore]
fn report_small() {
    report(Scale::Small, &[0, 1, 2, 3, 4]);
}

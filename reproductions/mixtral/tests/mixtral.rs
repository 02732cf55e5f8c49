//! The Mixtral reproduction's tests: config validation messages, the parameter counter (Mixtral
//! 8x7B exactly, the toy models against burn's `num_params`), seeded data from the fixture
//! corpus, the auxiliary losses on constructed routings, routing statistics, a smoke `run_seed`
//! on the fixture with every claim evaluated and its metric rows round-tripped, and training on
//! wgpu (cubecl) vs Flex.

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::prelude::*;
use claimbench_claims::Verdict;
use claimbench_corpus::CorpusConfig;
use claimbench_mixtral::balance::{load_balancing_loss, router_z_loss};
use claimbench_mixtral::data::stream;
use claimbench_mixtral::{
    Arm, AuxNorm, DataConfig, LayerRouting, MIXTRAL_8X7B_ACTIVE, MIXTRAL_8X7B_TOTAL, MixtralConfig,
    ModelConfig, SeedData, SeedMeasurements, TrainConfig, arm_params, chance_overlap, evaluate,
    init_model, mixtral_8x7b, param_counts, run_seed, specs, trace,
};
use claimbench_paper::{DataEnv, Scale};

type T = Autodiff<Flex>;
type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

/// The fixture corpus (`claimbench-corpus`'s test folder): every domain of the presets.
fn env() -> DataEnv {
    DataEnv {
        corpus_root: Some(claimbench_corpus::fixture_root()),
    }
}

/// A config small enough for unit tests (a fraction of a second per arm), on the fixture.
fn tiny() -> MixtralConfig {
    MixtralConfig {
        data: DataConfig {
            corpus: CorpusConfig {
                domains: ["en-fortunes", "de-fortunes", "fr-man"]
                    .map(String::from)
                    .to_vec(),
                max_bytes_per_domain: 100_000,
                vocab_size: 300,
            },
            seq_len: 8,
            val_seqs_per_domain: 4,
        },
        model: ModelConfig {
            vocab: 300,
            d_model: 16,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            experts: 4,
            top_k: 2,
            expert_hidden: 8,
            dense_hidden: 16,
            dense_total_hidden: ModelConfig::matched_total_hidden(4, 8),
        },
        train: TrainConfig {
            steps: 12,
            batch: 4,
            lr: 1e-2,
            warmup: 2,
            eval_every: 4,
            aux_coef: 1e-2,
            aux_norm: AuxNorm::Hf,
            z_coef: 1e-3,
        },
        convergence: claimbench_mixtral::ConvergenceConfig {
            window: 1.0,
            max_relative_drop: 0.01,
        },
        permutations: 19,
        ..MixtralConfig::for_scale(Scale::Smoke)
    }
}

#[test]
fn config_validation_names_the_bad_setting() {
    for scale in Scale::ALL {
        MixtralConfig::for_scale(scale).validate().unwrap();
    }
    let msg = |f: &dyn Fn(&mut MixtralConfig)| {
        let mut c = tiny();
        f(&mut c);
        c.validate().unwrap_err().to_string()
    };
    assert_eq!(
        msg(&|c| c.model.top_k = 5),
        "mixtral setting model.top_k = 5: must be at most model.experts = 4"
    );
    assert_eq!(
        msg(&|c| c.model.experts = 0),
        "mixtral setting model.experts = 0: must be at least 1"
    );
    assert_eq!(
        msg(&|c| c.model.expert_hidden = 0),
        "mixtral setting model.expert_hidden = 0: must be at least 1"
    );
    assert_eq!(
        msg(&|c| c.model.dense_hidden = 0),
        "mixtral setting model.dense_hidden = 0: must be at least 1"
    );
    assert_eq!(
        msg(&|c| c.model.d_model = 0),
        "mixtral setting model.d_model = 0: must be at least 1"
    );
    assert_eq!(
        msg(&|c| c.model.vocab = 320),
        "mixtral setting model.vocab = 320: must equal data.corpus.vocab_size = 300 (the model \
         embeds and predicts the tokenizer's tokens)"
    );
    assert!(
        msg(&|c| c.data.corpus.domains = vec!["klingon".into(), "en-man".into()])
            .starts_with("mixtral setting data.corpus = [\"klingon\", \"en-man\"]: ")
    );
    assert!(msg(&|c| c.data.corpus.domains.truncate(1)).contains("must list at least 2 domains"));
    assert_eq!(
        msg(&|c| c.model.n_heads = 3),
        "mixtral setting model.n_heads = 3: must divide model.d_model = 16"
    );
    assert_eq!(
        msg(&|c| c.model.n_kv_heads = 3),
        "mixtral setting model.n_kv_heads = 3: must divide model.n_heads = 4"
    );
    assert!(
        msg(&|c| c.model.n_heads = 16).contains("odd head width d_model / n_heads = 1"),
        "rotary positions need an even head width"
    );
    assert_eq!(
        msg(&|c| c.model.dense_hidden = 12),
        "mixtral setting model.dense_hidden = 12: must equal model.top_k · model.expert_hidden \
         = 16 (equal active FFN parameters)"
    );
    assert!(msg(&|c| c.data.seq_len = 1).starts_with("mixtral setting data.seq_len = 1"));
    assert_eq!(
        msg(&|c| c.train.lr = f64::NAN),
        "mixtral setting train.lr = NaN: must be a finite number above 0"
    );
    assert!(msg(&|c| c.train.warmup = 12).starts_with("mixtral setting train.warmup = 12"));
    assert!(msg(&|c| c.share_bounds = [1.5, 2.0]).starts_with("mixtral setting share_bounds"));
    assert!(
        msg(&|c| c.specialisation_mi_bound = -1.0)
            .starts_with("mixtral setting specialisation_mi_bound = -1")
    );
    assert!(msg(&|c| c.permutations = 5).starts_with("mixtral setting permutations = 5"));
    assert!(msg(&|c| c.convergence.window = 0.0).starts_with("mixtral setting convergence.window"));
    assert!(
        msg(&|c| c.convergence.max_relative_drop = f64::INFINITY)
            .starts_with("mixtral setting convergence.max_relative_drop")
    );
    // 12 steps, the whole run as the window: a slope of −1 nat per 1000 steps is a drop of
    // 0.012, converged at a loss of 2 (0.6%), not at 1 (1.2%).
    assert!(tiny().converged(-1.0, 2.0) && !tiny().converged(-1.0, 1.0));
    assert!(!tiny().converged(f64::NAN, 2.0));
    assert!(
        msg(&|c| {
            c.convergence.window = 0.1;
        })
        .contains("the convergence slope needs at least 3"),
        "12 steps with checkpoints every 4 leave 1 in the last 10%"
    );
    assert_eq!(
        msg(&|c| c.planted_bias_sd = 0.0),
        "mixtral setting planted_bias_sd = 0: must be a finite number above 0"
    );
    // Seeds.
    assert_eq!(
        tiny().validate_with_seeds(&[]).unwrap_err().to_string(),
        "mixtral setting seeds = []: must hold at least one seed"
    );
    assert_eq!(
        tiny()
            .validate_with_seeds(&[0, 1, 0])
            .unwrap_err()
            .to_string(),
        "mixtral setting seeds[2] = 0: seeds must be distinct (claims pair arms by seed)"
    );
    tiny().validate_with_seeds(&[0, 1, 2, 3, 4]).unwrap();
    // A bad config never trains.
    let mut bad = tiny();
    bad.model.top_k = 7;
    assert!(run_seed::<T>(&bad, 0, &env(), &Default::default()).is_err());
    // serde: missing fields take the small preset, unknown fields are refused.
    let cfg: MixtralConfig = serde_json::from_str(r#"{"train": {"steps": 7}}"#).unwrap();
    let mut want = MixtralConfig::for_scale(Scale::Small);
    want.train.steps = 7;
    assert_eq!(cfg, want);
    let e = serde_json::from_str::<MixtralConfig>(r#"{"model": {"expert": 4}}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `expert`"), "{e}");
    let e = serde_json::from_str::<MixtralConfig>(r#"{"seeds": [1]}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `seeds`"), "{e}");
}

#[test]
fn parameter_counter_is_exact() {
    let c = param_counts(&mixtral_8x7b());
    assert_eq!(c.total, 46_702_792_704);
    assert_eq!(c.active, 12_879_925_248);
    assert_eq!(
        (c.total, c.active),
        (MIXTRAL_8X7B_TOTAL, MIXTRAL_8X7B_ACTIVE)
    );
    // 8 experts × 3 × 4096 × 14336 per layer, 32 layers.
    assert_eq!(c.ffn_total, 32 * 8 * 3 * 4096 * 14_336);
    assert_eq!(c.ffn_active, 32 * 2 * 3 * 4096 * 14_336);
    // The toy models: the counter agrees with burn's own count, for every FFN kind.
    for cfg in [tiny(), MixtralConfig::for_scale(Scale::Small)] {
        for arm in Arm::ALL {
            let model = init_model::<Flex>(&cfg, arm, 0, &Default::default());
            let p = arm_params(&cfg.model, arm);
            assert_eq!(model.num_params() as u64, p.total, "{arm:?}");
            if !arm.is_moe() {
                assert_eq!(p.total, p.active, "{arm:?}");
            }
        }
        // Equal active FFN parameters (the first claim's premise); the MoE's active count
        // exceeds the dense one by the router alone.
        let (moe, dense) = (
            arm_params(&cfg.model, Arm::Moe),
            arm_params(&cfg.model, Arm::DenseActive),
        );
        assert_eq!(moe.ffn_active, dense.ffn_active);
        let m = &cfg.model;
        assert_eq!(
            moe.active - dense.active,
            (m.n_layers * m.d_model * m.experts) as u64
        );
    }
}

#[test]
fn data_is_seeded_and_sound() {
    let cfg = tiny();
    let a = SeedData::load(&cfg, &env()).unwrap();
    let b = SeedData::load(&cfg, &env()).unwrap();
    assert_eq!(a.domains, b.domains);
    assert_eq!(a.val, b.val);
    // Training batches come from their own stream: the same for every arm of a seed, another
    // for another seed.
    let x = a.domains.mixed_batch(5, &mut stream(3, 3));
    let y = b.domains.mixed_batch(5, &mut stream(3, 3));
    assert_eq!(x, y);
    assert_ne!(x, a.domains.mixed_batch(5, &mut stream(4, 3)));
    assert_eq!(x.tokens.len(), 5 * (cfg.data.seq_len + 1));
    assert!(x.tokens.iter().all(|&t| (t as usize) < cfg.model.vocab));
    // Every training window is a window of its domain's training split.
    for (r, &d) in x.domain.iter().enumerate() {
        let w = &x.tokens[r * x.len..(r + 1) * x.len];
        assert!(a.domains.train[d].windows(x.len).any(|s| s == w));
    }
    // Validation: domain-major, `val_seqs_per_domain` each, from the validation split.
    let per = cfg.data.val_seqs_per_domain;
    assert_eq!(a.val.domain.len(), cfg.data.domains() * per);
    assert!(a.val.domain.windows(2).all(|w| w[0] <= w[1]));
    for (r, &d) in a.val.domain.iter().enumerate() {
        let w = &a.val.tokens[r * a.val.len..(r + 1) * a.val.len];
        assert!(a.domains.validation[d].windows(a.val.len).any(|s| s == w));
    }
    // The sample pieces: one per token of the first window's start, the domain's text.
    assert_eq!(a.sample_pieces.len(), cfg.data.domains());
    for p in &a.sample_pieces {
        assert_eq!(
            p.len(),
            cfg.data
                .seq_len
                .min(claimbench_mixtral::experiments::SAMPLE_TOKENS)
        );
        assert!(!p.concat().is_empty());
    }
    // The unigram reference sits below the uniform loss.
    assert!(
        a.unigram_loss > 0.0 && a.unigram_loss < (cfg.model.vocab as f64).ln(),
        "{}",
        a.unigram_loss
    );
    // A split shorter than one window is an error naming the domain.
    let mut big = cfg.clone();
    big.data.seq_len = 4000;
    let e = SeedData::load(&big, &env()).unwrap_err().to_string();
    assert!(
        e.contains("split has") && e.contains("fewer than one window") && e.contains("en-fortunes"),
        "{e}"
    );
}

/// The convergence slope is the least-squares slope over the fitted checkpoints, per 1000 steps.
#[test]
fn final_slope_fits_the_last_checkpoints() {
    let steps = [0, 10, 20, 30, 40];
    let val = [9.0, 5.0, 3.0, 2.9, 2.8];
    let s = claimbench_mixtral::final_slope(&steps, &val, &[20, 30, 40]);
    assert!((s - (-10.0)).abs() < 1e-9, "{s}");
    assert!(claimbench_mixtral::final_slope(&steps, &val, &[40]).is_nan());
}

/// HF's load-balancing loss is `k` and megablocks' is 1 under perfectly balanced routing
/// (uniform router probabilities, every expert chosen equally often); a collapsed routing
/// scores higher; the z-loss of zero logits is `(ln E)²`.
#[test]
fn auxiliary_losses_on_constructed_routings() {
    let device = Default::default();
    let (e, k, n) = (8usize, 2usize, 16usize);
    let probs = Tensor::<Flex, 2>::full([n, e], 1.0 / e as f64, &device);
    // Token t picks experts (t mod 8, (t + 1) mod 8): each expert 4 of the 32 assignments.
    let ids: Vec<i32> = (0..n)
        .flat_map(|t| [(t % e) as i32, ((t + 1) % e) as i32])
        .collect();
    let ids = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [n, k]), &device);
    let read = |t: Tensor<Flex, 1>| t.into_data().to_vec::<f32>().unwrap()[0];
    let hf = read(load_balancing_loss(probs.clone(), ids.clone(), AuxNorm::Hf));
    let mb = read(load_balancing_loss(probs, ids, AuxNorm::Megablocks));
    assert!((hf - k as f32).abs() < 1e-5, "HF balanced: {hf}");
    assert!((mb - 1.0).abs() < 1e-5, "megablocks balanced: {mb}");
    // Collapsed: every token to experts 0 and 1, the router certain of expert 0.
    let mut p = vec![0.0f32; n * e];
    (0..n).for_each(|t| p[t * e] = 1.0);
    let probs = Tensor::<Flex, 2>::from_data(TensorData::new(p, [n, e]), &device);
    let ids = Tensor::<Flex, 2, Int>::from_data(
        TensorData::new((0..n).flat_map(|_| [0i32, 1]).collect::<Vec<_>>(), [n, k]),
        &device,
    );
    let hf = read(load_balancing_loss(probs, ids, AuxNorm::Hf));
    assert!((hf - e as f32).abs() < 1e-5, "HF collapsed: {hf}");
    let z = read(router_z_loss(Tensor::<Flex, 2>::zeros([n, e], &device)));
    let want = (e as f32).ln().powi(2);
    assert!((z - want).abs() < 1e-5, "z-loss {z} vs {want}");
}

#[test]
fn routing_statistics_on_constructed_ids() {
    assert!((chance_overlap(8, 2) - (1.0 - 15.0 / 28.0)).abs() < 1e-12);
    assert!((chance_overlap(8, 2) - 0.4643).abs() < 1e-4);
    // One sequence of 4 positions, k = 2, E = 4: pairs (0,1) same first and overlap,
    // (1,2) overlap through the second choice only, (2,3) disjoint.
    let ids = [0, 1, 0, 2, 3, 2, 1, 0];
    let r = LayerRouting::from_ids(0, &ids, 2, 4, &[0], 1, 4);
    assert!((r.same_first - 1.0 / 3.0).abs() < 1e-12);
    assert!((r.first_or_second - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(r.shares, vec![3.0 / 8.0, 2.0 / 8.0, 2.0 / 8.0, 1.0 / 8.0]);
    assert_eq!(r.domain_tv, vec![0.0]);
    assert!((r.max_share_ratio() - 1.5).abs() < 1e-12);
    assert!((r.min_share_ratio() - 0.5).abs() < 1e-12);
    // Two domains on disjoint experts: TV 0.5 each.
    let ids = [0, 1, 0, 1, 2, 3, 2, 3];
    let r = LayerRouting::from_ids(1, &ids, 2, 2, &[0, 1], 2, 4);
    assert_eq!(r.domain_tv, vec![0.5, 0.5]);
    assert!((r.same_first - 1.0).abs() < 1e-12);
}

fn without_timing(mut m: SeedMeasurements) -> SeedMeasurements {
    m.arms.iter_mut().for_each(|a| a.seconds = 0.0);
    m
}

#[test]
fn smoke_run_is_deterministic_and_every_claim_gets_a_verdict() {
    let cfg = tiny();
    let device = Default::default();
    let a = run_seed::<T>(&cfg, 3, &env(), &device).unwrap();
    let b = run_seed::<T>(&cfg, 3, &env(), &device).unwrap();
    assert_eq!(without_timing(a.clone()), without_timing(b));
    let c = run_seed::<T>(&cfg, 4, &env(), &device).unwrap();
    assert_eq!(a.arms.len(), 4);
    for arm in &a.arms {
        assert!(arm.val_loss.is_finite(), "{:?}", arm.arm);
        assert_eq!(arm.curve_steps, vec![0, 4, 8, 12]);
        assert!(arm.final_slope.is_finite(), "{:?}", arm.arm);
        assert!(arm.val_curve.iter().all(|v| v.is_finite()));
        assert!(arm.train_curve.iter().all(|v| v.is_finite()));
        assert_eq!(arm.val_loss_domain.len(), 3);
        assert!(
            arm.val_curve[3] < arm.val_curve[0],
            "{:?} learns: {:?}",
            arm.arm,
            arm.val_curve
        );
        if arm.arm.is_moe() {
            assert_eq!(arm.routing.len(), 2);
            for r in &arm.routing {
                assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                assert_eq!(r.domain_hist.len(), 3);
                // The positive control was measured on the same logits.
                assert!(r.planted_bias > 0.0, "{:?}", r.planted_bias);
                assert_eq!(r.planted_domain_tv.len(), 3);
                // Both permutation tests ran (19 permutations: p is a multiple of 1/20).
                for t in [r.mi, r.planted_mi] {
                    assert!(t.observed >= 0.0 && t.null_mean >= 0.0, "{t:?}");
                    assert!((t.p * 20.0 - (t.p * 20.0).round()).abs() < 1e-9, "{t:?}");
                }
                assert_eq!(r.sample_experts.len(), 3);
                assert!(
                    r.sample_experts
                        .iter()
                        .all(|s| s.len() == 8 && s.iter().all(|&e| e < 4))
                );
            }
        } else {
            assert!(arm.routing.is_empty());
        }
    }
    // Both MoE arms start from the same weights: their first validation point agrees.
    let (moe, noaux) = (a.arm(Arm::Moe).unwrap(), a.arm(Arm::MoeNoAux).unwrap());
    assert_eq!(moe.val_curve[0], noaux.val_curve[0]);
    assert_ne!(moe.val_loss, noaux.val_loss);
    // The validation set is the seed's too: only the batches and weights differ.
    assert_eq!(a.unigram_loss, c.unigram_loss);
    assert_eq!(a.sample_pieces, c.sample_pieces);
    assert_ne!(a.arms[0].val_loss, c.arms[0].val_loss);
    // Metric rows round-trip; a missing row is named.
    assert_eq!(SeedMeasurements::from_metrics(&a.metrics()).unwrap(), a);
    let rows: Vec<_> = a
        .metrics()
        .into_iter()
        .filter(|r| r.metric != "moe/layer1/same_first_chance")
        .collect();
    let e = SeedMeasurements::from_metrics(&rows).unwrap_err();
    assert!(
        e.to_string()
            .contains("moe/layer1/same_first_chance is missing"),
        "{e}"
    );
    // Every claim gets a computed verdict; with 2 seeds the trained ones are inconclusive,
    // the parameter counts reproduced.
    let claims = evaluate(&cfg, &[a, c], "smoke").unwrap();
    assert_eq!(claims.len(), specs(&cfg).len());
    for claim in &claims {
        assert!(claim.id.starts_with("mixtral/"));
        assert!(claim.details.ends_with(&format!(": {}", claim.verdict)));
        if claim.id.starts_with("mixtral/params-") {
            assert_eq!(claim.verdict, Verdict::Reproduced, "{}", claim.details);
            assert!(!claim.proxy);
        } else {
            assert_eq!(claim.verdict, Verdict::Inconclusive, "{}", claim.details);
            assert_eq!(claim.seeds, vec![3, 4]);
        }
    }
    // A seed without an arm cannot be evaluated.
    let mut partial = run_seed::<T>(&cfg, 5, &env(), &device).unwrap();
    partial.arms.retain(|a| a.arm != Arm::MoeNoAux);
    assert!(evaluate(&cfg, &[partial], "smoke").is_err());
}

#[test]
fn specs_cover_every_layer() {
    let cfg = MixtralConfig::for_scale(Scale::Small);
    let ids: Vec<String> = specs(&cfg).into_iter().map(|s| s.id).collect();
    let l15 = claimbench_mixtral::claims::layer15_stand_in(cfg.model.n_layers);
    for l in 0..cfg.model.n_layers {
        let (same, fos) = if l == l15 {
            (
                "same-first-expert-ratio-to-chance",
                "first-or-second-ratio-to-chance",
            )
        } else {
            (
                "same-first-expert-above-chance",
                "first-or-second-above-chance",
            )
        };
        for p in [
            same,
            "same-first-expert-above-share-chance",
            fos,
            "no-domain-specialisation",
            "planted-specialisation-detected",
        ] {
            assert!(ids.contains(&format!("mixtral/{p}-l{l}")), "{p} l{l}");
        }
    }
    for s in specs(&cfg) {
        if s.id.starts_with("mixtral/params-") {
            assert!(!s.proxy);
        } else {
            assert!(
                s.proxy && s.min_seeds == 5 && !s.margin_why.is_empty(),
                "{}",
                s.id
            );
        }
    }
}

/// Training the MoE model through `CubeBackend<wgpu>` and burn's fused `Wgpu` (where the MoE
/// ops are custom ops of the fusion stream; Mesa lavapipe on a CPU-only machine) follows Flex
/// from the same seed: 3 steps of the total loss (cross-entropy + aux + z), and the
/// first step's gradients of the embedding, `W_q`, the experts, the router and the head.
/// Tolerances: losses relative 1e-4; gradients max |Δ| ≤ 1e-3 · max |g| per tensor (f32 GEMMs
/// and reductions in different orders). Skipped without a wgpu device unless
/// `CLAIMBENCH_REQUIRE_DEVICE=1`.
#[test]
fn wgpu_and_flex_train_the_same() {
    if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>(
        "mixtral training on wgpu",
    )
    .is_none()
    {
        return;
    }
    let cfg = tiny();
    let a = trace::<T>(&cfg, Arm::Moe, 7, 3, &env(), &Default::default()).unwrap();
    let unfused =
        trace::<Autodiff<CubeWgpu>>(&cfg, Arm::Moe, 7, 3, &env(), &Default::default()).unwrap();
    let fused =
        trace::<Autodiff<burn::backend::Wgpu>>(&cfg, Arm::Moe, 7, 3, &env(), &Default::default())
            .unwrap();
    for (what, b) in [("cube wgpu", unfused), ("fused wgpu", fused)] {
        follows_flex(what, &a, &b);
    }
}

/// `b` follows `a` (Flex): losses within 1e-4 relative, gradients within 1e-3 of `max |g|`.
fn follows_flex(what: &str, a: &claimbench_mixtral::Trace, b: &claimbench_mixtral::Trace) {
    assert_eq!(a.losses.len(), 3);
    for (x, y) in a.losses.iter().zip(&b.losses) {
        let rel = (x - y).abs() / x.abs();
        eprintln!("{what}: loss flex {x} wgpu {y}: relative {rel:.2e}");
        assert!(
            rel < 1e-4,
            "{what}: flex {:?} vs wgpu {:?}",
            a.losses,
            b.losses
        );
    }
    assert_eq!(a.grads.len(), 6);
    for ((name, ga), (nb, gb)) in a.grads.iter().zip(&b.grads) {
        assert_eq!(name, nb);
        assert_eq!(ga.len(), gb.len());
        let scale = ga.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let worst = ga
            .iter()
            .zip(gb)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        eprintln!("{what} {name}: max |Δ| = {worst:.2e} (max |g| = {scale:.2e})");
        assert!(scale > 0.0, "{name} has a zero gradient");
        assert!(
            worst <= 1e-3 * scale,
            "{what} {name}: max |Δ| = {worst:.2e}, max |g| {scale:.2e}"
        );
    }
}

#[test]
fn every_scale_fits_in_8_gib_and_huge_settings_are_refused() {
    use claimbench_claims::limits::{GIB, fmt_bytes};
    for scale in Scale::ALL {
        let c = MixtralConfig::for_scale(scale);
        c.validate().unwrap();
        let bytes = c.estimated_bytes();
        eprintln!("mixtral {scale}: {bytes} bytes ({})", fmt_bytes(bytes));
        assert!(bytes < 8 * GIB, "{scale}: {}", fmt_bytes(bytes));
    }
    let msg = |f: fn(&mut MixtralConfig)| {
        let mut c = MixtralConfig::for_scale(Scale::Small);
        f(&mut c);
        c.validate().unwrap_err().to_string()
    };
    assert_eq!(
        msg(|c| c.model.d_model = 1_000_000_000),
        "mixtral setting model.d_model = 1000000000: is above the limit 4096"
    );
    assert_eq!(
        msg(|c| c.train.steps = usize::MAX),
        format!(
            "mixtral setting train.steps = {}: is above the limit 1000000",
            usize::MAX
        )
    );
    type Edit = fn(&mut MixtralConfig);
    let cases: [(&str, Edit); 15] = [
        ("permutations", |c| c.permutations = usize::MAX),
        ("data.seq_len", |c| c.data.seq_len = usize::MAX),
        ("data.val_seqs_per_domain", |c| {
            c.data.val_seqs_per_domain = usize::MAX
        }),
        ("model.vocab", |c| c.model.vocab = usize::MAX),
        ("model.n_layers", |c| c.model.n_layers = usize::MAX),
        ("model.n_heads", |c| c.model.n_heads = usize::MAX),
        ("model.n_kv_heads", |c| c.model.n_kv_heads = usize::MAX),
        ("model.experts", |c| c.model.experts = usize::MAX),
        ("model.top_k", |c| c.model.top_k = usize::MAX),
        ("model.expert_hidden", |c| {
            c.model.expert_hidden = usize::MAX
        }),
        ("model.dense_hidden", |c| c.model.dense_hidden = usize::MAX),
        ("model.dense_total_hidden", |c| {
            c.model.dense_total_hidden = usize::MAX
        }),
        ("train.batch", |c| c.train.batch = usize::MAX),
        ("train.warmup", |c| c.train.warmup = usize::MAX),
        ("train.eval_every", |c| c.train.eval_every = usize::MAX),
    ];
    for (field, patch) in cases {
        let e = msg(patch);
        assert!(
            e.starts_with(&format!("mixtral setting {field} = "))
                && e.contains("is above the limit"),
            "{field}: {e}"
        );
    }
    // The estimate grows with the width and saturates instead of overflowing.
    let c = MixtralConfig::for_scale(Scale::Small);
    let mut wider = c.clone();
    wider.model.d_model = 4 * c.model.d_model;
    assert!(wider.estimated_bytes() > c.estimated_bytes());
    wider.model.d_model = usize::MAX;
    assert_eq!(wider.estimated_bytes(), u64::MAX);
}

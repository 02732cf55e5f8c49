//! The paper's claims as data ([`specs`]) and their verdicts from per-seed measurements
//! ([`evaluate`], through `claimbench_claims::evaluate`). Every trained claim is a toy-scale
//! proxy (`proxy = true`, at least 5 seeds); the parameter counts are exact (`proxy = false`).

use claimbench_claims::{Claim, ClaimError, ClaimSpec, Direction, Evidence, TestSpec};
use serde_json::{Value, json};

use crate::config::MixtralConfig;
use crate::measure::{Arm, SeedMeasurements};
use crate::params::{MIXTRAL_8X7B_ACTIVE, MIXTRAL_8X7B_TOTAL, mixtral_8x7b, param_counts};
use crate::routing::{LayerRouting, chance_overlap};

const PAPER: &str = "mixtral";

const ORDERING_WHY: &str =
    "ordering: no margin, the interval of the paired difference must exclude 0";

/// Where a claim's per-seed numbers come from.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Final validation loss of an arm.
    ValLoss(Arm),
    /// A routing statistic of the MoE arm at a layer, minus a constant.
    Layer(Arm, usize, Stat, f64),
    /// The largest expert share ratio `E·max share` over layers.
    MaxShare(Arm),
    /// A bound check over every layer and expert, minus a constant.
    Shares(Arm, Stat, f64),
}

#[derive(Debug, Clone, Copy)]
enum Stat {
    SameFirst,
    SameFirstExcess,
    FirstOrSecond,
    DomainTv,
    MinShareRatio,
    MaxShareRatio,
}

impl Stat {
    fn of(self, r: &LayerRouting) -> f64 {
        match self {
            Stat::SameFirst => r.same_first,
            Stat::SameFirstExcess => r.same_first - r.same_first_chance,
            Stat::FirstOrSecond => r.first_or_second,
            Stat::DomainTv => r.mean_domain_tv(),
            Stat::MinShareRatio => r.min_share_ratio(),
            Stat::MaxShareRatio => r.max_share_ratio(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Paired(Key, Key),
    Samples(Key),
    Exact(u64),
}

fn table5() -> Value {
    json!({
        "random_first": 0.125,
        "random_first_or_second": 0.464,
        "layer15_first": [0.236, 0.284],
        "layer15_first_or_second": [0.616, 0.670],
        "metric": "repetition rate of expert assignments of consecutive tokens (Table 5, range over datasets)"
    })
}

fn claims(cfg: &MixtralConfig) -> Vec<(ClaimSpec, Source)> {
    let m = &cfg.model;
    let (e, k) = (m.experts, m.top_k);
    let mut out = Vec::new();
    let mk = |id: &str, statement: String, source: &str, metric: String, test: TestSpec| {
        let mut s = ClaimSpec::new(PAPER, id, &statement, source, &metric, test);
        s.margin_why = ORDERING_WHY.into();
        s
    };
    let data = format!(
        "{} domains of sparse order-2 Markov chains over {} tokens ({} successors per context, \
         no domain tag)",
        cfg.data.domains, cfg.data.vocab, cfg.data.successors
    );
    let loss = format!(
        "final validation cross-entropy (nats/token, mean over domains) of a {L}-layer d={d} \
         decoder after {s} steps × {b} sequences of {t} tokens on {data}",
        L = m.n_layers,
        d = m.d_model,
        s = cfg.train.steps,
        b = cfg.train.batch,
        t = cfg.data.seq_len
    );
    let moe = format!("MoE {e} experts × hidden {}, top-{k}", m.expert_hidden);

    let mut s = mk(
        "moe-beats-dense-equal-active",
        format!(
            "A sparse MoE ({moe}) reaches a lower loss than a dense SwiGLU model with the same \
             active FFN parameters (hidden {})",
            m.dense_hidden
        ),
        "Sec. 3, Fig. 3, Table 2 (13B active parameters beat Llama 2 70B)",
        format!(
            "{loss}; a = MoE with aux loss, b = dense hidden {} (paired by seed)",
            m.dense_hidden
        ),
        TestSpec::ordering(Direction::Less),
    );
    s.paper_value = json!({
        "active_params": 12.9e9, "total_params": 46.7e9,
        "mixtral_vs_llama2_70b": {"mmlu": [70.6, 69.9], "gsm8k": [74.4, 69.6],
            "humaneval": [40.2, 29.3], "mbpp": [60.7, 49.8], "math": [28.4, 13.8]}
    });
    out.push((
        s,
        Source::Paired(Key::ValLoss(Arm::Moe), Key::ValLoss(Arm::DenseActive)),
    ));

    let mut s = mk(
        "dense-equal-total-upper-reference",
        format!(
            "A dense model with about the MoE's total FFN parameters (hidden {}, so about {:.1}× \
             the MoE's FFN compute per token) reaches a lower loss than the MoE: the MoE sits \
             between the two dense models",
            m.dense_total_hidden,
            m.dense_total_hidden as f64 / m.dense_hidden as f64
        ),
        "toy plan (papers.md §1): dense with equal total parameters is the upper bound; not a \
         number of the paper",
        format!(
            "{loss}; a = dense hidden {}, b = MoE with aux loss (paired by seed)",
            m.dense_total_hidden
        ),
        TestSpec::ordering(Direction::Less),
    );
    s.paper_value = json!("not reported: the paper compares with other dense models only");
    out.push((
        s,
        Source::Paired(Key::ValLoss(Arm::DenseTotal), Key::ValLoss(Arm::Moe)),
    ));

    let chance_first = 1.0 / e as f64;
    let chance_fos = chance_overlap(e, k);
    for l in 0..m.n_layers {
        let mut s = mk(
            &format!("same-first-expert-above-chance-l{l}"),
            format!(
                "At layer {l}, consecutive tokens are routed to the same first-choice expert \
                 more often than chance (1/E = {chance_first})"
            ),
            "Sec. 5, Table 5 (First choice)",
            format!(
                "validation rate of equal first-choice experts at positions (t, t+1) of the \
                 MoE with aux loss, layer {l}; value = rate − 1/E, compared with 0"
            ),
            TestSpec::ordering(Direction::Greater),
        );
        s.paper_value = table5();
        out.push((
            s,
            Source::Samples(Key::Layer(Arm::Moe, l, Stat::SameFirst, chance_first)),
        ));
        let mut s = mk(
            &format!("same-first-expert-above-share-chance-l{l}"),
            format!(
                "At layer {l}, consecutive tokens share their first-choice expert more often \
                 than independent draws from the observed first-choice shares would (a control: \
                 uneven shares alone raise the rate above 1/E)"
            ),
            "Sec. 5, Table 5 (First choice), with a chance level corrected for imbalance",
            format!(
                "validation rate of equal first-choice experts at positions (t, t+1) of the \
                 MoE with aux loss, layer {l}, minus Σ_e s_e² (s = first-choice shares), \
                 compared with 0"
            ),
            TestSpec::ordering(Direction::Greater),
        );
        s.paper_value = table5();
        out.push((
            s,
            Source::Samples(Key::Layer(Arm::Moe, l, Stat::SameFirstExcess, 0.0)),
        ));
        let mut s = mk(
            &format!("first-or-second-above-chance-l{l}"),
            format!(
                "At layer {l}, the top-{k} expert sets of consecutive tokens overlap more often \
                 than chance (1 − C(E−k,k)/C(E,k) = {:.4})",
                chance_fos
            ),
            "Sec. 5, Table 5 (First or second choice)",
            format!(
                "validation rate of overlapping top-{k} sets at positions (t, t+1) of the MoE \
                 with aux loss, layer {l}; value = rate − {chance_fos:.4}, compared with 0"
            ),
            TestSpec::ordering(Direction::Greater),
        );
        s.paper_value = table5();
        out.push((
            s,
            Source::Samples(Key::Layer(Arm::Moe, l, Stat::FirstOrSecond, chance_fos)),
        ));
    }

    let [lo, hi] = cfg.share_bounds;
    let shares = |which: &str| {
        format!(
            "{which} over every layer and expert of E × (expert's share of the top-{k} \
             assignments on the validation set), MoE with the load-balancing loss \
             (coefficient {}, {:?} normalisation)",
            cfg.train.aux_coef, cfg.train.aux_norm
        )
    };
    let balance_source = "not in the paper (its training losses are unstated): the \
                          load-balancing loss of Switch Transformer / HF Mixtral; toy plan \
                          (papers.md §1)";
    let mut s = mk(
        "aux-min-share-above-bound",
        format!(
            "With the load-balancing loss every expert receives at least {lo}/E of the \
             assignments in every layer"
        ),
        balance_source,
        format!(
            "{}; value = that − {lo}, compared with 0",
            shares("minimum")
        ),
        TestSpec::ordering(Direction::Greater),
    );
    s.paper_value = json!({"balanced_share": "1/E", "bounds_in_units_of_1_over_E": [lo, hi]});
    out.push((
        s,
        Source::Samples(Key::Shares(Arm::Moe, Stat::MinShareRatio, lo)),
    ));
    let mut s = mk(
        "aux-max-share-below-bound",
        format!(
            "With the load-balancing loss no expert receives more than {hi}/E of the \
             assignments in any layer"
        ),
        balance_source,
        format!(
            "{}; value = that − {hi}, compared with 0",
            shares("maximum")
        ),
        TestSpec::ordering(Direction::Less),
    );
    s.paper_value = json!({"balanced_share": "1/E", "bounds_in_units_of_1_over_E": [lo, hi]});
    out.push((
        s,
        Source::Samples(Key::Shares(Arm::Moe, Stat::MaxShareRatio, hi)),
    ));
    let mut s = mk(
        "noaux-more-imbalanced",
        "Without the load-balancing loss the routing is more imbalanced: the largest expert \
         share is higher than with it"
            .into(),
        balance_source,
        "maximum over layers and experts of E × share (1 = balanced, E = collapse onto one \
         expert); a = MoE without aux loss, b = MoE with it (paired by seed, same init)"
            .into(),
        TestSpec::ordering(Direction::Greater),
    );
    s.paper_value = json!("not reported");
    out.push((
        s,
        Source::Paired(Key::MaxShare(Arm::MoeNoAux), Key::MaxShare(Arm::Moe)),
    ));

    let tv = cfg.specialisation_tv_bound;
    for l in 0..m.n_layers {
        let mut s = mk(
            &format!("no-domain-specialisation-l{l}"),
            format!(
                "At layer {l}, experts do not specialise by domain: each domain's expert \
                 histogram is close to the overall one (mean total variation below {tv})"
            ),
            "Sec. 5, Fig. 7 (no obvious topic specialisation)",
            format!(
                "mean over the {} domains of ½ Σ_e |h_domain,e − h_e| (expert histograms of \
                 the top-{k} assignments on the validation set, MoE with aux loss, layer {l}); \
                 value = that − {tv}, compared with 0 (a full split of the experts among the \
                 domains would give {:.2})",
                cfg.data.domains,
                1.0 - 1.0 / cfg.data.domains as f64
            ),
            TestSpec::ordering(Direction::Less),
        );
        s.paper_value = json!(
            "no obvious patterns in the assignment of experts based on the \
             topic (ArXiv, biology, philosophy, …); DM Mathematics slightly different"
        );
        out.push((
            s,
            Source::Samples(Key::Layer(Arm::Moe, l, Stat::DomainTv, tv)),
        ));
    }

    let ours = param_counts(&mixtral_8x7b());
    for (id, what, paper, ours) in [
        ("params-total", "total", MIXTRAL_8X7B_TOTAL, ours.total),
        ("params-active", "active", MIXTRAL_8X7B_ACTIVE, ours.active),
    ] {
        let mut s = ClaimSpec::new(
            PAPER,
            id,
            &format!(
                "Mixtral 8x7B (Table 1: dim 4096, 32 layers, 32 heads × 128, 8 KV heads, \
                 hidden 14336, vocab 32000, 8 experts, top-2) has {paper} {what} parameters"
            ),
            "Table 1, Sec. 2 (47B total / 13B active; 46.7B / 12.9B as announced)",
            &format!(
                "{what} parameters counted from Table 1 (attention q, k, v, o, router, experts \
                 and 2 RMSNorms per layer, final norm, untied embedding and head{})",
                if what == "active" {
                    "; 2 of 8 experts per layer"
                } else {
                    ""
                }
            ),
            TestSpec::exact(paper as f64, 0.0),
        );
        s.proxy = false;
        s.margin = Some(0.0);
        s.margin_why = "a parameter count is an integer: it must match exactly".into();
        s.paper_value = json!(paper);
        out.push((s, Source::Exact(ours)));
    }
    out
}

/// The claims (ids `mixtral/…`) for `cfg`, before running: `moe-beats-dense-equal-active`,
/// `dense-equal-total-upper-reference`, per layer `same-first-expert-above-chance-l{l}`,
/// `same-first-expert-above-share-chance-l{l}` and `first-or-second-above-chance-l{l}`, `aux-min-share-above-bound`,
/// `aux-max-share-below-bound`, `noaux-more-imbalanced`, per layer
/// `no-domain-specialisation-l{l}`, `params-total`, `params-active`.
pub fn specs(cfg: &MixtralConfig) -> Vec<ClaimSpec> {
    claims(cfg).into_iter().map(|(s, _)| s).collect()
}

fn value(m: &SeedMeasurements, key: Key) -> Result<f64, ClaimError> {
    let missing = || ClaimError::InvalidParameter {
        name: "measurements",
        reason: format!("seed {} has no value for {key:?}", m.seed),
    };
    let arm = |a: Arm| m.arm(a).ok_or_else(missing);
    Ok(match key {
        Key::ValLoss(a) => arm(a)?.val_loss,
        Key::Layer(a, l, stat, minus) => {
            stat.of(arm(a)?.routing.get(l).ok_or_else(missing)?) - minus
        }
        Key::MaxShare(a) => {
            let r = &arm(a)?.routing;
            if r.is_empty() {
                return Err(missing());
            }
            r.iter()
                .map(LayerRouting::max_share_ratio)
                .fold(0.0, f64::max)
        }
        Key::Shares(a, stat, minus) => {
            let r = &arm(a)?.routing;
            if r.is_empty() {
                return Err(missing());
            }
            let vals = r.iter().map(|l| stat.of(l));
            let worst = match stat {
                Stat::MinShareRatio => vals.fold(f64::INFINITY, f64::min),
                _ => vals.fold(f64::NEG_INFINITY, f64::max),
            };
            worst - minus
        }
    })
}

/// The verdicts of [`specs`] on per-seed measurements (one per seed, distinct seeds), through
/// `claimbench_claims::evaluate`. A seed missing an arm or layer is
/// [`ClaimError::InvalidParameter`].
pub fn evaluate(
    cfg: &MixtralConfig,
    per_seed: &[SeedMeasurements],
    scale: &str,
) -> Result<Vec<Claim>, ClaimError> {
    let seeds: Vec<u64> = per_seed.iter().map(|m| m.seed).collect();
    let col =
        |k: Key| -> Result<Vec<f64>, ClaimError> { per_seed.iter().map(|m| value(m, k)).collect() };
    claims(cfg)
        .iter()
        .map(|(spec, source)| {
            let (evidence, seeds) = match *source {
                Source::Paired(a, b) => (
                    Evidence::Paired {
                        a: col(a)?,
                        b: col(b)?,
                    },
                    &seeds[..],
                ),
                Source::Samples(a) => (Evidence::Samples(col(a)?), &seeds[..]),
                Source::Exact(v) => (Evidence::Exact(v as f64), &[][..]),
            };
            claimbench_claims::evaluate(spec, &evidence, seeds, scale)
        })
        .collect()
}

//! Claims as data: what a reproduction declares before running ([`ClaimSpec`]), the entry it
//! writes to `claims.json` ([`Claim`], [`ClaimsFile`]), and [`evaluate`], which computes the
//! verdict from measured data.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ClaimError;
use crate::stats::{
    self, DEFAULT_BOOTSTRAP_SEED, MagnitudeResult, MeanSummary, OrderingResult, TostResult,
    TrendResult,
};
pub use crate::stats::{Direction, Evidence, TestSpec, Tolerance, TrendDirection};

mod band;
pub use band::{Band, ClaimKind, Fdr, apply_fdr};
use band::{band_for, band_of};

/// `schema_version` of `claims.json` written by this crate; version 1 files are still read (their
/// claims count as reproductions with no p, q or band).
pub const SCHEMA_VERSION: u32 = 2;

/// The statistical test a claim is checked with. Serialized lower-case (`"ordering"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// `a < b` / `a > b` on paired seeds.
    Ordering,
    /// A value within a tolerance of a target.
    Magnitude,
    /// Two arms equal within a margin (TOST).
    Equivalence,
    /// A monotone trend in a covariate (Spearman).
    Trend,
    /// A deterministic value equal to the paper's.
    Exact,
}

impl TestKind {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::Ordering => "ordering",
            TestKind::Magnitude => "magnitude",
            TestKind::Equivalence => "equivalence",
            TestKind::Trend => "trend",
            TestKind::Exact => "exact",
        }
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a claim. Serialized `"reproduced"`, `"partially"`, `"not-reproduced"`,
/// `"inconclusive"`. See [`crate::stats::verdicts`] for when each is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The measured data support the claim.
    Reproduced,
    /// Part of the claim is supported (see the magnitude and trend tests).
    Partially,
    /// The measured data contradict the claim.
    NotReproduced,
    /// The data neither support nor contradict it (too noisy, too few seeds, undefined).
    Inconclusive,
}

impl Verdict {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Partially => "partially",
            Verdict::NotReproduced => "not-reproduced",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reproduction declares about a claim before running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimSpec {
    /// Claim id, e.g. `dora/weight-decomposition` (prefixed by the paper id, contracts.md "Ids").
    pub id: String,
    /// Paper id: `mixtral`, `dora`, `continual`, `dpo-ppo`.
    pub paper: String,
    /// The claim in words.
    pub statement: String,
    /// Where the paper makes it: table, figure or section.
    pub source: String,
    /// The test and its parameters.
    pub test: TestSpec,
    /// The metric compared, e.g. `eval_loss`.
    pub metric: String,
    /// The paper's value: a number, or an object keyed by rank/layer/arm. Reported only; the test
    /// takes its numbers from `test`.
    pub paper_value: Value,
    /// Optional statement of the margin. The margin written to `claims.json` is always
    /// [`TestSpec::margin`]; when this is `Some`, it must equal that (else
    /// [`ClaimError::MarginMismatch`] / [`ClaimError::MarginUnused`]).
    #[serde(default)]
    pub margin: Option<f64>,
    /// Why this margin or tolerance (written to `claims.json`).
    pub margin_why: String,
    /// True when the experiment is a scaled-down proxy of the paper's.
    pub proxy: bool,
    /// Fewer seeds than this (and never fewer than 2) give `inconclusive`. Ignored by `exact`.
    pub min_seeds: usize,
    /// Reproduction, check or control. An `exact` test is always a check.
    #[serde(default)]
    pub kind: ClaimKind,
    /// The rule the band comes from ([`Band::rule`]), written next to the claim. Required for
    /// reproductions and controls ([`ClaimError::MissingBandRule`]).
    #[serde(default)]
    pub band_rule: String,
}

impl ClaimSpec {
    /// A spec with id `<paper>/<id>` and the common defaults: no paper value yet (`null`), no
    /// stated margin, a scaled-down proxy, at least 5 seeds (contracts.md), a reproduction (a
    /// check when the test is `exact`), no band rule yet. Reproductions set the rest with struct
    /// update syntax.
    pub fn new(
        paper: &str,
        id: &str,
        statement: &str,
        source: &str,
        metric: &str,
        test: TestSpec,
    ) -> Self {
        ClaimSpec {
            id: format!("{paper}/{id}"),
            paper: paper.into(),
            statement: statement.into(),
            source: source.into(),
            metric: metric.into(),
            paper_value: Value::Null,
            margin: None,
            margin_why: String::new(),
            proxy: true,
            min_seeds: 5,
            kind: if matches!(test, TestSpec::Exact { .. }) {
                ClaimKind::Check
            } else {
                ClaimKind::Reproduction
            },
            band_rule: String::new(),
            test,
        }
    }

    /// The band this spec states: from its test's parameters and [`ClaimSpec::band_rule`].
    pub fn band(&self) -> Band {
        band_of(&self.test, &self.band_rule)
    }
}

/// One entry of `claims.json` (contracts.md). `ci` and `margin` are `null` where the test has
/// none (exact has no interval, ordering no margin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Claim id.
    pub id: String,
    /// Paper id.
    pub paper: String,
    /// The claim in words.
    pub statement: String,
    /// Table, figure or section.
    pub source: String,
    /// The test.
    pub test: TestKind,
    /// The metric.
    pub metric: String,
    /// The paper's value.
    pub paper_value: Value,
    /// Our point estimate, the quantity `ci` is about: `mean(a - b)` for paired ordering and
    /// equivalence, the mean for magnitude, the mean Spearman rho for trend, the value for exact.
    pub our_value: Value,
    /// Confidence interval of `our_value`: `1 - alpha` for ordering, magnitude and trend,
    /// `1 - 2 alpha` (the TOST interval) for equivalence; `null` for exact or with < 2 seeds.
    pub ci: Option<[f64; 2]>,
    /// [`TestSpec::margin`].
    pub margin: Option<f64>,
    /// Why that margin.
    pub margin_why: String,
    /// The seeds the verdict used.
    pub seeds: Vec<u64>,
    /// `smoke`, `small` or `full`.
    pub scale: String,
    /// True when a scaled-down proxy.
    pub proxy: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// How the verdict was reached, with the numbers.
    pub details: String,
    /// Reproduction, check or control (version 1 files: reproduction).
    #[serde(default)]
    pub kind: ClaimKind,
    /// Raw p-value of the claim's own test against its band (`null` for checks and where the
    /// test is undefined, e.g. fewer than 2 seeds).
    #[serde(default)]
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted p-value over the run's reproduction claims ([`apply_fdr`];
    /// `null` for checks and controls).
    #[serde(default)]
    pub q_value: Option<f64>,
    /// The stated band (`null` in version 1 files).
    #[serde(default)]
    pub band: Option<Band>,
}

/// The whole `claims.json`: `{"schema_version": 2, "fdr": {...}, "claims": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimsFile {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// The false-discovery control applied to the reproduction claims (`null` in version 1).
    #[serde(default)]
    pub fdr: Option<Fdr>,
    /// One entry per claim.
    pub claims: Vec<Claim>,
}

impl ClaimsFile {
    /// A file of the current [`SCHEMA_VERSION`] with the claims as given (no FDR applied).
    pub fn new(claims: Vec<Claim>) -> Self {
        ClaimsFile {
            schema_version: SCHEMA_VERSION,
            fdr: None,
            claims,
        }
    }

    /// A file of the current [`SCHEMA_VERSION`] after [`apply_fdr`] at `alpha` over `claims`.
    pub fn with_fdr(mut claims: Vec<Claim>, alpha: f64) -> Self {
        let fdr = apply_fdr(&mut claims, alpha);
        ClaimsFile {
            schema_version: SCHEMA_VERSION,
            fdr: Some(fdr),
            claims,
        }
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail (non-finite floats become null).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses `claims.json` text and checks `schema_version` is 1 or 2.
    pub fn from_json(text: &str) -> Result<Self, ClaimError> {
        let file: ClaimsFile =
            serde_json::from_str(text).map_err(|e| ClaimError::Json(e.to_string()))?;
        if !(1..=SCHEMA_VERSION).contains(&file.schema_version) {
            return Err(ClaimError::UnsupportedSchema {
                found: file.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(file)
    }
}

/// Formats a number for `details`: integers (below 1e15) without decimals, `|x|` in
/// [1e-3, 1e5) with 4 significant digits, others in scientific notation with a 4-digit
/// mantissa; trailing zeros dropped (`0.1`, `1.23e-4`, `46702792704`).
pub fn fmt_num(x: f64) -> String {
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    let a = x.abs();
    if x == 0.0 {
        "0".into()
    } else if !x.is_finite() {
        x.to_string()
    } else if x.fract() == 0.0 && a < 1e15 {
        format!("{x:.0}")
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        trim(&format!("{x:.decimals$}")).to_string()
    } else {
        let s = format!("{x:.3e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => format!("{}e{exp}", trim(mantissa)),
            None => s,
        }
    }
}

fn fmt_ci(ci: [f64; 2]) -> String {
    format!("[{}, {}]", fmt_num(ci[0]), fmt_num(ci[1]))
}

fn pct(level: f64) -> String {
    let p = level * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p}%")
    }
}

fn interval(s: &MeanSummary) -> String {
    format!("{} {} {}", pct(s.level), s.method.describe(), fmt_ci(s.ci))
}

fn num_value(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// An integral value below 2^53 as a JSON integer (e.g. parameter counts), else a float.
fn exact_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        Value::from(x as i64)
    } else {
        num_value(x)
    }
}

fn too_few_prefix(n: usize, needed: usize) -> String {
    format!("too few seeds: {n} of {needed} needed; ")
}

fn check_seeds(seeds: &[u64], n: usize) -> Result<(), ClaimError> {
    if seeds.len() != n {
        return Err(ClaimError::SeedCountMismatch {
            seeds: seeds.len(),
            n,
        });
    }
    let mut seen = HashSet::new();
    for &s in seeds {
        if !seen.insert(s) {
            return Err(ClaimError::DuplicateSeed(s));
        }
    }
    Ok(())
}

fn check_margin(spec: &ClaimSpec) -> Result<Option<f64>, ClaimError> {
    let used = spec.test.margin();
    let test = spec.test.kind();
    match (spec.margin, used) {
        (None, _) => Ok(used),
        (Some(m), None) => Err(ClaimError::MarginUnused { spec: m, test }),
        (Some(m), Some(u)) => {
            if (m - u).abs() <= 1e-12 * u.abs().max(1.0) {
                Ok(used)
            } else {
                Err(ClaimError::MarginMismatch {
                    spec: m,
                    test,
                    used: u,
                })
            }
        }
    }
}

/// The per-seed values a paired-or-samples test works on, and how to name them in `details`.
fn per_seed_values(
    test: TestKind,
    evidence: &Evidence,
) -> Result<(Vec<f64>, &'static str), ClaimError> {
    match evidence {
        Evidence::Paired { a, b } => Ok((stats::paired_differences(a, b)?, "a - b")),
        Evidence::Samples(v) => Ok((v.clone(), "value")),
        other => Err(ClaimError::EvidenceMismatch {
            test,
            evidence: other.name(),
            needs: "paired or samples",
        }),
    }
}

/// What a test produced, before it becomes a [`Claim`].
struct Outcome {
    verdict: Verdict,
    p_value: Option<f64>,
    our_value: Value,
    ci: Option<[f64; 2]>,
    details: String,
}

fn ordering_outcome(r: &OrderingResult, label: &str, direction: Direction) -> Outcome {
    let claim = if label == "a - b" {
        format!("a {} b", direction.symbol())
    } else {
        format!("{label} {} 0", direction.symbol())
    };
    let (claimed_side, other_side) = match direction {
        Direction::Less => ("below", "above"),
        Direction::Greater => ("above", "below"),
    };
    let mut details = String::new();
    if r.n < r.seeds_needed {
        details += &too_few_prefix(r.n, r.seeds_needed);
    }
    details += &format!("mean({label}) = {} over {} seeds", fmt_num(r.mean), r.n);
    if let Some(s) = &r.summary {
        details += &format!(" (sd {}), {}", fmt_num(s.sd), interval(s));
        if r.n >= r.seeds_needed {
            details += &match r.verdict {
                Verdict::Reproduced => {
                    format!(" lies entirely {claimed_side} 0, as claimed ({claim})")
                }
                Verdict::NotReproduced => {
                    format!(" lies entirely {other_side} 0, against the claim ({claim})")
                }
                _ => format!(" contains 0, so the claim ({claim}) is not decided"),
            };
        }
    }
    if let Some(p) = r.p_value {
        details += &format!("; one-sided t-test against 0: p = {}", fmt_num(p));
    }
    details += &format!(": {}", r.verdict);
    Outcome {
        verdict: r.verdict,
        p_value: r.p_value,
        our_value: num_value(r.mean),
        ci: r.summary.as_ref().map(|s| s.ci),
        details,
    }
}

fn magnitude_outcome(r: &MagnitudeResult, label: &str, target: f64, tol: Tolerance) -> Outcome {
    let tol_text = match tol {
        Tolerance::Absolute(t) => format!("± {}", fmt_num(t)),
        Tolerance::Relative(t) => format!("± {}%", fmt_num(t * 100.0)),
    };
    let mut details = String::new();
    if r.n < r.seeds_needed {
        details += &too_few_prefix(r.n, r.seeds_needed);
    }
    details += &format!("mean({label}) = {} over {} seeds", fmt_num(r.mean), r.n);
    if let Some(s) = &r.summary {
        details += &format!(" (sd {}), {}", fmt_num(s.sd), interval(s));
    }
    details += &format!(
        "; target {} {tol_text} = band {}",
        fmt_num(target),
        fmt_ci(r.band)
    );
    if r.summary.is_some() && r.n >= r.seeds_needed {
        details += match r.verdict {
            Verdict::Reproduced => "; the interval lies within the band",
            Verdict::NotReproduced => "; the interval lies entirely outside the band",
            Verdict::Partially => {
                "; the mean is within the band but the interval extends beyond it"
            }
            _ => "; the interval overlaps the band but the mean lies outside it",
        };
    }
    if let Some(p) = r.p_value {
        details += &format!(
            "; one-sided t-tests against both edges of the band: p = {}",
            fmt_num(p)
        );
    }
    details += &format!(": {}", r.verdict);
    Outcome {
        verdict: r.verdict,
        p_value: r.p_value,
        our_value: num_value(r.mean),
        ci: r.summary.as_ref().map(|s| s.ci),
        details,
    }
}

fn tost_outcome(r: &TostResult, label: &str) -> Outcome {
    let delta = fmt_num(r.margin);
    let mut details = String::new();
    if r.n < r.seeds_needed {
        details += &too_few_prefix(r.n, r.seeds_needed);
    }
    details += &format!("mean({label}) = {} over {} seeds", fmt_num(r.mean), r.n);
    if let (Some(eq), Some(diff), Some(pl), Some(pu)) =
        (&r.equivalence, &r.difference, r.p_lower, r.p_upper)
    {
        details += &format!(
            " (sd {}); TOST with margin ± {delta}: p_lower = {}, p_upper = {}; {}",
            fmt_num(eq.sd),
            fmt_num(pl),
            fmt_num(pu),
            interval(eq)
        );
        if r.n >= r.seeds_needed {
            details += &match r.verdict {
                Verdict::Reproduced => {
                    format!(" lies within (-{delta}, {delta}), so the arms are equivalent")
                }
                Verdict::NotReproduced => format!(
                    " and {} lies entirely outside [-{delta}, {delta}], a clear difference",
                    interval(diff)
                ),
                _ => format!(
                    " is not within (-{delta}, {delta}) and {} is not entirely outside it",
                    interval(diff)
                ),
            };
        }
    }
    details += &format!(": {}", r.verdict);
    Outcome {
        verdict: r.verdict,
        p_value: r.p_value(),
        our_value: num_value(r.mean),
        ci: r.equivalence.as_ref().map(|s| s.ci),
        details,
    }
}

fn trend_outcome(r: &TrendResult, seeds: &[u64], direction: TrendDirection) -> Outcome {
    let mut details = String::new();
    if r.n < r.seeds_needed {
        details += &too_few_prefix(r.n, r.seeds_needed);
    }
    let per_seed: Vec<String> = r
        .rho_per_seed
        .iter()
        .map(|rho| rho.map_or_else(|| "undefined".into(), fmt_num))
        .collect();
    details += &format!(
        "Spearman rho per seed [{}] over {} seeds",
        per_seed.join(", "),
        r.n
    );
    if let Some(p) = r.pooled_rho {
        details += &format!(", pooled rho {}", fmt_num(p));
    }
    if let Some(s) = r.constant_seed {
        let seed = seeds
            .get(s)
            .map_or(String::new(), |v| format!(" (seed {v})"));
        details +=
            &format!("; the metric of seed index {s}{seed} is constant, so its rho is undefined");
    }
    if let (Some(m), Some(s)) = (r.mean_rho, &r.summary) {
        details += &format!("; mean rho {}, {}", fmt_num(m), interval(s));
        let (claimed_side, other_side) = match direction {
            TrendDirection::Increasing => ("above", "below"),
            TrendDirection::Decreasing => ("below", "above"),
        };
        let dir = direction.as_str();
        if r.n >= r.seeds_needed {
            details += &match (r.verdict, r.min_abs_rho) {
                (Verdict::Reproduced, Some(min)) => format!(
                    " lies {claimed_side} 0 as claimed ({dir}) and |mean rho| >= {}",
                    fmt_num(min)
                ),
                (Verdict::Reproduced, None) => {
                    format!(" lies {claimed_side} 0, as claimed ({dir})")
                }
                (Verdict::Partially, min) => format!(
                    " lies {claimed_side} 0 as claimed ({dir}) but |mean rho| < {} required",
                    fmt_num(min.unwrap_or(0.0))
                ),
                (Verdict::NotReproduced, _) => {
                    format!(" lies {other_side} 0, against the claim ({dir})")
                }
                _ => format!(" contains 0, so the claim ({dir}) is not decided"),
            };
        }
    }
    if let Some(p) = r.p_value {
        details += &format!(
            "; one-sided t-test of the per-seed rhos against 0: p = {}",
            fmt_num(p)
        );
    }
    details += &format!(": {}", r.verdict);
    Outcome {
        verdict: r.verdict,
        p_value: r.p_value,
        our_value: r.mean_rho.map_or(Value::Null, num_value),
        ci: r.summary.as_ref().map(|s| s.ci),
        details,
    }
}

/// Computes a claim's verdict from measured data and returns its `claims.json` entry.
///
/// - `spec`: the declared claim; its [`TestSpec`] is validated ([`TestSpec::validate`]).
/// - `evidence`: the measured data; must fit the test (ordering, magnitude, equivalence:
///   [`Evidence::Paired`] — tested on `d = a - b` — or [`Evidence::Samples`]; trend:
///   [`Evidence::Trend`]; exact: [`Evidence::Exact`]).
/// - `seeds`: the seeds of the per-seed values, in the same order, distinct; its length must
///   equal the evidence's number of per-seed values (exact: any list, usually empty).
/// - `scale`: written to the entry as is.
///
/// The test functions are [`stats::ordering_test`], [`stats::magnitude_test`], [`stats::tost`],
/// [`stats::trend_test`] and [`stats::exact_test`]; bootstrap intervals (`n >= 10`) use
/// [`DEFAULT_BOOTSTRAP_SEED`], so the verdict is a function of the data alone. `details` is one
/// sentence with the numbers and the rule applied, ending in `: <verdict>`.
pub fn evaluate(
    spec: &ClaimSpec,
    evidence: &Evidence,
    seeds: &[u64],
    scale: &str,
) -> Result<Claim, ClaimError> {
    spec.test.validate()?;
    let margin = check_margin(spec)?;
    let kind = spec.test.kind();
    if kind == TestKind::Exact && spec.kind != ClaimKind::Check {
        return Err(ClaimError::ExactNotCheck {
            id: spec.id.clone(),
            kind: spec.kind,
        });
    }
    if spec.kind != ClaimKind::Check && spec.band_rule.trim().is_empty() {
        return Err(ClaimError::MissingBandRule {
            id: spec.id.clone(),
            kind: spec.kind,
        });
    }
    if let Some(n) = evidence.n_seeds()
        && kind != TestKind::Exact
    {
        check_seeds(seeds, n)?;
    }
    let seed = DEFAULT_BOOTSTRAP_SEED;
    let outcome = match (&spec.test, evidence) {
        (TestSpec::Ordering { direction, alpha }, ev) => {
            let (d, label) = per_seed_values(kind, ev)?;
            let r = stats::ordering_test(&d, *direction, *alpha, spec.min_seeds, seed)?;
            ordering_outcome(&r, label, *direction)
        }
        (
            TestSpec::Magnitude {
                target,
                tolerance,
                alpha,
            },
            ev,
        ) => {
            let (xs, label) = per_seed_values(kind, ev)?;
            let r = stats::magnitude_test(&xs, *target, *tolerance, *alpha, spec.min_seeds, seed)?;
            magnitude_outcome(&r, label, *target, *tolerance)
        }
        (TestSpec::Equivalence { margin, alpha }, ev) => {
            let (d, label) = per_seed_values(kind, ev)?;
            let r = stats::tost(&d, *margin, *alpha, spec.min_seeds, seed)?;
            tost_outcome(&r, label)
        }
        (
            TestSpec::Trend {
                direction,
                min_abs_rho,
                alpha,
            },
            Evidence::Trend { x, y_per_seed },
        ) => {
            let r = stats::trend_test(
                x,
                y_per_seed,
                *direction,
                *min_abs_rho,
                *alpha,
                spec.min_seeds,
                seed,
            )?;
            trend_outcome(&r, seeds, *direction)
        }
        (
            TestSpec::Exact {
                expected,
                tolerance,
            },
            Evidence::Exact(ours),
        ) => {
            let r = stats::exact_test(*ours, *expected, *tolerance)?;
            let relation = if r.verdict == Verdict::Reproduced {
                "<="
            } else {
                ">"
            };
            Outcome {
                verdict: r.verdict,
                p_value: None,
                our_value: exact_value(r.ours),
                ci: None,
                details: format!(
                    "ours = {}, paper = {}, |difference| = {} {relation} tolerance {}: {}",
                    fmt_num(r.ours),
                    fmt_num(r.expected),
                    fmt_num(r.abs_diff),
                    fmt_num(r.tolerance),
                    r.verdict
                ),
            }
        }
        (TestSpec::Trend { .. }, ev) => {
            return Err(ClaimError::EvidenceMismatch {
                test: kind,
                evidence: ev.name(),
                needs: "trend",
            });
        }
        (TestSpec::Exact { .. }, ev) => {
            return Err(ClaimError::EvidenceMismatch {
                test: kind,
                evidence: ev.name(),
                needs: "exact",
            });
        }
    };
    Ok(Claim {
        id: spec.id.clone(),
        paper: spec.paper.clone(),
        statement: spec.statement.clone(),
        source: spec.source.clone(),
        test: kind,
        metric: spec.metric.clone(),
        paper_value: spec.paper_value.clone(),
        our_value: outcome.our_value,
        ci: outcome.ci,
        margin,
        margin_why: spec.margin_why.clone(),
        seeds: seeds.to_vec(),
        scale: scale.into(),
        proxy: spec.proxy,
        verdict: outcome.verdict,
        details: outcome.details,
        kind: spec.kind,
        p_value: if spec.kind == ClaimKind::Check {
            None
        } else {
            outcome.p_value
        },
        q_value: None,
        band: Some(band_for(spec, evidence)),
    })
}

#[cfg(test)]
mod tests;

//! Learning-rate schedules as data.
//!
//! A [`Schedule`] is a function of `s`, the 0-based optimizer step *within its stage*. A second
//! stage that uses [`Schedule::Cosine`] again restarts at `s = 0`, which is the paper's
//! "re-warm + re-decay"; [`Schedule::Constant`] at `η_min` is its "no re-warming" baseline; and
//! [`Schedule::Infinite`] is its Sec. 7 schedule that needs no total step count for the
//! constant phase.
//!
//! Shared pieces (`W` = warmup steps, `η_max` the peak):
//!
//! - linear warmup, for `s < W`: `lr(s) = η_max · (s + 1) / W` (so `lr(W − 1) = η_max`, never 0);
//! - cosine from `a` to `b` at progress `t ∈ [0, 1]`: `b + ½ (a − b) (1 + cos(π t))`
//!   (`a` at `t = 0`, `(a + b) / 2` at `t = ½`, `b` at `t = 1`).
//!
//! Steps past a schedule's end hold its final value (`η_min`).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// A learning-rate schedule, serialized with a `kind` tag:
/// `{"kind": "cosine", "eta_max": 3e-4, "eta_min": 3e-5, "warmup_steps": 10, "total_steps": 1000}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// `lr(s) = lr` for every step; no length of its own ([`Schedule::total_steps`] is `None`).
    Constant {
        /// The learning rate.
        lr: f64,
    },
    /// Linear warmup then cosine decay, with `W = warmup_steps`, `T = total_steps`:
    ///
    /// - `s < W`: `lr(s) = η_max · (s + 1) / W`;
    /// - `s ≥ W`: `lr(s) = η_min + ½ (η_max − η_min) (1 + cos(π t))`,
    ///   `t = clamp((s − W) / (T − W), 0, 1)` (`t = 1` when `T = W`).
    ///
    /// So `lr(W) = η_max`, `lr(W + (T − W)/2) = (η_max + η_min)/2` and `lr(T) = η_min`; the last
    /// step of a `T`-step stage, `s = T − 1`, is one decay step short of `η_min`. Used again in
    /// a later stage this is "re-warm + re-decay". The paper: `η_max = 3e-4`, `η_min = 3e-5`,
    /// `W` = 1% of `T`.
    Cosine {
        /// Peak rate `η_max`, reached at the end of warmup.
        eta_max: f64,
        /// Final rate `η_min`, reached at `s = T`.
        eta_min: f64,
        /// Linear warmup length `W` (0 = start the decay at `η_max`).
        warmup_steps: usize,
        /// Schedule length `T` (warmup included), ≥ `W` and ≥ 1.
        total_steps: usize,
    },
    /// The paper's infinite schedule (Sec. 7): warmup → cooldown → constant → anneal, with
    /// `W, C, K, N` = warmup, cooldown, constant, anneal steps and `A = W + C + K`:
    ///
    /// - warmup, `s < W`: `lr(s) = η_max · (s + 1) / W`;
    /// - cooldown, `W ≤ s < W + C`: cosine from `η_max` to `η_const`,
    ///   `lr(s) = η_const + ½ (η_max − η_const) (1 + cos(π (s − W) / C))`;
    /// - constant, `W + C ≤ s < A`: `lr(s) = η_const`;
    /// - anneal, `s ≥ A`: exponential (geometric) from `η_const` to `η_min`,
    ///   `lr(s) = η_const · (η_min / η_const)^u`, `u = min((s − A) / N, 1)`;
    ///   with `N = 0` there is no anneal and the rate stays at `η_const`.
    ///
    /// The cooldown is cosine-shaped, the paper's "inf-cos" variant (it also tries an inverse
    /// square root). The anneal is exponential as in the paper, so it is linear on a log-LR plot
    /// and spends its steps evenly across orders of magnitude; it needs `η_min > 0`. The phases
    /// join continuously: `lr(W) = η_max`, `lr(W + C) = η_const = lr(A)`,
    /// `lr(A + N/2) = √(η_const · η_min)`, `lr(A + N) = η_min`.
    /// Length: [`Schedule::total_steps`] is `W + C + K + N`.
    Infinite {
        /// Peak rate `η_max`, reached at the end of warmup.
        eta_max: f64,
        /// Plateau rate `η_const ∈ [η_min, η_max]`, held during the constant phase.
        eta_const: f64,
        /// Final rate `η_min` after the anneal (> 0 when the anneal is not empty).
        eta_min: f64,
        /// Linear warmup length `W`.
        warmup_steps: usize,
        /// Cosine cooldown length `C` (`η_max` → `η_const`).
        cooldown_steps: usize,
        /// Constant phase length `K` at `η_const`.
        constant_steps: usize,
        /// Exponential anneal length `N` (`η_const` → `η_min`).
        anneal_steps: usize,
    },
}

/// Linear warmup: `η_max · (s + 1) / W`, for `s < W`.
fn warmup(eta_max: f64, s: usize, w: usize) -> f64 {
    eta_max * (s + 1) as f64 / w as f64
}

/// Cosine from `a` (t = 0) to `b` (t = 1): `b + ½ (a − b) (1 + cos(π t))`.
fn cosine(a: f64, b: f64, t: f64) -> f64 {
    b + 0.5 * (a - b) * (1.0 + (PI * t).cos())
}

/// Progress `clamp(num / den, 0, 1)`, with `den = 0` meaning "already done" (1).
fn progress(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        (num as f64 / den as f64).min(1.0)
    }
}

/// Geometric interpolation `a · (b / a)^u`; `b` when it cannot be formed (`a ≤ 0` or `b ≤ 0`,
/// which [`Schedule::validate`] rejects unless `a = b`), so the result is never NaN.
fn exponential(a: f64, b: f64, u: f64) -> f64 {
    if u >= 1.0 || a == b {
        b
    } else if a > 0.0 && b > 0.0 {
        a * (b / a).powf(u)
    } else {
        // Unvalidated input only: fall back to linear so the value stays finite.
        a + (b - a) * u
    }
}

/// Checks one rate: finite and ≥ 0.
fn check_rate(name: &'static str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() {
        Err(ConfigError::NonFiniteRate { name, value })
    } else if value < 0.0 {
        Err(ConfigError::NegativeRate { name, value })
    } else {
        Ok(())
    }
}

impl Schedule {
    /// The serde tag of this schedule: `constant`, `cosine` or `infinite`.
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Constant { .. } => "constant",
            Schedule::Cosine { .. } => "cosine",
            Schedule::Infinite { .. } => "infinite",
        }
    }

    /// The learning rate at 0-based step `step` of the stage; the formulas are on each variant.
    /// Steps past the end hold the final rate.
    pub fn lr(&self, step: usize) -> f64 {
        match *self {
            Schedule::Constant { lr } => lr,
            Schedule::Cosine {
                eta_max,
                eta_min,
                warmup_steps: w,
                total_steps: t,
            } => {
                if step < w {
                    warmup(eta_max, step, w)
                } else {
                    cosine(eta_max, eta_min, progress(step - w, t.saturating_sub(w)))
                }
            }
            Schedule::Infinite {
                eta_max,
                eta_const,
                eta_min,
                warmup_steps: w,
                cooldown_steps: c,
                constant_steps: k,
                anneal_steps: n,
            } => {
                let cooldown_end = w.saturating_add(c);
                let anneal_start = cooldown_end.saturating_add(k);
                if step < w {
                    warmup(eta_max, step, w)
                } else if step < cooldown_end {
                    cosine(eta_max, eta_const, progress(step - w, c))
                } else if step < anneal_start || n == 0 {
                    eta_const
                } else {
                    exponential(eta_const, eta_min, progress(step - anneal_start, n))
                }
            }
        }
    }

    /// The schedule's length in steps: `None` for [`Schedule::Constant`] (it fits any stage),
    /// `T` for [`Schedule::Cosine`], `W + C + K + N` (saturating) for [`Schedule::Infinite`].
    pub fn total_steps(&self) -> Option<usize> {
        match *self {
            Schedule::Constant { .. } => None,
            Schedule::Cosine { total_steps, .. } => Some(total_steps),
            Schedule::Infinite {
                warmup_steps,
                cooldown_steps,
                constant_steps,
                anneal_steps,
                ..
            } => Some(
                warmup_steps
                    .saturating_add(cooldown_steps)
                    .saturating_add(constant_steps)
                    .saturating_add(anneal_steps),
            ),
        }
    }

    /// `(s, lr(s))` for `s = 0, 1, …, n − 1`, for plotting; `curve(total)` covers every step a
    /// `total`-step stage trains on.
    pub fn curve(&self, n: usize) -> Vec<(usize, f64)> {
        (0..n).map(|s| (s, self.lr(s))).collect()
    }

    /// Checks the schedule:
    ///
    /// - every rate is finite and ≥ 0;
    /// - `η_min ≤ η_max` (`η_min 3e-4 is above η_max 3e-5`);
    /// - infinite: `η_min ≤ η_const ≤ η_max`, and `η_min > 0` when the exponential anneal has
    ///   to leave a positive `η_const` (`N > 0`, `η_const > 0`);
    /// - cosine: `W ≤ T` (`warmup (200 steps) is longer than the stage (100 steps)`);
    /// - a schedule with a length spans at least one step.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Schedule::Constant { lr } => check_rate("lr", lr),
            Schedule::Cosine {
                eta_max,
                eta_min,
                warmup_steps,
                total_steps,
            } => {
                check_rate("η_max", eta_max)?;
                check_rate("η_min", eta_min)?;
                if eta_min > eta_max {
                    return Err(ConfigError::MinAboveMax { eta_min, eta_max });
                }
                if total_steps == 0 {
                    return Err(ConfigError::ZeroScheduleSteps { kind: self.kind() });
                }
                if warmup_steps > total_steps {
                    return Err(ConfigError::WarmupTooLong {
                        warmup: warmup_steps,
                        total: total_steps,
                    });
                }
                Ok(())
            }
            Schedule::Infinite {
                eta_max,
                eta_const,
                eta_min,
                anneal_steps,
                ..
            } => {
                check_rate("η_max", eta_max)?;
                check_rate("η_const", eta_const)?;
                check_rate("η_min", eta_min)?;
                if eta_min > eta_max {
                    return Err(ConfigError::MinAboveMax { eta_min, eta_max });
                }
                if eta_const < eta_min || eta_const > eta_max {
                    return Err(ConfigError::ConstOutsideRange {
                        eta_const,
                        eta_min,
                        eta_max,
                    });
                }
                if anneal_steps > 0 && eta_min == 0.0 && eta_const > 0.0 {
                    return Err(ConfigError::ZeroAnnealFloor { eta_const });
                }
                if self.total_steps() == Some(0) {
                    return Err(ConfigError::ZeroScheduleSteps { kind: self.kind() });
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETA_MAX: f64 = 3e-4;
    const ETA_MIN: f64 = 3e-5;
    const ETA_CONST: f64 = 1e-4;

    fn assert_close(got: f64, want: f64) {
        let tol = 1e-12 * want.abs().max(1e-12);
        assert!(
            (got - want).abs() <= tol,
            "got {got:e}, want {want:e} (diff {:e})",
            got - want
        );
    }

    fn cosine_sched(warmup: usize, total: usize) -> Schedule {
        Schedule::Cosine {
            eta_max: ETA_MAX,
            eta_min: ETA_MIN,
            warmup_steps: warmup,
            total_steps: total,
        }
    }

    /// W = 10, C = 20, K = 30, N = 40: phases start at 0, 10, 30, 60, end at 100.
    fn infinite_sched() -> Schedule {
        Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: ETA_MIN,
            warmup_steps: 10,
            cooldown_steps: 20,
            constant_steps: 30,
            anneal_steps: 40,
        }
    }

    fn err_msg(s: Schedule) -> String {
        s.validate()
            .expect_err("schedule should be rejected")
            .to_string()
    }

    #[test]
    fn constant_is_constant() {
        let s = Schedule::Constant { lr: ETA_MIN };
        for step in [0, 1, 10, 1_000_000] {
            assert_eq!(s.lr(step), ETA_MIN);
        }
        assert_eq!(s.total_steps(), None);
        s.validate().unwrap();
    }

    #[test]
    fn cosine_warmup_is_linear() {
        let s = cosine_sched(10, 110);
        for step in 0..10 {
            assert_close(s.lr(step), ETA_MAX * (step + 1) as f64 / 10.0);
        }
        assert_close(s.lr(0), 3e-5);
        assert_close(s.lr(4), 1.5e-4);
    }

    #[test]
    fn cosine_closed_form_points() {
        let s = cosine_sched(10, 110);
        // End of warmup and start of decay are both the peak.
        assert_close(s.lr(9), ETA_MAX);
        assert_close(s.lr(10), ETA_MAX);
        // Midpoint of the decay: t = 50 / 100 = ½.
        assert_close(s.lr(60), (ETA_MAX + ETA_MIN) / 2.0);
        // Quarter point: t = ¼, cos(π/4) = √2/2.
        let quarter = ETA_MIN + 0.5 * (ETA_MAX - ETA_MIN) * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert_close(s.lr(35), quarter);
        // End and beyond.
        assert_close(s.lr(110), ETA_MIN);
        assert_close(s.lr(10_000), ETA_MIN);
        assert_eq!(s.total_steps(), Some(110));
        s.validate().unwrap();
    }

    #[test]
    fn cosine_decay_is_monotone_and_bounded() {
        let s = cosine_sched(10, 1000);
        let curve = s.curve(1001);
        for pair in curve[10..].windows(2) {
            assert!(pair[1].1 <= pair[0].1, "{pair:?}");
        }
        for &(_, lr) in &curve {
            assert!((0.0..=ETA_MAX).contains(&lr));
        }
    }

    #[test]
    fn cosine_without_warmup_starts_at_peak() {
        let s = cosine_sched(0, 100);
        assert_close(s.lr(0), ETA_MAX);
        assert_close(s.lr(50), (ETA_MAX + ETA_MIN) / 2.0);
        assert_close(s.lr(100), ETA_MIN);
    }

    #[test]
    fn cosine_all_warmup_ends_at_min() {
        let s = cosine_sched(10, 10);
        s.validate().unwrap();
        assert_close(s.lr(9), ETA_MAX);
        assert_close(s.lr(10), ETA_MIN);
    }

    #[test]
    fn infinite_phase_boundaries() {
        let s = infinite_sched();
        assert_eq!(s.total_steps(), Some(100));
        s.validate().unwrap();
        // Warmup: linear to η_max.
        assert_close(s.lr(0), ETA_MAX / 10.0);
        assert_close(s.lr(4), ETA_MAX / 2.0);
        assert_close(s.lr(9), ETA_MAX);
        // Cooldown: cosine η_max → η_const, starts at the peak, midpoint halfway.
        assert_close(s.lr(10), ETA_MAX);
        assert_close(s.lr(20), (ETA_MAX + ETA_CONST) / 2.0);
        // Constant phase.
        for step in 30..60 {
            assert_close(s.lr(step), ETA_CONST);
        }
        // Anneal: exponential η_const → η_min; geometric mean halfway.
        assert_close(s.lr(60), ETA_CONST);
        assert_close(s.lr(80), (ETA_CONST * ETA_MIN).sqrt());
        assert_close(s.lr(70), ETA_CONST * (ETA_MIN / ETA_CONST).powf(0.25));
        assert_close(s.lr(100), ETA_MIN);
        assert_close(s.lr(1_000_000), ETA_MIN);
    }

    #[test]
    fn infinite_is_monotone_after_warmup() {
        let curve = infinite_sched().curve(101);
        for pair in curve[9..].windows(2) {
            assert!(pair[1].1 <= pair[0].1 * (1.0 + 1e-15), "{pair:?}");
        }
    }

    #[test]
    fn infinite_without_anneal_stays_constant() {
        let s = Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: 0.0,
            warmup_steps: 5,
            cooldown_steps: 5,
            constant_steps: 10,
            anneal_steps: 0,
        };
        s.validate().unwrap();
        assert_eq!(s.total_steps(), Some(20));
        assert_close(s.lr(10), ETA_CONST);
        assert_close(s.lr(19), ETA_CONST);
        assert_close(s.lr(1_000_000), ETA_CONST);
    }

    #[test]
    fn infinite_empty_phases_skip() {
        // No warmup, no cooldown: starts at η_const.
        let s = Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: ETA_MIN,
            warmup_steps: 0,
            cooldown_steps: 0,
            constant_steps: 3,
            anneal_steps: 2,
        };
        s.validate().unwrap();
        assert_close(s.lr(0), ETA_CONST);
        assert_close(s.lr(3), ETA_CONST);
        assert_close(s.lr(5), ETA_MIN);
    }

    #[test]
    fn curve_lists_every_step() {
        let s = cosine_sched(2, 4);
        let c = s.curve(5);
        assert_eq!(c.len(), 5);
        for (i, &(step, lr)) in c.iter().enumerate() {
            assert_eq!(step, i);
            assert_eq!(lr, s.lr(i));
        }
        assert!(s.curve(0).is_empty());
    }

    #[test]
    fn rejects_min_above_max() {
        let msg = err_msg(Schedule::Cosine {
            eta_max: 3e-5,
            eta_min: 3e-4,
            warmup_steps: 1,
            total_steps: 100,
        });
        assert!(msg.contains("η_min 3e-4 is above η_max 3e-5"), "{msg}");
        let msg = err_msg(Schedule::Infinite {
            eta_max: 3e-5,
            eta_const: 3e-5,
            eta_min: 3e-4,
            warmup_steps: 1,
            cooldown_steps: 1,
            constant_steps: 1,
            anneal_steps: 1,
        });
        assert!(msg.contains("η_min 3e-4 is above η_max 3e-5"), "{msg}");
    }

    #[test]
    fn rejects_long_warmup() {
        let msg = err_msg(cosine_sched(200, 100));
        assert!(
            msg.contains("warmup (200 steps) is longer than the stage (100 steps)"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_zero_length() {
        let msg = err_msg(cosine_sched(0, 0));
        assert!(msg.contains("cosine schedule spans 0 steps"), "{msg}");
        let msg = err_msg(Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: ETA_MIN,
            warmup_steps: 0,
            cooldown_steps: 0,
            constant_steps: 0,
            anneal_steps: 0,
        });
        assert!(msg.contains("infinite schedule spans 0 steps"), "{msg}");
    }

    #[test]
    fn rejects_bad_rates() {
        let msg = err_msg(Schedule::Constant { lr: f64::NAN });
        assert!(msg.contains("lr is NaN"), "{msg}");
        let msg = err_msg(Schedule::Constant { lr: -1e-4 });
        assert!(msg.contains("lr -1e-4 is negative"), "{msg}");
        let msg = err_msg(Schedule::Cosine {
            eta_max: f64::INFINITY,
            eta_min: ETA_MIN,
            warmup_steps: 0,
            total_steps: 10,
        });
        assert!(msg.contains("η_max is inf"), "{msg}");
        let msg = err_msg(Schedule::Cosine {
            eta_max: ETA_MAX,
            eta_min: -3e-5,
            warmup_steps: 0,
            total_steps: 10,
        });
        assert!(msg.contains("η_min -3e-5 is negative"), "{msg}");
        let mut inf = infinite_sched();
        if let Schedule::Infinite { eta_const, .. } = &mut inf {
            *eta_const = f64::NAN;
        }
        let msg = err_msg(inf);
        assert!(msg.contains("η_const is NaN"), "{msg}");
    }

    #[test]
    fn rejects_const_outside_range() {
        for (c, text) in [(1e-3, "1e-3"), (1e-5, "1e-5")] {
            let msg = err_msg(Schedule::Infinite {
                eta_max: ETA_MAX,
                eta_const: c,
                eta_min: ETA_MIN,
                warmup_steps: 1,
                cooldown_steps: 1,
                constant_steps: 1,
                anneal_steps: 1,
            });
            assert!(
                msg.contains(&format!(
                    "η_const {text} is outside [η_min 3e-5, η_max 3e-4]"
                )),
                "{msg}"
            );
        }
    }

    #[test]
    fn rejects_zero_floor_for_exponential_anneal() {
        let msg = err_msg(Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: 0.0,
            warmup_steps: 1,
            cooldown_steps: 1,
            constant_steps: 1,
            anneal_steps: 1,
        });
        assert!(msg.contains("η_min must be above 0"), "{msg}");
    }

    #[test]
    fn unvalidated_input_never_gives_nan() {
        let s = Schedule::Infinite {
            eta_max: 0.0,
            eta_const: 0.0,
            eta_min: 0.0,
            warmup_steps: 0,
            cooldown_steps: 0,
            constant_steps: 0,
            anneal_steps: 4,
        };
        assert!(s.curve(10).iter().all(|&(_, lr)| lr == 0.0));
        let s = Schedule::Infinite {
            eta_max: ETA_MAX,
            eta_const: ETA_CONST,
            eta_min: 0.0,
            warmup_steps: 0,
            cooldown_steps: 0,
            constant_steps: 0,
            anneal_steps: 4,
        };
        assert!(s.curve(10).iter().all(|&(_, lr)| lr.is_finite()));
        let s = cosine_sched(200, 100);
        assert!(s.curve(300).iter().all(|&(_, lr)| lr.is_finite()));
    }

    #[test]
    fn serde_round_trip_every_kind() {
        for s in [
            Schedule::Constant { lr: ETA_MIN },
            cosine_sched(10, 1000),
            infinite_sched(),
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert!(
                json.contains(&format!("\"kind\":\"{}\"", s.kind())),
                "{json}"
            );
            let back: Schedule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn serde_reads_hand_written_json() {
        let s: Schedule = serde_json::from_str(
            r#"{"kind": "cosine", "eta_max": 3e-4, "eta_min": 3e-5, "warmup_steps": 10, "total_steps": 1000}"#,
        )
        .unwrap();
        assert_eq!(s, cosine_sched(10, 1000));
        let bad = serde_json::from_str::<Schedule>(r#"{"kind": "constant", "lr": 1e-4, "eta": 1}"#);
        assert!(bad.is_err());
        let bad = serde_json::from_str::<Schedule>(r#"{"kind": "linear", "lr": 1e-4}"#);
        assert!(bad.is_err());
    }
}

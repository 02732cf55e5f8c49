//! Bounds on configuration values and memory estimates, shared by every reproduction's config.
//!
//! A config that validates must neither abort (an allocation too large for the machine) nor run
//! for centuries (a step count near `usize::MAX`). Each reproduction bounds every size, count and
//! step field by a stated limit through [`at_most`] / [`len_at_most`], checks its reals with
//! [`finite_in`], and estimates the peak memory of its largest unit with the saturating helpers
//! [`product`] and [`total`] (so that no value, however large, overflows the estimate).
//!
//! Every check returns a [`LimitError`] whose message names the field, the value and the
//! limit, e.g. `d_model 1000000000 is above the limit 4096`.

/// Bytes in a KiB.
pub const KIB: u64 = 1 << 10;
/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;
/// Bytes in a GiB.
pub const GIB: u64 = 1 << 30;

/// Bytes per trained f32 parameter under Adam(W): the weight, its gradient and the two moments.
pub const TRAIN_BYTES_PER_PARAM: u64 = 16;

/// A value outside its stated bound. Displays as `{field} {value} {rule}`, e.g.
/// `stage_steps 18446744073709551615 is above the limit 1000000`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value} {rule}")]
pub struct LimitError {
    /// The field, as its config spells it (`model.d_model`, `ranks length`).
    pub field: String,
    /// The value given, as text.
    pub value: String,
    /// What is wrong, e.g. `is above the limit 4096`.
    pub rule: String,
}

/// `Ok` iff `value ≤ max`; else `{field} {value} is above the limit {max}`.
pub fn at_most(field: &str, value: usize, max: usize) -> Result<(), LimitError> {
    if value <= max {
        Ok(())
    } else {
        Err(LimitError {
            field: field.into(),
            value: value.to_string(),
            rule: format!("is above the limit {max}"),
        })
    }
}

/// `Ok` iff a list holds at most `max` entries; else
/// `{field} length {len} is above the limit {max}`.
pub fn len_at_most(field: &str, len: usize, max: usize) -> Result<(), LimitError> {
    at_most(&format!("{field} length"), len, max)
}

/// `Ok` iff `value` is finite and in `[lo, hi]`; else `{field} {value} is not finite` or
/// `{field} {value} is outside [{lo}, {hi}]`.
pub fn finite_in(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), LimitError> {
    let rule = if !value.is_finite() {
        "is not finite".to_string()
    } else if !(lo..=hi).contains(&value) {
        format!("is outside [{lo}, {hi}]")
    } else {
        return Ok(());
    };
    Err(LimitError {
        field: field.into(),
        value: value.to_string(),
        rule,
    })
}

/// `Ok` iff the estimate fits the memory available; else
/// `estimated memory 12.0 GiB is above the available 8.0 GiB`.
pub fn memory_at_most(estimate: u64, available: u64) -> Result<(), LimitError> {
    if estimate <= available {
        Ok(())
    } else {
        Err(LimitError {
            field: "estimated memory".into(),
            value: fmt_bytes(estimate),
            rule: format!("is above the available {}", fmt_bytes(available)),
        })
    }
}

/// The product of `factors`, saturating at `u64::MAX` (1 for no factor).
pub fn product(factors: &[usize]) -> u64 {
    factors
        .iter()
        .fold(1u64, |acc, &f| acc.saturating_mul(f as u64))
}

/// The sum of `parts`, saturating at `u64::MAX`.
pub fn total(parts: &[u64]) -> u64 {
    parts.iter().fold(0u64, |acc, &p| acc.saturating_add(p))
}

/// A byte count for messages: `512 B`, `3.0 KiB`, `1.5 GiB` (one decimal above a KiB).
pub fn fmt_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_names_field_value_and_limit() {
        at_most("d_model", 4096, 4096).unwrap();
        let e = at_most("d_model", 1_000_000_000, 4096).unwrap_err();
        assert_eq!(e.to_string(), "d_model 1000000000 is above the limit 4096");
        assert_eq!(e.field, "d_model");
        assert_eq!(e.value, "1000000000");
        assert_eq!(e.rule, "is above the limit 4096");
        let e = at_most("stage_steps", usize::MAX, 1_000_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("stage_steps {} is above the limit 1000000", usize::MAX)
        );
    }

    #[test]
    fn len_at_most_bounds_lists() {
        len_at_most("ranks", 64, 64).unwrap();
        assert_eq!(
            len_at_most("ranks", 65, 64).unwrap_err().to_string(),
            "ranks length 65 is above the limit 64"
        );
    }

    #[test]
    fn finite_in_refuses_nan_inf_and_out_of_range() {
        finite_in("weight_decay", 0.0, 0.0, 10.0).unwrap();
        finite_in("weight_decay", 10.0, 0.0, 10.0).unwrap();
        let msg = |v: f64| {
            finite_in("weight_decay", v, 0.0, 10.0)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(msg(f64::NAN), "weight_decay NaN is not finite");
        assert_eq!(msg(f64::INFINITY), "weight_decay inf is not finite");
        assert_eq!(msg(-0.5), "weight_decay -0.5 is outside [0, 10]");
    }

    #[test]
    fn saturating_helpers_never_overflow() {
        assert_eq!(product(&[]), 1);
        assert_eq!(product(&[3, 4, 5]), 60);
        assert_eq!(product(&[usize::MAX, usize::MAX, 2]), u64::MAX);
        assert_eq!(total(&[1, 2, 3]), 6);
        assert_eq!(total(&[u64::MAX, 1]), u64::MAX);
    }

    #[test]
    fn bytes_format_and_memory_check() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(3 * KIB), "3.0 KiB");
        assert_eq!(fmt_bytes(3 * MIB / 2), "1.5 MiB");
        assert_eq!(fmt_bytes(12 * GIB), "12.0 GiB");
        memory_at_most(8 * GIB, 8 * GIB).unwrap();
        assert_eq!(
            memory_at_most(12 * GIB, 8 * GIB).unwrap_err().to_string(),
            "estimated memory 12.0 GiB is above the available 8.0 GiB"
        );
    }
}

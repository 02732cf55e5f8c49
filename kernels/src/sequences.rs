//! `[rows, time]` batches of sequences with a 0/1 mask of valid tokens, and the checks every
//! sequence kernel (preference, PPO) runs on the host before launching.
//!
//! Mask rules (the same as `claimbench_dpo_ppo::seq`, whose f64 references the kernels are tested
//! against): every mask value is exactly 0 or 1, every row has at least one valid token, values at
//! valid positions are finite, and masked positions are never read (they may hold NaN) and come
//! back as exactly 0.

use crate::KernelError;

/// The shape of a batch of sequences: `rows` sequences of `time` positions, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqShape {
    /// Number of sequences.
    pub rows: usize,
    /// Positions per sequence.
    pub time: usize,
}

impl SeqShape {
    /// A shape with both dimensions at least 1, and `rows·time` addressable with u32 indices.
    pub fn new(rows: usize, time: usize) -> Result<Self, KernelError> {
        if rows == 0 {
            return Err(KernelError::EmptyDimension {
                what: "number of sequences",
            });
        }
        if time == 0 {
            return Err(KernelError::EmptyDimension {
                what: "sequence length",
            });
        }
        if rows.checked_mul(time).is_none_or(|n| n > u32::MAX as usize) {
            return Err(KernelError::InvalidSetting {
                what: "rows × time",
                value: format!("{rows} × {time}"),
                expected: "at most 2^32 − 1 positions",
            });
        }
        Ok(Self { rows, time })
    }

    /// `rows · time`.
    pub fn len(&self) -> usize {
        self.rows * self.time
    }

    /// Never true: both dimensions are at least 1.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks an array's length against the shape.
    pub fn check_len(&self, what: &'static str, data: &[f32]) -> Result<(), KernelError> {
        if data.len() == self.len() {
            Ok(())
        } else {
            Err(KernelError::ShapeMismatch {
                what,
                expected: vec![self.rows, self.time],
                got: vec![data.len()],
            })
        }
    }

    /// Checks the mask rules and returns the number of valid tokens.
    pub fn check_mask(&self, mask: &[f32]) -> Result<usize, KernelError> {
        self.check_len("mask [rows, time]", mask)?;
        let mut total = 0;
        for (row, r) in mask.chunks(self.time).enumerate() {
            let mut n = 0;
            for (col, &value) in r.iter().enumerate() {
                if value == 1.0 {
                    n += 1;
                } else if value != 0.0 {
                    return Err(KernelError::MaskValue { row, col, value });
                }
            }
            if n == 0 {
                return Err(KernelError::EmptySequence { row });
            }
            total += n;
        }
        Ok(total)
    }

    /// Checks that `data` has the shape's length and is finite at every valid position.
    pub fn check_valid_finite(
        &self,
        what: &'static str,
        data: &[f32],
        mask: &[f32],
    ) -> Result<(), KernelError> {
        self.check_len(what, data)?;
        for (i, (&v, &m)) in data.iter().zip(mask).enumerate() {
            if m == 1.0 && !v.is_finite() {
                return Err(KernelError::NonFinite {
                    what,
                    position: format!("row {}, position {}", i / self.time, i % self.time),
                    value: v,
                });
            }
        }
        Ok(())
    }
}

/// Checks that every value of a per-sequence array (scores, reference log-probs) is finite.
pub fn check_finite(what: &'static str, data: &[f32]) -> Result<(), KernelError> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(KernelError::NonFinite {
            what,
            position: format!("index {i}"),
            value: data[i],
        }),
        None => Ok(()),
    }
}

//! Masked sequence log-probabilities: per-token `log π(y_t | x, y_<t)` summed over a response.
//!
//! Both DPO and PPO start from per-token log-probabilities of a batch of sequences, stored as a
//! row-major `[B, T]` array (`B` sequences of `T` positions; position `(b, t)` at index
//! `b·T + t`), next to a loss mask of the same shape that is 1 on response tokens and 0 on the
//! prompt and on padding. DPO needs the sequence log-probability
//!
//! ```text
//! log π(y | x) = Σ_t m[b, t] · log π(y_t | x, y_<t)          (DPO paper, eq. 7's log π terms;
//!                                                              TRL/OpenRLHF "summed token log-probs")
//! ```
//!
//! and PPO works on the tokens themselves. This module holds the `[B, T]` [`Shape`], the mask
//! rules every function of the crate shares, the masked sum, and its gradient (the chain rule
//! back to the tokens, which is what a fused token-logprob backward consumes).
//!
//! # Mask rules
//!
//! A mask holds only `0.0` or `1.0` (anything else is [`Error::MaskValue`]), and every row must
//! have at least one 1 ([`Error::EmptyRow`]): a sequence with no response token is a bug upstream.
//! Valid tokens need not be contiguous. Masked positions are never read arithmetically, so padding
//! may hold anything, NaN included; valid positions must be finite ([`Error::NonFinite`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, check_finite};

/// The shape `[B, T]` of a row-major batch of sequences: `batch` rows of `time` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// `B`, the number of sequences.
    pub batch: usize,
    /// `T`, the number of positions per sequence.
    pub time: usize,
}

impl Shape {
    /// A checked shape: [`Error::EmptyShape`] when `batch` or `time` is 0.
    pub fn new(batch: usize, time: usize) -> Result<Self, Error> {
        let s = Shape { batch, time };
        s.check()?;
        Ok(s)
    }

    /// `B·T`, the length of a row-major array of this shape.
    pub fn len(&self) -> usize {
        self.batch * self.time
    }

    /// Whether `B·T = 0` (such a shape fails [`Shape::check`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Error::EmptyShape`] when `batch` or `time` is 0.
    pub fn check(&self) -> Result<(), Error> {
        if self.batch == 0 || self.time == 0 {
            Err(Error::EmptyShape {
                batch: self.batch,
                time: self.time,
            })
        } else {
            Ok(())
        }
    }

    /// Checks that the row-major array `name` has `B·T` values ([`Error::ShapeMismatch`]).
    pub(crate) fn check_array(&self, name: &'static str, data: &[f64]) -> Result<(), Error> {
        if data.len() == self.len() {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                name,
                len: data.len(),
                batch: self.batch,
                time: self.time,
            })
        }
    }

    /// Checks `mask` against the shape and the [mask rules](self#mask-rules); returns the number
    /// of valid (mask = 1) positions, which is ≥ `B`.
    pub(crate) fn check_mask(&self, mask: &[f64]) -> Result<usize, Error> {
        self.check()?;
        self.check_array("mask", mask)?;
        let mut total = 0;
        for (row, r) in mask.chunks(self.time).enumerate() {
            let mut n = 0;
            for (col, &value) in r.iter().enumerate() {
                if value == 1.0 {
                    n += 1;
                } else if value != 0.0 {
                    return Err(Error::MaskValue { row, col, value });
                }
            }
            if n == 0 {
                return Err(Error::EmptyRow { row });
            }
            total += n;
        }
        Ok(total)
    }

    /// Checks that `name` has the shape's length and is finite wherever `mask` is 1 (the mask is
    /// assumed checked).
    pub(crate) fn check_valid_finite(
        &self,
        name: &'static str,
        data: &[f64],
        mask: &[f64],
    ) -> Result<(), Error> {
        self.check_array(name, data)?;
        for (i, (&v, &m)) in data.iter().zip(mask).enumerate() {
            if m == 1.0 {
                check_finite(name, || self.index(i), v)?;
            }
        }
        Ok(())
    }

    /// Formats flat index `i` as `b, t`.
    pub(crate) fn index(&self, i: usize) -> String {
        format!("{}, {}", i / self.time, i % self.time)
    }
}

/// Per-sequence sums of masked token log-probabilities.
///
/// `token_logprobs` and `mask` are row-major `[B, T]` (`shape`); returns `[B]` with
/// `out[b] = Σ_t mask[b, t] · token_logprobs[b, t]`, i.e. `log π(y_b | x_b)` over the response
/// tokens. Masked positions are skipped, not multiplied, so padding may hold NaN.
///
/// Errors: [`Error::EmptyShape`], [`Error::ShapeMismatch`], the mask errors
/// ([`Error::MaskValue`], [`Error::EmptyRow`]), and [`Error::NonFinite`] for a valid position
/// that is NaN or ±∞.
pub fn masked_sequence_logprobs(
    token_logprobs: &[f64],
    mask: &[f64],
    shape: Shape,
) -> Result<Vec<f64>, Error> {
    shape.check_mask(mask)?;
    shape.check_valid_finite("token_logprobs", token_logprobs, mask)?;
    Ok(token_logprobs
        .chunks(shape.time)
        .zip(mask.chunks(shape.time))
        .map(|(lp, m)| {
            lp.iter()
                .zip(m)
                .filter(|&(_, &m)| m == 1.0)
                .map(|(&v, _)| v)
                .sum()
        })
        .collect())
}

/// The chain rule from a per-sequence gradient back to the tokens.
///
/// Since `∂ out[b] / ∂ token_logprobs[b, t] = mask[b, t]` for [`masked_sequence_logprobs`], a loss
/// `L(out)` has `∂L/∂ token_logprobs[b, t] = mask[b, t] · ∂L/∂out[b]`. `seq_grad` is `[B]`,
/// `mask` `[B, T]`; returns `[B, T]` row-major, exactly 0 at masked positions. This is the
/// per-token weight a fused token-logprob backward takes.
///
/// Errors: the mask errors, [`Error::BatchMismatch`] when `seq_grad` is not `[B]`, and
/// [`Error::NonFinite`] for a non-finite `seq_grad` entry.
pub fn sequence_grad_to_tokens(
    seq_grad: &[f64],
    mask: &[f64],
    shape: Shape,
) -> Result<Vec<f64>, Error> {
    shape.check_mask(mask)?;
    if seq_grad.len() != shape.batch {
        return Err(Error::BatchMismatch {
            name: "seq_grad",
            len: seq_grad.len(),
            reference: "the shape's B",
            expected: shape.batch,
        });
    }
    for (b, &g) in seq_grad.iter().enumerate() {
        check_finite("seq_grad", || b.to_string(), g)?;
    }
    Ok(mask
        .chunks(shape.time)
        .zip(seq_grad)
        .flat_map(|(m, &g)| m.iter().map(move |&m| if m == 1.0 { g } else { 0.0 }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(b: usize, t: usize) -> Shape {
        Shape::new(b, t).unwrap()
    }

    /// Hand-computed: row 0 sums tokens 1..3 = −1 − 2 − 0.5 = −3.5 (prompt at 0, padding at 3);
    /// row 1 sums tokens 2..4 = −0.25 − 0.75 = −1.
    #[test]
    fn sums_by_hand() {
        let lp = [-9.0, -1.0, -2.0, -0.5, -7.0, -8.0, -0.25, -0.75];
        let mask = [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let out = masked_sequence_logprobs(&lp, &mask, shape(2, 4)).unwrap();
        assert_eq!(out, vec![-3.5, -1.0]);
    }

    /// Padding may hold NaN or −∞: it is skipped, not multiplied by 0.
    #[test]
    fn padding_may_be_nan() {
        let lp = [-1.0, f64::NAN, f64::NEG_INFINITY, -2.0];
        let mask = [1.0, 0.0, 0.0, 1.0];
        let out = masked_sequence_logprobs(&lp, &mask, shape(1, 4)).unwrap();
        assert_eq!(out, vec![-3.0]);
    }

    /// B = 1, T = 1; and all-masked-but-one.
    #[test]
    fn awkward_shapes() {
        assert_eq!(
            masked_sequence_logprobs(&[-0.3], &[1.0], shape(1, 1)).unwrap(),
            vec![-0.3]
        );
        let lp = [-1.0, -2.0, -3.0, -4.0, -5.0];
        let mask = [0.0, 0.0, 0.0, 1.0, 0.0];
        assert_eq!(
            masked_sequence_logprobs(&lp, &mask, shape(1, 5)).unwrap(),
            vec![-4.0]
        );
        // T = 1 with several rows.
        assert_eq!(
            masked_sequence_logprobs(&[-1.0, -2.0, -3.0], &[1.0; 3], shape(3, 1)).unwrap(),
            vec![-1.0, -2.0, -3.0]
        );
    }

    /// Rows of varying lengths, including holes (non-contiguous valid tokens), against a plain
    /// loop.
    #[test]
    fn varying_lengths_match_a_loop() {
        let (b, t) = (4, 6);
        let lp: Vec<f64> = (0..b * t).map(|i| -0.1 * (i as f64 + 1.0)).collect();
        let mask = [
            1., 1., 1., 1., 1., 1., //
            0., 0., 1., 0., 0., 0., //
            0., 1., 0., 1., 1., 0., //
            1., 0., 0., 0., 0., 1., //
        ];
        let out = masked_sequence_logprobs(&lp, &mask, shape(b, t)).unwrap();
        for row in 0..b {
            let mut s = 0.0;
            for col in 0..t {
                if mask[row * t + col] == 1.0 {
                    s += lp[row * t + col];
                }
            }
            assert_eq!(out[row], s, "row {row}");
        }
    }

    /// The gradient is the mask times the sequence gradient; checked by finite differences of
    /// L = Σ_b w_b · out[b]² (so ∂L/∂out[b] = 2 w_b out[b]).
    #[test]
    fn grad_to_tokens_matches_finite_differences() {
        let s = shape(3, 4);
        let lp: Vec<f64> = (0..12).map(|i| -0.2 - 0.13 * i as f64).collect();
        let mask = [
            0., 1., 1., 0., //
            1., 1., 1., 1., //
            0., 0., 0., 1., //
        ];
        let w = [0.7, -1.3, 2.1];
        let loss = |lp: &[f64]| -> f64 {
            let out = masked_sequence_logprobs(lp, &mask, s).unwrap();
            out.iter().zip(&w).map(|(o, w)| w * o * o).sum()
        };
        let out = masked_sequence_logprobs(&lp, &mask, s).unwrap();
        let g: Vec<f64> = out.iter().zip(&w).map(|(o, w)| 2.0 * w * o).collect();
        let grad = sequence_grad_to_tokens(&g, &mask, s).unwrap();
        let h = 1e-6;
        for i in 0..lp.len() {
            let mut p = lp.clone();
            p[i] += h;
            let mut m = lp.clone();
            m[i] -= h;
            let fd = (loss(&p) - loss(&m)) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "token {i}: fd {fd} vs {}",
                grad[i]
            );
            if mask[i] == 0.0 {
                assert_eq!(grad[i], 0.0);
            }
        }
    }

    #[test]
    fn errors_name_the_bad_value() {
        let err = |r: Result<Vec<f64>, Error>| r.unwrap_err().to_string();
        assert_eq!(
            Shape::new(0, 4).unwrap_err().to_string(),
            "shape [B = 0, T = 4] is empty; B and T must both be ≥ 1"
        );
        assert_eq!(
            err(masked_sequence_logprobs(
                &[],
                &[],
                Shape { batch: 2, time: 0 }
            )),
            "shape [B = 2, T = 0] is empty; B and T must both be ≥ 1"
        );
        assert_eq!(
            err(masked_sequence_logprobs(&[0.0; 6], &[1.0; 5], shape(2, 3))),
            "mask has 5 values; shape [B = 2, T = 3] needs 6"
        );
        assert_eq!(
            err(masked_sequence_logprobs(&[0.0; 7], &[1.0; 6], shape(2, 3))),
            "token_logprobs has 7 values; shape [B = 2, T = 3] needs 6"
        );
        assert_eq!(
            err(masked_sequence_logprobs(
                &[0.0; 6],
                &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
                shape(2, 3)
            )),
            "mask row 1 is all zeros; every sequence needs at least one valid token"
        );
        assert_eq!(
            err(masked_sequence_logprobs(
                &[0.0; 6],
                &[1.0, 1.0, 1.0, 0.0, 0.5, 1.0],
                shape(2, 3)
            )),
            "mask[1, 1] is 0.5; a mask holds only 0 or 1"
        );
        assert_eq!(
            err(masked_sequence_logprobs(
                &[0.0; 2],
                &[1.0, f64::NAN],
                shape(1, 2)
            )),
            "mask[0, 1] is NaN; a mask holds only 0 or 1"
        );
        assert_eq!(
            err(masked_sequence_logprobs(
                &[0.0, 0.0, 0.0, 0.0, f64::NEG_INFINITY, 0.0],
                &[1.0; 6],
                shape(2, 3)
            )),
            "token_logprobs[1, 1] is -inf; inputs must be finite"
        );
        assert_eq!(
            err(sequence_grad_to_tokens(&[1.0], &[1.0; 6], shape(2, 3))),
            "seq_grad has 1 entries but the shape's B has 2; they must match"
        );
        assert_eq!(
            err(sequence_grad_to_tokens(
                &[1.0, f64::NAN],
                &[1.0; 6],
                shape(2, 3)
            )),
            "seq_grad[1] is NaN; inputs must be finite"
        );
    }

    #[test]
    fn shape_round_trips_through_json() {
        let s = shape(3, 7);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"batch":3,"time":7}"#);
        assert_eq!(serde_json::from_str::<Shape>(&j).unwrap(), s);
        assert_eq!(s.len(), 21);
        assert!(!s.is_empty());
    }
}

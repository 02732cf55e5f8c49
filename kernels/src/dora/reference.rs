//! The plain-Rust references of the LoRA/DoRA layers (f64, materialising `W'`): the merged
//! weight, the forward, and the closed-form gradients of Eqs. 6, 7 and 11, which the kernel and
//! op tests compare against.

use super::*;

/// `left [rows, k] · right [k, cols]` in f64 (row-major): the reference product of the DoRA
/// references, and of the matmul pin in tests/kernels/matmul_autotune.rs.
pub fn matmul(left: &[f64], right: &[f64], rows: usize, k: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for p in 0..k {
            let l = left[i * k + p];
            if l == 0.0 {
                continue;
            }
            for j in 0..cols {
                out[i * cols + j] += l * right[p * cols + j];
            }
        }
    }
    out
}

fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = m[i * cols + j];
        }
    }
    out
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The adapter's tensors on the host, f32 (as the device holds them), with its spec.
#[derive(Clone, Debug)]
pub struct HostAdapter<'a> {
    /// Geometry and `α`.
    pub spec: AdapterSpec,
    /// `W0 [d_in, d_out]`.
    pub w0: &'a [f32],
    /// `A [d_in, r]`.
    pub a: &'a [f32],
    /// `B [r, d_out]`.
    pub b: &'a [f32],
    /// `m [d_out]` (DoRA).
    pub m: &'a [f32],
}

impl HostAdapter<'_> {
    /// `V = W0 + s A B` `[d_in, d_out]`, materialised (f64).
    pub fn direction_reference(&self) -> Vec<f64> {
        let AdapterSpec {
            d_in, d_out, rank, ..
        } = self.spec;
        let s = self.spec.scale() as f64;
        let ab = matmul(&f64s(self.a), &f64s(self.b), d_in, rank, d_out);
        self.w0
            .iter()
            .zip(ab)
            .map(|(&w, u)| w as f64 + s * u)
            .collect()
    }

    /// Column norms `c [d_out]` of `V` (no floor).
    pub fn column_norms_reference(&self) -> Vec<f64> {
        let AdapterSpec { d_in, d_out, .. } = self.spec;
        let v = self.direction_reference();
        (0..d_out)
            .map(|j| {
                (0..d_in)
                    .map(|i| v[i * d_out + j].powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect()
    }

    /// The merged DoRA weight `W' = m ⊙ V / max(c, ε)` `[d_in, d_out]` (Eq. 5).
    pub fn merged_reference(&self) -> Vec<f64> {
        let d_out = self.spec.d_out;
        let v = self.direction_reference();
        let c = self.column_norms_reference();
        v.iter()
            .enumerate()
            .map(|(p, x)| {
                let j = p % d_out;
                x * self.m[j] as f64 / c[j].max(NORM_EPS as f64)
            })
            .collect()
    }

    /// LoRA's output `x W0 + s (x A) B` for `x [n, d_in]` → `[n, d_out]`.
    pub fn lora_forward_reference(&self, x: &[f32], n: usize) -> Vec<f64> {
        let AdapterSpec { d_in, d_out, .. } = self.spec;
        matmul(&f64s(x), &self.direction_reference(), n, d_in, d_out)
    }

    /// DoRA's output `x W'` for `x [n, d_in]` → `[n, d_out]`.
    pub fn dora_forward_reference(&self, x: &[f32], n: usize) -> Vec<f64> {
        let AdapterSpec { d_in, d_out, .. } = self.spec;
        matmul(&f64s(x), &self.merged_reference(), n, d_in, d_out)
    }

    /// DoRA's gradients for `x [n, d_in]` and the upstream `dy [n, d_out]`, from the paper's closed
    /// forms: with `G = xᵀ dy = ∇_{W'} L`,
    /// - `∂L/∂m_j = Σ_i G[i, j] V[i, j] / c_j` (Eq. 7);
    /// - `∇_V L = (m_j / c_j) G[:, j]` with the norm detached (Eq. 11), or
    ///   `(m_j / c_j) (G[:, j] − V[:, j] ⟨V[:, j], G[:, j]⟩ / c_j²)` exactly (Eq. 6);
    /// - `∂L/∂A = s ∇_V L Bᵀ`, `∂L/∂B = s Aᵀ ∇_V L`, `∂L/∂x = dy W'ᵀ`.
    pub fn dora_grads_reference(&self, x: &[f32], dy: &[f32], n: usize, exact: bool) -> Grads {
        let AdapterSpec {
            d_in, d_out, rank, ..
        } = self.spec;
        let s = self.spec.scale() as f64;
        let v = self.direction_reference();
        let c: Vec<f64> = self
            .column_norms_reference()
            .into_iter()
            .map(|c| c.max(NORM_EPS as f64))
            .collect();
        let grad_w = matmul(&transpose(&f64s(x), n, d_in), &f64s(dy), d_in, n, d_out);
        let mut dm = vec![0.0; d_out];
        let mut dots = vec![0.0; d_out];
        for i in 0..d_in {
            for j in 0..d_out {
                dots[j] += grad_w[i * d_out + j] * v[i * d_out + j];
            }
        }
        for j in 0..d_out {
            dm[j] = dots[j] / c[j];
        }
        let mut grad_v = vec![0.0; d_in * d_out];
        for i in 0..d_in {
            for j in 0..d_out {
                let p = i * d_out + j;
                let ratio = self.m[j] as f64 / c[j];
                grad_v[p] = if exact {
                    ratio * (grad_w[p] - v[p] * dots[j] / (c[j] * c[j]))
                } else {
                    ratio * grad_w[p]
                };
            }
        }
        let da: Vec<f64> = matmul(
            &grad_v,
            &transpose(&f64s(self.b), rank, d_out),
            d_in,
            d_out,
            rank,
        )
        .into_iter()
        .map(|g| g * s)
        .collect();
        let db: Vec<f64> = matmul(
            &transpose(&f64s(self.a), d_in, rank),
            &grad_v,
            rank,
            d_in,
            d_out,
        )
        .into_iter()
        .map(|g| g * s)
        .collect();
        let merged = self.merged_reference();
        let dx = matmul(&f64s(dy), &transpose(&merged, d_in, d_out), n, d_out, d_in);
        Grads { dx, da, db, dm }
    }

    /// LoRA's gradients: `∂L/∂A = s xᵀ (dy Bᵀ)`, `∂L/∂B = s (x A)ᵀ dy`, `∂L/∂x = dy Vᵀ`
    /// (`dm` is empty).
    pub fn lora_grads_reference(&self, x: &[f32], dy: &[f32], n: usize) -> Grads {
        let AdapterSpec {
            d_in, d_out, rank, ..
        } = self.spec;
        let s = self.spec.scale() as f64;
        let dyb = matmul(
            &f64s(dy),
            &transpose(&f64s(self.b), rank, d_out),
            n,
            d_out,
            rank,
        );
        let da = matmul(&transpose(&f64s(x), n, d_in), &dyb, d_in, n, rank)
            .into_iter()
            .map(|g| g * s)
            .collect();
        let xa = matmul(&f64s(x), &f64s(self.a), n, d_in, rank);
        let db = matmul(&transpose(&xa, n, rank), &f64s(dy), rank, n, d_out)
            .into_iter()
            .map(|g| g * s)
            .collect();
        let dx = matmul(
            &f64s(dy),
            &transpose(&self.direction_reference(), d_in, d_out),
            n,
            d_out,
            d_in,
        );
        Grads {
            dx,
            da,
            db,
            dm: Vec::new(),
        }
    }
}

/// Gradients of an adapted layer (f64, row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// `∂L/∂x [n, d_in]`.
    pub dx: Vec<f64>,
    /// `∂L/∂A [d_in, r]`.
    pub da: Vec<f64>,
    /// `∂L/∂B [r, d_out]`.
    pub db: Vec<f64>,
    /// `∂L/∂m [d_out]` (DoRA only).
    pub dm: Vec<f64>,
}

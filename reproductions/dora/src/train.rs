//! Regression tasks (a teacher network on `x ~ N(0, I)`) and the one training loop every arm
//! uses: Adam (burn's defaults, no weight decay), peak learning rate `lr` decayed linearly to 0,
//! loss `mean((f(x) − teacher(x))²)` on `batch` fresh samples per step, drawn from a host stream
//! that every arm of a seed shares (common random numbers: arms differ only by method, rank
//! and learning rate).

use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::DoraBackend;
use rand::rngs::StdRng;

use crate::error::Error;
use crate::layer::{LinearWeights, Net, Trainable, normal, read, tensor1, tensor2};

/// A teacher network and its held-out set on the device.
pub(crate) struct Task<B: Backend> {
    w: Vec<Tensor<B, 2>>,
    b: Vec<Option<Tensor<B, 1>>>,
    n_in: usize,
    eval_x: Tensor<B, 2>,
    eval_y: Tensor<B, 2>,
}

/// `n` rows of `x ~ N(0, I_d)` from `rng`.
pub(crate) fn gaussian_batch<B: Backend>(
    rng: &mut StdRng,
    n: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let v: Vec<f64> = (0..n * d).map(|_| normal(rng)).collect();
    tensor2::<B>(&v, n, d, device)
}

impl<B: Backend> Task<B> {
    /// `teacher` (ReLU between layers) with `eval_samples` held-out inputs from `eval_rng`.
    pub(crate) fn new(
        teacher: &[LinearWeights],
        eval_samples: usize,
        eval_rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        let w = teacher
            .iter()
            .map(|l| tensor2::<B>(&l.w, l.d_in, l.d_out, device))
            .collect();
        let b = teacher
            .iter()
            .map(|l| l.bias.as_ref().map(|b| tensor1::<B>(b, device)))
            .collect();
        let n_in = teacher[0].d_in;
        let mut t = Task {
            w,
            b,
            n_in,
            eval_x: Tensor::zeros([1, n_in], device),
            eval_y: Tensor::zeros([1, 1], device),
        };
        t.eval_x = gaussian_batch::<B>(eval_rng, eval_samples, n_in, device);
        t.eval_y = t.teacher(t.eval_x.clone());
        t
    }

    /// The teacher's output `[n, d_out]` (a constant: no parameter is tracked).
    pub(crate) fn teacher(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = self.w.len();
        let mut h = x;
        for (l, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            h = h.matmul(w.clone());
            if let Some(b) = b {
                h = h + b.clone().unsqueeze_dim(0);
            }
            if l + 1 < n {
                h = relu(h);
            }
        }
        h
    }
}

/// One run's schedule.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub checkpoint_every: usize,
    /// Record the (ΔD, ΔM) points of every layer at every checkpoint after step 0.
    pub analysis: bool,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOutput {
    /// Steps of the logged points: 0, `checkpoint_every`, 2·…, and `steps`.
    pub curve_steps: Vec<usize>,
    /// Held-out MSE / `base_mse` at those steps.
    pub curve: Vec<f64>,
    /// `(layer, step, ΔD, ΔM)` per layer per checkpoint after step 0 (when asked).
    pub points: Vec<(usize, usize, f64, f64)>,
}

impl RunOutput {
    pub(crate) fn final_nmse(&self) -> f64 {
        *self.curve.last().expect("a run logs step 0")
    }
}

/// Held-out MSE of `net` with `params` on `task`.
pub(crate) fn eval_mse<B: AutodiffBackend + DoraBackend>(
    net: &Net<B>,
    params: &Trainable<B>,
    task: &Task<B>,
) -> Result<f64, Error> {
    let pred = net.forward(params, task.eval_x.clone())?;
    let mse = (pred - task.eval_y.clone()).powi_scalar(2).mean();
    Ok(read(mse.detach())?[0])
}

/// Trains `params` on `task` for `s.steps` Adam steps with `lr_t = lr·(1 − t/steps)`, batches
/// from `batch_rng`. Logs the held-out MSE divided by `base_mse` at every checkpoint; a
/// non-finite value is [`Error::Diverged`] (named `run`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train<B: AutodiffBackend + DoraBackend>(
    net: &Net<B>,
    mut params: Trainable<B>,
    task: &Task<B>,
    s: &Schedule,
    base_mse: f64,
    mut batch_rng: StdRng,
    run: &str,
    device: &B::Device,
) -> Result<(RunOutput, Trainable<B>), Error> {
    let mut optim = AdamConfig::new().init::<B, Trainable<B>>();
    let mut out = RunOutput {
        curve_steps: Vec::new(),
        curve: Vec::new(),
        points: Vec::new(),
    };
    let log = |step: usize, params: &Trainable<B>, out: &mut RunOutput| -> Result<(), Error> {
        let nmse = eval_mse(net, params, task)? / base_mse;
        if !nmse.is_finite() {
            return Err(Error::Diverged {
                run: format!("{run} (lr {})", s.lr),
                step,
                loss: nmse,
            });
        }
        out.curve_steps.push(step);
        out.curve.push(nmse);
        if s.analysis && step > 0 {
            for (l, dec) in net.decompose(params)?.iter().enumerate() {
                let (dd, dm) = dec.deltas(&net.base[l]);
                out.points.push((l, step, dd, dm));
            }
        }
        Ok(())
    };
    log(0, &params, &mut out)?;
    for t in 0..s.steps {
        let x = gaussian_batch::<B>(&mut batch_rng, s.batch, task.n_in, device);
        let y = task.teacher(x.clone());
        let loss = (net.forward(&params, x)? - y).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &params);
        let lr = s.lr * (1.0 - t as f64 / s.steps as f64);
        params = optim.step(lr, params, grads);
        let done = t + 1;
        if done % s.checkpoint_every == 0 || done == s.steps {
            log(done, &params, &mut out)?;
        }
    }
    Ok((out, params))
}

/// An FT network's trained layers on the host.
pub(crate) fn read_full<B: AutodiffBackend + DoraBackend>(
    net: &Net<B>,
    params: &Trainable<B>,
) -> Result<Vec<LinearWeights>, Error> {
    net.base
        .iter()
        .zip(&params.layers)
        .map(|(l, p)| {
            Ok(LinearWeights {
                d_in: l.d_in,
                d_out: l.d_out,
                w: read(p.w.as_ref().expect("FT layers hold w").val())?,
                bias: match &p.bias {
                    Some(b) => Some(read(b.val())?),
                    None => None,
                },
            })
        })
        .collect()
}

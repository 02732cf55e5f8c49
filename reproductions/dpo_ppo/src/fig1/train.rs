//! Training in burn: tensor helpers, the SFT, DPO and PPO steps, and the reward model.

use super::*;

pub(super) fn tensor1<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

pub(super) fn tensor2<B: Backend>(
    v: &[f64],
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// The `[n, cells]` matrix whose row `i` is `+1` at `plus[i]` and `−1` at `minus[i]` (if given):
/// multiplying a flattened `[cells]` table by it selects entries or pair differences.
pub(super) fn selector<B: Backend>(
    plus: &[usize],
    minus: Option<&[usize]>,
    cells: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut m = vec![0.0; plus.len() * cells];
    for (i, &c) in plus.iter().enumerate() {
        m[i * cells + c] += 1.0;
    }
    if let Some(minus) = minus {
        for (i, &c) in minus.iter().enumerate() {
            m[i * cells + c] -= 1.0;
        }
    }
    tensor2(&m, plus.len(), cells, device)
}

/// `[n, cells] · [cells] → [n]`.
pub(super) fn select<B: Backend>(sel: &Tensor<B, 2>, table: Tensor<B, 1>) -> Tensor<B, 1> {
    let n = sel.dims()[0];
    let cells = table.dims()[0];
    sel.clone().matmul(table.reshape([cells, 1])).reshape([n])
}

pub(super) fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem::<f64>()
}

pub(super) fn check_loss(stage: &str, step: usize, loss: f64) -> Result<(), Error> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged {
            stage: stage.into(),
            step,
            loss,
        })
    }
}

/// The per-seed tensors every policy run shares: the one-hot prompts `I [X, X]`.
pub(super) struct Ctx<'a, B: Backend> {
    pub(super) cfg: &'a Fig1Config,
    device: &'a B::Device,
    eye: Tensor<B, 2>,
}

impl<'a, B: AutodiffBackend + PreferenceBackend> Ctx<'a, B> {
    pub(super) fn new(cfg: &'a Fig1Config, device: &'a B::Device) -> Self {
        let nx = cfg.n_prompts;
        let mut eye = vec![0.0; nx * nx];
        for x in 0..nx {
            eye[x * nx + x] = 1.0;
        }
        Ctx {
            cfg,
            device,
            eye: tensor2(&eye, nx, nx, device),
        }
    }

    /// `log π(y|x)` flattened `[X·Y]` (log-softmax over responses).
    fn logp(&self, policy: &Mlp<B>) -> Tensor<B, 1> {
        log_softmax(policy.forward(self.eye.clone()), 1).reshape([self.cfg.cells()])
    }

    /// `log π(y|x)` on the host, `[X·Y]`.
    pub(super) fn logp_host(&self, w: &MlpWeights) -> Result<Vec<f64>, Error> {
        let m = w.to_module::<B>(self.device);
        Ok(read(self.logp(&m))?.iter().map(|&v| v as f64).collect())
    }

    /// SFT: full-batch cross-entropy `−Σ_xy c(x,y) log π(y|x) / Σ c` on counts `c [X·Y]`.
    pub(super) fn sft(
        &self,
        init: &MlpWeights,
        counts: &[f64],
        stage: &str,
    ) -> Result<MlpWeights, Error> {
        let total: f64 = counts.iter().sum();
        let w = tensor1::<B>(
            &counts.iter().map(|c| c / total).collect::<Vec<_>>(),
            self.device,
        );
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        for step in 0..self.cfg.sft_steps {
            let loss = (self.logp(&model) * w.clone()).sum().neg();
            check_loss(stage, step, scalar(&loss))?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.cfg.sft_lr, model, grads);
        }
        MlpWeights::from_module(&model)
    }

    /// DPO (eq. 7 of the DPO paper, no label smoothing) on `pairs`, the policy initialised from
    /// `init`, against the reference log-probabilities `ref_logp [X·Y]`. Returns the weights and
    /// the loss before each step.
    ///
    /// The loss goes through the fused DPO path of `claimbench_kernels` (token log-probs →
    /// sequence sums → loss; the cubecl kernels on wgpu/CUDA, their composition on flex): each
    /// response is a one-token sequence, stacked `[chosen.., rejected..]` as `logits [2P, 1, Y]`
    /// (the policy's logits at each pair's prompt), with the reference's log-probs `[2P]`.
    pub(super) fn dpo(
        &self,
        init: &MlpWeights,
        ref_logp: &[f64],
        pairs: &[Preference],
        stage: &str,
    ) -> Result<(MlpWeights, Vec<f64>), Error> {
        let ny = self.cfg.n_responses;
        let n = 2 * pairs.len();
        let prompts: Vec<i64> = pairs.iter().chain(pairs).map(|p| p.prompt as i64).collect();
        let responses: Vec<i64> = pairs
            .iter()
            .map(|p| p.chosen as i64)
            .chain(pairs.iter().map(|p| p.rejected as i64))
            .collect();
        let reference: Vec<f64> = pairs
            .iter()
            .map(|p| ref_logp[p.prompt * ny + p.chosen])
            .chain(pairs.iter().map(|p| ref_logp[p.prompt * ny + p.rejected]))
            .collect();
        let prompt_idx = Tensor::<B, 1, Int>::from_data(TensorData::new(prompts, [n]), self.device);
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(responses, [n, 1]), self.device);
        let mask = Tensor::<B, 2>::ones([n, 1], self.device);
        let reference = tensor1::<B>(&reference, self.device);
        let settings = DpoSettings {
            beta: self.cfg.beta as f32,
            label_smoothing: 0.0,
        };
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        let mut curve = Vec::with_capacity(self.cfg.dpo_steps);
        for step in 0..self.cfg.dpo_steps {
            // h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r); L = −mean log σ(β h).
            let logits = model
                .forward(self.eye.clone())
                .select(0, prompt_idx.clone())
                .reshape([n, 1, ny]);
            let loss = dpo_loss_unchecked(
                logits,
                ids.clone(),
                mask.clone(),
                reference.clone(),
                settings,
            )
            .loss;
            let v = scalar(&loss);
            check_loss(stage, step, v)?;
            curve.push(v);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.cfg.dpo_lr, model, grads);
        }
        Ok((MlpWeights::from_module(&model)?, curve))
    }

    /// Bandit PPO from `init` against `ref_logp`, rewarded by `rm [X·Y]` (see the module docs).
    /// Returns the weights and the expected true reward before the first and after every
    /// iteration (`ppo_iterations + 1` values).
    pub(super) fn ppo(
        &self,
        init: &MlpWeights,
        ref_logp: &[f64],
        rm: &[f64],
        setup: &Setup,
        rng: &mut StdRng,
        stage: &str,
    ) -> Result<(MlpWeights, Vec<f64>), Error> {
        let cfg = self.cfg;
        let (nx, ny, n) = (cfg.n_prompts, cfg.n_responses, cfg.ppo_batch);
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        let mut curve = Vec::with_capacity(cfg.ppo_iterations + 1);
        let mut step = 0;
        for _ in 0..cfg.ppo_iterations {
            let old: Vec<f64> = read(self.logp(&model))?.iter().map(|&v| v as f64).collect();
            let probs: Vec<f64> = old.iter().map(|v| v.exp()).collect();
            curve.push(setup.expected_true_reward(&probs));
            // Rollouts: prompt i mod X, response ~ π_old(·|x).
            let cells: Vec<usize> = (0..n)
                .map(|i| {
                    let x = i % nx;
                    x * ny + categorical(rng, &probs[x * ny..(x + 1) * ny])
                })
                .collect();
            // KL-penalised reward, per-prompt mean baseline, whitened advantages.
            let reward: Vec<f64> = cells
                .iter()
                .map(|&c| rm[c] - cfg.beta * (old[c] - ref_logp[c]))
                .collect();
            let mut sum = vec![0.0; nx];
            let mut count = vec![0.0; nx];
            for (i, &r) in reward.iter().enumerate() {
                sum[i % nx] += r;
                count[i % nx] += 1.0;
            }
            let adv: Vec<f64> = reward
                .iter()
                .enumerate()
                .map(|(i, &r)| r - sum[i % nx] / count[i % nx])
                .collect();
            let adv = whiten(&adv, &vec![1.0; n], Shape::new(n, 1)?)?;
            let mut order: Vec<usize> = (0..n).collect();
            for _ in 0..cfg.ppo_epochs {
                for i in (1..n).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                for k in 0..cfg.ppo_minibatches {
                    let idx =
                        &order[k * n / cfg.ppo_minibatches..(k + 1) * n / cfg.ppo_minibatches];
                    let mc: Vec<usize> = idx.iter().map(|&i| cells[i]).collect();
                    let sel = selector::<B>(&mc, None, cfg.cells(), self.device);
                    let old_lp =
                        tensor1::<B>(&mc.iter().map(|&c| old[c]).collect::<Vec<_>>(), self.device);
                    let a = tensor1::<B>(
                        &idx.iter().map(|&i| adv[i]).collect::<Vec<_>>(),
                        self.device,
                    );
                    // ρ = exp(log π − log π_old); L = mean max(−A ρ, −A clip(ρ, 1 ± ε)).
                    let ratio = (select(&sel, self.logp(&model)) - old_lp).exp();
                    let clipped = ratio.clone().clamp(1.0 - cfg.ppo_clip, 1.0 + cfg.ppo_clip);
                    let loss = (a.clone().neg() * ratio).max_pair(a.neg() * clipped).mean();
                    check_loss(stage, step, scalar(&loss))?;
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = optim.step(cfg.ppo_lr, model, grads);
                    step += 1;
                }
            }
        }
        let w = MlpWeights::from_module(&model)?;
        let fin: Vec<f64> = self.logp_host(&w)?.iter().map(|v| v.exp()).collect();
        curve.push(setup.expected_true_reward(&fin));
        Ok((w, curve))
    }
}

/// A freshly initialised reward model of `cfg.rm_arch`.
pub(super) fn rm_weights(cfg: &Fig1Config, rng: &mut StdRng) -> MlpWeights {
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    match cfg.rm_arch {
        RmArch::Pair => MlpWeights::init(nx + ny, cfg.rm_hidden, 1, rng),
        RmArch::PromptHeads => MlpWeights::init(nx, cfg.rm_hidden, ny, rng),
    }
}

/// Trains the reward model (Bradley–Terry, full batch, AdamW with `rm_weight_decay`) and returns
/// `r(x, y)` on every cell `[X·Y]` and the loss before each step.
pub(super) fn train_reward_model<B: AutodiffBackend>(
    cfg: &Fig1Config,
    setup: &Setup,
    init: &MlpWeights,
    device: &B::Device,
) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    let inputs = match cfg.rm_arch {
        RmArch::Pair => {
            let mut v = vec![0.0; nx * ny * (nx + ny)];
            for x in 0..nx {
                for y in 0..ny {
                    let row = (x * ny + y) * (nx + ny);
                    v[row + x] = 1.0;
                    v[row + nx + y] = 1.0;
                }
            }
            tensor2::<B>(&v, nx * ny, nx + ny, device)
        }
        RmArch::PromptHeads => {
            let mut v = vec![0.0; nx * nx];
            for x in 0..nx {
                v[x * nx + x] = 1.0;
            }
            tensor2::<B>(&v, nx, nx, device)
        }
    };
    let c: Vec<usize> = setup
        .pairs
        .iter()
        .map(|p| p.prompt * ny + p.chosen)
        .collect();
    let r: Vec<usize> = setup
        .pairs
        .iter()
        .map(|p| p.prompt * ny + p.rejected)
        .collect();
    let sel = selector::<B>(&c, Some(&r), nx * ny, device);
    let mut model = init.to_module::<B>(device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.rm_weight_decay as f32)
        .init::<B, Mlp<B>>();
    let mut curve = Vec::with_capacity(cfg.rm_steps);
    for step in 0..cfg.rm_steps {
        // L_BT = −mean log σ(r(x, y_c) − r(x, y_r)).
        let rewards = model.forward(inputs.clone()).reshape([nx * ny]);
        let loss = log_sigmoid(select(&sel, rewards)).mean().neg();
        let v = scalar(&loss);
        check_loss("reward model", step, v)?;
        curve.push(v);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.rm_lr, model, grads);
    }
    let rewards = read(model.forward(inputs).reshape([nx * ny]))?;
    Ok((rewards.iter().map(|&v| v as f64).collect(), curve))
}

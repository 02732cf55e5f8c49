//! One arm of one seed ([`run_arm`]): SFT (shared by the seed's arms), then the PPO iterations.

use super::*;

/// Seed streams, so that SFT, critic init and rollouts draw independent numbers.
pub(super) const SFT_STREAM: u64 = 0x5F7A_0001;
pub(super) const CRITIC_STREAM: u64 = 0xC217_0002;
pub(super) const ROLLOUT_STREAM: u64 = 0x2011_0003;

pub(super) fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream)
}

/// Noisy demonstrations: `demos_per_prompt` per training prompt, written by a demonstrator that
/// follows the rule from its own previous token (`y_0 = a`, `y_t = (y_{t−1} + d) mod V`) but
/// slips with probability `demo_noise` per token to a uniform random token — a program with
/// occasional bugs whose logic is otherwise right. A demonstration passes with probability
/// `q^L`, `q = 1 − noise + noise/V`. `(prompt id, tokens)`.
pub(super) fn demonstrations(
    cfg: &LadderConfig,
    task: &Task,
    rng: &mut StdRng,
) -> Vec<(usize, Vec<usize>)> {
    let mut out = Vec::new();
    for &p in &task.train {
        let Prompt { start, stride } = task.prompts[p];
        for _ in 0..cfg.demos_per_prompt {
            let mut y: Vec<usize> = Vec::with_capacity(task.length);
            for _ in 0..task.length {
                let rule = y.last().map_or(start, |&prev| (prev + stride) % task.vocab);
                y.push(if rng.random::<f64>() < cfg.demo_noise {
                    rng.random_range(0..task.vocab)
                } else {
                    rule
                });
            }
            out.push((p, y));
        }
    }
    out
}

/// States and one-hot targets of teacher-forced sequences: `(states [N·L], onehot [N·L, V])`.
pub(super) fn teacher_forced(task: &Task, seqs: &[(usize, &[usize])]) -> (Vec<usize>, Vec<f32>) {
    let v = task.vocab;
    let mut states = Vec::with_capacity(seqs.len() * task.length);
    let mut onehot = vec![0f32; seqs.len() * task.length * v];
    for (p, y) in seqs {
        let mut prev = v;
        for (t, &tok) in y.iter().enumerate() {
            onehot[states.len() * v + tok] = 1.0;
            states.push(task.state(*p, t, prev));
            prev = tok;
        }
    }
    (states, onehot)
}

/// Trains the SFT policy of `seed` (fresh seeded init, Adam on the demonstrations'
/// cross-entropy `−mean_t log π(y_t | x, y_{t−1})`).
pub(super) fn train_sft<B: AutodiffBackend>(
    cfg: &LadderConfig,
    task: &Task,
    seed: u64,
    device: &B::Device,
) -> Result<MlpWeights, Error> {
    let mut rng = rng_for(seed, SFT_STREAM);
    let mut policy: Mlp<B> =
        MlpWeights::init(task.features(), cfg.hidden, task.vocab, &mut rng).to_module(device);
    let demos = demonstrations(cfg, task, &mut rng);
    let mut optim = AdamConfig::new().init::<B, Mlp<B>>();
    let (f, v) = (task.features(), task.vocab);
    for step in 0..cfg.sft_steps {
        let batch: Vec<(usize, &[usize])> = (0..cfg.sft_batch)
            .map(|_| {
                let (p, y) = &demos[rng.random_range(0..demos.len())];
                (*p, y.as_slice())
            })
            .collect();
        let (states, onehot) = teacher_forced(task, &batch);
        let n = states.len();
        let x = Tensor::<B, 2>::from_data(TensorData::new(task.inputs(&states), [n, f]), device);
        let oh = Tensor::<B, 2>::from_data(TensorData::new(onehot, [n, v]), device);
        let loss = -token_logprobs(policy.forward(x), oh).mean();
        let value: f64 = loss.clone().into_scalar().elem();
        if !value.is_finite() {
            return Err(Error::Diverged {
                stage: format!("ladder sft (seed {seed})"),
                step,
                loss: value,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &policy);
        policy = optim.step(cfg.sft_lr, policy, grads);
    }
    MlpWeights::from_module(&policy.valid())
}

/// The SFT policy of `seed`: the ladder's starting point and reference, which the
/// `dpo-ppo/ladder/sft/seed-<s>` unit stores for the rungs of its seed. Deterministic: the same
/// settings, seed and backend give the same weights.
pub fn sft_policy<B: AutodiffBackend>(
    cfg: &LadderConfig,
    seed: u64,
    device: &B::Device,
) -> Result<MlpWeights, Error> {
    cfg.validate()?;
    train_sft::<B>(cfg, &Task::new(cfg), seed, device)
}

/// Checks that a stored SFT policy has the widths `cfg` gives (`[I, H]`, `[H]`, `[H, V]`, `[V]`)
/// and finite weights.
pub fn check_sft(cfg: &LadderConfig, sft: &MlpWeights) -> Result<(), Error> {
    let task = Task::new(cfg);
    let (f, h, v) = (task.features(), cfg.hidden, task.vocab);
    let dims = (sft.n_in, sft.hidden, sft.n_out);
    if dims != (f, h, v) {
        return Err(Error::Policy(format!(
            "[I, H, V] = {dims:?}; the settings give {:?}",
            (f, h, v)
        )));
    }
    for (name, w, len) in [
        ("W1", &sft.w1, f * h),
        ("b1", &sft.b1, h),
        ("W2", &sft.w2, h * v),
        ("b2", &sft.b2, v),
    ] {
        if w.len() != len {
            return Err(Error::Policy(format!(
                "{name} has {} values; {len} expected",
                w.len()
            )));
        }
        if w.iter().any(|x| !x.is_finite()) {
            return Err(Error::Policy(format!("{name} holds a non-finite weight")));
        }
    }
    Ok(())
}

/// One rollout batch, `[B, L]` row-major where per token.
pub(super) struct Rollout {
    /// States visited, `[B·L]`.
    states: Vec<usize>,
    /// Tokens taken, `[B·L]`.
    tokens: Vec<usize>,
    /// `log π_old`, `log π_ref`, `V_old`, `[B·L]`.
    pub(super) old_logprobs: Vec<f64>,
    pub(super) ref_logprobs: Vec<f64>,
    values: Vec<f64>,
    /// Checker scores, `[B]`.
    pub(super) scores: Vec<f64>,
}

/// Samples `b` sequences on uniformly drawn training prompts from `policy`'s table, with `rng`.
pub(super) fn rollout(
    task: &Task,
    policy: &StateTable,
    reference: &StateTable,
    values: &[f64],
    b: usize,
    rng: &mut StdRng,
) -> Rollout {
    let (l, v) = (task.length, task.vocab);
    let mut r = Rollout {
        states: Vec::with_capacity(b * l),
        tokens: Vec::with_capacity(b * l),
        old_logprobs: Vec::with_capacity(b * l),
        ref_logprobs: Vec::with_capacity(b * l),
        values: Vec::with_capacity(b * l),
        scores: Vec::with_capacity(b),
    };
    for _ in 0..b {
        let p = task.train[rng.random_range(0..task.train.len())];
        let mut prev = v;
        let mut y = Vec::with_capacity(l);
        for t in 0..l {
            let s = task.state(p, t, prev);
            let row = policy.row(s);
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut tok = v - 1;
            for (i, lp) in row.iter().enumerate() {
                acc += lp.exp();
                if u < acc {
                    tok = i;
                    break;
                }
            }
            r.states.push(s);
            r.tokens.push(tok);
            r.old_logprobs.push(row[tok]);
            r.ref_logprobs.push(reference.row(s)[tok]);
            r.values.push(values[s]);
            y.push(tok);
            prev = tok;
        }
        r.scores.push(if task.passes(task.prompts[p], &y) {
            1.0
        } else {
            0.0
        });
    }
    r
}

pub(super) fn tensor1<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [v.len()]), device)
}

/// Runs one arm on one seed: SFT ([`sft_policy`]), `iterations` PPO iterations, exact pass
/// rates. Deterministic: same config, arm, seed and backend ⇒ bit-identical measurements.
/// Errors: [`LadderConfig::validate`]'s, [`Error::Diverged`] on a non-finite loss, and the
/// f64 references' errors (which a valid config never triggers).
pub fn run_arm<B: AutodiffBackend>(
    cfg: &LadderConfig,
    arm: Arm,
    seed: u64,
    device: &B::Device,
) -> Result<ArmMeasurements, Error> {
    let sft = sft_policy::<B>(cfg, seed, device)?;
    run_arm_from::<B>(cfg, arm, seed, &sft, device)
}

/// [`run_arm`] from a given SFT policy (checked with [`check_sft`]): what a rung's unit runs
/// with its `sft` dependency's artifact.
pub fn run_arm_from<B: AutodiffBackend>(
    cfg: &LadderConfig,
    arm: Arm,
    seed: u64,
    sft: &MlpWeights,
    device: &B::Device,
) -> Result<ArmMeasurements, Error> {
    cfg.validate()?;
    check_sft(cfg, sft)?;
    let task = Task::new(cfg);
    let (f, v, l) = (task.features(), task.vocab, task.length);
    let mut policy: Mlp<B> = sft.to_module(device);
    let mut reference: Mlp<B::InnerBackend> = sft.to_module(device);
    let sft_table = table(&reference, &task, device);
    let mut critic: Mlp<B> =
        MlpWeights::init_scaled(f, cfg.hidden, 1, 0.0, &mut rng_for(seed, CRITIC_STREAM))
            .to_module(device);
    let mut actor_opt = AdamConfig::new().init::<B, Mlp<B>>();
    let mut critic_opt = AdamConfig::new().init::<B, Mlp<B>>();
    let mut rng = rng_for(seed, ROLLOUT_STREAM);
    let (b, mbs) = cfg.batching(arm);
    let mb = b / mbs;
    let shape = Shape::new(b, l)?;
    let mask = vec![1.0; b * l];
    let k = cfg.pass_k;
    let (sft_pass1, sft_pass_k) = sft_table.pass_rates(&task, &task.train, k);
    let (_, sft_heldout_pass_k) = sft_table.pass_rates(&task, &task.eval, k);
    let mut curve = Vec::new();
    let mut actor_steps = 0usize;
    for it in 0..cfg.iterations {
        let pol_table = table(&policy.valid(), &task, device);
        if it % cfg.eval_every == 0 {
            let (pass1, pass_k) = pol_table.pass_rates(&task, &task.train, k);
            curve.push(CurvePoint {
                iteration: it,
                pass1,
                pass_k,
            });
        }
        let ref_table = if arm.ref_ema() {
            table(&reference, &task, device)
        } else {
            sft_table.clone()
        };
        let values = forward_all(&critic.valid(), &task, false, device);
        let ro = rollout(&task, &pol_table, &ref_table, &values, b, &mut rng);
        // Host-side rollout math on the f64 references.
        let rewards = kl_penalised_rewards(
            &ro.old_logprobs,
            &ro.ref_logprobs,
            &ro.scores,
            &mask,
            shape,
            cfg.ppo.kl_coef,
        )?;
        let g = gae(
            &rewards,
            &ro.values,
            &mask,
            shape,
            cfg.ppo.gamma,
            cfg.ppo.lambda,
        )?;
        let adv = if arm.adv_norm() {
            whiten(&g.advantages, &mask, shape)?
        } else {
            g.advantages.clone()
        };
        for _ in 0..cfg.epochs {
            let mut order: Vec<usize> = (0..b).collect();
            for i in (1..b).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for chunk in order.chunks(mb) {
                let idx: Vec<usize> = chunk
                    .iter()
                    .flat_map(|&s| (s * l..(s + 1) * l).collect::<Vec<_>>())
                    .collect();
                let n = idx.len();
                let pick = |a: &[f64]| idx.iter().map(|&i| a[i]).collect::<Vec<f64>>();
                let states: Vec<usize> = idx.iter().map(|&i| ro.states[i]).collect();
                let mut onehot = vec![0f32; n * v];
                for (row, &i) in idx.iter().enumerate() {
                    onehot[row * v + ro.tokens[i]] = 1.0;
                }
                let x = Tensor::<B, 2>::from_data(
                    TensorData::new(task.inputs(&states), [n, f]),
                    device,
                );
                let oh = Tensor::<B, 2>::from_data(TensorData::new(onehot, [n, v]), device);
                let ones = Tensor::<B, 1>::ones([n], device);
                let lp = token_logprobs(policy.forward(x.clone()), oh);
                let pl = policy_loss_tensor(
                    lp,
                    tensor1(&pick(&ro.old_logprobs), device),
                    tensor1(&pick(&adv), device),
                    ones.clone(),
                    cfg.ppo.clip_eps,
                );
                let vals = critic.forward(x).reshape([n]);
                let vl = value_loss_tensor(
                    vals,
                    tensor1(&pick(&ro.values), device),
                    tensor1(&pick(&g.returns), device),
                    ones,
                    cfg.ppo.value_clip_eps,
                );
                let loss = pl + vl;
                let value: f64 = loss.clone().into_scalar().elem();
                if !value.is_finite() {
                    return Err(Error::Diverged {
                        stage: format!("ladder ppo ({}, seed {seed}, iteration {it})", arm.name()),
                        step: actor_steps,
                        loss: value,
                    });
                }
                let mut grads = loss.backward();
                let gp = GradientsParams::from_module(&mut grads, &policy);
                let gv = GradientsParams::from_module(&mut grads, &critic);
                policy = actor_opt.step(cfg.actor_lr, policy, gp);
                critic = critic_opt.step(cfg.critic_lr, critic, gv);
                actor_steps += 1;
                if arm.ref_ema() {
                    reference = reference.ema(&policy.valid(), cfg.ema_eta);
                }
            }
        }
    }
    debug_assert_eq!(actor_steps, cfg.iterations * cfg.epochs * mbs);
    let final_table = table(&policy.valid(), &task, device);
    let (final_pass1, final_pass_k) = final_table.pass_rates(&task, &task.train, k);
    let (_, final_heldout_pass_k) = final_table.pass_rates(&task, &task.eval, k);
    curve.push(CurvePoint {
        iteration: cfg.iterations,
        pass1: final_pass1,
        pass_k: final_pass_k,
    });
    Ok(ArmMeasurements {
        k,
        sft_pass1,
        sft_pass_k,
        sft_heldout_pass_k,
        final_pass1,
        final_pass_k,
        final_heldout_pass_k,
        final_kl_sft: final_table.kl_to(&sft_table, &task, &task.train),
        samples: cfg.iterations * b,
        curve,
    })
}

//! Training one arm ([`run_arm`]): the trainer, the stage-0 checkpoint shared by a seed's arms, evaluation.

use super::*;

/// A training backend: autodiff over a backend with the fused cross-entropy, whose inner
/// backend has it too (for evaluation).
pub trait TrainBackend: AutodiffBackend + TokenLogprobBackend
where
    Self::InnerBackend: TokenLogprobBackend,
{
}

impl<B> TrainBackend for B
where
    B: AutodiffBackend + TokenLogprobBackend,
    B::InnerBackend: TokenLogprobBackend,
{
}

/// Mean held-out loss of `model` on `corpus`, in batches of `batch` sequences, without autodiff.
pub fn eval_loss<B: TokenLogprobBackend>(
    model: &TinyLm<B>,
    corpus: &Corpus,
    batch: usize,
    device: &B::Device,
) -> f64 {
    let (n, len) = (corpus.n(), corpus.len());
    let mut total = 0.0;
    let mut i = 0;
    while i < n {
        let b = batch.min(n - i);
        let ids = corpus.tokens()[i * len..(i + b) * len].to_vec();
        let seqs = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), device);
        let loss: f64 = lm_loss(model, seqs).into_scalar().elem();
        total += loss * b as f64;
        i += b;
    }
    total / n as f64
}

/// The state carried between the stages of an arm.
pub(super) struct Trainer<'a, B: TrainBackend>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg: &'a ExperimentConfig,
    device: &'a B::Device,
    d0_eval: &'a Corpus,
    d1_eval: &'a Corpus,
    /// A second D1 evaluated beside `d1_eval` (stage 0 serves both shifts), and its losses.
    d1_alt: Option<&'a Corpus>,
    alt_losses: Vec<f64>,
    /// AdamW and its moments, carried into the next stage unless `reset_optimizer`.
    optim: Option<OptimizerAdaptor<AdamW, TinyLm<B>, B>>,
    curve: Vec<EvalPoint>,
    step: usize,
    arm: String,
}

impl<B: TrainBackend> Trainer<'_, B>
where
    B::InnerBackend: TokenLogprobBackend,
{
    fn eval(&mut self, model: &TinyLm<B>, lr: f64, train_loss: f64) {
        let valid = model.valid();
        let inner = self.device;
        let d0 = eval_loss::<B::InnerBackend>(&valid, self.d0_eval, 64, inner);
        let d1 = eval_loss::<B::InnerBackend>(&valid, self.d1_eval, 64, inner);
        if let Some(alt) = self.d1_alt {
            let v = eval_loss::<B::InnerBackend>(&valid, alt, 64, inner);
            self.alt_losses.push(v);
        }
        self.curve.push(EvalPoint {
            step: self.step,
            lr,
            train_loss,
            d0_loss: d0,
            d1_loss: d1,
        });
    }

    /// Trains one stage: every step draws a batch through the replay mixer (old = `old`, new =
    /// `new`), takes the stage's learning rate and one AdamW step. Evaluates every
    /// `eval_every` steps, and 4× as often over the first quarter of a stage that starts from a
    /// trained model (`dense`), where the re-warming transient is.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        mut model: TinyLm<B>,
        stage: &StageConfig,
        new: &Corpus,
        old: &Corpus,
        mix_seed: u64,
        dense: bool,
        tick: &mut dyn FnMut(),
    ) -> Result<TinyLm<B>, TrainError> {
        let every = self.cfg.eval_every;
        let dense_every = (every / 4).max(1);
        // A new stage resets AdamW's moments (the paper's recipe) unless configured otherwise.
        let mut optim = match self.optim.take() {
            Some(o) if !self.cfg.reset_optimizer => o,
            _ => AdamWConfig::new()
                .with_weight_decay(self.cfg.weight_decay as f32)
                .init::<B, TinyLm<B>>(),
        };
        let mut mixer = ReplayMixer::new(stage.replay_share, mix_seed)?;
        let len = new.len();
        let b = self.cfg.batch;
        let (mut acc, mut count) = (0.0, 0usize);
        for i in 0..stage.steps {
            let picks = mixer.draw_indices(old.n(), new.n(), b)?;
            let mut ids = Vec::with_capacity(b * len);
            for p in picks {
                ids.extend_from_slice(match p {
                    Source::Old(j) => old.seq(j),
                    Source::New(j) => new.seq(j),
                });
            }
            let seqs = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), self.device);
            let loss = lm_loss(&model, seqs);
            let value: f64 = loss.clone().into_scalar().elem();
            self.step += 1;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    arm: self.arm.clone(),
                    step: self.step,
                    loss: value,
                });
            }
            acc += value;
            count += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = stage.schedule.lr(i);
            model = optim.step(lr, model, grads);
            let early = dense && i < stage.steps / 4 && (i + 1).is_multiple_of(dense_every);
            if self.step.is_multiple_of(every) || early || i + 1 == stage.steps {
                self.eval(&model, lr, acc / count as f64);
                (acc, count) = (0.0, 0);
                tick();
            }
        }
        self.optim = Some(optim);
        Ok(model)
    }
}

/// The D0-pretrained checkpoint of one seed, and the curve that led to it.
#[derive(Clone)]
pub(super) struct Checkpoint {
    bytes: Vec<u8>,
    /// Stage-0 evaluations with the weak-shift D1 in `d1_loss`.
    weak: Vec<EvalPoint>,
    /// The same with the strong-shift D1.
    strong: Vec<EvalPoint>,
}

impl Checkpoint {
    /// The stage-0 curve as `arm` reports it (same data: D1 is D0).
    fn curve(&self, arm: &Arm) -> Vec<EvalPoint> {
        match arm.shift() {
            Some(Shift::Weak) => self.weak.clone(),
            Some(Shift::Strong) => self.strong.clone(),
            None => self
                .weak
                .iter()
                .map(|p| EvalPoint {
                    d1_loss: p.d0_loss,
                    ..*p
                })
                .collect(),
        }
    }
}

/// Stage-0 checkpoints shared by the arms of a process, keyed by seed, backend and config.
pub(super) fn checkpoints() -> &'static Mutex<HashMap<String, Checkpoint>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Checkpoint>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(super) type Rec = BinBytesRecorder<FullPrecisionSettings>;

/// A fresh model for `seed`, identical on every backend: burn's initialisers run on `flex`
/// (seeded, under a lock so that concurrent callers cannot interleave with flex's one global
/// seeded RNG; recording the model forces burn's lazy initialisers inside the lock), and the
/// weights are loaded into `B`. Nothing else in a process may draw from flex's RNG.
pub fn init_model<B: Backend>(cfg: &ExperimentConfig, seed: u64, device: &B::Device) -> TinyLm<B> {
    static INIT: Mutex<()> = Mutex::new(());
    // The whole function holds the lock: building the `B` model to load into also draws from
    // flex's RNG when `B` is flex (its values are then replaced by the record).
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let host = Default::default();
    Flex::seed(&host, seed ^ 0x5eed);
    let bytes = Rec::default()
        .record(cfg.model.init::<Flex>(&host).into_record(), ())
        .expect("recording an in-memory model cannot fail");
    let record = Rec::default()
        .load(bytes, device)
        .expect("a record just written loads");
    cfg.model.init::<B>(device).load_record(record)
}

/// Trains `arm` on `seed` (see the module docs) on backend `B`. `tick` is called at every
/// logged evaluation. The stage-0 checkpoint is computed once per process per seed and reused
/// by the arms that start from it (training is deterministic, so a resumed run recomputes the
/// same one).
pub fn run_arm<B: TrainBackend>(
    cfg: &ExperimentConfig,
    arm: &Arm,
    seed: u64,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<ArmResult, TrainError>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let run = cfg.run_config(arm)?;
    let data = Datasets::generate(cfg, seed)?;
    let (d0_train, d0_eval) = &data.d0;
    let (d1_train, d1_eval) = match arm.shift() {
        Some(shift) => data.d1(shift),
        None => &data.d0,
    };
    let mut t = Trainer::<B> {
        cfg,
        device,
        d0_eval,
        d1_eval,
        d1_alt: None,
        alt_losses: Vec::new(),
        optim: None,
        curve: Vec::new(),
        step: 0,
        arm: arm.name(),
    };
    let s = cfg.stage_steps;
    let mix_seed = |stage: u64| seed.wrapping_mul(1_000_003) ^ (stage << 32);
    let model = init_model::<B>(cfg, seed, device);
    let trained = match arm {
        Arm::Union { .. } => {
            t.eval(&model, 0.0, f64::NAN);
            t.stage(
                model,
                &run.stages[0],
                d1_train,
                d0_train,
                mix_seed(0),
                false,
                tick,
            )?
        }
        // Without the reset, stage 1 continues stage 0's optimizer state, which the shared
        // checkpoint does not hold: such arms train their own stage 0.
        _ if matches!(arm, Arm::Infinite { .. }) || !cfg.reset_optimizer => {
            t.eval(&model, 0.0, f64::NAN);
            let m = t.stage(
                model,
                &run.stages[0],
                d0_train,
                d0_train,
                mix_seed(0),
                false,
                tick,
            )?;
            t.stage(
                m,
                &run.stages[1],
                d1_train,
                d0_train,
                mix_seed(1),
                true,
                tick,
            )?
        }
        _ => {
            let key = format!(
                "{seed}/{}/{}",
                std::any::type_name::<B>(),
                serde_json::to_string(cfg).unwrap_or_default()
            );
            let cached = checkpoints()
                .lock()
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?
                .get(&key)
                .cloned();
            let ck = match cached {
                Some(ck) => ck,
                None => {
                    // Stage 0 on D0 alone, evaluated on both shifts' D1 so that every arm
                    // can reuse it.
                    t.d1_eval = &data.weak.1;
                    t.d1_alt = Some(&data.strong.1);
                    t.eval(&model, 0.0, f64::NAN);
                    let m = t.stage(
                        model,
                        &run.stages[0],
                        d0_train,
                        d0_train,
                        mix_seed(0),
                        false,
                        tick,
                    )?;
                    let bytes = Rec::default()
                        .record(m.into_record(), ())
                        .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
                    let strong = t
                        .curve
                        .iter()
                        .zip(&t.alt_losses)
                        .map(|(p, &d1)| EvalPoint { d1_loss: d1, ..*p })
                        .collect();
                    let ck = Checkpoint {
                        bytes,
                        weak: std::mem::take(&mut t.curve),
                        strong,
                    };
                    checkpoints()
                        .lock()
                        .map_err(|e| TrainError::Checkpoint(e.to_string()))?
                        .insert(key, ck.clone());
                    t.d1_eval = d1_eval;
                    t.d1_alt = None;
                    ck
                }
            };
            t.curve = ck.curve(arm);
            t.step = s;
            let record = Rec::default()
                .load(ck.bytes, device)
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
            let pre = init_model::<B>(cfg, seed, device).load_record(record);
            t.stage(
                pre,
                &run.stages[1],
                d1_train,
                d0_train,
                mix_seed(1),
                true,
                tick,
            )?
        }
    };
    drop(trained);
    let curve = t.curve;
    let boundary = s;
    let at = |step: usize| {
        curve
            .iter()
            .find(|p| p.step == step)
            .copied()
            .unwrap_or(curve[curve.len() - 1])
    };
    let b = at(boundary);
    let last = curve[curve.len() - 1];
    let peak_d0 = curve
        .iter()
        .filter(|p| p.step > boundary)
        .map(|p| p.d0_loss)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(ArmResult {
        arm: *arm,
        seed,
        curve,
        boundary,
        pre: (b.d0_loss, b.d1_loss),
        last: (last.d0_loss, last.d1_loss),
        peak_d0,
        floor: (d0_eval.floor, d1_eval.floor),
    })
}

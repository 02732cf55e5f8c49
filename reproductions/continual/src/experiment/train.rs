//! Training one arm ([`run_arm`], [`run_arm_from`]): the trainer, the stage-0 checkpoint a
//! seed's arms start from ([`pretrain`], [`Checkpoint`]), evaluation.

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

/// The D0-pretrained checkpoint of one seed (stage 0 on D0 alone, evaluated on both shifts'
/// D1), and the curve that led to it: what the `continual/stage0/seed-<s>` unit stores as
/// artifacts ([`Checkpoint::MODEL`], [`Checkpoint::CURVES`]) and the arms that start from it read.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The model's record (burn's `BinBytesRecorder`, full precision).
    bytes: Vec<u8>,
    /// Stage-0 evaluations with the weak-shift D1 in `d1_loss`.
    weak: Vec<EvalPoint>,
    /// The same with the strong-shift D1.
    strong: Vec<EvalPoint>,
}

/// The curves of a [`Checkpoint`] as stored: each point `[step, lr, train_loss, d0_loss,
/// d1_loss]` with the floats as their IEEE-754 bits, so that they come back exactly (and the NaN
/// train loss before the first step survives, which JSON numbers cannot carry).
#[derive(Serialize, Deserialize)]
struct Curves {
    weak: Vec<[u64; 5]>,
    strong: Vec<[u64; 5]>,
}

fn point_bits(p: &EvalPoint) -> [u64; 5] {
    [
        p.step as u64,
        p.lr.to_bits(),
        p.train_loss.to_bits(),
        p.d0_loss.to_bits(),
        p.d1_loss.to_bits(),
    ]
}

fn point_of_bits([step, lr, train, d0, d1]: [u64; 5]) -> EvalPoint {
    EvalPoint {
        step: step as usize,
        lr: f64::from_bits(lr),
        train_loss: f64::from_bits(train),
        d0_loss: f64::from_bits(d0),
        d1_loss: f64::from_bits(d1),
    }
}

/// Equal when bit for bit equal (a NaN train loss equals itself).
impl PartialEq for Checkpoint {
    fn eq(&self, other: &Self) -> bool {
        let bits = |c: &Checkpoint| {
            (
                c.weak.iter().map(point_bits).collect::<Vec<_>>(),
                c.strong.iter().map(point_bits).collect::<Vec<_>>(),
            )
        };
        self.bytes == other.bytes && bits(self) == bits(other)
    }
}

impl Checkpoint {
    /// Artifact name of the model record.
    pub const MODEL: &'static str = "model.bin";
    /// Artifact name of the stage-0 curves (JSON).
    pub const CURVES: &'static str = "curves.json";

    /// `(name, bytes)` of the artifacts that store it.
    pub fn to_artifacts(&self) -> Vec<(&'static str, Vec<u8>)> {
        let curves = Curves {
            weak: self.weak.iter().map(point_bits).collect(),
            strong: self.strong.iter().map(point_bits).collect(),
        };
        vec![
            (Self::MODEL, self.bytes.clone()),
            (
                Self::CURVES,
                serde_json::to_vec(&curves).expect("curves serialise"),
            ),
        ]
    }

    /// The checkpoint stored as [`Self::to_artifacts`]. The model record is checked when an arm
    /// loads it; the curves must parse and agree in length.
    pub fn from_artifacts(model: Vec<u8>, curves: &[u8]) -> Result<Self, TrainError> {
        let c: Curves = serde_json::from_slice(curves)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", Self::CURVES)))?;
        if c.weak.len() != c.strong.len() || c.weak.is_empty() {
            return Err(TrainError::Checkpoint(format!(
                "{}: {} weak and {} strong evaluations",
                Self::CURVES,
                c.weak.len(),
                c.strong.len()
            )));
        }
        Ok(Checkpoint {
            bytes: model,
            weak: c.weak.into_iter().map(point_of_bits).collect(),
            strong: c.strong.into_iter().map(point_of_bits).collect(),
        })
    }

    /// The stage-0 model of `seed` under `cfg` on `device` (the record loaded into
    /// [`init_model`]'s architecture): what another paper adapts (DoRA on real text).
    pub fn model<B: Backend>(
        &self,
        cfg: &ExperimentConfig,
        seed: u64,
        device: &B::Device,
    ) -> Result<TinyLm<B>, TrainError> {
        let record = Rec::default()
            .load(self.bytes.clone(), device)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        Ok(init_model::<B>(cfg, seed, device).load_record(record))
    }

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

/// Whether `arm` starts from its seed's shared stage-0 [`Checkpoint`] under `cfg`. Without the
/// optimizer reset, stage 1 continues stage 0's optimizer state, which the checkpoint does not
/// hold, so such arms (and the union and infinite arms, whose stage 0 differs) train their own.
pub fn uses_checkpoint(cfg: &ExperimentConfig, arm: &Arm) -> bool {
    cfg.reset_optimizer && !matches!(arm, Arm::Union { .. } | Arm::Infinite { .. })
}

/// Trains stage 0 of `seed` on D0 alone, evaluated on both shifts' D1 so that every arm can
/// start from it: the `continual/stage0/seed-<s>` unit. Deterministic: the same settings, seed
/// and backend give the same weights and curves (the record's parameter ids differ).
pub fn pretrain<B: TrainBackend>(
    cfg: &ExperimentConfig,
    seed: u64,
    env: &DataEnv,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<Checkpoint, TrainError>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let arm = Arm::Replay {
        shift: Shift::Weak,
        share: 0.0,
    };
    let run = cfg.run_config(&arm)?;
    let data = Datasets::load(cfg, seed, env)?;
    let (d0_train, d0_eval) = &data.d0;
    let mut t = Trainer::<B> {
        cfg,
        device,
        d0_eval,
        d1_eval: &data.weak.1,
        d1_alt: Some(&data.strong.1),
        alt_losses: Vec::new(),
        optim: None,
        curve: Vec::new(),
        step: 0,
        arm: "stage0".into(),
    };
    let model = init_model::<B>(cfg, seed, device);
    t.eval(&model, 0.0, f64::NAN);
    let m = t.stage(
        model,
        &run.stages[0],
        d0_train,
        d0_train,
        mix_seed(seed, 0),
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
    Ok(Checkpoint {
        bytes,
        weak: t.curve,
        strong,
    })
}

/// The replay mixer's seed of `stage` on `seed`.
fn mix_seed(seed: u64, stage: u64) -> u64 {
    seed.wrapping_mul(1_000_003) ^ (stage << 32)
}

/// Trains `arm` on `seed` (see the module docs) on backend `B`, computing the stage-0
/// checkpoint first when the arm starts from one ([`uses_checkpoint`]). `tick` is called at
/// every logged evaluation.
pub fn run_arm<B: TrainBackend>(
    cfg: &ExperimentConfig,
    arm: &Arm,
    seed: u64,
    env: &DataEnv,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<ArmResult, TrainError>
where
    B::InnerBackend: TokenLogprobBackend,
{
    let checkpoint = match uses_checkpoint(cfg, arm) {
        true => Some(pretrain::<B>(cfg, seed, env, device, tick)?),
        false => None,
    };
    run_arm_from::<B>(cfg, arm, seed, checkpoint.as_ref(), env, device, tick)
}

/// [`run_arm`] from a given stage-0 checkpoint (required when the arm [`uses_checkpoint`],
/// ignored otherwise): what an arm unit runs with its `stage0` dependency's artifacts.
pub fn run_arm_from<B: TrainBackend>(
    cfg: &ExperimentConfig,
    arm: &Arm,
    seed: u64,
    checkpoint: Option<&Checkpoint>,
    env: &DataEnv,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<ArmResult, TrainError>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let run = cfg.run_config(arm)?;
    let data = Datasets::load(cfg, seed, env)?;
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
    let trained = if uses_checkpoint(cfg, arm) {
        let ck = checkpoint.ok_or_else(|| {
            TrainError::Checkpoint(format!(
                "arm {} starts from a stage-0 checkpoint and got none",
                arm.name()
            ))
        })?;
        t.curve = ck.curve(arm);
        t.step = s;
        let pre = ck.model::<B>(cfg, seed, device)?;
        t.stage(
            pre,
            &run.stages[1],
            d1_train,
            d0_train,
            mix_seed(seed, 1),
            true,
            tick,
        )?
    } else {
        let model = init_model::<B>(cfg, seed, device);
        t.eval(&model, 0.0, f64::NAN);
        match arm {
            Arm::Union { .. } => t.stage(
                model,
                &run.stages[0],
                d1_train,
                d0_train,
                mix_seed(seed, 0),
                false,
                tick,
            )?,
            _ => {
                let m = t.stage(
                    model,
                    &run.stages[0],
                    d0_train,
                    d0_train,
                    mix_seed(seed, 0),
                    false,
                    tick,
                )?;
                t.stage(
                    m,
                    &run.stages[1],
                    d1_train,
                    d0_train,
                    mix_seed(seed, 1),
                    true,
                    tick,
                )?
            }
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
    })
}

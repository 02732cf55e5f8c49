//! The verifiable task: prompts, the rule, the checker ([`Task`]).

use super::*;

/// A prompt: start token `a` and stride `d ≥ 1`. Its one program is `y_t = (a + t·d) mod V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Start token `a ∈ 0..V`.
    pub start: usize,
    /// Stride `d ∈ 1..=S`.
    pub stride: usize,
}

/// The prompts, their train/evaluation split and the checker.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// `V`.
    pub vocab: usize,
    /// `S`.
    pub strides: usize,
    /// `L`.
    pub length: usize,
    /// Every prompt, id `a·S + (d − 1)`.
    pub prompts: Vec<Prompt>,
    /// Ids of the training prompts (SFT demonstrations and PPO rollouts).
    pub train: Vec<usize>,
    /// Ids of the evaluation prompts (`(a + d) mod holdout_mod = 0`).
    pub eval: Vec<usize>,
}

impl Task {
    /// The task of `cfg` (not validated: call [`LadderConfig::validate`] first).
    pub fn new(cfg: &LadderConfig) -> Self {
        let mut prompts = Vec::new();
        let (mut train, mut eval) = (Vec::new(), Vec::new());
        for start in 0..cfg.vocab {
            for stride in 1..=cfg.strides {
                let id = prompts.len();
                prompts.push(Prompt { start, stride });
                if (start + stride).is_multiple_of(cfg.holdout_mod.max(1)) {
                    eval.push(id);
                } else {
                    train.push(id);
                }
            }
        }
        Task {
            vocab: cfg.vocab,
            strides: cfg.strides,
            length: cfg.length,
            prompts,
            train,
            eval,
        }
    }

    /// The one passing output of `prompt`: `y_t = (a + t·d) mod V`, `t = 0..L`.
    pub fn solution(&self, prompt: Prompt) -> Vec<usize> {
        (0..self.length)
            .map(|t| (prompt.start + t * prompt.stride) % self.vocab)
            .collect()
    }

    /// The "unit test": `y` has `L` tokens, `y_0 = a` and `y_t = (y_{t−1} + d) mod V` for
    /// `t ≥ 1`. Score 1 if it passes, else 0.
    pub fn passes(&self, prompt: Prompt, y: &[usize]) -> bool {
        y.len() == self.length
            && y.first() == Some(&prompt.start)
            && y.windows(2)
                .all(|w| w[1] == (w[0] + prompt.stride) % self.vocab)
    }

    /// Input features `2V + S + L + 1`.
    pub fn features(&self) -> usize {
        2 * self.vocab + self.strides + self.length + 1
    }

    /// States per prompt: `L` positions × `V + 1` previous tokens (BOS = `V`).
    fn states_per_prompt(&self) -> usize {
        self.length * (self.vocab + 1)
    }

    /// Number of states `P · L · (V + 1)`.
    pub fn states(&self) -> usize {
        self.prompts.len() * self.states_per_prompt()
    }

    /// State id of `(prompt id, t, prev)` with `prev ∈ 0..=V` (`V` = BOS).
    pub fn state(&self, prompt: usize, t: usize, prev: usize) -> usize {
        (prompt * self.length + t) * (self.vocab + 1) + prev
    }

    /// The four hot features of a state: `a`, `V + d − 1`, `V + S + t`, `V + S + L + prev`.
    fn hot(&self, state: usize) -> [usize; 4] {
        let prev = state % (self.vocab + 1);
        let t = (state / (self.vocab + 1)) % self.length;
        let p = self.prompts[state / self.states_per_prompt()];
        let (v, s, l) = (self.vocab, self.strides, self.length);
        [p.start, v + p.stride - 1, v + s + t, v + s + l + prev]
    }

    /// Row-major `[states.len(), features]` one-hot inputs of `states`.
    pub(super) fn inputs(&self, states: &[usize]) -> Vec<f32> {
        let f = self.features();
        let mut x = vec![0f32; states.len() * f];
        for (row, &s) in states.iter().enumerate() {
            for h in self.hot(s) {
                x[row * f + h] = 1.0;
            }
        }
        x
    }
}

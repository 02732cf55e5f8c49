//! The small MLP both experiments train (policies, reward models, critics), and its weights on the
//! host, so that models are initialised from a seeded host RNG (never burn's global one), copied
//! ("a policy initialised from π_ref"), cached and reloaded bit for bit.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A one-hidden-layer ReLU MLP `y = relu(x W1 + b1) W2 + b2`: `x [N, I] → y [N, O]`,
/// `W1 [I, H]`, `b1 [H]`, `W2 [H, O]`, `b2 [O]`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> Mlp<B> {
    /// `x [N, I] → [N, O]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = relu(x.matmul(self.w1.val()) + self.b1.val().unsqueeze_dim(0));
        h.matmul(self.w2.val()) + self.b2.val().unsqueeze_dim(0)
    }

    /// The reference EMA (paper Sec. 5, "reference EMA"): every weight
    /// `θ_ref ← (1 − η) θ_ref + η θ_actor`.
    pub fn ema(self, actor: &Mlp<B>, eta: f64) -> Self {
        let mix2 = |r: Param<Tensor<B, 2>>, a: &Param<Tensor<B, 2>>| {
            let a = a.val();
            r.map(|r| r.mul_scalar(1.0 - eta) + a.mul_scalar(eta))
        };
        let mix1 = |r: Param<Tensor<B, 1>>, a: &Param<Tensor<B, 1>>| {
            let a = a.val();
            r.map(|r| r.mul_scalar(1.0 - eta) + a.mul_scalar(eta))
        };
        Mlp {
            w1: mix2(self.w1, &actor.w1),
            b1: mix1(self.b1, &actor.b1),
            w2: mix2(self.w2, &actor.w2),
            b2: mix1(self.b2, &actor.b2),
        }
    }
}

/// An [`Mlp`]'s weights on the host, row-major f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpWeights {
    /// Input width `I`.
    pub n_in: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Output width `O`.
    pub n_out: usize,
    /// `W1 [I, H]`.
    pub w1: Vec<f32>,
    /// `b1 [H]`.
    pub b1: Vec<f32>,
    /// `W2 [H, O]`.
    pub w2: Vec<f32>,
    /// `b2 [O]`.
    pub b2: Vec<f32>,
}

impl MlpWeights {
    /// PyTorch's `Linear` rule: every weight and bias of a layer with fan-in `f` from
    /// `U(−1/√f, 1/√f)`, drawn from `rng`.
    pub fn init(n_in: usize, hidden: usize, n_out: usize, rng: &mut StdRng) -> Self {
        Self::init_scaled(n_in, hidden, n_out, 1.0, rng)
    }

    /// As [`MlpWeights::init`] with the output layer's range scaled by `out_scale` (0 gives a
    /// zero output layer, e.g. a critic that starts at `V = 0`).
    pub fn init_scaled(
        n_in: usize,
        hidden: usize,
        n_out: usize,
        out_scale: f64,
        rng: &mut StdRng,
    ) -> Self {
        let mut draw = |n: usize, bound: f64| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.random_range(-1.0..1.0) * bound) as f32)
                .collect()
        };
        let (a1, a2) = (
            1.0 / (n_in as f64).sqrt(),
            out_scale / (hidden as f64).sqrt(),
        );
        let w1 = draw(n_in * hidden, a1);
        let b1 = draw(hidden, a1);
        let w2 = draw(hidden * n_out, a2);
        let b2 = draw(n_out, a2);
        MlpWeights {
            n_in,
            hidden,
            n_out,
            w1,
            b1,
            w2,
            b2,
        }
    }

    /// The module on `device`, every tensor a fresh parameter requiring gradients.
    pub fn to_module<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        let m2 = |v: &[f32], r: usize, c: usize| {
            Param::from_tensor(Tensor::<B, 2>::from_data(
                TensorData::new(v.to_vec(), [r, c]),
                device,
            ))
        };
        let m1 = |v: &[f32]| {
            Param::from_tensor(Tensor::<B, 1>::from_data(
                TensorData::new(v.to_vec(), [v.len()]),
                device,
            ))
        };
        Mlp {
            w1: m2(&self.w1, self.n_in, self.hidden),
            b1: m1(&self.b1),
            w2: m2(&self.w2, self.hidden, self.n_out),
            b2: m1(&self.b2),
        }
    }

    /// Reads a module's weights back.
    pub fn from_module<B: Backend>(m: &Mlp<B>) -> Result<Self, Error> {
        let [n_in, hidden] = m.w1.val().dims();
        let n_out = m.w2.val().dims()[1];
        Ok(MlpWeights {
            n_in,
            hidden,
            n_out,
            w1: read(m.w1.val())?,
            b1: read(m.b1.val())?,
            w2: read(m.w2.val())?,
            b2: read(m.b2.val())?,
        })
    }
}

/// A tensor's values on the host, row-major.
pub(crate) fn read<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, Error> {
    t.into_data()
        .to_vec::<f32>()
        .map_err(|e| Error::ReadBack(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use rand::SeedableRng;

    /// Weights survive the trip to a module and back bit for bit; the EMA mixes every weight.
    #[test]
    fn weights_round_trip_and_ema_mixes() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = MlpWeights::init(5, 4, 3, &mut rng);
        let b = MlpWeights::init_scaled(5, 4, 3, 0.0, &mut rng);
        assert!(b.w2.iter().chain(&b.b2).all(|&v| v == 0.0));
        let dev = Default::default();
        assert_eq!(
            MlpWeights::from_module(&a.to_module::<Flex>(&dev)).unwrap(),
            a
        );
        let mixed = b
            .to_module::<Flex>(&dev)
            .ema(&a.to_module::<Flex>(&dev), 0.25);
        let m = MlpWeights::from_module(&mixed).unwrap();
        for (got, (x, y)) in m.w1.iter().zip(b.w1.iter().zip(&a.w1)) {
            assert!((got - (0.75 * x + 0.25 * y)).abs() < 1e-6);
        }
        let x = Tensor::<Flex, 2>::ones([2, 5], &dev);
        assert_eq!(a.to_module::<Flex>(&dev).forward(x).dims(), [2, 3]);
    }
}

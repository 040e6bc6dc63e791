//! The demo's models: multinomial logistic regression and a one-hidden-
//! layer MLP (ReLU), trained locally by mini-batch SGD on cross-entropy.
//! Parameters are one flat f32 vector in layout order.

use crate::data::{Dataset, SplitMix};

/// Which model the demo trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// Softmax regression: weights `[features x classes]`, bias `[classes]`.
    Logistic,
    /// One hidden ReLU layer of `hidden` units.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
}

/// A model of a given shape.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    kind: ModelKind,
    dim: usize,
    classes: usize,
}

/// Local training settings.
#[derive(Clone, Copy, Debug)]
pub struct Training {
    /// Passes over the local data per round.
    pub epochs: usize,
    /// Step size.
    pub learning_rate: f32,
    /// Mini-batch size.
    pub batch: usize,
}

impl Model {
    /// A model for `dim` features and `classes` classes.
    pub fn new(kind: ModelKind, dim: usize, classes: usize) -> Self {
        Self { kind, dim, classes }
    }

    /// The tensors, in order: name and shape.
    pub fn layout(&self) -> Vec<(String, Vec<u64>)> {
        let (d, k) = (self.dim as u64, self.classes as u64);
        match self.kind {
            ModelKind::Logistic => vec![("weights".into(), vec![d, k]), ("bias".into(), vec![k])],
            ModelKind::Mlp { hidden } => {
                let h = hidden as u64;
                vec![
                    ("hidden.weights".into(), vec![d, h]),
                    ("hidden.bias".into(), vec![h]),
                    ("output.weights".into(), vec![h, k]),
                    ("output.bias".into(), vec![k]),
                ]
            }
        }
    }

    /// Number of parameters.
    pub fn size(&self) -> usize {
        match self.kind {
            ModelKind::Logistic => self.dim * self.classes + self.classes,
            ModelKind::Mlp { hidden } => {
                self.dim * hidden + hidden + hidden * self.classes + self.classes
            }
        }
    }

    /// Initial parameters: zeros for logistic regression, scaled uniform
    /// (He) weights for the MLP.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "weights are f32; the scale is computed in f64"
    )]
    pub fn init(&self, rng: &mut SplitMix) -> Vec<f32> {
        let mut params = vec![0f32; self.size()];
        if let ModelKind::Mlp { hidden } = self.kind {
            let w1 = self.dim * hidden;
            let scale1 = (6.0 / self.dim as f64).sqrt();
            let scale2 = (6.0 / hidden as f64).sqrt();
            let b1_end = w1 + hidden;
            for (i, p) in params.iter_mut().enumerate() {
                let scale = if i < w1 {
                    scale1
                } else if i >= b1_end && i < b1_end + hidden * self.classes {
                    scale2
                } else {
                    continue;
                };
                *p = ((rng.unit() * 2.0 - 1.0) * scale * 0.5) as f32;
            }
        }
        params
    }

    /// Class probabilities for one row (and the hidden activations).
    fn forward(&self, params: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (hidden, first) = match self.kind {
            ModelKind::Logistic => (x.to_vec(), 0),
            ModelKind::Mlp { hidden } => {
                let (w1, rest) = params.split_at(self.dim * hidden);
                let b1 = rest.get(..hidden).unwrap_or(&[]);
                let mut h = b1.to_vec();
                for (xi, row) in x.iter().zip(w1.chunks_exact(hidden)) {
                    for (hj, w) in h.iter_mut().zip(row) {
                        *hj += xi * w;
                    }
                }
                h.iter_mut().for_each(|v| *v = v.max(0.0));
                (h, self.dim * hidden + hidden)
            }
        };
        let inputs = hidden.len();
        let out = params.get(first..).unwrap_or(&[]);
        let (w, b) = out.split_at((inputs * self.classes).min(out.len()));
        let mut z = b.to_vec();
        for (hi, row) in hidden.iter().zip(w.chunks_exact(self.classes)) {
            for (zk, wk) in z.iter_mut().zip(row) {
                *zk += hi * wk;
            }
        }
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        z.iter_mut().for_each(|v| *v = (*v - max).exp());
        let sum: f32 = z.iter().sum();
        z.iter_mut().for_each(|v| *v /= sum);
        (z, hidden)
    }

    /// Adds the cross-entropy gradient of one row to `grad`.
    fn backward(&self, params: &[f32], x: &[f32], label: usize, grad: &mut [f32]) {
        let (mut dz, hidden) = self.forward(params, x);
        if let Some(p) = dz.get_mut(label) {
            *p -= 1.0;
        }
        let inputs = hidden.len();
        let first = match self.kind {
            ModelKind::Logistic => 0,
            ModelKind::Mlp { hidden } => self.dim * hidden + hidden,
        };
        let k = self.classes;
        // Output layer.
        let g_out = grad.get_mut(first..).unwrap_or(&mut []);
        let (gw, gb) = g_out.split_at_mut((inputs * k).min(g_out.len()));
        for (hi, row) in hidden.iter().zip(gw.chunks_exact_mut(k)) {
            for (g, d) in row.iter_mut().zip(&dz) {
                *g += hi * d;
            }
        }
        for (g, d) in gb.iter_mut().zip(&dz) {
            *g += d;
        }
        // Hidden layer.
        if let ModelKind::Mlp { hidden: units } = self.kind {
            let w2 = params.get(first..first + units * k).unwrap_or(&[]);
            let dh: Vec<f32> = w2
                .chunks_exact(k)
                .zip(&hidden)
                .map(|(row, h)| {
                    if *h > 0.0 {
                        row.iter().zip(&dz).map(|(w, d)| w * d).sum()
                    } else {
                        0.0
                    }
                })
                .collect();
            let (gw1, rest) = grad.split_at_mut(self.dim * units);
            for (xi, row) in x.iter().zip(gw1.chunks_exact_mut(units)) {
                for (g, d) in row.iter_mut().zip(&dh) {
                    *g += xi * d;
                }
            }
            for (g, d) in rest.iter_mut().zip(&dh) {
                *g += d;
            }
        }
    }

    /// The cross-entropy gradient of one record (`x`, `label`) at `params`,
    /// written into `out` (one value per parameter).
    pub fn record_gradient(&self, params: &[f32], x: &[f32], label: usize, out: &mut [f32]) {
        out.iter_mut().for_each(|g| *g = 0.0);
        self.backward(params, x, label, out);
    }

    /// Trains from `params` on `data` and returns the new parameters.
    pub fn train(
        &self,
        params: &[f32],
        data: &Dataset,
        training: Training,
        rng: &mut SplitMix,
    ) -> Vec<f32> {
        let mut params = params.to_vec();
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut grad = vec![0f32; params.len()];
        for _ in 0..training.epochs {
            rng.shuffle(&mut order);
            for batch in order.chunks(training.batch.max(1)) {
                grad.iter_mut().for_each(|g| *g = 0.0);
                for &row in batch {
                    if let (Some(x), Some(&y)) = (data.features.get(row), data.labels.get(row)) {
                        self.backward(&params, x, y, &mut grad);
                    }
                }
                let step = training.learning_rate / batch.len() as f32;
                for (p, g) in params.iter_mut().zip(&grad) {
                    *p -= step * g;
                }
            }
        }
        params
    }

    /// The share of rows whose most probable class is the label.
    pub fn accuracy(&self, params: &[f32], data: &Dataset) -> f64 {
        let correct = data
            .features
            .iter()
            .zip(&data.labels)
            .filter(|(x, y)| {
                let (p, _) = self.forward(params, x);
                let best = p
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                best == **y
            })
            .count();
        correct as f64 / data.len().max(1) as f64
    }
}

#[cfg(test)]
#[expect(
    clippy::cast_possible_truncation,
    reason = "perturbations of f32 parameters, drawn in f64"
)]
mod tests {
    use super::*;

    /// A client holding only class 2 of the federation's 3 keeps the
    /// label 2, its model keeps 3 outputs, and training learns class 2.
    #[test]
    fn a_client_with_a_single_class_trains_on_the_federation_classes() {
        let part = crate::data::parse("0.5,1.0,2\n-0.3,0.2,2\n1.2,-0.7,2\n")
            .and_then(|d| d.with_classes(3))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(part.labels, vec![2, 2, 2]);
        assert_eq!(part.classes, 3);
        for kind in [ModelKind::Logistic, ModelKind::Mlp { hidden: 4 }] {
            let model = Model::new(kind, part.dim(), 3);
            assert_eq!(model.layout().last().map(|(_, s)| s.clone()), Some(vec![3]));
            let start = model.init(&mut SplitMix::new(1));
            let training = Training {
                epochs: 20,
                learning_rate: 0.5,
                batch: 2,
            };
            let trained = model.train(&start, &part, training, &mut SplitMix::new(2));
            assert_eq!(trained.len(), model.size());
            assert!(
                (model.accuracy(&trained, &part) - 1.0).abs() < 1e-12,
                "{kind:?}"
            );
            let (p, _) = model.forward(&trained, &part.features[0]);
            assert_eq!(p.len(), 3);
            assert!(p[2] > p[0] && p[2] > p[1], "{kind:?}: {p:?}");
        }
    }

    /// Clients with different subsets of the classes update the same
    /// outputs: a client holding classes {0, 2} does not see its class 2
    /// renumbered to 1.
    #[test]
    fn a_client_lacking_a_class_keeps_its_labels() {
        let part = crate::data::parse("1,0,0\n0,1,2\n1,0.1,0\n0.1,1,2\n")
            .and_then(|d| d.with_classes(3))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(part.labels, vec![0, 2, 0, 2]);
        let model = Model::new(ModelKind::Logistic, 2, 3);
        let start = model.init(&mut SplitMix::new(1));
        let training = Training {
            epochs: 30,
            learning_rate: 0.5,
            batch: 4,
        };
        let trained = model.train(&start, &part, training, &mut SplitMix::new(3));
        assert!((model.accuracy(&trained, &part) - 1.0).abs() < 1e-12);
        // Class 1, absent here, is pushed down: its bias decreases.
        let bias = &trained[2 * 3..];
        assert!(bias[1] < 0.0, "{bias:?}");
    }

    /// The analytic gradient matches finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        for kind in [ModelKind::Logistic, ModelKind::Mlp { hidden: 4 }] {
            let model = Model::new(kind, 3, 3);
            let mut rng = SplitMix::new(5);
            let mut params = model.init(&mut rng);
            params
                .iter_mut()
                .for_each(|p| *p += (rng.unit() as f32 - 0.5) * 0.2);
            let x = [0.3f32, -1.2, 0.8];
            let mut grad = vec![0f32; params.len()];
            model.backward(&params, &x, 1, &mut grad);
            let loss = |p: &[f32]| -model.forward(p, &x).0.get(1).copied().unwrap_or(1.0).ln();
            for i in 0..params.len() {
                let mut up = params.clone();
                let mut down = params.clone();
                up[i] += 1e-3;
                down[i] -= 1e-3;
                let numeric = (loss(&up) - loss(&down)) / 2e-3;
                assert!(
                    (numeric - grad[i]).abs() < 2e-2,
                    "{kind:?} parameter {i}: {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }
}

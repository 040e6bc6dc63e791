//! A client's local training in `ringsum join`: the federation's model and
//! training settings (from its description) on the client's CSV, or one
//! update computed elsewhere (`--update FILE.safetensors`).
//!
//! In a federation with differential privacy the CSV client takes one
//! gradient step per round instead (FedSGD, as `ringsum demo --dp-epsilon`
//! does): the gradient of every one of its records at the published model,
//! each clipped, quantized and summed, and its share of noise added
//! ([`crate::fedsgd::contribution`]). A client holding more
//! records than the plan's `max_records` refuses to start (it does not
//! sample a subset). An update computed elsewhere cannot be submitted.

use ringsum_core::privacy::{NoisyContribution, PrivacyPlan};
use ringsum_math::Csprng;
use ringsum_net::SetupDescription;
use ringsum_net::participant::{TrainError, Trainer};
use ringsum_protocol::spec::Federation;

use crate::data::{Dataset, SplitMix};
use crate::demo;
use crate::error::{CliError, Result};
use crate::fedsgd;
use crate::model::{Model, ModelKind, Training};

/// A client's local training on its CSV, with the federation's model and
/// settings.
#[derive(Debug)]
pub struct CsvTrainer {
    model: Model,
    data: Dataset,
    training: Training,
    seed: u64,
    index: usize,
    clip: f32,
}

impl Trainer for CsvTrainer {
    fn train(&mut self, round: u64, global: &[f32]) -> Result<(Vec<f32>, u64), TrainError> {
        let seed = demo::training_seed(self.seed, round, self.index);
        let trained = self
            .model
            .train(global, &self.data, self.training, &mut SplitMix::new(seed));
        let delta = trained
            .iter()
            .zip(global)
            .map(|(new, old)| (new - old).clamp(-self.clip, self.clip))
            .collect();
        Ok((delta, self.data.len() as u64))
    }

    fn contribute(
        &mut self,
        _round: u64,
        global: &[f32],
        plan: &PrivacyPlan,
        rng: &mut Csprng,
    ) -> Result<NoisyContribution, TrainError> {
        Ok(fedsgd::contribution(
            plan,
            &self.model,
            global,
            &self.data,
            rng,
        )?)
    }
}

/// The trainer of client `index` on `data`, with the model and training
/// settings of the federation's description.
///
/// # Errors
/// A description without the CLI's model settings, data that does not
/// fit the model, or (with differential privacy) more records than the
/// plan's `max_records` ([`CliError::TooManyRecords`]).
pub fn application_trainer(
    description: &SetupDescription,
    federation: &Federation,
    data: Dataset,
    index: usize,
) -> Result<CsvTrainer> {
    let app = &description.application;
    let number = |key: &'static str| {
        app.get(key)
            .and_then(serde_json::Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or(CliError::Application(key))
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative finite settings of the description, far below usize::MAX"
    )]
    let (features, classes, hidden, epochs, batch) = (
        number("features")? as usize,
        number("classes")? as usize,
        number("hidden")? as usize,
        number("epochs")? as usize,
        number("batch")? as usize,
    );
    let kind = match app.get("model").and_then(serde_json::Value::as_str) {
        Some("logistic") => ModelKind::Logistic,
        Some("mlp") => ModelKind::Mlp { hidden },
        Some(other) => return Err(CliError::ModelKind(other.to_owned())),
        None => return Err(CliError::Application("model kind")),
    };
    if data.dim() != features {
        return Err(CliError::Features {
            found: data.dim(),
            expected: features,
        });
    }
    // The federation's classes: a client may hold only some of them.
    let data = data.with_classes(classes).map_err(CliError::Classes)?;
    if let Some(plan) = federation.privacy() {
        let max = plan.settings().max_records;
        if data.len() as u64 > max {
            return Err(CliError::TooManyRecords {
                records: data.len(),
                max,
            });
        }
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a learning rate and a clip are small numbers"
    )]
    let (learning_rate, clip) = (
        number("learning_rate")? as f32,
        federation.params().encoding().clip as f32,
    );
    Ok(CsvTrainer {
        model: Model::new(kind, features, classes),
        data,
        training: Training {
            epochs,
            learning_rate,
            batch,
        },
        seed: app
            .get("seed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        index,
        clip,
    })
}

/// One update computed elsewhere (`ringsum join --update`): submitted as
/// it is, once, in the next round the client can join.
#[derive(Debug)]
pub struct UpdateTrainer {
    values: Vec<f32>,
    samples: u64,
}

impl UpdateTrainer {
    /// The update `values` (flat, in the federation's layout order) and
    /// the sample count it declares.
    #[must_use]
    pub const fn new(values: Vec<f32>, samples: u64) -> Self {
        Self { values, samples }
    }
}

impl Trainer for UpdateTrainer {
    fn train(&mut self, _round: u64, _global: &[f32]) -> Result<(Vec<f32>, u64), TrainError> {
        Ok((self.values.clone(), self.samples))
    }

    fn max_submissions(&self) -> Option<usize> {
        Some(1)
    }
}

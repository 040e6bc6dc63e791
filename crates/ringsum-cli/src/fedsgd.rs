//! The demo's differentially private training: one gradient step per
//! round (FedSGD) over every record of every client, each record's
//! gradient clipped, quantized and summed exactly, each client's share of
//! discrete Gaussian noise added before encryption
//! ([`ringsum_core::privacy`]); and its plaintext twin, the same training
//! without noise or quantization.

use ringsum_core::privacy::{
    NoisyContribution, PrivacyPlan, PrivacyResult, PrivacySettings, accountant,
};
use ringsum_math::Csprng;

use crate::data::Dataset;
use crate::demo::DemoPrivacy;
use crate::model::Model;

/// A differentially private run: the plan and the privacy spent so far.
#[derive(Debug)]
pub struct PrivateRun {
    /// The plan every client follows.
    pub plan: PrivacyPlan,
    /// zCDP rho spent so far.
    rho: f64,
    /// The federation's smallest set.
    min_clients: u64,
}

/// The privacy settings of the demo's federation for `settings`, with
/// `parts` as the clients' data and sums of at least `noise_clients`
/// clients.
///
/// The planned records per client (the public denominator of the step) is
/// the parts' mean size, rounded; a client adds at most the largest part's
/// size.
#[must_use]
pub fn settings(settings: DemoPrivacy, parts: &[Dataset], noise_clients: u64) -> PrivacySettings {
    let total: usize = parts.iter().map(Dataset::len).sum();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a mean of row counts, rounded"
    )]
    let records_per_client = (total as f64 / parts.len().max(1) as f64).round() as u64;
    let max_records = parts.iter().map(Dataset::len).max().unwrap_or(1) as u64;
    PrivacySettings {
        epsilon: settings.epsilon,
        delta: settings.delta,
        clip: settings.clip,
        learning_rate: settings.learning_rate,
        records_per_client: records_per_client.max(1),
        max_records: max_records.max(1),
        noise_clients,
    }
}

impl PrivateRun {
    /// A run on the federation's `plan` with sets of at least
    /// `min_clients`, nothing spent yet.
    #[must_use]
    pub fn new(plan: PrivacyPlan, min_clients: u64) -> Self {
        Self {
            plan,
            rho: 0.0,
            min_clients,
        }
    }

    /// A client's noised contribution ([`contribution`]).
    ///
    /// # Errors
    /// The privacy layer's refusal (too many records).
    pub fn contribution(
        &self,
        model: &Model,
        global: &[f32],
        part: &Dataset,
        rng: &mut Csprng,
    ) -> PrivacyResult<NoisyContribution> {
        contribution(&self.plan, model, global, part, rng)
    }

    /// The plaintext twin of [`contribution`]: the sum of the
    /// clipped gradients at `params`, in f64, without noise.
    #[must_use]
    pub fn clipped_sum(&self, model: &Model, params: &[f32], part: &Dataset) -> Vec<f64> {
        let clip = self.plan.settings().clip;
        let mut sum = vec![0f64; params.len()];
        let mut gradient = vec![0f32; params.len()];
        for (x, &label) in part.features.iter().zip(&part.labels) {
            model.record_gradient(params, x, label, &mut gradient);
            let norm = gradient
                .iter()
                .map(|g| f64::from(*g) * f64::from(*g))
                .sum::<f64>()
                .sqrt();
            let factor = if norm > clip { clip / norm } else { 1.0 };
            for (s, g) in sum.iter_mut().zip(&gradient) {
                *s += f64::from(*g) * factor;
            }
        }
        sum
    }

    /// The plaintext twin's step: `params -= lr * sum / (clients * r)`,
    /// with the encrypted run's learning rate and denominator.
    #[expect(clippy::cast_possible_truncation, reason = "model values are f32")]
    pub fn plain_step(&self, params: &mut [f32], sum: &[f64], clients: u64) {
        let denominator = clients.max(1) as f64 * self.plan.settings().records_per_client as f64;
        let rate = self.plan.effective_learning_rate();
        for (p, s) in params.iter_mut().zip(sum) {
            *p -= (rate * s / denominator) as f32;
        }
    }

    /// Charges a round whose opened set held `clients` submissions
    /// ([`PrivacyPlan::set_rho`]); returns that round's epsilon alone and
    /// the epsilon spent so far.
    ///
    /// # Errors
    /// The accountant's.
    pub fn spend(&mut self, clients: u64) -> PrivacyResult<(f64, f64)> {
        let rho = self.plan.set_rho(clients, self.min_clients)?;
        self.rho += rho;
        let delta = self.plan.conversion_delta();
        Ok((
            accountant::epsilon_for_rho(rho, delta)?,
            accountant::epsilon_for_rho(self.rho, delta)?,
        ))
    }

    /// Epsilon spent so far.
    ///
    /// # Errors
    /// The accountant's.
    pub fn spent(&self) -> PrivacyResult<f64> {
        if self.rho == 0.0 {
            return Ok(0.0);
        }
        Ok(accountant::epsilon_for_rho(
            self.rho,
            self.plan.conversion_delta(),
        )?)
    }
}

/// A client's noised contribution under `plan`: the quantized, clipped
/// gradients of all its records at `global`, plus its noise.
///
/// # Errors
/// The privacy layer's refusal (more records than the plan's
/// `max_records`).
pub fn contribution(
    plan: &PrivacyPlan,
    model: &Model,
    global: &[f32],
    part: &Dataset,
    rng: &mut Csprng,
) -> PrivacyResult<NoisyContribution> {
    let mut contribution = plan.contribution();
    let mut gradient = vec![0f32; global.len()];
    for (x, &label) in part.features.iter().zip(&part.labels) {
        model.record_gradient(global, x, label, &mut gradient);
        contribution.add_record(&gradient, rng)?;
    }
    Ok(contribution.finish(rng))
}

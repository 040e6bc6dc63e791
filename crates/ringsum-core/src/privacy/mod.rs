//! Distributed differential privacy: each client clips every training
//! record's gradient, quantizes it, and adds its share of discrete
//! Gaussian noise before encrypting, so the sum the holders open already
//! carries the noise of central DP and nobody sees an un-noised aggregate.

pub mod accountant;
mod plan;

pub use plan::{
    Contribution, NoisyContribution, PrivacyError, PrivacyPlan, PrivacyResult, PrivacySettings,
};

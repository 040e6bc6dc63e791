//! The federation description: everything a participant needs to rebuild
//! the protocol's [`Federation`] by itself, as JSON. The coordinator serves
//! it; each participant rebuilds the federation, whose id hashes the
//! parameter set, layout, policy, threshold, algorithms and every member's
//! keys and Shamir point, and compares that id with the one it pinned.
//!
//! Only the per-round-key parameter sets (`rk128-*`) are accepted: the
//! collective-key sets (`pq128-*`) belong to the design a malicious
//! coordinator could break, and are refused with a clear message.
//!
//! A federation with differential privacy carries its settings in
//! [`SetupDescription::privacy`]; a description without them is, byte for
//! byte and id for id, what it was before the field existed.

use ringsum_core::model::ModelLayout;
use ringsum_core::privacy::PrivacySettings;
use ringsum_core::{DEFAULT_ROUND_KEY_SET, ParameterSet};
use ringsum_pq::codec::{hex, unhex};
use ringsum_pq::{AlgorithmPolicy, FederationId, ParticipantId, PublicIdentity, SealingPublicKey};
use ringsum_protocol::spec::{Federation, FederationSpec, HolderSpec, Policy};
use ringsum_threshold::HolderId;
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// The description's format version (2: per-round keys, no ceremony).
pub const DESCRIPTION_VERSION: u32 = 2;

/// One tensor of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorDescription {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
}

/// A key holder: its Shamir point and public keys (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderDescription {
    /// The Shamir point (1-based); logs and reports name the holder by it.
    pub point: u32,
    /// The signing public key.
    pub key: String,
    /// The sealing public key.
    pub sealing: String,
}

/// The differential-privacy settings of a federation
/// ([`PrivacySettings`]), every one explicit.
///
/// The floats are hashed into the federation id bit for bit, and every
/// participant reads them back from this JSON: [`Self::new`] gives each
/// the value the JSON reader returns for it, so that the coordinator and
/// the participants hash the same bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyDescription {
    /// Target epsilon over all rounds.
    pub epsilon: f64,
    /// Target delta over all rounds.
    pub delta: f64,
    /// L2 norm every record's gradient is clipped to.
    pub clip: f64,
    /// The gradient step's rate.
    pub learning_rate: f64,
    /// The planned (public) records per client: the step's denominator.
    pub records_per_client: u64,
    /// The most records a client adds up in one round.
    pub max_records: u64,
    /// The fewest clients whose noise every opened sum holds.
    pub noise_clients: u64,
}

/// `value` as the description's JSON carries it: what the JSON reader
/// returns for the number the writer prints. The reader is not correctly
/// rounded for every input, so this is the first value that reads back as
/// itself (one step in practice; a value that never settles, and any value
/// that is not finite, is kept, and refused by [`SetupDescription::spec`]
/// or by the privacy plan).
fn json_exact(value: f64) -> f64 {
    let mut current = value;
    for _ in 0..4 {
        let Some(next) = json_round_trip(current) else {
            return value;
        };
        if next.to_bits() == current.to_bits() {
            return current;
        }
        current = next;
    }
    value
}

/// What the JSON reader returns for the number the writer prints for
/// `value` (`None` for a value JSON has no number for).
fn json_round_trip(value: f64) -> Option<f64> {
    if !value.is_finite() {
        return None;
    }
    serde_json::to_string(&value)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

impl PrivacyDescription {
    /// The description of `settings`, each float replaced by the value
    /// the description's JSON carries exactly (the same, or one unit in
    /// the last place away).
    #[must_use]
    pub fn new(settings: &PrivacySettings) -> Self {
        Self {
            epsilon: json_exact(settings.epsilon),
            delta: json_exact(settings.delta),
            clip: json_exact(settings.clip),
            learning_rate: json_exact(settings.learning_rate),
            records_per_client: settings.records_per_client,
            max_records: settings.max_records,
            noise_clients: settings.noise_clients,
        }
    }

    /// The settings the federation is built with.
    #[must_use]
    pub fn settings(&self) -> PrivacySettings {
        PrivacySettings {
            epsilon: self.epsilon,
            delta: self.delta,
            clip: self.clip,
            learning_rate: self.learning_rate,
            records_per_client: self.records_per_client,
            max_records: self.max_records,
            noise_clients: self.noise_clients,
        }
    }

    /// Refuses a finite float that does not read back from the JSON as
    /// itself: a participant would hash other bits into the federation id
    /// than the coordinator. (Not finite: refused by the plan, with the
    /// setting's own message.)
    fn check_exact(&self) -> Result<()> {
        for (field, value) in [
            ("epsilon", self.epsilon),
            ("delta", self.delta),
            ("clip", self.clip),
            ("learning_rate", self.learning_rate),
        ] {
            if value.is_finite()
                && json_round_trip(value).map(f64::to_bits) != Some(value.to_bits())
            {
                return Err(NetError::PrivacyNotExact { field, value });
            }
        }
        Ok(())
    }
}

/// A federation as the coordinator publishes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupDescription {
    /// [`DESCRIPTION_VERSION`].
    pub version: u32,
    /// A shipped per-round-key parameter set's id.
    pub parameter_set: String,
    /// The model's tensors.
    pub layout: Vec<TensorDescription>,
    /// Holders whose answers open a sum (2t > n).
    pub threshold: u32,
    /// Hybrid ML-DSA + Ed25519 and ML-KEM + X25519 keys.
    pub hybrid: bool,
    /// Fewest clients whose sum is ever opened.
    pub min_clients: usize,
    /// Fewest samples a client may declare.
    pub min_samples: u64,
    /// Most samples a client may declare.
    pub max_weight: u64,
    /// Training rounds.
    pub rounds: u64,
    /// The coordinator's signing public key (hex).
    pub coordinator: String,
    /// The key holders.
    pub holders: Vec<HolderDescription>,
    /// The clients' signing public keys (hex), in order: a client's index
    /// is its position here.
    pub clients: Vec<String>,
    /// What the application adds (the model kind, training settings): the
    /// service passes it on without reading it. It is not part of the
    /// federation id.
    pub application: serde_json::Value,
    /// Differential privacy for every client (absent: none). Part of the
    /// federation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyDescription>,
}

fn bytes(field: &str, text: &str) -> Result<Vec<u8>> {
    unhex(text).ok_or_else(|| NetError::NotHex {
        field: field.to_owned(),
    })
}

/// The shipped parameter set `id`, refusing the collective-key sets with
/// the names of the ones to use instead.
///
/// # Errors
/// [`NetError::CollectiveKeySet`]; the core layer's for an unknown id.
pub fn round_key_set(id: &str) -> Result<ParameterSet> {
    if id.starts_with("pq128-") {
        return Err(NetError::CollectiveKeySet {
            id: id.to_owned(),
            available: ParameterSet::builtin_ids().join(", "),
            default: DEFAULT_ROUND_KEY_SET,
        });
    }
    Ok(ParameterSet::builtin(id).map_err(ringsum_protocol::ProtocolError::from)?)
}

impl SetupDescription {
    /// The algorithms every member's keys must use.
    #[must_use]
    pub const fn algorithms(&self) -> AlgorithmPolicy {
        if self.hybrid {
            AlgorithmPolicy::HYBRID
        } else {
            AlgorithmPolicy::POST_QUANTUM
        }
    }

    /// Parses a description.
    ///
    /// # Errors
    /// [`NetError::DescriptionJson`], [`NetError::DescriptionVersion`].
    pub fn from_json(text: &str) -> Result<Self> {
        // The version first, so that an old description gets that message
        // rather than one about its fields.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_str(text).map_err(NetError::DescriptionJson)?;
        if version.version != DESCRIPTION_VERSION {
            return Err(NetError::DescriptionVersion {
                found: version.version,
                supported: DESCRIPTION_VERSION,
            });
        }
        serde_json::from_str(text).map_err(NetError::DescriptionJson)
    }

    /// The description as JSON.
    ///
    /// # Errors
    /// [`NetError::DescriptionJson`] if it cannot be serialised.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(NetError::DescriptionJson)
    }

    /// The protocol's description of the federation.
    ///
    /// # Errors
    /// [`NetError::CollectiveKeySet`], [`NetError::NotHex`],
    /// [`NetError::Key`], [`NetError::PrivacyNotExact`], and the
    /// protocol's for an invalid layout.
    pub fn spec(&self) -> Result<FederationSpec> {
        let params = round_key_set(&self.parameter_set)?;
        if let Some(privacy) = &self.privacy {
            privacy.check_exact()?;
        }
        let layout = ModelLayout::try_new(
            self.layout
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone())),
        )
        .map_err(ringsum_protocol::ProtocolError::from)?;
        let algorithms = self.algorithms();
        let identity = |field: String, text: &str| {
            PublicIdentity::from_bytes(algorithms.signature, &bytes(&field, text)?)
                .map_err(|source| NetError::Key { field, source })
        };
        let holders = self
            .holders
            .iter()
            .map(|h| {
                let field = format!("holder {} sealing key", h.point);
                let sealing =
                    SealingPublicKey::from_bytes(algorithms.kem, &bytes(&field, &h.sealing)?)
                        .map_err(|source| NetError::Key { field, source })?;
                Ok(HolderSpec {
                    point: HolderId(h.point),
                    signing: identity(format!("holder {} key", h.point), &h.key)?,
                    sealing,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let clients = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, k)| identity(format!("client {i} key"), k))
            .collect::<Result<Vec<_>>>()?;
        Ok(FederationSpec {
            params,
            layout,
            policy: Policy {
                min_clients: self.min_clients,
                min_samples: self.min_samples,
                max_weight: self.max_weight,
                rounds: self.rounds,
            },
            threshold: self.threshold,
            algorithms,
            coordinator: identity("coordinator key".into(), &self.coordinator)?,
            holders,
            clients,
            privacy: self.privacy.as_ref().map(PrivacyDescription::settings),
        })
    }

    /// Builds and checks the federation (2t > n, the policy, every key,
    /// the privacy plan).
    ///
    /// # Errors
    /// As [`Self::spec`], and [`NetError::Protocol`] for what the protocol
    /// refuses (naming n and t for a threshold that is not a majority, or
    /// the privacy setting it cannot plan with).
    pub fn federation(&self) -> Result<Federation> {
        Ok(Federation::new(self.spec()?)?)
    }

    /// The client index of `id` (its position in [`Self::clients`]), if it
    /// is a client of `federation`.
    #[must_use]
    pub fn client_index(&self, federation: &Federation, id: ParticipantId) -> Option<usize> {
        if !federation.clients().contains(&id) {
            return None;
        }
        let algorithm = self.algorithms().signature;
        self.clients.iter().position(|key| {
            unhex(key)
                .and_then(|b| PublicIdentity::from_bytes(algorithm, &b).ok())
                .is_some_and(|p| p.id() == id)
        })
    }
}

/// A federation id as hex (what operators pass around to pin a federation).
#[must_use]
pub fn federation_hex(id: FederationId) -> String {
    hex(&id.0)
}

/// A federation id from its 64 hex digits.
#[must_use]
pub fn parse_federation(text: &str) -> Option<FederationId> {
    unhex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(FederationId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_floats_are_snapped_to_what_the_json_reads_back() {
        // The JSON reader is not correctly rounded for every number: 1e-23
        // reads back one unit in the last place away.
        let read = |v: f64| -> f64 {
            serde_json::from_str(&serde_json::to_string(&v).unwrap_or_default()).unwrap_or(f64::NAN)
        };
        assert_ne!(read(1e-23).to_bits(), 1e-23f64.to_bits());
        for value in [1e-23, 7e-25, 1e-300, 1e-5, 0.1, 2.0, 8.0, 1.0 / 3.0] {
            let exact = json_exact(value);
            assert_eq!(read(exact).to_bits(), exact.to_bits(), "{value:e}");
            assert!((exact - value).abs() <= value * 1e-15, "{value:e}");
        }
        // The usual values are kept as they are.
        for value in [1e-5, 0.5, 1.0, 2.0, 8.0] {
            assert_eq!(json_exact(value).to_bits(), value.to_bits());
        }
        // Not finite: kept, for the plan to refuse by name.
        assert!(json_exact(f64::NAN).is_nan());
        assert_eq!(json_exact(f64::INFINITY), f64::INFINITY);
        let settings = PrivacySettings {
            epsilon: 1.0,
            delta: 1e-23,
            clip: 1.0,
            learning_rate: 2.0,
            records_per_client: 5,
            max_records: 10,
            noise_clients: 3,
        };
        let snapped = PrivacyDescription::new(&settings);
        assert!(snapped.check_exact().is_ok());
        assert_eq!(snapped.settings().records_per_client, 5);
        // A description made by hand with the raw value is refused.
        let raw = PrivacyDescription {
            delta: 1e-23,
            ..snapped
        };
        let error = raw
            .check_exact()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("privacy delta"), "{error}");
    }
}

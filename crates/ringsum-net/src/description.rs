//! The federation description: everything a participant needs to rebuild
//! the protocol's [`Federation`] by itself, as JSON. The coordinator serves
//! it; each participant rebuilds the federation, whose id hashes the
//! parameter set, layout, policy, threshold, algorithms and every member's
//! keys and Shamir point, and compares that id with the one it pinned.
//!
//! Only the per-round-key parameter sets (`rk128-*`) are accepted: the
//! collective-key sets (`pq128-*`) belong to the design a malicious
//! coordinator could break, and are refused with a clear message.

use ringsum_core::model::ModelLayout;
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
    /// [`NetError::Key`], and the protocol's for an invalid layout.
    pub fn spec(&self) -> Result<FederationSpec> {
        let params = round_key_set(&self.parameter_set)?;
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
        })
    }

    /// Builds and checks the federation (2t > n, the policy, every key).
    ///
    /// # Errors
    /// As [`Self::spec`], and [`NetError::Protocol`] for what the protocol
    /// refuses (naming n and t for a threshold that is not a majority).
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

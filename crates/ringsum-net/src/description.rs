//! The setup description: everything a participant needs to rebuild the
//! federation's [`Setup`] by itself, as JSON. The coordinator serves it;
//! each participant rebuilds the setup, recomputes the federation id (which
//! hashes the parameter set, committee, CRS, layout and every member), and
//! compares it with the id it was given out of band, if any.

use std::collections::BTreeMap;

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::Packing;
use ringsum_math::CrsSeed;
use ringsum_pq::codec::{hex, unhex};
use ringsum_pq::{
    AlgorithmPolicy, FederationId, ParticipantId, PublicIdentity, Registry, Role, SealingPublicKey,
};
use ringsum_protocol::{RoundPolicy, Setup, federation_id};
use ringsum_threshold::{Committee, HolderId};
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// The description's format version.
pub const DESCRIPTION_VERSION: u32 = 1;

/// One tensor of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorDescription {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
}

/// A key holder: its Shamir point and public keys (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderDescription {
    /// The Shamir point (1-based).
    pub point: u32,
    /// The signing public key.
    pub key: String,
    /// The sealing public key.
    pub sealing: String,
}

/// A federation's setup, as the coordinator publishes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetupDescription {
    /// [`DESCRIPTION_VERSION`].
    pub version: u32,
    /// A shipped parameter set's id.
    pub parameter_set: String,
    /// The model's tensors.
    pub layout: Vec<TensorDescription>,
    /// The key epoch.
    pub epoch: u64,
    /// Holders needed to decrypt.
    pub threshold: u32,
    /// Hybrid ML-DSA + Ed25519 and ML-KEM + X25519 keys.
    pub hybrid: bool,
    /// The CRS seed (hex).
    pub crs: String,
    /// Fewest submissions a round is decrypted with.
    pub min_clients: usize,
    /// Fewest samples a client may declare.
    pub min_samples: u64,
    /// The coordinator's signing public key (hex).
    pub coordinator: String,
    /// The key holders.
    pub holders: Vec<HolderDescription>,
    /// The clients' signing public keys (hex), in order: a client's index
    /// is its position here.
    pub clients: Vec<String>,
    /// Training rounds.
    pub rounds: u64,
    /// What the application adds (the model kind, training settings): the
    /// service passes it on without reading it.
    pub application: serde_json::Value,
}

fn bytes(field: &str, text: &str) -> Result<Vec<u8>> {
    unhex(text).ok_or_else(|| NetError::Config(format!("{field}: not hex")))
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
    /// [`NetError::Config`] for malformed JSON or another version.
    pub fn from_json(text: &str) -> Result<Self> {
        let description: Self = serde_json::from_str(text)
            .map_err(|e| NetError::Config(format!("setup description: {e}")))?;
        if description.version != DESCRIPTION_VERSION {
            return Err(NetError::Config(format!(
                "setup description version {} (this build reads {DESCRIPTION_VERSION})",
                description.version
            )));
        }
        Ok(description)
    }

    /// The description as JSON.
    ///
    /// # Errors
    /// [`NetError::Config`] if it cannot be serialised.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| NetError::Config(e.to_string()))
    }

    /// The client index of `id`, if it is a client.
    #[must_use]
    pub fn client_index(&self, setup: &Setup, id: ParticipantId) -> Option<usize> {
        let algorithms = self.algorithms();
        self.clients
            .iter()
            .position(|key| {
                unhex(key)
                    .and_then(|b| PublicIdentity::from_bytes(algorithms.signature, &b).ok())
                    .is_some_and(|p| p.id() == id)
            })
            .filter(|_| {
                setup
                    .registry
                    .get(&id)
                    .is_some_and(|p| p.role == Role::Client)
            })
    }

    /// Rebuilds the setup: parameter set, layout, committee, registry,
    /// federation id.
    ///
    /// # Errors
    /// [`NetError::Config`] for an unknown parameter set, a malformed key,
    /// an invalid layout or committee, or a member listed twice.
    pub fn setup(&self) -> Result<Setup> {
        let config = |e: &dyn std::fmt::Display| NetError::Config(e.to_string());
        let params = ParameterSet::builtin(&self.parameter_set).map_err(|e| config(&e))?;
        let layout = ModelLayout::try_new(
            self.layout
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone())),
        )
        .map_err(|e| config(&e))?;
        let points: Vec<HolderId> = self.holders.iter().map(|h| HolderId(h.point)).collect();
        let committee =
            Committee::new(&params, self.epoch, &points, self.threshold).map_err(|e| config(&e))?;
        let crs: [u8; 32] = bytes("crs", &self.crs)?
            .try_into()
            .map_err(|_| NetError::Config("crs: not 32 bytes".into()))?;
        let crs = CrsSeed::new(crs);
        let algorithms = self.algorithms();
        let identity = |field: &str, text: &str| {
            PublicIdentity::from_bytes(algorithms.signature, &bytes(field, text)?)
                .map_err(|e| NetError::Config(format!("{field}: {e}")))
        };
        let coordinator = identity("coordinator", &self.coordinator)?;
        let clients = self
            .clients
            .iter()
            .map(|k| identity("client", k))
            .collect::<Result<Vec<_>>>()?;
        let holders = self
            .holders
            .iter()
            .map(|h| {
                let sealing =
                    SealingPublicKey::from_bytes(algorithms.kem, &bytes("sealing", &h.sealing)?)
                        .map_err(|e| {
                            NetError::Config(format!("holder {} sealing key: {e}", h.point))
                        })?;
                Ok((HolderId(h.point), identity("holder", &h.key)?, sealing))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut members = vec![(Role::Coordinator, coordinator.id())];
        members.extend(clients.iter().map(|c| (Role::Client, c.id())));
        members.extend(holders.iter().map(|(_, h, _)| (Role::KeyHolder, h.id())));
        let federation = federation_id(&params, &committee, &crs, &layout, &members);
        let mut registry = Registry::new(federation, algorithms);
        registry
            .register(Role::Coordinator, coordinator.clone(), None)
            .map_err(|e| config(&e))?;
        for c in clients {
            registry
                .register(Role::Client, c, None)
                .map_err(|e| config(&e))?;
        }
        let mut holder_map = BTreeMap::new();
        for (point, key, sealing) in holders {
            holder_map.insert(point, key.id());
            registry
                .register(Role::KeyHolder, key, Some(sealing))
                .map_err(|e| config(&e))?;
        }
        let setup = Setup {
            packing: Packing::new(&params),
            params,
            layout,
            policy: RoundPolicy {
                min_clients: self.min_clients,
                min_samples: self.min_samples,
            },
            committee,
            crs,
            registry,
            coordinator: coordinator.id(),
            holders: holder_map,
        };
        setup.check()?;
        Ok(setup)
    }
}

/// A federation id as hex (what operators pass around to pin a federation).
#[must_use]
pub fn federation_hex(id: FederationId) -> String {
    hex(&id.0)
}

//! `Federation` (the description every participant rebuilds, JSON version
//! 2 as `ringsum serve` publishes it), `Identity` (a `ringsum keygen`
//! directory's secret keys) and `keygen`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyMappingMethods, PyString, PyTuple};
use ringsum_core::privacy::PrivacySettings;
use ringsum_core::{DEFAULT_ROUND_KEY_SET, ParameterSet};
use ringsum_net::description::{DESCRIPTION_VERSION, round_key_set};
use ringsum_net::{
    HolderDescription, PrivacyDescription, SetupDescription, TensorDescription, federation_hex,
};
use ringsum_pq::codec::{hex, unhex};
use ringsum_pq::{
    KemAlgorithm, ParticipantId, PublicIdentity, SealingKey, SignatureAlgorithm, SigningIdentity,
};
use ringsum_protocol::spec::Federation;
use zeroize::Zeroizing;

use crate::arrays;
use crate::error::{Ctx, Failure, Kind, Result};

/// A federation with its description and its clients in description order.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) federation: Arc<Federation>,
    pub(crate) description: SetupDescription,
    /// Client ids by index.
    pub(crate) clients: Vec<ParticipantId>,
}

impl Shared {
    fn new(description: SetupDescription) -> Result<Self> {
        let federation = description
            .federation()
            .map_err(|e| Failure::net(&e, Ctx::Setup))?;
        let algorithm = description.algorithms().signature;
        // Every key decoded in federation() above.
        let clients = description
            .clients
            .iter()
            .map(|key| {
                unhex(key)
                    .and_then(|b| PublicIdentity::from_bytes(algorithm, &b).ok())
                    .map(|p| p.id())
                    .ok_or_else(|| Failure::setup("a client key does not decode"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            federation: Arc::new(federation),
            description,
            clients,
        })
    }

    /// The index of client `id`.
    pub(crate) fn client_index(&self, id: ParticipantId) -> Option<usize> {
        self.clients.iter().position(|c| *c == id)
    }

    /// The index of client `id`, for ids the protocol checked.
    pub(crate) fn index_of(&self, id: ParticipantId) -> Result<usize> {
        self.client_index(id).ok_or_else(|| {
            Failure::new(
                Kind::Authentication,
                format!("{id} is not a client of this federation"),
            )
        })
    }
}

/// Converts with Python's json module (the application section is opaque
/// JSON, like in the description).
fn to_json_value(py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> Result<serde_json::Value> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(serde_json::Value::Null);
    };
    let text: String = py
        .import("json")
        .and_then(|json| json.call_method1("dumps", (value,)))
        .and_then(|t| t.extract())
        .map_err(|e| Failure::input(format!("application: not JSON-serialisable: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Failure::input(format!("application: {e}")))
}

fn from_json_value<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

fn read_public(path: &Path) -> Result<String> {
    std::fs::read(path)
        .map(|b| hex(&b))
        .map_err(|e| Failure::setup(format!("{}: {e}", path.display())))
}

/// A layout given as (name, shape) pairs, or taken from a structure.
fn layout_argument(layout: &Bound<'_, PyAny>) -> Result<Vec<(String, Vec<u64>)>> {
    let pairs: Option<Vec<(String, Vec<u64>)>> = if layout.is_instance_of::<PyString>() {
        None
    } else {
        layout.extract().ok()
    };
    match pairs {
        Some(pairs) => Ok(pairs
            .into_iter()
            .map(|(name, shape)| {
                let shape = if shape.is_empty() { vec![1] } else { shape };
                (name, shape)
            })
            .collect()),
        None => arrays::float_layout_of(layout),
    }
}

/// The keys of `Federation.create`'s `privacy` dict, in the order of
/// [`PrivacySettings`].
const PRIVACY_KEYS: [&str; 7] = [
    "epsilon",
    "delta",
    "clip",
    "learning_rate",
    "records_per_client",
    "max_records",
    "noise_clients",
];

/// Reads `Federation.create`'s `privacy` dict: `epsilon`, `delta`,
/// `records_per_client` and `max_records` are required, `clip` defaults to
/// 1, `learning_rate` to 2 and `noise_clients` to `min_clients`. Only the
/// types are checked here; the values are the privacy layer's to judge
/// when the federation is built.
fn privacy_settings(value: &Bound<'_, PyAny>, min_clients: usize) -> Result<PrivacySettings> {
    let mapping = value.cast::<PyMapping>().map_err(|_| {
        Failure::input(format!(
            "privacy must be a dict with the keys {}, got {}",
            PRIVACY_KEYS.join(", "),
            value
                .get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })?;
    let failed = |e: PyErr| Failure::input(format!("privacy: {e}"));
    for key in mapping.keys().map_err(failed)?.iter() {
        let known = key
            .extract::<String>()
            .is_ok_and(|k| PRIVACY_KEYS.contains(&k.as_str()));
        if !known {
            return Err(Failure::input(format!(
                "privacy: unknown key {} (the keys are {})",
                key.repr()
                    .map_or_else(|_| "?".to_owned(), |r| r.to_string()),
                PRIVACY_KEYS.join(", ")
            )));
        }
    }
    let item = |key: &str| -> Result<Option<Bound<'_, PyAny>>> {
        match mapping.get_item(key) {
            Ok(v) if v.is_none() => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(value.py()) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    };
    let bad = |key: &str, v: &Bound<'_, PyAny>, what: &str| {
        Failure::input(format!(
            "privacy: {key} must be {what}, got {}",
            v.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string())
        ))
    };
    let missing = |key: &str| Failure::input(format!("privacy: {key} is required"));
    let number = |key: &str, default: Option<f64>| -> Result<f64> {
        match item(key)? {
            // True and False are ints to Python; as a setting, a mistake.
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => Err(bad(key, &v, "a number")),
            Some(v) => v.extract::<f64>().map_err(|_| bad(key, &v, "a number")),
            None => default.ok_or_else(|| missing(key)),
        }
    };
    let count = |key: &str, default: Option<u64>| -> Result<u64> {
        match item(key)? {
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => {
                Err(bad(key, &v, "a non-negative integer"))
            }
            Some(v) => v
                .extract::<u64>()
                .map_err(|_| bad(key, &v, "a non-negative integer")),
            None => default.ok_or_else(|| missing(key)),
        }
    };
    Ok(PrivacySettings {
        epsilon: number("epsilon", None)?,
        delta: number("delta", None)?,
        clip: number("clip", Some(1.0))?,
        learning_rate: number("learning_rate", Some(2.0))?,
        records_per_client: count("records_per_client", None)?,
        max_records: count("max_records", None)?,
        noise_clients: count("noise_clients", Some(min_clients as u64))?,
    })
}

/// `Federation.privacy`: the settings and what the plan derived from them.
fn privacy_dict<'py>(
    py: Python<'py>,
    plan: &ringsum_core::privacy::PrivacyPlan,
) -> PyResult<Bound<'py, PyDict>> {
    let s = plan.settings();
    let dict = PyDict::new(py);
    dict.set_item("epsilon", s.epsilon)?;
    dict.set_item("delta", s.delta)?;
    dict.set_item("clip", s.clip)?;
    dict.set_item("learning_rate", s.learning_rate)?;
    dict.set_item("records_per_client", s.records_per_client)?;
    dict.set_item("max_records", s.max_records)?;
    dict.set_item("noise_clients", s.noise_clients)?;
    dict.set_item("declared_samples", plan.declared_samples())?;
    dict.set_item("effective_learning_rate", plan.effective_learning_rate())?;
    dict.set_item("noise_std", plan.noise_std())?;
    dict.set_item("scale_bits", plan.scale_bits())?;
    let planned = plan
        .planned_epsilon(plan.rounds())
        .map_err(|e| Failure::privacy(&e))?;
    dict.set_item("planned_epsilon", planned)?;
    Ok(dict)
}

/// The parameters of a federation, as every participant agrees on them.
///
/// Made with `Federation.create` from `ringsum keygen` directories, or read
/// from the description `ringsum serve` publishes (`load`, `from_json`).
/// Immutable; equal when the descriptions are; pickles as its JSON.
#[pyclass(module = "ringsum._native", name = "Federation", frozen)]
#[derive(Debug)]
pub(crate) struct PyFederation {
    pub(crate) shared: Arc<Shared>,
}

impl PyFederation {
    fn build(py: Python<'_>, description: SetupDescription) -> Result<Self> {
        let shared = py.detach(|| Shared::new(description))?;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    fn json(&self) -> Result<String> {
        self.shared
            .description
            .to_json()
            .map_err(|e| Failure::net(&e, Ctx::Setup))
    }
}

#[pymethods]
impl PyFederation {
    /// Creates a federation from key directories written by `keygen`.
    #[staticmethod]
    #[pyo3(signature = (
        *, layout, coordinator, holders, clients, threshold,
        parameter_set = DEFAULT_ROUND_KEY_SET.to_owned(), min_clients = 2, min_samples = 1,
        max_weight = 10_000, rounds = 100, hybrid = false, application = None, privacy = None
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the keyword arguments of Federation.create"
    )]
    fn create(
        py: Python<'_>,
        layout: &Bound<'_, PyAny>,
        coordinator: PathBuf,
        holders: Vec<PathBuf>,
        clients: Vec<PathBuf>,
        threshold: u32,
        parameter_set: String,
        min_clients: usize,
        min_samples: u64,
        max_weight: u64,
        rounds: u64,
        hybrid: bool,
        application: Option<&Bound<'_, PyAny>>,
        privacy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let privacy = privacy
            .filter(|p| !p.is_none())
            .map(|p| privacy_settings(p, min_clients))
            .transpose()?;
        // An unknown or collective-key set is the caller's value.
        round_key_set(&parameter_set).map_err(|e| Failure::net(&e, Ctx::Setup))?;
        let layout = layout_argument(layout)?;
        let holders = holders
            .iter()
            .zip(1u32..)
            .map(|(dir, point)| {
                Ok(HolderDescription {
                    point,
                    key: read_public(&dir.join("identity.pub"))?,
                    sealing: read_public(&dir.join("sealing.pub"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let clients = clients
            .iter()
            .map(|dir| read_public(&dir.join("identity.pub")))
            .collect::<Result<Vec<_>>>()?;
        let description = SetupDescription {
            version: DESCRIPTION_VERSION,
            parameter_set,
            layout: layout
                .into_iter()
                .map(|(name, shape)| TensorDescription { name, shape })
                .collect(),
            threshold,
            hybrid,
            min_clients,
            min_samples,
            max_weight,
            rounds,
            coordinator: read_public(&coordinator.join("identity.pub"))?,
            holders,
            clients,
            application: to_json_value(py, application)?,
            privacy: privacy.as_ref().map(PrivacyDescription::new),
        };
        Ok(Self::build(py, description)?)
    }

    /// Reads a federation description file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::setup(format!("{}: {e}", path.display())))?;
        Self::from_json(py, &text).map_err(|e| {
            Python::attach(|py| {
                let message = format!("{}: {}", path.display(), e.value(py));
                PyErr::from_type(e.get_type(py), (message,))
            })
        })
    }

    /// Parses a federation description (JSON, version 2).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let description =
            SetupDescription::from_json(text).map_err(|e| Failure::net(&e, Ctx::Setup))?;
        Ok(Self::build(py, description)?)
    }

    /// The description as JSON.
    fn to_json(&self) -> PyResult<String> {
        Ok(self.json()?)
    }

    /// Writes the description to `path`.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let mut text = self.json()?;
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| Failure::setup(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// The federation id, 64 hex digits.
    #[getter]
    fn id(&self) -> String {
        federation_hex(self.shared.federation.id())
    }

    /// The parameter set id.
    #[getter]
    fn parameter_set(&self) -> String {
        self.shared.description.parameter_set.clone()
    }

    /// The layout: (name, shape) per tensor.
    #[getter]
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyTuple>)>> {
        self.shared
            .federation
            .layout()
            .tensors()
            .iter()
            .map(|t| Ok((t.name().to_owned(), PyTuple::new(py, t.shape())?)))
            .collect()
    }

    /// The number of parameters.
    #[getter]
    fn parameter_count(&self) -> usize {
        self.shared.federation.layout().parameter_count()
    }

    /// Holders whose answers open a sum.
    #[getter]
    fn threshold(&self) -> u32 {
        self.shared.description.threshold
    }

    /// The holders' Shamir points.
    #[getter]
    fn holders(&self) -> Vec<u32> {
        self.shared
            .federation
            .holders()
            .keys()
            .map(|h| h.0)
            .collect()
    }

    /// The number of clients.
    #[getter]
    fn num_clients(&self) -> usize {
        self.shared.clients.len()
    }

    /// Fewest clients whose sum is opened.
    #[getter]
    fn min_clients(&self) -> usize {
        self.shared.description.min_clients
    }

    /// Fewest samples a client may declare.
    #[getter]
    fn min_samples(&self) -> u64 {
        self.shared.description.min_samples
    }

    /// Most samples a client may declare.
    #[getter]
    fn max_weight(&self) -> u64 {
        self.shared.description.max_weight
    }

    /// Training rounds.
    #[getter]
    fn rounds(&self) -> u64 {
        self.shared.description.rounds
    }

    /// Values are clipped to [-clip, clip] before quantization.
    #[getter]
    fn clip(&self) -> f64 {
        self.shared.federation.params().encoding().clip
    }

    /// Hybrid keys (ML-DSA-65 + Ed25519, ML-KEM-1024 + X25519).
    #[getter]
    fn hybrid(&self) -> bool {
        self.shared.description.hybrid
    }

    /// The differential-privacy settings and what the plan derives from
    /// them, or None for a federation without.
    #[getter]
    fn privacy<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.shared
            .federation
            .privacy()
            .map(|plan| privacy_dict(py, plan))
            .transpose()
    }

    /// What the application added to the description (JSON), or None.
    #[getter]
    fn application<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json_value(py, &self.shared.description.application)
    }

    /// Checks that `publication` is a round result signed by this
    /// federation's coordinator (the announcement `open_round` returns, or
    /// `RoundResult.publication`) and returns (the round it was signed
    /// for, the round whose result the model is, the model as a flat
    /// float32 array in layout order).
    fn read_publication<'py>(
        &self,
        py: Python<'py>,
        publication: &[u8],
    ) -> PyResult<(u64, u64, Bound<'py, numpy::PyArray1<f32>>)> {
        let federation = &self.shared.federation;
        let (round, result) = py
            .detach(|| ringsum_net::participant::read_publication(federation, publication))
            .map_err(|e| Failure::net(&e, Ctx::Message).context("the publication"))?;
        publication_rounds(round.0, result.round, federation.policy().rounds)
            .map_err(|reason| Failure::new(Kind::Refused, reason))?;
        Ok((
            round.0,
            result.round,
            numpy::PyArray1::from_vec(py, result.model),
        ))
    }

    /// The client index of `identity` (an Identity or a member id), or None.
    fn client_index(&self, identity: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        Ok(member_id(identity)?.and_then(|id| self.shared.client_index(id)))
    }

    /// The Shamir point of `identity` (an Identity or a member id), or None.
    fn holder_point(&self, identity: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        Ok(member_id(identity)?
            .and_then(|id| self.shared.federation.holder_point(id))
            .map(|h| h.0))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|o| o.get().shared.description == self.shared.description)
    }

    fn __hash__(&self) -> u64 {
        let id = self.shared.federation.id().0;
        let mut head = [0u8; 8];
        head.copy_from_slice(id.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(head)
    }

    fn __repr__(&self) -> String {
        let f = &self.shared.federation;
        format!(
            "Federation(id={}, parameter_set={}, parameters={}, holders={}, threshold={}, clients={})",
            federation_hex(f.id()),
            self.shared.description.parameter_set,
            f.layout().parameter_count(),
            f.holders().len(),
            self.shared.description.threshold,
            self.shared.clients.len()
        )
    }

    /// Pickles as `Federation.from_json(self.to_json())`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let from_json = slf.get_type().getattr("from_json")?;
        Ok((from_json, (slf.get().json()?,)))
    }
}

/// The member id of an Identity, or of a hex string.
/// Bounds what a coordinator-signed publication may claim (it signs them
/// itself): the result of a round of the federation (0: the initial
/// model), either announced for the next round or published in its own.
fn publication_rounds(envelope: u64, result: u64, rounds: u64) -> std::result::Result<(), String> {
    if result > rounds {
        return Err(format!(
            "the publication claims the result of round {result}, the federation has {rounds} rounds"
        ));
    }
    if envelope != result && envelope != result.saturating_add(1) {
        return Err(format!(
            "the publication of round {envelope} carries the result of round {result}: neither an announcement nor a publication"
        ));
    }
    Ok(())
}

fn member_id(obj: &Bound<'_, PyAny>) -> PyResult<Option<ParticipantId>> {
    if let Ok(identity) = obj.cast::<PyIdentity>() {
        return Ok(Some(identity.get().id));
    }
    if let Ok(text) = obj.extract::<String>() {
        return Ok(unhex(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(ParticipantId));
    }
    Err(PyTypeError::new_err(
        "expected an Identity or a member id (64 hex digits)",
    ))
}

/// Reads a secret key file into memory that is wiped when dropped.
fn read_secret_bytes(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let io = |e: std::io::Error| Failure::setup(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(len).unwrap_or(0).saturating_add(1),
    ));
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// The secret keys of a `ringsum keygen` directory: `identity.key`, and
/// `sealing.key` for a key holder. The key files' text is kept in memory
/// that is wiped when the Identity is dropped; each participant parses its
/// own copy of the keys (which zeroize too). Not picklable.
#[pyclass(module = "ringsum._native", name = "Identity", frozen)]
pub(crate) struct PyIdentity {
    pub(crate) id: ParticipantId,
    algorithm: SignatureAlgorithm,
    signing: Zeroizing<Vec<u8>>,
    sealing: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for PyIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PyIdentity {
    /// A fresh copy of the signing key.
    pub(crate) fn signing(&self) -> Result<SigningIdentity> {
        SigningIdentity::from_secret_text(&self.signing).map_err(|e| Failure::pq(&e, Ctx::Setup))
    }

    /// A fresh copy of the sealing key, if the identity has one.
    pub(crate) fn sealing(&self) -> Result<Option<SealingKey>> {
        self.sealing
            .as_ref()
            .map(|text| SealingKey::from_secret_text(text).map_err(|e| Failure::pq(&e, Ctx::Setup)))
            .transpose()
    }
}

#[pymethods]
impl PyIdentity {
    /// Reads `identity.key` (and `sealing.key` when present) from a
    /// directory written by `keygen`.
    #[staticmethod]
    fn load(py: Python<'_>, directory: PathBuf) -> PyResult<Self> {
        Ok(py.detach(|| -> Result<Self> {
            let path = directory.join("identity.key");
            let key_error = |path: &Path| {
                let path = path.to_path_buf();
                move |e: ringsum_pq::PqError| Failure::pq(&e, Ctx::Setup).context(path.display())
            };
            // read_secret refuses a file others may read; the text is then
            // read again and must give the same key.
            let checked = SigningIdentity::read_secret(&path).map_err(key_error(&path))?;
            let signing = read_secret_bytes(&path)?;
            let parsed = SigningIdentity::from_secret_text(&signing).map_err(key_error(&path))?;
            if parsed.id() != checked.id() {
                return Err(Failure::setup(format!(
                    "{}: changed while it was read",
                    path.display()
                )));
            }
            let sealing_path = directory.join("sealing.key");
            let sealing = if sealing_path.exists() {
                let checked =
                    SealingKey::read_secret(&sealing_path).map_err(key_error(&sealing_path))?;
                let text = read_secret_bytes(&sealing_path)?;
                let parsed =
                    SealingKey::from_secret_text(&text).map_err(key_error(&sealing_path))?;
                if parsed.public() != checked.public() {
                    return Err(Failure::setup(format!(
                        "{}: changed while it was read",
                        sealing_path.display()
                    )));
                }
                Some(text)
            } else {
                None
            };
            Ok(Self {
                id: checked.id(),
                algorithm: checked.algorithm(),
                signing,
                sealing,
            })
        })?)
    }

    /// The member id (64 hex digits).
    #[getter]
    fn id(&self) -> String {
        self.id.to_string()
    }

    /// The signature algorithm.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    /// Whether it has a sealing key (key holders need one).
    #[getter]
    fn is_holder(&self) -> bool {
        self.sealing.is_some()
    }

    fn __repr__(&self) -> String {
        format!("Identity(id={})", self.id)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "an Identity holds secret keys and is not pickled: load it with Identity.load(directory) where it is used",
        ))
    }
}

/// Writes a new file, never over an existing one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| Failure::setup(format!("{}: {e}", path.display())))
}

/// Writes `identity.key` and `identity.pub` (and `sealing.key`,
/// `sealing.pub` for a holder) as `ringsum keygen` does; returns the id.
pub(crate) fn keygen(directory: &Path, holder: bool, hybrid: bool) -> Result<String> {
    std::fs::create_dir_all(directory)
        .map_err(|e| Failure::setup(format!("{}: {e}", directory.display())))?;
    let (sig, kem) = if hybrid {
        (
            SignatureAlgorithm::MlDsa65Ed25519,
            KemAlgorithm::MlKem1024X25519,
        )
    } else {
        (SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024)
    };
    let pq = |e: ringsum_pq::PqError| Failure::pq(&e, Ctx::Setup);
    let identity = SigningIdentity::generate(sig).map_err(pq)?;
    identity
        .write_secret(&directory.join("identity.key"))
        .map_err(pq)?;
    identity
        .write_public(&directory.join("identity.pub"))
        .map_err(pq)?;
    if holder {
        let sealing = SealingKey::generate(kem).map_err(pq)?;
        sealing
            .write_secret(&directory.join("sealing.key"))
            .map_err(pq)?;
        write_new(&directory.join("sealing.pub"), sealing.public().to_bytes())?;
    }
    Ok(identity.id().to_string())
}

/// The shipped per-round-key parameter sets.
pub(crate) fn parameter_sets() -> Vec<&'static str> {
    ParameterSet::builtin_ids()
        .into_iter()
        .filter(|id| round_key_set(id).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::publication_rounds;

    #[test]
    fn publications_claim_only_rounds_of_the_federation_in_their_place() {
        // The announcement of round 1 (the initial model), of round 5, and
        // the publication of the last round.
        assert!(publication_rounds(1, 0, 10).is_ok());
        assert!(publication_rounds(5, 4, 10).is_ok());
        assert!(publication_rounds(10, 10, 10).is_ok());
        // Results beyond the federation's rounds are refused, whatever the
        // envelope says (the envelope's round is checked when it is
        // verified).
        assert!(publication_rounds(12, 11, 10).is_err());
        assert!(publication_rounds(11, 11, 10).is_err());
        assert!(publication_rounds(400, 399, 10).is_err());
        // A result announced two rounds later, or from the future.
        assert!(publication_rounds(7, 5, 10).is_err());
        assert!(publication_rounds(3, 5, 10).is_err());
        assert!(publication_rounds(u64::MAX, u64::MAX, u64::MAX).is_ok());
    }
}

//! The participants of a round: `Client`, `Coordinator` (with
//! `RoundResult`) and `Holder`. Each wraps the protocol's type; the
//! mutable ones sit behind a mutex so that an object can be used from any
//! Python thread, and every call that computes releases the GIL first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use ringsum_core::privacy::{PrivacyError, PrivacyPlan, accountant};
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_net::journal::HolderJournal;
use ringsum_pq::{Envelope, ParticipantId, PqError};
use ringsum_protocol::audit::AuditLog;
use ringsum_protocol::client::{Client, Submission};
use ringsum_protocol::coordinator::{Coordinator, RoundStatus};
use ringsum_protocol::holder::{AnswerJournal, AnsweredSet, Holder, MemoryJournal};
use ringsum_protocol::message::{
    UpdateHead, max_answer_payload, max_set_payload, max_share_payload,
};
use ringsum_protocol::{ProtocolError, RoundOutcome};
use ringsum_threshold::HolderId;

use crate::arrays::{self, Template};
use crate::error::{Ctx, Failure, Kind, Result};
use crate::federation::{PyFederation, PyIdentity, Shared};

/// A non-negative integer argument, as an InputError otherwise.
pub(crate) fn unsigned(value: &Bound<'_, PyAny>, what: &str) -> Result<u64> {
    value.extract::<u64>().map_err(|_| {
        Failure::input(format!(
            "{what} must be a non-negative integer, got {}",
            value
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string())
        ))
    })
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| {
        Failure::new(
            Kind::Base,
            "an earlier call failed inside this object: it cannot be used any more",
        )
    })
}

fn protocol(e: ProtocolError) -> Failure {
    Failure::protocol(&e, Ctx::Message)
}

fn envelope(bytes: &[u8], max_payload: usize, what: &str) -> Result<Envelope> {
    Envelope::from_bytes(bytes, max_payload)
        .map_err(|e| Failure::pq(&e, Ctx::Message).context(what))
}

/// The largest announcement of a round: the previous round's result,
/// which carries the model.
fn max_announcement(federation: &ringsum_protocol::Federation) -> usize {
    federation
        .layout()
        .parameter_count()
        .saturating_mul(4)
        .saturating_add(64)
}

/// Encrypts one update: the Rust call that `Client.submit` makes, also
/// timed by `_bench_rust_submit`.
pub(crate) fn submit_bytes(
    client: &Client,
    round: u64,
    values: &[f32],
    samples: u64,
) -> Result<Vec<u8>> {
    let mut rng = Csprng::from_os().map_err(|e| protocol(e.into()))?;
    let submission = client
        .submit(RoundId(round), values, samples, &mut rng)
        .map_err(protocol)?;
    Ok(submission.to_bytes())
}

/// Clips, quantizes and sums `records` (record after record, each the
/// layout's parameters; a record with a non-finite value counts as a zero
/// gradient), adds this client's noise and encrypts the noised
/// contribution: the Rust call that `Client.submit_private` makes.
pub(crate) fn private_submit_bytes(
    client: &Client,
    plan: &PrivacyPlan,
    round: u64,
    records: &[f32],
) -> Result<Vec<u8>> {
    let mut rng = Csprng::from_os().map_err(|e| protocol(e.into()))?;
    let mut contribution = plan.contribution();
    for (i, record) in records.chunks_exact(plan.dimension().max(1)).enumerate() {
        contribution
            .add_record(record, &mut rng)
            .map_err(|e| Failure::privacy(&e).context(format!("record {i}")))?;
    }
    let noisy = contribution.finish(&mut rng);
    let submission = client
        .submit_private(RoundId(round), noisy, &mut rng)
        .map_err(protocol)?;
    Ok(submission.to_bytes())
}

/// A client of a federation: encrypts its updates.
#[pyclass(module = "ringsum._native", name = "Client", frozen)]
#[derive(Debug)]
pub(crate) struct PyClient {
    pub(crate) inner: Client,
    shared: Arc<Shared>,
    index: usize,
}

impl PyClient {
    pub(crate) fn make(federation: &PyFederation, identity: &PyIdentity) -> Result<Self> {
        let shared = Arc::clone(&federation.shared);
        let index = shared.client_index(identity.id).ok_or_else(|| {
            Failure::setup(format!(
                "identity {} is not a client of federation {}",
                identity.id,
                ringsum_net::federation_hex(shared.federation.id())
            ))
        })?;
        let inner = Client::new(Arc::clone(&shared.federation), identity.signing()?)
            .map_err(|e| Failure::protocol(&e, Ctx::Setup))?;
        Ok(Self {
            inner,
            shared,
            index,
        })
    }

    pub(crate) fn layout(&self) -> &ringsum_core::model::ModelLayout {
        self.shared.federation.layout()
    }
}

#[pymethods]
impl PyClient {
    #[new]
    fn new(py: Python<'_>, federation: &PyFederation, identity: &PyIdentity) -> PyResult<Self> {
        Ok(py.detach(|| Self::make(federation, identity))?)
    }

    /// Its index in the federation's client list.
    #[getter]
    fn index(&self) -> usize {
        self.index
    }

    /// Encrypts `update` (a structure matching the layout) trained on
    /// `samples` records for `round` under a fresh round key; returns the
    /// submission's bytes. The GIL is released while encrypting.
    fn submit<'py>(
        &self,
        py: Python<'py>,
        round: &Bound<'py, PyAny>,
        update: &Bound<'py, PyAny>,
        samples: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let round = unsigned(round, "round")?;
        let samples = unsigned(samples, "samples")?;
        let (values, _) = arrays::read(update, self.layout())?;
        let bytes = py.detach(|| submit_bytes(&self.inner, round, &values, samples))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// In a federation with differential privacy: clips each record's
    /// gradient (a 2-D array of shape (records, parameters), or an
    /// iterable of per-record structures), quantizes and sums them, adds
    /// this client's share of the noise and encrypts the result for
    /// `round`; returns the submission's bytes. A record with a NaN or an
    /// infinity counts as a zero gradient, never as an error: whether a
    /// client submits must not depend on one record. The GIL is released
    /// while the records are summed and encrypted.
    fn submit_private<'py>(
        &self,
        py: Python<'py>,
        round: &Bound<'py, PyAny>,
        gradients: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let round = unsigned(round, "round")?;
        let plan = self
            .shared
            .federation
            .privacy()
            .ok_or_else(|| protocol(ProtocolError::NoPrivacyPlan))?;
        let records = arrays::read_records(gradients, self.layout(), plan.settings().max_records)?;
        let bytes = py.detach(|| private_submit_bytes(&self.inner, plan, round, &records))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __repr__(&self) -> String {
        format!(
            "Client(index={}, federation={})",
            self.index,
            ringsum_net::federation_hex(self.shared.federation.id())
        )
    }
}

/// The outcome of a round.
#[pyclass(module = "ringsum._native", name = "RoundResult", frozen)]
#[derive(Debug)]
pub(crate) struct PyRoundResult {
    /// The round.
    #[pyo3(get)]
    round: u64,
    /// The client indices summed.
    #[pyo3(get)]
    clients: Vec<usize>,
    /// The quantized weight sum: each client's samples / max_weight of
    /// the parameter set, in units of 2^-fraction_bits.
    #[pyo3(get)]
    weight_sum: i64,
    /// The samples each client summed declared in its signed submission,
    /// by client index.
    #[pyo3(get)]
    samples: BTreeMap<usize, u64>,
    /// The declared samples, summed.
    #[pyo3(get)]
    total_samples: u64,
    /// Bound on each parameter's quantization error of the average.
    #[pyo3(get)]
    error_bound: f64,
    /// Holder points whose wrong answers were corrected.
    #[pyo3(get)]
    liars: Vec<u32>,
    /// Holder points whose answers were used.
    #[pyo3(get)]
    used: Vec<u32>,
    /// The new global model.
    #[pyo3(get)]
    model: Py<PyAny>,
    /// The weighted average of the updates.
    #[pyo3(get)]
    average: Py<PyAny>,
    /// The signed result.
    #[pyo3(get)]
    publication: Py<PyBytes>,
    /// With differential privacy: the epsilon the coordinator's finished
    /// rounds have spent so far, this one included (each charged for the
    /// honest clients its set holds at least, [`PrivacyPlan::set_rho`]);
    /// None without.
    #[pyo3(get)]
    epsilon: Option<f64>,
}

#[pymethods]
impl PyRoundResult {
    /// A result from its parts: `Coordinator.finish` makes them; this is
    /// what unpickling calls. It carries no authority of its own: the
    /// signed `publication` is what a participant checks
    /// (`Federation.read_publication`).
    #[new]
    #[pyo3(signature = (
        round, clients, weight_sum, samples, total_samples, error_bound, liars, used, model,
        average, publication, epsilon = None
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of the result, in the order __reduce__ gives them"
    )]
    fn new(
        round: u64,
        clients: Vec<usize>,
        weight_sum: i64,
        samples: BTreeMap<usize, u64>,
        total_samples: u64,
        error_bound: f64,
        liars: Vec<u32>,
        used: Vec<u32>,
        model: Py<PyAny>,
        average: Py<PyAny>,
        publication: Py<PyBytes>,
        epsilon: Option<f64>,
    ) -> Self {
        Self {
            round,
            clients,
            weight_sum,
            samples,
            total_samples,
            error_bound,
            liars,
            used,
            model,
            average,
            publication,
            epsilon,
        }
    }

    /// Pickles as its constructor's arguments.
    #[expect(
        clippy::type_complexity,
        reason = "the constructor's argument tuple, as pickle wants it"
    )]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (
        Bound<'py, pyo3::types::PyType>,
        (
            u64,
            Vec<usize>,
            i64,
            BTreeMap<usize, u64>,
            u64,
            f64,
            Vec<u32>,
            Vec<u32>,
            Py<PyAny>,
            Py<PyAny>,
            Py<PyBytes>,
            Option<f64>,
        ),
    ) {
        let py = slf.py();
        let r = slf.get();
        (
            slf.get_type(),
            (
                r.round,
                r.clients.clone(),
                r.weight_sum,
                r.samples.clone(),
                r.total_samples,
                r.error_bound,
                r.liars.clone(),
                r.used.clone(),
                r.model.clone_ref(py),
                r.average.clone_ref(py),
                r.publication.clone_ref(py),
                r.epsilon,
            ),
        )
    }

    fn __repr__(&self) -> String {
        let epsilon = self
            .epsilon
            .map(|e| format!(", epsilon={e:.4}"))
            .unwrap_or_default();
        format!(
            "RoundResult(round={}, clients={:?}, weight_sum={}, error_bound={:e}, liars={:?}{epsilon})",
            self.round, self.clients, self.weight_sum, self.error_bound, self.liars
        )
    }
}

/// The coordinator, the samples its accepted clients declared in the
/// open round, and the privacy its finished rounds spent.
#[derive(Debug)]
struct CoordinatorState {
    coordinator: Coordinator,
    samples: BTreeMap<ParticipantId, u64>,
    spent: Spent,
}

/// The privacy the coordinator's finished rounds spent: zCDP rho adds up
/// over rounds, epsilon is its conversion at the plan's delta.
#[derive(Clone, Copy, Debug, Default)]
struct Spent {
    rho: f64,
    epsilon: f64,
}

impl Spent {
    /// What is spent after one more round whose sum holds `clients`
    /// submissions, of which all but `min_clients - noise_clients` are
    /// counted as honest ([`PrivacyPlan::set_rho`]).
    fn after_round(self, plan: &PrivacyPlan, clients: usize, min_clients: usize) -> Result<Self> {
        let failed = |e: PrivacyError| Failure::privacy(&e).context("privacy accounting");
        let round = plan
            .set_rho(clients as u64, min_clients as u64)
            .map_err(failed)?;
        let rho = self.rho + round;
        let epsilon = accountant::epsilon_for_rho(rho, plan.conversion_delta())
            .map_err(|e| failed(e.into()))?;
        Ok(Self { rho, epsilon })
    }
}

impl std::ops::Deref for CoordinatorState {
    type Target = Coordinator;

    fn deref(&self) -> &Coordinator {
        &self.coordinator
    }
}

impl std::ops::DerefMut for CoordinatorState {
    fn deref_mut(&mut self) -> &mut Coordinator {
        &mut self.coordinator
    }
}

/// The coordinator of a federation.
#[pyclass(module = "ringsum._native", name = "Coordinator", frozen)]
#[derive(Debug)]
pub(crate) struct PyCoordinator {
    inner: Mutex<CoordinatorState>,
    shared: Arc<Shared>,
    template: Template,
}

impl PyCoordinator {
    fn indices(&self, ids: &[ParticipantId]) -> Result<Vec<usize>> {
        let mut indices = ids
            .iter()
            .map(|id| self.shared.index_of(*id))
            .collect::<Result<Vec<_>>>()?;
        indices.sort_unstable();
        Ok(indices)
    }

    fn holder(&self, point: u32) -> Result<ParticipantId> {
        self.shared
            .federation
            .holders()
            .get(&HolderId(point))
            .copied()
            .ok_or_else(|| {
                Failure::input(format!(
                    "no key holder has point {point} (the points are {:?})",
                    self.shared
                        .federation
                        .holders()
                        .keys()
                        .map(|h| h.0)
                        .collect::<Vec<_>>()
                ))
            })
    }
}

/// What `Coordinator.finish` takes out of the coordinator: the set, the
/// samples its clients declared, the outcome, and the epsilon spent.
type Finished = (
    Vec<ParticipantId>,
    BTreeMap<ParticipantId, u64>,
    RoundOutcome,
    Option<f64>,
);

fn bytes<'py>(py: Python<'py>, envelope: &Envelope) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &envelope.to_bytes())
}

#[pymethods]
impl PyCoordinator {
    #[new]
    #[pyo3(signature = (federation, identity, model, *, audit_log = None))]
    fn new(
        py: Python<'_>,
        federation: &PyFederation,
        identity: &PyIdentity,
        model: &Bound<'_, PyAny>,
        audit_log: Option<PathBuf>,
    ) -> PyResult<Self> {
        let shared = Arc::clone(&federation.shared);
        let (values, template) = arrays::read(model, shared.federation.layout())
            .map_err(|e| e.context("the initial model"))?;
        let inner = py.detach(|| -> Result<Coordinator> {
            let f = &shared.federation;
            let set = f.params().id().to_string();
            let audit = match &audit_log {
                Some(path) => AuditLog::create(f.id(), &set, path)
                    .map_err(|e| Failure::protocol(&e, Ctx::Setup))?,
                None => AuditLog::in_memory(f.id(), &set),
            };
            Coordinator::new(Arc::clone(f), identity.signing()?, values, audit)
                .map_err(|e| Failure::protocol(&e, Ctx::Setup))
        })?;
        Ok(Self {
            inner: Mutex::new(CoordinatorState {
                coordinator: inner,
                samples: BTreeMap::new(),
                spent: Spent::default(),
            }),
            shared,
            template,
        })
    }

    /// The last round opened (0 before the first).
    #[getter]
    fn round(&self, py: Python<'_>) -> PyResult<u64> {
        let status = py.detach(|| lock(&self.inner).map(|c| c.status()))?;
        Ok(match status {
            RoundStatus::Idle { last } => last.0,
            RoundStatus::Collecting { round, .. } | RoundStatus::Answering { round, .. } => round.0,
        })
    }

    /// Where the round stands: phase, round, accepted, answers.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let status = py.detach(|| lock(&self.inner).map(|c| c.status()))?;
        let (phase, round, accepted, answers) = match status {
            RoundStatus::Idle { last } => ("idle", last.0, 0, 0),
            RoundStatus::Collecting { round, accepted } => ("collecting", round.0, accepted, 0),
            RoundStatus::Answering {
                round,
                clients,
                answers,
            } => ("answering", round.0, clients, answers),
        };
        let dict = PyDict::new(py);
        dict.set_item("phase", phase)?;
        dict.set_item("round", round)?;
        dict.set_item("accepted", accepted)?;
        dict.set_item("answers", answers)?;
        Ok(dict)
    }

    /// Opens the next round; returns the signed announcement.
    fn open_round<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let envelope = py.detach(|| -> Result<Envelope> {
            let mut state = lock(&self.inner)?;
            let envelope = state.open_round().map_err(protocol)?;
            state.samples.clear();
            Ok(envelope)
        })?;
        Ok(bytes(py, &envelope))
    }

    /// Checks and adds one submission; returns the client index. On any
    /// error the round's state is unchanged.
    fn accept(&self, py: Python<'_>, submission: &[u8]) -> PyResult<usize> {
        Ok(py.detach(|| -> Result<usize> {
            let decoded =
                Submission::from_bytes(&self.shared.federation, submission).map_err(protocol)?;
            // The declared samples, read before the submission is consumed
            // (accept_submission checks the head again, signed).
            let samples = UpdateHead::decode(decoded.update.payload())
                .map(|(head, _)| head.samples)
                .ok();
            let mut state = lock(&self.inner)?;
            let client = state.accept_submission(decoded).map_err(protocol)?;
            if let Some(samples) = samples {
                state.samples.insert(client, samples);
            }
            self.shared.index_of(client)
        })?)
    }

    /// The client indices accepted in the open round.
    #[getter]
    fn accepted(&self, py: Python<'_>) -> PyResult<Vec<usize>> {
        let ids = py.detach(|| lock(&self.inner).map(|c| c.accepted()))?;
        Ok(self.indices(&ids)?)
    }

    /// Signs the set of accepted clients; returns the request for the
    /// holders.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let envelope = py.detach(|| lock(&self.inner)?.close().map_err(protocol))?;
        Ok(bytes(py, &envelope))
    }

    /// The sealed shares for holder `point` from the round's clients.
    fn shares_for<'py>(
        &self,
        py: Python<'py>,
        point: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let point = unsigned(point, "point")?;
        let point = u32::try_from(point)
            .map_err(|_| Failure::input(format!("no key holder has point {point}")))?;
        let holder = self.holder(point)?;
        let shares: Vec<Vec<u8>> = py.detach(|| {
            lock(&self.inner).map(|c| {
                c.shares_for(holder)
                    .into_iter()
                    .map(Envelope::to_bytes)
                    .collect()
            })
        })?;
        Ok(shares.iter().map(|s| PyBytes::new(py, s)).collect())
    }

    /// Adds one holder's answer; returns the number of answers so far.
    fn accept_answer(&self, py: Python<'_>, answer: &[u8]) -> PyResult<usize> {
        Ok(py.detach(|| -> Result<usize> {
            let envelope = envelope(
                answer,
                max_answer_payload(&self.shared.federation),
                "the answer",
            )?;
            lock(&self.inner)?.accept_answer(envelope).map_err(protocol)
        })?)
    }

    /// With differential privacy, the epsilon the finished rounds have
    /// spent so far (0 before the first); None without.
    #[getter]
    fn epsilon(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        let spent = py.detach(|| lock(&self.inner).map(|c| c.spent))?;
        Ok(self.shared.federation.privacy().map(|_| spent.epsilon))
    }

    /// Combines the answers, decodes and publishes the round.
    fn finish(&self, py: Python<'_>) -> PyResult<PyRoundResult> {
        let (clients, samples, outcome, epsilon) = py.detach(|| -> Result<Finished> {
            let mut state = lock(&self.inner)?;
            let clients = state.accepted();
            // Reckoned before the round is finished, so that a failure here
            // leaves the round as it was; charged once the holders'
            // answers were combined, whether the round then published or
            // failed to decode (the coordinator may know the noised sum
            // either way).
            let spent = match (self.shared.federation.privacy(), state.status()) {
                (Some(plan), RoundStatus::Answering { clients, .. }) => {
                    let min_clients = self.shared.federation.policy().min_clients;
                    Some(state.spent.after_round(plan, clients, min_clients)?)
                }
                _ => None,
            };
            let finished = state.finish();
            if let Some(spent) = spent
                && matches!(state.status(), RoundStatus::Idle { .. })
            {
                state.spent = spent;
            }
            let outcome = finished.map_err(protocol)?;
            Ok((
                clients,
                std::mem::take(&mut state.samples),
                outcome,
                spent.map(|s| s.epsilon),
            ))
        })?;
        let samples = clients
            .iter()
            .map(|id| {
                Ok((
                    self.shared.index_of(*id)?,
                    samples.get(id).copied().unwrap_or(0),
                ))
            })
            .collect::<Result<BTreeMap<usize, u64>>>()?;
        let average = outcome.average.average.concat();
        Ok(PyRoundResult {
            round: outcome.result.round,
            clients: self.indices(&clients)?,
            weight_sum: outcome.result.weight_sum,
            total_samples: samples.values().fold(0u64, |a, s| a.saturating_add(*s)),
            samples,
            error_bound: outcome.result.error_bound,
            liars: outcome.liars.iter().map(|h| h.0).collect(),
            used: outcome.used.iter().map(|h| h.0).collect(),
            model: self.template.build(py, &outcome.result.model)?.unbind(),
            average: self.template.build(py, &average)?.unbind(),
            publication: bytes(py, &outcome.envelope).unbind(),
            epsilon,
        })
    }

    /// Ends the open round without a result, with `reason` in the log.
    fn abandon(&self, py: Python<'_>, reason: &str) -> PyResult<()> {
        Ok(py.detach(|| -> Result<()> {
            let mut state = lock(&self.inner)?;
            // A round abandoned after its set was sent to the holders may
            // have been opened (the answers may be in, or arrive later at
            // whoever holds them): with differential privacy it is charged
            // the plan's worst case, a set of `min_clients`.
            let spent = match (self.shared.federation.privacy(), state.status()) {
                (Some(plan), RoundStatus::Answering { .. }) => {
                    let min_clients = self.shared.federation.policy().min_clients;
                    Some(state.spent.after_round(plan, min_clients, min_clients)?)
                }
                _ => None,
            };
            state.abandon(reason).map_err(protocol)?;
            if let Some(spent) = spent {
                state.spent = spent;
            }
            Ok(())
        })?)
    }

    /// The current global model, in the initial model's structure.
    fn model<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let model = py.detach(|| lock(&self.inner).map(|c| c.model().to_vec()))?;
        self.template.build(py, &model)
    }

    /// The signed audit log's lines (JSON).
    fn audit_lines(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| lock(&self.inner).map(|c| c.audit().lines().to_vec()))?)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let round = self.round(py).unwrap_or_default();
        format!(
            "Coordinator(federation={}, round={round})",
            ringsum_net::federation_hex(self.shared.federation.id())
        )
    }
}

/// A holder's journal: in memory, or a redb file.
#[derive(Debug)]
enum Journal {
    Memory(MemoryJournal),
    File(HolderJournal),
}

impl AnswerJournal for Journal {
    type Error = ringsum_net::StoreError;

    fn answered(&self, round: RoundId) -> Result<Option<AnsweredSet>, Self::Error> {
        match self {
            Self::Memory(j) => match j.answered(round) {
                Ok(a) => Ok(a),
                Err(never) => match never {},
            },
            Self::File(j) => j.answered(round),
        }
    }

    fn record(&mut self, round: RoundId, answered: &AnsweredSet) -> Result<(), Self::Error> {
        match self {
            Self::Memory(j) => match j.record(round, answered) {
                Ok(()) => Ok(()),
                Err(never) => match never {},
            },
            Self::File(j) => j.record(round, answered),
        }
    }
}

/// A key holder of a federation.
#[pyclass(module = "ringsum._native", name = "Holder", frozen)]
#[derive(Debug)]
pub(crate) struct PyHolder {
    inner: Mutex<Holder<Journal>>,
    shared: Arc<Shared>,
    point: u32,
}

impl PyHolder {
    fn receive(&self, holder: &mut Holder<Journal>, share: &[u8]) -> Result<usize> {
        let f = &self.shared.federation;
        let share = envelope(share, max_share_payload(f), "the share")?;
        let client = holder.receive_share(&share).map_err(protocol)?;
        self.shared.index_of(client)
    }

    /// As [`Self::receive`], but the exact share accepted before (a
    /// replay, which the protocol refuses) counts as held: `answer_round`
    /// called again with the same shares after a failure part-way through
    /// must not trip over the shares its first call already kept.
    fn receive_again(&self, holder: &mut Holder<Journal>, share: &[u8]) -> Result<()> {
        let f = &self.shared.federation;
        let share = envelope(share, max_share_payload(f), "the share")?;
        match holder.receive_share(&share) {
            Ok(_) | Err(ProtocolError::Pq(PqError::Replay(_))) => Ok(()),
            Err(e) => Err(protocol(e)),
        }
    }

    fn follow(&self, holder: &mut Holder<Journal>, announcement: &[u8]) -> Result<u64> {
        let f = &self.shared.federation;
        let announcement = envelope(announcement, max_announcement(f), "the announcement")?;
        holder.follow(&announcement).map(|r| r.0).map_err(protocol)
    }

    fn answer(&self, holder: &mut Holder<Journal>, request: &[u8]) -> Result<Vec<u8>> {
        let f = &self.shared.federation;
        let request = envelope(request, max_set_payload(f), "the request")?;
        holder
            .answer(&request)
            .map(|a| a.to_bytes())
            .map_err(protocol)
    }
}

#[pymethods]
impl PyHolder {
    #[new]
    #[pyo3(signature = (federation, identity, *, journal = None))]
    fn new(
        py: Python<'_>,
        federation: &PyFederation,
        identity: &PyIdentity,
        journal: Option<PathBuf>,
    ) -> PyResult<Self> {
        let shared = Arc::clone(&federation.shared);
        let inner = py.detach(|| -> Result<Holder<Journal>> {
            let f = &shared.federation;
            let point = f.holder_point(identity.id).ok_or_else(|| {
                Failure::setup(format!(
                    "identity {} is not a key holder of federation {}",
                    identity.id,
                    ringsum_net::federation_hex(f.id())
                ))
            })?;
            let sealing = identity.sealing()?.ok_or_else(|| {
                Failure::setup(format!(
                    "identity {} has no sealing key (sealing.key): key holders need one",
                    identity.id
                ))
            })?;
            let journal = match &journal {
                Some(path) => Journal::File(
                    HolderJournal::open(path, f.id(), point)
                        .map_err(|e| Failure::net(&e.into(), Ctx::Setup))?,
                ),
                None => Journal::Memory(MemoryJournal::default()),
            };
            Holder::new(Arc::clone(f), identity.signing()?, sealing, journal)
                .map_err(|e| Failure::protocol(&e, Ctx::Setup))
        })?;
        let point = inner.point().0;
        Ok(Self {
            inner: Mutex::new(inner),
            shared,
            point,
        })
    }

    /// Its Shamir point.
    #[getter]
    fn point(&self) -> u32 {
        self.point
    }

    /// Follows the coordinator's announcement of a round; returns the round.
    #[pyo3(name = "follow")]
    fn py_follow(&self, py: Python<'_>, announcement: &[u8]) -> PyResult<u64> {
        Ok(py.detach(|| self.follow(&mut *lock(&self.inner)?, announcement))?)
    }

    /// Checks, opens and keeps a client's sealed share; returns the client
    /// index.
    fn receive_share(&self, py: Python<'_>, share: &[u8]) -> PyResult<usize> {
        Ok(py.detach(|| self.receive(&mut *lock(&self.inner)?, share))?)
    }

    /// Answers the coordinator's signed request for a set of clients.
    #[pyo3(name = "answer")]
    fn py_answer<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let answer = py.detach(|| self.answer(&mut *lock(&self.inner)?, request))?;
        Ok(PyBytes::new(py, &answer))
    }

    /// `follow`, every `receive_share`, then `answer`, in one call.
    fn answer_round<'py>(
        &self,
        py: Python<'py>,
        announcement: &[u8],
        shares: Vec<Vec<u8>>,
        request: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let answer = py.detach(|| -> Result<Vec<u8>> {
            let mut holder = lock(&self.inner)?;
            self.follow(&mut holder, announcement)?;
            for (i, share) in shares.iter().enumerate() {
                self.receive_again(&mut holder, share)
                    .map_err(|e| e.context(format!("share {i}")))?;
            }
            self.answer(&mut holder, request)
        })?;
        Ok(PyBytes::new(py, &answer))
    }

    fn __repr__(&self) -> String {
        format!(
            "Holder(point={}, federation={})",
            self.point,
            ringsum_net::federation_hex(self.shared.federation.id())
        )
    }
}

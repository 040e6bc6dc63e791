//! The Python exceptions of `ringsum` and the one place where the Rust
//! errors become them.
//!
//! Every error of the crates underneath is sorted into one class of the
//! contract (python/ringsum/_native.pyi) by matching its variant; the
//! message is the error's `Display` text followed by those of its sources
//! that the text does not already contain.

use std::error::Error as StdError;
use std::fmt;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use ringsum_core::CoreError;
use ringsum_core::privacy::PrivacyError;
use ringsum_net::{NetError, StoreError};
use ringsum_pq::PqError;
use ringsum_protocol::ProtocolError;
use ringsum_threshold::ThresholdError;
use ringsum_wire::WireError;

create_exception!(
    ringsum,
    RingsumError,
    PyException,
    "The base of every ringsum error; the message is the Rust error's text."
);
create_exception!(
    ringsum,
    FormatError,
    RingsumError,
    "Bytes or files that do not decode (truncated, wrong version, too large)."
);
create_exception!(
    ringsum,
    AuthenticationError,
    RingsumError,
    "A bad signature, a signer that is not a member, bytes of another federation."
);
create_exception!(
    ringsum,
    RefusedError,
    RingsumError,
    "The protocol refuses: wrong round or phase, a replay or a duplicate, too few clients, a second set for a holder, a missing share."
);
create_exception!(
    ringsum,
    RoundFailedError,
    RingsumError,
    "The round could not be opened; the coordinator's next round still works."
);
create_exception!(
    ringsum,
    SetupError,
    RingsumError,
    "Keys, descriptions or federations that are invalid (2t <= n, an identity that is not a member in the role asked for, unreadable key files)."
);

/// `InputError(RingsumError, ValueError)`: two bases, which
/// `create_exception!` cannot express, so the class is made with `type()`
/// when the module is first imported.
static INPUT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const INPUT_ERROR_DOC: &str = "Bad values from the caller: a dtype that is not float16/32/64, a structure or shape that does not match the layout, NaN or infinity (naming the tensor and index), samples outside the policy, an unknown parameter set.";

/// The `InputError` class.
///
/// # Errors
/// If Python cannot make the class (out of memory).
pub(crate) fn input_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INPUT_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [py.get_type::<RingsumError>(), py.get_type::<PyValueError>()],
            )?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "ringsum")?;
            namespace.set_item("__doc__", INPUT_ERROR_DOC)?;
            let class = py
                .get_type::<PyType>()
                .call1(("InputError", bases, namespace))?;
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|class| class.bind(py))
}

/// The classes of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `RingsumError` itself: what fits no other class (the OS's random
    /// generator, a storage failure, a poisoned lock).
    Base,
    /// `InputError`.
    Input,
    /// `FormatError`.
    Format,
    /// `AuthenticationError`.
    Authentication,
    /// `RefusedError`.
    Refused,
    /// `RoundFailedError`.
    RoundFailed,
    /// `SetupError`.
    Setup,
}

/// Where an error happened, for the few variants whose class depends on
/// it: `ProtocolError::Setup` is a setup problem in a constructor and an
/// authentication problem in a message ("not signed by the coordinator").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// Building a participant or a federation.
    Setup,
    /// Handling a message or a value.
    Message,
}

/// An error on its way to Python: its class and its message.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: Kind,
    message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of the crate's own functions.
pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    /// A failure of class `kind` saying `message`.
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An `InputError`.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }

    /// A `SetupError`.
    pub(crate) fn setup(message: impl Into<String>) -> Self {
        Self::new(Kind::Setup, message)
    }

    /// A protocol error met in `ctx`.
    pub(crate) fn protocol(error: &ProtocolError, ctx: Ctx) -> Self {
        Self::new(protocol_kind(error, ctx), full_message(error))
    }

    /// A service-layer error met in `ctx`.
    pub(crate) fn net(error: &NetError, ctx: Ctx) -> Self {
        Self::new(net_kind(error, ctx), full_message(error))
    }

    /// A differential-privacy error: settings or a record's gradient.
    pub(crate) fn privacy(error: &PrivacyError) -> Self {
        Self::new(privacy_kind(error), full_message(error))
    }

    /// A signature, key or envelope error met in `ctx`.
    pub(crate) fn pq(error: &PqError, ctx: Ctx) -> Self {
        Self::new(pq_kind(error, ctx), full_message(error))
    }

    /// The same failure with `context` before its message.
    pub(crate) fn context(self, context: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }

    /// The class of the failure.
    #[cfg(test)]
    pub(crate) const fn kind(&self) -> Kind {
        self.kind
    }

    /// The Python exception.
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let message = self.message;
        match self.kind {
            Kind::Base => RingsumError::new_err(message),
            Kind::Format => FormatError::new_err(message),
            Kind::Authentication => AuthenticationError::new_err(message),
            Kind::Refused => RefusedError::new_err(message),
            Kind::RoundFailed => RoundFailedError::new_err(message),
            Kind::Setup => SetupError::new_err(message),
            Kind::Input => match input_error_type(py) {
                Ok(class) => PyErr::from_type(class.clone(), (message,)),
                Err(e) => e,
            },
        }
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> Self {
        Python::attach(|py| failure.into_pyerr(py))
    }
}

/// The error's text, then each source's that it does not already contain.
pub(crate) fn full_message(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn protocol_kind(error: &ProtocolError, ctx: Ctx) -> Kind {
    use ProtocolError as E;
    match error {
        E::Pq(e) => pq_kind(e, ctx),
        E::Core(e) => core_kind(e),
        E::Threshold(e) => threshold_kind(e),
        E::Wire(e) => wire_kind(e),
        E::Math(e) => math_kind(e),
        E::TooFewSamples { .. } | E::TooManySamples { .. } | E::PrivateSampleCount { .. } => {
            Kind::Input
        }
        // The wrong call for the federation: plain values where it trains
        // with differential privacy, or the other way round.
        E::PrivacyRequired | E::NoPrivacyPlan | E::ForeignContribution { .. } => Kind::Refused,
        // A round that cannot be decoded ends, and so does one whose weight
        // disagrees with the declared samples.
        E::RoundFailed { .. } | E::WeightMismatch { .. } => Kind::RoundFailed,
        E::WrongPhase(_)
        | E::NotEnoughClients { .. }
        | E::NotEnoughHolders { .. }
        | E::RoundOutOfRange { .. }
        | E::RoundNotCollected { .. }
        | E::ShareCount { .. }
        | E::SetTooSmall { .. }
        | E::NotAClient(_)
        | E::SetNotCanonical(_)
        | E::MissingShare(_)
        | E::SetMismatch(_)
        | E::AlreadyAnswered { .. }
        | E::WrongSet => Kind::Refused,
        // A share bound to another update, or signed by another client.
        E::ShareBinding { .. } => Kind::Authentication,
        // In a constructor: the identity is not a member in this role. In a
        // message: it is not signed by whom it must be.
        E::Setup(_) => match ctx {
            Ctx::Setup => Kind::Setup,
            Ctx::Message => Kind::Authentication,
        },
        // Privacy settings: a value out of range is the caller's, a target
        // the parameter set cannot reach the setup's.
        E::Federation(ringsum_protocol::SetupError::Privacy(e)) => privacy_kind(e),
        // 2t <= n, a policy out of bounds, a participant twice.
        E::Federation(_) => Kind::Setup,
        E::Audit { .. } => Kind::Format,
        // The audit log file (it exists already, or cannot be written).
        E::Io { .. } => match ctx {
            Ctx::Setup => Kind::Setup,
            Ctx::Message => Kind::Base,
        },
        E::Journal(_) => Kind::Base,
        _ => Kind::Base,
    }
}

fn privacy_kind(error: &PrivacyError) -> Kind {
    use PrivacyError as E;
    match error {
        // A setting out of range, or a record the caller got wrong.
        E::Epsilon { .. }
        | E::Delta { .. }
        | E::Clip { .. }
        | E::LearningRate { .. }
        | E::Count { .. }
        | E::GradientLength { .. }
        | E::TooManyRecords { .. } => Kind::Input,
        // Settings that are valid but cannot be met with this parameter
        // set, model and federation.
        E::SlotOverflow { .. }
        | E::WeightOutOfRange { .. }
        | E::LearningRateInexact { .. }
        | E::TooMuchNoise
        | E::SamplerSlack { .. }
        | E::Accountant(_)
        | E::Sampler(_) => Kind::Setup,
    }
}

fn pq_kind(error: &PqError, ctx: Ctx) -> Kind {
    use PqError as E;
    match error {
        E::UnknownAlgorithm { .. }
        | E::UnsupportedVersion { .. }
        | E::UnknownKind(_)
        | E::Malformed { .. }
        | E::TooLarge { .. } => match ctx {
            // A key file that does not parse.
            Ctx::Setup => Kind::Setup,
            Ctx::Message => Kind::Format,
        },
        E::InvalidPublicKey(_) => match ctx {
            Ctx::Setup => Kind::Setup,
            Ctx::Message => Kind::Authentication,
        },
        E::BadSignature
        | E::UnknownSender(_)
        | E::RevokedSender(_)
        | E::RotatedSender { .. }
        | E::AlgorithmMismatch { .. }
        | E::Unauthorized { .. }
        | E::WrongFederation
        | E::WrongParameterSet { .. }
        | E::SealOpenFailed
        | E::SealMismatch(_) => Kind::Authentication,
        E::WrongRound { .. }
        | E::WrongKind { .. }
        | E::WrongRecipient { .. }
        | E::WrongEpoch { .. }
        | E::Replay(_)
        | E::DuplicateSubmission { .. }
        | E::UnaddressedShare
        | E::ForeignPending => Kind::Refused,
        E::PolicyViolation { .. }
        | E::NotASealingRecipient(_)
        | E::AlreadyRegistered(_)
        | E::BadRotationProof
        | E::InsecurePermissions { .. }
        | E::Io { .. } => Kind::Setup,
        E::Entropy(_) => Kind::Base,
        _ => Kind::Base,
    }
}

fn core_kind(error: &CoreError) -> Kind {
    use CoreError as E;
    match error {
        E::NonFiniteValue { .. }
        | E::CountMismatch { .. }
        | E::InvalidWeight { .. }
        | E::InvalidLayout { .. }
        | E::UnknownParameterSet { .. } => Kind::Input,
        E::LayoutMismatch { .. }
        | E::RoundMismatch { .. }
        | E::ParameterMismatch { .. }
        | E::TooManyClients { .. } => Kind::Refused,
        E::NonZeroTruncation { .. } | E::SlotValueOutOfRange { .. } => Kind::Format,
        E::KeySumOutOfRange { .. }
        | E::ImplausibleSum { .. }
        | E::DecodeOverflow { .. }
        | E::NoWeight { .. }
        | E::NonZeroPadding { .. } => Kind::RoundFailed,
        // The shipped parameter sets' own checks.
        E::Io { .. }
        | E::MalformedParameters { .. }
        | E::InvalidParameter { .. }
        | E::SecurityBoundExceeded { .. }
        | E::UnknownSecurityBound { .. }
        | E::NoiseTooNarrow { .. }
        | E::AmbiguousPrimes { .. }
        | E::CollectiveKeyRemoved { .. }
        | E::SecretNotCovered { .. }
        | E::ShareFieldTooSmall { .. }
        | E::IdMismatch { .. }
        | E::InvalidId { .. }
        | E::OutOfRange { .. }
        | E::SlotOverflow { .. }
        | E::NoiseBudgetExceeded { .. } => Kind::Setup,
        E::Math(e) => math_kind(e),
        _ => Kind::Base,
    }
}

fn threshold_kind(error: &ThresholdError) -> Kind {
    use ThresholdError as E;
    match error {
        E::EmptyCommittee
        | E::ThresholdOutOfRange { .. }
        | E::TooManyHolders { .. }
        | E::InvalidHolderId { .. }
        | E::DuplicateHolder { .. }
        | E::ShareFieldOutOfRange { .. }
        | E::ShareFieldNotPrime { .. }
        | E::ThresholdNotMajority { .. }
        | E::InvalidShareDegree { .. }
        | E::LiftBoundTooLarge { .. } => Kind::Setup,
        E::ShareFieldMismatch { .. }
        | E::ShareLengthMismatch { .. }
        | E::ShareElementOutOfRange { .. }
        | E::ShareEncodingLength { .. }
        | E::UnknownShareTag { .. }
        | E::UnsupportedShareVersion { .. }
        | E::ShareHeaderMismatch { .. }
        | E::NonzeroSharePadding { .. } => Kind::Format,
        E::NotShareHolder { .. } => Kind::Authentication,
        E::TooFewAnswers { .. } => Kind::Refused,
        E::InconsistentAnswers { .. } | E::KeySumOutOfBound { .. } => Kind::RoundFailed,
        _ => Kind::Base,
    }
}

fn wire_kind(error: &WireError) -> Kind {
    match error {
        WireError::Core(e) => core_kind(e),
        // Everything else is bytes that do not decode to this federation's
        // update: too large, not canonical, another layout or version.
        _ => Kind::Format,
    }
}

fn math_kind(error: &ringsum_math::MathError) -> Kind {
    match error {
        ringsum_math::MathError::Entropy(_) => Kind::Base,
        // Values out of range in decoded data.
        _ => Kind::Format,
    }
}

fn net_kind(error: &NetError, ctx: Ctx) -> Kind {
    use NetError as E;
    match error {
        E::DescriptionJson(_)
        | E::DescriptionVersion { .. }
        | E::NotHex { .. }
        | E::PrivacyNotExact { .. } => Kind::Format,
        E::Key { .. } | E::NotAMember { .. } | E::Io { .. } => Kind::Setup,
        E::CollectiveKeySet { .. } => Kind::Input,
        E::Protocol(e) => protocol_kind(e, ctx),
        E::Pq(e) => pq_kind(e, ctx),
        E::Store(e) => match e {
            StoreError::Database { .. } | StoreError::Foreign { .. } => Kind::Setup,
            StoreError::Corrupt { .. } => Kind::Format,
            StoreError::SecondSet { .. } => Kind::Refused,
            _ => Kind::Base,
        },
        E::Publication { .. } | E::FederationMismatch { .. } | E::FederationMisnamed { .. } => {
            Kind::Authentication
        }
        _ => Kind::Base,
    }
}

#[cfg(test)]
mod tests {
    use ringsum_pq::ParticipantId;

    use super::*;

    #[test]
    fn variants_fall_into_the_contract_classes() {
        let kind = |e: ProtocolError| Failure::protocol(&e, Ctx::Message).kind();
        assert_eq!(
            kind(ProtocolError::TooFewSamples { samples: 0, min: 1 }),
            Kind::Input
        );
        assert_eq!(kind(PqError::BadSignature.into()), Kind::Authentication);
        assert_eq!(kind(PqError::WrongFederation.into()), Kind::Authentication);
        assert_eq!(
            kind(PqError::Replay(ParticipantId::BROADCAST).into()),
            Kind::Refused
        );
        assert_eq!(
            kind(PqError::malformed("submission", "truncated").into()),
            Kind::Format
        );
        assert_eq!(
            kind(ProtocolError::AlreadyAnswered { round: 1 }),
            Kind::Refused
        );
        assert_eq!(
            kind(ProtocolError::RoundFailed {
                round: 1,
                reason: "x".into()
            }),
            Kind::RoundFailed
        );
        assert_eq!(kind(ProtocolError::Setup("x".into())), Kind::Authentication);
        assert_eq!(
            Failure::protocol(&ProtocolError::Setup("x".into()), Ctx::Setup).kind(),
            Kind::Setup
        );
        assert_eq!(
            kind(
                ringsum_protocol::SetupError::ThresholdNotMajority {
                    holders: 2,
                    threshold: 1
                }
                .into()
            ),
            Kind::Setup
        );
    }

    #[test]
    fn privacy_errors_are_the_callers_or_the_setups() {
        let setup = |e: PrivacyError| {
            let e = ProtocolError::from(ringsum_protocol::SetupError::from(e));
            Failure::protocol(&e, Ctx::Setup)
        };
        let epsilon = setup(PrivacyError::Epsilon { value: -1.0 });
        assert_eq!(epsilon.kind(), Kind::Input);
        assert_eq!(
            epsilon.to_string(),
            "privacy: epsilon must be a positive number, got -1"
        );
        let overflow = PrivacyError::SlotOverflow {
            clients: 3,
            slot_bits: 40,
            needed_bits: 41,
            scale_bits: 0,
        };
        assert_eq!(setup(overflow).kind(), Kind::Setup);
        let record = Failure::privacy(&PrivacyError::TooManyRecords { max: 3 });
        assert_eq!(record.kind(), Kind::Input);
        let kind = |e: ProtocolError| Failure::protocol(&e, Ctx::Message).kind();
        assert_eq!(kind(ProtocolError::PrivacyRequired), Kind::Refused);
        assert_eq!(kind(ProtocolError::NoPrivacyPlan), Kind::Refused);
        assert_eq!(
            kind(ProtocolError::PrivateSampleCount {
                samples: 1,
                expected: 2
            }),
            Kind::Input
        );
    }

    #[test]
    fn messages_carry_their_sources_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let error = ProtocolError::Io {
            path: "audit.log".into(),
            source: io,
        };
        assert_eq!(full_message(&error), "audit.log: gone");
        let json = serde_json::from_str::<serde_json::Value>("{").err();
        let Some(json) = json else {
            return;
        };
        let text = full_message(&NetError::DescriptionJson(json));
        assert!(text.starts_with("federation description: "), "{text}");
        assert_eq!(text.matches("EOF").count(), 1, "{text}");
    }
}

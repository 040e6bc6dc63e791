//! A client's round: one message ([`Submission`]) holding its signed,
//! encrypted update and, for every key holder, a sealed Shamir share of the
//! round's fresh secret, signed and bound to the update.

use std::sync::Arc;

use ringsum_core::privacy::NoisyContribution;
use ringsum_core::round::{RoundContext, RoundSecret, RoundUpdate};
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_pq::codec::{Reader, put_len};
use ringsum_pq::{Envelope, MessageKind, PqError, SealContext, SigningIdentity, seal_round_share};
use ringsum_threshold::shamir::{AnswerKey, encode_client_share, share_secret};

use crate::error::{ProtocolError, Result};
use crate::message::{
    KeyCommitment, SubmissionDigest, UpdateHead, max_share_payload, max_update_payload,
    share_binding,
};
use crate::spec::Federation;

/// A client of a federation.
#[derive(Debug)]
pub struct Client {
    federation: Arc<Federation>,
    identity: Arc<SigningIdentity>,
}

impl Client {
    /// A client of `federation` with its signing identity.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] for an identity that is not a client of the
    /// federation.
    pub fn new(
        federation: Arc<Federation>,
        identity: impl Into<Arc<SigningIdentity>>,
    ) -> Result<Self> {
        let identity = identity.into();
        if !federation.clients().contains(&identity.id()) {
            return Err(ProtocolError::Setup(
                "this identity is not a client of the federation".into(),
            ));
        }
        Ok(Self {
            federation,
            identity,
        })
    }

    /// The federation.
    #[must_use]
    pub fn federation(&self) -> &Arc<Federation> {
        &self.federation
    }

    /// Encrypts `values` (flattened in layout order) trained on `samples`
    /// records for `round` under a fresh secret, which is consumed: it
    /// never encrypts anything else. Shares the secret among the holders,
    /// seals each share with the round's answer key to its holder, and
    /// signs everything. A client that restarts resends the bytes of the
    /// returned submission ([`Submission::to_bytes`]); it never calls this
    /// again for the same round unless the coordinator refused the
    /// submission.
    ///
    /// # Errors
    /// [`ProtocolError::RoundOutOfRange`],
    /// [`ProtocolError::TooFewSamples`] / [`ProtocolError::TooManySamples`]
    /// against the policy; the core layer's for values that do not match
    /// the layout.
    pub fn submit(
        &self,
        round: RoundId,
        values: &[f32],
        samples: u64,
        rng: &mut Csprng,
    ) -> Result<Submission> {
        if self.federation.privacy().is_some() {
            return Err(ProtocolError::PrivacyRequired);
        }
        self.submit_with(round, samples, rng, |secret, federation, context, rng| {
            secret.encrypt_update(
                federation.packing(),
                federation.layout(),
                context,
                values,
                samples,
                rng,
            )
        })
    }

    /// As [`Self::submit`] for a differentially private contribution, which
    /// it consumes (a contribution's noise is used once)
    /// ([`ringsum_core::privacy::Contribution::finish`]): its values and
    /// weight are encrypted as they are, and the submission declares the
    /// plan's public count that gives the weight
    /// ([`PrivacyPlan::declared_samples`]); the true record count is never
    /// sent. The contribution comes from the federation's plan
    /// ([`Federation::privacy`]).
    ///
    /// # Errors
    /// As [`Self::submit`]; the core layer's for values that do not fit the
    /// layout or the slots.
    pub fn submit_private(
        &self,
        round: RoundId,
        contribution: NoisyContribution,
        rng: &mut Csprng,
    ) -> Result<Submission> {
        let plan = self
            .federation
            .privacy()
            .ok_or(ProtocolError::NoPrivacyPlan)?;
        if contribution.weight() != plan.weight() {
            return Err(ProtocolError::ForeignContribution {
                weight: contribution.weight(),
                expected: plan.weight(),
            });
        }
        let declared_samples = plan.declared_samples();
        self.submit_with(
            round,
            declared_samples,
            rng,
            |secret, federation, context, rng| {
                secret.encrypt_quantized(
                    federation.packing(),
                    federation.layout(),
                    context,
                    contribution.weight(),
                    contribution.values(),
                    rng,
                )
            },
        )
    }

    /// The submission of one round: a fresh secret, its shares, and the
    /// update `encrypt` makes under it.
    fn submit_with(
        &self,
        round: RoundId,
        samples: u64,
        rng: &mut Csprng,
        encrypt: impl FnOnce(
            RoundSecret,
            &Federation,
            &RoundContext,
            &mut Csprng,
        ) -> ringsum_core::Result<RoundUpdate>,
    ) -> Result<Submission> {
        let federation = &*self.federation;
        federation.check_round(round)?;
        check_samples(federation, samples)?;
        let context = federation.round_context(round);
        let secret = RoundSecret::generate(federation.params(), rng);
        let shares = share_secret(federation.committee(), secret.coefficients(), rng)?;
        let key = AnswerKey::random(rng);
        let update = encrypt(secret, federation, &context, rng)?;
        let head = UpdateHead {
            samples,
            key_commitment: KeyCommitment(key.commitment()),
        };
        let payload = head.encode(&ringsum_wire::encode_round_update(&update));
        let update = Envelope::sign(
            &self.identity,
            federation.routing(
                round,
                MessageKind::UpdateSubmission,
                federation.coordinator(),
            ),
            payload,
        )?;
        let binding = share_binding(SubmissionDigest(update.digest()), head.key_commitment);
        let mut sealed = Vec::with_capacity(shares.len());
        for (point, share) in &shares {
            let holder = *federation
                .holders()
                .get(point)
                .ok_or_else(|| ProtocolError::Setup(format!("no holder at point {}", point.0)))?;
            let context = SealContext {
                federation: federation.id(),
                sender: self.identity.id(),
                recipient: holder,
                epoch: 0,
                round: round.0,
            };
            sealed.push(seal_round_share(
                &self.identity,
                federation.registry(),
                context,
                federation.params().id().as_str(),
                &binding,
                &encode_client_share(&key, share),
            )?);
        }
        Ok(Submission {
            update,
            shares: sealed,
        })
    }
}

/// Checks a declared sample count against the policy.
///
/// In a federation with differential privacy every submission declares
/// the plan's public constant, which sets the weight of the step: another
/// count would weigh that client's (noised) gradients differently.
pub(crate) fn check_samples(federation: &Federation, samples: u64) -> Result<()> {
    if let Some(plan) = federation.privacy()
        && samples != plan.declared_samples()
    {
        return Err(ProtocolError::PrivateSampleCount {
            samples,
            expected: plan.declared_samples(),
        });
    }
    let policy = federation.policy();
    if samples < policy.min_samples {
        return Err(ProtocolError::TooFewSamples {
            samples,
            min: policy.min_samples,
        });
    }
    if samples > policy.max_weight {
        return Err(ProtocolError::TooManySamples {
            samples,
            max: policy.max_weight,
        });
    }
    Ok(())
}

/// A client's message of one round: its signed update (to the coordinator)
/// and one signed, sealed key share per holder (forwarded by the
/// coordinator).
#[derive(Clone, Debug)]
pub struct Submission {
    /// The signed update.
    pub update: Envelope,
    /// The sealed shares, one per holder.
    pub shares: Vec<Envelope>,
}

impl Submission {
    /// The digest its shares are bound to.
    #[must_use]
    pub fn digest(&self) -> SubmissionDigest {
        SubmissionDigest(self.update.digest())
    }

    /// The round it names.
    #[must_use]
    pub fn round(&self) -> RoundId {
        RoundId(self.update.routing().round)
    }

    /// The bytes a client records and sends: version 1, the number of
    /// envelopes (u32), then each envelope with a u32 length, the update
    /// first.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let envelopes: Vec<Vec<u8>> = std::iter::once(&self.update)
            .chain(&self.shares)
            .map(Envelope::to_bytes)
            .collect();
        let mut out = Vec::with_capacity(5 + envelopes.iter().map(|e| 4 + e.len()).sum::<usize>());
        out.push(1);
        // The counts fit: envelopes are bounded far below 4 GiB.
        let _ = put_len(&mut out, envelopes.len(), "envelopes");
        for envelope in envelopes {
            let _ = put_len(&mut out, envelope.len(), "envelope");
            out.extend_from_slice(&envelope);
        }
        out
    }

    /// Decodes untrusted bytes, bounding every length by the federation
    /// (no signature is checked here).
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] (malformed or too large).
    pub fn from_bytes(federation: &Federation, bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "submission");
        if reader.u8("version")? != 1 {
            return Err(PqError::malformed("submission", "unknown version").into());
        }
        let holders = federation.holders().len();
        let count = reader.length("envelopes", holders + 1)?;
        if count == 0 {
            return Err(PqError::malformed("submission", "no update envelope").into());
        }
        let max_update = max_update_payload(federation);
        let max_share = max_share_payload(federation);
        let len = reader.length("update envelope", max_update.saturating_add(16 * 1024))?;
        let update = Envelope::from_bytes(reader.take(len, "update envelope")?, max_update)?;
        let mut shares = Vec::with_capacity(count - 1);
        for _ in 1..count {
            let len = reader.length("share envelope", max_share.saturating_add(16 * 1024))?;
            shares.push(Envelope::from_bytes(
                reader.take(len, "share envelope")?,
                max_share,
            )?);
        }
        reader.finish()?;
        Ok(Self { update, shares })
    }
}

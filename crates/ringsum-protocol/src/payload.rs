//! The payloads that travel inside signed envelopes (docs/formats.md,
//! "Protocol payloads"): big-endian integers, polynomials bit-packed as
//! ringsum-wire packs them, every length checked against the parameter set
//! before anything is allocated.

use std::sync::Arc;

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::Packing;
use ringsum_core::update::{Aggregate, EncryptedUpdate, UpdateShape};
use ringsum_math::{Coeff, Ntt, Poly, RingContext, SecretPoly};
use ringsum_pq::codec::Reader;
use ringsum_threshold::{
    DecryptionShare, HolderId, KeyCommitment, PublicKeyShare, SecretShareMessage, ThresholdKeyShare,
};
use ringsum_wire::{pack_poly, packed_poly_len, unpack_poly};
use zeroize::Zeroizing;

use crate::error::Result;

fn put_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes());
}

fn holders(reader: &mut Reader<'_>, limit: usize) -> Result<Vec<HolderId>> {
    let count = reader.length("holder count", limit)?;
    (0..count)
        .map(|_| Ok(HolderId(reader.u32("holder")?)))
        .collect()
}

fn poly<R: ringsum_math::Representation>(
    reader: &mut Reader<'_>,
    ring: &Arc<RingContext>,
    field: &'static str,
) -> Result<Poly<R>> {
    let bytes = reader.take(packed_poly_len(ring), field)?;
    Ok(unpack_poly(ring, bytes, field)?)
}

/// A client's submission: its declared sample count, then the encrypted
/// update as ringsum-wire encodes it.
pub fn encode_submission(samples: u64, update: &EncryptedUpdate) -> Vec<u8> {
    let mut out = samples.to_be_bytes().to_vec();
    out.extend_from_slice(&ringsum_wire::encode_update(update));
    out
}

/// Decodes a submission of exactly the shape `shape` (from the model
/// layout).
///
/// # Errors
/// [`ProtocolError::Pq`] for a short payload, [`ProtocolError::Wire`] for an
/// update that does not decode.
pub fn decode_submission(
    params: &ParameterSet,
    bytes: &[u8],
    shape: &UpdateShape,
) -> Result<(u64, EncryptedUpdate)> {
    let mut reader = Reader::new(bytes, "submission");
    let samples = reader.u64("samples")?;
    let rest = reader.take(reader.remaining(), "update")?;
    let update = ringsum_wire::decode_update(params, rest, shape)?;
    Ok((samples, update))
}

/// An aggregate as the coordinator sends it to key holders (docs/formats.md,
/// "Protocol payloads"): the number of submissions summed, the number of
/// re-randomisations, then the ciphertexts as an update message.
pub fn encode_aggregate(aggregate: &Aggregate) -> Vec<u8> {
    let mut out = aggregate.clients().to_be_bytes().to_vec();
    out.extend_from_slice(&aggregate.rerandomizations().to_be_bytes());
    out.extend_from_slice(&ringsum_wire::encode_update(&aggregate.to_update()));
    out
}

/// Decodes an aggregate of `layout` (the length and every coefficient are
/// checked as for a submission).
///
/// # Errors
/// [`ProtocolError::Pq`] for a short payload, [`ProtocolError::Wire`] for
/// ciphertexts that do not decode, [`ProtocolError::Core`] for counts out of
/// the set's range or another layout.
pub fn decode_aggregate(
    params: &ParameterSet,
    packing: &Packing,
    layout: &ModelLayout,
    bytes: &[u8],
) -> Result<Aggregate> {
    let mut reader = Reader::new(bytes, "aggregate");
    let clients = reader.u64("clients")?;
    let rerandomizations = reader.u32("re-randomisations")?;
    let rest = reader.take(reader.remaining(), "ciphertexts")?;
    let update = ringsum_wire::decode_update(params, rest, &UpdateShape::new(packing, layout))?;
    Ok(Aggregate::from_parts(
        params,
        packing,
        layout,
        update,
        clients,
        rerandomizations,
    )?)
}

/// A holder's threshold key share for storage: epoch, holder, s'_j (NTT
/// form, bit-packed). Returned in a zeroized buffer.
pub fn encode_key_share(share: &ThresholdKeyShare) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(share.epoch().to_be_bytes().to_vec());
    out.extend_from_slice(&share.holder().0.to_be_bytes());
    let packed = Zeroizing::new(pack_poly(share.share().expose()));
    out.extend_from_slice(&packed);
    out
}

/// Decodes a stored key share of `params`.
///
/// # Errors
/// [`ProtocolError::Pq`] or [`ProtocolError::Wire`] for a malformed
/// encoding, [`ProtocolError::Threshold`] for another ring.
pub fn decode_key_share(params: &ParameterSet, bytes: &[u8]) -> Result<ThresholdKeyShare> {
    let mut reader = Reader::new(bytes, "key share");
    let epoch = reader.u64("epoch")?;
    let holder = HolderId(reader.u32("holder")?);
    let share = SecretPoly::new(poly::<Ntt>(&mut reader, params.ring(), "share")?);
    reader.finish()?;
    Ok(ThresholdKeyShare::from_parts(params, epoch, holder, share)?)
}

/// A key commitment: epoch, holder, digest.
pub fn encode_commitment(commitment: &KeyCommitment) -> Vec<u8> {
    let mut out = commitment.epoch.to_be_bytes().to_vec();
    out.extend_from_slice(&commitment.holder.0.to_be_bytes());
    out.extend_from_slice(&commitment.digest);
    out
}

/// Decodes a key commitment.
///
/// # Errors
/// [`ProtocolError::Pq`] for a malformed payload.
pub fn decode_commitment(bytes: &[u8]) -> Result<KeyCommitment> {
    let mut reader = Reader::new(bytes, "key commitment");
    let commitment = KeyCommitment {
        epoch: reader.u64("epoch")?,
        holder: HolderId(reader.u32("holder")?),
        digest: reader.array("digest")?,
    };
    reader.finish()?;
    Ok(commitment)
}

/// A public-key share: epoch, holder, CRS binding, p_i (NTT form).
pub fn encode_public_share(share: &PublicKeyShare) -> Vec<u8> {
    let mut out = share.epoch.to_be_bytes().to_vec();
    out.extend_from_slice(&share.holder.0.to_be_bytes());
    out.extend_from_slice(&share.crs_binding);
    out.extend_from_slice(&pack_poly(&share.p));
    out
}

/// Decodes a public-key share of `params`.
///
/// # Errors
/// [`ProtocolError::Pq`] or [`ProtocolError::Wire`] for a malformed payload.
pub fn decode_public_share(params: &ParameterSet, bytes: &[u8]) -> Result<PublicKeyShare> {
    let mut reader = Reader::new(bytes, "public-key share");
    let epoch = reader.u64("epoch")?;
    let holder = HolderId(reader.u32("holder")?);
    let crs_binding = reader.array("CRS binding")?;
    let p = poly::<Ntt>(&mut reader, params.ring(), "p")?;
    reader.finish()?;
    Ok(PublicKeyShare {
        param_set: params.id().clone(),
        epoch,
        holder,
        crs_binding,
        p,
    })
}

/// A Shamir share, the plaintext of a sealed box: epoch, dealer,
/// recipient, f_i(x_j) (NTT form). Returned in a zeroized buffer.
pub fn encode_secret_share(message: &SecretShareMessage) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(message.epoch.to_be_bytes().to_vec());
    out.extend_from_slice(&message.from.0.to_be_bytes());
    out.extend_from_slice(&message.to.0.to_be_bytes());
    let packed = Zeroizing::new(pack_poly(message.share.expose()));
    out.extend_from_slice(&packed);
    out
}

/// Decodes a Shamir share of `params`.
///
/// # Errors
/// [`ProtocolError::Pq`] or [`ProtocolError::Wire`] for a malformed payload.
pub fn decode_secret_share(params: &ParameterSet, bytes: &[u8]) -> Result<SecretShareMessage> {
    let mut reader = Reader::new(bytes, "secret share");
    let epoch = reader.u64("epoch")?;
    let from = HolderId(reader.u32("dealer")?);
    let to = HolderId(reader.u32("recipient")?);
    let share = SecretPoly::new(poly::<Ntt>(&mut reader, params.ring(), "share")?);
    reader.finish()?;
    Ok(SecretShareMessage {
        param_set: params.id().clone(),
        epoch,
        from,
        to,
        share,
    })
}

/// The largest sealed share of `params`.
pub fn secret_share_len(params: &ParameterSet) -> usize {
    16 + packed_poly_len(params.ring())
}

/// What the coordinator asks of the active set: the key epoch, the
/// aggregate's decryption digest, the active set, and the number of
/// submissions summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPayload {
    /// The key epoch.
    pub epoch: u64,
    /// [`ringsum_threshold::decryption_digest`] of the aggregate and set.
    pub digest: [u8; 32],
    /// The active set.
    pub active: Vec<HolderId>,
    /// Submissions in the aggregate.
    pub clients: u64,
}

impl RequestPayload {
    /// The encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.epoch.to_be_bytes().to_vec();
        out.extend_from_slice(&self.digest);
        put_u32(&mut out, self.active.len());
        for h in &self.active {
            out.extend_from_slice(&h.0.to_be_bytes());
        }
        out.extend_from_slice(&self.clients.to_be_bytes());
        out
    }

    /// Decodes a request naming at most `max_holders` holders.
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] for a malformed payload.
    pub fn decode(bytes: &[u8], max_holders: usize) -> Result<Self> {
        let mut reader = Reader::new(bytes, "decryption request");
        let epoch = reader.u64("epoch")?;
        let digest = reader.array("digest")?;
        let active = holders(&mut reader, max_holders)?;
        let clients = reader.u64("clients")?;
        reader.finish()?;
        Ok(Self {
            epoch,
            digest,
            active,
            clients,
        })
    }
}

/// A decryption share: epoch, holder, digest, active set, then one
/// bit-packed polynomial (coefficient form) per ciphertext.
pub fn encode_decryption_share(share: &DecryptionShare) -> Vec<u8> {
    let mut out = share.epoch.to_be_bytes().to_vec();
    out.extend_from_slice(&share.holder.0.to_be_bytes());
    out.extend_from_slice(&share.digest);
    put_u32(&mut out, share.active_set.len());
    for h in &share.active_set {
        out.extend_from_slice(&h.0.to_be_bytes());
    }
    put_u32(&mut out, share.parts.len());
    for part in &share.parts {
        out.extend_from_slice(&pack_poly(part));
    }
    out
}

/// Decodes a decryption share of `params` with at most `max_parts`
/// polynomials.
///
/// # Errors
/// [`ProtocolError::Pq`] or [`ProtocolError::Wire`] for a malformed payload.
pub fn decode_decryption_share(
    params: &ParameterSet,
    bytes: &[u8],
    max_parts: usize,
) -> Result<DecryptionShare> {
    let mut reader = Reader::new(bytes, "decryption share");
    let epoch = reader.u64("epoch")?;
    let holder = HolderId(reader.u32("holder")?);
    let digest = reader.array("digest")?;
    let max_holders = usize::try_from(params.threshold().max_holders).unwrap_or(usize::MAX);
    let active_set = holders(&mut reader, max_holders)?;
    let count = reader.length("part count", max_parts)?;
    let parts = (0..count)
        .map(|_| poly::<Coeff>(&mut reader, params.ring(), "part"))
        .collect::<Result<Vec<_>>>()?;
    reader.finish()?;
    Ok(DecryptionShare {
        param_set: params.id().clone(),
        epoch,
        holder,
        digest,
        active_set,
        parts,
    })
}

/// A published round result: the round, the number of submissions, the
/// weight sum, the quantization bound, and the new global model (f32).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundResult {
    /// The round.
    pub round: u64,
    /// Submissions summed.
    pub clients: u64,
    /// Sum of the quantized weights.
    pub weight_sum: i64,
    /// Bound on the quantization error of the average.
    pub error_bound: f64,
    /// The new global model, flattened in layout order.
    pub model: Vec<f32>,
}

impl RoundResult {
    /// The encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.round.to_be_bytes().to_vec();
        out.extend_from_slice(&self.clients.to_be_bytes());
        out.extend_from_slice(&self.weight_sum.to_be_bytes());
        out.extend_from_slice(&self.error_bound.to_be_bytes());
        put_u32(&mut out, self.model.len());
        for v in &self.model {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// Decodes a result of at most `max_params` parameters.
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] for a malformed payload.
    pub fn decode(bytes: &[u8], max_params: usize) -> Result<Self> {
        let mut reader = Reader::new(bytes, "round result");
        let round = reader.u64("round")?;
        let clients = reader.u64("clients")?;
        let weight_sum = i64::from_be_bytes(reader.array("weight sum")?);
        let error_bound = f64::from_be_bytes(reader.array("error bound")?);
        let count = reader.length("model length", max_params)?;
        let model = (0..count)
            .map(|_| Ok(f32::from_be_bytes(reader.array("parameter")?)))
            .collect::<Result<Vec<_>>>()?;
        reader.finish()?;
        Ok(Self {
            round,
            clients,
            weight_sum,
            error_bound,
            model,
        })
    }
}

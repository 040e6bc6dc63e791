//! A client's per-round secret, and the encryption that consumes it.

use std::cell::RefCell;
use std::fmt;

use rayon::prelude::*;
use ringsum_math::encrypt::seeded_encrypt;
use ringsum_math::sample::small_to_poly;
use ringsum_math::{Coeff, Csprng, Ntt, Poly, SecretPoly};
use zeroize::{Zeroize, Zeroizing};

use super::RoundContext;
use crate::error::{CoreError, Result};
use crate::model::ModelLayout;
use crate::params::{ParamSetId, ParameterSet};
use crate::scheme::Packing;
use crate::update::{RoundId, UpdateShape, UpdateSlots};

/// A client's fresh secret for one round: N coefficients from the set's
/// tail-cut discrete Gaussian, kept as integers (for Shamir sharing) and in
/// NTT form (for encryption). Wiped on drop, never printed.
///
/// Encryption consumes it ([`Self::encrypt_update`], [`Self::precompute`]),
/// so no second update can be encrypted under it (see the module docs): a
/// second use does not compile.
///
/// ```compile_fail,E0382
/// # use ringsum_core::{ParameterSet, model::ModelLayout, scheme::Packing, update::RoundId};
/// # use ringsum_core::round::{RoundContext, RoundSecret};
/// # let params = ParameterSet::builtin("rk128-n4096").unwrap();
/// # let packing = Packing::new(&params);
/// # let layout = ModelLayout::try_new([("w", vec![1])]).unwrap();
/// # let context = RoundContext::new(&params, [0; 32], RoundId(1));
/// # let mut rng = ringsum_math::Csprng::from_seed([0; 32]);
/// let secret = RoundSecret::generate(&params, &mut rng);
/// let first = secret.encrypt_update(&packing, &layout, &context, &[0.5], 1, &mut rng);
/// // error[E0382]: use of moved value: `secret`
/// let second = secret.encrypt_update(&packing, &layout, &context, &[0.25], 1, &mut rng);
/// ```
pub struct RoundSecret {
    params: ParameterSet,
    coefficients: Zeroizing<Vec<i64>>,
    ntt: SecretPoly<Ntt>,
}

impl fmt::Debug for RoundSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundSecret")
            .field("param_set", self.params.id())
            .finish_non_exhaustive()
    }
}

impl RoundSecret {
    /// Samples a fresh secret (constant-time sampler: full-table CDT scan).
    pub fn generate(params: &ParameterSet, rng: &mut Csprng) -> Self {
        let mut coefficients = Zeroizing::new(vec![0i64; params.degree()]);
        params.gaussian().fill(rng, &mut coefficients);
        let bound = params.gaussian().bound().unsigned_abs();
        let ntt = small_to_poly(params.ring(), &coefficients, bound).into_ntt();
        Self {
            params: params.clone(),
            coefficients,
            ntt,
        }
    }

    /// The secret's coefficients, each of magnitude at most the sampler's
    /// bound: what the client Shamir-shares among the key holders. Secret.
    pub fn coefficients(&self) -> &[i64] {
        &self.coefficients
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        self.params.id()
    }

    /// Quantizes, packs and encrypts one update under this secret, which it
    /// consumes: ciphertext j is c_j = a_j*s + e_j + Δ*M_j, the last one
    /// truncated to the coefficients its values use. Ciphertexts are
    /// encrypted in parallel, each with a generator forked from `rng`.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] for a packing or context of another
    /// set; [`CoreError::CountMismatch`] or [`CoreError::NonFiniteValue`] for
    /// values that do not match the layout; [`CoreError::InvalidWeight`] for
    /// a sample count of 0 or above `max_weight`.
    pub fn encrypt_update(
        self,
        packing: &Packing,
        layout: &ModelLayout,
        context: &RoundContext,
        values: &[f32],
        samples: u64,
        rng: &mut Csprng,
    ) -> Result<RoundUpdate> {
        self.check(packing, context)?;
        let shape = UpdateShape::new(packing, layout);
        let slots = UpdateSlots::prepare(
            self.params.encoding(),
            packing,
            layout,
            &shape,
            values,
            samples,
            rng,
        )?;
        self.encrypt_slots(packing, layout, context, &slots, rng)
    }

    /// As [`Self::encrypt_update`] for values the caller quantized itself
    /// (the differentially private path adds integer noise first): slot 0
    /// carries `weight`, the parameters' slots `values` as they are.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] for a packing or context of another
    /// set; [`CoreError::CountMismatch`] unless there is one value per
    /// parameter; [`CoreError::SlotValueOutOfRange`] for a value or weight
    /// outside a signed slot; [`CoreError::NoWeight`] for a weight below 1.
    pub fn encrypt_quantized(
        self,
        packing: &Packing,
        layout: &ModelLayout,
        context: &RoundContext,
        weight: i64,
        values: &[i64],
        rng: &mut Csprng,
    ) -> Result<RoundUpdate> {
        self.check(packing, context)?;
        let shape = UpdateShape::new(packing, layout);
        let slots = UpdateSlots::prepare_quantized(
            self.params.encoding(),
            packing,
            layout,
            &shape,
            weight,
            values,
        )?;
        self.encrypt_slots(packing, layout, context, &slots, rng)
    }

    /// Encrypts prepared slots, one ciphertext per task.
    fn encrypt_slots(
        &self,
        packing: &Packing,
        layout: &ModelLayout,
        context: &RoundContext,
        slots: &UpdateSlots<'_>,
        rng: &mut Csprng,
    ) -> Result<RoundUpdate> {
        let shape = *slots.shape;
        let ciphertexts = slots.map_ciphertexts(
            vec![(); shape.ciphertexts()],
            rng,
            |index, (), columns, used, rng| {
                self.encrypt_one(context, index, used, rng, |residues| {
                    packing.add_message(columns, used, residues);
                })
            },
        )?;
        Ok(RoundUpdate {
            param_set: self.params.id().clone(),
            layout_hash: *layout.hash(),
            round: context.round(),
            shape,
            ciphertexts,
        })
    }

    /// Computes a_j*s + e_j for every ciphertext of an update of `layout`
    /// before the update exists (while the model trains), consuming the
    /// secret; [`PrecomputedUpdate::finish`] then only adds Δ*M_j.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] for a packing or context of another
    /// set.
    pub fn precompute(
        self,
        packing: &Packing,
        layout: &ModelLayout,
        context: &RoundContext,
        rng: &mut Csprng,
    ) -> Result<PrecomputedUpdate> {
        self.check(packing, context)?;
        let shape = UpdateShape::new(packing, layout);
        let mut rngs: Vec<Csprng> = (0..shape.ciphertexts()).map(|_| rng.fork()).collect();
        let masks = rngs
            .par_iter_mut()
            .enumerate()
            .map(|(index, rng)| {
                let used = shape.c0_coefficients(index);
                self.encrypt_one(context, index, used, rng, |_| {})
                    .map(SecretPoly::new)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PrecomputedUpdate {
            params: self.params.clone(),
            layout_hash: *layout.hash(),
            round: context.round(),
            shape,
            masks,
        })
    }

    fn check(&self, packing: &Packing, context: &RoundContext) -> Result<()> {
        crate::scheme::check_set(&self.params, packing.param_set())?;
        context.check(&self.params)
    }

    /// a_j*s + e_j (+ the message `add_message` adds) on the first `used`
    /// coefficients, with e_j drawn here.
    fn encrypt_one(
        &self,
        context: &RoundContext,
        index: usize,
        used: usize,
        rng: &mut Csprng,
        add_message: impl FnOnce(&mut [u64]),
    ) -> Result<Poly<Coeff>> {
        let gaussian = self.params.gaussian();
        let mut a_rows = context.a_rows(index)?;
        let run = |error: &mut Vec<i64>| {
            error.clear();
            error.resize(used, 0);
            gaussian.fill(rng, error);
            let result = seeded_encrypt(
                &self.ntt,
                &mut a_rows,
                error,
                gaussian.bound().unsigned_abs(),
                add_message,
            );
            error.zeroize();
            result
        };
        let c = ERROR_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut error) => run(&mut error),
            // Not reachable (nothing re-enters), but never panic for it.
            Err(_) => run(&mut Vec::new()),
        })?;
        Ok(c)
    }
}

std::thread_local! {
    /// Per-thread buffer of one ciphertext's error, kept between
    /// ciphertexts so that it is not allocated again for each, wiped after
    /// each.
    static ERROR_SCRATCH: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

impl Zeroize for RoundSecret {
    fn zeroize(&mut self) {
        self.coefficients.zeroize();
        self.ntt.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for RoundSecret {}

/// The masks a_j*s + e_j of one client's update, computed before the update
/// exists. As secret as the update they will hide (mask = c - Δ*M): wiped
/// on drop, never printed, consumed by [`Self::finish`].
pub struct PrecomputedUpdate {
    params: ParameterSet,
    layout_hash: [u8; 32],
    round: RoundId,
    shape: UpdateShape,
    masks: Vec<SecretPoly<Coeff>>,
}

impl fmt::Debug for PrecomputedUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrecomputedUpdate")
            .field("param_set", self.params.id())
            .field("round", &self.round)
            .field("ciphertexts", &self.masks.len())
            .finish_non_exhaustive()
    }
}

impl PrecomputedUpdate {
    /// The online step: quantizes and packs the update and adds Δ*M_j to
    /// each mask, which becomes the ciphertext.
    ///
    /// # Errors
    /// [`CoreError::LayoutMismatch`] for a layout other than the one
    /// precomputed for, [`CoreError::ParameterMismatch`] for a packing of
    /// another set, and those of [`RoundSecret::encrypt_update`] for the
    /// values.
    pub fn finish(
        self,
        packing: &Packing,
        layout: &ModelLayout,
        values: &[f32],
        samples: u64,
        rng: &mut Csprng,
    ) -> Result<RoundUpdate> {
        crate::scheme::check_set(&self.params, packing.param_set())?;
        if *layout.hash() != self.layout_hash {
            return Err(CoreError::LayoutMismatch {
                expected: crate::update::hex(&self.layout_hash),
                found: crate::update::hex(layout.hash()),
            });
        }
        let Self {
            params,
            layout_hash,
            round,
            shape,
            masks,
        } = self;
        let slots = UpdateSlots::prepare(
            params.encoding(),
            packing,
            layout,
            &shape,
            values,
            samples,
            rng,
        )?;
        let ciphertexts = slots.map_ciphertexts(masks, rng, |_, mut mask, columns, used, _| {
            mask.expose_mut().update_residues(|_, residues| {
                packing.add_message(columns, used, residues);
            });
            Ok(mask.declassify())
        })?;
        Ok(RoundUpdate {
            param_set: params.id().clone(),
            layout_hash,
            round,
            shape,
            ciphertexts,
        })
    }
}

/// One client's encrypted update of a round: the c_j alone (a_j is public),
/// the last one truncated to the coefficients its values use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundUpdate {
    param_set: ParamSetId,
    layout_hash: [u8; 32],
    round: RoundId,
    shape: UpdateShape,
    ciphertexts: Vec<Poly<Coeff>>,
}

impl RoundUpdate {
    /// An update from its parts (what a decoder received): one polynomial
    /// of `params`' ring per ciphertext of `layout`'s shape, each zero past
    /// the coefficients it uses.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] for the wrong number of ciphertexts,
    /// [`CoreError::ParameterMismatch`] for a polynomial of another ring,
    /// [`CoreError::NonZeroTruncation`] for a non-zero coefficient past
    /// the used ones.
    pub fn from_parts(
        params: &ParameterSet,
        packing: &Packing,
        layout: &ModelLayout,
        round: RoundId,
        ciphertexts: Vec<Poly<Coeff>>,
    ) -> Result<Self> {
        crate::scheme::check_set(params, packing.param_set())?;
        let shape = UpdateShape::new(packing, layout);
        if ciphertexts.len() != shape.ciphertexts() {
            return Err(CoreError::CountMismatch {
                what: "ciphertexts in the update",
                expected: shape.ciphertexts(),
                found: ciphertexts.len(),
            });
        }
        let degree = params.degree();
        for (index, c) in ciphertexts.iter().enumerate() {
            if !params.ring().same_ring(c.context()) {
                return Err(CoreError::ParameterMismatch {
                    expected: params.id().to_string(),
                    found: "a polynomial of another ring".to_owned(),
                });
            }
            let used = shape.c0_coefficients(index);
            let nonzero = c
                .residues()
                .chunks_exact(degree)
                .filter_map(|row| row.iter().skip(used).position(|&x| x != 0))
                .min();
            if let Some(offset) = nonzero {
                return Err(CoreError::NonZeroTruncation {
                    coefficients: used,
                    coefficient: used + offset,
                });
            }
        }
        Ok(Self {
            param_set: params.id().clone(),
            layout_hash: *layout.hash(),
            round,
            shape,
            ciphertexts,
        })
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// SHA3-256 of the model layout.
    pub fn layout_hash(&self) -> &[u8; 32] {
        &self.layout_hash
    }

    /// The round.
    pub fn round(&self) -> RoundId {
        self.round
    }

    /// How many leading coefficients ciphertext `index` uses (N for all but
    /// the last; 0 past the last): the others are zero and do not travel.
    pub fn used_coefficients(&self, index: usize) -> usize {
        self.shape.c0_coefficients(index)
    }

    /// The ciphertexts c_j, in slot order.
    pub fn ciphertexts(&self) -> &[Poly<Coeff>] {
        &self.ciphertexts
    }
}

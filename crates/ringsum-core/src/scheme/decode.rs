//! Decoding: a decrypted phase (Δ*M plus the summed noise) back into slot
//! values.

use ringsum_math::{Coeff, Poly};
use zeroize::Zeroize;

use super::packing::{Packing, Plaintext};
use crate::error::{CoreError, Result};

/// Splits every coefficient of a decrypted phase (Δ*M plus the noise) into
/// slots; `index` names the ciphertext in errors.
///
/// # Errors
/// [`CoreError::DecodeOverflow`] for a coefficient that does not split into
/// slots: the sum overflowed, or the key (sum) is not the one encrypted
/// under.
pub fn decode_phase(packing: &Packing, phase: &Poly<Coeff>, index: usize) -> Result<Plaintext> {
    let degree = phase.context().degree();
    let slots = decode_columns(packing, phase, index, degree)?;
    Ok(Plaintext::from_slots_unchecked(slots))
}

/// Splits the first `used` coefficients of a decrypted phase into slots,
/// as K columns of `used` values (slot j of coefficient i at
/// `j * used + i`, the layout [`Packing::add_message`] takes). The
/// coefficients past `used` are not looked at: a truncated ciphertext
/// carries no message there.
///
/// # Errors
/// [`CoreError::DecodeOverflow`] as [`decode_phase`].
pub(crate) fn decode_columns(
    packing: &Packing,
    phase: &Poly<Coeff>,
    index: usize,
    used: usize,
) -> Result<Vec<i64>> {
    let used = used.min(phase.context().degree());
    let mut out = vec![0i64; packing.slots() * used];
    let mut digits = vec![0i64; packing.slots()];
    for coefficient in 0..used {
        let overflow = || CoreError::DecodeOverflow {
            ciphertext: index,
            coefficient,
        };
        let x = phase
            .centered_limbs_vartime(coefficient)
            .ok_or_else(overflow)?;
        if !packing.decode_coefficient(&x, &mut digits) {
            out.zeroize();
            return Err(overflow());
        }
        for (slot, &digit) in out.iter_mut().skip(coefficient).step_by(used).zip(&digits) {
            *slot = digit;
        }
    }
    digits.zeroize();
    Ok(out)
}

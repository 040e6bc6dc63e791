//! The coordinator's side: holders' answers to the key sum, with every
//! coefficient checked when more than t holders answered, and lying holders
//! named and left out when enough answered.
//!
//! Everything here works on data the coordinator holds and is entitled to
//! (the answers, and the key sum they open), so decoding may take variable
//! time; the final lift is branch-free anyway.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Result, ThresholdError};
use crate::holder_id::HolderId;

use super::committee::{ShareCommittee, first_duplicate, lagrange_weights_vartime, point};
use super::field::ShareField;
use super::holder::HolderAnswer;
use super::share::{check_degree, linear_combination};

/// The reconstructed sum of the secrets of a set of clients, as centred
/// integers, with the holders whose answers were used and those found
/// lying. Its `Debug` prints no coefficient.
#[derive(Clone)]
pub struct KeySum {
    coefficients: Zeroizing<Vec<i64>>,
    liars: Vec<HolderId>,
    used: Vec<HolderId>,
}

impl KeySum {
    /// The N coefficients of sum_{i in S} s_i, each within the bound.
    pub fn coefficients(&self) -> &[i64] {
        &self.coefficients
    }

    /// The coefficients, taking them out (still wiped on drop).
    pub fn into_coefficients(self) -> Zeroizing<Vec<i64>> {
        self.coefficients
    }

    /// The holders whose answers disagreed with the others and were left
    /// out, sorted by id (for the audit log). Empty when no disagreement
    /// was found. A holder named here either lied or was dealt a bad share
    /// or answer key by a client: the protocol tells the two apart by the
    /// client's signed commitments ([`super::AnswerKey::commitment`]).
    pub fn liars(&self) -> &[HolderId] {
        &self.liars
    }

    /// The holders whose answers make up the result, sorted by id: every
    /// answering holder not named a liar. When more than t of them
    /// answered, their answers agree on every coefficient.
    pub fn used(&self) -> &[HolderId] {
        &self.used
    }
}

impl fmt::Debug for KeySum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySum")
            .field("degree", &self.coefficients.len())
            .field("liars", &self.liars)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// Reconstructs sum_{i in S} s_i from the holders' answers, each the sum of
/// the holder's shares of the secrets in S; `bound` is the public bound
/// |S| B_s on every coefficient of the sum, and the result is lifted to
/// the centred integers in [-bound, bound].
///
/// Each coefficient is its own Shamir instance, a Reed-Solomon codeword of
/// dimension t at the m answering holders' points:
///
/// - m < t: an error, never a guess;
/// - m = t: plain Lagrange interpolation. A lying holder cannot be detected
///   this way (any t values fit a polynomial of degree t - 1); only the
///   bound check on the lifted result catches it, with probability about
///   1 - (2 bound + 1) / p per coefficient it touched;
/// - m > t: every coefficient is checked: the values of the first t holders
///   by id predict those of the m - t others ((m - t) t multiply-adds per
///   coefficient with precomputed Lagrange weights), so a lie on a single
///   coefficient is caught. On a mismatch, Berlekamp-Welch decoding of that
///   coefficient locates up to e = floor((m' - t) / 2) wrong values among
///   the m' answers still trusted; their holders are named and left out and
///   every coefficient is checked again, until the rest agree. Up to
///   floor((m - t) / 2) liars in all are corrected. With more, a coalition
///   can be indistinguishable from the honest holders: the decoder then
///   either reports an uncorrectable inconsistency or, for lies crafted to
///   look like a correctable pattern, names the wrong holders, as every
///   decoder at that distance would.
///
/// # Errors
/// [`ThresholdError::TooFewAnswers`] for fewer than t answers;
/// [`ThresholdError::NotShareHolder`], [`ThresholdError::DuplicateHolder`],
/// [`ThresholdError::ShareFieldMismatch`] and
/// [`ThresholdError::ShareLengthMismatch`] for answers that do not belong;
/// [`ThresholdError::InconsistentAnswers`] when a lie is detected but
/// cannot be corrected (nobody is named then);
/// [`ThresholdError::KeySumOutOfBound`] when a lifted coefficient exceeds
/// `bound`; [`ThresholdError::LiftBoundTooLarge`] unless 2 bound < p, and
/// [`ThresholdError::InvalidShareDegree`].
pub fn combine_answers(
    committee: &ShareCommittee,
    answers: &[HolderAnswer],
    degree: usize,
    bound: u64,
) -> Result<KeySum> {
    let field = committee.field();
    check_degree(degree)?;
    if bound >= field.value().div_ceil(2) {
        return Err(ThresholdError::LiftBoundTooLarge {
            bound,
            modulus: field.value(),
        });
    }
    let mut active = checked_answers(committee, answers, degree)?;
    let threshold = committee.threshold_usize();
    if active.len() < threshold {
        return Err(ThresholdError::TooFewAnswers {
            needed: committee.threshold(),
            found: active.len(),
        });
    }

    let mut liars = Vec::new();
    while let Some(coefficient) = first_inconsistency(&field, threshold, &active, degree) {
        let points: Vec<(u32, u32)> = active
            .iter()
            .map(|answer| {
                let y = answer.values().get(coefficient).copied().unwrap_or(0);
                (point(&field, answer.holder()), y)
            })
            .collect();
        let wrong = match berlekamp_welch_vartime(&field, threshold, &points) {
            Some(wrong) if !wrong.is_empty() => wrong,
            _ => {
                return Err(ThresholdError::InconsistentAnswers {
                    coefficient,
                    answers: answers.len(),
                    threshold: committee.threshold(),
                });
            }
        };
        let mut index = 0;
        active.retain(|answer| {
            let lying = wrong.contains(&index);
            if lying {
                liars.push(answer.holder());
            }
            index += 1;
            !lying
        });
    }
    liars.sort_unstable();

    let (base, _) = active
        .split_at_checked(threshold)
        .ok_or(ThresholdError::TooFewAnswers {
            needed: committee.threshold(),
            found: active.len(),
        })?;
    let nodes: Vec<u32> = base.iter().map(|a| point(&field, a.holder())).collect();
    // Committee ids are distinct and below p, so the weights exist.
    let weights =
        lagrange_weights_vartime(&field, &nodes, 0).ok_or(ThresholdError::InvalidHolderId {
            holder: base.first().map_or(HolderId(0), |a| a.holder()),
            limit: field.value(),
        })?;
    let rows: Vec<&[u32]> = base.iter().map(|a| a.values()).collect();
    let mut sum = linear_combination(&field, &weights, &rows, degree);
    let coefficients = lift_centred(&field, &sum, bound);
    sum.zeroize();
    Ok(KeySum {
        coefficients: Zeroizing::new(coefficients?),
        liars,
        used: active.iter().map(|a| a.holder()).collect(),
    })
}

/// The answers sorted by holder, each checked to belong to the committee,
/// the field and the degree.
fn checked_answers<'a>(
    committee: &ShareCommittee,
    answers: &'a [HolderAnswer],
    degree: usize,
) -> Result<Vec<&'a HolderAnswer>> {
    let field = committee.field();
    for answer in answers {
        if !committee.contains(answer.holder()) {
            return Err(ThresholdError::NotShareHolder {
                holder: answer.holder(),
            });
        }
        if answer.field() != field {
            return Err(ThresholdError::ShareFieldMismatch {
                what: "a holder answer",
                expected: field.value(),
                found: answer.field().value(),
            });
        }
        if answer.degree() != degree {
            return Err(ThresholdError::ShareLengthMismatch {
                what: "a holder answer",
                expected: degree,
                found: answer.degree(),
            });
        }
    }
    let mut sorted: Vec<&HolderAnswer> = answers.iter().collect();
    sorted.sort_unstable_by_key(|a| a.holder());
    let ids: Vec<HolderId> = sorted.iter().map(|a| a.holder()).collect();
    if let Some(holder) = first_duplicate(&ids) {
        return Err(ThresholdError::DuplicateHolder {
            holder,
            what: "the answers",
        });
    }
    Ok(sorted)
}

/// The first coefficient at which the answers do not lie on one polynomial
/// of degree below t, `None` when they all agree (or there are only t).
fn first_inconsistency(
    field: &ShareField,
    threshold: usize,
    active: &[&HolderAnswer],
    degree: usize,
) -> Option<usize> {
    let (base, extras) = active.split_at_checked(threshold)?;
    let nodes: Vec<u32> = base.iter().map(|a| point(field, a.holder())).collect();
    let rows: Vec<&[u32]> = base.iter().map(|a| a.values()).collect();
    let mut first: Option<usize> = None;
    for extra in extras {
        // Distinct committee ids: the weights always exist; fail closed
        // (report an inconsistency) if they did not.
        let Some(weights) = lagrange_weights_vartime(field, &nodes, point(field, extra.holder()))
        else {
            return Some(0);
        };
        let predicted = linear_combination(field, &weights, &rows, degree);
        let mismatch = predicted
            .iter()
            .zip(extra.values())
            .position(|(expected, found)| expected != found);
        first = match (first, mismatch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    first
}

/// Each element as its centred representative, checked against the bound.
fn lift_centred(field: &ShareField, sum: &[u32], bound: u64) -> Result<Vec<i64>> {
    let coefficients: Vec<i64> = sum.iter().map(|&v| field.centre(v)).collect();
    if let Some(coefficient) = coefficients.iter().position(|c| c.unsigned_abs() > bound) {
        let mut coefficients = coefficients;
        coefficients.zeroize();
        return Err(ThresholdError::KeySumOutOfBound { coefficient, bound });
    }
    Ok(coefficients)
}

/// Berlekamp-Welch decoding of one Reed-Solomon codeword of dimension k at
/// the points (x_i, y_i): the indices of the wrong values, when the values
/// lie within distance e = floor((m - k) / 2) of a polynomial f of degree
/// below k; `None` when they do not.
///
/// Solves Q(x_i) = y_i E(x_i) for E monic of degree e and Q of degree below
/// k + e (Gaussian elimination mod p; any solution will do: within the
/// decoding radius, Q / E = f for all of them), then divides. Public data,
/// variable time; m is at most the committee's size.
pub(crate) fn berlekamp_welch_vartime(
    field: &ShareField,
    k: usize,
    points: &[(u32, u32)],
) -> Option<Vec<usize>> {
    let m = points.len();
    let e = m.checked_sub(k)? / 2;
    let q_len = k + e;
    // Unknowns: Q_0 .. Q_{k+e-1}, then E_0 .. E_{e-1}; one row per point:
    // sum_l Q_l x^l - y sum_l E_l x^l = y x^e.
    let rows: Vec<Vec<u32>> = points
        .iter()
        .map(|&(x, y)| {
            let powers: Vec<u32> = std::iter::successors(Some(1u32), |&p| Some(field.mul(p, x)))
                .take(q_len.max(e + 1))
                .collect();
            let mut row: Vec<u32> = powers.iter().take(q_len).copied().collect();
            row.extend(
                powers
                    .iter()
                    .take(e)
                    .map(|&p| field.sub(0, field.mul(y, p))),
            );
            row.push(field.mul(y, powers.get(e).copied().unwrap_or(0)));
            row
        })
        .collect();
    let solution = solve_vartime(field, rows, q_len + e)?;
    let (q, e_low) = solution.split_at_checked(q_len)?;
    let mut locator = e_low.to_vec();
    locator.push(1);
    let f = divide_exact_vartime(field, q, &locator)?;
    let wrong: Vec<usize> = points
        .iter()
        .enumerate()
        .filter(|&(_, &(x, y))| evaluate(field, &f, x) != y)
        .map(|(i, _)| i)
        .collect();
    (wrong.len() <= e).then_some(wrong)
}

/// Any solution of the linear system whose rows are the coefficients of
/// `unknowns` unknowns followed by the right-hand side, by Gauss-Jordan
/// elimination mod p (free unknowns set to 0); `None` if inconsistent.
fn solve_vartime(field: &ShareField, mut rows: Vec<Vec<u32>>, unknowns: usize) -> Option<Vec<u32>> {
    let mut pivots = Vec::with_capacity(unknowns);
    for column in 0..unknowns {
        let rank = pivots.len();
        let Some(found) = (rank..rows.len()).find(|&r| {
            rows.get(r)
                .and_then(|row| row.get(column))
                .is_some_and(|&v| v != 0)
        }) else {
            continue;
        };
        rows.swap(rank, found);
        let pivot_row = rows.get_mut(rank)?;
        let inverse = field.inv_vartime(*pivot_row.get(column)?)?;
        for v in pivot_row.iter_mut() {
            *v = field.mul(*v, inverse);
        }
        let pivot_row = pivot_row.clone();
        for (r, row) in rows.iter_mut().enumerate() {
            let factor = row.get(column).copied().unwrap_or(0);
            if r != rank && factor != 0 {
                for (v, &pv) in row.iter_mut().zip(&pivot_row) {
                    *v = field.sub(*v, field.mul(factor, pv));
                }
            }
        }
        pivots.push(column);
    }
    // Rows past the rank have all-zero coefficients: their right-hand side
    // must be zero too.
    if rows
        .iter()
        .skip(pivots.len())
        .any(|row| row.last() != Some(&0))
    {
        return None;
    }
    let mut solution = vec![0u32; unknowns];
    for (row, &column) in rows.iter().zip(&pivots) {
        *solution.get_mut(column)? = *row.last()?;
    }
    Some(solution)
}

/// The quotient of `numerator` by the monic `divisor` (coefficients from
/// degree 0 up), `None` if the remainder is not zero.
fn divide_exact_vartime(
    field: &ShareField,
    numerator: &[u32],
    divisor: &[u32],
) -> Option<Vec<u32>> {
    let divisor_degree = divisor.len().checked_sub(1)?;
    let quotient_len = numerator.len().checked_sub(divisor_degree)?;
    let mut remainder = numerator.to_vec();
    let mut quotient = vec![0u32; quotient_len];
    for i in (0..quotient_len).rev() {
        let c = *remainder.get(i + divisor_degree)?;
        *quotient.get_mut(i)? = c;
        for (l, &d) in divisor.iter().enumerate() {
            let r = remainder.get_mut(i + l)?;
            *r = field.sub(*r, field.mul(c, d));
        }
    }
    remainder
        .iter()
        .take(divisor_degree)
        .all(|&r| r == 0)
        .then_some(quotient)
}

/// f(x) by Horner's rule.
fn evaluate(field: &ShareField, f: &[u32], x: u32) -> u32 {
    f.iter()
        .rev()
        .fold(0, |acc, &c| field.add(field.mul(acc, x), c))
}

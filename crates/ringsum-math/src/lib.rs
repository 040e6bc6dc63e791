//! # ringsum-math
//!
//! The ring arithmetic under ringsum: R_Q = Z_Q[X]/(X^N + 1) with Q a product
//! of word-size NTT-friendly primes held in RNS form.
//!
//! - [`zq`]: constant-time arithmetic modulo one prime (Barrett, Shoup);
//! - [`prime`]: primality and deterministic NTT-friendly prime generation;
//! - [`rns`]: the RNS basis and exact CRT reconstruction (public data);
//! - [`RingContext`]: degree, basis and tfhe-ntt plans, built once and shared;
//! - [`Poly`]: polynomials whose representation ([`Coeff`] or [`Ntt`]) is
//!   part of the type, and [`SecretPoly`] for secrets;
//! - [`sample`]: the ChaCha20 CSPRNG and the constant-time samplers;
//! - [`crs`]: public polynomials expanded from a seed with SHAKE128;
//! - [`prg`]: public uniform polynomials expanded fast from a seed (a_j of
//!   the per-round-key scheme);
//! - [`encrypt`]: the fused, prime-by-prime kernels of RLWE encryption
//!   under a fresh secret and a public, seeded a (and its decryption).
//!
//! ```
//! use ringsum_math::{prime::generate_ntt_primes, Poly, RingContext};
//!
//! let primes = generate_ntt_primes(4096, &[50, 50])?;
//! let ring = RingContext::new(4096, &primes)?;
//! let mut x = vec![0i64; 4096];
//! x[1] = 1; // the polynomial X
//! let x = Poly::try_from_i64(&ring, &x)?.into_ntt();
//! // X^4096 = -1 in the negacyclic ring: square X twelve times.
//! let mut power = x.clone();
//! for _ in 0..12 {
//!     power = power.try_mul(&power)?;
//! }
//! let minus_one = power.into_coeff().to_centered_bigints_vartime();
//! assert_eq!(minus_one[0], (-1).into());
//! # Ok::<(), ringsum_math::MathError>(())
//! ```

// Tests convert between integer widths freely to build expectations.
#![cfg_attr(
    test,
    allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

pub mod context;
pub mod crs;
pub mod crt;
pub mod encrypt;
pub mod error;
pub mod poly;
pub mod prg;
pub mod prime;
pub mod rns;
pub mod sample;
mod simd;
pub mod zq;

pub use context::RingContext;
pub use crs::{CrsDomain, CrsSeed, expand_crs};
pub use error::{MathError, Result};
pub use poly::{Coeff, Ntt, Poly, Representation, RnsScalar, SecretPoly};
pub use rns::RnsBasis;
pub use sample::{Csprng, DiscreteGaussian, WideGaussian};
pub use zq::Modulus;

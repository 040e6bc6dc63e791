//! Builds an RLWE sample b = -a*s + e at every shipped parameter set (s and
//! e from the set's Gaussian, as a round secret and its error), checks that
//! b + a*s gives back the small error, and prints what it measured.
//!
//! `cargo run --release --example rlwe_sample`

#![allow(clippy::print_stdout)]

use std::time::Instant;

use ringsum::core::ParameterSet;
use ringsum::math::{CrsDomain, CrsSeed, Csprng, expand_crs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Csprng::from_os()?;
    let seed = CrsSeed::new([0x5a; 32]);
    println!(
        "{:<14} {:>6} {:>7} {:>5} {:>12} {:>10}",
        "set", "N", "log2 Q", "IFMA", "sample (ms)", "max |e|"
    );
    for id in ParameterSet::builtin_ids() {
        let params = ParameterSet::builtin(id)?;
        let ring = params.ring();
        let start = Instant::now();
        let a = expand_crs(ring, &seed, &CrsDomain::new("example/a", 0, 0)?);
        let s = params.gaussian().sample_poly(ring, &mut rng).into_ntt();
        let e = params.gaussian().sample_poly(ring, &mut rng);
        let mut b = a.try_mul(s.expose())?.neg();
        b.try_add_assign(&e.expose().to_ntt())?;
        let elapsed = start.elapsed();

        b.try_mul_accumulate(&a, s.expose())?;
        let recovered = b.into_coeff();
        if &recovered != e.expose() {
            return Err(format!("{id}: b + a*s does not give back e").into());
        }
        let largest = recovered
            .to_centered_bigints_vartime()
            .iter()
            .map(|c| c.magnitude().clone())
            .max()
            .unwrap_or_default();
        println!(
            "{:<14} {:>6} {:>7} {:>5} {:>12.3} {:>10}",
            id,
            params.degree(),
            params.log2_q(),
            if ring.uses_ifma() { "yes" } else { "no" },
            elapsed.as_secs_f64() * 1e3,
            largest
        );
    }
    Ok(())
}

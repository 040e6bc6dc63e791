//! Times the encryption of a 10^7-parameter update on one core, repeatedly,
//! printing the fastest run (for A/B comparisons on a noisy machine).
//!
//! `cargo run --release --example encrypt_timing [parameters] [repeats]`

#![allow(clippy::print_stdout, clippy::cast_precision_loss)]

use std::time::Instant;

use ringsum::core::model::ModelLayout;
use ringsum::core::scheme::{Packing, PublicKey, SecretKey};
use ringsum::core::update::{RoundId, encrypt_update};
use ringsum::core::{DEFAULT_PARAMETER_SET, ParameterSet};
use ringsum::math::{CrsSeed, Csprng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(Ok(10_000_000), |a| a.parse())?;
    let repeats: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let params = ParameterSet::builtin(DEFAULT_PARAMETER_SET)?;
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([1; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([2; 32]), 0, &mut rng)?;
    let layout = ModelLayout::try_new([("model", vec![size as u64])])?;
    let values: Vec<f32> = (0..size)
        .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let start = Instant::now();
        let update = pool.install(|| {
            encrypt_update(
                &params,
                &packing,
                &pk,
                &layout,
                &values,
                1000,
                RoundId(1),
                &mut rng,
            )
        })?;
        best = best.min(start.elapsed().as_secs_f64());
        drop(update);
    }
    println!(
        "{size} parameters: fastest of {repeats} runs {:.1} ms, {:.1} M parameters/s",
        best * 1e3,
        size as f64 / best / 1e6
    );
    Ok(())
}

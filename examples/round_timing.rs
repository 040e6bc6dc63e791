//! Times the per-round-key pipeline's pieces for one client on one core,
//! repeatedly, printing the fastest run of each (for A/B comparisons on a
//! noisy machine): secret generation, encode + encrypt, precompute, the
//! online step, and a sum of updates.
//!
//! `cargo run --release --example round_timing [parameters] [repeats]`

#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::indexing_slicing
)]

use std::time::Instant;

use ringsum::core::model::ModelLayout;
use ringsum::core::round::{RoundAggregate, RoundContext, RoundSecret};
use ringsum::core::scheme::Packing;
use ringsum::core::update::RoundId;
use ringsum::core::{DEFAULT_PARAMETER_SET, ParameterSet};
use ringsum::math::Csprng;

fn best<T>(repeats: usize, mut run: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats {
        let start = Instant::now();
        let out = run();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    (best, last.unwrap_or_else(run))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let repeats: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let params = ParameterSet::builtin(DEFAULT_PARAMETER_SET)?;
    let packing = Packing::new(&params);
    let context = RoundContext::new(&params, [7; 32], RoundId(1));
    let mut rng = Csprng::from_seed([1; 32]);
    let layout = ModelLayout::try_new([("model", vec![size as u64])])?;
    let values: Vec<f32> = (0..size)
        .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
        .collect();
    let rate = |seconds: f64| size as f64 / seconds / 1e6;
    pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (t, _) = best(repeats, || RoundSecret::generate(&params, &mut rng));
        println!("secret: {:.3} ms", t * 1e3);
        // The pieces of one full ciphertext.
        let (t, a) = best(repeats, || {
            context.a_rows(0).map(|mut rows| {
                let mut data = vec![0u64; params.ring().poly_len()];
                for row in data.chunks_exact_mut(params.degree()) {
                    rows.fill_next_row(row);
                }
                data
            })
        });
        println!("  expand a_j (1 MiB): {:.3} ms", t * 1e3);
        let a = ringsum::math::Poly::<ringsum::math::Ntt>::try_from_residues(params.ring(), a?)?;
        let (t, _) = best(repeats, || a.to_coeff());
        println!("  inverse NTT, all primes: {:.3} ms", t * 1e3);
        let mut e = vec![0i64; params.degree()];
        let (t, _) = best(repeats, || params.gaussian().fill(&mut rng, &mut e));
        println!("  Gaussian error, N samples: {:.3} ms", t * 1e3);
        let columns = vec![5i64; packing.capacity()];
        let mut residues = vec![0u64; params.ring().poly_len()];
        let (t, _) = best(repeats, || {
            packing.add_message(&columns, params.degree(), &mut residues)
        });
        println!("  add Δ*M: {:.3} ms", t * 1e3);
        let mut quantized = vec![0i64; packing.capacity()];
        let chunk = &values[..packing.capacity().min(values.len())];
        let (t, _) = best(repeats, || {
            ringsum::core::model::quantize_into(
                params.encoding(),
                chunk,
                1000,
                &mut rng,
                &mut quantized[..chunk.len()],
            )
        });
        println!("  quantize one ciphertext's values: {:.3} ms", t * 1e3);
        let (t, update) = best(repeats, || {
            let secret = RoundSecret::generate(&params, &mut rng);
            secret.encrypt_update(&packing, &layout, &context, &values, 1000, &mut rng)
        });
        let update = update?;
        println!(
            "secret + encode + encrypt: {:.2} ms, {:.0} M params/s",
            t * 1e3,
            rate(t)
        );
        let (t, masks) = best(repeats, || {
            let secret = RoundSecret::generate(&params, &mut rng);
            secret.precompute(&packing, &layout, &context, &mut rng)
        });
        println!("precompute: {:.2} ms", t * 1e3);
        drop(masks);
        let mut online = f64::INFINITY;
        for _ in 0..repeats {
            let secret = RoundSecret::generate(&params, &mut rng);
            let masks = secret.precompute(&packing, &layout, &context, &mut rng)?;
            let start = Instant::now();
            let done = masks.finish(&packing, &layout, &values, 1000, &mut rng)?;
            online = online.min(start.elapsed().as_secs_f64());
            drop(done);
        }
        println!(
            "online step: {:.2} ms, {:.0} M params/s",
            online * 1e3,
            rate(online)
        );
        // What a client does besides encrypting, for one update.
        let (t, bytes) = best(repeats, || ringsum::wire::encode_round_update(&update));
        println!(
            "encode the update ({} bytes): {:.2} ms",
            bytes.len(),
            t * 1e3
        );
        let identity =
            ringsum::pq::SigningIdentity::generate(ringsum::pq::SignatureAlgorithm::MlDsa65)?;
        let routing = ringsum::pq::Routing {
            federation: ringsum::pq::FederationId([7; 32]),
            round: 1,
            kind: ringsum::pq::MessageKind::UpdateSubmission,
            recipient: ringsum::pq::ParticipantId::BROADCAST,
            parameter_set: params.id().to_string(),
        };
        let (t, _) = best(repeats, || {
            ringsum::pq::Envelope::sign(&identity, routing.clone(), bytes.clone())
        });
        println!("sign the update's envelope: {:.2} ms", t * 1e3);
        let (t, _) = best(repeats, || {
            ringsum::pq::Envelope::sign(&identity, routing.clone(), vec![0u8; 32])
        });
        println!("sign a small envelope: {:.2} ms", t * 1e3);
        let updates = vec![update; 20];
        let (t, _) = best(repeats, || {
            let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context)?;
            aggregate.try_add_all(&updates)?;
            Ok::<_, ringsum::core::CoreError>(aggregate)
        });
        println!(
            "aggregate 20 updates: {:.2} ms, {:.0} M param-updates/s",
            t * 1e3,
            20.0 * rate(t)
        );
        Ok(())
    })
    .map_err(|e| e as Box<dyn std::error::Error>)
}

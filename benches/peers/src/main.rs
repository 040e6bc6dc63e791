//! ringsum against fhe.rs (BFV) and tfhe-rs (GLWE) in one run, one thread
//! each: encryption and ciphertext addition per model parameter, and bytes
//! per parameter on the wire. ringsum (per-round keys, rk128-n16384:
//! N = 16384, eight 48-bit primes, log2 Q = 384) and fhe.rs (public-key
//! encryption, eight 50-bit primes, log2 Q = 400) at the same ring size;
//! tfhe-rs at its native modulus 2^64 with its standard GLWE parameters
//! (k = 1, N = 2048), secret-key encryption, which is all its core_crypto
//! layer offers for GLWE. (The row of ringsum's collective-key scheme,
//! removed in December 2026, is gone; BENCHMARKS.md keeps its numbers.)
//!
//! `cd benches/peers && cargo run --release` (add `-- --json` for JSON).

use std::hint::black_box;
use std::time::{Duration, Instant};

use fhe::bfv::{BfvParametersBuilder, Ciphertext, Encoding, Plaintext, PublicKey, SecretKey};
use fhe_traits::{FheEncoder, FheEncrypter, Serialize};
use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::round::{RoundAggregate, RoundContext, RoundSecret};
use ringsum_core::scheme::Packing;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;

const REPEATS: usize = 15;

fn median(mut run: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[REPEATS / 2]
}

struct Row {
    name: &'static str,
    encrypt: f64,
    add: f64,
    bytes: f64,
}

/// The per-round-key scheme: a fresh secret and one full ciphertext of
/// 13 values per coefficient (rk128-n16384), c only on the wire.
fn ringsum_round_row() -> Row {
    let params = ParameterSet::builtin("rk128-n16384").expect("shipped set");
    let packing = Packing::new(&params);
    let context = RoundContext::new(&params, [3; 32], RoundId(1));
    let mut rng = Csprng::from_seed([1; 32]);
    let n = packing.capacity() - 1;
    let layout = ModelLayout::try_new([("w", vec![n as u64])]).expect("layout");
    let values: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 / 1000.0) - 0.5).collect();
    let mut encrypt_once = || {
        RoundSecret::generate(&params, &mut rng)
            .encrypt_update(&packing, &layout, &context, &values, 100, &mut rng)
            .expect("encrypt")
    };
    let encrypt = median(|| {
        black_box(encrypt_once());
    });
    let update = encrypt_once();
    let bytes = ringsum_wire::encode_round_update(&update).len();
    let mut aggregate =
        RoundAggregate::new(&params, &packing, &layout, &context).expect("aggregate");
    aggregate.try_add(&update).expect("add");
    let updates = vec![update; 8];
    let add = median(|| aggregate.try_add_all(&updates).expect("add"));
    Row {
        name: "ringsum per-round keys (rk128-n16384, 13 per coefficient)",
        encrypt: n as f64 / encrypt.as_secs_f64(),
        add: 8.0 * n as f64 / add.as_secs_f64(),
        bytes: bytes as f64 / n as f64,
    }
}

fn fhe_row() -> Row {
    let degree = 16384;
    // A 30-bit prime = 1 mod 2N, for SIMD encoding: one parameter per slot.
    let t = 1_073_643_521;
    let params = BfvParametersBuilder::new()
        .set_degree(degree)
        .set_plaintext_modulus(t)
        .set_moduli_sizes(&[50; 8])
        .build_arc()
        .expect("fhe.rs parameters");
    let mut rng = rand::rng();
    let sk = SecretKey::random(&params, &mut rng);
    let pk = PublicKey::new(&sk, &mut rng);
    let values: Vec<u64> = (0..degree as u64).map(|i| (i * 7919) % t).collect();
    let encrypt = median(|| {
        let pt = Plaintext::try_encode(&values, Encoding::simd(), &params).expect("encode");
        let ct: Ciphertext = pk.try_encrypt(&pt, &mut rng).expect("encrypt");
        black_box(ct);
    });
    let pt = Plaintext::try_encode(&values, Encoding::simd(), &params).expect("encode");
    let ct: Ciphertext = pk.try_encrypt(&pt, &mut rng).expect("encrypt");
    let bytes = ct.to_bytes().len();
    let mut sum = ct.clone();
    let add = median(|| {
        sum += &ct;
    });
    Row {
        name: "fhe.rs 0.1.1 BFV (SIMD slots, 1 parameter per slot)",
        encrypt: degree as f64 / encrypt.as_secs_f64(),
        add: degree as f64 / add.as_secs_f64(),
        bytes: bytes as f64 / degree as f64,
    }
}

fn tfhe_row() -> Row {
    use tfhe::core_crypto::prelude::*;
    let glwe_size = GlweSize(2);
    let polynomial_size = PolynomialSize(2048);
    // tfhe-rs's own standard deviation for k = 1, N = 2048 (its shortint
    // parameter sets).
    let noise = Gaussian::from_dispersion_parameter(StandardDev(2.845_267_479_601_915e-15), 0.0);
    let modulus = CiphertextModulus::new_native();
    let mut seeder = new_seeder();
    let seeder = seeder.as_mut();
    let mut encryption =
        EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let key = allocate_and_generate_new_binary_glwe_secret_key(
        glwe_size.to_glwe_dimension(),
        polynomial_size,
        &mut secret,
    );
    let plaintext = PlaintextList::from_container(
        (0..polynomial_size.0 as u64)
            .map(|i| i << 40)
            .collect::<Vec<_>>(),
    );
    let mut ct = GlweCiphertext::new(0u64, glwe_size, polynomial_size, modulus);
    let encrypt = median(|| {
        encrypt_glwe_ciphertext(&key, &mut ct, &plaintext, noise, &mut encryption);
        black_box(&ct);
    });
    let other = ct.clone();
    let add = median(|| glwe_ciphertext_add_assign(&mut ct, &other));
    let bytes = glwe_size.0 * polynomial_size.0 * 8;
    Row {
        name: "tfhe-rs 1.8.2 GLWE (k = 1, N = 2048, q = 2^64, secret key)",
        encrypt: polynomial_size.0 as f64 / encrypt.as_secs_f64(),
        add: polynomial_size.0 as f64 / add.as_secs_f64(),
        bytes: bytes as f64 / polynomial_size.0 as f64,
    }
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    // One thread for both: ringsum's encryption would otherwise use every
    // core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let ours = pool.install(ringsum_round_row);
    let theirs = fhe_row();
    let tfhe = tfhe_row();
    if json {
        let row = |r: &Row| serde_json::json!({"name": r.name, "encrypt_params_per_s": r.encrypt, "add_params_per_s": r.add, "bytes_per_param": r.bytes});
        println!(
            "{}",
            serde_json::json!({
                "ringsum": row(&ours),
                "fhe_rs": row(&theirs),
                "tfhe_rs": row(&tfhe),
                "encrypt_ratio": ours.encrypt / theirs.encrypt,
                "add_ratio": ours.add / theirs.add,
                "bytes_ratio": theirs.bytes / ours.bytes,
            })
        );
        return;
    }
    println!("N = 16384 for ringsum and fhe.rs, one thread, median of {REPEATS}");
    println!(
        "{:<58} {:>16} {:>16} {:>12}",
        "", "encrypt M/s", "add M/s", "bytes/param"
    );
    for r in [&ours, &theirs, &tfhe] {
        println!(
            "{:<58} {:>16.2} {:>16.1} {:>12.2}",
            r.name,
            r.encrypt / 1e6,
            r.add / 1e6,
            r.bytes
        );
    }
    println!(
        "ringsum / fhe.rs: encryption {:.1}x faster, addition {:.1}x faster, {:.1}x fewer bytes per parameter",
        ours.encrypt / theirs.encrypt,
        ours.add / theirs.add,
        theirs.bytes / ours.bytes
    );
    println!(
        "ringsum / tfhe-rs: encryption {:.1}x faster, addition {:.1}x, {:.1}x fewer bytes per parameter",
        ours.encrypt / tfhe.encrypt,
        ours.add / tfhe.add,
        tfhe.bytes / ours.bytes
    );
}

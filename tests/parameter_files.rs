//! The files under params/ are what users copy and edit: load them from disk,
//! exactly as the loader sees them, and check they match the built-in copies.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss
)]

use std::path::{Path, PathBuf};

use ringsum::core::{CoreError, ParameterSet};

fn params_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("params")
}

#[test]
fn every_file_in_params_loads_and_matches_its_builtin_twin() {
    let sets = ParameterSet::load_dir(params_dir()).unwrap();
    assert!(sets.len() >= 4);
    let mut ids: Vec<&str> = sets.iter().map(|s| s.id().as_str()).collect();
    ids.sort_unstable();
    let mut builtin = ParameterSet::builtin_ids();
    builtin.sort_unstable();
    assert_eq!(ids, builtin, "params/ and the compiled-in list must agree");
    for set in &sets {
        let twin = ParameterSet::builtin(set.id().as_str()).unwrap();
        assert_eq!(set.primes(), twin.primes());
        assert_eq!(set.degree(), twin.degree());
        assert_eq!(set.shares(), twin.shares());
        assert_eq!(set.encoding(), twin.encoding());
    }
}

/// Writes `text` as `name` in a fresh directory, loads it, and cleans up.
fn load_edited(name: &str, text: &str) -> CoreError {
    let dir = std::env::temp_dir().join(format!(
        "ringsum-params-{}-{}",
        std::process::id(),
        name.trim_end_matches(".toml")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let err = ParameterSet::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    err
}

#[test]
fn an_edited_copy_with_a_larger_modulus_is_refused() {
    let original = std::fs::read_to_string(params_dir().join("rk128-n8192.toml")).unwrap();
    let edited = original.replace(
        "prime_bits = [47, 47, 47, 47]",
        "prime_bits = [47, 47, 47, 47, 47]",
    );
    assert_ne!(original, edited);
    let err = load_edited("rk128-n8192.toml", &edited);
    assert!(
        matches!(
            err,
            CoreError::SecurityBoundExceeded {
                degree: 8192,
                log2_q: 235,
                bound: 202,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("rk128-n8192.toml"));
}

/// A parameter file of the removed collective-key scheme, such as a user's
/// old copy of `pq128-n8192.toml`, is refused with a message that names the
/// file and says what to use instead.
#[test]
fn an_old_collective_key_file_is_refused_with_a_clear_message() {
    let old = r#"# ringsum parameter set: ring degree 8192 (collective-key scheme)
id = "pq128-n8192"
description = "N = 8192, 4 primes of 50 bits (log2 Q <= 200), 128-bit post-quantum"

[ring]
degree = 8192
prime_bits = [50, 50, 50, 50]

[noise]
sigma = 3.2
tail_cut = 6.0
secret = "ternary"

[security]
level = 128
model = "quantum"

[encoding]
clip = 1.0
fraction_bits = 16
slot_bits = 28
slots = 5
max_clients = 1000
max_weight = 10000

[threshold]
max_holders = 16
flooding_bits = 40
"#;
    let err = load_edited("pq128-n8192.toml", old);
    assert!(
        matches!(&err, CoreError::CollectiveKeyRemoved { file } if Path::new(file).ends_with("pq128-n8192.toml")),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("pq128-n8192.toml"), "{message}");
    assert!(message.contains("collective-key scheme"), "{message}");
    assert!(message.contains("rk128-n16384"), "{message}");
    assert!(!params_dir().join("pq128-n8192.toml").exists());
}

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

use std::path::PathBuf;

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
    }
}

#[test]
fn an_edited_copy_with_a_larger_modulus_is_refused() {
    let original = std::fs::read_to_string(params_dir().join("pq128-n8192.toml")).unwrap();
    let edited = original.replace(
        "prime_bits = [50, 50, 50, 50]",
        "prime_bits = [50, 50, 50, 50, 50]",
    );
    assert_ne!(original, edited);
    let dir = std::env::temp_dir().join(format!("ringsum-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pq128-n8192.toml");
    std::fs::write(&path, edited).unwrap();
    let err = ParameterSet::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(
            err,
            CoreError::SecurityBoundExceeded {
                degree: 8192,
                log2_q: 250,
                bound: 202,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("pq128-n8192.toml"));
}

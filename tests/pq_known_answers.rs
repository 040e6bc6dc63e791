//! NIST ACVP known-answer tests for ML-DSA-65 (FIPS 204) and ML-KEM-1024
//! (FIPS 203), run through the calls ringsum itself makes (see
//! tests/vectors/README.md for the source of the vectors).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use ringsum::pq::kat;
use serde_json::Value;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/vectors/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unhex(value: &Value) -> Vec<u8> {
    let text = value.as_str().unwrap();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn array32(value: &Value) -> [u8; 32] {
    unhex(value).try_into().unwrap()
}

/// Every test of every group of a vector file, with its group.
fn tests(file: &Value) -> Vec<(&Value, &Value)> {
    file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
        .collect()
}

#[test]
fn ml_dsa_65_key_generation() {
    let file = load("ml-dsa/key-gen.json");
    let cases = tests(&file);
    assert_eq!(cases.len(), 25);
    for (group, test) in cases {
        assert_eq!(group["parameterSet"], "ML-DSA-65");
        let (pk, sk) = kat::ml_dsa_65_keygen(&array32(&test["seed"])).unwrap();
        assert_eq!(pk, unhex(&test["pk"]), "tcId {}", test["tcId"]);
        assert_eq!(sk, unhex(&test["sk"]), "tcId {}", test["tcId"]);
    }
}

#[test]
fn ml_dsa_65_signature_generation() {
    let file = load("ml-dsa/sig-gen.json");
    let cases = tests(&file);
    assert_eq!(cases.len(), 20);
    let mut hedged = 0;
    for (group, test) in cases {
        let rnd = if group["deterministic"] == true {
            [0u8; 32]
        } else {
            hedged += 1;
            array32(&test["rnd"])
        };
        let signature =
            kat::ml_dsa_65_sign_internal(&unhex(&test["sk"]), &unhex(&test["message"]), &rnd)
                .unwrap();
        assert_eq!(
            signature,
            unhex(&test["signature"]),
            "tcId {}",
            test["tcId"]
        );
    }
    assert_eq!(hedged, 10);
}

#[test]
fn ml_dsa_65_signature_verification() {
    let file = load("ml-dsa/sig-ver.json");
    let cases = tests(&file);
    assert_eq!(cases.len(), 15);
    let (mut passed, mut failed) = (0, 0);
    for (group, test) in cases {
        let expected = test["testPassed"].as_bool().unwrap();
        let verdict = kat::ml_dsa_65_verify_internal(
            &unhex(&group["pk"]),
            &unhex(&test["message"]),
            &unhex(&test["signature"]),
        )
        .unwrap();
        assert_eq!(
            verdict, expected,
            "tcId {} ({})",
            test["tcId"], test["reason"]
        );
        if expected { passed += 1 } else { failed += 1 }
    }
    assert!(passed > 0 && failed > 0, "both outcomes are exercised");
}

#[test]
fn ml_kem_1024_key_generation() {
    let file = load("ml-kem/key-gen.json");
    let cases = tests(&file);
    assert_eq!(cases.len(), 25);
    for (group, test) in cases {
        assert_eq!(group["parameterSet"], "ML-KEM-1024");
        let (ek, dk) = kat::ml_kem_1024_keygen(&array32(&test["d"]), &array32(&test["z"])).unwrap();
        assert_eq!(ek, unhex(&test["ek"]), "tcId {}", test["tcId"]);
        assert_eq!(dk, unhex(&test["dk"]), "tcId {}", test["tcId"]);
    }
}

#[test]
fn ml_kem_1024_encapsulation_and_decapsulation() {
    let file = load("ml-kem/encap-decap.json");
    let (mut encaps, mut decaps, mut modified) = (0, 0, 0);
    for (group, test) in tests(&file) {
        match group["function"].as_str().unwrap() {
            "encapsulation" => {
                let (c, k) =
                    kat::ml_kem_1024_encapsulate(&unhex(&test["ek"]), &array32(&test["m"]))
                        .unwrap();
                assert_eq!(c, unhex(&test["c"]), "tcId {}", test["tcId"]);
                assert_eq!(k.to_vec(), unhex(&test["k"]), "tcId {}", test["tcId"]);
                // And the decapsulation key of the same test recovers K.
                let back = kat::ml_kem_1024_decapsulate(&unhex(&test["dk"]), &c).unwrap();
                assert_eq!(back, k);
                encaps += 1;
            }
            "decapsulation" => {
                let k =
                    kat::ml_kem_1024_decapsulate(&unhex(&group["dk"]), &unhex(&test["c"])).unwrap();
                assert_eq!(
                    k.to_vec(),
                    unhex(&test["k"]),
                    "tcId {} ({})",
                    test["tcId"],
                    test["reason"]
                );
                if test["reason"] != "no modification" {
                    modified += 1;
                }
                decaps += 1;
            }
            other => panic!("unexpected function {other}"),
        }
    }
    assert_eq!((encaps, decaps), (25, 10));
    assert!(modified > 0, "implicit rejection is exercised");
}

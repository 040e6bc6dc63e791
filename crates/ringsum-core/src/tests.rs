use crate::params::max_log2_q_128;
use crate::{CoreError, ParameterSet, SecretDistribution, SecurityModel};

const GOOD: &str = r#"
id = "test-set"
description = "a test"

[ring]
degree = 4096
prime_bits = [50, 50]

[noise]
sigma = 4.53
tail_cut = 6.0
secret = "gaussian"

[security]
level = 128
model = "quantum"

[encoding]
clip = 1.0
fraction_bits = 16
slot_bits = 24
slots = 1
max_clients = 100
max_weight = 1000

[shares]
field_prime = 65521
max_holders = 8
"#;

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replace(from, to)
}

#[test]
fn every_builtin_set_validates_and_claims_quantum_security() {
    for id in ParameterSet::builtin_ids() {
        let params = ParameterSet::builtin(id).unwrap();
        assert_eq!(params.id().as_str(), id);
        assert_eq!(params.security(), (128, SecurityModel::Quantum));
        let bound = max_log2_q_128(params.degree(), SecurityModel::Quantum).unwrap();
        assert!(params.log2_q() <= bound);
        assert!(params.primes().iter().all(|&p| p < 1 << 50));
        assert_eq!(params.ring().degree(), params.degree());
    }
    let degrees: Vec<usize> = ParameterSet::builtin_ids()
        .iter()
        .map(|id| ParameterSet::builtin(id).unwrap().degree())
        .collect();
    assert_eq!(degrees, [4096, 8192, 16384, 32768]);
}

/// The per-round-key sets: the modulus holds the slots, the scale and the
/// margin and little more, and every coefficient carries K values.
#[test]
fn round_key_sets_fit_their_budget_tightly() {
    for (id, slots, log2_q) in [
        ("rk128-n4096", 2, 76),
        ("rk128-n8192", 6, 188),
        ("rk128-n16384", 13, 384),
        ("rk128-n32768", 28, 804),
    ] {
        let params = ParameterSet::builtin(id).unwrap();
        assert_eq!(params.encoding().slots, slots, "{id}");
        assert_eq!(params.log2_q(), log2_q, "{id}");
        assert_eq!(params.secret_distribution(), SecretDistribution::Gaussian);
        assert!(params.gaussian().sigma() >= crate::params::MIN_ROUND_KEY_SIGMA);
        let shares = params.shares();
        assert_eq!(shares.field_prime, 65521);
        let budget = params.noise_budget();
        assert_eq!(budget.scale_bits, 16);
        let required = budget.required_modulus_bits(slots * 28);
        // The budget fits, and one more slot would not.
        assert!(required < log2_q);
        assert!(budget.required_modulus_bits((slots + 1) * 28) >= log2_q);
        // The sum of max_clients secrets lifts exactly from Z_p.
        let largest = params.encoding().max_clients * params.gaussian().bound().unsigned_abs();
        assert!(2 * largest < shares.field_prime);
    }
    let default = ParameterSet::builtin(crate::DEFAULT_PARAMETER_SET).unwrap();
    assert_eq!(default.degree(), 16384);
    assert_eq!(default.encoding().slots, 13);
    assert_eq!(crate::DEFAULT_ROUND_KEY_SET, crate::DEFAULT_PARAMETER_SET);
}

/// A file of the collective-key scheme, as the removed `pq128-*` sets were
/// written, is refused with a message that says so, whatever else it holds.
#[test]
fn collective_key_files_are_refused_with_a_clear_message() {
    let old = r#"
id = "pq128-n4096"
description = "N = 4096, 2 primes of 50 bits (log2 Q <= 100), 128-bit post-quantum"

[ring]
degree = 4096
prime_bits = [50, 50]

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
slot_bits = 24
slots = 1
max_clients = 100
max_weight = 10000

[threshold]
max_holders = 8
flooding_bits = 40
"#;
    let err = ParameterSet::from_toml_str(old, "params/pq128-n4096.toml").unwrap_err();
    assert!(
        matches!(&err, CoreError::CollectiveKeyRemoved { file } if file == "params/pq128-n4096.toml"),
        "{err}"
    );
    let message = err.to_string();
    for words in [
        "pq128-n4096.toml",
        "`threshold`",
        "collective-key scheme",
        "removed",
        "`shares`",
        "rk128-n16384",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    // Beside a `[shares]` section, or with any content, still refused.
    let both = GOOD.replace("[shares]", "[threshold]\nmax_holders = 4\n[shares]");
    assert!(matches!(
        ParameterSet::from_toml_str(&both, "test-set.toml").unwrap_err(),
        CoreError::CollectiveKeyRemoved { .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(&format!("{GOOD}\n[threshold]\n"), "test-set.toml")
            .unwrap_err(),
        CoreError::CollectiveKeyRemoved { .. }
    ));
    // The shipped sets are the per-round-key ones only.
    for id in ["pq128-n4096", "pq128-n8192", "pq128-n16384", "pq128-n32768"] {
        assert!(matches!(
            ParameterSet::builtin(id),
            Err(CoreError::UnknownParameterSet { .. })
        ));
    }
}

#[test]
fn round_key_files_are_refused_when_the_scheme_is_not_covered() {
    let good = include_str!("../../../params/rk128-n4096.toml");
    let load = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        ParameterSet::from_toml_str(&good.replace(from, to), "rk128-n4096.toml")
    };
    assert!(load("", "").is_ok());
    // Ternary secrets leak through the published key sum.
    assert!(matches!(
        load("secret = \"gaussian\"", "secret = \"ternary\"").unwrap_err(),
        CoreError::SecretNotCovered {
            secret: SecretDistribution::Ternary,
            ..
        }
    ));
    // The standard's width is not enough once a sum is known.
    assert!(matches!(
        load("sigma = 4.53", "sigma = 3.2").unwrap_err(),
        CoreError::NoiseTooNarrow { .. }
    ));
    // A field too small to lift the sum of max_clients secrets.
    assert!(matches!(
        load("field_prime = 65521", "field_prime = 40009").unwrap_err(),
        CoreError::ShareFieldTooSmall {
            field_prime: 40009,
            max_clients: 1000,
            secret_bound: 27,
            ..
        }
    ));
    for bad in ["65520", "7", "4294967311"] {
        assert!(matches!(
            load("field_prime = 65521", &format!("field_prime = {bad}")).unwrap_err(),
            CoreError::OutOfRange {
                field: "shares.field_prime",
                ..
            }
        ));
    }
    assert!(matches!(
        load("max_holders = 64", "max_holders = 0").unwrap_err(),
        CoreError::OutOfRange {
            field: "shares.max_holders",
            ..
        }
    ));
    // The `[shares]` section is required.
    let no_shares = good[..good.find("[shares]").unwrap()].to_owned();
    match ParameterSet::from_toml_str(&no_shares, "rk128-n4096.toml").unwrap_err() {
        CoreError::MalformedParameters { field, message, .. } => {
            assert_eq!(field, "shares");
            assert!(message.contains("missing section `shares`"), "{message}");
        }
        other => panic!("expected a missing-section error, got {other}"),
    }
    // A 14th slot does not fit N = 16384.
    let big = include_str!("../../../params/rk128-n16384.toml").replace("slots = 13", "slots = 14");
    assert!(matches!(
        ParameterSet::from_toml_str(&big, "rk128-n16384.toml").unwrap_err(),
        CoreError::NoiseBudgetExceeded { .. }
    ));
}

#[test]
fn a_good_file_loads() {
    let params = ParameterSet::from_toml_str(GOOD, "test-set.toml").unwrap();
    assert_eq!(params.degree(), 4096);
    assert_eq!(params.primes().len(), 2);
    assert_eq!(params.gaussian().bound(), 27);
    assert_eq!(params.shares().max_holders, 8);
    let explicit = with(
        "prime_bits = [50, 50]",
        &format!("primes = [{}, {}]", params.primes()[0], params.primes()[1]),
    );
    let again = ParameterSet::from_toml_str(&explicit, "inline").unwrap();
    assert_eq!(again.primes(), params.primes());
}

#[test]
fn an_oversized_modulus_is_refused_with_n_log_q_and_the_bound() {
    // Three 50-bit primes: log2 Q = 150 > 101 at N = 4096 (quantum).
    let text = with("prime_bits = [50, 50]", "prime_bits = [50, 50, 50]");
    let err = ParameterSet::from_toml_str(&text, "test-set.toml").unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::SecurityBoundExceeded {
                degree: 4096,
                log2_q: 150,
                bound: 101,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("4096") && message.contains("150") && message.contains("101"),
        "{message}"
    );
    // The classical column allows 109 bits, still not 150.
    let classical = text.replace("model = \"quantum\"", "model = \"classical\"");
    assert!(matches!(
        ParameterSet::from_toml_str(&classical, "x").unwrap_err(),
        CoreError::SecurityBoundExceeded { bound: 109, .. }
    ));
    // 102 bits passes the classical bound but not the quantum one.
    let edge = with("prime_bits = [50, 50]", "prime_bits = [51, 51]");
    assert!(matches!(
        ParameterSet::from_toml_str(&edge, "x").unwrap_err(),
        CoreError::SecurityBoundExceeded {
            log2_q: 102,
            bound: 101,
            ..
        }
    ));
    assert!(
        ParameterSet::from_toml_str(&edge.replace("\"quantum\"", "\"classical\""), "x").is_ok()
    );
}

#[test]
fn malformed_files_name_the_file_and_the_field() {
    let cases = [
        (with("degree = 4096", "degree = \"big\""), "ring.degree"),
        (with("sigma = 4.53\n", ""), "noise"),
        (
            with("tail_cut = 6.0", "tail_cut = 6.0\nsigmma = 3"),
            "noise.sigmma",
        ),
        (
            with("secret = \"gaussian\"", "secret = \"binary\""),
            "noise.secret",
        ),
        (
            with("model = \"quantum\"", "model = \"postquantum\""),
            "security.model",
        ),
        (with("[security]", "[securty]"), "securty"),
        (with("level = 128", "level = -1"), "security.level"),
        (
            with("prime_bits = [50, 50]", "prime_bits = [50, \"x\"]"),
            "ring.prime_bits",
        ),
        ("id = ".to_owned(), "."),
    ];
    for (text, field) in cases {
        let err = ParameterSet::from_toml_str(&text, "test-set.toml").unwrap_err();
        match &err {
            CoreError::MalformedParameters {
                file, field: found, ..
            } => {
                assert_eq!(file, "test-set.toml");
                assert!(
                    found.starts_with(field),
                    "expected {field}, got {found}: {err}"
                );
            }
            other => panic!("expected a malformed-file error for {field}, got {other}"),
        }
        assert!(err.to_string().contains("test-set.toml"));
    }
}

#[test]
fn refused_values_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (with("degree = 4096", "degree = 3000"), "ring.degree"),
        (
            with("prime_bits = [50, 50]", "prime_bits = [70]"),
            "ring.prime_bits",
        ),
        (
            with(
                "prime_bits = [50, 50]",
                &format!("prime_bits = {:?}", vec![62; 100_000]),
            ),
            "ring.prime_bits",
        ),
        (
            with(
                "prime_bits = [50, 50]",
                &format!("primes = {:?}", vec![12289; 33]),
            ),
            "ring.primes",
        ),
        (
            with("prime_bits = [50, 50]", "primes = [12289, 15]"),
            "ring.primes",
        ),
        (
            with("prime_bits = [50, 50]", "primes = [40961, 40961]"),
            "ring.primes",
        ),
        (
            with("prime_bits = [50, 50]", "primes = [7681]"),
            "ring.primes",
        ),
        (with("tail_cut = 6.0", "tail_cut = 1.0"), "noise"),
    ];
    for (text, field) in cases {
        match ParameterSet::from_toml_str(&text, "test-set.toml").unwrap_err() {
            CoreError::InvalidParameter {
                field: found, file, ..
            } => {
                assert_eq!(found, field);
                assert_eq!(file, "test-set.toml");
            }
            other => panic!("expected an invalid-parameter error for {field}, got {other}"),
        }
    }
    assert!(matches!(
        ParameterSet::from_toml_str(&with("sigma = 4.53", "sigma = 1.0"), "x").unwrap_err(),
        CoreError::NoiseTooNarrow { .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(
            &with(
                "prime_bits = [50, 50]",
                "prime_bits = [50]\nprimes = [12289]"
            ),
            "x"
        )
        .unwrap_err(),
        CoreError::AmbiguousPrimes { .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(&with("level = 128", "level = 192"), "x").unwrap_err(),
        CoreError::UnknownSecurityBound { level: 192, .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(&with("degree = 4096", "degree = 65536"), "x").unwrap_err(),
        CoreError::UnknownSecurityBound { degree: 65536, .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(GOOD, "dir/other-name.toml").unwrap_err(),
        CoreError::IdMismatch { .. }
    ));
    assert!(matches!(
        ParameterSet::from_toml_str(&with("id = \"test-set\"", "id = \"Test Set\""), "x")
            .unwrap_err(),
        CoreError::InvalidId { .. }
    ));
    assert!(matches!(
        ParameterSet::builtin("rk128-n1"),
        Err(CoreError::UnknownParameterSet { .. })
    ));
}

#[test]
fn loading_from_disk_reports_missing_files() {
    let err = ParameterSet::load("/nonexistent/ringsum/x.toml").unwrap_err();
    assert!(matches!(err, CoreError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/ringsum/x.toml"));
}

mod robustness {
    use super::GOOD;
    use crate::ParameterSet;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary text is refused with an error, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = ParameterSet::from_toml_str(&text, "fuzz.toml");
        }

        /// A good file with one byte changed either loads or is refused;
        /// what loads still satisfies the security bound.
        #[test]
        fn mutated_files_never_panic(position in 0usize..400, byte in any::<u8>()) {
            let mut bytes = GOOD.as_bytes().to_vec();
            let position = position % bytes.len();
            bytes[position] = byte;
            if let Ok(text) = String::from_utf8(bytes)
                && let Ok(params) = ParameterSet::from_toml_str(&text, "test-set.toml")
            {
                let bound = crate::params::max_log2_q_128(params.degree(), params.security().1).unwrap();
                prop_assert!(params.log2_q() <= bound);
            }
        }
    }
}

#[test]
fn encodings_that_could_overflow_are_refused() {
    // 200 clients of up to 2^16 + 1 exceed a signed 24-bit slot (2^23 - 1).
    let err = ParameterSet::from_toml_str(
        &with("max_clients = 100", "max_clients = 200"),
        "test-set.toml",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::SlotOverflow {
                max_clients: 200,
                max_quantized: 65536,
                slot_bits: 24,
                ..
            }
        ),
        "{err}"
    );
    // A clip of 2 doubles every value: 100 * (2^17 + 1) > 2^23 - 1.
    assert!(matches!(
        ParameterSet::from_toml_str(&with("clip = 1.0", "clip = 2.0"), "test-set.toml")
            .unwrap_err(),
        CoreError::SlotOverflow {
            max_quantized: 131072,
            ..
        }
    ));
    // Four slots of 24 bits plus the scale (2^13 above 100 clients'
    // errors of up to 27) and the margin do not fit in the 99 bits of Q.
    let err =
        ParameterSet::from_toml_str(&with("slots = 1", "slots = 4"), "test-set.toml").unwrap_err();
    match err {
        CoreError::NoiseBudgetExceeded {
            required_bits: 112,
            available_bits: 99,
            scale_bits: 13,
            message_bits: 96,
            ..
        } => {}
        other => panic!("expected a noise-budget refusal, got {other}"),
    }
    // Three slots fit: 13 + 72 + 3 = 88 bits.
    assert!(ParameterSet::from_toml_str(&with("slots = 1", "slots = 3"), "test-set.toml").is_ok());
    for (from, to, field) in [
        ("clip = 1.0", "clip = -1.0", "encoding.clip"),
        ("clip = 1.0", "clip = nan", "encoding.clip"),
        ("slot_bits = 24", "slot_bits = 70", "encoding.slot_bits"),
        ("slots = 1", "slots = 0", "encoding.slots"),
        (
            "max_clients = 100",
            "max_clients = 0",
            "encoding.max_clients",
        ),
        ("max_weight = 1000", "max_weight = 0", "encoding.max_weight"),
        ("max_holders = 8", "max_holders = 0", "shares.max_holders"),
        (
            "max_holders = 8",
            "max_holders = 2000",
            "shares.max_holders",
        ),
        (
            "field_prime = 65521",
            "field_prime = 65522",
            "shares.field_prime",
        ),
    ] {
        match ParameterSet::from_toml_str(&with(from, to), "test-set.toml").unwrap_err() {
            CoreError::OutOfRange { field: found, .. } => assert_eq!(found, field),
            other => panic!("expected {field} out of range, got {other}"),
        }
    }
}

proptest::proptest! {
    /// The shape of an update: every ciphertext but the last is full, the
    /// last uses ceil(n / K) coefficients for its n values, and the values
    /// add up to the parameters plus the weight.
    #[test]
    fn update_shapes_cover_every_value_once(parameters in 0usize..2_000_000, set in 0usize..4) {
        use crate::scheme::Packing;
        use crate::update::UpdateShape;
        let params = ParameterSet::builtin(ParameterSet::builtin_ids()[set]).unwrap();
        let packing = Packing::new(&params);
        let shape = UpdateShape::for_parameters(&packing, parameters);
        let count = shape.ciphertexts();
        let (n, k) = (packing.degree(), packing.slots());
        proptest::prop_assert_eq!(count, (parameters + 1).div_ceil(packing.capacity()));
        let total: usize = (0..count).map(|i| shape.values_in(i)).sum();
        proptest::prop_assert_eq!(total, parameters + 1);
        for i in 0..count.saturating_sub(1) {
            proptest::prop_assert_eq!(shape.values_in(i), packing.capacity());
            proptest::prop_assert_eq!(shape.c0_coefficients(i), n);
        }
        let last = count - 1;
        let (values, used) = (shape.values_in(last), shape.c0_coefficients(last));
        proptest::prop_assert!(values > 0 && used * k >= values && (used - 1) * k < values);
        proptest::prop_assert_eq!(shape.values_in(count), 0);
        proptest::prop_assert_eq!(shape.c0_coefficients(count), 0);
    }
}

proptest::proptest! {
    /// The vectorisable stochastic rounding agrees with the plain
    /// definition, floor(y) + [u < y - floor(y)], over the range the
    /// validator allows.
    #[test]
    fn stochastic_rounding_matches_its_definition(
        integer in -(1i64 << 50)..(1i64 << 50),
        fraction in 0.0f64..1.0,
        small in -100.0f64..100.0,
        random in proptest::prelude::any::<u32>(),
    ) {
        use crate::model::stochastic_round;
        for y in [integer as f64 + fraction, small, integer as f64, -0.0] {
            let floor = y.floor();
            let uniform = f64::from(random) / 4_294_967_296.0;
            let expected = floor as i64 + i64::from(uniform < y - floor);
            proptest::prop_assert_eq!(stochastic_round(y, random), expected, "y = {}", y);
        }
    }
}

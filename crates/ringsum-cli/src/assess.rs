//! `ringsum assess`: the quantum threat assessment of a federation.
//!
//! It reads the federation file as `ringsum serve` does (building and
//! checking the federation description, so every member key has been
//! checked against the federation's algorithms), lists every primitive the
//! federation relies on, what it protects and its status against a quantum
//! adversary, and, with `--coordinator`, probes the running coordinator's
//! TLS ([`ringsum_net::probe`]). docs/assess.md explains every line.
//!
//! The gate ([`Assessment::passes`], the command's exit code): it fails
//! when a primitive that the confidentiality of updates rests on is
//! quantum-vulnerable ([`Reliance::Updates`]), or when the coordinator
//! could not be probed. Hybrid halves ([`Reliance::HybridHalf`]) never fail
//! it: the post-quantum half protects alone. TLS ([`Reliance::Transport`])
//! warns: a classical group exposes metadata and the published sums to a
//! recording adversary, a classical certificate lets an active quantum
//! attacker impersonate the endpoint, and neither reveals an update;
//! `--strict` makes warnings fail the gate too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ringsum_core::SecurityModel;
use ringsum_core::params::max_log2_q_128;
use ringsum_net::probe::{
    self, CertificateInfo, Groups, Negotiated, Offer, PqStatus, ProbeError, Versions,
};
use ringsum_pq::AlgorithmPolicy;
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::net::FederationConfig;

/// The least quantum security, in bits, of a symmetric primitive: Grover's
/// search for an AES-128 key, NIST's post-quantum security category 1.
pub const SYMMETRIC_FLOOR_QUANTUM_BITS: u32 = 64;

/// The least claimed security level, in bits, of the RLWE parameter set.
pub const RLWE_FLOOR_BITS: u32 = 128;

/// What `ringsum assess` was asked.
#[derive(Clone, Debug)]
pub struct Options {
    /// The federation file.
    pub config: PathBuf,
    /// The running coordinator to probe, `https://host:port`.
    pub coordinator: Option<String>,
    /// The certificate or CA (PEM) the coordinator's chain is checked
    /// against.
    pub ca: Option<PathBuf>,
    /// The name the certificate is checked against (default: the URL's
    /// host).
    pub server_name: Option<String>,
    /// Warnings fail the gate too.
    pub strict: bool,
}

/// What a primitive is worth against a quantum adversary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Status {
    /// Post-quantum, with the claim it rests on.
    PostQuantum {
        /// E.g. "128-bit (HomomorphicEncryption.org standard)".
        claim: String,
    },
    /// A hybrid: secure while its post-quantum half is.
    Hybrid {
        /// The half that protects alone, e.g. "ML-KEM-768".
        post_quantum_half: String,
    },
    /// No computation helps, quantum or classical.
    InformationTheoretic,
    /// A symmetric primitive: a quantum computer reduces its security
    /// generically (Grover's search, BHT collisions).
    Symmetric {
        /// Bits against classical attacks.
        classical_bits: u32,
        /// Bits against quantum attacks, by the estimate named in `attack`.
        quantum_bits: u32,
        /// The generic attack and what it costs.
        attack: String,
    },
    /// A generator expanded from a public seed: there is no secret key to
    /// search for.
    NoSecret,
    /// Classical public-key cryptography: broken by Shor's algorithm.
    Classical,
    /// A security claim that does not hold against a quantum adversary, or
    /// an algorithm this build does not know.
    Unknown {
        /// Why.
        reason: String,
    },
    /// No encryption at all.
    Plaintext,
    /// An offer the server refused (for the fallback probes: good).
    Refused,
    /// Not probed (no `--coordinator`).
    NotProbed,
    /// The probe failed: the assessment is incomplete.
    ProbeFailed {
        /// What failed.
        error: String,
    },
}

impl Status {
    /// Whether a quantum adversary can break what it protects.
    #[must_use]
    pub fn is_quantum_vulnerable(&self) -> bool {
        match self {
            Self::Classical | Self::Unknown { .. } | Self::Plaintext | Self::ProbeFailed { .. } => {
                true
            }
            Self::Symmetric { quantum_bits, .. } => *quantum_bits < SYMMETRIC_FLOOR_QUANTUM_BITS,
            Self::PostQuantum { .. }
            | Self::Hybrid { .. }
            | Self::InformationTheoretic
            | Self::NoSecret
            | Self::Refused
            | Self::NotProbed => false,
        }
    }

    /// One line of text.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::PostQuantum { claim } => format!("post-quantum: {claim}"),
            Self::Hybrid { post_quantum_half } => {
                format!("hybrid: post-quantum while {post_quantum_half} holds")
            }
            Self::InformationTheoretic => "information-theoretic".into(),
            Self::Symmetric { attack, .. } => format!("symmetric: {attack}"),
            Self::NoSecret => "no secret: public-seed expansion".into(),
            Self::Classical => "classical: broken by Shor".into(),
            Self::Unknown { reason } => format!("not established: {reason}"),
            Self::Plaintext => "none: plaintext".into(),
            Self::Refused => "refused by the server".into(),
            Self::NotProbed => "not probed (give --coordinator)".into(),
            Self::ProbeFailed { error } => format!("probe failed: {error}"),
        }
    }

    /// The status of a TLS algorithm the probe classified; `post_quantum`
    /// names the post-quantum algorithm or half.
    fn of_tls(status: PqStatus, post_quantum: &str) -> Self {
        match status {
            PqStatus::PostQuantum => Self::PostQuantum {
                claim: post_quantum.to_owned(),
            },
            PqStatus::Hybrid => Self::Hybrid {
                post_quantum_half: post_quantum.to_owned(),
            },
            PqStatus::Classical => Self::Classical,
            PqStatus::Unknown => Self::Unknown {
                reason: "an algorithm this build does not know".into(),
            },
        }
    }
}

/// What a line counts for in the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reliance {
    /// The confidentiality of updates rests on it: quantum-vulnerable fails
    /// the gate.
    Updates,
    /// The classical half of a hybrid whose post-quantum half protects
    /// alone: never fails the gate.
    HybridHalf,
    /// The connection to the coordinator (metadata, published sums, the
    /// endpoint's identity), not the updates: quantum-vulnerable warns
    /// (fails with `--strict`).
    Transport,
}

/// A line's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Nothing to do.
    Ok,
    /// Worth fixing; does not fail the gate (unless `--strict`).
    Warn,
    /// Fails the gate.
    Fail,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// The gate's rule for one line: a failed probe always fails (the
/// assessment asked for is incomplete); otherwise a line that is not
/// quantum-vulnerable is ok, and a vulnerable one fails when updates rely
/// on it, is ok as a hybrid half, and warns as transport (fails with
/// `strict`).
#[must_use]
pub fn verdict(reliance: Reliance, status: &Status, strict: bool) -> Verdict {
    if matches!(status, Status::ProbeFailed { .. }) {
        return Verdict::Fail;
    }
    if !status.is_quantum_vulnerable() {
        return Verdict::Ok;
    }
    match reliance {
        Reliance::Updates => Verdict::Fail,
        Reliance::HybridHalf => Verdict::Ok,
        Reliance::Transport if strict => Verdict::Fail,
        Reliance::Transport => Verdict::Warn,
    }
}

/// One primitive of the assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The primitive, with its parameters.
    pub primitive: String,
    /// What it protects.
    pub protects: String,
    /// Its status against a quantum adversary.
    pub status: Status,
    /// [`Status::text`].
    pub status_text: String,
    /// What it counts for in the gate.
    pub reliance: Reliance,
    /// [`verdict`].
    pub verdict: Verdict,
    /// Why, and where the figures come from.
    pub detail: String,
}

/// The RLWE security claim of the federation's parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct RlweFacts {
    /// The set's id, e.g. `rk128-n16384`.
    pub id: String,
    /// The ring degree N.
    pub degree: usize,
    /// The bit length of Q.
    pub log2_q: u64,
    /// The Gaussian width of secrets and errors.
    pub sigma: f64,
    /// The claimed level in bits (the set's `[security] level`).
    pub level: u32,
    /// The claimed attack model (its `[security] model`).
    pub model: SecurityModel,
    /// The largest log2 Q for 128-bit quantum security at N (the
    /// HomomorphicEncryption.org table), if the table covers N.
    pub quantum_bound: Option<u64>,
}

/// What the assessment reads from the federation file.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    /// The federation id (hex).
    pub federation: String,
    /// The RLWE parameter set.
    pub rlwe: RlweFacts,
    /// Holders whose answers open a sum.
    pub threshold: u32,
    /// Key holders.
    pub holders: usize,
    /// The Shamir field's prime.
    pub field_prime: u64,
    /// The algorithms of every member key.
    pub policy: AlgorithmPolicy,
}

impl Facts {
    /// Reads the federation file at `path` as `ringsum serve` does.
    ///
    /// # Errors
    /// As [`FederationConfig::load`] and [`FederationConfig::description`].
    pub fn load(config: &FederationConfig, path: &Path) -> Result<Self> {
        let (description, _) = config.description(path)?;
        let federation = description.federation()?;
        let params = ringsum_net::description::round_key_set(&description.parameter_set).map_err(
            |source| CliError::Federation {
                path: path.to_path_buf(),
                source: Box::new(source),
            },
        )?;
        let (level, model) = params.security();
        Ok(Self {
            federation: ringsum_net::federation_hex(federation.id()),
            rlwe: RlweFacts {
                id: params.id().to_string(),
                degree: params.degree(),
                log2_q: params.log2_q(),
                sigma: params.gaussian().sigma(),
                level,
                model,
                quantum_bound: max_log2_q_128(params.degree(), SecurityModel::Quantum),
            },
            threshold: description.threshold,
            holders: description.holders.len(),
            field_prime: params.shares().field_prime,
            policy: description.algorithms(),
        })
    }
}

/// What is known of the coordinator's TLS.
#[derive(Debug)]
pub enum Transport {
    /// The federation file serves plaintext (`insecure_plaintext`), and
    /// the coordinator was not probed.
    PlaintextConfigured,
    /// Not probed; the certificate the service uses, if it is on disk.
    NotProbed {
        /// The certificate file and what it says.
        certificate: Option<(PathBuf, probe::Result<CertificateInfo>)>,
    },
    /// Probed.
    Probed(Box<Probed>),
}

/// The probes of a running coordinator.
#[derive(Debug)]
pub struct Probed {
    /// The URL probed.
    pub url: String,
    /// Offering everything: what the server chooses.
    pub main: probe::Result<Negotiated>,
    /// Offering classical groups only (after a successful main probe).
    pub classical_only: Option<probe::Result<Negotiated>>,
    /// Offering TLS 1.2 only (after a successful main probe).
    pub tls12_only: Option<probe::Result<Negotiated>>,
}

impl Probed {
    /// Probes `url`: everything first, then, if that succeeded, the two
    /// restricted offers.
    ///
    /// # Errors
    /// [`CliError::Runtime`] if the async runtime does not start (a failed
    /// probe is a result, not an error).
    pub fn run(url: &str, ca: Option<&[u8]>, server_name: Option<&str>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        Ok(runtime.block_on(async {
            let main = probe::probe(url, ca, server_name).await;
            let (classical_only, tls12_only) = if main.is_ok() {
                let classical = Offer {
                    groups: Groups::ClassicalOnly,
                    versions: Versions::Both,
                };
                let tls12 = Offer {
                    groups: Groups::All,
                    versions: Versions::Tls12Only,
                };
                (
                    Some(probe::probe_offering(url, ca, server_name, classical).await),
                    Some(probe::probe_offering(url, ca, server_name, tls12).await),
                )
            } else {
                (None, None)
            };
            Self {
                url: url.to_owned(),
                main,
                classical_only,
                tls12_only,
            }
        }))
    }
}

/// The gate's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// Whether it passes (exit code 0).
    pub pass: bool,
    /// The exit code: 0 or 1.
    pub exit_code: u8,
    /// Whether warnings failed it too.
    pub strict: bool,
    /// The primitives that failed it.
    pub failing: Vec<String>,
    /// The primitives with warnings.
    pub warnings: Vec<String>,
    /// The rule, in a sentence.
    pub rule: &'static str,
}

/// The rule of the gate, as printed.
pub const GATE_RULE: &str = "fails when a primitive the confidentiality of updates rests on is quantum-vulnerable, or when the coordinator could not be probed; hybrid halves never fail it; TLS (transport) warns, and fails only with --strict";

/// The whole assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The federation file.
    pub config: String,
    /// The federation id.
    pub federation: String,
    /// The parameter set.
    pub parameter_set: String,
    /// Whether the federation uses hybrid keys.
    pub hybrid: bool,
    /// The coordinator probed, if any.
    pub coordinator: Option<String>,
    /// What the main probe negotiated.
    pub tls: Option<Negotiated>,
    /// Every primitive.
    pub lines: Vec<Line>,
    /// The gate.
    pub gate: Gate,
}

impl Assessment {
    /// The assessment of `facts` and `transport`; `strict` makes warnings
    /// fail the gate.
    #[must_use]
    pub fn new(config: &Path, facts: &Facts, transport: &Transport, strict: bool) -> Self {
        let mut lines = Vec::new();
        let mut push = |primitive: String, protects: &str, status: Status, reliance, detail| {
            lines.push(Line {
                primitive,
                protects: protects.to_owned(),
                status_text: status.text(),
                verdict: verdict(reliance, &status, strict),
                status,
                reliance,
                detail,
            });
        };
        let (status, detail) = rlwe_status(&facts.rlwe);
        push(
            format!(
                "RLWE, parameter set {} (N = {}, log2 Q = {}, Gaussian secret sigma = {})",
                facts.rlwe.id, facts.rlwe.degree, facts.rlwe.log2_q, facts.rlwe.sigma
            ),
            "every client's update, encrypted under a fresh per-round secret",
            status,
            Reliance::Updates,
            detail,
        );
        push(
            format!(
                "Shamir sharing of each round secret, t = {} of n = {} holders, over Z_p (p = {})",
                facts.threshold, facts.holders, facts.field_prime
            ),
            "each client's round secret (and so its update) until t holders answer one set",
            Status::InformationTheoretic,
            Reliance::Updates,
            format!(
                "any {} share(s) are uniform and independent of the secret, so no computation, quantum or not, learns anything from them; this rests on fewer than t = {} holders colluding (the threat model), not on a hard problem",
                facts.threshold.saturating_sub(1),
                facts.threshold
            ),
        );
        push(
            "ML-KEM-1024 (FIPS 203)".into(),
            "the key shares sealed to each holder",
            Status::PostQuantum {
                claim: "NIST category 5".into(),
            },
            Reliance::Updates,
            "module-lattice KEM; a share read in transit or later from a recording gives its holder's piece of a client's secret".into(),
        );
        if facts.policy.kem.is_hybrid() {
            push(
                "X25519 (RFC 7748), hybrid half of sealing".into(),
                "the key shares, together with ML-KEM-1024",
                Status::Classical,
                Reliance::HybridHalf,
                format!(
                    "the federation file sets hybrid = true ({}); the combiner hashes both shared secrets with SHA3-256 (crates/ringsum-pq/src/kem.rs), so a sealed share stays secret while ML-KEM-1024 holds: Shor's break of X25519 alone reveals nothing, and X25519 helps only if ML-KEM falls to a classical attack",
                    facts.policy.kem.name()
                ),
            );
        }
        push(
            "ChaCha20-Poly1305, keyed by HKDF-SHA3-256 (crates/ringsum-pq/src/seal.rs)".into(),
            "the key shares inside each sealed box (confidentiality and integrity)",
            Status::Symmetric {
                classical_bits: 256,
                quantum_bits: 128,
                attack: "Grover halves the 256-bit key to 128 bits".into(),
            },
            Reliance::Updates,
            format!(
                "a 256-bit key from the KEM's shared secret, one key per box; Grover's search needs about 2^128 sequential AEAD evaluations, above the {SYMMETRIC_FLOOR_QUANTUM_BITS}-bit floor (Grover on AES-128, NIST category 1)"
            ),
        );
        push(
            "ML-DSA-65 (FIPS 204), context \"ringsum/v1\"".into(),
            "every signed message: submissions, share envelopes, the coordinator's sets and publications, holders' answers",
            Status::PostQuantum {
                claim: "NIST category 3".into(),
            },
            Reliance::Updates,
            "authenticity; it counts for update confidentiality because holders answer only a set of at least min_clients genuine, signed submissions: a forger of client signatures could fill a set with fake clients and isolate one honest update".into(),
        );
        if facts.policy.signature.is_hybrid() {
            push(
                "Ed25519 (RFC 8032), hybrid half of signatures".into(),
                "every signed message, together with ML-DSA-65",
                Status::Classical,
                Reliance::HybridHalf,
                format!(
                    "the federation file sets hybrid = true ({}); both signatures must verify (crates/ringsum-pq/src/identity.rs), so a forgery needs ML-DSA-65 broken as well",
                    facts.policy.signature.name()
                ),
            );
        }
        push(
            "SHA3-256 (FIPS 202)".into(),
            "participant ids, the federation id every member pins, the audit chain, the digests binding shares to submissions, the hybrid KEM combiner",
            Status::Symmetric {
                classical_bits: 128,
                quantum_bits: 85,
                attack: "collisions 128-bit classically, ~85-bit quantum (BHT)".into(),
            },
            Reliance::Updates,
            format!(
                "collision resistance 2^128 classically; the quantum figure is the Brassard-Hoyer-Tapp query count 2^(256/3) = 2^85, the conservative estimate: it needs about 2^85 qubits of quantum memory, and with that cost counted Bernstein (2009) finds no quantum collision search cheaper than classical parallel rho, 2^128 (NIST rates SHA3-256 collisions at category 2, above AES-128 key search); preimages: Grover, 2^128; both above the {SYMMETRIC_FLOOR_QUANTUM_BITS}-bit floor"
            ),
        );
        push(
            "AES-128-CTR expansion of the public polynomials a_j (crates/ringsum-math/src/prg.rs)".into(),
            "the uniformity of a_j that the RLWE assumption needs",
            Status::NoSecret,
            Reliance::Updates,
            "keyed by a SHA3-256 digest of public data (federation, round, index, ring): there is no secret for Grover to search, and a_j is public anyway; like Kyber-90s' AES-CTR, the expansion only has to look uniform".into(),
        );
        push(
            "ChaCha20 CSPRNG seeded by the operating system (crates/ringsum-math/src/sample)"
                .into(),
            "round secrets, encryption noise, answer keys",
            Status::Symmetric {
                classical_bits: 256,
                quantum_bits: 128,
                attack: "Grover halves the 256-bit seed to 128 bits".into(),
            },
            Reliance::Updates,
            "predicting it means finding its 256-bit seed".into(),
        );
        for (primitive, protects, status, detail) in transport_lines(transport) {
            push(primitive, protects, status, Reliance::Transport, detail);
        }

        let failing: Vec<String> = lines
            .iter()
            .filter(|l| l.verdict == Verdict::Fail)
            .map(|l| l.primitive.clone())
            .collect();
        let warnings = lines
            .iter()
            .filter(|l| l.verdict == Verdict::Warn)
            .map(|l| l.primitive.clone())
            .collect();
        let (coordinator, tls) = match transport {
            Transport::Probed(probed) => {
                (Some(probed.url.clone()), probed.main.as_ref().ok().cloned())
            }
            _ => (None, None),
        };
        Self {
            config: config.display().to_string(),
            federation: facts.federation.clone(),
            parameter_set: facts.rlwe.id.clone(),
            hybrid: facts.policy.kem.is_hybrid() || facts.policy.signature.is_hybrid(),
            coordinator,
            tls,
            gate: Gate {
                pass: failing.is_empty(),
                exit_code: u8::from(!failing.is_empty()),
                strict,
                failing,
                warnings,
                rule: GATE_RULE,
            },
            lines,
        }
    }

    /// Whether the gate passes (exit code 0).
    #[must_use]
    pub const fn passes(&self) -> bool {
        self.gate.pass
    }

    /// The assessment as one JSON object.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The assessment as a table, then the gate.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "ringsum assess: {}", self.config);
        let _ = writeln!(out, "federation {}", self.federation);
        let _ = writeln!(
            out,
            "parameter set {}, {} keys{}",
            self.parameter_set,
            if self.hybrid {
                "hybrid"
            } else {
                "post-quantum"
            },
            self.coordinator
                .as_ref()
                .map(|c| format!(", coordinator {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<6} {:<11} PRIMITIVE / STATUS", "", "COUNTS FOR");
        for line in &self.lines {
            let reliance = match line.reliance {
                Reliance::Updates => "updates",
                Reliance::HybridHalf => "hybrid half",
                Reliance::Transport => "transport",
            };
            let _ = writeln!(
                out,
                "{:<6} {:<11} {}",
                line.verdict.text(),
                reliance,
                line.primitive
            );
            let _ = writeln!(out, "{:<18} status:   {}", "", line.status_text);
            let _ = writeln!(out, "{:<18} protects: {}", "", line.protects);
            let _ = writeln!(out, "{:<18} why:      {}", "", line.detail);
        }
        let _ = writeln!(out);
        if self.gate.pass {
            let _ = writeln!(
                out,
                "gate: PASS (exit 0): nothing the confidentiality of updates rests on is quantum-vulnerable{}",
                if self.gate.warnings.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} warning(s) (--strict makes them fail)",
                        self.gate.warnings.len()
                    )
                }
            );
        } else {
            let _ = writeln!(out, "gate: FAIL (exit 1):");
            for primitive in &self.gate.failing {
                let _ = writeln!(out, "  {primitive}");
            }
        }
        let _ = writeln!(out, "rule: {}", self.gate.rule);
        out
    }
}

/// The RLWE line's status and its explanation, from the claim recorded in
/// the parameter set and the standard's bound.
#[must_use]
pub fn rlwe_status(rlwe: &RlweFacts) -> (Status, String) {
    let source = format!(
        "params/{}.toml, [security] level = {}, model = \"{}\" (compiled into ringsum-core, ParameterSet::builtin)",
        rlwe.id, rlwe.level, rlwe.model
    );
    let bound = rlwe.quantum_bound.map_or_else(
        || format!("the HomomorphicEncryption.org table has no bound for N = {}", rlwe.degree),
        |b| {
            format!(
                "HomomorphicEncryption.org security standard (2018, Table 1): log2 Q <= {b} for 128-bit quantum security at N = {}; this set has log2 Q = {}",
                rlwe.degree, rlwe.log2_q
            )
        },
    );
    let within_quantum_bound = rlwe.quantum_bound.is_some_and(|b| rlwe.log2_q <= b);
    let status = match rlwe.model {
        SecurityModel::Quantum if rlwe.level >= RLWE_FLOOR_BITS && within_quantum_bound => {
            Status::PostQuantum {
                claim: format!("{}-bit (HomomorphicEncryption.org standard)", rlwe.level),
            }
        }
        SecurityModel::Classical if within_quantum_bound => Status::PostQuantum {
            claim: "128-bit (HomomorphicEncryption.org standard; the set claims only classical, but log2 Q is within the quantum bound)".into(),
        },
        SecurityModel::Classical => Status::Unknown {
            reason: "the parameter set claims security against classical attacks only".into(),
        },
        SecurityModel::Quantum => Status::Unknown {
            reason: format!(
                "the claim ({} bits) is below {RLWE_FLOOR_BITS} bits or log2 Q is not within the quantum bound",
                rlwe.level
            ),
        },
    };
    (status, format!("{source}; {bound}"))
}

/// The lines of the coordinator's TLS: (primitive, protects, status,
/// detail).
fn transport_lines(transport: &Transport) -> Vec<(String, &'static str, Status, String)> {
    const CONNECTION: &str = "the connection to the coordinator: metadata (who submits when, sizes), holders' answers and published models; not the updates, which RLWE and ML-KEM protect inside it";
    const ENDPOINT: &str = "the identity of the coordinator's TLS endpoint";
    const CLASSICAL_GROUP: &str = "a recording adversary with a future quantum computer reads this traffic: metadata, and each round's published sum (the holders' answers open it, as the coordinator does), never a single update, which stays under RLWE and ML-KEM; does not fail the gate (--strict makes it)";
    const CLASSICAL_CERT: &str = "an active attacker with a quantum computer could impersonate the coordinator's TLS endpoint, but not forge its ML-DSA-signed publications (the pinned federation id fixes the coordinator's ML-DSA key) nor read updates; through the endpoint it would see what a malicious coordinator sees, which the threat model already allows; does not fail the gate (--strict makes it)";
    match transport {
        Transport::PlaintextConfigured => vec![(
            "TLS: none (the federation file sets insecure_plaintext = true)".into(),
            CONNECTION,
            Status::Plaintext,
            "anyone on the path reads metadata and each round's published sum today, no quantum computer needed; updates stay under RLWE and ML-KEM; for loopback tests only".into(),
        )],
        Transport::NotProbed { certificate } => {
            let mut lines = vec![(
                "TLS key exchange and version".into(),
                CONNECTION,
                Status::NotProbed,
                "give --coordinator https://host:port (and --ca) to see what the running coordinator negotiates".into(),
            )];
            match certificate {
                None => lines.push((
                    "TLS certificate".into(),
                    ENDPOINT,
                    Status::NotProbed,
                    "none on disk yet: `ringsum serve` makes a self-signed one on first start".into(),
                )),
                Some((path, Ok(info))) => {
                    let status = Status::of_tls(info.status(), "ML-DSA");
                    let mut detail = format!(
                        "read from {} (not probed); public key {}",
                        path.display(),
                        info.public_key_algorithm.name
                    );
                    if status.is_quantum_vulnerable() {
                        detail = format!("{detail}; {CLASSICAL_CERT}");
                    }
                    lines.push((
                        format!(
                            "TLS certificate {} signed with {} ({})",
                            path.display(),
                            info.signature_algorithm.name,
                            info.subject
                        ),
                        ENDPOINT,
                        status,
                        detail,
                    ));
                }
                Some((path, Err(e))) => lines.push((
                    format!("TLS certificate {}", path.display()),
                    ENDPOINT,
                    Status::Unknown {
                        reason: e.to_string(),
                    },
                    "the certificate on disk could not be read".into(),
                )),
            }
            lines
        }
        Transport::Probed(probed) => probed_lines(probed, CONNECTION, ENDPOINT, CLASSICAL_GROUP, CLASSICAL_CERT),
    }
}

fn probed_lines(
    probed: &Probed,
    connection: &'static str,
    endpoint: &'static str,
    classical_group: &str,
    classical_cert: &str,
) -> Vec<(String, &'static str, Status, String)> {
    let n = match &probed.main {
        Err(ProbeError::Plaintext { url }) => {
            return vec![(
                format!("TLS: none ({url} is plaintext HTTP)"),
                connection,
                Status::Plaintext,
                "anyone on the path reads metadata and each round's published sum today; updates stay under RLWE and ML-KEM".into(),
            )];
        }
        Err(e) => {
            return vec![(
                format!("TLS of {}", probed.url),
                connection,
                Status::ProbeFailed {
                    error: e.to_string(),
                },
                "the coordinator could not be assessed; a gate cannot pass on what it did not see"
                    .into(),
            )];
        }
        Ok(n) => n,
    };
    let mut lines = Vec::new();
    let group_name = n
        .group
        .as_ref()
        .map_or("none reported", |g| g.name.as_str());
    let group_status = n.group.as_ref().map_or_else(
        || Status::Unknown {
            reason: "no key-exchange group reported".into(),
        },
        |g| Status::of_tls(g.status, "ML-KEM-768"),
    );
    let mut detail = format!(
        "{} with {} (cipher suite {}, ALPN {})",
        n.address,
        n.server_name,
        n.cipher_suite.as_deref().unwrap_or("unknown"),
        n.alpn.as_deref().unwrap_or("none")
    );
    if group_status.is_quantum_vulnerable() {
        detail = format!("{detail}; {classical_group}");
    }
    lines.push((
        format!("TLS key exchange: {group_name} over {}", n.protocol),
        connection,
        group_status,
        detail,
    ));

    let scheme = n
        .handshake_signature
        .as_ref()
        .map_or("an unreported scheme", |a| a.name.as_str());
    let (signed_with, subject) = n
        .certificate
        .as_ref()
        .map_or(("unknown", "no certificate"), |c| {
            (c.signature_algorithm.name.as_str(), c.subject.as_str())
        });
    let cert_status = n.authentication_status().map_or_else(
        || Status::Unknown {
            reason: "no certificate or handshake signature seen".into(),
        },
        |s| Status::of_tls(s, "ML-DSA"),
    );
    let mut detail = format!(
        "{} certificate(s) sent; chain {}",
        n.chain_length,
        if n.chain_verified {
            "verified against --ca"
        } else {
            "NOT verified (no --ca): this shows what the server presents, not that it is the coordinator"
        }
    );
    if cert_status.is_quantum_vulnerable() {
        detail = format!("{detail}; {classical_cert}");
    }
    lines.push((
        format!(
            "TLS certificate: handshake signed with {scheme}, certificate signed with {signed_with} ({subject})"
        ),
        endpoint,
        cert_status,
        detail,
    ));

    for (offer, result, what) in [
        (
            "TLS fallback: a client offering only classical groups",
            &probed.classical_only,
            "a client without post-quantum key exchange connects classically",
        ),
        (
            "TLS fallback: a client offering only TLS 1.2",
            &probed.tls12_only,
            "TLS 1.2 has no post-quantum group here, so such a client connects classically",
        ),
    ] {
        let Some(result) = result else { continue };
        let (status, detail) = match result {
            Ok(fallback) => {
                let group = fallback.group.as_ref();
                (
                    group.map_or(Status::Classical, |g| {
                        Status::of_tls(g.status, "ML-KEM-768")
                    }),
                    format!(
                        "accepted: {} with {}; {what} (ringsum's own participants offer the hybrid group and are not affected)",
                        fallback.protocol,
                        group.map_or("no group", |g| g.name.as_str())
                    ),
                )
            }
            Err(ProbeError::Handshake { source, .. }) => {
                (Status::Refused, format!("the server refuses it ({source})"))
            }
            Err(e) => (
                Status::ProbeFailed {
                    error: e.to_string(),
                },
                "the fallback probe did not complete".into(),
            ),
        };
        lines.push((offer.into(), connection, status, detail));
    }
    lines
}

/// Runs the assessment: reads the federation file, probes the coordinator
/// if asked.
///
/// # Errors
/// An unreadable or invalid federation file or `--ca`, or an async runtime
/// that does not start. A failed probe is part of the assessment, not an
/// error.
pub fn run(options: &Options) -> Result<Assessment> {
    let config = FederationConfig::load(&options.config)?;
    let facts = Facts::load(&config, &options.config)?;
    let transport = match &options.coordinator {
        Some(url) => {
            let ca = options
                .ca
                .as_deref()
                .map(|p| std::fs::read(p).map_err(CliError::io(p)))
                .transpose()?;
            Transport::Probed(Box::new(Probed::run(
                url,
                ca.as_deref(),
                options.server_name.as_deref(),
            )?))
        }
        None if config.insecure_plaintext => Transport::PlaintextConfigured,
        None => {
            let path = config
                .tls_cert
                .clone()
                .unwrap_or_else(|| config.data_dir.join("tls-cert.pem"));
            let certificate = std::fs::read(&path).ok().map(|pem| {
                let info = CertificateInfo::from_pem(&pem);
                (path, info)
            });
            Transport::NotProbed { certificate }
        }
    };
    Ok(Assessment::new(
        &options.config,
        &facts,
        &transport,
        options.strict,
    ))
}

#[cfg(test)]
mod tests {
    use ringsum_net::probe::Algorithm;
    use std::io;

    use super::*;

    fn facts(policy: AlgorithmPolicy) -> Facts {
        Facts {
            federation: "00".repeat(32),
            rlwe: RlweFacts {
                id: "rk128-n16384".into(),
                degree: 16384,
                log2_q: 384,
                sigma: 4.53,
                level: 128,
                model: SecurityModel::Quantum,
                quantum_bound: Some(411),
            },
            threshold: 2,
            holders: 3,
            field_prime: 65521,
            policy,
        }
    }

    fn negotiated(group: (&str, PqStatus), scheme: (&str, PqStatus)) -> Negotiated {
        let alg = |(name, status): (&str, PqStatus)| Algorithm {
            name: name.into(),
            status,
        };
        Negotiated {
            address: "127.0.0.1:7443".into(),
            server_name: "localhost".into(),
            protocol: "TLS 1.3".into(),
            cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
            group: Some(alg(group)),
            handshake_signature: Some(alg(scheme)),
            certificate: Some(CertificateInfo {
                subject: "CN=coordinator".into(),
                issuer: "CN=coordinator".into(),
                signature_algorithm: alg(scheme),
                public_key_algorithm: alg(scheme),
            }),
            chain_length: 1,
            chain_signature_status: Some(scheme.1),
            chain_verified: true,
            alpn: Some("h2".into()),
        }
    }

    fn refused() -> probe::Result<Negotiated> {
        Err(ProbeError::Handshake {
            address: "127.0.0.1:7443".into(),
            source: io::Error::other("peer sent no compatible group"),
        })
    }

    fn probed(main: probe::Result<Negotiated>) -> Transport {
        let ok = main.is_ok();
        Transport::Probed(Box::new(Probed {
            url: "https://127.0.0.1:7443".into(),
            main,
            classical_only: ok.then(refused),
            tls12_only: ok.then(refused),
        }))
    }

    fn assess(facts: &Facts, transport: &Transport, strict: bool) -> Assessment {
        Assessment::new(Path::new("federation.toml"), facts, transport, strict)
    }

    fn line<'a>(a: &'a Assessment, prefix: &str) -> &'a Line {
        a.lines
            .iter()
            .find(|l| l.primitive.starts_with(prefix))
            .unwrap_or_else(|| unreachable!("no line {prefix}"))
    }

    const HYBRID_TLS: (&str, PqStatus) = ("X25519MLKEM768", PqStatus::Hybrid);
    const ML_DSA: (&str, PqStatus) = ("ML_DSA_65", PqStatus::PostQuantum);

    #[test]
    fn a_post_quantum_federation_passes_without_hybrid_lines() {
        let a = assess(
            &facts(AlgorithmPolicy::POST_QUANTUM),
            &probed(Ok(negotiated(HYBRID_TLS, ML_DSA))),
            true,
        );
        assert!(a.passes(), "{}", a.to_text());
        assert!(a.gate.warnings.is_empty());
        assert!(!a.lines.iter().any(|l| l.reliance == Reliance::HybridHalf));
        assert_eq!(
            line(&a, "RLWE").status,
            Status::PostQuantum {
                claim: "128-bit (HomomorphicEncryption.org standard)".into()
            }
        );
        assert!(line(&a, "RLWE").detail.contains("params/rk128-n16384.toml"));
        assert!(line(&a, "RLWE").detail.contains("log2 Q <= 411"));
        assert_eq!(line(&a, "Shamir").status, Status::InformationTheoretic);
        assert_eq!(line(&a, "TLS fallback").status, Status::Refused);
        assert_eq!(a.tls.as_ref().map(|t| t.protocol.as_str()), Some("TLS 1.3"));
    }

    #[test]
    fn hybrid_halves_are_classical_but_do_not_gate() {
        let a = assess(
            &facts(AlgorithmPolicy::HYBRID),
            &Transport::NotProbed { certificate: None },
            true,
        );
        for prefix in ["X25519 (RFC 7748)", "Ed25519"] {
            let l = line(&a, prefix);
            assert_eq!(l.status, Status::Classical);
            assert_eq!(l.reliance, Reliance::HybridHalf);
            assert_eq!(l.verdict, Verdict::Ok);
        }
        assert!(a.hybrid);
        assert!(a.passes(), "{}", a.to_text());
    }

    #[test]
    fn a_classical_certificate_warns_and_fails_only_when_strict() {
        let transport = probed(Ok(negotiated(
            HYBRID_TLS,
            ("ECDSA_NISTP256_SHA256", PqStatus::Classical),
        )));
        let a = assess(&facts(AlgorithmPolicy::POST_QUANTUM), &transport, false);
        let cert = line(&a, "TLS certificate");
        assert_eq!(cert.status, Status::Classical);
        assert_eq!(cert.verdict, Verdict::Warn);
        assert!(cert.detail.contains("impersonate"));
        assert!(a.passes());
        assert_eq!(a.gate.warnings.len(), 1);
        let strict = assess(&facts(AlgorithmPolicy::POST_QUANTUM), &transport, true);
        assert!(!strict.passes());
        assert_eq!(strict.gate.exit_code, 1);
    }

    #[test]
    fn a_classical_group_warns_and_fails_only_when_strict() {
        let transport = probed(Ok(negotiated(("X25519", PqStatus::Classical), ML_DSA)));
        let a = assess(&facts(AlgorithmPolicy::POST_QUANTUM), &transport, false);
        let kx = line(&a, "TLS key exchange");
        assert_eq!(kx.status, Status::Classical);
        assert_eq!(kx.verdict, Verdict::Warn);
        assert!(kx.detail.contains("never a single update"));
        assert!(a.passes());
        assert!(!assess(&facts(AlgorithmPolicy::POST_QUANTUM), &transport, true).passes());
    }

    #[test]
    fn an_unreachable_coordinator_fails_the_gate() {
        let transport = probed(Err(ProbeError::Connect {
            address: "127.0.0.1:9".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        }));
        let a = assess(&facts(AlgorithmPolicy::POST_QUANTUM), &transport, false);
        assert!(!a.passes());
        assert_eq!(a.gate.failing.len(), 1);
        let l = line(&a, "TLS of https://127.0.0.1:7443");
        assert!(matches!(l.status, Status::ProbeFailed { .. }));
        assert!(
            l.status_text.contains("cannot connect"),
            "{}",
            l.status_text
        );
        assert!(a.tls.is_none());
    }

    #[test]
    fn a_plaintext_coordinator_warns() {
        let a = assess(
            &facts(AlgorithmPolicy::POST_QUANTUM),
            &Transport::PlaintextConfigured,
            false,
        );
        assert_eq!(line(&a, "TLS: none").verdict, Verdict::Warn);
        assert!(a.passes());
    }

    #[test]
    fn an_rlwe_claim_that_does_not_hold_against_quantum_attacks_fails() {
        let mut f = facts(AlgorithmPolicy::POST_QUANTUM);
        // Within the classical bound (438) but not the quantum one (411).
        f.rlwe.model = SecurityModel::Classical;
        f.rlwe.log2_q = 430;
        let a = assess(&f, &Transport::NotProbed { certificate: None }, false);
        assert!(matches!(line(&a, "RLWE").status, Status::Unknown { .. }));
        assert!(!a.passes());
        // A classical claim that also meets the quantum bound holds.
        f.rlwe.log2_q = 384;
        assert!(assess(&f, &Transport::NotProbed { certificate: None }, false).passes());
    }

    #[test]
    fn the_verdict_rule() {
        let weak = Status::Symmetric {
            classical_bits: 80,
            quantum_bits: 40,
            attack: "Grover".into(),
        };
        assert_eq!(verdict(Reliance::Updates, &weak, false), Verdict::Fail);
        assert_eq!(
            verdict(Reliance::Updates, &Status::Classical, false),
            Verdict::Fail
        );
        assert_eq!(
            verdict(Reliance::HybridHalf, &Status::Classical, true),
            Verdict::Ok
        );
        assert_eq!(
            verdict(Reliance::Transport, &Status::Classical, false),
            Verdict::Warn
        );
        let failed = Status::ProbeFailed {
            error: "refused".into(),
        };
        assert_eq!(verdict(Reliance::Transport, &failed, false), Verdict::Fail);
        assert_eq!(
            verdict(Reliance::Transport, &Status::NotProbed, true),
            Verdict::Ok
        );
    }
}

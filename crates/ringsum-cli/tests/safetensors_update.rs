//! `ringsum join --role client --update FILE.safetensors` as separate
//! processes on loopback: three clients submit updates written as
//! safetensors files (F32 and F64, as PyTorch's `save_file` writes them)
//! in two rounds, each client started once per round; the coordinator's
//! `models/round-<r>.safetensors` and `final-model.safetensors` hold the
//! JSON model files' tensors, names, shapes and values, and each round's
//! model is the previous one plus the sample-weighted average of the
//! updates, within the round's quantization bound. Files that do not fit
//! the federation's model, and misused options, are refused with a message
//! that says what was wrong.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a fixture that cannot be set up fails the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use ringsum_cli::demo;
use ringsum_cli::model::{Model, ModelKind};
use ringsum_net::model_file::ModelFile;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

mod common;

use common::{CLIENTS, Federation, HOLDERS, ROUNDS, Settings};

const SEED: u64 = 5;
// A small model: weights [4, 3] and bias [3].
const FEATURES: usize = 4;
const CLASSES: usize = 3;
const SAMPLES: [u64; CLIENTS] = [40, 60, 100];

fn model() -> Model {
    Model::new(ModelKind::Logistic, FEATURES, CLASSES)
}

/// Client `client`'s update of `round`, flat in layout order: values in
/// [-0.5, 0.5] that f32 holds exactly.
fn update(client: usize, round: u64) -> Vec<f32> {
    (0..model().size())
        .map(|j| {
            let k = (j * 7 + client * 13 + usize::try_from(round).unwrap() * 5) % 17;
            f32::from(u8::try_from(k).unwrap()) / 16.0 - 0.5
        })
        .collect()
}

/// A safetensors file of `values` in `model`'s layout, each tensor
/// (name, shape) as given, in `dtype` (F32 or F64).
fn write_safetensors(path: &Path, tensors: &[(String, Vec<u64>)], values: &[f32], dtype: Dtype) {
    let mut rest = values;
    let mut data = Vec::new();
    for (name, shape) in tensors {
        let len: u64 = shape.iter().product();
        let (head, tail) = rest.split_at(usize::try_from(len).unwrap());
        rest = tail;
        let bytes: Vec<u8> = match dtype {
            Dtype::F32 => head.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::F64 => head
                .iter()
                .flat_map(|v| f64::from(*v).to_le_bytes())
                .collect(),
            other => unreachable!("{other}"),
        };
        let shape: Vec<usize> = shape.iter().map(|d| usize::try_from(*d).unwrap()).collect();
        data.push((name.clone(), shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn federation(dir: &Path) -> Federation {
    common::federation(
        dir,
        &Settings {
            seed: SEED,
            features: FEATURES,
            classes: CLASSES,
            linger_secs: 2,
            split_data: false,
        },
    )
}

impl Federation {
    /// Client `i` submitting `file` (declaring its samples), its output
    /// captured.
    fn update_client(&self, i: usize, file: &Path) -> Child {
        self.join("client", &format!("client-{i}"))
            .arg("--update")
            .arg(file)
            .args(["--samples", &SAMPLES[i].to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A `ringsum join` that must fail, and its stderr.
    fn refused(&self, role: &str, args: &[&str]) -> String {
        let out = self
            .join(role, "client-0")
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    fn state(&self, name: &str) -> PathBuf {
        self.dir.join("state").join(name)
    }
}

fn succeeded(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn finish(children: Vec<Child>) {
    let started = Instant::now();
    for mut child in children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a participant failed: {status}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the federation did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The safetensors file read by the safetensors crate itself: every
/// tensor of the JSON model file, by name, F32, with its shape and values.
fn check_against_json(json: &ModelFile, path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.len(), json.tensors.len());
    for t in &json.tensors {
        let view = file.tensor(&t.name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{}", t.name);
        let shape: Vec<u64> = view.shape().iter().map(|d| *d as u64).collect();
        assert_eq!(shape, t.shape, "{}", t.name);
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values, t.values, "{}", t.name);
    }
    // And by ringsum's reader: the same model file, figures and order too.
    assert_eq!(&ModelFile::read_safetensors(path).unwrap(), json);
}

#[test]
fn clients_submit_safetensors_updates_and_the_models_are_written_as_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let layout = model().layout();
    let file = |name: &str| dir.path().join(name).display().to_string();

    // Refused before anything is sent.
    let missing = f.refused(
        "client",
        &["--update", &file("none.safetensors"), "--samples", "40"],
    );
    assert!(
        missing.contains("none.safetensors") && missing.contains("No such file"),
        "{missing}"
    );
    let holder = f.refused("holder", &["--update", &file("none.safetensors")]);
    assert!(
        holder.contains("--update is for clients: a key holder submits no update"),
        "{holder}"
    );
    let no_samples = f.refused("client", &["--update", &file("none.safetensors")]);
    assert!(
        no_samples.contains("--update needs --samples"),
        "{no_samples}"
    );

    let mut serve = vec![f.serve()];
    let mut holders: Vec<Child> = (1..=HOLDERS).map(|point| f.holder(point)).collect();

    // A file whose weights are transposed, and a sample count below
    // min_samples: refused once the federation's model is known.
    let mut transposed = layout.clone();
    transposed[0].1.reverse();
    write_safetensors(
        &dir.path().join("transposed.safetensors"),
        &transposed,
        &update(0, 1),
        Dtype::F32,
    );
    let shape = f.refused(
        "client",
        &[
            "--update",
            &file("transposed.safetensors"),
            "--samples",
            "40",
        ],
    );
    assert!(
        shape.contains(r#"tensor "weights" has shape [3, 4]; the federation's model has [4, 3]"#),
        "{shape}"
    );
    let good = dir.path().join("good.safetensors");
    write_safetensors(&good, &layout, &update(0, 1), Dtype::F32);
    let few = f.refused(
        "client",
        &["--update", &good.display().to_string(), "--samples", "5"],
    );
    assert!(
        few.contains("--samples 5 is outside the federation's policy"),
        "{few}"
    );

    // Two rounds; each client is started once per round, with F32 or F64
    // files.
    for round in 1..=ROUNDS {
        let clients: Vec<Child> = (0..CLIENTS)
            .map(|i| {
                let path = dir.path().join(format!("update-{i}-{round}.safetensors"));
                let dtype = if (i + usize::try_from(round).unwrap()) % 2 == 0 {
                    Dtype::F32
                } else {
                    Dtype::F64
                };
                write_safetensors(&path, &layout, &update(i, round), dtype);
                f.update_client(i, &path)
            })
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            let out = String::from_utf8(succeeded(client).stdout).unwrap();
            assert!(
                out.contains(&format!(
                    "client {i}: submitted the update of {} ({} samples) in round {round}",
                    dir.path()
                        .join(format!("update-{i}-{round}.safetensors"))
                        .display(),
                    SAMPLES[i]
                )),
                "{out}"
            );
        }
    }
    holders.append(&mut serve);
    finish(holders);

    let total: f64 = SAMPLES.iter().map(|s| *s as f64).sum();
    let mut previous = demo::initial_model(&model(), SEED);
    for round in 1..=ROUNDS {
        let json = ModelFile::read(&f.state(&format!("models/round-{round}.json"))).unwrap();
        assert_eq!((json.round, json.clients), (round, CLIENTS as u64));
        check_against_json(
            &json,
            &f.state(&format!("models/round-{round}.safetensors")),
        );
        let values = json.flatten();
        let bound = json.error_bound + 1e-6;
        for (j, (v, old)) in values.iter().zip(&previous).enumerate() {
            let average: f64 = (0..CLIENTS)
                .map(|i| SAMPLES[i] as f64 / total * f64::from(update(i, round)[j]))
                .sum();
            let expected = f64::from(*old) + average;
            assert!(
                (f64::from(*v) - expected).abs() <= bound,
                "round {round}, parameter {j}: {v}, expected {expected} within {bound}"
            );
        }
        previous = values;
    }
    let last = ModelFile::read(&f.state("final-model.json")).unwrap();
    assert_eq!(last.round, ROUNDS);
    assert_eq!(last.flatten(), previous);
    check_against_json(&last, &f.state("final-model.safetensors"));
    let names: Vec<(String, Vec<u64>)> = last
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    assert_eq!(names, layout);
}

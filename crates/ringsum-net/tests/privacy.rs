//! A federation with differential privacy: its description carries the
//! settings (and one without them is what it always was, JSON and id), the
//! clients submit their trainers' noised contributions, the published
//! model is the gradient step and reports the epsilon spent, and a trainer
//! that cannot make a contribution is refused with a message that says so.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use common::*;
use ringsum_core::privacy::{NoisyContribution, PrivacyPlan, PrivacySettings};
use ringsum_math::Csprng;
use ringsum_net::model_file::ModelFile;
use ringsum_net::participant::{TrainError, Trainer, run_client};
use ringsum_net::server::start;
use ringsum_net::{NetError, PrivacyDescription, SetupDescription};

const PARAMETERS: u64 = 300;
/// Records of every client, and the plan's records per client.
const RECORDS: u64 = 5;

fn settings() -> PrivacySettings {
    PrivacySettings {
        epsilon: 10.0,
        delta: 1e-5,
        clip: 1.0,
        learning_rate: 2.0,
        records_per_client: RECORDS,
        max_records: 2 * RECORDS,
        noise_clients: 3,
    }
}

/// Client `index`: every one of its records has the gradient
/// (index + 1) / 100 at every parameter (norm below the clip).
struct Records {
    index: usize,
}

impl Trainer for Records {
    fn train(&mut self, _round: u64, _global: &[f32]) -> Result<(Vec<f32>, u64), TrainError> {
        Err("a federation with differential privacy asks for contributions".into())
    }

    fn contribute(
        &mut self,
        _round: u64,
        global: &[f32],
        plan: &PrivacyPlan,
        rng: &mut Csprng,
    ) -> Result<NoisyContribution, TrainError> {
        let gradient = vec![(self.index as f32 + 1.0) / 100.0; global.len()];
        let mut contribution = plan.contribution();
        for _ in 0..RECORDS {
            contribution.add_record(&gradient, rng)?;
        }
        Ok(contribution.finish(rng))
    }
}

#[test]
fn the_description_carries_privacy_and_is_unchanged_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let plain = description(&keys, PARAMETERS, 2, 1);
    let json = plain.to_json().unwrap();
    assert!(!json.contains("privacy"), "{json}");
    let back = SetupDescription::from_json(&json).unwrap();
    assert_eq!(back, plain);
    assert_eq!(back.to_json().unwrap(), json);
    assert!(plain.federation().unwrap().privacy().is_none());

    let mut private = plain.clone();
    private.privacy = Some(PrivacyDescription::new(&settings()));
    let json = private.to_json().unwrap();
    let back = SetupDescription::from_json(&json).unwrap();
    assert_eq!(back, private);
    let federation = back.federation().unwrap();
    assert_eq!(federation.id(), pin(&private));
    assert_ne!(federation.id(), pin(&plain), "privacy is part of the id");
    assert_eq!(federation.privacy().unwrap().settings(), &settings());
    // An unknown key in the privacy object is refused.
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["privacy"]["sigma"] = 1.into();
    let error = SetupDescription::from_json(&value.to_string()).unwrap_err();
    assert!(error.to_string().contains("sigma"), "{error}");
    // What the plan refuses, the federation refuses, naming the setting.
    private.privacy = Some(PrivacyDescription::new(&PrivacySettings {
        epsilon: 0.0,
        ..settings()
    }));
    let error = private.federation().unwrap_err().to_string();
    assert!(
        error.contains("epsilon must be a positive number"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_clients_submit_noised_contributions_and_the_model_takes_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let mut description = description(&keys, PARAMETERS, 2, 1);
    description.privacy = Some(PrivacyDescription::new(&settings()));
    let pinned = pin(&description);
    let federation = description.federation().unwrap();
    let plan = federation.privacy().unwrap().clone();
    let coordinator_dir = dir.path().join("coordinator");
    let running = start(
        plan_of(dir.path(), description),
        serve_options(&coordinator_dir),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.addr);

    // A trainer that makes no contribution: the client stops and says why.
    let mut stray = client_options(&url, pinned, dir.path(), 0);
    stray.state_dir = dir.path().join("stray");
    let refused = run_client(
        stray,
        client(dir.path(), 0),
        Box::new(Synthetic {
            index: 0,
            samples: 100,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, NetError::Training { round: 1, .. })
            && refused
                .to_string()
                .contains("cannot clip and noise each record's gradient"),
        "{refused}"
    );

    let mut tasks = spawn_holders(&url, pinned, dir.path(), 0..3, None);
    for i in 0..3 {
        let options = client_options(&url, pinned, dir.path(), i);
        let id = client(dir.path(), i);
        tasks.push(tokio::spawn(async move {
            run_client(options, id, Box::new(Records { index: i }))
                .await
                .map(|r| r.result)
        }));
    }
    let results = results(tasks).await;
    assert_eq!(results.len(), 3);
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);

    let published = ModelFile::read(&coordinator_dir.join("models/round-1.json")).unwrap();
    assert_eq!(published.clients, 3);
    assert_eq!(published.weight_sum, 3 * plan.weight());
    let epsilon = published.epsilon.unwrap();
    assert!(epsilon > 0.0 && epsilon <= 10.0, "{epsilon}");
    // The step: the learning rate times the mean gradient over the
    // planned records, (1 + 2 + 3) / 100 * RECORDS / (3 RECORDS), down
    // from the initial zeros; its mean over the parameters is within six
    // standard deviations of the noise's mean and the roundings.
    let values = published.flatten();
    let rate = plan.effective_learning_rate();
    let step = -rate * 0.06 / 3.0;
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64;
    let denominator = 3.0 * RECORDS as f64;
    let reach = rate / denominator
        * (6.0 * plan.noise_std() / (PARAMETERS as f64).sqrt()
            + 3.0 * RECORDS as f64 / plan.gamma());
    assert!(
        (mean - step).abs() <= reach,
        "mean {mean}, step {step}, reach {reach}"
    );
    assert!(values.iter().all(|v| v.is_finite()));
}

/// The coordinator's plan (the shared helper's name is taken by the
/// privacy plan here).
fn plan_of(dir: &std::path::Path, description: SetupDescription) -> ringsum_net::server::Plan {
    plan(dir, description)
}

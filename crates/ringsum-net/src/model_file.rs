//! The model files the coordinator writes (`models/round-<r>.json` after
//! each decoded round, `final-model.json` after the last round): the
//! model with its layout, so that it loads back into named tensors.
//!
//! ```json
//! {"format": "ringsum-model/v1", "federation": "<hex>", "round": 2,
//!  "clients": 3, "weight_sum": 1234, "error_bound": 1.5e-5,
//!  "tensors": [{"name": "w", "shape": [30, 2], "values": [...]}, ...]}
//! ```
//!
//! `round` is the last decoded round whose result the model is (0 for the
//! initial model), `error_bound` the bound on that round's quantization
//! error, and each tensor's values are in row-major order. A federation
//! with differential privacy adds `"epsilon"`: the privacy spent by the
//! rounds up to `round` (by every round, in `final-model.json`), at the
//! plan's delta; a federation without it writes no such field.

use std::path::Path;

use ringsum_core::model::ModelLayout;
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::fs::{Access, write_atomic};

/// The format tag of a model file.
pub const MODEL_FORMAT: &str = "ringsum-model/v1";

/// One tensor of a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorValues {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// A model with its layout and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// [`MODEL_FORMAT`].
    pub format: String,
    /// The federation (hex).
    pub federation: String,
    /// The round whose result this is (0: the initial model).
    pub round: u64,
    /// Clients summed in that round.
    pub clients: u64,
    /// Their quantized weights' sum.
    pub weight_sum: i64,
    /// The bound on that round's quantization error.
    pub error_bound: f64,
    /// With differential privacy: the epsilon spent so far (see the
    /// module's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// The tensors, in layout order.
    pub tensors: Vec<TensorValues>,
}

/// Where a model comes from: the round and its figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModelOrigin {
    /// The round whose result it is (0: the initial model).
    pub round: u64,
    /// Clients summed.
    pub clients: u64,
    /// Their weights' sum.
    pub weight_sum: i64,
    /// The quantization error bound.
    pub error_bound: f64,
    /// With differential privacy: the epsilon spent so far.
    pub epsilon: Option<f64>,
}

impl ModelFile {
    /// `model` (flattened in layout order) split into `layout`'s tensors.
    #[must_use]
    pub fn new(federation: &str, layout: &ModelLayout, model: &[f32], origin: ModelOrigin) -> Self {
        let tensors = layout
            .tensors()
            .iter()
            .zip(layout.split(model))
            .map(|(spec, values)| TensorValues {
                name: spec.name().to_owned(),
                shape: spec.shape().to_vec(),
                values,
            })
            .collect();
        Self {
            format: MODEL_FORMAT.to_owned(),
            federation: federation.to_owned(),
            round: origin.round,
            clients: origin.clients,
            weight_sum: origin.weight_sum,
            error_bound: origin.error_bound,
            epsilon: origin.epsilon,
            tensors,
        }
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// [`NetError::Io`].
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|e| NetError::ModelFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &json, Access::Shared)
    }

    /// Reads a model file back, checking that each tensor's values fill its
    /// shape.
    ///
    /// # Errors
    /// [`NetError::Io`], [`NetError::ModelFile`].
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |reason: String| NetError::ModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(NetError::io(path))?;
        let file: Self = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if file.format != MODEL_FORMAT {
            return Err(bad(format!(
                "format {:?}, not {MODEL_FORMAT:?}",
                file.format
            )));
        }
        for t in &file.tensors {
            let size = t
                .shape
                .iter()
                .try_fold(1u64, |a, d| a.checked_mul(*d))
                .and_then(|s| usize::try_from(s).ok());
            if size != Some(t.values.len()) {
                return Err(bad(format!(
                    "tensor {:?} of shape {:?} holds {} values",
                    t.name,
                    t.shape,
                    t.values.len()
                )));
            }
        }
        Ok(file)
    }

    /// The layout of the tensors.
    ///
    /// # Errors
    /// [`NetError::Protocol`] for an invalid layout.
    pub fn layout(&self) -> Result<ModelLayout> {
        ModelLayout::try_new(
            self.tensors
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone())),
        )
        .map_err(|e| ringsum_protocol::ProtocolError::from(e).into())
    }

    /// The values, flattened in layout order.
    #[must_use]
    pub fn flatten(&self) -> Vec<f32> {
        self.tensors
            .iter()
            .flat_map(|t| t.values.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_model_file_loads_back_into_its_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ModelLayout::try_new([("w", vec![2u64, 3]), ("b", vec![3])]).unwrap();
        let model: Vec<f32> = (0..9u8).map(f32::from).collect();
        let origin = ModelOrigin {
            round: 2,
            clients: 3,
            weight_sum: 10,
            error_bound: 1e-5,
            epsilon: None,
        };
        let path = dir.path().join("final-model.json");
        ModelFile::new("ab", &layout, &model, origin)
            .write(&path)
            .unwrap();
        let back = ModelFile::read(&path).unwrap();
        assert_eq!(back.flatten(), model);
        assert_eq!(back.layout().unwrap().hash(), layout.hash());
        assert_eq!(back.tensors[1].name, "b");
        assert_eq!(back.tensors[1].values, [6.0, 7.0, 8.0]);
        assert_eq!(back.round, 2);
        // Without differential privacy there is no epsilon field; with it,
        // the field reads back.
        let json = std::fs::read_to_string(&path).unwrap();
        assert!(!json.contains("epsilon"), "{json}");
        let private = ModelFile::new(
            "ab",
            &layout,
            &model,
            ModelOrigin {
                epsilon: Some(0.75),
                ..origin
            },
        );
        private.write(&path).unwrap();
        assert_eq!(ModelFile::read(&path).unwrap().epsilon, Some(0.75));
        // A tensor whose values do not fill its shape is refused.
        std::fs::write(
            &path,
            r#"{"format":"ringsum-model/v1","federation":"","round":0,"clients":0,"weight_sum":0,"error_bound":0,"tensors":[{"name":"w","shape":[2],"values":[1]}]}"#,
        )
        .unwrap();
        assert!(ModelFile::read(&path).is_err());
    }
}

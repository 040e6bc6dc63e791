//! Models and updates as safetensors files, the format PyTorch's
//! `safetensors.torch.save_file` writes: an 8-byte little-endian header
//! length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the tensors' bytes.
//!
//! - [`read_values`]: a client's update for a given [`ModelLayout`]: every
//!   tensor of the layout by name with its shape, no other tensor; F32,
//!   F64, F16 and BF16 values become f32, and a value that is not finite
//!   (or an F64 beyond f32's range) is refused, naming the tensor and the
//!   value's row-major index.
//! - [`ModelFile::to_safetensors`] and [`ModelFile::from_safetensors`]: the
//!   coordinator's published models (`models/round-<r>.safetensors`,
//!   `final-model.safetensors`) as F32 tensors, with the model file's
//!   figures as strings in `__metadata__`: `format` (`ringsum-model/v1`),
//!   `federation`, `round`, `clients`, `weight_sum`, `error_bound`,
//!   `epsilon` (only with differential privacy), and `tensor_order` (a
//!   JSON array of the tensor names in layout order, since safetensors
//!   keeps none). The header lists the tensors sorted by
//!   name and the `__metadata__` entries in no fixed order.
//!
//! The header is checked by the safetensors crate (its `Metadata`:
//! contiguous, non-overlapping byte ranges that match each dtype and
//! shape, no overflow); the framing around it (the header length, and
//! that the data is exactly what the header describes) is checked here,
//! with subtractions only: `SafeTensors::deserialize` of safetensors
//! 0.8.0 adds the header's data length to the header length unchecked,
//! which panics (with overflow checks on) for a header whose tensors
//! claim nearly 2^64 bytes.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ringsum_core::model::ModelLayout;
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo, TensorView};

use crate::error::{NetError, Result};
use crate::fs::{Access, write_atomic};
use crate::model_file::{MODEL_FORMAT, ModelFile, TensorValues};

/// What is wrong with a safetensors file (or why one cannot be written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetensorsError {
    /// Fewer than the 8 bytes of the header length.
    #[error(
        "{len} bytes: too short for a safetensors file (it starts with an 8-byte header length)"
    )]
    TooShort {
        /// The bytes there are.
        len: usize,
    },

    /// A header length past the end of the file.
    #[error("the header length {declared} runs past the {available} bytes after it")]
    HeaderLength {
        /// The length the file states.
        declared: u64,
        /// The bytes after the length.
        available: usize,
    },

    /// A header that is not a valid safetensors header (not JSON, a dtype
    /// the crate does not know, byte ranges that overlap, leave gaps or do
    /// not match their tensor's dtype and shape).
    #[error("invalid header: {0}")]
    Header(#[source] serde_json::Error),

    /// Data of another length than the header's tensors take.
    #[error("the header's tensors take {declared} bytes; the file holds {found} bytes of data")]
    DataLength {
        /// The bytes the header's tensors take.
        declared: usize,
        /// The bytes after the header.
        found: usize,
    },

    /// A tensor of the model that the file lacks.
    #[error("tensor {name:?} (shape {shape:?}) is missing")]
    Missing {
        /// Its name.
        name: String,
        /// Its shape in the model.
        shape: Vec<u64>,
    },

    /// A tensor the model does not have.
    #[error("tensor {name:?} is not a tensor of the federation's model")]
    Extra {
        /// Its name.
        name: String,
    },

    /// A tensor of another shape than the model's.
    #[error("tensor {name:?} has shape {found:?}; the federation's model has {expected:?}")]
    Shape {
        /// Its name.
        name: String,
        /// Its shape in the model.
        expected: Vec<u64>,
        /// Its shape in the file.
        found: Vec<usize>,
    },

    /// A tensor of a dtype that is not a float read here.
    #[error("tensor {name:?} holds {dtype} values; only F32, F64, F16 and BF16 tensors are read")]
    Dtype {
        /// Its name.
        name: String,
        /// Its dtype, as safetensors names it.
        dtype: String,
    },

    /// A NaN or infinite value.
    #[error("tensor {name:?}, value {index} (row-major): {value} is not finite")]
    NotFinite {
        /// The tensor.
        name: String,
        /// The value's row-major index in the tensor.
        index: usize,
        /// The value.
        value: f64,
    },

    /// An F64 value beyond f32's range.
    #[error("tensor {name:?}, value {index} (row-major): {value} is beyond f32's range")]
    OutOfRange {
        /// The tensor.
        name: String,
        /// The value's row-major index in the tensor.
        index: usize,
        /// The value.
        value: f64,
    },

    /// A ringsum model file whose `__metadata__` lacks an entry or holds
    /// a wrong one.
    #[error("__metadata__ {key}: {reason}")]
    Metadata {
        /// The entry.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor name that appears twice in a model to write.
    #[error("tensor {name:?} appears twice")]
    DuplicateName {
        /// The name.
        name: String,
    },

    /// A tensor of a model to write whose values do not fill its shape.
    #[error("tensor {name:?} of shape {shape:?} holds {values} values")]
    ValueCount {
        /// Its name.
        name: String,
        /// Its shape.
        shape: Vec<u64>,
        /// The values it holds.
        values: usize,
    },

    /// The safetensors crate refused to encode a model.
    #[error("cannot encode: {0}")]
    Encode(#[source] safetensors::SafeTensorError),
}

/// The header and the data of a safetensors file, checked: the header by
/// the safetensors crate, the framing here.
fn parse(bytes: &[u8]) -> Result<(Metadata, &[u8]), SafetensorsError> {
    let (length, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(SafetensorsError::TooShort { len: bytes.len() })?;
    let declared = u64::from_le_bytes(*length);
    let n = usize::try_from(declared)
        .ok()
        .filter(|n| *n <= rest.len())
        .ok_or(SafetensorsError::HeaderLength {
            declared,
            available: rest.len(),
        })?;
    let (header, data) = rest.split_at(n);
    let metadata: Metadata = serde_json::from_slice(header).map_err(SafetensorsError::Header)?;
    if metadata.data_len() != data.len() {
        return Err(SafetensorsError::DataLength {
            declared: metadata.data_len(),
            found: data.len(),
        });
    }
    Ok((metadata, data))
}

/// Whether a file's shape is the model's.
fn same_shape(found: &[usize], expected: &[u64]) -> bool {
    found.len() == expected.len()
        && found
            .iter()
            .zip(expected)
            .all(|(f, e)| u64::try_from(*f).ok() == Some(*e))
}

/// Appends the values of tensor `name` (of `dtype`, in `bytes`) to `out`
/// as f32.
///
/// # Errors
/// [`SafetensorsError::Dtype`] for a dtype that is not F32, F64, F16 or
/// BF16; [`SafetensorsError::NotFinite`], [`SafetensorsError::OutOfRange`].
fn append_f32(
    name: &str,
    dtype: Dtype,
    bytes: &[u8],
    out: &mut Vec<f32>,
) -> Result<(), SafetensorsError> {
    let start = out.len();
    let not_finite = |index: usize, value: f64| SafetensorsError::NotFinite {
        name: name.to_owned(),
        index,
        value,
    };
    match dtype {
        Dtype::F32 => out.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|b| f32::from_le_bytes(*b)),
        ),
        Dtype::F16 => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|b| half::f16::from_le_bytes(*b).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|b| half::bf16::from_le_bytes(*b).to_f32()),
        ),
        Dtype::F64 => {
            out.reserve(bytes.len() / 8);
            for (index, b) in bytes.as_chunks::<8>().0.iter().enumerate() {
                let value = f64::from_le_bytes(*b);
                if !value.is_finite() {
                    return Err(not_finite(index, value));
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "rounding to the nearest f32 is the conversion; one beyond f32's range is refused below"
                )]
                let single = value as f32;
                if !single.is_finite() {
                    return Err(SafetensorsError::OutOfRange {
                        name: name.to_owned(),
                        index,
                        value,
                    });
                }
                out.push(single);
            }
        }
        other => {
            return Err(SafetensorsError::Dtype {
                name: name.to_owned(),
                dtype: other.to_string(),
            });
        }
    }
    let fresh = out.get(start..).unwrap_or_default();
    if let Some((index, value)) = fresh.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(not_finite(index, f64::from(*value)));
    }
    Ok(())
}

/// The values of a safetensors file as `layout`'s flat model (in layout
/// order, each tensor row-major): every tensor of the layout by name with
/// its shape and no other tensor; F32, F64, F16 and BF16 values as f32.
///
/// Never panics, whatever the bytes.
///
/// # Errors
/// [`SafetensorsError`]: a malformed file, a missing, extra or misshaped
/// tensor, a dtype that is not one of those floats, or a value that is not
/// finite (or an F64 beyond f32's range), naming the tensor and the
/// value's row-major index.
pub fn read_values(layout: &ModelLayout, bytes: &[u8]) -> Result<Vec<f32>, SafetensorsError> {
    let (metadata, data) = parse(bytes)?;
    let mut tensors = Vec::with_capacity(layout.tensors().len());
    for spec in layout.tensors() {
        let name = spec.name();
        let info = metadata
            .info(name)
            .ok_or_else(|| SafetensorsError::Missing {
                name: name.to_owned(),
                shape: spec.shape().to_vec(),
            })?;
        if !same_shape(&info.shape, spec.shape()) {
            return Err(SafetensorsError::Shape {
                name: name.to_owned(),
                expected: spec.shape().to_vec(),
                found: info.shape.clone(),
            });
        }
        tensors.push((name, info));
    }
    let names: HashSet<&str> = layout.tensors().iter().map(|t| t.name()).collect();
    if let Some(extra) = metadata
        .offset_keys()
        .into_iter()
        .find(|name| !names.contains(name.as_str()))
    {
        return Err(SafetensorsError::Extra { name: extra });
    }
    // Every tensor has the layout's shape: the values fit the layout.
    let mut values = Vec::with_capacity(layout.parameter_count());
    for (name, info) in tensors {
        append_f32(name, info.dtype, tensor_bytes(data, info), &mut values)?;
    }
    Ok(values)
}

/// A tensor's bytes in the data: its range, which the header's check
/// keeps within the data.
fn tensor_bytes<'a>(data: &'a [u8], info: &TensorInfo) -> &'a [u8] {
    let (start, end) = info.data_offsets;
    data.get(start..end).unwrap_or_default()
}

fn metadata_entry<'a>(
    entries: &'a HashMap<String, String>,
    key: &'static str,
) -> Result<&'a str, SafetensorsError> {
    entries
        .get(key)
        .map(String::as_str)
        .ok_or(SafetensorsError::Metadata {
            key,
            reason: "missing".to_owned(),
        })
}

fn metadata_number<T: std::str::FromStr>(
    entries: &HashMap<String, String>,
    key: &'static str,
) -> Result<T, SafetensorsError>
where
    T::Err: std::fmt::Display,
{
    let text = metadata_entry(entries, key)?;
    text.parse().map_err(|e| SafetensorsError::Metadata {
        key,
        reason: format!("{text:?}: {e}"),
    })
}

impl ModelFile {
    /// The model as a safetensors file: F32 tensors, and the file's
    /// figures in `__metadata__` (see the module's documentation).
    ///
    /// # Errors
    /// [`SafetensorsError::DuplicateName`],
    /// [`SafetensorsError::ValueCount`], [`SafetensorsError::Encode`].
    pub fn to_safetensors(&self) -> Result<Vec<u8>, SafetensorsError> {
        let mut names: Vec<&str> = Vec::with_capacity(self.tensors.len());
        let mut seen = HashSet::with_capacity(self.tensors.len());
        let mut data = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            if !seen.insert(t.name.as_str()) {
                return Err(SafetensorsError::DuplicateName {
                    name: t.name.clone(),
                });
            }
            names.push(&t.name);
            let count = t
                .shape
                .iter()
                .try_fold(1u64, |a, d| a.checked_mul(*d))
                .and_then(|c| usize::try_from(c).ok());
            let shape: Option<Vec<usize>> =
                t.shape.iter().map(|d| usize::try_from(*d).ok()).collect();
            let (Some(shape), true) = (shape, count == Some(t.values.len())) else {
                return Err(SafetensorsError::ValueCount {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    values: t.values.len(),
                });
            };
            let bytes: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            data.push((shape, bytes));
        }
        let views = names
            .iter()
            .zip(&data)
            .map(|(name, (shape, bytes))| {
                TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (*name, view))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(SafetensorsError::Encode)?;
        let order = serde_json::to_string(&names).map_err(SafetensorsError::Header)?;
        let mut metadata = HashMap::from([
            ("format".to_owned(), self.format.clone()),
            ("federation".to_owned(), self.federation.clone()),
            ("round".to_owned(), self.round.to_string()),
            ("clients".to_owned(), self.clients.to_string()),
            ("weight_sum".to_owned(), self.weight_sum.to_string()),
            ("error_bound".to_owned(), self.error_bound.to_string()),
            ("tensor_order".to_owned(), order),
        ]);
        if let Some(epsilon) = self.epsilon {
            metadata.insert("epsilon".to_owned(), epsilon.to_string());
        }
        safetensors::serialize(views, Some(metadata)).map_err(SafetensorsError::Encode)
    }

    /// A model file from a safetensors file that [`Self::to_safetensors`]
    /// wrote (any float dtype is read as f32), with its tensors in layout
    /// order.
    ///
    /// Never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`SafetensorsError`]: a malformed file, a `__metadata__` without
    /// this format's entries, a tensor that is not a float or holds a
    /// value that is not finite.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, SafetensorsError> {
        let (metadata, data) = parse(bytes)?;
        let no_metadata = HashMap::new();
        let entries = metadata.metadata().as_ref().unwrap_or(&no_metadata);
        let format = metadata_entry(entries, "format")?;
        if format != MODEL_FORMAT {
            return Err(SafetensorsError::Metadata {
                key: "format",
                reason: format!("{format:?}, not {MODEL_FORMAT:?}"),
            });
        }
        let order: Vec<String> = serde_json::from_str(metadata_entry(entries, "tensor_order")?)
            .map_err(|e| SafetensorsError::Metadata {
                key: "tensor_order",
                reason: e.to_string(),
            })?;
        let present = metadata.offset_keys();
        let listed: HashSet<&String> = order.iter().collect();
        // As many names as tensors, every tensor among them: each once.
        let mismatch =
            order.len() != present.len() || present.iter().any(|name| !listed.contains(name));
        if mismatch {
            return Err(SafetensorsError::Metadata {
                key: "tensor_order",
                reason: format!("names {order:?}, but the file holds {present:?}"),
            });
        }
        let mut tensors = Vec::with_capacity(order.len());
        for name in order {
            let Some(info) = metadata.info(&name) else {
                return Err(SafetensorsError::Missing {
                    name,
                    shape: Vec::new(),
                });
            };
            let mut values = Vec::new();
            append_f32(&name, info.dtype, tensor_bytes(data, info), &mut values)?;
            tensors.push(TensorValues {
                shape: info
                    .shape
                    .iter()
                    .map(|d| u64::try_from(*d).unwrap_or(u64::MAX))
                    .collect(),
                name,
                values,
            });
        }
        let error_bound: f64 = metadata_number(entries, "error_bound")?;
        if !(error_bound.is_finite() && error_bound >= 0.0) {
            return Err(SafetensorsError::Metadata {
                key: "error_bound",
                reason: format!("{error_bound} is not a finite non-negative number"),
            });
        }
        let epsilon = if entries.contains_key("epsilon") {
            let epsilon: f64 = metadata_number(entries, "epsilon")?;
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(SafetensorsError::Metadata {
                    key: "epsilon",
                    reason: format!("{epsilon} is not a finite non-negative number"),
                });
            }
            Some(epsilon)
        } else {
            None
        };
        Ok(Self {
            format: format.to_owned(),
            federation: metadata_entry(entries, "federation")?.to_owned(),
            round: metadata_number(entries, "round")?,
            clients: metadata_number(entries, "clients")?,
            weight_sum: metadata_number(entries, "weight_sum")?,
            error_bound,
            epsilon,
            tensors,
        })
    }

    /// Writes the model as a safetensors file, atomically.
    ///
    /// # Errors
    /// [`NetError::Safetensors`], [`NetError::Io`].
    pub fn write_safetensors(&self, path: &Path) -> Result<()> {
        let bytes = self
            .to_safetensors()
            .map_err(|source| NetError::Safetensors {
                path: path.to_path_buf(),
                source,
            })?;
        write_atomic(path, &bytes, Access::Shared)
    }

    /// Reads a safetensors model file back.
    ///
    /// # Errors
    /// [`NetError::Io`], [`NetError::Safetensors`].
    pub fn read_safetensors(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(NetError::io(path))?;
        Self::from_safetensors(&bytes).map_err(|source| NetError::Safetensors {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_file::ModelOrigin;

    fn layout() -> ModelLayout {
        ModelLayout::try_new([("w", vec![2u64, 3]), ("b", vec![3])]).unwrap()
    }

    /// Values every dtype read here holds exactly.
    const W: [f32; 6] = [0.5, -1.25, 2.0, 0.0, -0.375, 3.5];
    const B: [f32; 3] = [1.0, -2.0, 0.25];

    fn encode(dtype: Dtype, values: &[f32]) -> Vec<u8> {
        match dtype {
            Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::F64 => values
                .iter()
                .flat_map(|v| f64::from(*v).to_le_bytes())
                .collect(),
            Dtype::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            Dtype::BF16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
            // Refused for its dtype, whatever it holds.
            Dtype::I32 => vec![7; values.len() * 4],
            Dtype::BOOL => values.iter().map(|v| u8::from(*v != 0.0)).collect(),
            other => unreachable!("{other}"),
        }
    }

    /// A safetensors file of (name, dtype, shape, bytes), as another
    /// writer (e.g. PyTorch's) would make it.
    fn file(tensors: &[(&str, Dtype, &[usize], Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(&str, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                (
                    *name,
                    TensorView::new(*dtype, shape.to_vec(), bytes).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn update(w: Dtype, b: Dtype) -> Vec<u8> {
        file(&[
            ("w", w, &[2, 3], encode(w, &W)),
            ("b", b, &[3], encode(b, &B)),
        ])
    }

    fn expected() -> Vec<f32> {
        W.iter().chain(&B).copied().collect()
    }

    #[test]
    fn float_dtypes_are_read_as_f32_in_layout_order() {
        for (w, b) in [
            (Dtype::F32, Dtype::F32),
            (Dtype::F64, Dtype::F16),
            (Dtype::BF16, Dtype::F64),
            (Dtype::F16, Dtype::BF16),
        ] {
            assert_eq!(
                read_values(&layout(), &update(w, b)).unwrap(),
                expected(),
                "{w} {b}"
            );
        }
        // F64 and F16 round to the nearest f32.
        let bytes = file(&[
            ("w", Dtype::F64, &[2, 3], encode(Dtype::F64, &W)),
            (
                "b",
                Dtype::F64,
                &[3],
                [0.1f64, 1e-50, -1e38]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        ]);
        let values = read_values(&layout(), &bytes).unwrap();
        assert_eq!(values[6..], [0.1f32, 0.0, -1e38]);
    }

    #[test]
    fn a_model_file_round_trips_with_its_figures_and_order() {
        let layout = layout();
        let origin = ModelOrigin {
            round: 2,
            clients: 3,
            weight_sum: -17,
            error_bound: 1.234_567_890_123e-5,
            epsilon: None,
        };
        let model = ModelFile::new("ab12", &layout, &expected(), origin);
        let bytes = model.to_safetensors().unwrap();
        let back = ModelFile::from_safetensors(&bytes).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.tensors[0].name, "w", "layout order, not the file's");
        // The same bytes read as a client's update of that layout.
        assert_eq!(read_values(&layout, &bytes).unwrap(), expected());
        // The figures are in __metadata__, as strings any reader sees.
        let (metadata, _) = parse(&bytes).unwrap();
        let entries = metadata.metadata().clone().unwrap();
        assert_eq!(entries["round"], "2");
        assert_eq!(entries["weight_sum"], "-17");
        assert_eq!(entries["format"], MODEL_FORMAT);
        assert_eq!(entries["tensor_order"], r#"["w","b"]"#);
        assert!(!entries.contains_key("epsilon"));
        // With differential privacy the epsilon spent is there too.
        let mut private = model.clone();
        private.epsilon = Some(1.234_567_890_123_4);
        let back = ModelFile::from_safetensors(&private.to_safetensors().unwrap()).unwrap();
        assert_eq!(back, private);
        private.epsilon = Some(-1.0);
        assert!(matches!(
            ModelFile::from_safetensors(&private.to_safetensors().unwrap()),
            Err(SafetensorsError::Metadata { key: "epsilon", .. })
        ));
        // Through files, written atomically.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("final-model.safetensors");
        model.write_safetensors(&path).unwrap();
        assert_eq!(ModelFile::read_safetensors(&path).unwrap(), model);
        // (Not byte for byte: the crate writes `__metadata__` from a
        // HashMap, in no fixed order.)
        assert_eq!(
            ModelFile::from_safetensors(&std::fs::read(&path).unwrap()).unwrap(),
            model
        );
        let missing = ModelFile::read_safetensors(&dir.path().join("none"));
        assert!(matches!(missing, Err(NetError::Io { .. })), "{missing:?}");
        // A bound that is not a finite non-negative number is refused.
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let mut odd = model.clone();
            odd.error_bound = bad;
            let err = ModelFile::from_safetensors(&odd.to_safetensors().unwrap()).unwrap_err();
            assert!(
                matches!(
                    err,
                    SafetensorsError::Metadata {
                        key: "error_bound",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        // An update file is not a model file: it has no figures.
        let err = ModelFile::from_safetensors(&update(Dtype::F32, Dtype::F32)).unwrap_err();
        assert!(
            matches!(err, SafetensorsError::Metadata { key: "format", .. }),
            "{err}"
        );
    }

    #[test]
    fn models_that_cannot_be_written_are_refused() {
        let mut model = ModelFile::new("ab", &layout(), &expected(), ModelOrigin::default());
        model.tensors[1].values.pop();
        let err = model.to_safetensors().unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::ValueCount { name, values: 2, .. } if name == "b"),
            "{err}"
        );
        let mut model = ModelFile::new("ab", &layout(), &expected(), ModelOrigin::default());
        model.tensors[1].name = "w".into();
        model.tensors[1].shape = vec![2, 3];
        model.tensors[1].values = W.to_vec();
        let err = model.to_safetensors().unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::DuplicateName { name } if name == "w"),
            "{err}"
        );
        let mut model = ModelFile::new("ab", &layout(), &expected(), ModelOrigin::default());
        model.tensors[0].shape = vec![1 << 40, 1 << 40];
        assert!(matches!(
            model.to_safetensors(),
            Err(SafetensorsError::ValueCount { .. })
        ));
    }

    #[test]
    fn tensors_that_do_not_fit_the_layout_are_refused_by_name() {
        let layout = layout();
        let w = || ("w", Dtype::F32, &[2usize, 3][..], encode(Dtype::F32, &W));
        let b = || ("b", Dtype::F32, &[3usize][..], encode(Dtype::F32, &B));

        let err = read_values(&layout, &file(&[w()])).unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::Missing { name, shape } if name == "b" && shape == &[3]),
            "{err}"
        );
        assert_eq!(err.to_string(), r#"tensor "b" (shape [3]) is missing"#);

        let extra = ("c", Dtype::F32, &[1usize][..], encode(Dtype::F32, &[1.0]));
        let err = read_values(&layout, &file(&[w(), b(), extra])).unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::Extra { name } if name == "c"),
            "{err}"
        );

        for shape in [&[3usize, 2][..], &[6], &[1, 2, 3]] {
            let bytes = file(&[("w", Dtype::F32, shape, encode(Dtype::F32, &W)), b()]);
            let err = read_values(&layout, &bytes).unwrap_err();
            assert!(
                matches!(&err, SafetensorsError::Shape { name, expected, found }
                    if name == "w" && expected == &[2, 3] && found == shape),
                "{err}"
            );
        }
        let bytes = file(&[("w", Dtype::F32, &[3, 2], encode(Dtype::F32, &W)), b()]);
        assert_eq!(
            read_values(&layout, &bytes).unwrap_err().to_string(),
            r#"tensor "w" has shape [3, 2]; the federation's model has [2, 3]"#
        );

        for dtype in [Dtype::I32, Dtype::BOOL] {
            let bytes = file(&[w(), ("b", dtype, &[3], encode(dtype, &B))]);
            let err = read_values(&layout, &bytes).unwrap_err();
            assert!(
                matches!(&err, SafetensorsError::Dtype { name, dtype: d } if name == "b" && *d == dtype.to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn values_that_are_not_finite_f32_are_refused_with_their_place() {
        let layout = layout();
        let b = || ("b", Dtype::F32, &[3usize][..], encode(Dtype::F32, &B));
        let mut w = W;
        w[4] = f32::NAN;
        let err = read_values(
            &layout,
            &file(&[("w", Dtype::F32, &[2, 3], encode(Dtype::F32, &w)), b()]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::NotFinite { name, index: 4, .. } if name == "w"),
            "{err}"
        );
        w[4] = f32::NEG_INFINITY;
        for dtype in [Dtype::F16, Dtype::BF16, Dtype::F64] {
            let err = read_values(
                &layout,
                &file(&[("w", dtype, &[2, 3], encode(dtype, &w)), b()]),
            )
            .unwrap_err();
            assert!(
                matches!(&err, SafetensorsError::NotFinite { name, index: 4, value } if name == "w" && *value == f64::NEG_INFINITY),
                "{dtype}: {err}"
            );
        }
        // An F64 too large for f32 is refused, not made infinite.
        let big: Vec<u8> = [1.0f64, 2.0, 1e39]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = file(&[
            ("w", Dtype::F32, &[2, 3], encode(Dtype::F32, &W)),
            ("b", Dtype::F64, &[3], big),
        ]);
        let err = read_values(&layout, &bytes).unwrap_err();
        assert!(
            matches!(&err, SafetensorsError::OutOfRange { name, index: 2, value } if name == "b" && *value == 1e39),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            r#"tensor "b", value 2 (row-major): 1000000000000000000000000000000000000000 is beyond f32's range"#
        );
    }

    /// A file with this header and `data` bytes after it.
    fn raw(header: &str, data: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.resize(bytes.len() + data, 0);
        bytes
    }

    #[test]
    fn malformed_files_are_refused_with_typed_errors() {
        let layout = layout();
        let good = update(Dtype::F32, Dtype::F64);
        // Every truncation.
        for len in 0..good.len() {
            let err = read_values(&layout, &good[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    SafetensorsError::TooShort { .. }
                        | SafetensorsError::HeaderLength { .. }
                        | SafetensorsError::Header(_)
                        | SafetensorsError::DataLength { .. }
                ),
                "{len}: {err}"
            );
            assert!(ModelFile::from_safetensors(&good[..len]).is_err());
        }
        // A byte too many.
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            read_values(&layout, &long),
            Err(SafetensorsError::DataLength { .. })
        ));
        // Header lengths past the end, up to u64::MAX.
        for declared in [u64::MAX, 1 << 40, good.len() as u64] {
            let mut bytes = good.clone();
            bytes[..8].copy_from_slice(&declared.to_le_bytes());
            assert!(
                matches!(
                    read_values(&layout, &bytes),
                    Err(SafetensorsError::HeaderLength { declared: d, .. }) if d == declared
                ),
                "{declared}"
            );
        }
        assert!(matches!(
            read_values(&layout, b"1234"),
            Err(SafetensorsError::TooShort { len: 4 })
        ));
        for header in [
            "not json",
            "\u{0}\u{1}",
            "[]",
            r#"{"w":{"dtype":"F99","shape":[2,3],"data_offsets":[0,24]}}"#,
            // Overlapping and gapped ranges, a range that does not match
            // its shape, an end before its start.
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[20,32]}}"#,
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[28,40]}}"#,
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}"#,
            r#"{"w":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,24]}}"#,
        ] {
            let err = read_values(&layout, &raw(header, 36)).unwrap_err();
            assert!(
                matches!(err, SafetensorsError::Header(_)),
                "{header}: {err}"
            );
        }
        // Tensors claiming nearly 2^64 bytes in all: safetensors 0.8.0's
        // own deserializer overflows on this; the framing here does not.
        let size = (1u64 << 61) - 1;
        let entries: Vec<String> = (0..8u64)
            .map(|i| {
                format!(
                    r#""t{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#,
                    i * size,
                    (i + 1) * size
                )
            })
            .collect();
        let bytes = raw(&format!("{{{}}}", entries.join(",")), 1);
        assert!(matches!(
            read_values(&layout, &bytes),
            Err(SafetensorsError::DataLength { declared, found: 1 }) if declared == usize::MAX - 7
        ));
        // Pseudo-random garbage.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 7, 8, 9, 64, 1000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            assert!(read_values(&layout, &bytes).is_err());
            assert!(ModelFile::from_safetensors(&bytes).is_err());
        }
    }
}

//! Structures of numpy arrays: a Mapping of name -> array (its insertion
//! order), a list or tuple of arrays (by position), or one array (read flat
//! over the whole layout).
//!
//! Reading checks names and shapes against the layout, accepts float16,
//! float32 and float64 only, and copies each array's buffer once, straight
//! into the flat f32 vector the protocol takes (no Python-level work per
//! element). In an update, NaN and infinities are refused naming the
//! tensor and the index; in a record's gradient they are passed on, and
//! the privacy layer counts the record as a zero gradient. Writing makes
//! each tensor in the dtype and shape a template recorded from the
//! coordinator's initial model.

use half::f16;
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyMappingMethods, PyString, PyTuple};
use ringsum_core::model::ModelLayout;
use ringsum_core::privacy::PrivacyError;
use zeroize::Zeroizing;

use crate::error::{Failure, Result};

/// The float dtypes an update may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Float {
    /// float16.
    F16,
    /// float32.
    F32,
    /// float64.
    F64,
}

/// How a structure holds its arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Container {
    /// A Mapping (given back as a dict).
    Dict,
    /// A list.
    List,
    /// A tuple.
    Tuple,
    /// One array over the whole layout.
    Array,
}

/// One array of a template: where its values are in the flat vector, and
/// the shape, dtype and key it had.
#[derive(Clone, Debug)]
struct Slot {
    key: String,
    offset: usize,
    len: usize,
    shape: Vec<usize>,
    dtype: Float,
}

/// The structure of the coordinator's initial model: how models and
/// averages are given back.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    container: Container,
    slots: Vec<Slot>,
}

/// Offsets and lengths of the layout's tensors in the flat vector.
fn spans(layout: &ModelLayout) -> Vec<(usize, usize)> {
    let mut offset = 0usize;
    layout
        .tensors()
        .iter()
        .map(|t| {
            let len = usize::try_from(t.len()).unwrap_or(usize::MAX);
            let span = (offset, len);
            offset = offset.saturating_add(len);
            span
        })
        .collect()
}

/// A shape as the layout knows it: a 0-d array holds one value, (1,).
pub(crate) fn layout_shape(shape: &[usize]) -> Vec<u64> {
    if shape.is_empty() {
        vec![1]
    } else {
        shape.iter().map(|&d| d as u64).collect()
    }
}

fn shape_text<T: std::fmt::Display>(shape: &[T]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// The members of a structure, in its own order: (key, value).
/// A structure's members: (key, value) in its own order.
type Members<'py> = Vec<(String, Bound<'py, PyAny>)>;

fn members<'py>(obj: &Bound<'py, PyAny>) -> Result<(Container, Members<'py>)> {
    let failed = |e: PyErr| Failure::input(format!("reading the structure: {e}"));
    if obj.is_instance_of::<PyUntypedArray>() {
        return Ok((Container::Array, vec![("0".to_owned(), obj.clone())]));
    }
    let (container, items): (Container, Vec<Bound<'py, PyAny>>) = if let Ok(list) =
        obj.cast::<PyList>()
    {
        (Container::List, list.iter().collect())
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        (Container::Tuple, tuple.iter().collect())
    } else if let Ok(mapping) = obj.cast::<PyMapping>() {
        let mut out = Vec::new();
        for item in mapping.items().map_err(failed)?.iter() {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) =
                item.extract().map_err(failed)?;
            let key = key.cast::<PyString>().map_err(|_| {
                Failure::input(format!(
                    "tensor names must be str, found a key of type {}",
                    type_name(&key)
                ))
            })?;
            out.push((key.to_string(), value));
        }
        return Ok((Container::Dict, out));
    } else {
        return Err(Failure::input(format!(
            "expected a Mapping of str to numpy arrays, a list or tuple of numpy arrays, or one numpy array; got {}",
            type_name(obj)
        )));
    };
    Ok((
        container,
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
    ))
}

/// A member as an array: an ndarray, or a numpy scalar (as a 0-d array).
fn as_array<'py>(label: &str, value: &Bound<'py, PyAny>) -> Result<Bound<'py, PyUntypedArray>> {
    let py = value.py();
    // A masked array is an ndarray whose buffer still holds the masked
    // values: reading it would encrypt what the caller masked out.
    let masked = py
        .import("numpy.ma")
        .and_then(|ma| ma.getattr("MaskedArray"))
        .and_then(|class| value.is_instance(&class))
        .unwrap_or(false);
    if masked {
        return Err(Failure::input(format!(
            "tensor {label}: a masked array; fill it first (numpy.ma.filled) so that what is encrypted is explicit"
        )));
    }
    if let Ok(array) = value.cast::<PyUntypedArray>() {
        return Ok(array.clone());
    }
    let scalar = py
        .import("numpy")
        .and_then(|np| np.getattr("generic"))
        .and_then(|generic| value.is_instance(&generic))
        .unwrap_or(false);
    if scalar
        && let Ok(array) = py
            .import("numpy")
            .and_then(|np| np.call_method1("asarray", (value,)))
            .and_then(|a| a.cast_into::<PyUntypedArray>().map_err(PyErr::from))
    {
        return Ok(array);
    }
    Err(Failure::input(format!(
        "tensor {label}: expected a numpy array, got {}",
        type_name(value)
    )))
}

fn dtype_of(label: &str, array: &Bound<'_, PyUntypedArray>) -> Result<Float> {
    let descr = array.dtype();
    let float = match (descr.kind(), descr.itemsize()) {
        (b'f', 2) => Some(Float::F16),
        (b'f', 4) => Some(Float::F32),
        (b'f', 8) => Some(Float::F64),
        _ => None,
    };
    float.ok_or_else(|| {
        let name = descr
            .str()
            .map_or_else(|_| "?".to_owned(), |s| s.to_string());
        Failure::input(format!(
            "tensor {label}: dtype {name} is not supported; arrays must be float16, float32 or float64"
        ))
    })
}

/// Names and shapes of a structure (what `layout_of` returns): a Mapping
/// uses its keys, a list or tuple "0", "1", ..., one array "0".
pub(crate) fn layout_of(obj: &Bound<'_, PyAny>) -> Result<Vec<(String, Vec<u64>)>> {
    let (_, members) = members(obj)?;
    members
        .iter()
        .map(|(key, value)| {
            let array = as_array(&format!("{key:?}"), value)?;
            Ok((key.clone(), layout_shape(array.shape())))
        })
        .collect()
}

/// The layout of a structure whose arrays must all be float arrays.
pub(crate) fn float_layout_of(obj: &Bound<'_, PyAny>) -> Result<Vec<(String, Vec<u64>)>> {
    let (_, members) = members(obj)?;
    members
        .iter()
        .map(|(key, value)| {
            let label = format!("{key:?}");
            let array = as_array(&label, value)?;
            dtype_of(&label, &array)?;
            Ok((key.clone(), layout_shape(array.shape())))
        })
        .collect()
}

/// One array matched to its place in the flat vector.
struct Matched<'py> {
    label: String,
    key: String,
    array: Bound<'py, PyUntypedArray>,
    offset: usize,
    len: usize,
}

/// Matches a structure's arrays to the layout: by name for a Mapping, by
/// position for a list or tuple, the whole layout for one array.
fn match_layout<'py>(
    obj: &Bound<'py, PyAny>,
    layout: &ModelLayout,
) -> Result<(Container, Vec<Matched<'py>>)> {
    let (container, members) = members(obj)?;
    let tensors = layout.tensors();
    let spans = spans(layout);
    let mut matched = Vec::with_capacity(members.len());
    match container {
        Container::Array => {
            for (key, value) in &members {
                let array = as_array("(the single array)", value)?;
                let count: usize = array.shape().iter().product();
                if count != layout.parameter_count() {
                    return Err(Failure::input(format!(
                        "one array of {count} values was given; the layout has {} parameters",
                        layout.parameter_count()
                    )));
                }
                matched.push(Matched {
                    label: "(the single array)".to_owned(),
                    key: key.clone(),
                    array,
                    offset: 0,
                    len: count,
                });
            }
        }
        Container::Dict => {
            for (key, value) in &members {
                let label = format!("{key:?}");
                let index = tensors
                    .iter()
                    .position(|t| t.name() == key.as_str())
                    .ok_or_else(|| {
                        Failure::input(format!(
                            "tensor {label} is not in the layout (its tensors: {})",
                            tensors
                                .iter()
                                .map(|t| format!("{:?}", t.name()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                let (offset, len) = spans.get(index).copied().unwrap_or((0, 0));
                let shape = tensors.get(index).map(|t| t.shape()).unwrap_or(&[]);
                let array = as_array(&label, value)?;
                check_shape(&label, &array, shape)?;
                matched.push(Matched {
                    label,
                    key: key.clone(),
                    array,
                    offset,
                    len,
                });
            }
            if let Some(missing) = tensors
                .iter()
                .find(|t| !members.iter().any(|(k, _)| k == t.name()))
            {
                return Err(Failure::input(format!(
                    "tensor {:?} of the layout is missing",
                    missing.name()
                )));
            }
        }
        Container::List | Container::Tuple => {
            if members.len() != tensors.len() {
                return Err(Failure::input(format!(
                    "{} arrays were given; the layout has {} tensors ({})",
                    members.len(),
                    tensors.len(),
                    tensors
                        .iter()
                        .map(|t| format!("{:?}", t.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            for (((key, value), tensor), (offset, len)) in members.iter().zip(tensors).zip(spans) {
                let label = format!("{key} ({:?})", tensor.name());
                let array = as_array(&label, value)?;
                check_shape(&label, &array, tensor.shape())?;
                matched.push(Matched {
                    label,
                    key: key.clone(),
                    array,
                    offset,
                    len,
                });
            }
        }
    }
    Ok((container, matched))
}

fn check_shape(label: &str, array: &Bound<'_, PyUntypedArray>, expected: &[u64]) -> Result<()> {
    let found = layout_shape(array.shape());
    if found != expected {
        return Err(Failure::input(format!(
            "tensor {label}: shape {} does not match the layout's {}",
            shape_text(array.shape()),
            shape_text(expected)
        )));
    }
    Ok(())
}

/// Copies `array` (of element type `T`) into `out`, converting each value
/// with `convert`: from the buffer when it is C-contiguous, else in C
/// order through a strided view.
fn copy_typed<T: Element + Copy>(
    label: &str,
    array: &Bound<'_, PyUntypedArray>,
    out: &mut [f32],
    convert: impl Fn(T) -> f32,
) -> Result<()> {
    let typed = array.cast::<PyArrayDyn<T>>().map_err(|_| {
        Failure::input(format!(
            "tensor {label}: its dtype does not match its element size"
        ))
    })?;
    let readonly = typed
        .try_readonly()
        .map_err(|e| Failure::input(format!("tensor {label}: cannot be read: {e}")))?;
    // numpy's "contiguous" includes Fortran order, whose memory order is
    // not the C order the layout flattens in: only a C-contiguous buffer
    // is read as a slice.
    let slice = if array.is_c_contiguous() {
        readonly.as_slice().ok()
    } else {
        None
    };
    if let Some(slice) = slice {
        for (o, v) in out.iter_mut().zip(slice) {
            *o = convert(*v);
        }
    } else {
        for (o, v) in out.iter_mut().zip(readonly.as_array().iter()) {
            *o = convert(*v);
        }
    }
    Ok(())
}

/// numpy's `flags.aligned`: whether every element sits at an address that
/// is a multiple of its alignment.
fn is_aligned(array: &Bound<'_, PyUntypedArray>) -> PyResult<bool> {
    array.getattr("flags")?.getattr("aligned")?.extract()
}

/// A finite f64 as the nearest f32, saturating at the f32 range (values
/// are clipped far below it anyway); NaN and infinities stay what they are
/// (refused in an update, a zero gradient in a record).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the narrowing to f32 is the point; the value is clamped into its range first"
)]
fn narrow(v: f64) -> f32 {
    if v.is_finite() {
        v.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
    } else {
        v as f32
    }
}

fn copy_array(label: &str, array: &Bound<'_, PyUntypedArray>, out: &mut [f32]) -> Result<Float> {
    let dtype = dtype_of(label, array)?;
    // A non-native byte order (">f4" on a little-endian machine) is
    // swapped by numpy first.
    let swapped;
    let array = if array.dtype().is_native_byteorder() == Some(false) {
        let failed = |e: PyErr| Failure::input(format!("tensor {label}: {e}"));
        let native = array
            .dtype()
            .call_method1("newbyteorder", ("=",))
            .map_err(failed)?;
        swapped = array
            .call_method1("astype", (native,))
            .map_err(failed)?
            .cast_into::<PyUntypedArray>()
            .map_err(|e| failed(e.into()))?;
        &swapped
    } else {
        array
    };
    // An unaligned buffer (np.frombuffer at an odd offset, a field of a
    // packed record) cannot be viewed as a slice of its element type:
    // numpy copies it into an aligned one first.
    let aligned_copy;
    let array = if is_aligned(array).map_err(|e| Failure::input(format!("tensor {label}: {e}")))? {
        array
    } else {
        aligned_copy = array
            .call_method0("copy")
            .and_then(|a| a.cast_into::<PyUntypedArray>().map_err(PyErr::from))
            .map_err(|e| Failure::input(format!("tensor {label}: {e}")))?;
        if !is_aligned(&aligned_copy).unwrap_or(false) {
            return Err(Failure::input(format!(
                "tensor {label}: numpy could not make an aligned copy"
            )));
        }
        &aligned_copy
    };
    match dtype {
        Float::F32 => copy_typed::<f32>(label, array, out, |v| v)?,
        Float::F64 => copy_typed::<f64>(label, array, out, narrow)?,
        Float::F16 => copy_typed::<f16>(label, array, out, f16::to_f32)?,
    }
    Ok(dtype)
}

/// Whether a structure's values must be finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Values {
    /// An update: NaN or an infinity is refused, naming where it is.
    Finite,
    /// A record's gradient: any value; the privacy layer counts a record
    /// with a non-finite value as a zero gradient.
    Any,
}

/// Reads a structure into the flat vector of `layout`, and the template
/// that gives it back in the same form. NaN and infinities are refused.
pub(crate) fn read(obj: &Bound<'_, PyAny>, layout: &ModelLayout) -> Result<(Vec<f32>, Template)> {
    read_values(obj, layout, Values::Finite)
}

/// [`read`], with the non-finite values refused or not as `values` says.
fn read_values(
    obj: &Bound<'_, PyAny>,
    layout: &ModelLayout,
    values: Values,
) -> Result<(Vec<f32>, Template)> {
    let (container, matched) = match_layout(obj, layout)?;
    let mut flat = vec![0f32; layout.parameter_count()];
    let mut slots = Vec::with_capacity(matched.len());
    for m in matched {
        let out = flat
            .get_mut(m.offset..m.offset.saturating_add(m.len))
            .ok_or_else(|| Failure::input(format!("tensor {}: outside the layout", m.label)))?;
        let dtype = copy_array(&m.label, &m.array, out)?;
        if values == Values::Finite
            && let Some(index) = out.iter().position(|v| !v.is_finite())
        {
            let value = out.get(index).copied().unwrap_or(f32::NAN);
            return Err(Failure::input(format!(
                "tensor {}, value {index} (flat, C order): {value} is not a finite number",
                m.label
            )));
        }
        slots.push(Slot {
            key: m.key,
            offset: m.offset,
            len: m.len,
            shape: m.array.shape().to_vec(),
            dtype,
        });
    }
    Ok((flat, Template { container, slots }))
}

/// Reads the per-record gradients of `Client.submit_private`: a 2-D array
/// of shape (records, parameters), or an iterable of per-record structures
/// (each read as [`read`] reads an update), into one vector that is wiped
/// when dropped: the records one after the other, each the layout's
/// parameters in layout order. More than `max_records` records are
/// refused as the privacy layer refuses them, without reading the rest of
/// an iterable. Structural mistakes (shape, dtype, names) are refused;
/// non-finite values are not, in either form: the privacy layer counts
/// such a record as a zero gradient, so that whether a client submits
/// never depends on the values of one record.
pub(crate) fn read_records(
    obj: &Bound<'_, PyAny>,
    layout: &ModelLayout,
    max_records: u64,
) -> Result<Zeroizing<Vec<f32>>> {
    let d = layout.parameter_count();
    let too_many = || Failure::privacy(&PrivacyError::TooManyRecords { max: max_records });
    let fits = |records: usize| u64::try_from(records).is_ok_and(|r| r <= max_records);
    if obj.is_instance_of::<PyUntypedArray>() {
        let label = "(the gradients array)";
        let array = as_array(label, obj)?;
        let records = match array.shape() {
            [records, columns] if *columns == d => *records,
            shape => {
                return Err(Failure::input(format!(
                    "gradients: an array of shape {} was given; per-record gradients are a 2-D \
                     array of shape (records, {d}) (one record: gradients.reshape(1, -1)), or a \
                     list of per-record structures",
                    shape_text(shape)
                )));
            }
        };
        if !fits(records) {
            return Err(too_many());
        }
        let mut values = Zeroizing::new(vec![0f32; records.saturating_mul(d)]);
        copy_array(label, &array, &mut values)?;
        return Ok(values);
    }
    if obj.is_instance_of::<PyMapping>() || obj.is_instance_of::<PyString>() {
        return Err(Failure::input(format!(
            "gradients: one {} was given; pass per-record structures in a list ([record, ...]) \
             or a 2-D array of shape (records, {d})",
            type_name(obj)
        )));
    }
    let items = obj.try_iter().map_err(|_| {
        Failure::input(format!(
            "gradients: expected a 2-D array of shape (records, {d}) or an iterable of \
             per-record structures, got {}",
            type_name(obj)
        ))
    })?;
    // Reserved up front where the length is known, so that the values are
    // not left behind in buffers the vector outgrew.
    let expected = obj
        .len()
        .unwrap_or(0)
        .min(usize::try_from(max_records).unwrap_or(usize::MAX));
    let mut values = Zeroizing::new(Vec::new());
    // Only a hint: a failed reservation is no error.
    let _ = values.try_reserve_exact(expected.saturating_mul(d));
    for (index, item) in items.enumerate() {
        let item = item.map_err(|e| Failure::input(format!("gradients: {e}")))?;
        if !fits(index.saturating_add(1)) {
            return Err(too_many());
        }
        let (record, _) = read_values(&item, layout, Values::Any)
            .map_err(|e| e.context(format!("record {index}")))?;
        let record = Zeroizing::new(record);
        values.extend_from_slice(&record);
    }
    Ok(values)
}

fn make_array<'py>(py: Python<'py>, slot: &Slot, values: &[f32]) -> PyResult<Bound<'py, PyAny>> {
    let shape = slot.shape.clone();
    Ok(match slot.dtype {
        Float::F32 => numpy::PyArray1::from_slice(py, values)
            .reshape(shape)?
            .into_any(),
        Float::F64 => numpy::PyArray1::from_iter(py, values.iter().map(|v| f64::from(*v)))
            .reshape(shape)?
            .into_any(),
        Float::F16 => numpy::PyArray1::from_iter(py, values.iter().map(|v| f16::from_f32(*v)))
            .reshape(shape)?
            .into_any(),
    })
}

impl Template {
    /// `flat` (in layout order) in this structure.
    ///
    /// # Errors
    /// If Python fails to allocate, or `flat` is shorter than the layout.
    pub(crate) fn build<'py>(&self, py: Python<'py>, flat: &[f32]) -> PyResult<Bound<'py, PyAny>> {
        let mut arrays = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let values = flat
                .get(slot.offset..slot.offset.saturating_add(slot.len))
                .ok_or_else(|| {
                    PyErr::from(Failure::new(
                        crate::error::Kind::Base,
                        format!(
                            "a model of {} values is shorter than its layout",
                            flat.len()
                        ),
                    ))
                })?;
            arrays.push((slot.key.as_str(), make_array(py, slot, values)?));
        }
        Ok(match self.container {
            Container::Dict => {
                let dict = PyDict::new(py);
                for (key, array) in arrays {
                    dict.set_item(key, array)?;
                }
                dict.into_any()
            }
            Container::List => PyList::new(py, arrays.into_iter().map(|(_, a)| a))?.into_any(),
            Container::Tuple => PyTuple::new(py, arrays.into_iter().map(|(_, a)| a))?.into_any(),
            Container::Array => match arrays.into_iter().next() {
                Some((_, array)) => array,
                None => PyList::empty(py).into_any(),
            },
        })
    }
}

//! # ringsum-py
//!
//! The native part of the Python package `ringsum` (module
//! `ringsum._native`, built by maturin from python/pyproject.toml): the
//! protocol's participants on numpy arrays. It has no cryptography of its
//! own: `Federation` is ringsum-net's federation description (JSON version
//! 2), `Client`, `Coordinator` and `Holder` wrap ringsum-protocol's, a
//! holder's journal file is ringsum-net's redb `HolderJournal`, key files
//! are ringsum-pq's as `ringsum keygen` writes them, and a client's
//! randomness is the operating system's, through `Csprng::from_os` as in
//! ringsum-net's client.
//!
//! The API is specified in python/ringsum/_native.pyi. Errors become the
//! exception classes of [`error`]; structures of arrays are read and
//! written by [`arrays`].

pub mod arrays;
pub mod error;
pub mod federation;
pub mod round;

use std::path::PathBuf;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::{
    AuthenticationError, Failure, FormatError, RefusedError, RingsumError, RoundFailedError,
    SetupError,
};
use crate::federation::{PyFederation, PyIdentity};
use crate::round::{PyClient, PyCoordinator, PyHolder, PyRoundResult, submit_bytes, unsigned};

/// Writes a key directory as `ringsum keygen` does; returns the member id.
#[pyfunction]
#[pyo3(signature = (directory, *, holder = false, hybrid = false))]
fn keygen(py: Python<'_>, directory: PathBuf, holder: bool, hybrid: bool) -> PyResult<String> {
    Ok(py.detach(|| federation::keygen(&directory, holder, hybrid))?)
}

/// The shipped per-round-key parameter set ids.
#[pyfunction]
fn parameter_sets() -> Vec<&'static str> {
    federation::parameter_sets()
}

/// Names and shapes of a structure of arrays.
#[pyfunction]
fn layout_of<'py>(
    py: Python<'py>,
    arrays: &Bound<'py, PyAny>,
) -> PyResult<Vec<(String, Bound<'py, PyTuple>)>> {
    arrays::layout_of(arrays)?
        .into_iter()
        .map(|(name, shape)| Ok((name, PyTuple::new(py, shape)?)))
        .collect()
}

/// For python/benches/bench_encrypt.py: the seconds of each of
/// `repetitions` calls of the Rust encryption that `Client.submit` makes
/// (fresh OS-seeded generator, `Client::submit`, `Submission::to_bytes`),
/// timed inside Rust in this process, on `values` read once beforehand.
#[pyfunction]
fn _bench_rust_submit(
    py: Python<'_>,
    federation: &PyFederation,
    identity: &PyIdentity,
    values: &Bound<'_, PyAny>,
    samples: &Bound<'_, PyAny>,
    repetitions: usize,
) -> PyResult<Vec<f64>> {
    let client = py.detach(|| PyClient::make(federation, identity))?;
    let samples = unsigned(samples, "samples")?;
    let (flat, _) = arrays::read(values, client.layout())?;
    Ok(py.detach(|| -> Result<Vec<f64>, Failure> {
        (0..repetitions)
            .map(|_| {
                let start = Instant::now();
                let bytes = submit_bytes(&client.inner, 1, &flat, samples)?;
                let seconds = start.elapsed().as_secs_f64();
                std::hint::black_box(bytes);
                Ok(seconds)
            })
            .collect()
    })?)
}

/// The module `ringsum._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RingsumError", py.get_type::<RingsumError>())?;
    m.add("InputError", error::input_error_type(py)?)?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("RoundFailedError", py.get_type::<RoundFailedError>())?;
    m.add("SetupError", py.get_type::<SetupError>())?;
    m.add_class::<PyFederation>()?;
    m.add_class::<PyIdentity>()?;
    m.add_class::<PyClient>()?;
    m.add_class::<PyCoordinator>()?;
    m.add_class::<PyRoundResult>()?;
    m.add_class::<PyHolder>()?;
    m.add_function(wrap_pyfunction!(keygen, m)?)?;
    m.add_function(wrap_pyfunction!(parameter_sets, m)?)?;
    m.add_function(wrap_pyfunction!(layout_of, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_rust_submit, m)?)?;
    Ok(())
}

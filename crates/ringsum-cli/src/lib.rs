//! The library behind the `ringsum` command line: the demo's data sets
//! ([`data`]), models ([`model`]) and the in-process federation
//! ([`demo`]), and the pipeline benchmark ([`bench`]), so that tests and
//! examples can run them too.

pub mod bench;
pub mod data;
pub mod demo;
pub mod model;
pub mod net;

use indicatif::{ProgressBar, ProgressStyle};
use ringsum_core::ParameterSet;

/// A shipped parameter set by id, or a parameter-set TOML file by path.
pub(crate) fn load_params(name: &str) -> Result<ParameterSet, String> {
    let path = std::path::Path::new(name);
    if path.exists() {
        return ParameterSet::load(path).map_err(|e| format!("{name}: {e}"));
    }
    ParameterSet::builtin(name).map_err(|_| {
        format!(
            "unknown parameter set {name:?}; the shipped sets are {} (or give a TOML file)",
            ParameterSet::builtin_ids().join(", ")
        )
    })
}

/// A progress bar of `len` steps drawn with `template`, or a hidden one.
pub(crate) fn progress_bar(show: bool, len: u64, template: &str) -> Result<ProgressBar, String> {
    if !show {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    Ok(bar)
}

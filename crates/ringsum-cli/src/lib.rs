//! The library behind the `ringsum` command line: the demo's data sets
//! ([`data`]), models ([`model`]) and the in-process federation
//! ([`demo`]) with its differentially private training ([`fedsgd`]), the pipeline benchmark ([`mod@bench`]), and the federation
//! on several machines ([`net`]) with its quantum threat assessment
//! ([`assess`]), so that tests and examples can run them
//! too. Every command fails with a [`CliError`].

pub mod assess;
pub mod bench;
pub mod data;
pub mod demo;
pub mod error;
pub mod fedsgd;
pub mod model;
pub mod net;

pub use error::{CliError, Result};

use indicatif::{ProgressBar, ProgressStyle};
use ringsum_core::ParameterSet;

/// A shipped parameter set by id, or a parameter-set TOML file by path.
pub(crate) fn load_params(name: &str) -> Result<ParameterSet> {
    let path = std::path::Path::new(name);
    if path.exists() {
        return ParameterSet::load(path).map_err(|source| CliError::ParameterFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        });
    }
    if name.starts_with("pq128-") {
        return Err(CliError::RemovedParameterSet {
            name: name.to_owned(),
        });
    }
    if !ParameterSet::builtin_ids().contains(&name) {
        return Err(CliError::UnknownParameterSet {
            name: name.to_owned(),
        });
    }
    Ok(ParameterSet::builtin(name)?)
}

/// Refuses more clients than `params` is sized for (its `max_clients`).
pub(crate) fn check_client_count(params: &ParameterSet, clients: usize) -> Result<()> {
    let max_clients = params.encoding().max_clients;
    if clients as u64 > max_clients {
        return Err(CliError::TooManyClients {
            clients,
            max_clients,
            parameter_set: params.id().clone(),
        });
    }
    Ok(())
}

/// A progress bar of `len` steps drawn with `template`, or a hidden one.
pub(crate) fn progress_bar(show: bool, len: u64, template: &'static str) -> Result<ProgressBar> {
    if !show {
        return Ok(ProgressBar::hidden());
    }
    let style = ProgressStyle::with_template(template)
        .map_err(|source| CliError::ProgressTemplate { template, source })?;
    Ok(ProgressBar::new(len).with_style(style.progress_chars("=> ")))
}

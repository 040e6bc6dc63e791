//! The library behind the `ringsum` command line: the demo's data sets
//! ([`data`]), models ([`model`]) and the in-process federation
//! ([`demo`]), and the pipeline benchmark ([`bench`]), so that tests and
//! examples can run them too.

pub mod bench;
pub mod data;
pub mod demo;
pub mod model;

//! A client's update as a safetensors file (`ringsum join --update`), and
//! a published model read back from one: untrusted bytes that must never
//! panic, whatever their header length, JSON header, byte ranges, dtypes
//! or values.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::model::ModelLayout;
use ringsum_net::model_file::ModelFile;
use ringsum_net::safetensors_file::read_values;

fn layout() -> &'static ModelLayout {
    static LAYOUT: OnceLock<ModelLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        ModelLayout::try_new([("weights", vec![4u64, 3]), ("bias", vec![3])]).expect("layout")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = read_values(layout(), data) {
        assert_eq!(values.len(), layout().parameter_count());
        assert!(values.iter().all(|v| v.is_finite()));
    }
    if let Ok(model) = ModelFile::from_safetensors(data) {
        // What reads back writes again, and reads back the same.
        let bytes = model.to_safetensors().expect("a model read back encodes");
        assert_eq!(ModelFile::from_safetensors(&bytes).ok(), Some(model));
    }
});

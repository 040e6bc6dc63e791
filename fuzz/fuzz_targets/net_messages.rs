//! What a participant or a restarted coordinator decodes in ringsum-net:
//! the aggregate a key holder is asked to decrypt, the setup description a
//! participant rebuilds, the coordinator's recorded events and a holder's
//! stored key share, from untrusted bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::Packing;
use ringsum_net::SetupDescription;
use ringsum_net::engine::Event;
use ringsum_protocol::payload::{decode_aggregate, decode_key_share};

struct Fixture {
    params: ParameterSet,
    packing: Packing,
    layout: ModelLayout,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let params = ParameterSet::builtin("pq128-n4096").expect("shipped set");
        Fixture {
            packing: Packing::new(&params),
            layout: ModelLayout::try_new([("w", vec![8u64])]).expect("layout"),
            params,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = decode_aggregate(&f.params, &f.packing, &f.layout, data);
    let _ = decode_key_share(&f.params, data);
    if let Ok(event) = Event::decode(data) {
        assert_eq!(event.encode(), data, "events decode canonically");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(description) = SetupDescription::from_json(text)
    {
        let _ = description.setup();
    }
});

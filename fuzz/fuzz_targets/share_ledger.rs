//! A holder's ledger file is its own, but a damaged file must give a typed
//! error, never a panic, and a ledger that opens must stay usable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_threshold::{HolderId, ShareLedger};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("ringsum-fuzz-ledger-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut ledger) = ShareLedger::open(&path) {
        let before = ledger.len();
        if ledger.permit(&[[0x5a; 32]], &[HolderId(1), HolderId(2)]).is_ok() {
            drop(ledger);
            let reopened = ShareLedger::open(&path).expect("a ledger we wrote must reopen");
            assert!(reopened.len() >= before);
            assert!(reopened.issued(&[0x5a; 32]).is_some());
        }
    }
});

//! The audit chain as docs/formats.md defines it ("The chain hash, byte by
//! byte"): the worked example on that page recomputes from the page's own
//! text, and the rule, applied independently here, gives the hashes the
//! code writes.

use ringsum_pq::codec::unhex;
use ringsum_pq::{FederationId, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::AuditLog;
use sha3::{Digest, Sha3_256};

/// The page's text.
fn formats() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/formats.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| unreachable!("{path}: {e}"))
}

/// The body of the one fenced block of `info` in the chain-hash section.
fn block<'a>(doc: &'a str, info: &str) -> &'a str {
    let section = doc
        .split_once("### The chain hash, byte by byte")
        .and_then(|(_, rest)| rest.split_once("### Verifying a log"))
        .map(|(section, _)| section)
        .unwrap_or_else(|| unreachable!("docs/formats.md has no chain-hash section"));
    let fence = format!("```{info}\n");
    let mut blocks = section.split(fence.as_str()).skip(1);
    let body = blocks
        .next()
        .and_then(|b| b.split_once("```").map(|(body, _)| body))
        .unwrap_or_else(|| unreachable!("no ```{info} block in the chain-hash section"));
    assert!(blocks.next().is_none(), "two ```{info} blocks");
    body
}

/// The rule of the page: SHA3-256 of the 32 bytes of `prev` then the
/// UTF-8 bytes of the unescaped `event` string; also returns those bytes.
fn documented_hash(line: &serde_json::Value) -> ([u8; 32], Vec<u8>) {
    let field = |name: &str| {
        line.get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_else(|| unreachable!("the line has no string {name}"))
    };
    let prev = unhex(field("prev")).unwrap_or_else(|| unreachable!("prev is not hex"));
    assert_eq!(prev.len(), 32);
    let mut hashed = prev;
    hashed.extend_from_slice(field("event").as_bytes());
    (Sha3_256::digest(&hashed).into(), hashed)
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| unreachable!("{line}: {e}"))
}

fn hash_of(line: &serde_json::Value) -> Vec<u8> {
    line.get("hash")
        .and_then(serde_json::Value::as_str)
        .and_then(unhex)
        .unwrap_or_else(|| unreachable!("the line has no hex hash"))
}

#[test]
fn the_documented_example_recomputes_from_the_page() {
    let doc = formats();
    let line = parse(block(&doc, "jsonl").trim());
    let documented_bytes: String = block(&doc, "hex").split_whitespace().collect();
    let (hash, hashed) = documented_hash(&line);
    assert_eq!(
        unhex(&documented_bytes),
        Some(hashed.clone()),
        "the bytes shown are prev || event"
    );
    assert_eq!(hashed.len(), 135, "the page says 135 bytes");
    assert_eq!(hash_of(&line), hash, "the line's hash is SHA3-256 of them");
    let hex = ringsum_pq::codec::hex(&hash);
    assert!(
        doc.contains(&format!("and gives `{hex}`")),
        "the page states the hash"
    );
    // The Python snippet of the page carries the same line.
    let python = block(&doc, "python");
    let quoted = python
        .split_once("line = r\"\"\"")
        .and_then(|(_, rest)| rest.split_once("\"\"\""))
        .map(|(line, _)| line)
        .unwrap_or_else(|| unreachable!("the snippet has no line"));
    assert_eq!(parse(quoted), line);
}

#[test]
fn the_documented_rule_gives_the_hashes_the_code_writes() {
    let doc = formats();
    let example = parse(block(&doc, "jsonl").trim());
    let event_text = example
        .get("event")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| unreachable!("no event"));
    let event: serde_json::Value = parse(event_text);
    let coordinator = SigningIdentity::generate(SignatureAlgorithm::MlDsa65)
        .unwrap_or_else(|e| unreachable!("{e}"));
    let mut log = AuditLog::in_memory(FederationId([7; 32]), "rk128-n4096");
    // The documented event, and one whose text needs escapes and UTF-8.
    let escaped = serde_json::json!({"type": "note", "reason": "a \"quoted\" \\ path, 5 µs"});
    for e in [&event, &escaped] {
        log.append(&coordinator, 1, e)
            .unwrap_or_else(|e| unreachable!("{e}"));
    }
    let mut prev = [0u8; 32];
    for (seq, text) in log.lines().iter().enumerate() {
        let line = parse(text);
        assert_eq!(
            line.get("seq").and_then(serde_json::Value::as_u64),
            Some(seq as u64)
        );
        let (hash, hashed) = documented_hash(&line);
        assert_eq!(
            hashed.get(..32),
            Some(prev.as_slice()),
            "P starts at 32 zero bytes"
        );
        assert_eq!(hash_of(&line), hash, "line {seq}");
        prev = hash;
    }
    // The code writes the event's text as the page shows it.
    let first = parse(log.lines().first().map_or("", String::as_str));
    assert_eq!(
        first.get("event").and_then(serde_json::Value::as_str),
        Some(event_text)
    );
    let second = log.lines().get(1).map_or("", String::as_str);
    // Non-ASCII stays raw UTF-8 in the line (no \u escape), as hashed.
    assert!(second.contains("5 µs"), "{second}");
}

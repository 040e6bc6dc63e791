//! Compiles proto/ringsum.proto with protox (a protobuf compiler in pure
//! Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/ringsum.proto");
    let descriptors = protox::compile(["proto/ringsum.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

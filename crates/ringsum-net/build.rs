//! Compiles the service schema with protox (pure Rust: no system `protoc`)
//! and generates the tonic client and server.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/ringsum_service.proto");
    let descriptors = protox::compile(["proto/ringsum_service.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

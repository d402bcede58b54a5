use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // The descriptor set feeds the probe's gRPC reflection service.
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("telegen_descriptor.bin"))
        .compile_protos(&["telegen/v1/probe.proto"], &["."])?;
    println!("cargo:rerun-if-changed=telegen/v1/probe.proto");
    Ok(())
}

//! Compiles every package under `proto/` into `OUT_DIR`. Client stubs are generated with the
//! `grpc-client` feature, server traits with `grpc-server`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let root = root.canonicalize()?;
    println!("cargo:rerun-if-changed={}", root.display());
    let mut protos = Vec::new();
    collect(&root, &mut protos)?;
    protos.sort();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    tonic_prost_build::configure()
        .build_client(std::env::var_os("CARGO_FEATURE_GRPC_CLIENT").is_some())
        .build_server(std::env::var_os("CARGO_FEATURE_GRPC_SERVER").is_some())
        .compile_protos(&protos, &[root])?;
    Ok(())
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() {
    println!("cargo:rerun-if-changed=tern/v1/live.proto");
    println!("cargo:rerun-if-changed=tempo/tempo.proto");
    tonic_prost_build::configure()
        .compile_protos(&["tern/v1/live.proto", "tempo/tempo.proto"], &["."])
        .expect("compiling the protos (needs protoc: apt-get install protobuf-compiler)");
}

fn main() {
    println!("cargo:rerun-if-changed=tern/v1/live.proto");
    tonic_prost_build::configure()
        .compile_protos(&["tern/v1/live.proto"], &["."])
        .expect("compiling tern/v1/live.proto (needs protoc: apt-get install protobuf-compiler)");
}

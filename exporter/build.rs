//! Compiles the eBPF programs in ../kernel-probes with clang and generates
//! their typed libbpf-rs skeletons into OUT_DIR.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;

/// One skeleton per hook family: (source base name, skeleton module file).
/// `failclosed` is the fail_closed policy's BPF-LSM object (loaded on its own).
const PROBES: &[&str] = &["process", "failclosed"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let probes = root.join("kernel-probes");
    let schemas = root.join("schemas");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        // kernel-probes/include/vmlinux.h is the x86_64 kernel's; other
        // architectures need their own (bpftool btf dump ... format c).
        Ok(other) => panic!("unsupported target architecture {other}: only an x86_64 vmlinux.h is shipped"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    for name in PROBES {
        let src = probes.join(format!("{name}.bpf.c"));
        let obj = out.join(format!("{name}.bpf.o"));
        let skel = out.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(&src)
            .obj(&obj)
            .clang_args([
                "-Wall".to_owned(),
                "-Werror".to_owned(),
                format!("-D__TARGET_ARCH_{arch}"),
                format!("-I{}", schemas.display()),
                format!("-I{}", probes.join("include").display()),
            ])
            .build_and_generate(&skel)
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
        println!("cargo:rerun-if-changed={}", src.display());
    }
    // The event families are #included by process.bpf.c.
    println!("cargo:rerun-if-changed={}", probes.display());
    println!("cargo:rerun-if-changed={}", probes.join("include").display());
    println!("cargo:rerun-if-changed={}", schemas.join("vigil_abi.h").display());
}

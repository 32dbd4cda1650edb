//! Link Hyperscan's runtime and compiler (`libhs`, Debian `libhyperscan-dev`; Vectorscan's
//! `libvectorscan-dev` provides the same library and works too).

fn main() {
    println!("cargo:rerun-if-env-changed=HYPERSCAN_ROOT");
    if let Ok(root) = std::env::var("HYPERSCAN_ROOT") {
        println!("cargo:rustc-link-search=native={root}/lib");
        println!("cargo:rustc-link-lib=hs");
        return;
    }
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("5.0")
        .probe("libhs")
    {
        println!(
            "cargo:warning=libhs not found through pkg-config ({e}); install libhyperscan-dev \
             (or libvectorscan-dev), or set HYPERSCAN_ROOT"
        );
        println!("cargo:rustc-link-lib=hs");
    }
}

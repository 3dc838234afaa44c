//! Generates `include/astack.h` from `src/ffi` with cbindgen (pinned in Cargo.toml), adding
//! the version macros of `Cargo.toml`. The file is rewritten only when its content changes, so
//! a committed header that is up to date stays untouched; `make test-c` fails when it is not.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    // A hand-edited header is regenerated too (and `make test-c` then reports the difference).
    println!("cargo:rerun-if-changed=include/astack.h");

    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let mut config = match cbindgen::Config::from_file(dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml: {e}");
            return;
        }
    };
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    config.after_includes = Some(format!(
        "\n/** The version of the library this header belongs to (as in Cargo.toml). */\n\
         #define ASTACK_VERSION_MAJOR {}\n#define ASTACK_VERSION_MINOR {}\n#define ASTACK_VERSION_PATCH {}\n\
         #define ASTACK_VERSION \"{}\"",
        env("CARGO_PKG_VERSION_MAJOR"),
        env("CARGO_PKG_VERSION_MINOR"),
        env("CARGO_PKG_VERSION_PATCH"),
        env("CARGO_PKG_VERSION"),
    ));
    let bindings = match cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
    {
        Ok(bindings) => bindings,
        Err(e) => {
            // Never break the Rust build over the header: `make test-c` catches a stale one.
            println!("cargo:warning=cbindgen could not generate include/astack.h: {e}");
            return;
        }
    };
    let mut header = Vec::new();
    bindings.write(&mut header);
    let path = dir.join("include/astack.h");
    if std::fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        let written = std::fs::create_dir_all(dir.join("include")).and_then(|()| std::fs::write(&path, &header));
        if let Err(e) = written {
            println!("cargo:warning=cannot write {}: {e}", path.display());
        }
    }
}

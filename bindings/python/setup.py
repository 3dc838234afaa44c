"""Builds the astack package: the Rust library first (cargo, release), then the CPython
extension `astack._native`, compiled against include/astack.h and linked with
target/release/libastack.a, so the installed package needs no shared library beside it.

The repository root is found relative to this file (bindings/python/../..), or from
ASTACK_SOURCE_DIR. CARGO (default `cargo`) and CARGO_TARGET_DIR are honoured.
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def repo_root() -> Path:
    root = Path(os.environ.get("ASTACK_SOURCE_DIR", HERE.parent.parent)).resolve()
    if not (root / "Cargo.toml").is_file() or not (root / "include" / "astack.h").is_file():
        sys.exit(
            f"astack: cannot find the Rust sources at {root} (Cargo.toml and include/astack.h); "
            "install from a checkout (`pip install ./bindings/python`) or set ASTACK_SOURCE_DIR"
        )
    return root


class BuildWithCargo(build_ext):
    """Runs `cargo build --release --lib` before compiling the extension."""

    def run(self) -> None:
        root = repo_root()
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
        cargo = os.environ.get("CARGO", "cargo")
        command = [cargo, "build", "--release", "--lib", "--manifest-path", str(root / "Cargo.toml")]
        self.announce(" ".join(command), level=2)
        try:
            subprocess.run(command, check=True)
        except FileNotFoundError:
            sys.exit("astack: `cargo` was not found: install Rust (https://rustup.rs) to build the package")
        library = target / "release" / "libastack.a"
        if not library.is_file():
            sys.exit(f"astack: cargo did not produce {library}")
        for ext in self.extensions:
            ext.include_dirs.append(str(root / "include"))
            ext.extra_objects.append(str(library))
            ext.depends.append(str(library))
        super().run()


setup(
    ext_modules=[
        Extension(
            "astack._native",
            sources=["src/astack/_native.c"],
            libraries=["pthread", "dl", "m"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            # Keep the Rust symbols private to the extension.
            extra_link_args=["-Wl,--exclude-libs,ALL", "-Wl,--gc-sections"],
        )
    ],
    cmdclass={"build_ext": BuildWithCargo},
)

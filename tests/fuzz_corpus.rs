//! Replays every committed fuzz input on stable: the seed corpora (`fuzz/corpus/<target>/`) and
//! the inputs that once crashed a target (`fuzz/regressions/<target>/`), through the very
//! functions the fuzz targets run (`fuzz/src/lib.rs`, included here). `make fuzz` explores;
//! this keeps what it found fixed.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind);
    let mut count = 0;
    for (name, target) in targets::TARGETS {
        for file in inputs(&root.join(name)) {
            let data = std::fs::read(&file).expect("readable input");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
            count += 1;
        }
    }
    count
}

#[test]
fn every_seed_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in targets::TARGETS {
        assert!(inputs(&root.join(name)).len() >= 3, "{name} has a seed corpus");
    }
    assert!(replay("corpus") > 0);
}

#[test]
fn every_regression_input_passes() {
    replay("regressions");
}

#[test]
fn targets_survive_edge_inputs() {
    let edges: [&[u8]; 8] = [b"", b"\0", b"\xff\xfe", b"{", b"[[[[[[[[", b"null", b"{\"a\":1,\"a\":2}", &[0x80; 64]];
    for (_, target) in targets::TARGETS {
        for edge in edges {
            for pick in 0u8..=25 {
                let mut data = vec![pick];
                data.extend_from_slice(edge);
                target(&data);
            }
        }
    }
}

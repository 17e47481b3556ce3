//! Where the project is, what the tests need of the machine (root, a built `rootfs/`), and
//! where a test may put its scratch files.

use std::path::{Path, PathBuf};

/// The project's directory: steps run from here, as `just` runs them, so that
/// `--rootfs` defaults to the real `rootfs/`.
pub const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

/// A directory of this test process's own, for a test's scratch files.
pub fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("byoc-{name}-{}", std::process::id()))
}

/// The containers need root: say so in one line rather than fail in a hundred ways.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("run the tests as root: sudo just test");
    }
}

/// Steps 3 and later need `rootfs/`, which `just test` builds first.
pub fn require_rootfs() {
    let shell = Path::new(PROJECT).join("rootfs/bin/sh");
    if shell.symlink_metadata().is_err() {
        panic!("rootfs/ is not built: run `just rootfs` (just test does it for you)");
    }
}

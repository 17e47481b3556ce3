//! The rootfs that the attacks run in: rootfs/ with an untrusted program in it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Once;

use super::host::ONE_AT_A_TIME;
use super::project::{PROJECT, require_rootfs};

/// A copy of rootfs/ with `attacks` (tests/tools/attacks.rs, built statically) in
/// /usr/local/bin: the rootfs that tests/attacks.rs and the workshop's stage 4.6 run an
/// untrusted program in, as the path they give to --rootfs, relative to the project. Made
/// once, and again when rootfs/ or the program's source is newer than the copy. The first
/// call must come before the test takes its `HostState`: making it starts processes, in
/// turn as every process a test starts (another test's check would reap them as its own).
pub fn attack_rootfs() -> &'static str {
    static MADE: Once = Once::new();
    MADE.call_once(|| {
        require_rootfs();
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let project = Path::new(PROJECT);
        let rootfs = project.join("target/attack-rootfs");
        let source = project.join("tests/tools/attacks.rs");
        let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
        let built = modified(&rootfs.join("usr/local/bin/attacks"));
        let sources = [modified(&source), modified(&project.join("rootfs/bin/busybox"))];
        if built.is_some() && sources.iter().all(|source| *source <= built) {
            return;
        }
        // Made beside it, then moved in place: another test process may be reading it.
        let new = project.join(format!("target/attack-rootfs.{}", std::process::id()));
        let copied = Command::new("cp").arg("-a").arg(project.join("rootfs")).arg(&new).status();
        assert!(copied.unwrap().success(), "cannot copy rootfs/");
        fs::create_dir_all(new.join("usr/local/bin")).unwrap();
        let built = Command::new("rustc")
            .args(["--edition", "2024", "-O", "-C", "target-feature=+crt-static", "-o"])
            .arg(new.join("usr/local/bin/attacks"))
            .arg(&source)
            .status()
            .expect("rustc, to build tests/tools/attacks.rs");
        assert!(built.success(), "tests/tools/attacks.rs does not build");
        let _ = fs::remove_dir_all(&rootfs);
        fs::rename(&new, &rootfs).unwrap();
    });
    "target/attack-rootfs"
}

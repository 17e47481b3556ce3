//! From step 3 on the container's `/` is `rootfs/`, not the host's.

mod common;

use std::fs;
use std::path::Path;

use common::{PROJECT, STEPS, Step};

/// The steps with a root filesystem of their own.
fn rootfs_steps() -> impl Iterator<Item = Step> {
    common::require_rootfs();
    STEPS.into_iter().skip(2)
}

fn rootfs_entries() -> Vec<String> {
    let entries = fs::read_dir(Path::new(PROJECT).join("rootfs")).unwrap();
    let mut names: Vec<String> =
        entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn slash_is_the_rootfs() {
    for step in rootfs_steps() {
        let before = rootfs_entries();
        let run = step.run(&["run", "ls", "/"]);
        assert_eq!(run.status, 0, "{}", run.transcript);
        assert!(run.output.lines().any(|name| name == "bin"), "{}", run.transcript);
        assert_transcript!(format!("{}_ls_root", step.name), run);
        // The run made nothing in rootfs/: step 3's old root goes to the
        // oldrootfs/ that `just rootfs` made.
        assert_eq!(rootfs_entries(), before, "{} changed rootfs/", step.name);
    }
}

#[test]
fn host_files_are_not_there() {
    assert!(Path::new("/etc/os-release").exists(), "this test needs a host with /etc/os-release");
    for step in rootfs_steps() {
        let run = step.run(&["run", "cat", "/etc/os-release"]);
        assert_eq!(run.status, 1, "{}", run.transcript);
        assert_transcript!(format!("{}_no_host_files", step.name), run);
    }
}

/// Step 3 leaves the host's old root mounted at /oldrootfs: the container can
/// still read every host file through it (book: chapter 3, "the hole").
#[test]
fn old_root_is_reachable_in_step3() {
    let step = rootfs_steps().next().unwrap();
    let run = step.run(&["run", "head", "-n1", "/oldrootfs/etc/os-release"]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert!(run.output.starts_with("PRETTY_NAME="), "{}", run.transcript);
}

#[test]
fn missing_rootfs_says_just_rootfs() {
    // A directory that is not there, one that is empty, and one that is no root
    // filesystem (every Linux machine has /etc, and no /etc/bin/sh).
    let scratch = Path::new(PROJECT).join("target/test-rootfs");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(scratch.join("empty")).unwrap();
    for step in rootfs_steps() {
        for (case, rootfs) in [
            ("missing", "no-such-dir"),
            ("empty", "target/test-rootfs/empty"),
            ("no_shell", "/etc"),
        ] {
            let run = step.run(&["run", "--rootfs", rootfs, "sh"]);
            assert_eq!(run.status, 1, "{}", run.transcript);
            assert!(run.output.contains("just rootfs"), "{}", run.transcript);
            assert_transcript!(format!("{}_rootfs_{case}", step.name), run);
        }
    }
    fs::remove_dir_all(&scratch).unwrap();
}

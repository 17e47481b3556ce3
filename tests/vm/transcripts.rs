//! The book's transcripts on a second kernel. The snapshots are recorded on the machine that
//! runs `cargo test`; a learner's kernel may differ (this one lacks /proc/sysrq-trigger, stock
//! Debian and Ubuntu kernels have it). `just test-vm` runs every transcript that the book shows
//! in its VM, on Debian's stock cloud kernel, and this program compares what the VM saw with the
//! snapshots, after the same redactions as every test (`common::REDACTIONS`):
//!
//!   vm_transcripts list      the book's transcripts, `NAME<TAB>COMMAND` a line, for the VM
//!   vm_transcripts compare   compare target/vm/transcripts/NAME.txt with each snapshot
//!
//! (`cargo test --test vm_transcripts -- list`: a test target that `cargo test` alone does not
//! run, since it needs the VM's output.)

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

/// Snapshots that the book shows but the VM cannot reproduce, and why.
const NOT_ON_THE_VM: [(&str, &str); 5] = [
    (
        "cgroups__step5_oom",
        "cgroup v1's ending, where the VM is pure v2: cgroups__step5_oom_v2 is the VM's own",
    ),
    (
        "rootless__step4_subordinate_ids",
        "the helpers newuidmap and newgidmap are set-user-ID programs of Debian's uidmap \
         package, linked against its libraries, where the VM's userland is busybox alone: \
         tests/rootless.rs runs it on the host",
    ),
    (
        "rootless__step4_subordinate_ids_user_learner",
        "the same helpers: tests/rootless.rs runs it on the host",
    ),
    (
        "environment__step4_terminal_of_its_own",
        "a session typed at a terminal, where the VM runs each command without one: \
         tests/environment.rs types it on the host",
    ),
    (
        "stages__check_3_first",
        "the workshop's `just check` builds with cargo, which the VM has not: tests/stages.rs \
         runs it on the host",
    ),
];

/// The attacks of chapter 4, Part 4 (tests/attacks.rs): against step 3, then step 4, run on
/// the host with a shell around the step and a rootfs of their own, not on the VM.
const ATTACKS: &str = "attacks__";

/// The snapshots that the book includes, by name (`run__step4_verbose`).
fn book_transcripts() -> BTreeSet<String> {
    let chapters = Path::new(common::PROJECT).join("book/src");
    let mut names = BTreeSet::new();
    for chapter in fs::read_dir(&chapters).unwrap().filter_map(Result::ok) {
        let text = fs::read_to_string(chapter.path()).unwrap_or_default();
        for include in text.split("tests/snapshots/").skip(1) {
            if let Some((name, _)) = include.split_once(".snap") {
                names.insert(name.to_string());
            }
        }
    }
    let skipped: Vec<&str> = NOT_ON_THE_VM.iter().map(|(name, _)| *name).collect();
    names.retain(|name| !skipped.contains(&name.as_str()) && !name.starts_with(ATTACKS));
    names
}

fn list() -> ExitCode {
    for name in book_transcripts() {
        let body = common::snapshot_body(&name);
        let command = body.lines().next().unwrap_or_default();
        println!("{name}\t{command}");
    }
    ExitCode::SUCCESS
}

fn compare() -> ExitCode {
    let dir = Path::new(common::PROJECT).join("target/vm/transcripts");
    let (mut same, mut failed) = (0, 0);
    for name in book_transcripts() {
        let expected = common::snapshot_body(&name);
        let seen = match fs::read_to_string(dir.join(format!("{name}.txt"))) {
            Ok(seen) => common::redact(&seen),
            Err(error) => {
                println!("vm-transcripts: FAIL {name}: the VM wrote no transcript ({error})");
                failed += 1;
                continue;
            }
        };
        if seen.trim_end() == expected.trim_end() {
            same += 1;
            continue;
        }
        failed += 1;
        println!("vm-transcripts: FAIL {name}: the VM's kernel shows another transcript");
        let (a, b) = (dir.join(format!("{name}.expected")), dir.join(format!("{name}.seen")));
        fs::write(&a, expected + "\n").unwrap();
        fs::write(&b, seen).unwrap();
        let _ = Command::new("diff")
            .args(["-u", "--label", "snapshot", "--label", "VM"])
            .arg(&a)
            .arg(&b)
            .status();
    }
    for (name, why) in NOT_ON_THE_VM {
        println!("vm-transcripts: not on the VM: {name}: {why}");
    }
    println!("vm-transcripts: not on the VM: {ATTACKS}*: chapter 4's attacks, run on the host");
    println!(
        "vm-transcripts: {same} of the book's transcripts are the same on the VM's kernel, {failed} differ"
    );
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("list") => list(),
        Some("compare") => compare(),
        _ => {
            eprintln!("usage: cargo test --test vm_transcripts -- list|compare");
            ExitCode::from(2)
        }
    }
}

//! From step 2 on the container has namespaces of its own: a hostname, a PID
//! numbering and a mount table that are not the host's.

mod common;

use common::{STEP2, STEPS, Step};

/// The steps that create namespaces: all but the first.
fn namespaced_steps() -> impl Iterator<Item = Step> {
    STEPS.into_iter().skip(1)
}

/// The container numbers its processes from 1. In steps 2 and 3 the command is
/// PID 1; from step 4 on our init is, and the command is PID 2.
#[test]
fn the_container_has_its_own_pids() {
    for step in namespaced_steps() {
        let run = step.run(&["run", "sh", "-c", "echo \"my PID is $$\""]);
        let pid = if ["step2", "step3"].contains(&step.name) { 1 } else { 2 };
        assert_eq!(run.output, format!("my PID is {pid}\n"), "{}", run.transcript);
        assert_transcript!(format!("{}_pid_1", step.name), run);
    }
}

#[test]
fn hostname_changes_inside_only() {
    for step in namespaced_steps() {
        let host = nix::unistd::gethostname().unwrap();
        let run = step.run(&["run", "--hostname", "box", "hostname"]);
        assert_eq!(run.output, "box\n", "{}", run.transcript);
        assert_eq!(nix::unistd::gethostname().unwrap(), host, "the host's hostname changed");
        assert_transcript!(format!("{}_hostname", step.name), run);
    }
}

#[test]
fn uts_namespace_is_not_the_hosts() {
    let host = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let run = STEP2.run(&["run", "readlink", "/proc/self/ns/uts"]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert!(run.output.starts_with("uts:["), "{}", run.transcript);
    assert_ne!(run.output.trim_end(), host.to_str().unwrap(), "the same UTS namespace as the host");
}

#[test]
fn not_root_says_use_sudo() {
    for step in namespaced_steps() {
        let run = step.run_as_nobody(&["run", "true"]);
        assert_eq!(run.status, 1, "{}", run.transcript);
        assert!(run.output.contains("EPERM") && run.output.contains("sudo"), "{}", run.transcript);
        assert_transcript!(format!("{}_not_root", step.name), run);
    }
}

/// On a systemd host `/` is a shared mount. Without `MS_REC|MS_PRIVATE` first,
/// the container's mounts would propagate to the host, and `pivot_root` would
/// refuse with EINVAL.
#[test]
fn leaves_a_shared_root_as_it_was() {
    common::require_rootfs();
    for step in namespaced_steps() {
        let status = common::run_on_shared_root(&step, &["run", "true"]);
        assert_eq!(status, 0, "{} failed on a shared root", step.name);
    }
}

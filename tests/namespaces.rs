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
        let pid = if (2..=3).contains(&step.number) { 1 } else { 2 };
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
    // As root only: the namespace's number is another at every run.
    let run = STEP2.run_as_root(&["run", "readlink", "/proc/self/ns/uts"]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert!(run.output.starts_with("uts:["), "{}", run.transcript);
    assert_ne!(run.output.trim_end(), host.to_str().unwrap(), "the same UTS namespace as the host");
}

/// The steps in which /proc can be read: step 3's rootfs has nothing mounted
/// on its /proc yet (step 4 mounts one).
fn steps_with_proc() -> impl Iterator<Item = Step> {
    namespaced_steps().filter(|step| step.number != 3)
}

/// The network namespace holds one device, the loopback `lo`. /proc/net is
/// the reading process's network namespace, even in step 2's host /proc.
#[test]
fn only_loopback() {
    for step in steps_with_proc() {
        let run = step.run(&["run", "cat", "/proc/net/dev"]);
        assert_eq!(run.status, 0, "{}", run.transcript);
        let devices: Vec<&str> = run.output.lines().skip(2).map(|line| line.trim_start()).collect();
        assert!(devices.len() == 1 && devices[0].starts_with("lo:"), "{}", run.transcript);
        assert_transcript!(format!("{}_network", step.name), run);
    }
}

/// A System V shared memory segment of the host's is not in the container's
/// IPC namespace: /proc/sysvipc/shm lists the reader's own.
#[test]
fn the_hosts_shared_memory_is_not_there() {
    // SAFETY: shmget and shmctl take plain values; the segment is ours to remove.
    let segment = unsafe { nix::libc::shmget(nix::libc::IPC_PRIVATE, 4096, 0o600) };
    assert!(segment >= 0, "shmget: {}", std::io::Error::last_os_error());
    let host = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let ours = |table: &str| {
        table.lines().any(|line| line.split_whitespace().nth(1) == Some(&segment.to_string()))
    };
    assert!(ours(&host), "the host does not list its own segment {segment}:\n{host}");
    for step in steps_with_proc() {
        let run = step.run(&["run", "cat", "/proc/sysvipc/shm"]);
        assert_eq!((run.status, run.output.lines().count()), (0, 1), "{}", run.transcript);
        assert_transcript!(format!("{}_ipc", step.name), run);
    }
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { nix::libc::shmctl(segment, nix::libc::IPC_RMID, std::ptr::null_mut()) };
}

/// Ctrl-C does nothing to `just step2 run sleep 1`: the terminal sends SIGINT
/// to the whole foreground group, the runtime ignores it, and the command is
/// PID 1 of its namespace, with no handler for it, so the kernel drops it.
/// (Step 4's init passes it on.)
#[test]
fn ctrl_c_does_nothing_to_pid_1() {
    for step in [common::STEP2, common::STEP3] {
        let host = common::HostState::now();
        let mut command = common::as_a_learner(std::process::Command::new(step.exe));
        command.args(["run", "sleep", "1"]);
        let started = std::time::Instant::now();
        let mut terminal = common::Terminal::start(command);
        // Ctrl-C once `sleep` runs: before, it would meet our own code.
        common::wait_for_child(terminal.pid(), "sleep");
        terminal.type_keys("\x03"); // Ctrl-C
        let (status, screen) = terminal.wait();
        assert_eq!(status.code(), Some(0), "{}: {screen}", step.name);
        assert!(started.elapsed().as_secs_f64() >= 1.0, "{} did not sleep on", step.name);
        host.assert_unchanged(step.name);
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

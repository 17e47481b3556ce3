//! Rootless runs (book: chapter 2, Without root). Steps 2 to 5, run by user `nobody` in a
//! checkout of their own, put the container in a user namespace whose root is `nobody`, and
//! need no root on the host. Whatever a container shows does not depend on who started it:
//! every run of steps 2 to 4 in the suite (`Step::run`, tests/common) runs rootless too, and
//! must show what it shows as root; `SAME_AS_ROOT` below adds commands of its own. The few
//! differences are tested here, each with what the learner sees (and the suite runs those
//! commands with `Step::run_as_root`).
//!
//! Root may ask for a user namespace too, `--userns-remap` (tested at the end): the
//! container's root is then a host ID that owns nothing.
//!
//! Exemptions, each with its reason: `--user` other than root without a range of IDs from
//! root (a learner's own user namespace then maps one ID, their own, to the container's
//! root; with a range, tested too, the container has users), and step 5's cgroup limits,
//! which need cgroup v2 delegated to the user (this machine's memory controller is on
//! cgroup v1; the VM test runs the OOM demo rootless on a delegated v2 cgroup).

#[macro_use]
mod common;

use common::{STEP2, STEP3, STEP4, STEP5, Step, Terminal};

/// Commands whose output must be the same, run as root or rootless.
const SAME_AS_ROOT: [(Step, &[&str]); 9] = [
    // The namespaces: hostname, PID 1, only `lo`, the command's status.
    (STEP2, &["run", "sh", "-c", "hostname; echo $$; ls /sys/class/net; exit 3"]),
    // The rootfs, and the old root still there in step 3.
    (STEP3, &["run", "sh", "-c", "hostname; echo $$; ls /; ls -d /oldrootfs/proc"]),
    // Our init and the command; fresh /proc, /dev, /sys; the capabilities; limits.
    (
        STEP4,
        &[
            "run",
            "--hostname",
            "box",
            "sh",
            "-c",
            "hostname; ps -o pid,user,args; ls /dev /dev/pts; echo x >/dev/null; \
             head -c 8 /dev/urandom | wc -c; grep -E 'Cap|NoNewPrivs|Seccomp:' /proc/self/status; \
             ulimit -n; ls /oldrootfs 2>&1",
        ],
    ),
    // The mounts, by mount point, the host's paths hidden. Rootless, each device is the
    // host's, bind-mounted: a mount point of its own (the_devices_are_the_hosts).
    (
        STEP4,
        &[
            "run",
            "sh",
            "-c",
            "cut -d' ' -f2 /proc/mounts | grep -vxE '/dev/(null|zero|full|random|urandom|tty)'; \
             ls /sys/firmware; wc -c </proc/timer_list",
        ],
    ),
    // Writes go to the throwaway layer; the read-only parts of /proc stay read-only.
    (
        STEP4,
        &["run", "sh", "-c", "echo kept >/root/x && cat /root/x; echo 1 >/proc/sys/vm/drop_caches"],
    ),
    // No new user namespace from inside, whoever made ours: the filter refuses it.
    (STEP4, &["run", "unshare", "-U", "true"]),
    // A signal's death, as 128+N.
    (STEP4, &["run", "sh", "-c", "kill -TERM $$"]),
    (STEP5, &["run", "sh", "-c", "ps -o pid,args; ls /; exit 5"]),
    (STEP5, &["run", "--writable", "sh", "-c", "ls /root; cat /proc/self/cgroup | wc -l"]),
];

#[test]
fn each_step_shows_rootless_what_it_shows_as_root() {
    common::require_root();
    for (step, args) in SAME_AS_ROOT {
        let root = step.run_as_root(args);
        let shown = common::shell_words(args);
        for (how, rootless) in
            [("one ID", step.run_rootless(args)), ("a range", step.run_rootless_with_ids(args))]
        {
            assert_eq!(rootless.output, root.output, "{} {shown}: {how} differs", step.name);
            assert_eq!(
                rootless.status, root.status,
                "{} {shown}: {how} exits otherwise",
                step.name
            );
        }
    }
}

/// What a rootless run adds: the user namespace, and the maps its parent writes.
#[test]
fn the_container_is_root_in_a_user_namespace_of_its_own() {
    common::require_root();
    let args = ["run", "-v", "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/setgroups"];
    let run = STEP2.run_rootless(&args);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert!(run.output.contains("CLONE_NEWUSER"), "{}", run.transcript);
    assert!(run.output.lines().any(|line| line == "0"), "not root inside: {}", run.transcript);
    assert_transcript!("step2_verbose", run);
    // As root, nothing of it.
    let run = STEP2.run_as_root(&args);
    assert!(!run.output.contains("CLONE_NEWUSER") && !run.output.contains("uid_map\""));
}

/// The rootless learner's container in steps 3 and 4: root there, `nobody` on the host.
#[test]
fn root_in_the_container_is_the_learner_on_the_host() {
    common::require_root();
    // Step 3 has no /proc of its own yet: the host's is at /oldrootfs/proc.
    for (step, proc) in [(STEP3, "/oldrootfs/proc"), (STEP4, "/proc")] {
        let command = format!("id; cat {proc}/self/uid_map; stat -c '%u:%g %n' /root /bin");
        let run = step.run_rootless(&["run", "sh", "-c", &command]);
        assert_eq!(run.status, 0, "{}", run.transcript);
        assert_transcript!(format!("{}_id", step.name), run);
    }
}

/// With one ID mapped, no other user to switch to: the way out names the range of IDs
/// that `with_ids_of_its_own_the_container_has_users` shows.
#[test]
fn another_user_is_refused_with_the_way_out() {
    common::require_root();
    for step in [STEP4, STEP5] {
        let run = step.run_rootless(&["run", "--user", "learner", "id"]);
        assert_eq!(run.status, 1, "{}", run.transcript);
        assert_transcript!(format!("{}_user_learner", step.name), run);
    }
}

/// A learner whom root gave a range of IDs (/etc/subuid and /etc/subgid), with the helpers
/// that map it (newuidmap and newgidmap): from step 4 on, where `--user` arrives, the
/// container's IDs 1 to 65536 are the range, setgroups stays allowed, and `--user` works,
/// rootless.
#[test]
fn with_ids_of_its_own_the_container_has_users() {
    common::require_root();
    let command = "id; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups";
    let run = STEP4.run_rootless_with_ids(&["run", "sh", "-c", command]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("step4_subordinate_ids", run);
    // The helpers do the mapping, as -v says.
    let run = STEP4.run_rootless_with_ids(&["run", "-v", "true"]);
    for helper in ["newuidmap", "newgidmap"] {
        let line = format!("=> {helper}([PID], 0, 65534, 1, 1, 200000, 65536) = 0\n");
        assert!(common::redact(&run.output).contains(&line), "{line}{}", run.transcript);
    }
    assert_transcript!("step4_subordinate_ids_verbose", run);
    // Step 2 maps one ID, helpers or not: it has no --user to use more.
    let run = STEP2.run_rootless_with_ids(&["run", "cat", "/proc/self/uid_map"]);
    assert_eq!(run.output.lines().count(), 1, "{}", run.transcript);
    for step in [STEP4, STEP5] {
        let run = step.run_rootless_with_ids(&[
            "run",
            "--user",
            "learner",
            "sh",
            "-c",
            "id; ps -o user,args",
        ]);
        assert_eq!(run.status, 0, "{}", run.transcript);
        assert_transcript!(format!("{}_subordinate_ids_user_learner", step.name), run);
    }
}

/// The exemption: cgroup limits need cgroup v2 delegated to the user, which `nobody` here has
/// not (on this machine, memory is on cgroup v1); without limits step 5 runs, as above.
#[test]
fn step5_limits_need_a_delegated_cgroup() {
    common::require_root();
    let run = STEP5.run_rootless(&["run", "--memory", "100m", "true"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert!(run.output.contains("rootless, cgroup limits need"), "{}", run.transcript);
    assert!(run.output.contains("Suggestion: "), "{}", run.transcript);
}

/// Rootless, the devices are the host's, bind-mounted one by one (mknod is refused in a user
/// namespace), and owned by a user the namespace does not map.
#[test]
fn the_devices_are_the_hosts() {
    common::require_root();
    let command =
        "grep ' /dev/' /proc/mounts | cut -d' ' -f1-3; stat -c '%U:%G %t,%T %n' /dev/null";
    let run = STEP4.run_rootless(&["run", "sh", "-c", command]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("step4_devices", run);
}

/// Job control in a rootless shell, on a terminal: the session of environment.rs's test.
#[test]
fn a_rootless_shell_on_a_terminal() {
    common::require_root();
    let host = common::HostState::now();
    let checkout = common::RootlessCheckout::new(&STEP4);
    let mut command = checkout.command();
    command.args(["run", "/bin/sh"]);
    let mut shell = Terminal::start(command);
    common::job_control_session(&mut shell);
    shell.type_keys("exit 7\n");
    let (status, screen) = shell.wait();
    assert_eq!(status.code(), Some(7), "{screen}");
    drop(checkout);
    host.assert_unchanged("step4");
}

// As root, a user namespace on request: `--userns-remap ID` (book: chapter 2, "As root, a
// user namespace too"). The container's IDs 0-65535 are the host's ID to ID+65535.

/// The maps root writes: 65536 IDs from the one asked for, with setgroups left allowed; and
/// the new process, nobody in the new namespace until it becomes its root.
#[test]
fn root_maps_the_container_to_ids_that_own_nothing() {
    common::require_root();
    let command = "id -u; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups";
    let run = STEP2.run_remapped(&["run", "-v", "--userns-remap", "100000", "sh", "-c", command]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("step2_userns_remap", run);
}

/// What root in the container may do to the host's files: step 3's old root is still there,
/// and its root reads the host's /etc/shadow through it; remapped, it is refused, and the
/// rootfs, root's on the host, is nobody's.
#[test]
fn the_remapped_root_cannot_read_the_hosts_secrets() {
    common::require_root();
    let command =
        "id -u; stat -c '%u:%g %n' / /bin; head -c0 /oldrootfs/etc/shadow && echo readable";
    let root = STEP3.run_as_root(&["run", "sh", "-c", command]);
    assert!(root.output.contains("0:0 /bin\nreadable"), "{}", root.transcript);
    let remapped = STEP3.run_remapped(&["run", "--userns-remap", "100000", "sh", "-c", command]);
    assert_eq!(remapped.status, 1, "{}", remapped.transcript);
    assert_transcript!("step3_userns_remap", remapped);
}

/// Step 4 remapped: `--user` works (65536 IDs are mapped), the devices are the host's, and
/// the throwaway layer cannot write where root's files are: they are nobody's.
#[test]
fn step4_remapped_has_users_and_cannot_write_roots_files() {
    common::require_root();
    let command = "id; cat /proc/self/uid_map; grep -c ' /dev/' /proc/mounts; \
                   echo t >/tmp/t && cat /tmp/t; echo kept >/root/x";
    let run = STEP4.run_remapped(&["run", "--userns-remap", "100000", "sh", "-c", command]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert_transcript!("step4_userns_remap", run);
    let learner =
        STEP4.run_remapped(&["run", "--userns-remap", "100000", "--user", "learner", "id"]);
    assert_eq!(learner.output, "uid=1000(learner) gid=1000(learner)\n", "{}", learner.transcript);
}

/// On the host, the container's processes run as the first ID of the range; killed with
/// SIGKILL, the runtime takes them with it, although they changed their IDs (which clears
/// PR_SET_PDEATHSIG: they must change them first).
#[test]
fn on_the_host_the_remapped_container_is_user_100000() {
    common::require_root();
    let host = common::HostState::now();
    let checkout = common::RootlessCheckout::new(&STEP4);
    let mut command = checkout.command_as_root();
    command.args(["run", "--userns-remap", "100000", "sh", "-c", "echo ready; sleep 60"]);
    let (mut runtime, _output) = common::start_ready(command);
    let children = format!("/proc/{0}/task/{0}/children", runtime.id());
    let init = std::fs::read_to_string(children).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", init.trim())).unwrap();
    let uids = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "100000", "100000", "100000", "100000"]
    );
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    drop(checkout);
    host.assert_unchanged("step4");
}

/// Step 5 remapped: the runtime, root, makes the cgroup; the container joins it before it
/// becomes 100000, who could not; the OOM demo ends as it does without the remap.
#[test]
fn step5_remapped_is_still_limited() {
    common::require_root();
    let args = ["run", "--userns-remap", "100000", "--memory", "100m", "--", "stress"];
    let run =
        STEP5.run_remapped(&[&args[..], &["--vm-bytes", "200m", "--vm-keep", "-m", "1"]].concat());
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert!(run.output.contains("container hit its memory limit (100 MiB)"), "{}", run.transcript);
}

/// Only root may map other IDs than its own: rootless, the option is refused with the way
/// out; and a range must start above 0 (0 would be the host's root) and fit below 2^32.
#[test]
fn userns_remap_is_for_root_and_a_range_that_fits() {
    common::require_root();
    let run = STEP2.run_rootless(&["run", "--userns-remap", "100000", "true"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert_transcript!("step2_userns_remap_rootless", run);
    // The container's root, host ID 100000, must be able to enter where it is started.
    let private = common::scratch_dir("private");
    std::fs::create_dir_all(&private).unwrap();
    let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(&private, owner_only).unwrap();
    let mut command = common::as_a_learner(std::process::Command::new(STEP2.exe));
    command.current_dir(&private).args(["run", "--userns-remap", "100000", "true"]);
    let run = common::transcript_of(command, "just step2 run --userns-remap 100000 true");
    std::fs::remove_dir(&private).unwrap();
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert_transcript!("step2_userns_remap_private_directory", run);
    for bad in ["0", "4294901760"] {
        let run = STEP2.run_as_root(&["run", "--userns-remap", bad, "true"]);
        assert_eq!(run.status, 2, "{}", run.transcript);
        assert!(run.output.contains("invalid value"), "{}", run.transcript);
    }
}

/// As as root (environment.rs), a rootless runtime killed with SIGKILL takes the container
/// with it, though the container is in a user namespace of its own.
#[test]
fn the_rootless_container_dies_with_a_killed_runtime() {
    common::require_root();
    let host = common::HostState::now();
    let checkout = common::RootlessCheckout::new(&STEP4);
    let mut command = checkout.command();
    command.args(["run", "sh", "-c", "echo ready; sleep 60"]);
    let (mut runtime, _output) = common::start_ready(command);
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    drop(checkout);
    // The container's init, orphaned, is now ours (we are a subreaper): the check waits for
    // it to die, and fails if it does not.
    host.assert_unchanged("step4");
}

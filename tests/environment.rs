//! From step 4 on the command runs in a real container environment: our init
//! as PID 1, fresh mounts, no way back to the host's files, and restrictions
//! that each really take effect. Every test looks from inside the container.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::{STEP4, STEPS, Step};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The steps with an environment: step 4 and later.
fn environment_steps() -> impl Iterator<Item = Step> {
    common::require_rootfs();
    STEPS.into_iter().skip(3)
}

/// Run ARGS in every environment step; check the status, snapshot the transcript.
fn check(case: &str, args: &[&str], status: i32) -> Vec<common::Run> {
    let runs: Vec<common::Run> = environment_steps().map(|step| step.run(args)).collect();
    for (step, run) in environment_steps().zip(&runs) {
        assert_eq!(run.status, status, "{}", run.transcript);
        assert_transcript!(format!("{}_{case}", step.name), run);
    }
    runs
}

#[test]
fn capabilities_are_dockers_default_set_but_mknod() {
    for run in
        check("capabilities", &["run", "grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"], 0)
    {
        // Docker's default capabilities but CAP_MKNOD (bit 27), bit by bit; no_new_privs is set.
        for line in
            ["CapBnd:\t00000000a00425fb", "CapEff:\t00000000a00425fb", "CapInh:\t0000000000000000"]
        {
            assert!(run.output.contains(line), "no {line:?} in\n{}", run.transcript);
        }
        assert!(
            run.output.contains("CapAmb:\t0000000000000000\nNoNewPrivs:\t1"),
            "{}",
            run.transcript
        );
    }
}

#[test]
fn another_user_has_no_capabilities() {
    let args =
        ["run", "--user", "learner", "sh", "-c", "id; grep -E '^Cap(Eff|Prm)' /proc/self/status"];
    for run in check("user", &args, 0) {
        assert!(
            run.output.starts_with("uid=1000(learner) gid=1000(learner)"),
            "{}",
            run.transcript
        );
        assert!(run.output.contains("CapEff:\t0000000000000000"), "{}", run.transcript);
    }
}

#[test]
fn user_and_group_by_number() {
    for run in check("user_numbers", &["run", "--user", "4242:65534", "id"], 0) {
        assert_eq!(run.output, "uid=4242 gid=65534(nogroup)\n", "{}", run.transcript);
    }
}

#[test]
fn unknown_user_names_the_known_ones() {
    for run in check("unknown_user", &["run", "--user", "alice", "true"], 1) {
        assert!(run.output.contains("root, learner, nobody"), "{}", run.transcript);
    }
}

#[test]
fn ulimits_take_effect() {
    let args = [
        "run",
        "--ulimit",
        "nofile=256:512",
        "--ulimit",
        "nproc=100",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ];
    for run in check("ulimit", &args, 0) {
        assert_eq!(run.output, "256\n512\n100\n", "{}", run.transcript);
    }
    for run in check("ulimit_default", &["run", "sh", "-c", "ulimit -n; ulimit -Hn"], 0) {
        assert_eq!(run.output, "1024\n4096\n", "{}", run.transcript);
    }
}

#[test]
fn a_ulimit_the_kernel_refuses() {
    // nofile may not pass /proc/sys/fs/nr_open (1048576 by default).
    for run in check("ulimit_refused", &["run", "--ulimit", "nofile=2000000000", "true"], 1) {
        assert!(run.output.contains("Suggestion:"), "{}", run.transcript);
    }
}

#[test]
fn a_bad_ulimit_is_a_usage_error() {
    check("ulimit_bad_name", &["run", "--ulimit", "files=10", "true"], 2);
    check("ulimit_soft_above_hard", &["run", "--ulimit", "nofile=10:5", "true"], 2);
}

#[test]
fn ps_sees_only_the_container() {
    for run in check("ps", &["run", "ps", "-o", "pid,comm"], 0) {
        assert_eq!(run.output.lines().count(), 3, "header, init, ps:\n{}", run.transcript);
    }
}

#[test]
fn hostname_is_a_random_id() {
    for step in environment_steps() {
        let run = step.run(&["run", "hostname"]);
        let id = run.output.trim_end();
        assert!(id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()), "{}", run.transcript);
    }
}

#[test]
fn the_environment_is_clean() {
    for run in check("env", &["run", "--hostname", "box", "env"], 0) {
        assert!(run.output.contains("HOSTNAME=box\n"), "{}", run.transcript);
        assert!(
            !run.output.contains("CARGO"),
            "the host's environment leaked:\n{}",
            run.transcript
        );
    }
}

#[test]
fn fresh_mounts() {
    check("mounts", &["run", "sh", "-c", "mount | grep -v ' on / '"], 0);
    check("dev", &["run", "ls", "/dev"], 0);
    check("sys_read_only", &["run", "touch", "/sys/kernel/x"], 1);
    // The host-wide settings in /proc/sys are read-only (this one is the UTS
    // namespace's own, so the test harms nothing if it fails).
    check("proc_sys_read_only", &["run", "sh", "-c", "echo box > /proc/sys/kernel/hostname"], 1);
}

#[test]
fn the_old_root_is_gone() {
    check("no_old_root", &["run", "ls", "/oldrootfs"], 1);
}

/// Without CAP_MKNOD, root in the container cannot make a node for the host's
/// disk (8, 0) and read it raw.
#[test]
fn mknod_is_not_allowed() {
    check("no_mknod", &["run", "mknod", "/root/sda", "b", "8", "0"], 1);
}

#[test]
fn mount_is_not_allowed() {
    // CAP_SYS_ADMIN is dropped.
    check("no_mount", &["run", "mount", "-t", "tmpfs", "none", "/tmp"], 1);
}

#[test]
fn only_loopback_and_it_is_up() {
    for run in check("network", &["run", "ip", "-o", "link"], 0) {
        assert_eq!(run.output.lines().count(), 1, "{}", run.transcript);
        assert!(run.output.starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"), "{}", run.transcript);
    }
}

/// A shell whose child dies after the shell itself: the orphan is re-parented
/// to PID 1, our init, which must reap it, or it stays a zombie (state Z).
#[test]
fn orphans_are_reaped() {
    let script = "sh -c 'sleep 0.2 &'; sleep 1; ps -o stat,comm";
    for run in check("zombie", &["run", "sh", "-c", script], 0) {
        assert!(!run.output.contains("Z "), "a zombie was left:\n{}", run.transcript);
    }
}

/// `kill -TERM` to the runtime on the host reaches the command in the
/// container, through our init, and the command's status comes back.
#[test]
fn sigterm_to_the_runtime_reaches_the_command() {
    let script = "trap 'echo got SIGTERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done";
    for step in environment_steps() {
        let host = common::HostState::now();
        let (runtime, mut output) = step.spawn_ready(&["run", "sh", "-c", script]);
        kill(Pid::from_raw(runtime.id() as i32), Signal::SIGTERM).unwrap();
        assert_eq!(output.next().unwrap().unwrap(), "got SIGTERM");
        assert_eq!({ runtime }.wait().unwrap().code(), Some(42));
        host.assert_unchanged(step.name);
    }
}

/// If the runtime itself is killed with SIGKILL, it cannot clean up: the
/// kernel kills the container with it (PR_SET_PDEATHSIG).
#[test]
fn the_container_dies_with_a_killed_runtime() {
    let host = common::HostState::now();
    let (mut runtime, _output) = STEP4.spawn_ready(&["run", "sh", "-c", "echo ready; sleep 60"]);
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    // The container's processes are gone once its PID 1 is: give the kernel a moment.
    std::thread::sleep(std::time::Duration::from_millis(200));
    host.assert_unchanged("step4");
}

/// `just step4 run /bin/sh` on a terminal, typed at as a learner would (script(1)
/// gives it a pseudo-terminal): Ctrl-C stops the foreground job and not the
/// container, and job control works, since our init is PID 1, not the shell.
#[test]
fn an_interactive_shell_with_job_control() {
    let typed: [(&str, u64); 6] = [
        ("sleep 30\n", 1000),
        ("\x03", 500), // Ctrl-C
        ("echo \"alive after Ctrl-C, sleep said $?\"\n", 300),
        ("sleep 30 &\n", 300),
        ("jobs; kill %1; wait\n", 300),
        ("exit 7\n", 0),
    ];
    for step in environment_steps() {
        let host = common::HostState::now();
        let command = format!("{} run /bin/sh", step.exe);
        let mut script = Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .current_dir(common::PROJECT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script(1), from util-linux, gives the shell a terminal");
        let mut keyboard = script.stdin.take().unwrap();
        sleep(Duration::from_millis(500)); // the shell's first prompt
        for (keys, pause) in typed {
            keyboard.write_all(keys.as_bytes()).unwrap();
            sleep(Duration::from_millis(pause));
        }
        let mut screen = String::new();
        script.stdout.take().unwrap().read_to_string(&mut screen).unwrap();
        let status = script.wait().unwrap().code();
        assert!(screen.contains("alive after Ctrl-C, sleep said 130"), "{screen}");
        assert!(
            screen.contains("[1]+  Running") && screen.contains("[1]+  Terminated"),
            "{screen}"
        );
        assert_eq!(status, Some(7), "{screen}");
        host.assert_unchanged(step.name);
    }
}

//! What an untrusted command in a container might do to the host, and the defences of steps 4
//! and 5 (book: chapter 4). Each test first shows the attack succeed against step 3, on this
//! very machine (so that it proves something where the kernel would refuse anyway), then
//! refused by steps 4 and 5. The attacks are real, and harmless: control files are opened for
//! writing and the error is the proof; no payload is ever written to one.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{HostState, STEP3, STEP4, STEP5, Step, Terminal};

/// Run `step run --rootfs ATTACK_ROOTFS ARGS…` (the rootfs after `run`), as `just stepN`.
fn attack(step: &Step, args: &[&str]) -> common::Run {
    let rootfs = common::attack_rootfs();
    let args = [&["run", "--rootfs", rootfs][..], args].concat();
    step.run(&args)
}

/// The steps with the defences.
const DEFENDED: [Step; 2] = [STEP4, STEP5];

#[test]
fn signals_sent_from_inside_reach_only_the_container() {
    // As a script (or `just`, or `sudo`) starts a step: the container used to be in its
    // process group, which `kill -KILL 0` signals whole.
    let script = |step: &Step| {
        format!(
            "{} run --rootfs {} sh -c 'kill -KILL 0'; echo the caller survived",
            step.exe,
            common::attack_rootfs()
        )
    };
    let caller = |step: &Step| {
        let host = HostState::now();
        // In a process group of its own, as a shell gives each job: step 3's kill(0)
        // would otherwise end this test too.
        let output = common::as_a_learner(Command::new("sh"))
            .args(["-c", &script(step)])
            .process_group(0)
            .output()
            .unwrap();
        host.assert_unchanged(step.name);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(caller(&STEP3), "", "step 3's container did not kill its caller: no attack to show");
    for step in DEFENDED {
        assert_eq!(
            caller(&step),
            "the caller survived\n",
            "{} let kill(0) reach its caller",
            step.name
        );
    }
}

#[test]
fn no_file_of_the_callers_reaches_the_command() {
    // Step 3 has no /proc of its own: the host's is at /oldrootfs/proc.
    let run = |step: &Step, proc: &str, user: &[&str]| {
        let host = HostState::now();
        let command = format!(
            "exec 7</tmp; {} run --rootfs {} {} ls {proc}/self/fd/7/",
            step.exe,
            common::attack_rootfs(),
            user.join(" ")
        );
        let output =
            common::as_a_learner(Command::new("bash")).args(["-c", &command]).output().unwrap();
        host.assert_unchanged(step.name);
        output.status.code()
    };
    let step3 = run(&STEP3, "/oldrootfs/proc", &[]);
    assert_eq!(step3, Some(0), "step 3 did not pass the caller's /tmp on: no attack to show");
    for step in DEFENDED {
        let run = run(&step, "/proc", &["--user", "learner"]);
        assert_eq!(run, Some(1), "{} passed the caller's fd 7 on", step.name);
    }
}

/// Host information that Docker hides, and controls it makes read-only. Step 3 reaches
/// the host's /proc through /oldrootfs.
#[test]
fn host_information_is_hidden_and_controls_read_only() {
    // A file in /proc says it is empty (size 0) until it is read.
    let script = "head -c 1 /oldrootfs/proc/timer_list | wc -c; ls /oldrootfs/sys/firmware | wc -l";
    let step3 = attack(&STEP3, &["sh", "-c", script]);
    let shown = step3.output.lines().all(|count| count != "0");
    assert!(
        step3.status == 0 && shown,
        "step 3 shows no timers or firmware:\n{}",
        step3.transcript
    );
    for step in DEFENDED {
        let script = "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l; \
                      grep -E ' /proc/(fs|sys|bus|irq) ' /proc/self/mountinfo | grep -c ' ro,'";
        let run = attack(&step, &["sh", "-c", script]);
        assert_eq!(run.output, "0\n0\n0\n4\n", "{}", run.transcript);
    }
}

#[test]
fn no_set_user_id_program_is_left_in_the_rootfs() {
    let planted = Path::new(common::PROJECT).join(common::attack_rootfs()).join("root/x");
    let plant = ["sh", "-c", "cp /bin/busybox /root/x && chmod 4755 /root/x"];
    let run = attack(&STEP3, &plant);
    let mode = fs::metadata(&planted).map(|m| m.permissions().mode() & 0o7777);
    assert_eq!(mode.ok(), Some(0o4755), "step 3 left no set-user-ID file:\n{}", run.transcript);
    fs::remove_file(&planted).unwrap();
    for step in DEFENDED {
        let run = attack(&step, &plant);
        assert_eq!(run.status, 0, "{}", run.transcript);
        assert!(!planted.exists(), "{} left {}", step.name, planted.display());
    }
}

/// The command can write to / as before (a layer takes its writes), and --writable keeps
/// today's behaviour for the exercises that write into rootfs/ itself.
#[test]
fn writes_go_to_a_throwaway_layer_unless_writable() {
    let kept = Path::new(common::PROJECT).join(common::attack_rootfs()).join("root/kept");
    for step in DEFENDED {
        let run = attack(&step, &["sh", "-c", "echo hi > /root/kept && cat /root/kept"]);
        assert_eq!((run.output.as_str(), kept.exists()), ("hi\n", false), "{}", run.transcript);
        let run = attack(&step, &["--writable", "sh", "-c", "echo hi > /root/kept"]);
        assert!(run.status == 0 && kept.exists(), "{}", run.transcript);
        fs::remove_file(&kept).unwrap();
    }
}

/// bubblewrap's CVE-2017-5226: a program in the container pushes a command into the
/// terminal, and the host's shell reads it as if typed, once the container has exited. On a
/// real pseudo-terminal, with a host shell that reads a line after the run.
#[test]
fn the_container_cannot_type_into_the_hosts_terminal() {
    let host_read = |step: &Step, attack: &str, user: &[&str]| -> String {
        let host = HostState::now();
        let line = format!(
            "{} run --rootfs {} {} attacks {attack} 'echo INJECTED-BY-CONTAINER'; \
             read -t 1 line; echo \"the host's shell read: [$line]\"",
            step.exe,
            common::attack_rootfs(),
            user.join(" ")
        );
        let mut command = common::as_a_learner(Command::new("bash"));
        command.args(["--norc", "-c", &line]);
        let mut terminal = Terminal::start(command);
        terminal.expect("the host's shell read: [");
        let (_, screen) = terminal.wait();
        host.assert_unchanged(step.name);
        screen
    };
    // The plain request, and the one with bit 32 set that a 64-bit compare would miss.
    for (attack, name) in [("tiocsti", "TIOCSTI"), ("tiocsti64", "TIOCSTI | 1 << 32")] {
        let screen = host_read(&STEP3, attack, &[]);
        let typed = screen.contains("read: [echo INJECTED-BY-CONTAINER]");
        assert!(typed, "{attack}: no attack to show:\n{screen}");
        for step in DEFENDED {
            let screen = host_read(&step, attack, &["--user", "learner"]);
            assert!(
                screen.contains(&format!("{name}: EPERM")) && screen.contains("read: []"),
                "{} {attack}:\n{screen}",
                step.name
            );
        }
    }
}

/// The system calls that Docker's default seccomp profile refuses, called as a container's
/// root with harmless arguments: step 3 lets each through to the kernel (which refuses them
/// for their arguments), steps 4 and 5 refuse them first, EPERM (clone3: ENOSYS).
#[test]
fn system_calls_outside_dockers_profile_are_refused() {
    let step3 = attack(&STEP3, &["attacks", "syscalls"]);
    assert!(!step3.output.contains("EPERM"), "step 3 refuses some already:\n{}", step3.transcript);
    for step in DEFENDED {
        let run = attack(&step, &["attacks", "syscalls"]);
        for line in run.output.lines() {
            let expected = if line.starts_with("clone3:") { "ENOSYS" } else { "EPERM" };
            assert!(line.ends_with(expected), "{line}, not {expected}:\n{}", run.transcript);
        }
        assert_eq!(run.output.lines().count(), 12, "{}", run.transcript);
        // And what every program does still works: threads, and busybox's commands.
        let run = attack(&step, &["sh", "-c", "attacks thread; ls / | wc -l; ps | wc -l"]);
        assert!(run.status == 0 && run.output.starts_with("a thread ran\n"), "{}", run.transcript);
    }
}

//! What an untrusted command in a container might do to the host, and the defences of steps 4
//! and 5 (book: chapter 4, Part 4). Each test first shows the attack succeed against step 3,
//! on this very machine (so that it proves something where the kernel would refuse anyway),
//! then refused by steps 4 and 5. The book shows step 3's and step 4's transcripts side by
//! side. The attacks are real, and harmless: a control file is only ever opened, never written
//! to; a file planted in rootfs/ is removed.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{HostState, STEP3, STEP4, STEP5, Step, Terminal, run_line};

/// The steps with the defences.
const DEFENDED: [Step; 2] = [STEP4, STEP5];

/// `line` with `just step3` in it, as the same line for `step`.
fn for_step(line: &str, step: &Step) -> String {
    line.replace("just step3", &format!("just {}", step.name))
}

/// The attack `line`, written for step 3, against step 3 and then each defended step: step
/// 3's run and step 4's are the book's transcripts `attacks__stepN_NAME`. `succeeded` says
/// whether the attack worked, for step 3's run (it must) and the others' (it must not).
fn attack(
    name: &str,
    step3_line: &str,
    defended_line: &str,
    succeeded: impl Fn(&common::Run) -> bool,
) {
    let run = run_line(step3_line);
    assert!(succeeded(&run), "the attack fails on step 3 already:\n{}", run.transcript);
    assert_transcript!(format!("step3_{name}"), run);
    for step in DEFENDED {
        let run = run_line(&for_step(defended_line, &step));
        assert!(!succeeded(&run), "{} lets it through:\n{}", step.name, run.transcript);
        if step.number == 4 {
            assert_transcript!(format!("step4_{name}"), run);
        }
    }
}

/// kill(0) signals the caller's whole process group: from step 3's container, the script
/// that started it (as `just` and `sudo` do) dies with it.
#[test]
fn signals_sent_from_inside_reach_only_the_container() {
    let line = "sh -c 'just step3 run sh -c \"kill -KILL 0\"; echo the caller survived'";
    attack("kill_0", line, line, |run| !run.output.contains("the caller survived"));
}

/// An open file is inherited across fork and exec: a directory the caller opened is a door
/// to the host's tree, even for a user with no privilege at all.
#[test]
fn no_file_of_the_callers_reaches_the_command() {
    // Step 3 has no /proc of its own: the host's is at /oldrootfs/proc.
    let step3 = "bash -c 'exec 7</etc; just step3 run head -1 /oldrootfs/proc/self/fd/7/passwd'";
    let defended = "bash -c 'exec 7</etc; just step3 run --user learner head -1 \
                    /proc/self/fd/7/passwd'";
    attack("inherited_fd", step3, defended, |run| run.status == 0);
}

/// Host information that Docker hides, and controls it makes read-only. Step 3 reaches
/// the host's /proc and /sys through /oldrootfs.
#[test]
fn host_information_is_hidden_and_controls_read_only() {
    // A file in /proc says it is empty (size 0) until it is read: read a byte.
    let step3 = "just step3 run sh -c 'head -c 1 /oldrootfs/proc/timer_list | wc -c; \
                 ls /oldrootfs/sys/firmware | wc -l'";
    let defended = "just step3 run sh -c 'head -c 1 /proc/timer_list | wc -c; \
                    ls /sys/firmware | wc -l'";
    attack("host_paths", step3, defended, |run| run.output.starts_with("1\n"));
    // And all that step 4 protects, one line each, that this kernel has.
    for step in DEFENDED {
        let script = "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l; \
                      grep -E ' /proc/(fs|sys|bus|irq) ' /proc/self/mountinfo | grep -c ' ro,'";
        let run = step.run(&["run", "sh", "-c", script]);
        assert_eq!(run.output, "0\n0\n0\n4\n", "{}", run.transcript);
    }
}

/// A set-user-ID root program made in step 3's container stays in the learner's checkout,
/// where any local user can run it. From step 4 on, the container's writes go to a layer
/// thrown away with it.
#[test]
fn no_set_user_id_program_is_left_in_the_rootfs() {
    let planted = Path::new(common::PROJECT).join("rootfs/root/x");
    let line = "sh -c 'just step3 run sh -c \"cp /bin/busybox /root/x && chmod 4755 /root/x\"; \
                stat -c \"%A %U %n\" rootfs/root/x'";
    let _ = fs::remove_file(&planted);
    attack("setuid", line, line, |run| {
        let mode = fs::metadata(&planted).map(|m| m.permissions().mode() & 0o7777);
        let _ = fs::remove_file(&planted);
        mode.ok() == Some(0o4755) && run.output.starts_with("-rwsr-xr-x root rootfs/root/x")
    });
}

/// The command can write to / as before (a layer takes its writes), and --writable keeps
/// step 3's behaviour for the exercises that write into rootfs/ itself.
#[test]
fn writes_go_to_a_throwaway_layer_unless_writable() {
    let kept = Path::new(common::PROJECT).join(common::attack_rootfs()).join("root/kept");
    for step in DEFENDED {
        let rootfs = common::attack_rootfs();
        let script = "echo hi > /root/kept && cat /root/kept";
        let run = step.run(&["run", "--rootfs", rootfs, "sh", "-c", script]);
        assert_eq!((run.output.as_str(), kept.exists()), ("hi\n", false), "{}", run.transcript);
        let run = step.run(&["run", "--rootfs", rootfs, "--writable", "sh", "-c", script]);
        assert!(run.status == 0 && kept.exists(), "{}", run.transcript);
        fs::remove_file(&kept).unwrap();
    }
}

/// bubblewrap's CVE-2017-5226: a program in the container pushes a command into the
/// terminal, and the host's shell reads it as if typed, once the container has exited. On a
/// real pseudo-terminal, with a host shell that reads a line after the run.
#[test]
fn the_container_cannot_type_into_the_hosts_terminal() {
    let host_read = |step: &Step, attack: &str, user: &str| -> common::Run {
        let rootfs = common::attack_rootfs();
        let host = HostState::now();
        let line = format!(
            "just {} run --rootfs {rootfs} {user}attacks {attack} 'echo INJECTED-BY-CONTAINER'; \
             read -t 1 line; echo \"the host's shell read: [$line]\"",
            step.name
        );
        let mut command = common::as_a_learner(Command::new("bash"));
        command.args(["--norc", "-c", &line.replace(&format!("just {}", step.name), step.exe)]);
        let mut terminal = Terminal::start(command);
        terminal.expect("the host's shell read: [");
        let (status, screen) = terminal.wait();
        host.assert_unchanged(step.name);
        let output = screen.replace("\r\n", "\n");
        let status = status.code().unwrap();
        let transcript = format!("$ {line}\n{output}[exit status: {status}]");
        common::Run { transcript, output, status }
    };
    // The plain request, and the one with bit 32 set that a 64-bit compare would miss.
    for (attack, name) in [("tiocsti", "TIOCSTI"), ("tiocsti64", "TIOCSTI | 1 << 32")] {
        let run = host_read(&STEP3, attack, "");
        let typed = run.output.contains("read: [echo INJECTED-BY-CONTAINER]");
        assert!(typed, "{attack}: no attack to show:\n{}", run.transcript);
        if attack == "tiocsti" {
            assert_transcript!("step3_tiocsti", run);
        }
        for step in DEFENDED {
            let run = host_read(&step, attack, "--user learner ");
            assert!(
                run.output.contains(&format!("{name}: EPERM")) && run.output.contains("read: []"),
                "{} {attack}:\n{}",
                step.name,
                run.transcript
            );
            if attack == "tiocsti" && step.number == 4 {
                assert_transcript!("step4_tiocsti", run);
            }
        }
    }
}

/// The system calls that Docker's default seccomp profile refuses, called as a container's
/// root with harmless arguments: step 3 lets each through to the kernel (which refuses them
/// for their arguments), steps 4 and 5 refuse them first, EPERM (clone3: ENOSYS).
#[test]
fn system_calls_outside_dockers_profile_are_refused() {
    let line = format!("just step3 run --rootfs {} attacks syscalls", common::attack_rootfs());
    attack("syscalls", &line, &line, |run| !run.output.contains("EPERM"));
    for step in DEFENDED {
        let run = run_line(&for_step(&line, &step));
        for line in run.output.lines() {
            let expected = if line.starts_with("clone3:") { "ENOSYS" } else { "EPERM" };
            assert!(line.ends_with(expected), "{line}, not {expected}:\n{}", run.transcript);
        }
        assert_eq!(run.output.lines().count(), 12, "{}", run.transcript);
        // And what every program does still works: threads, and busybox's commands. (ps
        // alone, not in a pipe: `ps | wc` may list wc or not, as the shell starts both.)
        let script = "attacks thread; ls / | wc -l; ps > /tmp/ps; wc -l < /tmp/ps";
        let run = step.run(&["run", "--rootfs", common::attack_rootfs(), "sh", "-c", script]);
        assert!(run.status == 0 && run.output.starts_with("a thread ran\n"), "{}", run.transcript);
    }
}

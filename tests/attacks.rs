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
/// `line`, typed at a shell on a real pseudo-terminal, as root or, `rootless`, as `nobody`
/// from a checkout of their own: what the terminal showed, up to its end, after `last` if it
/// must show that.
fn on_a_terminal(step: &Step, line: &str, rootless: bool, last: Option<&str>) -> common::Run {
    let host = HostState::now();
    let checkout = rootless.then(|| common::RootlessCheckout::new(step));
    if let Some(checkout) = &checkout {
        checkout.copy_rootfs_named_in(&line.split_whitespace().collect::<Vec<_>>());
    }
    let exe = checkout.as_ref().map_or(step.exe.into(), |c| c.exe.display().to_string());
    let real = line.replace(&format!("just {}", step.name), &exe);
    let mut command = match &checkout {
        Some(checkout) => {
            let mut setpriv = common::as_a_learner(Command::new("setpriv"));
            setpriv.args(common::AS_NOBODY).arg("bash");
            setpriv.current_dir(&checkout.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
            setpriv
        }
        None => common::as_a_learner(Command::new("bash")),
    };
    command.args(["--norc", "-c", &real]);
    let mut terminal = Terminal::start(command);
    if let Some(last) = last {
        terminal.expect(last);
    }
    let (status, screen) = terminal.wait();
    host.assert_unchanged(step.name);
    let output = screen.replace("\r\n", "\n");
    let status = status.code().unwrap();
    let transcript = format!("$ {line}\n{output}[exit status: {status}]");
    common::Run { transcript, output, status }
}

/// bubblewrap's CVE-2017-5226: a program in the container pushes a command into the
/// terminal, and the host's shell reads it as if typed, once the container has exited. On a
/// real pseudo-terminal, with a host shell that reads a line after the run. From step 4 on
/// the container's terminal is its own (part 5): what it pushes stays there; and the
/// filter refuses the call anyway.
#[test]
fn the_container_cannot_type_into_the_hosts_terminal() {
    let host_read = |step: &Step, attack: &str, user: &str| -> common::Run {
        let rootfs = common::attack_rootfs();
        let line = format!(
            "just {} run --rootfs {rootfs} {user}attacks {attack} 'echo INJECTED-BY-CONTAINER'; \
             read -t 1 line; echo \"the host's shell read: [$line]\"",
            step.name
        );
        on_a_terminal(step, &line, false, Some("the host's shell read: ["))
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

/// A new user namespace needs no capability at all: only the filter refuses it
/// (Troubleshooting, "Operation not permitted"). Step 3 makes one, steps 4 and 5 cannot.
#[test]
fn a_user_namespace_is_refused_by_the_filter_alone() {
    let line = "just step3 run unshare -U true";
    attack("user_namespace", line, line, |run| run.status == 0);
}

/// A copy of the attack rootfs, `target/NAME`, made once per test run with `plant` run in
/// it: a device file, a FIFO where a file should be.
fn rootfs_with(name: &str, plant: &str) -> String {
    let rootfs = format!("target/{name}");
    let dir = Path::new(common::PROJECT).join(&rootfs);
    let source = Path::new(common::PROJECT).join(common::attack_rootfs());
    let _turn = HostState::now(); // cp is a process, started in turn as every one
    let _ = fs::remove_dir_all(&dir);
    let made = Command::new("cp").arg("-a").arg(&source).arg(&dir).status().unwrap();
    assert!(made.success(), "cannot copy {}", source.display());
    let planted = Command::new("sh").args(["-c", plant]).current_dir(&dir).status().unwrap();
    assert!(planted.success(), "cannot plant {plant:?} in {rootfs}");
    rootfs
}

/// Output redirected to a file: in step 3 the container writes to that very file, and its
/// root can make it a set-user-ID root program on the host, whoever owned it (here
/// `nobody`): run by `nobody` later, it is root. From step 4 on, the container writes to
/// a pipe, and the runtime copies what comes out into the file: the container never holds
/// it (part 5).
#[test]
fn redirected_output_never_becomes_a_host_program() {
    let out = Path::new(common::PROJECT).join("target/attack-out");
    let nobodys = || {
        fs::write(&out, "").unwrap();
        std::os::unix::fs::lchown(&out, Some(common::NOBODY), Some(common::NOBODY)).unwrap();
    };
    nobodys();
    // Step 3 has no /proc of its own: the host's is at /oldrootfs/proc.
    let line = |proc: &str| {
        format!(
            "sh -c 'just step3 run sh -c \"cat /bin/busybox; chown 0:0 {proc}/self/fd/1; \
             chmod 4755 {proc}/self/fd/1\" > target/attack-out; stat -c \"%A %U\" \
             target/attack-out'"
        )
    };
    let (line, defended) = (line("/oldrootfs/proc"), line("/proc"));
    attack("redirected_stdout", &line, &defended, |run| {
        let setuid = run.output.starts_with("-rwsr-xr-x root");
        nobodys();
        setuid
    });
    // Rootless, the file is nobody's own, and stays as it was too.
    for step in DEFENDED {
        let run = common::run_line_rootless(&step, &for_step(&defended, &step));
        assert!(run.output.starts_with("-rw-r--r-- nobody"), "{}", run.transcript);
    }
}

/// The caller's terminal, changed for good: in step 3 the container holds the host's
/// terminal itself. Its root can make it anyone's (chmod, chown), and any user in it,
/// root or not, can give it the line discipline N_NULL, which throws away all that is
/// typed and shown: after the run, the host's shell is deaf and dumb. From step 4 on, the
/// container's terminal is its own (part 5): the attack silences that one alone.
#[test]
fn the_callers_terminal_stays_as_it_was() {
    let rootfs = common::attack_rootfs();
    // The terminal's line discipline, mode and owner, before the run and after, from the
    // attack tool run on the host: into a file, since a silenced terminal shows nothing.
    let saved = Path::new(common::PROJECT).join("target/attack-tty");
    let state = format!("{rootfs}/usr/local/bin/attacks getd >> target/attack-tty");
    let (before, after) = (&state, &state);
    let changed = |run: &common::Run| {
        let seen = fs::read_to_string(&saved).unwrap_or_default();
        let _ = fs::remove_file(&saved);
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines.len(), 2, "no state, before and after:\n{}", run.transcript);
        lines[0] != lines[1]
    };
    let line = format!(
        "{before}; just step3 run --rootfs {rootfs} sh -c 'chmod 666 /oldrootfs/proc/self/fd/0; \
         chown 1000 /oldrootfs/proc/self/fd/0; attacks tiocsetd'; {after}; echo the end"
    );
    let defended = format!(
        "{before}; just step3 run --rootfs {rootfs} sh -c 'chmod 666 /proc/self/fd/0; \
         chown 1000 /proc/self/fd/0; attacks tiocsetd'; {after}; cat target/attack-tty; \
         echo the end"
    );
    // Silenced, the screen shows nothing more: wait for the run to end.
    let run = on_a_terminal(&STEP3, &line, false, None);
    assert!(changed(&run), "no attack to show:\n{}", run.transcript);
    for step in DEFENDED {
        let run = on_a_terminal(&step, &for_step(&defended, &step), false, Some("the end"));
        assert!(!changed(&run), "{} lets it through:\n{}", step.name, run.transcript);
        if step.number == 4 {
            assert_transcript!("step4_terminal", run);
        }
        // Rootless too: the discipline needs no privilege, and stays the container's. The
        // state on the screen this time, which the run left working.
        let getd = format!("{rootfs}/usr/local/bin/attacks getd");
        let line = format!(
            "{getd}; just {} run --rootfs {rootfs} attacks tiocsetd; {getd}; echo the end",
            step.name
        );
        let run = on_a_terminal(&step, &line, true, Some("the end"));
        let states: Vec<&str> =
            run.output.lines().filter(|line| line.starts_with("line discipline")).collect();
        assert!(
            states.len() == 2 && states[0] == states[1],
            "{} rootless lets it through:\n{}",
            step.name,
            run.transcript
        );
    }
}

/// A device file in the rootfs: mknod needs root on the host, but an image can bring one,
/// and step 3 opens it for any user in the container. Here a harmless one, /dev/zero's
/// numbers; a real attack would bring the host's disk, /dev/kmsg or /dev/kvm. From step 4
/// on, the rootfs is mounted nodev, each way (the layer, --writable, read-only): only the
/// devices of the container's own /dev open.
#[test]
fn device_files_in_the_rootfs_do_not_open() {
    let rootfs = rootfs_with("devices-rootfs", "mkdir devs && mknod -m 666 devs/zero c 1 5");
    let step3 = format!("just step3 run --rootfs {rootfs} sh -c 'head -c 4 /devs/zero | wc -c'");
    let defended = format!(
        "just step3 run --rootfs {rootfs} --user learner sh -c 'head -c 4 /devs/zero | wc -c'"
    );
    attack("device_file", &step3, &defended, |run| run.output.ends_with("4\n"));
    for step in DEFENDED {
        let args = ["run", "--rootfs", &rootfs, "--writable", "head", "-c", "4", "/devs/zero"];
        let run = step.run_as_root(&args);
        assert!(run.output.contains("Permission denied"), "{}", run.transcript);
    }
    let _ = fs::remove_dir_all(Path::new(common::PROJECT).join(&rootfs));
}

/// What the container writes goes to memory: the throwaway layer and /tmp are tmpfs. In
/// step 3 a write goes to the host's disk, in rootfs/, as much as there is room for; from
/// step 4 on, each tmpfs holds `--tmpfs-size` at most (256 MiB unless told), and a write
/// past it fails with ENOSPC, in the container, before the host's memory runs short.
#[test]
fn the_containers_files_are_bounded() {
    let write = "yes | head -c 2097152 > /tmp/big; wc -c < /tmp/big; rm /tmp/big";
    let step3 = format!("just step3 run sh -c '{write}'");
    let defended = format!("just step3 run --tmpfs-size 1m sh -c '{write}'");
    attack("tmpfs_size", &step3, &defended, |run| run.output.ends_with("2097152\n"));
    for step in DEFENDED {
        // The layer over rootfs/ too (overlayfs says ENOSPC or EIO as kernels differ).
        let script = "yes | head -c 2097152 > /root/big 2>/dev/null; wc -c < /root/big";
        let run = step.run(&["run", "--tmpfs-size", "1m", "sh", "-c", script]);
        let written: u64 = run.output.trim().parse().unwrap_or(u64::MAX);
        assert!(written <= 1 << 20, "{}", run.transcript);
        // As root: rootless, the mount's options also say whose it is.
        let run = step.run_as_root(&["run", "sh", "-c", "grep ' /tmp ' /proc/mounts"]);
        assert!(run.output.contains("size=262144k,nr_inodes=65536"), "{}", run.transcript);
    }
}

/// The runtime reads the rootfs's /etc/passwd to find `--user`, and an image is not to be
/// trusted: a FIFO there would hang init for good, a link to /dev/zero would read until
/// memory ran out. From step 4 on, init reads only a regular file, of 1 MiB at most,
/// without blocking, and says why it will not.
#[test]
fn files_that_init_reads_cannot_stall_it() {
    for (name, plant) in [
        ("fifo-passwd-rootfs", "rm etc/passwd && mkfifo etc/passwd"),
        ("zero-passwd-rootfs", "ln -sf /dev/zero etc/passwd"),
        ("big-passwd-rootfs", "head -c 2000000 /dev/zero | tr '\\0' x >> etc/passwd"),
    ] {
        let rootfs = rootfs_with(name, plant);
        for step in DEFENDED {
            let started = std::time::Instant::now();
            let run = step.run(&["run", "--rootfs", &rootfs, "--user", "learner", "true"]);
            assert_eq!(run.status, 1, "{}", run.transcript);
            assert!(run.output.contains("the container's /etc/passwd"), "{}", run.transcript);
            assert!(started.elapsed().as_secs() < 10, "{name}: {}", run.transcript);
            if step.number == 4 && name == "fifo-passwd-rootfs" {
                assert_transcript!("step4_fifo_passwd", run);
            }
        }
        let _ = fs::remove_dir_all(Path::new(common::PROJECT).join(&rootfs));
    }
}

/// A call of another ABI, i386's through int 0x80, whose numbers mean other calls (its getpid
/// is x86_64's writev): step 3 lets it run; steps 4 and 5 kill the process, SIGSYS, before a
/// filter could read the number as its own (book: chapter 4, System calls). Stage 4.6 checks
/// a learner's filter with it.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_call_of_another_abi_is_killed() {
    let line = format!("just step3 run --rootfs {} attacks other-abi", common::attack_rootfs());
    let run = run_line(&line);
    if run.status == 128 + 11 {
        return; // SIGSEGV: this kernel has no i386 ABI (ia32_emulation=0), nothing to attack
    }
    assert_eq!(run.output, "i386 getpid: ran\n", "no attack to show:\n{}", run.transcript);
    for step in DEFENDED {
        let run = run_line(&for_step(&line, &step));
        let killed = run.status == 128 + 31 && !run.output.contains("ran");
        assert!(killed, "{} lets it through:\n{}", step.name, run.transcript);
    }
}

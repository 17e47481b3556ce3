//! From step 4 on the command runs in a real container environment: our init
//! as PID 1, fresh mounts, no way back to the host's files, and restrictions
//! that each really take effect. Every test looks from inside the container.

mod common;

use std::path::Path;
use std::process::Command;

use common::{STEP4, STEPS, Step, Terminal};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The steps with an environment: step 4 and later.
fn environment_steps() -> impl Iterator<Item = Step> {
    common::require_rootfs();
    STEPS.into_iter().skip(3)
}

/// Run ARGS in every environment step; check the status, snapshot the transcript.
fn check(case: &str, args: &[&str], status: i32) -> Vec<common::Run> {
    check_with(Step::run, case, args, status)
}

/// `check`, each step run by `run`.
fn check_with(
    run: fn(&Step, &[&str]) -> common::Run,
    case: &str,
    args: &[&str],
    status: i32,
) -> Vec<common::Run> {
    let runs: Vec<common::Run> = environment_steps().map(|step| run(&step, args)).collect();
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

/// A rootfs whose /etc/passwd has a UID that is no number: the error names the user, the
/// file and the field, not just "invalid digit found in string".
#[test]
fn a_malformed_passwd_names_the_field() {
    let rootfs = "target/malformed-passwd-rootfs";
    let copy = Path::new(common::PROJECT).join(rootfs);
    if !copy.join("bin/sh").exists() {
        let made = Command::new("cp")
            .arg("-a")
            .arg(Path::new(common::PROJECT).join("rootfs"))
            .arg(&copy)
            .status();
        assert!(made.unwrap().success(), "cannot copy rootfs/ to {rootfs}");
    }
    let passwd = "root:x:0:0:root:/root:/bin/sh\nlearner:x:10x0:1000::/home/learner:/bin/sh\n";
    std::fs::write(copy.join("etc/passwd"), passwd).unwrap();
    let args = ["run", "--rootfs", rootfs, "--user", "learner", "true"];
    for run in check("malformed_passwd", &args, 1) {
        let wanted = "cannot read user \"learner\" in the container's /etc/passwd: UID \"10x0\"";
        assert!(run.output.contains(wanted), "{}", run.transcript);
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
    // As root only: rootless, each device is the host's, bind-mounted, a mount of its own
    // (rootless.rs: the_devices_are_the_hosts), and the tmpfs belong to the namespace's root.
    check_with(Step::run_as_root, "mounts", &["run", "sh", "-c", "mount | grep -v ' on / '"], 0);
    // `/` alone: the throwaway layer over rootfs/ (part 4), its lower layer a descriptor.
    check_with(Step::run_as_root, "root_mount", &["run", "sh", "-c", "mount | grep ' on / '"], 0);
    check("dev", &["run", "ls", "/dev"], 0);
    check("sys_read_only", &["run", "touch", "/sys/kernel/x"], 1);
    // The host-wide settings in /proc/sys are read-only (this one is the UTS
    // namespace's own, so the test harms nothing if it fails).
    check("proc_sys_read_only", &["run", "sh", "-c", "echo box > /proc/sys/kernel/hostname"], 1);
}

/// In step 3 the host's root is mounted at /oldrootfs (rootfs/ has the
/// directory for it). From step 4 on nothing is there: an empty directory.
#[test]
fn the_old_root_is_gone() {
    for run in check("no_old_root", &["run", "ls", "-A", "/oldrootfs"], 0) {
        assert_eq!(run.output, "", "{}", run.transcript);
    }
}

/// The seccomp filter is there, as the kernel tells it: mode 2, one filter.
#[test]
fn the_command_runs_under_one_filter() {
    for run in check("seccomp", &["run", "grep", "Seccomp", "/proc/self/status"], 0) {
        assert!(run.output.contains("Seccomp:\t2\n"), "{}", run.transcript);
    }
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
    // The container's init, orphaned, is now ours (we are a subreaper): the
    // check waits for it to die, and fails if it does not.
    host.assert_unchanged("step4");
}

/// A host script that runs `step ARGS…` on its terminal, then says whether the terminal is as
/// it was: its settings (`stty -g`), and the script's process group in the foreground. The
/// script is not an interactive shell, which would put both right itself: what it sees is
/// what the step left.
fn on_the_hosts_terminal(step: &Step, args: &str) -> Command {
    let script = format!(
        "before=$(stty -g); {} {args}; status=$?; \
         [ \"$(stty -g)\" = \"$before\" ] && echo \"settings as they were\"; \
         read -r _ _ _ _ group _ _ foreground _ </proc/$$/stat; \
         [ \"$foreground\" = \"$group\" ] && echo \"the caller in the foreground\"; \
         exit $status",
        step.exe
    );
    let mut command = common::as_a_learner(Command::new("bash"));
    command.args(["--norc", "-c", &script]);
    command
}

/// Whether the script of `on_the_hosts_terminal` found its terminal as it was.
fn given_back(screen: &str) -> bool {
    screen.contains("settings as they were") && screen.contains("the caller in the foreground")
}

/// `just step4 run /bin/sh` on a terminal, typed at as a learner would: Ctrl-C
/// stops the foreground job and not the container, and job control works
/// (Ctrl-Z, `jobs`, `fg`, a job in the background), since our init is PID 1,
/// not the shell. Each line waits for what the screen must show first. After
/// `exit`, the host's terminal is as it was, though the container turned echo off.
#[test]
fn an_interactive_shell_with_job_control() {
    for step in environment_steps() {
        let host = common::HostState::now();
        let mut shell = Terminal::start(on_the_hosts_terminal(&step, "run /bin/sh"));
        common::job_control_session(&mut shell);
        shell.type_keys("stty -echo raw; exit 7\n");
        let (status, screen) = shell.wait();
        assert_eq!(status.code(), Some(7), "{screen}");
        assert!(given_back(&screen), "{}: {screen}", step.name);
        host.assert_unchanged(step.name);
    }
}

/// The container's own terminal (book: chapter 4, part 5): `tty` names it, in the
/// container's /dev/pts; its size is the window's, and follows a resize; and the run ends
/// with the shell's status, the host's terminal as it was.
#[test]
fn a_terminal_of_its_own() {
    for step in environment_steps() {
        let host = common::HostState::now();
        let mut shell = Terminal::start(on_the_hosts_terminal(&step, "run /bin/sh"));
        shell.resize(24, 80);
        shell.expect("# ");
        shell.type_keys("tty; stty size\n");
        shell.expect("24 80");
        shell.expect("# ");
        shell.resize(40, 100);
        // The resize reaches the runtime as SIGWINCH, and the container's terminal after it.
        shell.type_keys("until [ \"$(stty size)\" = \"40 100\" ]; do :; done; stty size\n");
        shell.expect("40 100");
        shell.expect("# ");
        shell.type_keys("exit 7\n");
        let (status, screen) = shell.wait();
        assert_eq!(status.code(), Some(7), "{screen}");
        assert!(given_back(&screen), "{}: {screen}", step.name);
        assert!(screen.contains("/dev/pts/0"), "{}: {screen}", step.name);
        host.assert_unchanged(step.name);
        if step.number == 4 {
            // What the learner sees: the session, without the lines of the script around it.
            let shown = as_shown(&screen);
            let session = shown.split("settings as they were").next().unwrap();
            let transcript = format!("$ just step4 run /bin/sh\n{session}[exit status: 7]");
            insta::assert_snapshot!("step4_terminal_of_its_own", common::redact(&transcript));
        }
    }
}

/// What a terminal shows of `screen`: each line from its last carriage return on, as the
/// shell redraws its prompt after a resize; without the two requests of busybox's line
/// editor that a terminal acts on unseen: where is the cursor (ESC [6n), clear to the end
/// (ESC [J).
fn as_shown(screen: &str) -> String {
    let lines = screen.split('\n').map(|line| line.trim_end_matches('\r'));
    let lines = lines.map(|line| line.rsplit('\r').next().unwrap_or(line));
    let text: Vec<String> =
        lines.map(|line| line.replace("\x1b[6n", "").replace("\x1b[J", "")).collect();
    text.join("\n")
}

/// The host's terminal is given back as it was on every way out that the runtime lives
/// through: the command's exit, its death by a signal, and SIGTERM, SIGINT or SIGHUP to the
/// runtime, which it passes on (book: chapter 4, part 5).
#[test]
fn the_terminal_is_given_back_on_every_way_out() {
    let step = STEP4;
    for (how, status) in
        [("exit", 7), ("kill", 137), ("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 129)]
    {
        let host = common::HostState::now();
        let args = "run sh -c 'stty -echo raw; echo RE\"\"ADY; read line; exit 7'";
        let mut terminal = Terminal::start(on_the_hosts_terminal(&step, args));
        terminal.expect("READY");
        match how {
            "exit" => terminal.type_keys("line\n"),
            "kill" => {
                let container = common::wait_for_descendant(terminal.pid(), "sh");
                kill(Pid::from_raw(container as i32), Signal::SIGKILL).unwrap();
            }
            signal => {
                let script = terminal.pid();
                let children =
                    std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"));
                let runtime: i32 =
                    children.unwrap().trim().parse().expect("the script's one child");
                let signal: Signal = signal.parse().unwrap();
                kill(Pid::from_raw(runtime), signal).unwrap();
            }
        }
        let (exit, screen) = terminal.wait();
        assert_eq!(exit.code(), Some(status), "{how}: {screen}");
        assert!(given_back(&screen), "{how}: {screen}");
        host.assert_unchanged(step.name);
    }
}

/// Ctrl-Z on a command that is not a shell: only a shell could ever give the
/// terminal back to it, so init continues it at once (book: chapter 4, Part 4).
/// Ctrl-C ends it, and the terminal is given back as it was, whether the
/// command ends by itself or by a signal.
#[test]
fn ctrl_z_is_a_no_op_for_a_command_without_job_control() {
    for step in environment_steps() {
        let host = common::HostState::now();
        // Echo off, so that only cat shows what is typed; keys only once cat runs.
        let args = "run sh -c 'stty -echo; echo RE\"\"ADY; exec cat'";
        let mut cat = Terminal::start(on_the_hosts_terminal(&step, args));
        cat.expect("READY");
        cat.type_keys("one\n");
        cat.expect("one");
        cat.type_keys("\x1a"); // Ctrl-Z
        cat.type_keys("two\n");
        cat.expect("two"); // cat goes on: it was continued
        cat.type_keys("\x03"); // Ctrl-C
        let (status, screen) = cat.wait();
        assert_eq!(status.code(), Some(130), "{}: {screen}", step.name);
        assert!(given_back(&screen), "{}: {screen}", step.name);
        host.assert_unchanged(step.name);
    }
}

/// A runtime killed by SIGKILL runs no more code of its own: the container
/// dies with it (PR_SET_PDEATHSIG), but no one gives the terminal back its
/// settings: it stays raw, as the runtime made it while it relayed. The caller
/// is still in the foreground (the runtime never gave that away, since the
/// container has a terminal of its own): an interactive shell repairs the
/// settings itself (bash, zsh and fish do for any job killed by a signal), and
/// `reset` is the fix after a script (book: chapter 4, part 5; Troubleshooting).
#[test]
fn a_runtime_killed_by_sigkill_leaves_the_terminal_to_its_caller() {
    let host = common::HostState::now();
    let step = STEP4;
    let mut terminal = Terminal::start(on_the_hosts_terminal(
        &step,
        "run sh -c 'stty -echo; echo RE\"\"ADY; sleep 60'",
    ));
    terminal.expect("READY");
    let script = terminal.pid();
    let children = std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"));
    let runtime: i32 = children.unwrap().trim().parse().expect("the script's one child");
    kill(Pid::from_raw(runtime), Signal::SIGKILL).unwrap();
    let (status, screen) = terminal.wait();
    assert_eq!(status.code(), Some(137), "{screen}");
    assert!(!screen.contains("settings as they were"), "{screen}");
    assert!(screen.contains("the caller in the foreground"), "{screen}");
    host.assert_unchanged(step.name);
}

/// A checkout that itself sits on overlayfs, as in a devcontainer or a Docker build: the
/// throwaway layer stacks on it. overlayfs stacks two deep at most, so on a checkout two
/// overlays deep the kernel refuses the layer (EINVAL), and the container gets its rootfs
/// read-only instead, and says so. In a mount namespace of the test's own, which takes its
/// mounts with it.
#[test]
fn the_layer_on_a_checkout_on_overlayfs_or_read_only_two_deep() {
    let scratch = common::scratch_dir("overlays");
    std::fs::create_dir_all(&scratch).unwrap();
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs {dir}; cd {dir}
         mkdir lower upper1 work1 one upper2 work2 two; cp -a {project}/rootfs/. lower/
         mount -t overlay overlay -o lowerdir=lower,upperdir=upper1,workdir=work1 one
         mount -t overlay overlay -o lowerdir=one,upperdir=upper2,workdir=work2 two
         for rootfs in one two; do
             {exe} run --rootfs $rootfs sh -c 'echo written >/root/x && cat /root/x' || echo $?
         done",
        dir = scratch.display(),
        project = common::PROJECT,
        exe = STEP4.exe,
    );
    let host = common::HostState::now();
    let output = common::as_a_learner(Command::new("unshare"))
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    host.assert_unchanged("step4");
    let _ = std::fs::remove_dir_all(&scratch);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // One overlay deep the layer stacks, and the command writes; two deep, it cannot (1).
    assert_eq!(stdout, "written\n1\n", "{stderr}");
    let errors: Vec<&str> = stderr.lines().collect();
    assert!(
        errors.len() == 2
            && errors[0].starts_with("note: overlayfs refused a layer over \"two\" (EINVAL")
            && errors[1].ends_with("Read-only file system"),
        "two deep, the rootfs is read-only, and a note says why:\n{stderr}"
    );
}

/// stdin need not be the terminal. With stdout and stderr on it, the container still gets
/// the terminal: Ctrl-C reaches it, and `stty tostop` does not stop its output. With none
/// of the three on it, the runtime keeps the terminal and passes Ctrl-C on. Either way the
/// run ends with status 130, and the terminal is as it was.
#[test]
fn ctrl_c_reaches_the_container_whatever_is_redirected() {
    for step in environment_steps() {
        let host = common::HostState::now();
        let args = "run sh -c 'echo RE\"\"ADY; sleep 30' </dev/null";
        let mut terminal = Terminal::start(on_the_hosts_terminal(&step, args));
        terminal.expect("READY");
        terminal.type_keys("\x03"); // Ctrl-C
        let (status, screen) = terminal.wait();
        assert_eq!(status.code(), Some(130), "{}: {screen}", step.name);
        assert!(given_back(&screen), "{}: {screen}", step.name);

        let script = format!(
            "stty tostop; {exe} run echo written </dev/null; echo \"status $?\"; stty -tostop
             trap 'echo the caller got it too' INT
             {exe} run sh -c 'echo RE\"\"ADY; sleep 30' </dev/null 2>/dev/null | cat
             echo \"status ${{PIPESTATUS[0]}}\"",
            exe = step.exe
        );
        let mut command = common::as_a_learner(Command::new("bash"));
        command.args(["--norc", "-c", &script]);
        let mut terminal = Terminal::start(command);
        terminal.expect("written");
        terminal.expect("status 0");
        terminal.expect("READY");
        terminal.type_keys("\x03"); // Ctrl-C, to the script's process group this time
        let (_, screen) = terminal.wait();
        assert!(screen.contains("status 130"), "{}: {screen}", step.name);
        host.assert_unchanged(step.name);
    }
}

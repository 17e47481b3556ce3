//! What every test needs: run a step the way a learner does, and see what they see.
//!
//! A run's transcript is what the terminal shows: the command line as typed,
//! stdout and stderr interleaved on one pipe, and the exit status. The book
//! includes these transcripts (the insta snapshots) as its "Run it" blocks.

#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Lines, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The project's directory: steps run from here, as `just` runs them, so that
/// `--rootfs` defaults to the real `rootfs/`.
pub const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

/// One of the workbook's programs.
pub struct Step {
    pub name: &'static str,
    pub exe: &'static str,
}

pub const STEP1: Step = Step { name: "step1", exe: env!("CARGO_BIN_EXE_step1") };
pub const STEP2: Step = Step { name: "step2", exe: env!("CARGO_BIN_EXE_step2") };
pub const STEP3: Step = Step { name: "step3", exe: env!("CARGO_BIN_EXE_step3") };
pub const STEP4: Step = Step { name: "step4", exe: env!("CARGO_BIN_EXE_step4") };
pub const STEP5: Step = Step { name: "step5", exe: env!("CARGO_BIN_EXE_step5") };

/// Every step, in order.
pub const STEPS: [Step; 5] = [STEP1, STEP2, STEP3, STEP4, STEP5];

/// What a learner sees after a run.
pub struct Run {
    /// `$ just stepN ARGS…`, then the output, then `[exit status: N]`.
    pub transcript: String,
    /// The output alone.
    pub output: String,
    pub status: i32,
}

impl Step {
    /// `just stepN ARGS…`: run the step as root, as the `just` recipe does, and
    /// check that it left the host as it found it.
    pub fn run(&self, args: &[&str]) -> Run {
        if self.name >= "step3" {
            require_rootfs(); // the default --rootfs
        }
        let host = HostState::now();
        let command = as_a_learner(Command::new(self.exe));
        let run = self.run_with(command, &format!("just {}", self.name), args);
        host.assert_unchanged(self.name);
        run
    }

    /// Start `stepN run … sh -c 'echo ready; …'` as root and leave it running,
    /// for the tests that signal the runtime: returns once the container said
    /// "ready", with the rest of its output to read.
    pub fn spawn_ready(&self, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
        require_root();
        let mut runtime = as_a_learner(Command::new(self.exe))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.exe));
        let mut output = BufReader::new(runtime.stdout.take().unwrap()).lines();
        assert_eq!(output.next().unwrap().unwrap(), "ready", "{} never said ready", self.name);
        (runtime, output)
    }

    /// The same run by a learner who forgot `sudo`: as user `nobody`, in a
    /// checkout of their own. That is a directory `nobody` may enter (this
    /// checkout may be private), with a copy of the step at
    /// `target/debug/` and a `rootfs/bin/sh`, enough for the step to get as
    /// far as the clone(2) that needs root.
    pub fn run_as_nobody(&self, args: &[&str]) -> Run {
        let host = HostState::now();
        let checkout =
            std::env::temp_dir().join(format!("byoc-{}-{}", self.name, std::process::id()));
        fs::create_dir_all(checkout.join("target/debug")).unwrap();
        fs::create_dir_all(checkout.join("rootfs/bin")).unwrap();
        std::os::unix::fs::symlink("busybox", checkout.join("rootfs/bin/sh")).unwrap();
        let exe = checkout.join("target/debug").join(self.name);
        fs::copy(self.exe, &exe).unwrap();
        let mut setpriv = as_a_learner(Command::new("setpriv"));
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe);
        setpriv.current_dir(&checkout);
        let run = self.run_with(setpriv, &format!("./target/debug/{}", self.name), args);
        fs::remove_dir_all(&checkout).unwrap();
        host.assert_unchanged(self.name);
        run
    }

    /// Run `command ARGS…` and record what the terminal shows as `$ SHOWN ARGS…`.
    fn run_with(&self, mut command: Command, shown: &str, args: &[&str]) -> Run {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = command
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.exe));
        drop(command); // our copies of the pipe's write end, so that we see its end
        let mut output = String::new();
        reader.read_to_string(&mut output).unwrap();
        let status = child.wait().unwrap().code().expect("the runtime exits, it is not killed");
        let transcript =
            format!("$ {shown} {}\n{output}[exit status: {status}]", shell_words(args));
        Run { transcript, output, status }
    }
}

/// `command` set up as a learner's shell starts a step: from the project's
/// directory, as `just` runs it, with a terminal type and no input.
pub fn as_a_learner(mut command: Command) -> Command {
    command
        .current_dir(PROJECT)
        // A learner's RUST_BACKTRACE would add a backtrace to every error report.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        // From step 4 on the container keeps the caller's TERM, and only it.
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    command
}

/// Snapshot a run's transcript, with what varies from run to run redacted:
/// host PIDs in the `-v` narration (the container's own, all below 100, stay),
/// and the random hostname that step 4 and later make up.
#[macro_export]
macro_rules! assert_transcript {
    ($name:expr, $run:expr) => {
        insta::with_settings!({filters => vec![
            (r"waitpid\(\d+\)", "waitpid([PID])"),
            (r"\bPid\(\d{3,}\)", "Pid([PID])"),
            (r"\b[0-9a-f]{12}\b", "[RANDOM-ID]"),
        ]}, {
            insta::assert_snapshot!($name, $run.transcript);
        })
    };
}

/// The arguments as a learner would type them in a shell.
fn shell_words(args: &[&str]) -> String {
    let quote = |arg: &&str| {
        let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c);
        if !arg.is_empty() && arg.chars().all(plain) {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// The containers need root: say so in one line rather than fail in a hundred ways.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("run the tests as root: sudo just test");
    }
}

/// Steps 3 and later need `rootfs/`, which `just test` builds first.
pub fn require_rootfs() {
    let shell = std::path::Path::new(PROJECT).join("rootfs/bin/sh");
    if shell.symlink_metadata().is_err() {
        panic!("rootfs/ is not built: run `just rootfs` (just test does it for you)");
    }
}

/// This process's mount table: a container that leaks a mount changes it.
pub fn mount_table() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The PID namespaces that hold a live process now: a container that outlives
/// its run leaves one more behind. (A zombie is dead already: when a runtime is
/// killed, its init waits as one until the host's init reaps it.)
fn pid_namespaces() -> BTreeSet<String> {
    let processes = fs::read_dir("/proc").unwrap().filter_map(Result::ok).map(|entry| entry.path());
    let alive = processes.filter(|process| {
        let status = fs::read_to_string(process.join("status")).unwrap_or_default();
        !status.contains("\nState:\tZ") && !status.is_empty()
    });
    alive
        .filter_map(|process| fs::read_link(process.join("ns/pid")).ok())
        .map(|namespace| namespace.display().to_string())
        .collect()
}

/// One container at a time: tests run in parallel threads, and another test's
/// container must not look like one this test leaked. (Nor may another
/// thread's fork hold open the binary that `run_as_nobody` copies: ETXTBSY.)
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The workbook's cgroups (`byoc-PID`) anywhere in the host's cgroup trees:
/// step 5 makes them, and must remove them.
pub fn workbook_cgroups() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, found: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                if entry.file_name().to_string_lossy().starts_with("byoc-") {
                    found.insert(entry.path().display().to_string());
                }
                walk(&entry.path(), found);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(std::path::Path::new("/sys/fs/cgroup"), &mut found);
    found
}

/// What a container run must leave as it was on the host.
pub struct HostState {
    mounts: String,
    pid_namespaces: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    _turn: MutexGuard<'static, ()>,
}

impl HostState {
    pub fn now() -> HostState {
        require_root();
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mounts, pid_namespaces, cgroups) =
            (mount_table(), pid_namespaces(), workbook_cgroups());
        HostState { mounts, pid_namespaces, cgroups, _turn: turn }
    }

    pub fn assert_unchanged(&self, step: &str) {
        assert_eq!(mount_table(), self.mounts, "{step} changed the host's mount table");
        let left: Vec<String> =
            pid_namespaces().difference(&self.pid_namespaces).cloned().collect();
        assert!(left.is_empty(), "{step} left processes running in {left:?}");
        assert_eq!(workbook_cgroups(), self.cgroups, "{step} left cgroups behind");
    }
}

/// Whether the memory controller is in a cgroup v1 tree (v1 or hybrid, as on
/// the CI machines), rather than v2 (most laptops). At its limit, v2 kills the
/// whole container; v1 kills one process, and the command may live on.
pub fn memory_on_cgroup_v1() -> bool {
    let mountinfo = mount_table();
    mountinfo.lines().any(|line| {
        line.contains(" - cgroup ") && line.split([' ', ',']).any(|word| word == "memory")
    })
}

/// Run the step on a host whose `/` is *shared*, like a systemd machine's, in a
/// mount namespace of its own, and check that the run left that namespace's
/// mount table exactly as it was. Returns the run's exit status.
pub fn run_on_shared_root(step: &Step, args: &[&str]) -> i32 {
    let host = HostState::now();
    let script = r#"cat /proc/self/mountinfo > "$0.before"
"$@" >/dev/null 2>&1; status=$?
cat /proc/self/mountinfo > "$0.after"
exit $status"#;
    let tables =
        std::env::temp_dir().join(format!("byoc-shared-{}-{}", step.name, std::process::id()));
    let status = as_a_learner(Command::new("unshare"))
        .args(["--mount", "--propagation", "shared", "sh", "-c", script])
        .arg(&tables)
        .arg(step.exe)
        .args(args)
        .status()
        .unwrap();
    let read = |suffix: &str| {
        let path = tables.with_extension(suffix);
        let table = fs::read_to_string(&path).unwrap();
        fs::remove_file(&path).unwrap();
        table
    };
    let (before, after) = (read("before"), read("after"));
    assert!(before.contains(" / / ") && before.contains("shared:"), "/ is not shared:\n{before}");
    assert_eq!(after, before, "{} leaked mounts on a shared root", step.name);
    host.assert_unchanged(step.name);
    status.code().unwrap()
}

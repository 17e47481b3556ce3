//! What every test needs: run a step the way a learner does, and see what they see.
//!
//! A run's transcript is what the terminal shows: the command line as typed,
//! stdout and stderr interleaved on one pipe, and the exit status. The book
//! includes these transcripts (the insta snapshots) as its "Run it" blocks.
//!
//! Every run is also judged by what it left on the host: processes, mounts and
//! cgroups of *its own* (`HostState`), so that other containers on the machine,
//! Docker's say, neither fail a run nor hide a leak.

#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// The project's directory: steps run from here, as `just` runs them, so that
/// `--rootfs` defaults to the real `rootfs/`.
pub const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

/// One of the workbook's programs.
#[derive(Clone, Copy)]
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
    /// check that it left the host as it found it. Steps 2 to 4 run it rootless too (book:
    /// chapter 2, Without root), and must show the same, whoever started them: the learner
    /// without sudo runs the book's commands too.
    pub fn run(&self, args: &[&str]) -> Run {
        let root = self.run_as_root(args);
        if ["step2", "step3", "step4"].contains(&self.name) {
            let rootless = self.run_rootless_like_root(args);
            let shown = |run: &Run| (redact(&run.output), run.status);
            assert_eq!(
                shown(&rootless),
                shown(&root),
                "rootless, {} shows otherwise than as root:\n{}\n\nas root:\n{}",
                self.name,
                rootless.transcript,
                root.transcript
            );
        }
        root
    }

    /// `run`, as root alone: for the few commands whose output differs rootless, as the call
    /// site says, with the test in tests/rootless.rs that shows how.
    pub fn run_as_root(&self, args: &[&str]) -> Run {
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
    /// "ready", with the rest of its output to read. Call it while holding a
    /// `HostState`.
    pub fn spawn_ready(&self, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
        require_root();
        let mut command = as_a_learner(Command::new(self.exe));
        command.args(args);
        start_ready(command)
    }

    /// The same run by a learner without root (book: chapter 2, Without root):
    /// as user `nobody`, in a checkout of their own, where they built the step
    /// and ran `just rootfs`, so that its `rootfs/` is theirs. That is a
    /// directory `nobody` may enter (this checkout may be private).
    pub fn run_rootless(&self, args: &[&str]) -> Run {
        self.run_in_checkout(RootlessCheckout::command, "./target/debug/", args)
    }

    /// The same, by a learner whom root gave a range of IDs (book: chapter 2, More than one
    /// user): see `RootlessCheckout::command_with_ids`.
    pub fn run_rootless_with_ids(&self, args: &[&str]) -> Run {
        self.run_in_checkout(RootlessCheckout::command_with_ids, "./target/debug/", args)
    }

    /// `stepN ARGS…` as root, from a checkout that any user may enter: with `--userns-remap`
    /// the container's root is a stranger to the directory it starts in (book: chapter 2, As
    /// root, a user namespace too), and this project's may be private.
    pub fn run_remapped(&self, args: &[&str]) -> Run {
        self.run_in_checkout(RootlessCheckout::command_as_root, "just ", args)
    }

    /// Run `command` in a checkout of its own, shown as `SHOWN_AS` and the step's name.
    /// `run_rootless`, or, for `--user`, `run_rootless_with_ids`: a learner without root has
    /// no other user in the container unless root gave them a range of IDs (the issue's one
    /// exemption, tested as such in tests/rootless.rs).
    fn run_rootless_like_root(&self, args: &[&str]) -> Run {
        match args.contains(&"--user") {
            true => self.run_rootless_with_ids(args),
            false => self.run_rootless(args),
        }
    }

    fn run_in_checkout(
        &self,
        command: fn(&RootlessCheckout) -> Command,
        shown_as: &str,
        args: &[&str],
    ) -> Run {
        let host = HostState::now();
        let checkout = RootlessCheckout::new(self);
        checkout.copy_rootfs_named_in(args);
        let run = self.run_with(command(&checkout), &format!("{shown_as}{}", self.name), args);
        host.assert_unchanged(self.name);
        run
    }

    /// Run `command ARGS…` and record what the terminal shows as `$ SHOWN ARGS…`.
    fn run_with(&self, mut command: Command, shown: &str, args: &[&str]) -> Run {
        command.args(args);
        transcript_of(command, &format!("{shown} {}", shell_words(args)))
    }
}

/// Start `command`, a run of `sh -c 'echo ready; …'`, and leave it running: returns once the
/// container said "ready", with the rest of its output to read. Call it while holding a
/// `HostState`.
pub fn start_ready(mut command: Command) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut runtime = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let mut output = BufReader::new(runtime.stdout.take().unwrap()).lines();
    assert_eq!(output.next().unwrap().unwrap(), "ready", "{command:?} never said ready");
    (runtime, output)
}

/// A command line as a learner types it in their shell, such as `sh -c 'just step3 run …;
/// echo …'`, run as root from the project's directory (each `just stepN` is the step's
/// binary), and its transcript: for the book's attacks, which need a shell around the step.
/// Checks that it left the host as it found it.
pub fn run_line(line: &str) -> Run {
    let host = HostState::now();
    let real = STEPS.iter().fold(line.to_string(), |line, step| {
        line.replace(&format!("just {} ", step.name), &format!("{} ", step.exe))
    });
    let mut command = as_a_learner(Command::new("sh"));
    // A process group of its own, as an interactive shell gives each job.
    command.args(["-c", &real]).process_group(0);
    let run = transcript_of(command, line);
    host.assert_unchanged("a command line");
    run
}

/// Run `command`, its output and errors on one pipe as a terminal shows them, and record
/// `$ SHOWN`, the output, and the exit status.
pub fn transcript_of(mut command: Command, shown: &str) -> Run {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = command
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {shown}: {error}"));
    drop(command); // our copies of the pipe's write end, so that we see its end
    // Lossy: a learner's program, in the workshop's checks, may write anything.
    let mut output = Vec::new();
    reader.read_to_end(&mut output).unwrap();
    let output = String::from_utf8_lossy(&output).into_owned();
    // As a shell says it: 128+N for a program that signal N killed.
    let status = child.wait().unwrap();
    let status = status.code().unwrap_or_else(|| 128 + status.signal().unwrap());
    let transcript = format!("$ {shown}\n{output}[exit status: {status}]");
    Run { transcript, output, status }
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

/// A directory of this test process's own, for a test's scratch files.
pub fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("byoc-{name}-{}", std::process::id()))
}

/// User `nobody`, the learner without root of the rootless tests.
pub const NOBODY: u32 = 65534;

/// setpriv(1)'s arguments that run a program as `nobody`, with no group of root's.
pub const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// A learner's checkout for rootless runs, removed when dropped: the step at
/// `target/debug/`, and a copy of rootfs/ that belongs to `nobody`, as `just
/// rootfs` makes it for a learner without root. Make it while holding a
/// `HostState` (see ONE_AT_A_TIME: ETXTBSY).
pub struct RootlessCheckout {
    pub dir: PathBuf,
    pub exe: PathBuf,
}

impl RootlessCheckout {
    pub fn new(step: &Step) -> RootlessCheckout {
        Self::of(Path::new(step.exe), step.name >= "step3")
    }

    /// The same for any build of a step (a learner's, in the workshop's checks), with a
    /// rootfs or not.
    pub fn of(program: &Path, with_rootfs: bool) -> RootlessCheckout {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = program.file_name().unwrap();
        let dir = scratch_dir(&format!("rootless-{}-{n}", name.to_string_lossy()));
        fs::create_dir_all(dir.join("target/debug")).unwrap();
        let exe = dir.join("target/debug").join(name);
        fs::copy(program, &exe).unwrap();
        if with_rootfs {
            require_rootfs();
            copy_for_nobody(&Path::new(PROJECT).join("rootfs"), &dir.join("rootfs"));
        }
        RootlessCheckout { dir, exe }
    }

    /// `./target/debug/stepN`, run as `nobody` from the checkout, with a
    /// learner's environment: no root's PATH.
    pub fn command(&self) -> Command {
        let mut setpriv = as_a_learner(Command::new("setpriv"));
        setpriv.args(AS_NOBODY).arg(&self.exe);
        setpriv.current_dir(&self.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
        setpriv
    }
}

/// A command that runs `script` as root, in a mount namespace of its own (what it mounts
/// there no one else sees, and it goes with the run), then the rest of its arguments as
/// `nobody`. The script's own arguments come first, `$1`…, and it shifts them away.
pub fn as_nobody_after(script: &str) -> Command {
    let script = format!("set -e\n{script}\nexec setpriv {} \"$@\"", AS_NOBODY.join(" "));
    let mut unshare = as_a_learner(Command::new("unshare"));
    unshare.args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"]);
    unshare
}

/// `as_nobody_after` script: bind the file `$1` over /etc/subuid and /etc/subgid.
const BIND_SUBORDINATE_IDS: &str =
    "mount --bind \"$1\" /etc/subuid\nmount --bind \"$1\" /etc/subgid\nshift";

impl RootlessCheckout {
    /// The rootfs that `--rootfs DIR` names in `args`, if it is one of the project's (such as
    /// tests/attacks.rs's): copied for `nobody` too, to the same place in the checkout.
    fn copy_rootfs_named_in(&self, args: &[&str]) {
        let Some(at) = args.iter().position(|arg| *arg == "--rootfs") else { return };
        let named = Path::new(args[at + 1]);
        let project = Path::new(PROJECT).join(named);
        if named.is_relative() && project.is_dir() && !self.dir.join(named).exists() {
            fs::create_dir_all(self.dir.join(named).parent().unwrap()).unwrap();
            copy_for_nobody(&project, &self.dir.join(named));
        }
    }

    /// `./target/debug/stepN`, run as root from the checkout.
    pub fn command_as_root(&self) -> Command {
        let mut command = as_a_learner(Command::new(&self.exe));
        command.current_dir(&self.dir);
        command
    }

    /// `command`, with `nobody` given the IDs 200000 to 265535 in /etc/subuid and
    /// /etc/subgid, as `sudo usermod --add-subuids 200000-265535 --add-subgids …` would: the
    /// two files are bound over the host's in a mount namespace of the run's own, so that the
    /// host's stay as they are. newuidmap and newgidmap, from the `uidmap` package that `just
    /// test` installs, read them.
    pub fn command_with_ids(&self) -> Command {
        for file in ["/usr/bin/newuidmap", "/usr/bin/newgidmap", "/etc/subuid", "/etc/subgid"] {
            assert!(Path::new(file).exists(), "no {file}: install the uidmap package");
        }
        let ranges = self.dir.join("subordinate-ids");
        fs::write(&ranges, "nobody:200000:65536\n").unwrap();
        let mut command = as_nobody_after(BIND_SUBORDINATE_IDS);
        command.arg(&ranges).arg(&self.exe);
        command.current_dir(&self.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
        command
    }
}

impl Drop for RootlessCheckout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// cp -a `from` `to`, everything then owned by `nobody`.
fn copy_for_nobody(from: &Path, to: &Path) {
    use std::os::unix::fs::{PermissionsExt, lchown};
    let meta = fs::symlink_metadata(from).unwrap();
    if meta.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from).unwrap(), to).unwrap();
    } else if meta.is_dir() {
        fs::create_dir(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_for_nobody(&entry.path(), &to.join(entry.file_name()));
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.permissions().mode())).unwrap();
    } else {
        fs::copy(from, to).unwrap();
    }
    lchown(to, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// A copy of rootfs/ with `attacks` (tests/tools/attacks.rs, built statically) in
/// /usr/local/bin: the rootfs that tests/attacks.rs and the workshop's stage 4.6 run an
/// untrusted program in, as the path they give to --rootfs, relative to the project. Made
/// once, and again when rootfs/ or the program's source is newer than the copy. The first
/// call must come before the test takes its `HostState`: making it starts processes, in
/// turn as every process a test starts (another test's check would reap them as its own).
pub fn attack_rootfs() -> &'static str {
    static MADE: Once = Once::new();
    MADE.call_once(|| {
        require_rootfs();
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let project = Path::new(PROJECT);
        let rootfs = project.join("target/attack-rootfs");
        let source = project.join("tests/tools/attacks.rs");
        let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
        let built = modified(&rootfs.join("usr/local/bin/attacks"));
        let sources = [modified(&source), modified(&project.join("rootfs/bin/busybox"))];
        if built.is_some() && sources.iter().all(|source| *source <= built) {
            return;
        }
        // Made beside it, then moved in place: another test process may be reading it.
        let new = project.join(format!("target/attack-rootfs.{}", std::process::id()));
        let copied = Command::new("cp").arg("-a").arg(project.join("rootfs")).arg(&new).status();
        assert!(copied.unwrap().success(), "cannot copy rootfs/");
        fs::create_dir_all(new.join("usr/local/bin")).unwrap();
        let built = Command::new("rustc")
            .args(["--edition", "2024", "-O", "-C", "target-feature=+crt-static", "-o"])
            .arg(new.join("usr/local/bin/attacks"))
            .arg(&source)
            .status()
            .expect("rustc, to build tests/tools/attacks.rs");
        assert!(built.success(), "tests/tools/attacks.rs does not build");
        let _ = fs::remove_dir_all(&rootfs);
        fs::rename(&new, &rootfs).unwrap();
    });
    "target/attack-rootfs"
}

/// What varies from run to run, or from kernel to kernel, and nothing else:
/// each match is replaced before a transcript is compared with its snapshot.
/// `tests/redactions.rs` shows, for each, that it hides only what varies and
/// that a real change of behaviour still fails the snapshot.
pub const REDACTIONS: [(&str, &str); 10] = [
    // The runtime's host PID in the `-v` narration. The container's own PIDs,
    // all below 100, stay: `Pid(2)` is the command.
    (r"waitpid\(\d{3,}, ", "waitpid([PID], "),
    (r"\bPid\(\d{3,}\)", "Pid([PID])"),
    // Rootless, the runtime writes its child's ID maps, in /proc/CHILD'S-PID.
    (r#""/proc/\d{3,}/(setgroups|uid_map|gid_map)""#, "\"/proc/[PID]/$1\""),
    // ... or has the helpers write them, given the child's PID.
    (r"\b(newuidmap|newgidmap)\(\d{3,}, ", "$1([PID], "),
    // Step 5 names the container's cgroup after the runtime's PID.
    (r"\bbyoc-\d+\b", "byoc-[PID]"),
    // The random hostname that step 4 and later make up.
    (r"\b[0-9a-f]{12}\b", "[RANDOM-ID]"),
    // stress's wall time, which it rounds to whole seconds: 0s or 1s by chance.
    (r"(successful|failed) run completed in \d+s", "$1 run completed in [N]s"),
    // The /proc and /sys paths that only some kernels have (sysrq-trigger,
    // kcore, scsi: build options; asound, powercap: drivers), made read-only or
    // masked, in the container's mount table: a line goes, but only when its
    // path is protected (read-only), so that an unprotected one still shows.
    (
        r"(?m)^\w+ on /(proc/(sysrq-trigger|kcore|scsi|asound|latency_stats|timer_stats|sched_debug)|sys/devices/virtual/powercap) type \w+ \(ro,[^)\n]*\)\n",
        "",
    ),
    // The same paths in the `-v` narration: the mounts that protect them, a line each, go
    // too, but only when they worked (`= 0`), so that a refused one still shows.
    (
        r#"(?m)^=> mount\((?:"[^"\n]*"|NULL), "(?:proc/(?:sysrq-trigger|kcore|scsi|asound|latency_stats|timer_stats|sched_debug)|sys/devices/virtual/powercap)", [^\n]*\) = 0(?:  # [^\n]*)?\n"#,
        "",
    ),
    // Whether tmpfs numbers its files with 64 bits unless told (CONFIG_TMPFS_INODE64):
    // stock Debian kernels say `inode64` in the mount's options, others say nothing.
    (r"(?m)^(tmpfs on [^\n]*),inode64\)$", "$1)"),
];

/// The body of `tests/snapshots/NAME.snap`: a transcript as the book shows it,
/// redacted, without the newline that insta ends it with.
pub fn snapshot_body(name: &str) -> String {
    let path = Path::new(PROJECT).join("tests/snapshots").join(format!("{name}.snap"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // After the YAML header, `---`…`---`.
    let body = text.splitn(3, "---\n").nth(2).expect("an insta snapshot");
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// `text` with every one of `REDACTIONS` applied, in order.
pub fn redact(text: &str) -> String {
    REDACTIONS.iter().fold(text.to_string(), |text, (pattern, replacement)| {
        let pattern = regex::Regex::new(pattern).expect("the redactions are valid regexes");
        pattern.replace_all(&text, *replacement).into_owned()
    })
}

/// Snapshot a run's transcript, redacted.
#[macro_export]
macro_rules! assert_transcript {
    ($name:expr, $run:expr) => {
        insta::assert_snapshot!($name, $crate::common::redact(&$run.transcript))
    };
}

/// The arguments as a learner would type them in a shell.
pub fn shell_words(args: &[&str]) -> String {
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
    let shell = Path::new(PROJECT).join("rootfs/bin/sh");
    if shell.symlink_metadata().is_err() {
        panic!("rootfs/ is not built: run `just rootfs` (just test does it for you)");
    }
}

/// This process's mount table.
pub fn mount_table() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The lines of `mountinfo` whose mount point a container of ours could touch:
/// `/` and the host's own /proc, /sys, /dev and /tmp (a step without a mount
/// namespace would mount there), and anything beneath this checkout or our
/// scratch directories. Another runtime's mounts (Docker's overlays under
/// /var/lib/docker, its network namespaces under /run) are not ours to judge.
fn our_mounts(mountinfo: &str) -> BTreeSet<String> {
    // mountinfo writes a space in a path as \040.
    let escape = |path: &Path| path.display().to_string().replace(' ', r"\040");
    let roots = [escape(Path::new(PROJECT)), escape(&scratch_dir(""))];
    let host = ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"];
    let ours = |point: &str| host.contains(&point) || roots.iter().any(|r| point.starts_with(r));
    let lines = mountinfo.lines().filter(|line| line.split(' ').nth(4).is_some_and(ours));
    lines.map(str::to_string).collect()
}

/// A child process of ours, as /proc/PID/stat tells.
#[derive(Debug)]
struct Orphan {
    pid: i32,
    state: char,
    command: String,
}

/// Our own child processes. Every test process is a child subreaper
/// (PR_SET_CHILD_SUBREAPER): a process that outlives the run that started it
/// is re-parented to us, not to the host's init. So what a run leaves behind
/// becomes our child, and another runtime's processes never do.
fn our_children() -> Vec<Orphan> {
    let us = std::process::id().to_string();
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // PID (COMMAND) STATE PPID …: the command may hold spaces and parentheses.
        let Some((head, tail)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = tail.split(' ').collect();
        if fields.get(1) == Some(&us.as_str()) {
            let (pid, command) = head.split_once(" (").unwrap_or((head, ""));
            let state = fields[0].chars().next().unwrap_or('?');
            let command = command.to_string();
            children.push(Orphan { pid: pid.parse().unwrap(), state, command });
        }
    }
    children
}

/// Wait until process `parent` has a child that runs `command` (as
/// /proc/PID/comm names it); after 20 s, fail.
pub fn wait_for_child(parent: u32, command: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let children = format!("/proc/{parent}/task/{parent}/children");
    loop {
        let pids = fs::read_to_string(&children).unwrap_or_default();
        let comm = |pid: &str| fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pids.split_whitespace().any(|pid| comm(pid).trim_end() == command) {
            return;
        }
        assert!(Instant::now() < deadline, "process {parent} never ran {command:?}");
        sleep(Duration::from_millis(5));
    }
}

/// Make this test process the reaper of all that its runs leave behind.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// One container at a time: tests run in parallel threads, and another test's
/// container must not look like one this test leaked. Every process a test
/// starts, it starts while holding this (through `HostState`). (Nor may
/// another thread's fork hold open the binary that `RootlessCheckout` copies:
/// ETXTBSY.)
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The workbook's cgroups (`byoc-PID`) anywhere in the host's cgroup trees:
/// step 5 makes them, and must remove them.
pub fn workbook_cgroups() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                if entry.file_name().to_string_lossy().starts_with("byoc-") {
                    found.insert(entry.path());
                }
                walk(&entry.path(), found);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(Path::new("/sys/fs/cgroup"), &mut found);
    found
}

/// Whether the runtime that a `byoc-PID` cgroup is named after has gone, or is
/// a child of ours: then the cgroup is left over from one of our runs. A live
/// runtime elsewhere (a learner's container in another terminal) owns its own.
fn left_by_us(cgroup: &Path) -> bool {
    let name = cgroup.file_name().unwrap_or_default().to_string_lossy();
    let Some(pid) = name.strip_prefix("byoc-").and_then(|pid| pid.parse::<i32>().ok()) else {
        return false;
    };
    kill(Pid::from_raw(pid), None).is_err() || our_children().iter().any(|c| c.pid == pid)
}

/// What a run must leave as it was on the host: what it may have touched of
/// the mount table, no process of its own, no cgroup of its own.
pub struct HostState {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<PathBuf>,
    /// Our children before the run: not the run's (the other runtime of tests/harness.rs).
    children: BTreeSet<i32>,
    _turn: MutexGuard<'static, ()>,
}

impl HostState {
    pub fn now() -> HostState {
        require_root();
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        become_subreaper();
        HostState {
            mounts: our_mounts(&mount_table()),
            cgroups: workbook_cgroups(),
            children: our_children().iter().map(|child| child.pid).collect(),
            _turn: turn,
        }
    }

    pub fn assert_unchanged(&self, step: &str) {
        let left = self.processes_left();
        assert!(left.is_empty(), "{step} left processes running: {left:?}");
        let (before, after) = (&self.mounts, our_mounts(&mount_table()));
        let gone: Vec<&String> = before.difference(&after).collect();
        let new: Vec<&String> = after.difference(before).collect();
        assert!(
            gone.is_empty() && new.is_empty(),
            "{step} changed the host's mount table:\n- {gone:#?}\n+ {new:#?}"
        );
        let new = workbook_cgroups();
        let left: Vec<&PathBuf> =
            new.difference(&self.cgroups).filter(|cgroup| left_by_us(cgroup)).collect();
        assert!(left.is_empty(), "{step} left cgroups behind: {left:?}");
    }

    /// Our children now that were not before: we hold the lock, so none of
    /// them is another test's run. Reap the dead ones (a killed runtime's init
    /// waits as a zombie), give the live ones a moment (a PID namespace takes a
    /// moment to end), then SIGKILL what is still there, so that the next test
    /// starts clean, and return it.
    pub fn processes_left(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut children = our_children();
            children.retain(|child| !self.children.contains(&child.pid));
            for zombie in children.iter().filter(|child| child.state == 'Z') {
                let _ = waitpid(Pid::from_raw(zombie.pid), None);
            }
            let alive: Vec<Orphan> =
                children.into_iter().filter(|child| child.state != 'Z').collect();
            if alive.is_empty() {
                return Vec::new();
            }
            if Instant::now() > deadline {
                for orphan in &alive {
                    let _ = kill(Pid::from_raw(orphan.pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(orphan.pid), None);
                }
                return alive.iter().map(|o| format!("{} ({})", o.pid, o.command)).collect();
            }
            sleep(Duration::from_millis(10));
        }
    }
}

/// The directory of the memory cgroup this test process runs in, in a v1 tree
/// (`/sys/fs/cgroup/memory/…`) or in the v2 one (`/sys/fs/cgroup/…`).
pub fn own_memory_cgroup() -> Option<PathBuf> {
    let lines = fs::read_to_string("/proc/self/cgroup").ok()?;
    let (v1, v2) = lines.lines().fold((None, None), |(v1, v2), line| {
        let mut fields = line.splitn(3, ':').skip(1);
        match (fields.next(), fields.next()) {
            (Some(""), Some(path)) => (v1, Some(path.to_string())),
            (Some(list), Some(path)) if list.split(',').any(|c| c == "memory") => {
                (Some(path.to_string()), v2)
            }
            _ => (v1, v2),
        }
    });
    let dir = match (v1, v2) {
        (Some(path), _) => format!("/sys/fs/cgroup/memory{path}"),
        (None, Some(path)) => format!("/sys/fs/cgroup{path}"),
        (None, None) => return None,
    };
    Some(PathBuf::from(dir))
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
    let tables = scratch_dir(&format!("shared-{}", step.name));
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
    // Another runtime's mounts on the host reach this namespace too: it is a peer.
    let (before, after) = (our_mounts(&before), our_mounts(&after));
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(after, before, "{} leaked mounts on a shared root: {new:#?}", step.name);
    host.assert_unchanged(step.name);
    status.code().unwrap()
}

/// A pseudo-terminal with a program on it, typed at as a learner types: each
/// step of a conversation waits until the screen shows what it expects,
/// however slow the machine, and never for a fixed time.
pub struct Terminal {
    child: Child,
    keyboard: File,
    screen: Receiver<Vec<u8>>,
    /// All that the program has written so far.
    pub seen: String,
    /// How much of `seen` the last `expect` consumed.
    read_up_to: usize,
}

impl Terminal {
    /// Start `command` on a new pseudo-terminal, as the leader of a new session
    /// whose controlling terminal it is: what a terminal emulator does for a
    /// shell. Call it while holding a `HostState`.
    pub fn start(mut command: Command) -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let terminal = File::from(pty.slave);
        command
            .stdin(terminal.try_clone().unwrap())
            .stdout(terminal.try_clone().unwrap())
            .stderr(terminal);
        // SAFETY: between fork and exec the child calls only setsid and ioctl,
        // both async-signal-safe system calls.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("cannot start the program on a terminal");
        drop(command); // our copies of the terminal's side, so that we see its end
        let mut screen = File::from(pty.master);
        let keyboard = screen.try_clone().unwrap();
        let (sender, receiver) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // EIO once the last process with the terminal open has closed it.
            while let Ok(count @ 1..) = screen.read(&mut buffer) {
                if sender.send(buffer[..count].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { child, keyboard, screen: receiver, seen: String::new(), read_up_to: 0 }
    }

    /// The program's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Type `keys`: text, or control characters such as "\x03" for Ctrl-C.
    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard.write_all(keys.as_bytes()).unwrap();
    }

    /// Wait until the screen shows `wanted` after what the last `expect` saw;
    /// after 20 s, fail with the screen.
    pub fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.seen[self.read_up_to..].find(wanted) {
                self.read_up_to += at + wanted.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the screen never showed {wanted:?}; it shows:\n{}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the program ended before showing {wanted:?}:\n{}", self.seen)
                }
            }
        }
    }

    /// Wait for the program to end: its status, and all that the screen showed.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        // The rest of the screen, up to EIO, when the last process closes the terminal
        // (a leaked one might never: HostState catches that).
        while let Ok(bytes) = self.screen.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status, std::mem::take(&mut self.seen))
    }
}

/// A test that fails half-way through leaves nothing running on its terminal: the
/// program's process group goes (a container with it, by PR_SET_PDEATHSIG).
impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// What a learner types at `run /bin/sh` on a terminal to try job control, each line once
/// the screen shows what it must: Ctrl-C stops the foreground job and not the container;
/// Ctrl-Z, `jobs`, `fg` and a job in the background work. It ends at the prompt; the caller
/// types the `exit`. (environment.rs as root, rootless.rs without.)
pub fn job_control_session(shell: &mut Terminal) {
    shell.expect("# "); // the prompt
    // Type at a program only once it runs: before, the shell would read the keys.
    // READY is typed as RE""ADY, so that only the shell's echo shows READY, and
    // only `tr` can show FIRST: then tr runs, in the foreground, waiting to read.
    shell.type_keys("echo RE\"\"ADY; tr a-z A-Z\n");
    shell.expect("READY");
    shell.type_keys("first\n");
    shell.expect("FIRST");
    shell.type_keys("\x03"); // Ctrl-C
    shell.expect("# ");
    shell.type_keys("echo \"tr said $?\"\n");
    shell.expect("tr said 130"); // 128 + SIGINT: tr got it, and the container lives on
    shell.type_keys("echo RE\"\"ADY; tr a-z A-Z\n");
    shell.expect("READY");
    shell.type_keys("second\n");
    shell.expect("SECOND");
    shell.type_keys("\x1a"); // Ctrl-Z
    shell.expect("Stopped");
    shell.expect("# ");
    shell.type_keys("jobs\n");
    shell.expect("[1]+  Stopped");
    shell.expect("# ");
    shell.type_keys("fg\n");
    shell.expect("tr a-z A-Z"); // fg names the job it continues
    shell.type_keys("third\n");
    shell.expect("THIRD"); // tr runs again
    shell.type_keys("\x04"); // Ctrl-D: the end of tr's input
    shell.expect("# ");
    shell.type_keys("echo \"tr said $?\"\n");
    shell.expect("tr said 0");
    shell.type_keys("sleep 30 &\n");
    shell.type_keys("jobs\n");
    shell.expect("[1]+  Running");
    shell.type_keys("kill %1; wait\n");
    shell.expect("Terminated");
    shell.expect("# ");
}

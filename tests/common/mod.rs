//! What every test needs: run a step the way a learner does, and see what they see.
//!
//! A run's transcript is what the terminal shows: the command line as typed,
//! stdout and stderr interleaved on one pipe, and the exit status. The book
//! includes these transcripts (the insta snapshots) as its "Run it" blocks.

#![allow(dead_code)] // each test file uses its own part of this module

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};

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

/// Every step, in order.
pub const STEPS: [Step; 3] = [STEP1, STEP2, STEP3];

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
    /// check that it left the host's mount table as it found it.
    pub fn run(&self, args: &[&str]) -> Run {
        require_root();
        let before = mount_table();
        let run = self.run_with(Command::new(self.exe), &format!("just {}", self.name), args);
        assert_eq!(mount_table(), before, "{} changed the host's mount table", self.name);
        run
    }

    /// The same run by a learner who forgot `sudo`: as user `nobody`.
    pub fn run_as_nobody(&self, args: &[&str]) -> Run {
        require_root();
        // A copy in a directory that `nobody` may enter (the checkout may be private).
        let dir = std::env::temp_dir().join(format!("byoc-{}-{}", self.name, std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join(self.name);
        fs::copy(self.exe, &exe).unwrap();
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe);
        let run = self.run_with(setpriv, &format!("./target/debug/{}", self.name), args);
        fs::remove_dir_all(&dir).unwrap();
        run
    }

    fn run_with(&self, mut command: Command, shown: &str, args: &[&str]) -> Run {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = command
            .args(args)
            .current_dir(PROJECT)
            // A learner's RUST_BACKTRACE would add a backtrace to every error report.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
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

/// Snapshot a run's transcript, with what varies from run to run redacted:
/// host PIDs in the `-v` narration.
#[macro_export]
macro_rules! assert_transcript {
    ($name:expr, $run:expr) => {
        insta::with_settings!({filters => vec![
            (r"waitpid\(\d+\) = (\w+)\(Pid\(\d+\)", "waitpid([PID]) = $1(Pid([PID])"),
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

/// Run the step on a host whose `/` is *shared*, like a systemd machine's, in a
/// mount namespace of its own, and check that the run left that namespace's
/// mount table exactly as it was. Returns the run's exit status.
pub fn run_on_shared_root(step: &Step, args: &[&str]) -> i32 {
    require_root();
    let script = r#"cat /proc/self/mountinfo > "$0.before"
"$@" >/dev/null 2>&1; status=$?
cat /proc/self/mountinfo > "$0.after"
exit $status"#;
    let tables =
        std::env::temp_dir().join(format!("byoc-shared-{}-{}", step.name, std::process::id()));
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "shared", "sh", "-c", script])
        .arg(&tables)
        .arg(step.exe)
        .args(args)
        .current_dir(PROJECT)
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
    status.code().unwrap()
}

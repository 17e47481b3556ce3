//! The workbook's steps, and running one as a learner does: as root, rootless as user
//! `nobody`, remapped, or from a command line typed in a shell. Every run is judged by what it
//! left on the host (`HostState`).

use std::io::{BufRead, BufReader, Lines};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};

use super::host::HostState;
use super::project::{PROJECT, require_root, require_rootfs};
use super::redactions::redact;
use super::rootless::RootlessCheckout;
use super::transcript::{Run, shell_words, transcript_of};

/// One of the workbook's programs: step `number`, which `just stepN` runs.
#[derive(Clone, Copy)]
pub struct Step {
    pub number: u8,
    /// `stepN`, as `just` and the transcripts name it.
    pub name: &'static str,
    pub exe: &'static str,
}

/// Step N: its number, and its name and binary, which are made from it.
macro_rules! step {
    ($number:literal) => {
        Step {
            number: $number,
            name: concat!("step", $number),
            exe: env!(concat!("CARGO_BIN_EXE_step", $number)),
        }
    };
}

pub const STEP1: Step = step!(1);
pub const STEP2: Step = step!(2);
pub const STEP3: Step = step!(3);
pub const STEP4: Step = step!(4);
pub const STEP5: Step = step!(5);

/// Every step, in order.
pub const STEPS: [Step; 5] = [STEP1, STEP2, STEP3, STEP4, STEP5];

impl Step {
    /// `just stepN ARGS…`: run the step as root, as the `just` recipe does, and
    /// check that it left the host as it found it. Steps 2 to 4 run it rootless too (book:
    /// chapter 2, Without root), and must show the same, whoever started them: the learner
    /// without sudo runs the book's commands too.
    pub fn run(&self, args: &[&str]) -> Run {
        let root = self.run_as_root(args);
        if (2..=4).contains(&self.number) {
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
        if self.number >= 3 {
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

    /// The same run by a learner without root, to compare with root's: `run_rootless`, or,
    /// for `--user`, `run_rootless_with_ids`. That is the one difference allowed between the
    /// two: a learner without root has no other user in the container (their user namespace
    /// maps one ID, their own, to its root) unless root gave them a range of subordinate IDs
    /// in /etc/subuid and /etc/subgid. tests/rootless.rs tests it both ways:
    /// `another_user_is_refused_with_the_way_out` without the range, and
    /// `with_ids_of_its_own_the_container_has_users` with it.
    fn run_rootless_like_root(&self, args: &[&str]) -> Run {
        match args.contains(&"--user") {
            true => self.run_rootless_with_ids(args),
            false => self.run_rootless(args),
        }
    }

    /// Run `command` in a checkout of its own, shown as `SHOWN_AS` and the step's name.
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
    // Only stdin, stdout and stderr, as a terminal's fresh shell has: whatever else the
    // test process inherited (cargo's, the developer's shell's) would shift the descriptors
    // that `-v` shows. SAFETY: close_range is a system call, safe between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let closed = nix::libc::syscall(nix::libc::SYS_close_range, 3, u32::MAX, 0);
            if closed < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    command
}

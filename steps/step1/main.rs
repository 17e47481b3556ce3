//! Step 1: the skeleton (book: chapter 1).
//!
//! `step1 run CMD…` starts a copy of itself, `/proc/self/exe child CMD…`, and
//! that copy becomes CMD. Nothing is isolated yet: this is the shape that the
//! next steps fill in, the way the Go article's `main`, `parent` and `child` do.

// ANCHOR: use
use std::ffi::CString;
use std::io::{self, IsTerminal};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use clap::{Args, Parser, Subcommand};
use color_eyre::Section;
use color_eyre::config::{HookBuilder, Theme};
use color_eyre::eyre::{Report, Result, WrapErr};
use nix::sched::{CloneFlags, clone};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, execv};
// ANCHOR_END: use

#[derive(Parser)]
#[command(
    name = "step1",
    about = "Step 1, the skeleton: `run` re-executes itself as `child`, which runs CMD (book: chapter 1).",
    after_help = "Example: just step1 run echo hello"
)]
// ANCHOR: Cli
struct Cli {
    #[command(subcommand)]
    role: Role,
}
// ANCHOR_END: Cli

// ANCHOR: Role
#[derive(Subcommand)]
enum Role {
    /// Run CMD in a container
    Run(Container),
    /// What runs inside the container: `run` starts it as `/proc/self/exe child …`
    #[command(hide = true)]
    Child(Container),
}
// ANCHOR_END: Role

// ANCHOR: Container
/// What to run, and how. `run` hands all its arguments on to `child` unchanged.
#[derive(Args)]
struct Container {
    /// Narrate, on stderr, each system call that makes the container
    #[arg(short, long)]
    verbose: bool,

    /// The command to run, and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}
// ANCHOR_END: Container

// ANCHOR: main
fn main() -> ExitCode {
    // A bad flag or a missing CMD: clap prints the usage and exits with status 2.
    let cli = Cli::parse();
    // Errors print as one screen: what failed, why, and a `Suggestion:` saying what to do.
    // Colours only on a terminal, so that piped output stays plain.
    let theme = match io::stderr().is_terminal() {
        true => Theme::dark(),
        false => Theme::new(),
    };
    HookBuilder::default()
        .display_env_section(false)
        .theme(theme)
        .install()
        .expect("the error report is installed once");

    let result = match &cli.role {
        Role::Run(container) => parent(container),
        Role::Child(container) => child(container),
    };
    result.unwrap_or_else(|report| {
        eprintln!("Error: {report:?}");
        ExitCode::FAILURE
    })
}
// ANCHOR_END: main

// ANCHOR: parent
/// On the host: start the container, wait for it, and exit with its status.
fn parent(container: &Container) -> Result<ExitCode> {
    let child = start_child(container)?;

    // Ctrl-C and Ctrl-\ go to every process in the terminal's foreground group,
    // the container included. Let the container decide what they mean, and keep
    // waiting for its status, as system(3) does.
    // SAFETY: SIG_IGN installs no handler, so no code of ours runs in a signal context.
    unsafe {
        signal(Signal::SIGINT, SigHandler::SigIgn)?;
        signal(Signal::SIGQUIT, SigHandler::SigIgn)?;
    }

    let status = waitpid(child, None).wrap_err("waitpid on the container failed")?;
    narrate(container.verbose, &format!("waitpid({child}) = {status:?}"));
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: parent

// ANCHOR: start_child
/// clone(2) a new process that re-executes this program as `child`.
fn start_child(container: &Container) -> Result<Pid> {
    let flags = namespaces();
    // `run ARGS…` becomes `/proc/self/exe child ARGS…`: the child parses what we parsed.
    let argv: Vec<CString> = ["/proc/self/exe".to_string(), "child".to_string()]
        .into_iter()
        .chain(std::env::args().skip(2))
        .map(|arg| CString::new(arg).expect("arguments from the command line hold no NUL"))
        .collect();
    let verbose = container.verbose;

    narrate(verbose, &format!("clone({})", flag_names(flags)));
    let mut stack = vec![0u8; 1024 * 1024];
    // SAFETY: this program is single-threaded, so the new process is a plain copy
    // of it, as after fork(2), running on its own stack; all it does is exec.
    let child = unsafe {
        clone(
            Box::new(|| {
                narrate(verbose, &format!("execv(\"/proc/self/exe\", {argv:?})"));
                let error = execv(c"/proc/self/exe", &argv).unwrap_err();
                eprintln!("Error: cannot re-execute /proc/self/exe: {error}");
                127
            }),
            &mut stack,
            flags,
            Some(Signal::SIGCHLD as i32),
        )
    };
    child.wrap_err_with(|| format!("clone({}) failed", flag_names(flags)))
}
// ANCHOR_END: start_child

// ANCHOR: namespaces
/// The namespaces the child starts in: none yet, it shares all of ours.
fn namespaces() -> CloneFlags {
    CloneFlags::empty()
}
// ANCHOR_END: namespaces

// ANCHOR: child
/// Inside the container: become the command.
fn child(container: &Container) -> Result<ExitCode> {
    let command = &container.command;
    narrate(container.verbose, &format!("execvp({:?}, {command:?})", command[0]));
    let error = Command::new(&command[0]).args(&command[1..]).exec();

    // exec only returns when it failed. Say so the way a shell does: status 127
    // for a command that is not there, 126 for one that is there but cannot run.
    let status = match error.kind() {
        io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    let report = Report::new(error)
        .wrap_err(format!("cannot run {:?}", command[0]))
        .suggestion("check the command's name, or give its full path");
    eprintln!("Error: {report:?}");
    Ok(ExitCode::from(status))
}
// ANCHOR_END: child

// ANCHOR: exit_code
/// The container's status becomes ours: its exit code, or 128+N when signal N
/// killed it, as a shell reports it.
fn exit_code(status: WaitStatus) -> u8 {
    match status {
        WaitStatus::Exited(_, code) => code as u8,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as u8,
        other => unreachable!("waitpid without WUNTRACED reported {other:?}"),
    }
}
// ANCHOR_END: exit_code

// ANCHOR: flag_names
/// "CLONE_NEWUTS|CLONE_NEWPID|SIGCHLD" for the narration. SIGCHLD is not a
/// namespace: it is the signal the kernel sends us when the child ends.
fn flag_names(flags: CloneFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    [names, vec!["SIGCHLD"]].concat().join("|")
}
// ANCHOR_END: flag_names

// ANCHOR: narrate
/// `-v`: one line per system call that makes the container, like contained.c's
/// `=> doing X… done.` lines.
fn narrate(verbose: bool, call: &str) {
    if verbose {
        eprintln!("=> {call}");
    }
}
// ANCHOR_END: narrate

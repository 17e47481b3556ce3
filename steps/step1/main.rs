//! Step 1: the skeleton (book: chapter 1).
//!
//! `step1 run CMD…` starts a copy of itself, `/proc/self/exe child CMD…`, and
//! that copy becomes CMD. Nothing is isolated yet: this is the shape that the
//! next steps fill in, the way the Go article's `main`, `parent` and `child` do.

mod narrate;

// ANCHOR: use
use std::ffi::CString;
use std::fs;
use std::io::{self, IsTerminal};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use clap::{Args, Parser, Subcommand};
use color_eyre::Section;
use color_eyre::config::{HookBuilder, Theme};
use color_eyre::eyre::{Report, Result, WrapErr, eyre};
use nix::sched::{CloneFlags, clone};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, execv};

use narrate::{Show, narrate};
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
    let (Role::Run(container) | Role::Child(container)) = &cli.role;
    narrate::set_verbose(container.verbose);

    let result = match &cli.role {
        Role::Run(_) => parent(),
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
fn parent() -> Result<ExitCode> {
    let child = start_child()?;

    // Ctrl-C and Ctrl-\ go to every process in the terminal's foreground group,
    // the container included. Let the container decide what they mean, and keep
    // waiting for its status, as system(3) does.
    // SAFETY: SIG_IGN installs no handler, so no code of ours runs in a signal context.
    unsafe {
        signal(Signal::SIGINT, SigHandler::SigIgn)?;
        signal(Signal::SIGQUIT, SigHandler::SigIgn)?;
    }

    let status = narrate!(waitpid(child, None)).wrap_err("cannot wait for the container")?;
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: parent

// ANCHOR: start_child
/// clone(2) a new process that re-executes this program as `child`.
fn start_child() -> Result<Pid> {
    let flags = namespaces();
    // `run ARGS…` becomes `/proc/self/exe child ARGS…`: the child parses what we parsed.
    let argv: Vec<CString> = ["/proc/self/exe".to_string(), "child".to_string()]
        .into_iter()
        .chain(std::env::args().skip(2))
        .map(|arg| CString::new(arg).expect("arguments from the command line hold no NUL"))
        .collect();
    let exit_signal = Signal::SIGCHLD;
    let clone_call = narrate::Call::new("clone", vec![clone_flags(flags, exit_signal)]);
    let mut stack = vec![0u8; 1024 * 1024];
    only_one_thread()?;
    // SAFETY: the new process is a copy of this one, as after fork(2), running on
    // its own stack. We have just checked that this program runs one thread: the
    // copy then holds no lock that another thread held, so it may allocate and
    // call anything until it execs.
    let child = unsafe {
        clone(
            Box::new(|| {
                let error = narrate!(execv(c"/proc/self/exe", &argv)).unwrap_err();
                eprintln!("Error: cannot re-execute /proc/self/exe: {error}");
                127
            }),
            &mut stack,
            flags,
            Some(exit_signal as i32),
        )
    };
    clone_call.returned(&child);
    child.wrap_err_with(|| format!("cannot clone({})", clone_flags(flags, exit_signal)))
}
// ANCHOR_END: start_child

// ANCHOR: only_one_thread
/// clone(2) copies the calling thread alone: with another thread running, the
/// copy could inherit a lock it held, such as the allocator's, locked for good.
/// So check, from the kernel's list of our threads, that there is no other.
fn only_one_thread() -> Result<()> {
    let threads = fs::read_dir("/proc/self/task").wrap_err("cannot list /proc/self/task")?;
    match threads.count() {
        1 => Ok(()),
        n => Err(eyre!("cannot clone: the runtime runs {n} threads, and may run only one")),
    }
}
// ANCHOR_END: only_one_thread

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
    let execvp = narrate::Call::new("execvp", vec![command[0].show(), command.show()]);
    let error = Command::new(&command[0]).args(&command[1..]).exec();
    execvp.failed(&error);

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

// ANCHOR: clone_flags
/// clone(2)'s flags as C ORs them, "CLONE_NEWUTS|CLONE_NEWPID|SIGCHLD". SIGCHLD is
/// not a namespace: it is the signal the kernel sends us when the child ends.
fn clone_flags(flags: CloneFlags, exit_signal: Signal) -> String {
    match flags.is_empty() {
        true => exit_signal.show(),
        false => format!("{}|{}", flags.show(), exit_signal.show()),
    }
}
// ANCHOR_END: clone_flags

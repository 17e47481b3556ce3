//! Step 2: namespaces (book: chapter 2).
//!
//! The child is cloned into new namespaces: UTS, PID, mount, IPC and network.
//! It gets its own hostname, its own PID numbering (it is PID 1), its own mount
//! table, which it first makes private so that nothing it mounts reaches the
//! host, its own System V IPC objects, and a network of its own with nothing
//! in it but the loopback interface, which it brings up.
//!
//! Run by a user who is not root, it asks for a user namespace too, whose root
//! is that user: the other namespaces then need no root on the host.

mod narrate;
mod rootless;

// ANCHOR: use
use std::ffi::CString;
use std::fs;
use std::io::{self, IsTerminal};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use clap::{Args, Parser, Subcommand};
use color_eyre::Section;
use color_eyre::config::{HookBuilder, Theme};
use color_eyre::eyre::{Report, Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, clone};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, Uid, close, execv, pipe2, read, sethostname, write};

use narrate::{Show, narrate};
// ANCHOR_END: use

#[derive(Parser)]
#[command(
    name = "step2",
    about = "Step 2, namespaces: its own hostname, PIDs, mounts, IPC and network (book: chapter 2).",
    after_help = "Example: just step2 run --hostname box sh -c 'hostname; echo my PID is $$'"
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

    /// As root, put the container in a user namespace too, its IDs 0-65535
    /// being the host's ID to ID+65535, as dockerd's --userns-remap
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u32).range(1..=4_294_901_759))]
    userns_remap: Option<u32>,

    /// The hostname inside the container (the host's does not change)
    #[arg(long, default_value = "container")]
    hostname: String,

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
    // Not root: the namespaces come inside a user namespace of our own. As
    // root, they do when --userns-remap asks.
    let rootless = !Uid::effective().is_root();
    let user_namespace = rootless::user_namespace(rootless, container.userns_remap)?;
    let child = start_child(container, user_namespace)?;

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
/// clone(2) a new process that re-executes this program as `child`, once
/// its IDs are mapped if it has a user namespace.
fn start_child(container: &Container, user_namespace: bool) -> Result<Pid> {
    let mut flags = namespaces();
    if user_namespace {
        // The kernel makes the user namespace first, and it owns the others.
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // `run ARGS…` becomes `/proc/self/exe child ARGS…`: the child parses what we parsed.
    let argv: Vec<CString> = ["/proc/self/exe".to_string(), "child".to_string()]
        .into_iter()
        .chain(std::env::args().skip(2))
        .map(|arg| CString::new(arg).expect("arguments from the command line hold no NUL"))
        .collect();
    let remap = container.userns_remap;
    // The child waits on this pipe until we say go: in a user namespace, it must
    // not exec before its IDs are mapped, or it loses its capabilities.
    let (wait, go) = pipe2(OFlag::O_CLOEXEC).wrap_err("cannot make a pipe")?;

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
                if !wait_for_go(&wait, &go) {
                    return 1; // the runtime failed, and says why
                }
                if let Err(report) = rootless::become_root(remap) {
                    eprintln!("Error: {report:?}");
                    return 1;
                }
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
    let suggestion = match child {
        Err(Errno::EPERM) => "creating namespaces needs root or a user namespace: use `sudo`",
        _ => "see the book's Troubleshooting appendix",
    };
    let child = child
        .wrap_err_with(|| format!("cannot clone({})", clone_flags(flags, exit_signal)))
        .suggestion(suggestion)?;
    if user_namespace {
        rootless::write_id_maps(child, remap)?;
    }
    write(&go, b"!").wrap_err("cannot tell the container to go on")?;
    Ok(child)
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

// ANCHOR: wait_for_go
/// In the new process: wait until the runtime says go. If it failed first, the
/// pipe ends empty (we close our own copy of its write end, or we would wait
/// for ourselves).
fn wait_for_go(wait: &OwnedFd, go: &OwnedFd) -> bool {
    let _ = close(go.as_raw_fd());
    read(wait, &mut [0]) == Ok(1)
}
// ANCHOR_END: wait_for_go

// ANCHOR: namespaces
/// The namespaces the child starts in: new UTS (hostname), PID and mount
/// namespaces, as the Go article's Cloneflags, and new IPC (shared memory,
/// message queues) and network namespaces too.
fn namespaces() -> CloneFlags {
    CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
}
// ANCHOR_END: namespaces

// ANCHOR: child
/// Inside the container: set it up, then become the command.
fn child(container: &Container) -> Result<ExitCode> {
    make_mounts_private()?;
    set_hostname(container)?;
    bring_up_loopback()?;

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

// ANCHOR: make_mounts_private
/// Our new mount namespace starts as a copy of the host's, and on a systemd
/// host every mount in it is *shared*: whatever we mount would propagate back
/// to the host. Go makes them private for you only when CLONE_NEWNS is in
/// `Unshareflags` (Liz Rice's version); with `Cloneflags`, as in the article,
/// and in Rust, no one does. So we do, before any other mount (book: chapter
/// 2, "shared mounts").
fn make_mounts_private() -> Result<()> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    narrate!(mount(None::<&str>, "/", None::<&str>, flags, None::<&str>))
        .wrap_err("cannot make the container's mounts private")
}
// ANCHOR_END: make_mounts_private

// ANCHOR: set_hostname
/// The new UTS namespace has its own hostname: changing it leaves the host's alone.
fn set_hostname(container: &Container) -> Result<()> {
    narrate!(sethostname(&container.hostname))
        .wrap_err_with(|| format!("cannot set the hostname to {:?}", container.hostname))
}
// ANCHOR_END: set_hostname

// ANCHOR: bring_up_loopback
/// A new network namespace has one interface, the loopback `lo`, and it is
/// down. Bring it up, as `ip link set lo up` does: the container can reach
/// its own services on 127.0.0.1, and nothing else.
fn bring_up_loopback() -> Result<()> {
    let socket = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .wrap_err("cannot open a socket to configure lo")?;
    // SAFETY: ifreq is plain data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_name[0] = b'l' as libc::c_char;
    request.ifr_name[1] = b'o' as libc::c_char;
    request.ifr_ifru.ifru_flags = libc::IFF_UP as libc::c_short;

    let ioctl = narrate::Call::new(
        "ioctl",
        vec![socket.as_raw_fd().show(), "SIOCSIFFLAGS".to_string(), request.show()],
    );
    // SAFETY: SIOCSIFFLAGS reads one ifreq, and `request` is one. (`libc::Ioctl`:
    // glibc and musl give the request different types.)
    let result =
        unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &request) };
    let result = Errno::result(result).map(drop);
    ioctl.returned(&result);
    result.wrap_err("cannot bring up the loopback interface")
}
// ANCHOR_END: bring_up_loopback

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

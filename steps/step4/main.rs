//! Step 4: a real container environment (book: chapter 4).
//!
//! What a container runtime sets up before the user's command runs, one idea
//! to a file, each a part of chapter 4:
//! - `init.rs`: our own init is PID 1; it reaps orphans and passes signals on;
//! - `filesystems.rs`: the host's old root gone, fresh /proc, /sys, /dev, /tmp;
//! - `privileges.rs`: the command's own user, fewer capabilities,
//!   no_new_privs and resource limits;
//! - `seccomp.rs`: the system calls Docker refuses, refused;
//! - `stdio.rs`: stdin, stdout and stderr of its own, and a terminal, relayed;
//! - `rootless.rs`, from step 2: the user namespace of a run without root,
//!   and now the IDs of your own that a rootless `--user` needs;
//! - `narrate.rs`, from step 1: the `-v` lines, now with a reason.
//!
//! This file keeps the plan: `parent` and `child` call them in order.

mod filesystems;
mod init;
mod narrate;
mod privileges;
mod rootless;
mod seccomp;
mod stdio;

// ANCHOR: use
use std::convert::Infallible;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, Uid, close, execv, pipe2, read, sethostname, write};

use narrate::{Show, narrate};
use privileges::{Ulimit, User};
// ANCHOR_END: use

#[derive(Parser)]
#[command(
    name = "step4",
    about = "Step 4, environment: our init, fresh mounts, a restricted user, limits (book: chapter 4).",
    after_help = "Example: just step4 run --user learner --ulimit nofile=256 /bin/sh"
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
    Child {
        /// Which of stdin, stdout and stderr are on the caller's terminal: the
        /// container's own terminal goes there (stdio.rs)
        #[arg(long, value_delimiter = ',')]
        console: Vec<RawFd>,
        #[command(flatten)]
        container: Container,
    },
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

    /// The hostname inside the container [default: a random 12-digit id]
    #[arg(long)]
    hostname: Option<String>,

    /// The directory that becomes the container's `/` (`just rootfs` fills it)
    #[arg(long, default_value = "rootfs")]
    rootfs: PathBuf,

    /// Write to rootfs/ itself, as step 3 does [default: to a layer thrown away after]
    #[arg(long)]
    writable: bool,

    /// The most the container may write to its layer over rootfs/, and to /tmp,
    /// each: bytes, or a number with k, m or g; held in memory
    #[arg(long, value_name = "SIZE", default_value = "256m", value_parser = filesystems::parse_size)]
    tmpfs_size: u64,

    /// Run the command as this user: NAME or UID, then :GROUP or :GID if you like
    #[arg(long, default_value = "root")]
    user: String,

    /// A resource limit, NAME=SOFT[:HARD] (e.g. nofile=1024:4096); repeat for more
    #[arg(long = "ulimit", value_name = "LIMIT", value_parser = privileges::parse_ulimit)]
    ulimits: Vec<Ulimit>,

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
    let (Role::Run(container) | Role::Child { container, .. }) = &cli.role;
    narrate::set_verbose(container.verbose);

    let result = match &cli.role {
        Role::Run(container) => parent(container),
        Role::Child { console, container } => child(container, console),
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
    check_rootfs(&container.rootfs)?;
    // Not root: the namespaces come inside a user namespace of our own. As
    // root, they do when --userns-remap asks.
    let rootless = !Uid::effective().is_root();
    let user_namespace = rootless::user_namespace(rootless, container.userns_remap)?;
    let signals = init::block_signals()?;
    // The container's stdin, stdout and stderr, and the runtime's ends of them
    // (part 5): dropped on every way out of here, they give the terminal back.
    let (theirs, ours) = stdio::prepare()?;
    let child = start_child(container, user_namespace, theirs)?;
    let status = stdio::relay(child, &signals, ours)?;
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: parent

// ANCHOR: start_child
/// clone(2) a new process that re-executes this program as `child`, once
/// its IDs are mapped if it has a user namespace, with `theirs` as its stdio.
fn start_child(container: &Container, user_namespace: bool, theirs: stdio::Theirs) -> Result<Pid> {
    let mut flags = namespaces();
    if user_namespace {
        // The kernel makes the user namespace first, and it owns the others.
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // The child waits on this pipe until we say go: in a user namespace, it must
    // not exec before its IDs are mapped, or it loses its capabilities.
    let (wait, go) = pipe2(OFlag::O_CLOEXEC).wrap_err("cannot make a pipe")?;
    // The child reads this pipe to learn that the runtime is alive (init::die_with_runtime).
    let (alive, runtime) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).wrap_err("cannot make a pipe")?;
    let argv = argv(&theirs.console);
    let start = Start { wait, go, alive, runtime, theirs, remap: container.userns_remap, argv };

    let exit_signal = Signal::SIGCHLD;
    let clone_call = narrate::Call::new("clone", vec![clone_flags(flags, exit_signal)]);
    let mut stack = vec![0u8; 1024 * 1024];
    only_one_thread()?;
    // SAFETY: the new process is a copy of this one, as after fork(2), running on
    // its own stack. We have just checked that this program runs one thread: the
    // copy then holds no lock that another thread held, so it may allocate and
    // call anything until it execs, as new_process does.
    let child = unsafe {
        clone(
            Box::new(|| {
                // It returns only when something failed (exec never returns when it works).
                let Err(report) = new_process(&start);
                eprintln!("Error: {report:?}");
                1
            }),
            &mut stack,
            flags,
            Some(exit_signal as i32),
        )
    };
    clone_call.returned(&child);
    // Never closed by us: the kernel closes it when the runtime exits, however it exits.
    let _ = start.runtime.into_raw_fd();
    let suggestion = match child {
        Err(Errno::EPERM) => "creating namespaces needs root or a user namespace: use `sudo`",
        _ => "see the book's Troubleshooting appendix",
    };
    let child = child
        .wrap_err_with(|| format!("cannot clone({})", clone_flags(flags, exit_signal)))
        .suggestion(suggestion)?;
    let mapped = match user_namespace {
        true => rootless::write_id_maps(child, container.userns_remap),
        false => Ok(()),
    };
    let told = mapped.and_then(|()| {
        write(&start.go, b"!").wrap_err("cannot tell the container to go on")?;
        Ok(child)
    });
    // Without its go, the child would end saying that we ended: it ends now, unheard.
    told.inspect_err(|_| {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
    })
}

/// `run ARGS…` becomes `/proc/self/exe child ARGS…`: the child parses what we
/// parsed. With `--console 0,1,2` before them, when streams are on the caller's terminal.
fn argv(console: &[RawFd]) -> Vec<CString> {
    let mut argv = vec!["/proc/self/exe".to_string(), "child".to_string()];
    if !console.is_empty() {
        let streams: Vec<String> = console.iter().map(RawFd::to_string).collect();
        argv.extend(["--console".to_string(), streams.join(",")]);
    }
    argv.extend(std::env::args().skip(2));
    argv.into_iter()
        .map(|arg| CString::new(arg).expect("arguments from the command line hold no NUL"))
        .collect()
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

// ANCHOR: new_process
/// What the new process is given: the ends of two pipes, its stdio, and what
/// to become.
struct Start {
    /// Read until the runtime says go; `go` is the runtime's end.
    wait: OwnedFd,
    go: OwnedFd,
    /// Read to learn that the runtime lives; `runtime` is the runtime's end.
    alive: OwnedFd,
    runtime: OwnedFd,
    /// What become its stdin, stdout and stderr, and descriptor 3 (part 5).
    theirs: stdio::Theirs,
    remap: Option<u32>,
    argv: Vec<CString>,
}

/// The new process, from clone(2) until it becomes `child` by exec (the clone
/// callback): what it does, in the order it must, each call with what it must
/// come after. It returns only when something failed.
fn new_process(start: &Start) -> Result<Infallible> {
    // First of all: in a user namespace, the runtime writes our ID maps meanwhile,
    // and until then we are nobody there.
    wait_for_go(&start.wait, &start.go)?;
    // After the go: it needs the ID maps.
    rootless::become_root(start.remap)?;
    // After become_root: a change of user clears PR_SET_PDEATHSIG.
    init::die_with_runtime(&start.alive, &start.runtime)?;
    init::own_session()?;
    // Just before the exec: the descriptors it moves are at 0 to 3 from then on.
    start.theirs.hand_over()?;
    // Last: become `child`, our init in the container.
    let error = narrate!(execv(c"/proc/self/exe", &start.argv)).unwrap_err();
    Err(error).wrap_err("cannot re-execute /proc/self/exe")
}
// ANCHOR_END: new_process

// ANCHOR: wait_for_go
/// In the new process: wait until the runtime says go. If it ended first, the
/// pipe ends empty (we close our own copy of its write end, or we would wait
/// for ourselves).
fn wait_for_go(wait: &OwnedFd, go: &OwnedFd) -> Result<()> {
    let _ = close(go.as_raw_fd());
    match read(wait, &mut [0]) {
        Ok(1) => Ok(()),
        _ => Err(eyre!("the runtime ended before it said go")),
    }
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
/// Inside the container, as its PID 1: set it up, start the command, and stay
/// on as its init until it ends.
fn child(container: &Container, console: &[RawFd]) -> Result<ExitCode> {
    init::close_inherited_files()?;
    // SAFETY: the runtime put its socket at 3 (stdio::Theirs::hand_over), and no
    // other part of us owns that descriptor.
    let control = unsafe { OwnedFd::from_raw_fd(stdio::CONTROL) };
    let signals = init::block_signals()?;
    make_mounts_private()?;
    let hostname = set_hostname(container)?;
    bring_up_loopback()?;
    filesystems::enter_rootfs(&container.rootfs, container.writable, container.tmpfs_size)?;
    filesystems::mount_filesystems(container.tmpfs_size)?;
    filesystems::drop_old_root(&container.rootfs)?;
    let user = privileges::find_user(&container.user)?;
    stdio::make_console(&control, console)?;
    drop(control); // the runtime's sign that we are ready (part 5)

    let become_command = || restrict_and_exec(container, &user, &hostname, &signals);
    let command = init::start_command(become_command)?;
    let status = init::supervise(command, &signals)?;
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: child

// ANCHOR: restrict_and_exec
/// In the command's own process: the restrictions that are the command's
/// alone, then exec. Our init stays as it is, so that it can supervise.
fn restrict_and_exec(
    container: &Container,
    user: &User,
    hostname: &str,
    signals: &SigSet,
) -> Result<u8> {
    signals.thread_unblock().wrap_err("cannot unblock signals")?; // the command's own to handle
    privileges::restrict(user, &container.ulimits)?;
    seccomp::refuse_system_calls()?;

    let command = &container.command;
    let execvp = narrate::Call::new("execvp", vec![command[0].show(), command.show()]);
    // The host's PATH means nothing in the rootfs: look the command up in the
    // container's own directories, so that `run sh` finds /bin/sh.
    // A clean environment: nothing of the host's leaks in but the terminal's type.
    let error = Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .env("PATH", CONTAINER_PATH)
        .env("HOME", &user.home)
        .env("HOSTNAME", hostname)
        .envs(std::env::var_os("TERM").map(|term| ("TERM", term)))
        .exec();
    execvp.failed(&error);

    // exec only returns when it failed. Say so the way a shell does: status 127
    // for a command that is not there, 126 for one that is there but cannot run.
    let status = match error.kind() {
        io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    let report = Report::new(error)
        .wrap_err(format!(
            "cannot run {:?} in the container (rootfs {:?}, PATH={CONTAINER_PATH})",
            command[0], container.rootfs
        ))
        .suggestion("the container sees only its rootfs: try `ls /bin` in it, or add the program to the rootfs");
    eprintln!("Error: {report:?}");
    Ok(status)
}
// ANCHOR_END: restrict_and_exec

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
/// Without `--hostname`, a random id, as docker gives.
fn set_hostname(container: &Container) -> Result<String> {
    let hostname = match &container.hostname {
        Some(hostname) => hostname.clone(),
        None => random_id()?,
    };
    narrate!(sethostname(&hostname))
        .wrap_err_with(|| format!("cannot set the hostname to {hostname:?}"))?;
    Ok(hostname)
}
// ANCHOR_END: set_hostname

// ANCHOR: random_id
/// 12 hex digits of the kernel's randomness, like a docker container's short id.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .wrap_err("cannot read /dev/urandom, for a random hostname")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
// ANCHOR_END: random_id

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

// ANCHOR: CONTAINER_PATH
/// Where the container looks for commands: the usual directories of a Linux root.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// ANCHOR_END: CONTAINER_PATH

// ANCHOR: check_rootfs
/// Fail early, with the fix, when `--rootfs` is not a root filesystem we can use.
fn check_rootfs(rootfs: &Path) -> Result<()> {
    let problem = if !rootfs.is_dir() {
        "there is no such directory"
    } else if rootfs.join("bin/sh").symlink_metadata().is_err() {
        // symlink_metadata: bin/sh may be an absolute link, which resolves only inside the rootfs.
        "it has no bin/sh"
    } else {
        return Ok(());
    };
    Err(eyre!("no root filesystem at {rootfs:?}: {problem}"))
        .suggestion("run `just rootfs` to build one with busybox, or pass --rootfs DIR")
}
// ANCHOR_END: check_rootfs

// ANCHOR: exit_code
/// The container's status becomes ours: its exit code, or 128+N when signal N
/// killed it, as a shell reports it.
fn exit_code(status: WaitStatus) -> u8 {
    match status {
        WaitStatus::Exited(_, code) => code as u8,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as u8,
        other => unreachable!("supervise returns an exit or a death, not {other:?}"),
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

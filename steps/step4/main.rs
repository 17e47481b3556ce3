//! Step 4: a real container environment (book: chapter 4).
//!
//! What a container runtime sets up before the user's command runs: our own
//! init as PID 1 (it reaps orphans and passes signals on), fresh /proc, /sys,
//! /dev and /tmp, the host's old root gone, IPC and network namespaces, and a
//! command that runs restricted: its own user, Docker's default capabilities
//! but CAP_MKNOD, no_new_privs and resource limits.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use caps::{CapSet, Capability};
use clap::{Args, Parser, Subcommand};
use color_eyre::Section;
use color_eyre::config::{HookBuilder, Theme};
use color_eyre::eyre::{Report, Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, clone};
use nix::sys::prctl;
use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, chdir, close, execv, fork, pipe2, pivot_root, read};
use nix::unistd::{setgid, setgroups, sethostname, setuid};

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

    /// The hostname inside the container [default: a random 12-digit id]
    #[arg(long)]
    hostname: Option<String>,

    /// The directory that becomes the container's `/` (`just rootfs` fills it)
    #[arg(long, default_value = "rootfs")]
    rootfs: PathBuf,

    /// Run the command as this user: NAME or UID, then :GROUP or :GID if you like
    #[arg(long, default_value = "root")]
    user: String,

    /// A resource limit, NAME=SOFT[:HARD] (e.g. nofile=1024:4096); repeat for more
    #[arg(long = "ulimit", value_name = "LIMIT", value_parser = parse_ulimit)]
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
    check_rootfs(&container.rootfs)?;
    let signals = block_signals()?;
    let child = start_child(container)?;
    let status = supervise(child, &signals, container.verbose)?;
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: parent

// ANCHOR: start_child
/// clone(2) a new process that re-executes this program as `child`.
fn start_child(container: &Container) -> Result<Pid> {
    // New UTS (hostname), PID and mount namespaces, as the Go article's Cloneflags,
    // and new IPC (shared memory, message queues) and network namespaces too.
    let flags = CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    // `run ARGS…` becomes `/proc/self/exe child ARGS…`: the child parses what we parsed.
    let argv: Vec<CString> = ["/proc/self/exe".to_string(), "child".to_string()]
        .into_iter()
        .chain(std::env::args().skip(2))
        .map(|arg| CString::new(arg).expect("arguments from the command line hold no NUL"))
        .collect();
    let verbose = container.verbose;
    // The child reads this pipe to learn that the runtime is alive (`die_with_runtime`).
    let (alive, runtime) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).wrap_err("pipe2 failed")?;

    narrate(verbose, &format!("clone({})", flag_names(flags)));
    let mut stack = vec![0u8; 1024 * 1024];
    // SAFETY: this program is single-threaded, so the new process is a plain copy
    // of it, as after fork(2), running on its own stack; all it does is exec.
    let child = unsafe {
        clone(
            Box::new(|| {
                let _ = close(runtime.as_raw_fd()); // our copy: only the runtime may hold it
                if let Err(report) = die_with_runtime(&alive, verbose) {
                    eprintln!("Error: {report:?}");
                    return 1;
                }
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
    // Never closed by us: the kernel closes it when the runtime exits, however it exits.
    let _ = runtime.into_raw_fd();
    let suggestion = match child {
        Err(Errno::EPERM) => "creating namespaces needs root: use `sudo`, or `just step4 run …`",
        _ => "see the book's Troubleshooting appendix",
    };
    child.wrap_err_with(|| format!("clone({}) failed", flag_names(flags))).suggestion(suggestion)
}
// ANCHOR_END: start_child

// ANCHOR: die_with_runtime
/// In the new process, first of all: if the runtime dies, even by SIGKILL, its
/// container must die with it. PR_SET_PDEATHSIG asks the kernel for that, but
/// only from now on: a runtime that died a moment earlier is missed. Inside
/// the new PID namespace getppid() says 0, so ask the pipe: the runtime holds
/// its write end open as long as it lives, and a read finds EOF once no
/// writer is left (book: chapter 4, "PID 1").
fn die_with_runtime(alive: &OwnedFd, verbose: bool) -> Result<()> {
    narrate(verbose, "prctl(PR_SET_PDEATHSIG, SIGKILL)");
    prctl::set_pdeathsig(Signal::SIGKILL).wrap_err("prctl(PR_SET_PDEATHSIG) failed")?;
    narrate(verbose, "read(pipe) = EAGAIN: the runtime is alive");
    match read(alive, &mut [0]) {
        Err(Errno::EAGAIN) => Ok(()),
        _ => Err(eyre!("the runtime died before its container started")),
    }
}
// ANCHOR_END: die_with_runtime

// ANCHOR: child
/// Inside the container, as its PID 1: set it up, start the command, and stay
/// on as its init until it ends.
fn child(container: &Container) -> Result<ExitCode> {
    let signals = block_signals()?;
    make_mounts_private(container.verbose)?;
    let hostname = set_hostname(container)?;
    bring_up_loopback(container.verbose)?;
    enter_rootfs(container)?;
    mount_filesystems(container.verbose)?;
    let user = find_user(&container.user)?;

    let command = start_command(container, &user, &hostname, &signals)?;
    let status = supervise(command, &signals, container.verbose)?;
    Ok(ExitCode::from(exit_code(status)))
}
// ANCHOR_END: child

// ANCHOR: FORWARDED
/// The signals that ask a program to stop, or to do something: a runtime
/// passes them on to the command, as docker and tini do.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];
// ANCHOR_END: FORWARDED

// ANCHOR: block_signals
/// Block the forwarded signals and SIGCHLD: they wait in a queue until
/// `supervise` reads them, so none is lost and none kills us meanwhile. (A
/// namespace's PID 1 gets no signal that it neither handles nor blocks.)
fn block_signals() -> Result<SigSet> {
    let mut signals: SigSet = FORWARDED.into_iter().collect();
    signals.add(Signal::SIGCHLD);
    signals.thread_block().wrap_err("cannot block signals")?;
    Ok(signals)
}
// ANCHOR_END: block_signals

// ANCHOR: supervise
/// Wait for `pid` to end and return its status, doing PID 1's duties meanwhile:
/// reap every child that ends (orphans in the container become ours), and pass
/// the forwarded signals on to `pid`. The runtime on the host runs this same
/// loop for its one child, our init (book: chapter 4, "PID 1").
fn supervise(pid: Pid, signals: &SigSet, verbose: bool) -> Result<WaitStatus> {
    let queue = SignalFd::new(signals).wrap_err("cannot read signals")?;
    loop {
        // Reap all that have ended: one SIGCHLD may stand for several.
        loop {
            let status = waitpid(None, Some(WaitPidFlag::WNOHANG)).wrap_err("waitpid failed")?;
            if status == WaitStatus::StillAlive {
                break;
            }
            narrate(verbose, &format!("waitpid(-1, WNOHANG) = {status:?}"));
            if status.pid() == Some(pid) {
                return Ok(status);
            }
        }
        let Some(info) = queue.read_signal().wrap_err("cannot read a signal")? else { continue };
        let signal = Signal::try_from(info.ssi_signo as i32)?;
        // Ctrl-C on a terminal comes from the kernel (SI_KERNEL) to the whole
        // foreground process group, the command included: passing it on as
        // well would deliver it twice.
        if signal != Signal::SIGCHLD && info.ssi_code != libc::SI_KERNEL {
            narrate(verbose, &format!("kill({pid}, {signal})"));
            let _ = kill(pid, signal); // it may have ended already: waitpid will say
        }
    }
}
// ANCHOR_END: supervise

// ANCHOR: start_command
/// fork(2) the user's command: it is PID 2, and our init is its parent.
fn start_command(
    container: &Container,
    user: &User,
    hostname: &str,
    signals: &SigSet,
) -> Result<Pid> {
    narrate(container.verbose, "fork()");
    // SAFETY: this program is single-threaded, so the child is a plain copy of
    // it; the child restricts itself and execs, or exits.
    match unsafe { fork() }.wrap_err("fork failed")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status =
                restrict_and_exec(container, user, hostname, signals).unwrap_or_else(|report| {
                    eprintln!("Error: {report:?}");
                    1
                });
            std::process::exit(status.into())
        }
    }
}
// ANCHOR_END: start_command

// ANCHOR: restrict_and_exec
/// In the command's own process: the restrictions that are the command's
/// alone, then exec. Our init stays as it is, so that it can supervise.
fn restrict_and_exec(
    container: &Container,
    user: &User,
    hostname: &str,
    signals: &SigSet,
) -> Result<u8> {
    let verbose = container.verbose;
    signals.thread_unblock().wrap_err("cannot unblock signals")?; // the command's own to handle
    set_resource_limits(&container.ulimits, verbose)?;
    drop_capabilities(verbose)?;
    switch_user(user, verbose)?;
    narrate(verbose, "prctl(PR_SET_NO_NEW_PRIVS, 1)");
    prctl::set_no_new_privs().wrap_err("cannot set no_new_privs")?;

    let command = &container.command;
    narrate(verbose, &format!("execvp({:?}, {command:?})", command[0]));
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
fn make_mounts_private(verbose: bool) -> Result<()> {
    narrate(verbose, "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)");
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
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
    narrate(container.verbose, &format!("sethostname({hostname:?})"));
    sethostname(&hostname).wrap_err_with(|| format!("cannot set the hostname to {hostname:?}"))?;
    Ok(hostname)
}
// ANCHOR_END: set_hostname

// ANCHOR: random_id
/// 12 hex digits of the kernel's randomness, like a docker container's short id.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    File::open("/dev/urandom").and_then(|mut urandom| urandom.read_exact(&mut bytes))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
// ANCHOR_END: random_id

// ANCHOR: bring_up_loopback
/// A new network namespace has one interface, the loopback `lo`, and it is
/// down. Bring it up, as `ip link set lo up` does: the container can reach
/// its own services on 127.0.0.1, and nothing else.
fn bring_up_loopback(verbose: bool) -> Result<()> {
    let socket = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .wrap_err("cannot open a socket to configure lo")?;
    // SAFETY: ifreq is plain data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_name[0] = b'l' as libc::c_char;
    request.ifr_name[1] = b'o' as libc::c_char;
    request.ifr_ifru.ifru_flags = libc::IFF_UP as libc::c_short;

    narrate(verbose, "ioctl(socket, SIOCSIFFLAGS, {ifr_name: \"lo\", ifr_flags: IFF_UP})");
    // SAFETY: SIOCSIFFLAGS reads one ifreq, and `request` is one.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    Errno::result(result).wrap_err("cannot bring up the loopback interface")?;
    Ok(())
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

// ANCHOR: enter_rootfs
/// Make the rootfs our `/`, and leave nothing of the host's tree behind.
/// pivot_root(2) wants the new root to be a mount point, so we bind-mount the
/// directory on itself first (book: chapter 3). Then we pivot as runc does,
/// with the new root as put_old too: `pivot_root(".", ".")` stacks the old root
/// on top of the new one, and a lazy unmount of "." takes it away, with all
/// that is mounted below it. No `oldrootfs/` is needed, so two containers
/// never share one (book: chapter 4, "the old root goes").
fn enter_rootfs(container: &Container) -> Result<()> {
    let rootfs = &container.rootfs;

    narrate(
        container.verbose,
        &format!("mount({rootfs:?}, {rootfs:?}, NULL, MS_BIND|MS_REC, NULL)"),
    );
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(rootfs), rootfs, None::<&str>, flags, None::<&str>)
        .wrap_err_with(|| format!("cannot bind-mount {rootfs:?} on itself"))?;

    narrate(container.verbose, &format!("chdir({rootfs:?})"));
    chdir(rootfs).wrap_err_with(|| format!("cannot chdir to {rootfs:?}"))?;

    narrate(container.verbose, "pivot_root(\".\", \".\")");
    pivot_root(".", ".")
        .wrap_err_with(|| format!("pivot_root(\".\", \".\") in {rootfs:?} refused"))
        .suggestion(
            "pivot_root needs a rootfs on a private mount: see the book's Troubleshooting appendix",
        )?;

    narrate(container.verbose, "umount2(\".\", MNT_DETACH)");
    umount2(".", MntFlags::MNT_DETACH).wrap_err("cannot unmount the old root")?;

    narrate(container.verbose, "chdir(\"/\")");
    chdir("/").wrap_err("cannot chdir to the new root")
}
// ANCHOR_END: enter_rootfs

// ANCHOR: mount_filesystems
/// The filesystems every Linux program expects, made fresh for the container
/// instead of shared with the host: its own processes in /proc, a read-only
/// /sys, a /dev with only harmless devices, and a private /tmp. Each is
/// nosuid, nodev and noexec where it can be (book: chapter 4, "mounts").
fn mount_filesystems(verbose: bool) -> Result<()> {
    let (nosuid, nodev, noexec) = (MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC);
    mount_fs("proc", "/proc", nosuid | nodev | noexec, "", verbose)?;
    make_read_only(&HOST_WIDE_PROC, verbose)?;
    mount_fs("sysfs", "/sys", MsFlags::MS_RDONLY | nosuid | nodev | noexec, "", verbose)?;
    mount_fs("tmpfs", "/dev", nosuid | noexec, "mode=755,size=65536k", verbose)?;
    make_devices(verbose)?;
    mount_fs("devpts", "/dev/pts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=620", verbose)?;
    mount_fs("tmpfs", "/dev/shm", nosuid | nodev | noexec, "mode=1777,size=65536k", verbose)?;
    mount_fs("tmpfs", "/tmp", nosuid | nodev, "mode=1777", verbose)
}
// ANCHOR_END: mount_filesystems

// ANCHOR: mount_fs
/// mount(2) a fresh filesystem of type `fstype` on `target`, made if missing.
fn mount_fs(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    options: &str,
    verbose: bool,
) -> Result<()> {
    fs::create_dir_all(target)
        .wrap_err_with(|| format!("cannot create the mount point {target}"))?;
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    narrate(
        verbose,
        &format!("mount({fstype:?}, {target:?}, {fstype:?}, {}, {options:?})", names.join("|")),
    );
    mount(Some(fstype), target, Some(fstype), flags, Some(options))
        .wrap_err_with(|| format!("cannot mount {fstype} on {target}"))
}
// ANCHOR_END: mount_fs

// ANCHOR: HOST_WIDE_PROC
/// The parts of the container's /proc that are not the container's but the
/// whole host's: kernel settings (writing kernel.core_pattern would make the
/// host's kernel run a program of ours as root), the magic SysRq key, IRQs
/// and buses. They stay readable; writing them is refused, as docker does.
const HOST_WIDE_PROC: [&str; 4] = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"];
// ANCHOR_END: HOST_WIDE_PROC

// ANCHOR: make_read_only
/// Make each path that exists read-only: bind-mount it on itself, then
/// remount that bind mount read-only (a bind mount takes its flags only then).
/// Kernels differ in which of them they have (sysrq-trigger is a build
/// option): the narration names the list, so that it reads the same on all.
fn make_read_only(paths: &[&str], verbose: bool) -> Result<()> {
    narrate(verbose, &format!("for each PATH of {paths:?} that this kernel has:"));
    narrate(verbose, "    mount(PATH, PATH, NULL, MS_BIND|MS_REC, NULL)");
    narrate(verbose, "    mount(NULL, PATH, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY, NULL)");
    for path in paths.iter().filter(|path| Path::new(path).exists()) {
        mount(Some(*path), *path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .wrap_err_with(|| format!("cannot bind-mount {path} on itself"))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, *path, None::<&str>, flags, None::<&str>)
            .wrap_err_with(|| format!("cannot make {path} read-only"))?;
    }
    Ok(())
}
// ANCHOR_END: make_read_only

// ANCHOR: DEVICES
/// The devices a program may use, (name, major, minor) as the kernel's
/// devices.txt numbers them. No disk, no /dev/mem: what is not here cannot be
/// opened, and without CAP_MKNOD the command cannot make more.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
// ANCHOR_END: DEVICES

// ANCHOR: DEVICE_LINKS
/// The links that programs expect in /dev, (link, target).
const DEVICE_LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"), // the container's own devpts, not the host's
];
// ANCHOR_END: DEVICE_LINKS

// ANCHOR: make_devices
/// mknod(2) each device, readable and writable by all, and link the rest.
fn make_devices(verbose: bool) -> Result<()> {
    let umask_before = umask(Mode::empty()); // so that 0666 is what we get
    for (name, major, minor) in DEVICES {
        let path = format!("/dev/{name}");
        narrate(verbose, &format!("mknod({path:?}, S_IFCHR|0666, makedev({major}, {minor}))"));
        mknod(
            path.as_str(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .wrap_err_with(|| format!("cannot create the device {path}"))?;
    }
    umask(umask_before);
    for (link, target) in DEVICE_LINKS {
        narrate(verbose, &format!("symlink({target:?}, {link:?})"));
        symlink(target, link).wrap_err_with(|| format!("cannot link {link} to {target}"))?;
    }
    Ok(())
}
// ANCHOR_END: make_devices

// ANCHOR: User
/// Who runs the command.
struct User {
    uid: Uid,
    gid: Gid,
    home: String,
}
// ANCHOR_END: User

// ANCHOR: find_user
/// Find `--user` (NAME or UID, then maybe :GROUP or :GID) in the *container's*
/// /etc/passwd: after pivot_root, that is the rootfs's, not the host's.
fn find_user(spec: &str) -> Result<User> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    // name:password:UID:GID:comment:home:shell
    let entries: Vec<Vec<&str>> = passwd.lines().map(|line| line.split(':').collect()).collect();
    let entry =
        entries.iter().find(|fields| fields.len() == 7 && (fields[0] == user || fields[2] == user));
    let (uid, gid, home) = match (entry, user.parse::<u32>()) {
        (Some(fields), _) => (fields[2].parse()?, fields[3].parse()?, fields[5]),
        (None, Ok(uid)) => (uid, uid, "/"), // a UID the rootfs has no name for
        (None, Err(_)) => {
            let names: Vec<&str> = entries.iter().map(|fields| fields[0]).collect();
            return Err(eyre!(
                "unknown user {user:?}: the container's /etc/passwd does not list it"
            ))
            .suggestion(format!("give a UID, or one of the rootfs's users: {}", names.join(", ")));
        }
    };
    let gid = match group {
        Some(group) => find_group(group)?,
        None => gid,
    };
    Ok(User { uid: Uid::from_raw(uid), gid: Gid::from_raw(gid), home: home.to_string() })
}
// ANCHOR_END: find_user

// ANCHOR: find_group
/// A GID: a number, or a name from the container's /etc/group.
fn find_group(group: &str) -> Result<u32> {
    let groups = fs::read_to_string("/etc/group").unwrap_or_default();
    // name:password:GID:members
    let named = groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields[0] == group);
    let gid = named.map_or(group, |fields| fields.get(2).copied().unwrap_or_default());
    gid.parse()
        .wrap_err_with(|| {
            format!("unknown group {group:?}: the container's /etc/group does not list it")
        })
        .suggestion("give a GID, or a group from the rootfs's etc/group")
}
// ANCHOR_END: find_group

/// A resource limit, from `--ulimit NAME=SOFT[:HARD]`.
#[derive(Clone)]
struct Ulimit {
    name: String,
    resource: Resource,
    soft: u64,
    hard: u64,
}

// ANCHOR: RESOURCES
/// The limits that `--ulimit` knows, by the names that `ulimit` and docker use.
const RESOURCES: [(&str, Resource); 8] = [
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("stack", Resource::RLIMIT_STACK),
];
// ANCHOR_END: RESOURCES

// ANCHOR: DEFAULT_ULIMITS
/// What every container gets unless `--ulimit` says otherwise: 1024 open
/// files, as old programs that use select(2) need, and up to 4096 for those
/// that ask, the kernel's own defaults. No nproc: it counts a UID's processes
/// on the whole host, not in the container (step 5's pids cgroup does that).
const DEFAULT_ULIMITS: [&str; 1] = ["nofile=1024:4096"];
// ANCHOR_END: DEFAULT_ULIMITS

// ANCHOR: parse_ulimit
/// clap's parser for `--ulimit`: NAME=SOFT[:HARD], each a number or `unlimited`.
fn parse_ulimit(text: &str) -> Result<Ulimit, String> {
    let names: Vec<&str> = RESOURCES.iter().map(|(name, _)| *name).collect();
    let usage = format!(
        "expected NAME=SOFT[:HARD] with NAME one of {}, e.g. nofile=1024:4096",
        names.join(", ")
    );
    let (name, values) = text.split_once('=').ok_or(&usage)?;
    let (_, resource) = RESOURCES.iter().find(|(known, _)| *known == name).ok_or(&usage)?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let number = |value: &str| match value {
        "unlimited" => Ok(RLIM_INFINITY),
        _ => value.parse::<u64>().map_err(|_| usage.clone()),
    };
    let (soft, hard) = (number(soft)?, number(hard)?);
    if soft > hard {
        return Err(format!("the soft limit {soft} is above the hard limit {hard}"));
    }
    Ok(Ulimit { name: name.to_string(), resource: *resource, soft, hard })
}
// ANCHOR_END: parse_ulimit

// ANCHOR: set_resource_limits
/// setrlimit(2) the defaults, then each `--ulimit`: the last word wins.
fn set_resource_limits(ulimits: &[Ulimit], verbose: bool) -> Result<()> {
    let defaults = DEFAULT_ULIMITS.map(|text| parse_ulimit(text).expect("the defaults parse"));
    for Ulimit { name, resource, soft, hard } in defaults.iter().chain(ulimits) {
        narrate(verbose, &format!("setrlimit({resource:?}, {soft}, {hard})"));
        setrlimit(*resource, *soft, *hard)
            .wrap_err_with(|| format!("the kernel refused --ulimit {name}={soft}:{hard}"))
            .suggestion(
                "no soft limit may pass its hard limit, and nofile not /proc/sys/fs/nr_open",
            )?;
    }
    Ok(())
}
// ANCHOR_END: set_resource_limits

// ANCHOR: KEPT_CAPABILITIES
/// The capabilities the command keeps: Docker's default set but CAP_MKNOD,
/// each with what it is for. Root in the container keeps these; another
/// `--user` gets none.
const KEPT_CAPABILITIES: [Capability; 13] = [
    Capability::CAP_CHOWN,            // chown files
    Capability::CAP_DAC_OVERRIDE,     // root may read and write any file it can see
    Capability::CAP_FSETID,           // keep set-group-ID bits on files it changes
    Capability::CAP_FOWNER,           // chmod files it does not own
    Capability::CAP_NET_RAW,          // ping, in its own network namespace
    Capability::CAP_SETGID,           // change group, as su and servers do
    Capability::CAP_SETUID,           // change user, as su and servers do
    Capability::CAP_SETFCAP,          // give files capabilities, as package installs do
    Capability::CAP_SETPCAP,          // drop capabilities of its own
    Capability::CAP_NET_BIND_SERVICE, // listen on ports below 1024
    Capability::CAP_SYS_CHROOT,       // chroot, as some servers do
    Capability::CAP_KILL,             // signal its processes whatever their user
    Capability::CAP_AUDIT_WRITE,      // write the audit log, as login does
];
// ANCHOR_END: KEPT_CAPABILITIES

// ANCHOR: DROPPED_CAPABILITIES
/// Every other capability is dropped. Why, for each: what it would let a
/// process in the container do to the host (capabilities(7) has the rest).
const DROPPED_CAPABILITIES: [(Capability, &str); 28] = [
    // Docker keeps CAP_MKNOD, as its devices cgroup stops a node for the
    // host's disk from opening. We have no devices cgroup, and the rootfs and
    // /dev allow device nodes: so it goes.
    (Capability::CAP_MKNOD, "make a node for the host's disk, and read it raw"),
    (
        Capability::CAP_DAC_READ_SEARCH,
        "open_by_handle_at reads any host file: the \"shocker\" escape",
    ),
    (Capability::CAP_LINUX_IMMUTABLE, "unset the immutable and append-only flags of files"),
    (Capability::CAP_NET_BROADCAST, "broadcast and listen to multicast"),
    (Capability::CAP_NET_ADMIN, "reconfigure interfaces, routes and firewall rules"),
    (Capability::CAP_IPC_LOCK, "lock memory in RAM beyond any limit"),
    (Capability::CAP_IPC_OWNER, "ignore the permissions of shared memory and queues"),
    (Capability::CAP_SYS_MODULE, "load code into the host's kernel"),
    (Capability::CAP_SYS_RAWIO, "raw I/O ports and memory: /dev/mem, iopl"),
    (Capability::CAP_SYS_PTRACE, "trace any process, read and write its memory"),
    (Capability::CAP_SYS_PACCT, "switch the host's process accounting"),
    (Capability::CAP_SYS_ADMIN, "mount, and half the kernel's other switches"),
    (Capability::CAP_SYS_BOOT, "reboot the host, or kexec another kernel"),
    (Capability::CAP_SYS_NICE, "raise its priority and starve the host"),
    (Capability::CAP_SYS_RESOURCE, "pass resource limits and quotas"),
    (Capability::CAP_SYS_TIME, "set the host's clock"),
    (Capability::CAP_SYS_TTY_CONFIG, "hang up the host's terminals"),
    (Capability::CAP_LEASE, "take leases on files it does not own"),
    (Capability::CAP_AUDIT_CONTROL, "change or switch off the host's auditing"),
    (Capability::CAP_MAC_OVERRIDE, "bypass AppArmor or SELinux"),
    (Capability::CAP_MAC_ADMIN, "reconfigure AppArmor or SELinux"),
    (Capability::CAP_SYSLOG, "read the kernel's log, and the kernel addresses in it"),
    (Capability::CAP_WAKE_ALARM, "set alarms that wake the host up"),
    (Capability::CAP_BLOCK_SUSPEND, "keep the host from suspending"),
    (Capability::CAP_AUDIT_READ, "read the host's audit log"),
    (Capability::CAP_PERFMON, "watch the whole host with perf"),
    (Capability::CAP_BPF, "load BPF programs into the kernel"),
    (Capability::CAP_CHECKPOINT_RESTORE, "set other processes' state, as checkpointing does"),
];
// ANCHOR_END: DROPPED_CAPABILITIES

// ANCHOR: drop_capabilities
/// Reduce every capability set to the kept ones: the bounding set (all that
/// may ever be held again), permitted and effective (what the command holds),
/// and empty the inheritable and ambient sets (what could pass across exec).
fn drop_capabilities(verbose: bool) -> Result<()> {
    let kept: HashSet<Capability> = KEPT_CAPABILITIES.into_iter().collect();
    // Only what this kernel knows can be dropped: an older one has no CAP_BPF.
    let known = caps::runtime::thread_all_supported();
    for (capability, why) in DROPPED_CAPABILITIES {
        narrate(verbose, &format!("prctl(PR_CAPBSET_DROP, {capability}): {why}"));
    }
    // One that a kernel added after this list was written goes too.
    narrate(verbose, "prctl(PR_CAPBSET_DROP, any newer capability): not one we keep");
    for capability in known.difference(&kept) {
        caps::drop(None, CapSet::Bounding, *capability)
            .wrap_err_with(|| format!("cannot drop {capability}"))?;
    }
    narrate(verbose, "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)");
    caps::clear(None, CapSet::Ambient)?;
    narrate(
        verbose,
        &format!("capset(effective = permitted = the {} kept, inheritable = none)", kept.len()),
    );
    // Effective first: the kernel keeps effective within permitted.
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    caps::clear(None, CapSet::Inheritable)?;
    Ok(())
}
// ANCHOR_END: drop_capabilities

// ANCHOR: switch_user
/// Become `--user`: clear the supplementary groups first (the host's root may
/// have some), then the group, and the user last, since that gives up the
/// right to change the other two. A user other than root loses every capability here.
fn switch_user(user: &User, verbose: bool) -> Result<()> {
    narrate(verbose, "setgroups([])");
    setgroups(&[]).wrap_err("cannot clear the supplementary groups")?;
    narrate(verbose, &format!("setgid({})", user.gid));
    setgid(user.gid).wrap_err_with(|| format!("cannot change to group {}", user.gid))?;
    narrate(verbose, &format!("setuid({})", user.uid));
    setuid(user.uid).wrap_err_with(|| format!("cannot change to user {}", user.uid))
}
// ANCHOR_END: switch_user

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

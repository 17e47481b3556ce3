// ANCHOR: head
//! PID 1 and signals (book: chapter 4, part 1).
//!
//! In steps 2 and 3 the command was PID 1 of its namespace, with PID 1's duties
//! and none of the code for them. Now our own program stays PID 1, as tini and
//! `docker run --init` do: it starts the command as PID 2, reaps every process
//! that ends, and passes signals on. The runtime on the host passes signals on
//! to init (part 5's relay), and the container dies with the runtime. The
//! container has a session of its own: a signal sent from inside reaches only
//! the container.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::libc;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, close, fork, getpgid, read, setsid, tcgetpgrp};

use crate::narrate::{self, Show, narrate};
use crate::stdio::CONTROL;
// ANCHOR_END: head

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
pub fn block_signals() -> Result<SigSet> {
    let mut signals: SigSet = FORWARDED.into_iter().collect();
    signals.add(Signal::SIGCHLD);
    signals.thread_block().wrap_err("cannot block signals")?;
    Ok(signals)
}
// ANCHOR_END: block_signals

// ANCHOR: supervise
/// Wait for `pid` to end and return its status, doing PID 1's duties meanwhile:
/// reap every child that ends (orphans in the container become ours), and pass
/// the forwarded signals on to `pid`. (The runtime on the host does the same
/// for its one child, our init, in part 5's `stdio::relay`.)
pub fn supervise(pid: Pid, signals: &SigSet) -> Result<WaitStatus> {
    let queue = SignalFd::new(signals).wrap_err("cannot read signals")?;
    loop {
        // Reap all that have ended: one SIGCHLD may stand for several.
        loop {
            let (any, flags) = (None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED));
            let call = narrate::Call::new("waitpid", vec![any.show(), flags.show()]);
            let status = waitpid(any, flags);
            if status == Ok(WaitStatus::StillAlive) {
                break; // none has ended: not worth a line
            }
            call.returned(&status);
            let status = status.wrap_err("cannot wait for the container's processes")?;
            match status {
                // Ctrl-Z stopped `pid`: only a shell can give the terminal back to
                // anything, and the shell in the container handles its own jobs. So a
                // command stopped from the terminal goes on at once (book: chapter 4).
                WaitStatus::Stopped(stopped, _) if stopped == pid => {
                    let _ = narrate!(kill(pid, Signal::SIGCONT));
                }
                _ if status.pid() == Some(pid) => return Ok(status),
                _ => {}
            }
        }
        let Some(info) = queue.read_signal().wrap_err("cannot read a signal")? else { continue };
        let signal = Signal::try_from(info.ssi_signo as i32)
            .wrap_err_with(|| format!("cannot read signal number {}", info.ssi_signo))?;
        // Ctrl-C on a terminal comes from the kernel (SI_KERNEL) to the whole
        // foreground process group: if that is `pid`'s, passing it on as well
        // would deliver it twice.
        let from_the_terminal = info.ssi_code == libc::SI_KERNEL && in_the_foreground(pid);
        if signal != Signal::SIGCHLD && !from_the_terminal {
            let _ = narrate!(kill(pid, signal)); // it may have ended already: waitpid will say
        }
    }
}

/// Whether `pid` is in the foreground process group of our terminal, the
/// container's own (part 5), if it has one: the group that its keys signal.
fn in_the_foreground(pid: Pid) -> bool {
    let Ok(terminal) = File::open("/dev/tty") else { return false };
    tcgetpgrp(&terminal).is_ok_and(|group| getpgid(Some(pid)) == Ok(group))
}
// ANCHOR_END: supervise

// ANCHOR: start_command
/// fork(2) the command's process: it is PID 2, and our init is its parent.
/// It runs `become_command`, which restricts it and execs the command, and
/// exits if that returns: it must never return into init's code.
pub fn start_command(become_command: impl FnOnce() -> Result<u8>) -> Result<Pid> {
    let call = narrate::Call::new("fork", vec![]);
    // SAFETY: this program is single-threaded, so the child is a plain copy of
    // it; the child restricts itself and execs, or exits.
    let forked = unsafe { fork() };
    call.returned(&forked);
    match forked.wrap_err("cannot fork the command's process")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status = become_command().unwrap_or_else(|report| {
                eprintln!("Error: {report:?}");
                1
            });
            std::process::exit(status.into())
        }
    }
}
// ANCHOR_END: start_command

// ANCHOR: die_with_runtime
/// In the new process, as soon as it may (after any change of its user, which
/// clears the setting): if the runtime dies, even by SIGKILL, its container
/// must die with it. PR_SET_PDEATHSIG asks the kernel for that, but only from
/// now on: a runtime that died a moment earlier is missed. Inside the new PID
/// namespace getppid() says 0, so ask a pipe: the runtime holds its write end
/// (`runtime`) open as long as it lives, and a read of the other end (`alive`)
/// finds EOF once no writer is left, EAGAIN while one is. Our copy of the write
/// end goes first, so that the runtime's is the only one.
pub fn die_with_runtime(alive: &OwnedFd, runtime: &OwnedFd) -> Result<()> {
    let _ = close(runtime.as_raw_fd());
    narrate!(prctl::set_pdeathsig(Signal::SIGKILL)).wrap_err("cannot set PR_SET_PDEATHSIG")?;
    let mut byte = [0u8];
    match narrate!(read(alive, &mut byte)) {
        Err(Errno::EAGAIN) => Ok(()),
        _ => Err(eyre!("the runtime died before its container started")),
    }
}
// ANCHOR_END: die_with_runtime

// ANCHOR: close_inherited_files
/// A process inherits every open file of its parent, and so our init inherits
/// the caller's: a directory the caller opened (`exec 7</tmp`) would be the
/// host's /tmp in the container, at /proc/self/fd/7. Init closes every
/// descriptor above the runtime's control socket (3, part 5) before anything
/// else, as runc closes them (CVE-2024-21626 came through one it missed): the
/// command, which init forks, then has none either.
pub fn close_inherited_files() -> Result<()> {
    let (first, last, flags) = (CONTROL as libc::c_uint + 1, libc::c_uint::MAX, 0);
    let call = narrate::Call::new("close_range", vec![first.show(), last.show(), flags.show()]);
    // SAFETY: close_range takes plain numbers, and closes only our own descriptors,
    // of which the program holds none yet.
    let closed = Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) });
    call.returned(&closed.map(drop));
    match closed {
        Ok(_) => Ok(()),
        // Before Linux 5.9: close each, as /proc/self/fd lists them.
        Err(Errno::ENOSYS) => {
            let open = std::fs::read_dir("/proc/self/fd").wrap_err("cannot list /proc/self/fd")?;
            let fds: Vec<i32> =
                open.flatten().filter_map(|fd| fd.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&fd| fd > CONTROL) {
                let _ = close(fd); // read_dir's own is closed already: EBADF
            }
            Ok(())
        }
        Err(error) => Err(error).wrap_err("cannot close the inherited file descriptors"),
    }
}
// ANCHOR_END: close_inherited_files

// ANCHOR: own_session
/// In the new process, too: leave the caller's session, and its process group,
/// for a session of our own (setsid), as a terminal's login does. A process
/// group is what kill(0) signals, and what a terminal's Ctrl-C is sent to: the
/// caller's holds the shell or script that started us, which a `kill -KILL 0`
/// in the container would otherwise kill. And a session is what a terminal
/// belongs to: ours will have the container's own terminal, if any (part 5).
pub fn own_session() -> Result<()> {
    narrate!(setsid()).wrap_err("cannot make a session").map(drop)
}
// ANCHOR_END: own_session

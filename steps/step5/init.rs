// ANCHOR: head
//! PID 1 and signals (book: chapter 4, part 1).
//!
//! In steps 2 and 3 the command was PID 1 of its namespace, with PID 1's duties
//! and none of the code for them. Now our own program stays PID 1, as tini and
//! `docker run --init` do: it starts the command as PID 2, reaps every process
//! that ends, and passes signals on. The runtime on the host runs the same loop
//! for its one child, and the container dies with the runtime.

use std::os::fd::{AsRawFd, OwnedFd};

use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::libc;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, close, fork, read};

use crate::narrate;
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
/// the forwarded signals on to `pid`. The runtime on the host runs this same
/// loop for its one child, our init.
pub fn supervise(pid: Pid, signals: &SigSet, verbose: bool) -> Result<WaitStatus> {
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
/// fork(2) the command's process: it is PID 2, and our init is its parent.
/// It runs `become_command`, which restricts it and execs the command, and
/// exits if that returns: it must never return into init's code.
pub fn start_command(become_command: impl FnOnce() -> Result<u8>, verbose: bool) -> Result<Pid> {
    narrate(verbose, "fork()");
    // SAFETY: this program is single-threaded, so the child is a plain copy of
    // it; the child restricts itself and execs, or exits.
    match unsafe { fork() }.wrap_err("fork failed")? {
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
/// In the new process, first of all: if the runtime dies, even by SIGKILL, its
/// container must die with it. PR_SET_PDEATHSIG asks the kernel for that, but
/// only from now on: a runtime that died a moment earlier is missed. Inside
/// the new PID namespace getppid() says 0, so ask a pipe: the runtime holds its
/// write end (`runtime`) open as long as it lives, and a read of the other end
/// (`alive`) finds EOF once no writer is left. Our copy of the write end goes
/// first, so that the runtime's is the only one.
pub fn die_with_runtime(alive: &OwnedFd, runtime: &OwnedFd, verbose: bool) -> Result<()> {
    let _ = close(runtime.as_raw_fd());
    narrate(verbose, "prctl(PR_SET_PDEATHSIG, SIGKILL)");
    prctl::set_pdeathsig(Signal::SIGKILL).wrap_err("prctl(PR_SET_PDEATHSIG) failed")?;
    narrate(verbose, "read(pipe) = EAGAIN: the runtime is alive");
    match read(alive, &mut [0]) {
        Err(Errno::EAGAIN) => Ok(()),
        _ => Err(eyre!("the runtime died before its container started")),
    }
}
// ANCHOR_END: die_with_runtime

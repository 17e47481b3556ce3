// ANCHOR: head
//! The container's own stdio and terminal (book: chapter 4, part 5).
//!
//! Until now the container was handed the caller's stdin, stdout and stderr:
//! the very files. Root in the container could then make a file that the
//! caller redirected into a set-user-ID program of the host's, or change the
//! caller's terminal for good. Now the runtime lends it nothing. A stream that
//! is a file or a pipe becomes a pipe of the runtime's, which it relays; where
//! the caller has a terminal, the container gets a terminal of its own, made
//! in its own /dev/pts, as `docker run -it` gives one, and the runtime relays
//! between the two. The runtime hands the container four descriptors: its
//! stdin, stdout and stderr, and at 3 a socket back to the runtime, on which
//! init sends the terminal it makes, and which it closes once the container
//! is ready.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, SpliceFFlags, fcntl, open, splice};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{PtyMaster, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, Signal, kill, raise};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcgetsid, tcsetattr};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{
    Pid, dup2_raw, dup2_stderr, dup2_stdin, dup2_stdout, getpgrp, getsid, pipe2, read, tcgetpgrp,
    write,
};

use crate::narrate::{Show, narrate};
// ANCHOR_END: head

// ANCHOR: CONTROL
/// Where init finds the runtime's socket: the first descriptor after stdin,
/// stdout and stderr, as systemd passes its sockets from 3 on.
pub const CONTROL: RawFd = 3;
// ANCHOR_END: CONTROL

// ANCHOR: prepare
/// Before the clone: a pipe for each of the container's streams, stdout and
/// stderr sharing one when the caller's are the same file (`2>&1`), so that
/// their lines keep their order; the control socket; and the caller's
/// terminal, if one of its streams is on it. Returns the container's ends,
/// to hand over, and the runtime's, to relay with.
pub fn prepare() -> Result<(Theirs, Ours)> {
    let terminal = Terminal::of_the_caller();
    let console: Vec<RawFd> = match &terminal {
        Some(_) => (0..3).filter(|&fd| is_on_our_terminal(fd)).collect(),
        None => Vec::new(),
    };
    let (stdin, to_stdin) = stream_pipe(OFlag::empty(), OFlag::O_NONBLOCK)?;
    let (from_stdout, stdout) = stream_pipe(OFlag::O_NONBLOCK, OFlag::empty())?;
    let mut outputs = vec![(from_stdout, 1)];
    let stderr = match same_file(io::stdout().as_fd(), io::stderr().as_fd()) {
        true => stdout.try_clone().wrap_err("cannot share the stdout pipe")?,
        false => {
            let (from_stderr, stderr) = stream_pipe(OFlag::O_NONBLOCK, OFlag::empty())?;
            outputs.push((from_stderr, 2));
            stderr
        }
    };
    let flags = SockFlag::SOCK_CLOEXEC;
    let (control, theirs_control) =
        narrate!(socketpair(AddressFamily::Unix, SockType::SeqPacket, None, flags))
            .wrap_err("cannot make the control socket")?;
    // A stream on the terminal reads nothing from the caller until the container's own
    // terminal exists: init reads no input while it sets up.
    let stdin_relayed = !console.contains(&0);
    let ours = Ours { to_stdin: stdin_relayed.then_some(to_stdin), outputs, control, terminal };
    let theirs = Theirs { streams: [stdin, stdout, stderr], control: theirs_control, console };
    Ok((theirs, ours))
}

/// How much each of the container's pipes holds, and the most a splice moves at once.
const PIPE_SIZE: i32 = 1 << 20;

/// A pipe for one of the container's streams: the container's end blocks as
/// every program expects; the runtime's end never does, so that one stream
/// waiting can never hold up another. It holds 1 MiB, not 64 KiB: a big
/// copy wakes the runtime and the command a sixteenth as often.
fn stream_pipe(read_flags: OFlag, write_flags: OFlag) -> Result<(OwnedFd, OwnedFd)> {
    let (read_end, write_end) = narrate!(pipe2(OFlag::O_CLOEXEC)).wrap_err("cannot make a pipe")?;
    // 1 MiB is /proc/sys/fs/pipe-max-size, the most a user may ask for, by default. Refused (a
    // user's pipes past /proc/sys/fs/pipe-user-pages-soft), the pipe stays as it was.
    let _ = fcntl(&read_end, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    for (end, flags) in [(&read_end, read_flags), (&write_end, write_flags)] {
        fcntl(end, FcntlArg::F_SETFL(flags)).wrap_err("cannot make a pipe non-blocking")?;
    }
    Ok((read_end, write_end))
}

/// Whether two descriptors are the same file: the same device and inode.
fn same_file(a: BorrowedFd, b: BorrowedFd) -> bool {
    let meta = |fd: BorrowedFd| File::from(fd.try_clone_to_owned().ok()?).metadata().ok();
    match (meta(a), meta(b)) {
        (Some(a), Some(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}
// ANCHOR_END: prepare

// ANCHOR: Theirs
/// The container's ends, which the new process hands over to init.
pub struct Theirs {
    /// What become its stdin, stdout and stderr.
    streams: [OwnedFd; 3],
    /// Its end of the control socket, which becomes descriptor 3.
    control: OwnedFd,
    /// Which of 0, 1 and 2 are on the caller's terminal: init puts its own terminal there.
    pub console: Vec<RawFd>,
}

impl Theirs {
    /// In the new process, just before it execs init: the pipes become its 0, 1
    /// and 2, in place of the caller's, and the control socket its 3. Every
    /// other descriptor we hold closes at the exec (O_CLOEXEC).
    pub fn hand_over(&self) -> Result<()> {
        narrate!(dup2_stdin(&self.streams[0])).wrap_err("cannot hand over stdin")?;
        narrate!(dup2_stdout(&self.streams[1])).wrap_err("cannot hand over stdout")?;
        narrate!(dup2_stderr(&self.streams[2])).wrap_err("cannot hand over stderr")?;
        // SAFETY: descriptor 3 is none that we still need: the streams are at 0, 1
        // and 2 now, and what else was at 3 is closed by dup2, as the exec would.
        let control = unsafe { narrate!(dup2_raw(&self.control, CONTROL)) }
            .wrap_err("cannot hand over the control socket")?;
        // dup2 clears O_CLOEXEC on the copy, but not when it is the same descriptor.
        fcntl(&control, FcntlArg::F_SETFD(FdFlag::empty()))
            .wrap_err("cannot keep the control socket open across exec")?;
        let _ = control.into_raw_fd(); // for init, past the exec
        Ok(())
    }
}
// ANCHOR_END: Theirs

// ANCHOR: make_console
/// In init, once its /dev/pts is mounted and it is in its new root: make the
/// container's own terminal, a pseudo-terminal of its devpts, make it our
/// controlling terminal (we lead a session of our own, since the new process
/// called setsid), send its master end to the runtime over the control socket,
/// and put its other end on the streams that are on the caller's terminal.
pub fn make_console(control: &OwnedFd, streams: &[RawFd]) -> Result<()> {
    if streams.is_empty() {
        return Ok(());
    }
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = narrate!(posix_openpt(flags)).wrap_err("cannot open /dev/ptmx")?;
    narrate!(unlockpt(&master)).wrap_err("cannot unlock the terminal")?;
    let name = ptsname_r(&master).wrap_err("cannot name the terminal")?;
    let terminal = narrate!(open(name.as_str(), flags, Mode::empty()))
        .wrap_err_with(|| format!("cannot open {name}"))?;
    let call = crate::narrate::Call::new("ioctl", vec![terminal.show(), "TIOCSCTTY".into()]);
    // SAFETY: TIOCSCTTY takes a plain int; `terminal` is a terminal we opened.
    let controlling =
        Errno::result(unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) });
    call.returned(&controlling.map(drop));
    controlling.wrap_err_with(|| format!("cannot make {name} our controlling terminal"))?;
    send_master(control, &master)?;
    for &stream in streams {
        let dup = match stream {
            0 => dup2_stdin(&terminal),
            1 => dup2_stdout(&terminal),
            _ => dup2_stderr(&terminal),
        };
        dup.wrap_err_with(|| format!("cannot put {name} on descriptor {stream}"))?;
    }
    Ok(())
}

/// sendmsg(2) one byte with the master's descriptor (SCM_RIGHTS): the
/// kernel gives the runtime a descriptor of its own for it, as runc's
/// console socket does.
fn send_master(control: &OwnedFd, master: &PtyMaster) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let message = [IoSlice::new(b"t")];
    let rights = [ControlMessage::ScmRights(&fds)];
    let socket = control.as_raw_fd();
    let call =
        crate::narrate::Call::new("sendmsg", vec![socket.show(), format!("SCM_RIGHTS {:?}", fds)]);
    let sent = sendmsg::<()>(socket, &message, &rights, MsgFlags::empty(), None);
    call.returned(&sent);
    sent.wrap_err("cannot send the terminal to the runtime")?;
    Ok(())
}
// ANCHOR_END: make_console

// ANCHOR: Ours
/// The runtime's ends, to relay with.
pub struct Ours {
    /// The container's stdin pipe, to write what the caller's stdin gives; none
    /// when stdin is on the terminal, which the container's own terminal takes.
    to_stdin: Option<OwnedFd>,
    /// The container's stdout and stderr pipes, each with where it goes: 1 or 2.
    outputs: Vec<(OwnedFd, RawFd)>,
    /// Init sends its terminal here, and closes it once the container is ready.
    control: OwnedFd,
    /// The caller's terminal, if one of its streams is on it.
    terminal: Option<Terminal>,
}
// ANCHOR_END: Ours

// ANCHOR: Copy
/// One direction of the relay: bytes read from `from`, held until `to` takes
/// them. The runtime's ends never block; the caller's may, and are read or
/// written only when poll(2) says they are ready. Between a pipe and a file,
/// a pipe or a socket, splice(2) moves the bytes in the kernel instead: they
/// never come up into the runtime's memory, which a 100 MB `cat` feels.
struct Copy {
    from: OwnedFd,
    to: OwnedFd,
    way: Way,
    buffer: Vec<u8>,
    /// Whether the bytes go by splice(2): no end is a terminal.
    splice: bool,
    /// A splice found nothing to take, or no room for it: wait for `to`, then `from` again.
    full: bool,
    /// `from` reached its end (or `to` closed): nothing more to copy.
    done: bool,
}

/// Which way a copy goes.
#[derive(PartialEq)]
enum Way {
    /// The caller's stdin to the container's.
    In,
    /// The container's output to the caller: all of it is relayed before the end.
    Out,
    /// Keys from the caller's terminal to the container's: only while we are
    /// in the foreground, for a job in the background that reads its terminal
    /// is stopped by the kernel (SIGTTIN).
    Keys,
}

impl Copy {
    fn new(from: OwnedFd, to: OwnedFd, way: Way) -> Copy {
        // The container's end is a pipe, and a terminal (the caller's, or the container's
        // master) takes no splice.
        let splice = !(from.is_terminal() || to.is_terminal());
        Copy { from, to, way, buffer: Vec::new(), splice, full: false, done: false }
    }

    /// What to wait for: room to write when bytes wait (or a splice found no
    /// room), else bytes to read.
    fn events(&self, foreground: bool) -> (PollFlags, PollFlags) {
        let paused = self.way == Way::Keys && !foreground;
        match (self.done || paused, self.buffer.is_empty() && !self.full) {
            (_, false) => (PollFlags::empty(), PollFlags::POLLOUT),
            (true, true) => (PollFlags::empty(), PollFlags::empty()),
            (false, true) => (PollFlags::POLLIN, PollFlags::empty()),
        }
    }

    /// Whether all of it has gone through.
    fn finished(&self) -> bool {
        self.done && self.buffer.is_empty()
    }

    /// Read once, when `from` is ready: end of file, or EIO from a terminal
    /// whose other end is closed, means done. Or splice once.
    fn read(&mut self) {
        if self.splice {
            return self.splice();
        }
        let mut chunk = [0u8; 65536];
        match read(&self.from, &mut chunk) {
            Ok(0) | Err(Errno::EIO) => self.done = true,
            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => self.done = true,
        }
    }

    /// Write once, when `to` is ready; a reader that went away (EPIPE) takes
    /// nothing more. Or, after a splice that found no room, read again.
    fn write(&mut self) {
        if self.splice {
            self.full = false;
            return;
        }
        match write(&self.to, &self.buffer) {
            Ok(n) => drop(self.buffer.drain(..n)),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => {
                self.buffer.clear();
                self.done = true;
            }
        }
    }

    /// Move what `from` holds to `to` in the kernel, once, when `from` is
    /// ready: up to a pipe's worth, never waiting on either end
    /// (SPLICE_F_NONBLOCK). EAGAIN says that one end had nothing or no room:
    /// wait for `to`, then `from` again, without spinning. An end that takes
    /// no splice (EINVAL, before a byte moves) is read and written instead.
    fn splice(&mut self) {
        let flags = SpliceFFlags::SPLICE_F_NONBLOCK;
        match splice(&self.from, None, &self.to, None, PIPE_SIZE as usize, flags) {
            Ok(0) => self.done = true,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => self.full = true,
            Err(Errno::EINVAL) => {
                self.splice = false;
                self.read();
            }
            Err(_) => self.done = true, // EPIPE: the reader went away
        }
    }
}
// ANCHOR_END: Copy

// ANCHOR: relay
/// The runtime's loop, while the container runs: copy the caller's stdin to
/// the container, and the container's output to the caller, through the pipes
/// and the terminal; pass signals on; and once init has ended and its output
/// is all out, reap it and return its status. Until init says it is ready
/// (closes the control socket), SIGINT and SIGTERM end the container at once:
/// init cannot pass them on before the command exists, and may be stuck.
pub fn relay(child: Pid, signals: &SigSet, ours: Ours) -> Result<WaitStatus> {
    let Ours { to_stdin, outputs, control, mut terminal } = ours;
    // And the terminal's own signals: the window resized, the runtime continued after a
    // stop, or asked to stop.
    let mut signals = *signals;
    for signal in [Signal::SIGWINCH, Signal::SIGCONT, Signal::SIGTSTP] {
        signals.add(signal);
    }
    signals.thread_block().wrap_err("cannot block signals")?;
    let queue = SignalFd::new(&signals).wrap_err("cannot read signals")?;
    let mut copies: Vec<Copy> = Vec::new();
    if let Some(to_stdin) = to_stdin {
        copies.push(Copy::new(io::stdin().as_fd().try_clone_to_owned()?, to_stdin, Way::In));
    }
    for (from, fd) in outputs {
        let to = match fd {
            1 => io::stdout().as_fd().try_clone_to_owned()?,
            _ => io::stderr().as_fd().try_clone_to_owned()?,
        };
        copies.push(Copy::new(from, to, Way::Out));
    }
    let (mut control, mut ended) = (Some(control), false);
    let outputs_finished =
        |copies: &[Copy]| copies.iter().filter(|c| c.way == Way::Out).all(Copy::finished);
    while !(ended && outputs_finished(&copies)) {
        let foreground = terminal.as_ref().is_some_and(Terminal::in_the_foreground);
        // What to wait for: a signal, a message from init, and each copy's ends.
        let mut fds = vec![PollFd::new(queue.as_fd(), PollFlags::POLLIN)];
        let asked: Vec<(PollFlags, PollFlags)> =
            copies.iter().map(|copy| copy.events(foreground)).collect();
        for (copy, (read, write)) in copies.iter().zip(&asked) {
            fds.push(PollFd::new(copy.from.as_fd(), *read));
            fds.push(PollFd::new(copy.to.as_fd(), *write));
        }
        if let Some(control) = &control {
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error).wrap_err("cannot poll the container's streams"),
        }
        let woke: Vec<bool> =
            fds.iter().map(|fd| fd.revents().is_some_and(|events| !events.is_empty())).collect();
        drop(fds);
        // poll reports a hang-up even where nothing was asked: act only on what was.
        for (i, (copy, (read, write))) in copies.iter_mut().zip(&asked).enumerate() {
            if woke[1 + 2 * i] && !read.is_empty() {
                copy.read();
            }
            if woke[2 + 2 * i] && !write.is_empty() {
                copy.write();
            }
        }
        // A copy all through closes its ends: the container's stdin then reads its end.
        let control_at = 1 + 2 * copies.len();
        copies.retain(|copy| !copy.finished());
        if control.is_some() && woke[control_at] {
            match receive_master(control.as_ref().unwrap())? {
                Some(master) => {
                    if let Some(terminal) = &mut terminal {
                        copies.extend(terminal.attach(master)?);
                    }
                }
                None => control = None, // init is ready
            }
        }
        if !woke[0] {
            continue;
        }
        let Some(info) = queue.read_signal().wrap_err("cannot read a signal")? else { continue };
        let signal = Signal::try_from(info.ssi_signo as i32)
            .wrap_err_with(|| format!("cannot read signal number {}", info.ssi_signo))?;
        match signal {
            Signal::SIGCHLD => ended = has_ended(child)?,
            Signal::SIGWINCH | Signal::SIGCONT => {
                if let Some(terminal) = &mut terminal {
                    terminal.follow()?;
                }
            }
            Signal::SIGTSTP => {
                // Stopped from elsewhere (`kill -TSTP`): give the terminal back first, as
                // a full-screen program does, then stop; SIGCONT makes it ours again.
                if let Some(terminal) = &mut terminal {
                    terminal.give_back();
                }
                let _ = raise(Signal::SIGSTOP);
            }
            Signal::SIGINT | Signal::SIGTERM if control.is_some() => {
                // Init is still setting up: it would hold the signal until the command
                // exists, which may be never. End it now; its PID namespace goes with it.
                let _ = narrate!(kill(child, Signal::SIGKILL));
                let _ = waitpid(child, None);
                return Ok(WaitStatus::Signaled(child, signal, false));
            }
            _ => {
                let _ = narrate!(kill(child, signal)); // it may have ended already
            }
        }
    }
    drop(terminal); // given back before the last line
    narrate!(waitpid(child, None)).wrap_err("cannot wait for the container")
}

/// Whether init has ended, asked without reaping it (WNOWAIT): its output may
/// still be on its way, and is relayed before it is reaped. A stop (SIGSTOP
/// from elsewhere) is undone: the container is not a job of the caller's shell.
fn has_ended(child: Pid) -> Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG;
    match waitid(Id::Pid(child), flags | WaitPidFlag::WNOWAIT) {
        Ok(WaitStatus::Stopped(..)) => {
            let _ = waitid(Id::Pid(child), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG);
            let _ = narrate!(kill(child, Signal::SIGCONT));
            Ok(false)
        }
        Ok(WaitStatus::StillAlive) => Ok(false),
        Ok(_) => Ok(true),
        Err(error) => Err(error).wrap_err("cannot ask whether the container has ended"),
    }
}

/// recvmsg(2) from the control socket: the terminal's master, or `None` at its
/// end, when init closed it.
fn receive_master(control: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8];
    let mut message = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let socket = control.as_raw_fd();
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    let received = recvmsg::<()>(socket, &mut message, Some(&mut space), flags)
        .wrap_err("cannot read the control socket")?;
    if received.bytes == 0 {
        return Ok(None);
    }
    for message in received.cmsgs().wrap_err("cannot read the control message")? {
        if let ControlMessageOwned::ScmRights(fds) = message
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel made this descriptor for us just now: no one else owns it.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Err(eyre!("init sent no terminal on the control socket"))
}
// ANCHOR_END: relay

// ANCHOR: Terminal
/// The caller's terminal, while the container has a terminal of its own:
/// its settings as they were, to give back on every way out the runtime
/// lives through. A runtime killed by SIGKILL cannot: `reset` gives the
/// terminal back then (book: chapter 4, part 5).
pub struct Terminal {
    terminal: File,
    settings: Termios,
    /// The container's terminal, once init has sent it.
    master: Option<OwnedFd>,
    /// Whether the caller's stdin is on the terminal: then keys go to the container.
    keys: bool,
    /// Whether we have put the terminal in raw mode, as we do in the foreground.
    raw: bool,
}

impl Terminal {
    /// Our controlling terminal, if one of stdin, stdout or stderr is on it.
    fn of_the_caller() -> Option<Terminal> {
        let on_it = (0..3).find(|&fd| is_on_our_terminal(fd))?;
        // SAFETY: 0, 1 and 2 stay open as long as we live; the borrow ends here.
        let stream = unsafe { BorrowedFd::borrow_raw(on_it) };
        let terminal = File::from(stream.try_clone_to_owned().ok()?);
        let settings = tcgetattr(&terminal).ok()?;
        let keys = is_on_our_terminal(0);
        Some(Terminal { terminal, settings, master: None, keys, raw: false })
    }

    /// The container's terminal has come: relay it, keys in (when stdin is on
    /// ours), output out, and follow our window's size and the foreground.
    fn attach(&mut self, master: OwnedFd) -> Result<Vec<Copy>> {
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .wrap_err("cannot make the terminal non-blocking")?;
        let ours = || self.terminal.as_fd().try_clone_to_owned();
        let mut copies = vec![Copy::new(master.try_clone()?, ours()?, Way::Out)];
        if self.keys {
            copies.push(Copy::new(ours()?, master.try_clone()?, Way::Keys));
        }
        self.master = Some(master);
        self.follow()?;
        Ok(copies)
    }

    /// Whether our process group is the terminal's foreground, the one its keys go to.
    fn in_the_foreground(&self) -> bool {
        tcgetpgrp(&self.terminal) == Ok(getpgrp())
    }

    /// Pass our window's size on to the container's terminal (the kernel then
    /// sends SIGWINCH there), and be raw while we are in the foreground: every
    /// key, Ctrl-C and Ctrl-Z too, reaches the container's terminal as it is,
    /// whose own settings decide what it means.
    fn follow(&mut self) -> Result<()> {
        let Some(master) = &self.master else { return Ok(()) };
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ and TIOCSWINSZ read and write one winsize, and `size` is one.
        unsafe {
            if libc::ioctl(self.terminal.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
                libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
            }
        }
        if self.keys && self.in_the_foreground() && !self.raw {
            let mut raw = self.settings.clone();
            cfmakeraw(&mut raw);
            let call = crate::narrate::Call::new(
                "tcsetattr",
                vec![self.terminal.show(), "TCSADRAIN".into(), "{raw}".into()],
            );
            let set = tcsetattr(&self.terminal, SetArg::TCSADRAIN, &raw);
            call.returned(&set);
            set.wrap_err("cannot put the terminal in raw mode")?;
            self.raw = true;
        }
        Ok(())
    }
}

impl Terminal {
    /// Its settings as they were, if we changed them.
    fn give_back(&mut self) {
        if self.raw {
            // In the background, the kernel would stop us for changing the terminal
            // (SIGTTOU), unless we block that.
            let mut ttou = SigSet::empty();
            ttou.add(Signal::SIGTTOU);
            let _ = ttou.thread_block();
            let _ = tcsetattr(&self.terminal, SetArg::TCSADRAIN, &self.settings);
            let _ = ttou.thread_unblock();
            self.raw = false;
        }
    }
}

/// Give the terminal back as it was, on every way out of the runtime.
impl Drop for Terminal {
    fn drop(&mut self) {
        self.give_back();
    }
}
/// Whether our descriptor `fd` (0, 1 or 2) is on our controlling terminal:
/// tcgetsid(3) names a terminal's session only for the terminal of our own.
fn is_on_our_terminal(fd: RawFd) -> bool {
    // SAFETY: 0, 1 and 2 stay open as long as we live; the borrow ends here.
    let stream = unsafe { BorrowedFd::borrow_raw(fd) };
    stream.is_terminal() && tcgetsid(stream).ok() == getsid(None).ok()
}
// ANCHOR_END: Terminal

//! A pseudo-terminal with a program on it, typed at as a learner types; the job-control
//! session a learner tries there; and waiting until the program runs a command, to type at it
//! only then.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A pseudo-terminal with a program on it, typed at as a learner types: each
/// step of a conversation waits until the screen shows what it expects,
/// however slow the machine, and never for a fixed time.
pub struct Terminal {
    child: Child,
    keyboard: File,
    screen: Receiver<Vec<u8>>,
    /// All that the program has written so far.
    pub seen: String,
    /// How much of `seen` the last `expect` consumed.
    read_up_to: usize,
}

impl Terminal {
    /// Start `command` on a new pseudo-terminal, as the leader of a new session
    /// whose controlling terminal it is: what a terminal emulator does for a
    /// shell. Call it while holding a `HostState`.
    pub fn start(mut command: Command) -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let terminal = File::from(pty.slave);
        command
            .stdin(terminal.try_clone().unwrap())
            .stdout(terminal.try_clone().unwrap())
            .stderr(terminal);
        // SAFETY: between fork and exec the child calls only setsid and ioctl,
        // both async-signal-safe system calls.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("cannot start the program on a terminal");
        drop(command); // our copies of the terminal's side, so that we see its end
        let mut screen = File::from(pty.master);
        let keyboard = screen.try_clone().unwrap();
        let (sender, receiver) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // EIO once the last process with the terminal open has closed it.
            while let Ok(count @ 1..) = screen.read(&mut buffer) {
                if sender.send(buffer[..count].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { child, keyboard, screen: receiver, seen: String::new(), read_up_to: 0 }
    }

    /// The program's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Make the window `rows` by `columns`, as a terminal emulator does when its window is
    /// resized: the kernel then sends SIGWINCH to the terminal's foreground.
    pub fn resize(&self, rows: u16, columns: u16) {
        let size = nix::pty::Winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCSWINSZ reads one winsize, and `size` is one.
        let set =
            unsafe { nix::libc::ioctl(self.keyboard.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
        assert_eq!(set, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Type `keys`: text, or control characters such as "\x03" for Ctrl-C.
    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard.write_all(keys.as_bytes()).unwrap();
    }

    /// Wait until the screen shows `wanted` after what the last `expect` saw;
    /// after 20 s, fail with the screen.
    pub fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.seen[self.read_up_to..].find(wanted) {
                self.read_up_to += at + wanted.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the screen never showed {wanted:?}; it shows:\n{}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the program ended before showing {wanted:?}:\n{}", self.seen)
                }
            }
        }
    }

    /// Wait for the program to end: its status, and all that the screen showed.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        // The rest of the screen, up to EIO, when the last process closes the terminal
        // (a leaked one might never: HostState catches that).
        while let Ok(bytes) = self.screen.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status, std::mem::take(&mut self.seen))
    }
}

/// A test that fails half-way through leaves nothing running on its terminal: the
/// program's process group goes (a container with it, by PR_SET_PDEATHSIG).
impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// What a learner types at `run /bin/sh` on a terminal to try job control, each line once
/// the screen shows what it must: Ctrl-C stops the foreground job and not the container;
/// Ctrl-Z, `jobs`, `fg` and a job in the background work. It ends at the prompt; the caller
/// types the `exit`. (environment.rs as root, rootless.rs without.)
pub fn job_control_session(shell: &mut Terminal) {
    shell.expect("# "); // the prompt
    // Type at a program only once it runs: before, the shell would read the keys.
    // READY is typed as RE""ADY, so that only the shell's echo shows READY, and
    // only `tr` can show FIRST: then tr runs, in the foreground, waiting to read.
    shell.type_keys("echo RE\"\"ADY; tr a-z A-Z\n");
    shell.expect("READY");
    shell.type_keys("first\n");
    shell.expect("FIRST");
    shell.type_keys("\x03"); // Ctrl-C
    shell.expect("# ");
    shell.type_keys("echo \"tr said $?\"\n");
    shell.expect("tr said 130"); // 128 + SIGINT: tr got it, and the container lives on
    shell.type_keys("echo RE\"\"ADY; tr a-z A-Z\n");
    shell.expect("READY");
    shell.type_keys("second\n");
    shell.expect("SECOND");
    shell.type_keys("\x1a"); // Ctrl-Z
    shell.expect("Stopped");
    shell.expect("# ");
    shell.type_keys("jobs\n");
    shell.expect("[1]+  Stopped");
    shell.expect("# ");
    shell.type_keys("fg\n");
    shell.expect("tr a-z A-Z"); // fg names the job it continues
    shell.type_keys("third\n");
    shell.expect("THIRD"); // tr runs again
    shell.type_keys("\x04"); // Ctrl-D: the end of tr's input
    shell.expect("# ");
    shell.type_keys("echo \"tr said $?\"\n");
    shell.expect("tr said 0");
    // Killed only once it runs sleep: just after the fork, the job is the shell's copy, which
    // ignores SIGTERM as an interactive shell does until it resets its signals, and `kill %1`
    // would be lost then (which is why this test failed now and then under load).
    shell.type_keys("sleep 30 &\n");
    shell.type_keys("until [ \"$(cat /proc/$!/comm)\" = sleep ]; do :; done; echo SLE\"\"EPING\n");
    shell.expect("SLEEPING");
    shell.type_keys("jobs\n");
    shell.expect("[1]+  Running");
    shell.type_keys("kill %1; wait\n");
    shell.expect("Terminated");
    shell.expect("# ");
}

/// Wait until process `parent` has a child that runs `command` (as
/// /proc/PID/comm names it); after 20 s, fail.
pub fn wait_for_child(parent: u32, command: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let children = format!("/proc/{parent}/task/{parent}/children");
    loop {
        let pids = fs::read_to_string(&children).unwrap_or_default();
        let comm = |pid: &str| fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pids.split_whitespace().any(|pid| comm(pid).trim_end() == command) {
            return;
        }
        assert!(Instant::now() < deadline, "process {parent} never ran {command:?}");
        sleep(Duration::from_millis(5));
    }
}

/// The PID of the first process below `ancestor`, at any depth, that runs `command` (as
/// /proc/PID/comm names it); after 20 s, fail.
pub fn wait_for_descendant(ancestor: u32, command: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let children = |pid: u32| {
        let path = format!("/proc/{pid}/task/{pid}/children");
        let pids = fs::read_to_string(path).unwrap_or_default();
        pids.split_whitespace().filter_map(|pid| pid.parse().ok()).collect::<Vec<u32>>()
    };
    loop {
        let mut below = children(ancestor);
        while let Some(pid) = below.pop() {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end() == command {
                return pid;
            }
            below.extend(children(pid));
        }
        assert!(Instant::now() < deadline, "nothing below {ancestor} ran {command:?}");
        sleep(Duration::from_millis(5));
    }
}

// ANCHOR: head
//! `-v`: the narration (book: chapter 1, "What -v shows"). With `-v`, each system call that
//! makes the container prints a line on stderr when it returns, as strace(1) shows calls and
//! in the spirit of contained.c's `=> doing X… done.`:
//!
//! ```text
//! => clone(SIGCHLD) = 4711
//! ```
//!
//! the call's name, the arguments it was given and what it returned: `0`, a PID, or an error
//! such as `EPERM`. The line is made from the very values the call was given, never written
//! by hand, so it cannot say what the code did not do. Three calls start something that
//! speaks next, and so print their line just before they run, ending in `…`: clone(2) and
//! fork(2) a new process, exec a new program (which, when it works, never returns). If one
//! of them fails, a second line gives its error.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};

use caps::errors::CapsError;
use caps::{CapSet, Capability};
use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::libc;
use nix::mount::{MntFlags, MsFlags};
use nix::pty::PtyMaster;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
// ANCHOR_END: head

// ANCHOR: verbose
/// Whether `-v` was given: set once, by `main`, before any call is made.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}
// ANCHOR_END: verbose

// ANCHOR: narrate
/// `narrate!(waitpid(child, None))` makes the call `waitpid(child, None)` and returns what it
/// returns; with `-v`, it also prints `=> waitpid(4711, None) = Exited(Pid(4711), 0)`, each
/// argument shown from its value (`Show`), the function by its own name (`fs::write` as
/// `write`). Each argument is evaluated once, in order, into a variable of its own (the
/// `@bind` rules), which is shown and then given to the call. `narrate!(call(…), because
/// WHY)` says why, after the result: `=> … = 0  # WHY`.
macro_rules! narrate {
    ($($call:ident)::+($($arg:expr),* $(,)?) $(, because $why:expr)?) => {
        $crate::narrate::narrate!(@bind [$($call)::+] [$($why)?] [] $($arg,)*)
    };
    (@bind $call:tt $why:tt [$($bound:ident)*] $arg:expr, $($rest:expr,)*) => {{
        let arg = $arg;
        $crate::narrate::narrate!(@bind $call $why [$($bound)* arg] $($rest,)*)
    }};
    (@bind [$($call:ident)::+] [$($why:expr)?] [$($bound:ident)*]) => {{
        let call = $crate::narrate::Call::new(
            $crate::narrate::last_name(stringify!($($call)::+)),
            vec![$($crate::narrate::Show::show(&$bound)),*],
        )$(.because($why))?;
        let result = $($call)::+($($bound),*);
        call.returned(&result);
        result
    }};
}
pub(crate) use narrate;

/// "write" for `fs::write`: the function's own name, without its module.
pub fn last_name(path: &'static str) -> &'static str {
    path.rsplit("::").next().unwrap_or(path).trim()
}

/// A call being made: its name and its arguments, shown, and why it is made.
pub struct Call {
    name: &'static str,
    args: Vec<String>,
    why: Option<String>,
}

impl Call {
    /// The call `name(args…)`, about to be made. One that starts something is
    /// narrated now: what it starts speaks next.
    pub fn new(name: &'static str, args: Vec<String>) -> Call {
        let call = Call { name, args, why: None };
        if call.starts_something() {
            call.say("…");
        }
        call
    }

    /// Why the call is made: said after its result.
    pub fn because(mut self, why: impl Into<String>) -> Call {
        self.why = Some(why.into());
        self
    }

    /// `=> NAME(ARGS) = RESULT`: the call returned `result`. For one that starts
    /// something, only an error is new.
    pub fn returned<T: Show, E: Show>(&self, result: &Result<T, E>) {
        match result {
            Ok(_) if self.starts_something() => {}
            Ok(value) => self.say(&format!("= {}", value.show())),
            Err(error) => self.say(&format!("= {}", error.show())),
        }
    }

    /// `=> NAME(ARGS) = ERROR`: the call failed, with `error`.
    pub fn failed(&self, error: &impl Show) {
        self.say(&format!("= {}", error.show()));
    }

    /// clone and fork start a process, exec a program.
    fn starts_something(&self) -> bool {
        matches!(self.name, "clone" | "fork") || self.name.starts_with("exec")
    }

    fn say(&self, end: &str) {
        if VERBOSE.load(Ordering::Relaxed) {
            let why = self.why.as_ref().map_or(String::new(), |why| format!("  # {why}"));
            eprintln!("=> {}({}) {end}{why}", self.name, self.args.join(", "));
        }
    }
}
// ANCHOR_END: narrate

// ANCHOR: Show
/// How a value shows in the narration: as strace(1) would write it, where that is clearer
/// than Rust's `{:?}` (`SIGCHLD`, not `Some(17)`).
pub trait Show {
    fn show(&self) -> String;
}

impl<T: Show + ?Sized> Show for &T {
    fn show(&self) -> String {
        (**self).show()
    }
}

impl<T: Show + ?Sized> Show for &mut T {
    fn show(&self) -> String {
        (**self).show()
    }
}

/// A call that returns nothing returned 0.
impl Show for () {
    fn show(&self) -> String {
        "0".to_string()
    }
}

/// What exec returns when it works: nothing ever, as it never returns.
impl Show for std::convert::Infallible {
    fn show(&self) -> String {
        match *self {}
    }
}

/// An error from std: its name too, when the kernel gave it.
impl Show for io::Error {
    fn show(&self) -> String {
        match self.raw_os_error() {
            Some(errno) => Errno::from_raw(errno).show(),
            None => self.to_string(),
        }
    }
}

impl Show for String {
    fn show(&self) -> String {
        self.as_str().show()
    }
}

impl Show for CString {
    fn show(&self) -> String {
        self.as_c_str().show()
    }
}

/// A list: `["echo", "hello"]`.
impl<T: Show> Show for [T] {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(Show::show).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Show, const N: usize> Show for [T; N] {
    fn show(&self) -> String {
        self.as_slice().show()
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> String {
        self.as_slice().show()
    }
}

impl Show for PathBuf {
    fn show(&self) -> String {
        self.as_path().show()
    }
}

/// A path that may be NULL, as mount(2)'s source.
impl Show for Option<&Path> {
    fn show(&self) -> String {
        self.map_or("NULL".to_string(), |path| path.show())
    }
}

/// A C string that may be NULL, as mount(2)'s source, type and data.
impl Show for Option<&str> {
    fn show(&self) -> String {
        self.map_or("NULL".to_string(), |text| text.show())
    }
}

/// Two results at once, as pipe2(2) and socketpair(2) give them: `[3, 4]`.
impl<A: Show, B: Show> Show for (A, B) {
    fn show(&self) -> String {
        format!("[{}, {}]", self.0.show(), self.1.show())
    }
}

/// A socket's family and type by their C names: `AF_UNIX`, `SOCK_SEQPACKET`.
impl Show for AddressFamily {
    fn show(&self) -> String {
        format!("AF_{self:?}").to_uppercase()
    }
}

impl Show for SockType {
    fn show(&self) -> String {
        format!("SOCK_{self:?}").to_uppercase()
    }
}

/// A socket's protocol: none chosen is 0, the family's own.
impl Show for Option<SockProtocol> {
    fn show(&self) -> String {
        self.map_or("0".to_string(), |protocol| format!("{protocol:?}"))
    }
}

/// waitpid's "any child", as the kernel reads None: -1.
impl Show for Option<Pid> {
    fn show(&self) -> String {
        self.map_or("-1".to_string(), |pid| pid.show())
    }
}

/// fork's result: the child's PID, in its parent.
impl Show for ForkResult {
    fn show(&self) -> String {
        match self {
            ForkResult::Parent { child } => child.show(),
            ForkResult::Child => "0".to_string(),
        }
    }
}

/// How a program we ran ended: 0 for success, as a shell's $? says it.
impl Show for ExitStatus {
    fn show(&self) -> String {
        self.code().map_or(self.to_string(), |code| code.to_string())
    }
}

impl Show for Signal {
    fn show(&self) -> String {
        self.as_str().to_string()
    }
}

/// A file's permissions, in octal as chmod(1) takes them: `0700`.
impl Show for Mode {
    fn show(&self) -> String {
        match self.bits() {
            0 => "0".to_string(),
            bits => format!("0{bits:o}"),
        }
    }
}

/// O_NONBLOCK by that name: bitflags knows it by its other one, O_NDELAY.
impl Show for OFlag {
    fn show(&self) -> String {
        let names = self.iter_names().map(|(name, _)| name);
        flag_names(names.map(|name| if name == "O_NDELAY" { "O_NONBLOCK" } else { name }))
    }
}

/// A set of capabilities: their names, in the kernel's order.
impl Show for HashSet<Capability> {
    fn show(&self) -> String {
        let mut capabilities: Vec<Capability> = self.iter().copied().collect();
        capabilities.sort_by_key(|capability| capability.index());
        capabilities.show()
    }
}

/// An interface's name and flags, as SIOCSIFFLAGS reads them: `{ifr_name: "lo", ifr_flags:
/// IFF_UP}`.
impl Show for libc::ifreq {
    fn show(&self) -> String {
        let name: Vec<u8> =
            self.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        // SAFETY: the flags are the member of the union that SIOCSIFFLAGS reads, and
        // every bit pattern is a valid c_short.
        let flags = unsafe { self.ifr_ifru.ifru_flags };
        let flags = match flags as libc::c_int {
            libc::IFF_UP => "IFF_UP".to_string(),
            other => other.to_string(),
        };
        format!("{{ifr_name: {:?}, ifr_flags: {flags}}}", String::from_utf8_lossy(&name))
    }
}

/// waitpid's options: none is 0, as the kernel reads it.
impl Show for Option<WaitPidFlag> {
    fn show(&self) -> String {
        let flags = self.unwrap_or(WaitPidFlag::empty());
        flag_names(flags.iter_names().map(|(name, _)| name))
    }
}

/// Numbers and IDs, and what else Rust displays as strace(1) would: `4711`, `CAP_MKNOD`.
macro_rules! show_displayed {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
show_displayed!(Pid, i32, Uid, Gid, u8, u32, u64, usize, Capability, CapsError);

/// Strings in quotes, as C would write them, errors by their names (`EPERM`), and what
/// else Rust's `{:?}` writes as strace(1) would.
macro_rules! show_debugged {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                format!("{self:?}")
            }
        }
    )*};
}
show_debugged!(Errno, str, CStr, WaitStatus, Path, Resource, CapSet);

/// Flags by their names, joined by `|`, as C ORs them: `CLONE_NEWUTS|CLONE_NEWPID`; none is 0.
macro_rules! show_flags {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                flag_names(self.iter_names().map(|(name, _)| name))
            }
        }
    )*};
}
show_flags!(CloneFlags, MsFlags, MntFlags, SFlag, SockFlag, ResolveFlag);

/// An open file, a socket, a terminal: by its descriptor's number.
macro_rules! show_descriptors {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                self.as_raw_fd().to_string()
            }
        }
    )*};
}
show_descriptors!(OwnedFd, File, PtyMaster);

fn flag_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() { "0".to_string() } else { names.join("|") }
}
// ANCHOR_END: Show
